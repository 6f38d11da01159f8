#!/usr/bin/env bash
# The real-GPU check: the GPU test suite and a benchmark sweep on a Linux machine with a GPU and its
# driver, but possibly no Rust, no Vulkan loader and no network. Two steps:
#
#   scripts/gpu-check.sh pack [DIR]   here (any Linux build machine): builds the release test binaries
#                                     and `gqa` (for `gqa demo`), strips them and copies them, with
#                                     this machine's Vulkan loader (libvulkan.so.1), into DIR (default
#                                     gpu-check/).
#   scripts/gpu-check.sh run [DIR]    there: runs every packed test binary and the demo at a few shapes
#                                     within 8 minutes, writing $OUT/report.txt (DIR/report.txt when
#                                     $OUT is unset). Exit status 0 when everything passed.
#
# On the GPU machine the script uses only what DIR carries: the loader is used when the system has
# none; the NVIDIA driver's own Vulkan ICD is used when installed, else one is written that points at
# libGLX_nvidia.so.0. GQA_GPU_CHECK_BUDGET (seconds, default 450) bounds the whole run.
set -euo pipefail

mode=${1:-}
dir=${2:-gpu-check}
readonly TESTS=(gpu_loop_cap gpu_forward gpu_fused gpu_large gpu_kv_cache_quantized gpu_kv_cache_f16_layer gpu_f16 gpu_extensions gpu_dropout gpu_chunking gpu_encode gpu_proptest gpu_robust errors api_tensor api_pool api_chain api_threads api_async)

pack() {
    local root
    root=$(cd "$(dirname "$0")/.." && pwd)
    mkdir -p "$dir/bin" "$dir/lib"
    cd "$root"
    echo "gpu-check: building release test binaries and gqa (gqa demo)" >&2
    local json
    json=$(cargo test --release --no-run --message-format=json 2>/dev/null)
    for t in "${TESTS[@]}"; do
        local exe
        exe=$(printf '%s\n' "$json" | python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and m.get("executable"):
        print(m["executable"])
' "$t" | tail -n 1)
        [[ -n "$exe" ]] || { echo "gpu-check: no test binary for $t" >&2; exit 1; }
        cp "$exe" "$dir/bin/$t"
    done
    cargo build --release -p gqa-cli --bin gqa 2>/dev/null
    cp target/release/gqa "$dir/bin/"
    strip "$dir"/bin/* 2>/dev/null || true
    # Compressed, the binaries fit a 64 MiB carry; `run` unpacks them.
    tar -C "$dir" -cJf "$dir/bin.tar.xz" bin && rm -rf "$dir/bin"
    local loader
    loader=$( (ldconfig -p 2>/dev/null || true) | awk '/libvulkan\.so\.1 / {print $NF; exit}')
    if [[ -n "$loader" ]]; then
        cp -L "$loader" "$dir/lib/libvulkan.so.1"
    else
        echo "gpu-check: warning: no libvulkan.so.1 here to carry (apt-get install libvulkan1)" >&2
    fi
    cp "$0" "$dir/gpu-check.sh"
    git rev-parse HEAD >"$dir/COMMIT" 2>/dev/null || true
    du -sh "$dir" >&2
}

run() {
    dir=$(cd "$dir" && pwd)
    local bin="$dir/bin"
    if [[ ! -d "$bin" && -f "$dir/bin.tar.xz" ]]; then
        local unpacked
        unpacked=$(mktemp -d)
        tar -C "$unpacked" -xJf "$dir/bin.tar.xz"
        bin="$unpacked/bin"
    fi
    # The report goes to $OUT when set (the carried folder may be read-only), else beside the binaries.
    local out_dir="${OUT:-$dir}"
    mkdir -p "$out_dir"
    local report="$out_dir/report.txt" budget=${GQA_GPU_CHECK_BUDGET:-450} start=$SECONDS status=0
    : >"$report"
    log() { printf '%s\n' "$*" | tee -a "$report"; }
    log "# gqa gpu-check $(date -u +%FT%TZ) commit $(cat "$dir/COMMIT" 2>/dev/null || echo unknown)"
    if command -v nvidia-smi >/dev/null 2>&1; then
        log "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
    fi
    if ! (ldconfig -p 2>/dev/null || true) | grep -q 'libvulkan\.so\.1 '; then
        log "system has no Vulkan loader: using the carried one"
        export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
    local icd
    icd=$(ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json 2>/dev/null | head -n 1 || true)
    if [[ -z "$icd" ]]; then
        local glx
        glx=$( (ldconfig -p 2>/dev/null || true) | awk '/libGLX_nvidia\.so\.0 / {print $NF; exit}')
        if [[ -n "$glx" ]]; then
            icd="$out_dir/nvidia_icd.json"
            printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" >"$icd"
            log "no NVIDIA Vulkan ICD file installed: wrote $icd for $glx"
        fi
    fi
    if [[ -n "$icd" ]]; then
        export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
        log "Vulkan ICD: $icd"
    fi
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
    chmod 700 "$XDG_RUNTIME_DIR"
    log "## adapters"
    "$bin/gqa" demo --list-adapters 2>&1 | tee -a "$report" || status=1
    log "## tests"
    for t in "${TESTS[@]}"; do
        local left=$((budget - (SECONDS - start)))
        if ((left < 30)); then
            log "$t: NOT RUN (time budget spent)"
            status=1
            continue
        fi
        local t0=$SECONDS out
        if out=$(timeout "$((left - 20))" "$bin/$t" --test-threads=2 2>&1); then
            log "$t: ok ($((SECONDS - t0)) s) $(printf '%s\n' "$out" | grep -E '^test result' | tail -n 1)"
        else
            log "$t: FAILED ($((SECONDS - t0)) s)"
            printf '%s\n' "$out" | tail -n 40 | tee -a "$report"
            status=1
        fi
        printf '%s\n' "$out" | grep -E '^\[' | head -n 20 >>"$report" || true
    done
    log "## bench (gqa demo, median of 5 runs and a per-kernel profile, every output checked against the oracle)"
    local shapes=(
        "--batch 4 --query-heads 8 --kv-heads 2 --head-dim 64 --query-dim 512 --value-dim 512 --target-len 256 --source-len 256"
        "--batch 1 --query-heads 32 --kv-heads 8 --head-dim 128 --query-dim 4096 --value-dim 4096 --target-len 512 --source-len 512 --no-causal"
        "--batch 1 --query-heads 32 --kv-heads 8 --head-dim 128 --query-dim 4096 --value-dim 4096 --target-len 2048 --source-len 2048"
        "--batch 1 --query-heads 32 --kv-heads 8 --head-dim 128 --query-dim 4096 --value-dim 4096 --target-len 1 --source-len 4096 --no-causal"
    )
    for shape in "${shapes[@]}"; do
        local left=$((budget - (SECONDS - start)))
        if ((left < 20)); then
            log "bench $shape: NOT RUN (time budget spent)"
            continue
        fi
        # shellcheck disable=SC2086 # the shape is a list of flags
        timeout "$((left - 10))" "$bin/gqa" demo $shape --profile --roofline 2>&1 | tee -a "$report" || status=1
    done
    log "## decode steps over f32, f16 and int8 KV caches, and of a layer in f16 over its f16 cache (gqa bench --decode, every step checked against the oracle's cache)"
    # The three storages in one run (their ratios from the same probes), then the f16 layer.
    local decode
    for decode in "--cache f32,f16,int8" "--f16"; do
        local left=$((budget - (SECONDS - start)))
        if ((left < 20)); then
            log "bench --decode $decode: NOT RUN (time budget spent)"
            continue
        fi
        # shellcheck disable=SC2086 # the flags are a list
        timeout "$((left - 10))" "$bin/gqa" bench --decode $decode --seq 4096,32768 --runs 5 2>&1 | tee -a "$report" || status=1
    done
    log "## decode steps with and without RoPE and QK-norm (gqa bench --decode --rope-qk-norm, every step checked)"
    local left=$((budget - (SECONDS - start)))
    if ((left < 20)); then
        log "bench --decode --rope-qk-norm: NOT RUN (time budget spent)"
    else
        timeout "$((left - 10))" "$bin/gqa" bench --decode --rope-qk-norm --seq 4096,32768 --runs 9 2>&1 | tee -a "$report" || status=1
    fi
    log "## done in $((SECONDS - start)) s, status $status"
    return "$status"
}

case "$mode" in
pack) pack ;;
run) run ;;
*)
    echo "usage: $0 pack|run [DIR]" >&2
    exit 2
    ;;
esac
