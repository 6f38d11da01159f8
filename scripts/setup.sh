#!/usr/bin/env bash
# Set-up for building and running gqa on a Debian/Ubuntu machine, GPU or not. Idempotent: when
# everything is in place it only reports.
#
#  1. A Rust toolchain (cargo, rustc >= 1.89) and a C linker: checked, never installed here
#     (the message says how to get them).
#  2. A GPU adapter wgpu can open: a Vulkan driver (ICD file + libvulkan.so.1), or EGL + Mesa's DRI
#     drivers for OpenGL. When neither is found and we are root (or have passwordless sudo) and
#     apt-get exists, Mesa's software drivers are installed (lavapipe for Vulkan, llvmpipe for GL);
#     otherwise the exact command is printed and the script exits non-zero.
#  3. With --tests (scripts/test.sh): the shader validators spirv-val and glslangValidator, and
#     python3 (the generated shaders' drift test), installed like the drivers (Debian's spirv-tools,
#     glslang-tools and python3) or named in the error; and Mesa's RADV Vulkan driver (its null
#     device compiles the kernels for the compiler report's test, no GPU needed: Debian's
#     mesa-vulkan-drivers, the package that also holds lavapipe).
#  4. XDG_RUNTIME_DIR: Mesa warns when it is unset or invalid; a private directory is suggested
#     (scripts/test.sh and scripts/demo.sh set one themselves).
#
# Exit status: 0 ready, 1 something is missing (the message says what to install).
set -euo pipefail

say() { printf 'setup: %s\n' "$*" >&2; }
fail() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}

readonly MESA_PACKAGES=(mesa-vulkan-drivers libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri)
readonly MIN_RUST_MINOR=89

# --- 1. Rust -------------------------------------------------------------------------------------
if [[ -f "${CARGO_HOME:-$HOME/.cargo}/env" ]] && ! command -v cargo >/dev/null 2>&1; then
    # shellcheck disable=SC1091 # rustup's env file, present only when rustup installed it
    . "${CARGO_HOME:-$HOME/.cargo}/env"
fi
if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
    fail "no Rust toolchain (cargo) on PATH. Install one with rustup:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . \"\$HOME/.cargo/env\"
(rustc 1.${MIN_RUST_MINOR} or newer is needed: wgpu 30, zip and hdf5-pure)"
fi
rust_version=$(rustc --version | awk '{print $2}')
rust_minor=$(printf '%s' "$rust_version" | cut -d. -f2)
if [[ "$(printf '%s' "$rust_version" | cut -d. -f1)" == 1 && "$rust_minor" =~ ^[0-9]+$ ]] &&
    ((rust_minor < MIN_RUST_MINOR)); then
    fail "rustc $rust_version is too old: 1.${MIN_RUST_MINOR} or newer is needed (rustup update stable)"
fi
if ! command -v cc >/dev/null 2>&1; then
    fail "no C linker (cc) on PATH, which rustc needs to link: apt-get install -y gcc libc6-dev"
fi
say "rust: $(cargo --version)"

# --- 2. A GPU adapter ----------------------------------------------------------------------------
# Whether the dynamic loader knows a library (ldconfig's cache, then the usual directories).
have_lib() {
    local ldconfig
    ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
    if [[ -x "$ldconfig" ]] && "$ldconfig" -p 2>/dev/null | grep -q "[[:space:]]$1 "; then
        return 0
    fi
    compgen -G "/usr/lib/*/$1" >/dev/null || compgen -G "/usr/lib/$1" >/dev/null || compgen -G "/usr/lib64/$1" >/dev/null
}

# Vulkan: the loader plus a driver. Mesa's lavapipe runs anywhere; a hardware ICD needs its device.
vulkan_driver() {
    have_lib libvulkan.so.1 || return 1
    local f dir chosen=()
    IFS=: read -ra chosen <<<"${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}"
    for f in "${chosen[@]}"; do
        if [[ -f "$f" ]]; then
            echo "$f (from VK_DRIVER_FILES/VK_ICD_FILENAMES)"
            return 0
        fi
    done
    local dirs=(/usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d)
    for dir in "${dirs[@]}"; do
        for f in "$dir"/lvp_icd*.json; do
            if [[ -f "$f" ]]; then
                echo "$f (lavapipe, software)"
                return 0
            fi
        done
    done
    if compgen -G '/dev/dri/renderD*' >/dev/null || [[ -e /dev/nvidiactl ]]; then
        for dir in "${dirs[@]}"; do
            for f in "$dir"/*.json; do
                if [[ -f "$f" ]]; then
                    echo "$f"
                    return 0
                fi
            done
        done
    fi
    return 1
}

# OpenGL through EGL without a display: libEGL, Mesa's EGL vendor library and a DRI driver.
gl_driver() {
    have_lib libEGL.so.1 || return 1
    have_lib libEGL_mesa.so.0 || return 1
    local f
    for f in /usr/lib/*/dri/swrast_dri.so /usr/lib/dri/swrast_dri.so /usr/lib64/dri/swrast_dri.so \
        /usr/lib/*/dri/kms_swrast_dri.so; do
        if [[ -e "$f" ]]; then
            echo "$f"
            return 0
        fi
    done
    return 1
}

find_adapters() {
    local found=1 v g
    if v=$(vulkan_driver); then
        say "Vulkan driver: $v"
        found=0
    fi
    if g=$(gl_driver); then
        say "OpenGL (EGL) driver: $g"
        found=0
    fi
    return "$found"
}

case "$(uname -s)" in
Darwin)
    say "macOS: wgpu uses Metal, nothing to install"
    ;;
MINGW* | MSYS* | CYGWIN*)
    say "Windows: wgpu uses Direct3D 12 or Vulkan from the GPU driver, nothing to install"
    ;;
*)
    if ! find_adapters; then
        install_cmd="apt-get install -y ${MESA_PACKAGES[*]}"
        sudo_cmd=()
        if [[ "$(id -u)" -ne 0 ]]; then
            if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
                sudo_cmd=(sudo -n)
            else
                sudo_cmd=(none)
            fi
        fi
        if ! command -v apt-get >/dev/null 2>&1; then
            fail "no GPU adapter: no Vulkan driver (ICD file + libvulkan.so.1) and no EGL + Mesa DRI driver.
Install your distribution's Mesa Vulkan drivers (lavapipe) and Vulkan loader, or Mesa's EGL and DRI
drivers; on Debian/Ubuntu: $install_cmd"
        fi
        if [[ "${sudo_cmd[*]}" == none ]]; then
            fail "no GPU adapter: no Vulkan driver and no EGL + Mesa DRI driver. Install Mesa's software
drivers (as root):
    apt-get update && $install_cmd"
        fi
        say "no GPU adapter found: installing Mesa's software drivers: ${MESA_PACKAGES[*]}"
        export DEBIAN_FRONTEND=noninteractive
        "${sudo_cmd[@]}" apt-get update -qq
        "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${MESA_PACKAGES[@]}" >/dev/null
        find_adapters || fail "installed ${MESA_PACKAGES[*]} but still no Vulkan or EGL driver is found"
    fi
    ;;
esac

# --- 3. Shader validators (the tests only: `setup.sh --tests`) -------------------------------------
# tests/shaders.rs runs spirv-val and glslangValidator on naga's SPIR-V and GLSL translations, and
# tools/gen_matmul_rb16.py (python3) to check the generated shaders against their generator.
if [[ "${1:-}" == --tests && "$(uname -s)" == Linux && "${GQA_SKIP_EXTERNAL_VALIDATORS:-}" != 1 ]] &&
    { ! command -v spirv-val >/dev/null 2>&1 || ! command -v glslangValidator >/dev/null 2>&1 ||
        ! command -v python3 >/dev/null 2>&1; }; then
    validators=(spirv-tools glslang-tools python3)
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing the shader validators for the tests: ${validators[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${validators[@]}" >/dev/null
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
        say "installing the shader validators for the tests: ${validators[*]}"
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${validators[@]}" >/dev/null
    else
        fail "the shader tests need spirv-val, glslangValidator and python3: apt-get install -y ${validators[*]}
(or set GQA_SKIP_EXTERNAL_VALIDATORS=1 to run the tests without them)"
    fi
fi

# Mesa's RADV driver and the Vulkan loader: crates/gqa-cli/tests/isa.rs compiles every kernel with
# AMD's compiler on RADV's null device (`gqa kernels --isa`, no GPU needed).
radv_manifest() {
    have_lib libvulkan.so.1 || return 1
    compgen -G '/usr/share/vulkan/icd.d/radeon_icd*.json' >/dev/null ||
        compgen -G '/usr/local/share/vulkan/icd.d/radeon_icd*.json' >/dev/null ||
        compgen -G '/etc/vulkan/icd.d/radeon_icd*.json' >/dev/null
}
if [[ "${1:-}" == --tests && "$(uname -s)" == Linux ]] && ! radv_manifest; then
    radv=(mesa-vulkan-drivers libvulkan1)
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Mesa's RADV driver for the compiler report's test: ${radv[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${radv[@]}" >/dev/null
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
        say "installing Mesa's RADV driver for the compiler report's test: ${radv[*]}"
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${radv[@]}" >/dev/null
    else
        fail "the compiler report's test (gqa kernels --isa) needs Mesa's RADV Vulkan driver and the Vulkan loader:
apt-get install -y ${radv[*]}"
    fi
    radv_manifest || fail "installed ${radv[*]} but no radeon_icd*.json is found"
fi

# --- 4. XDG_RUNTIME_DIR ---------------------------------------------------------------------------
if [[ -z "${XDG_RUNTIME_DIR:-}" || ! -d "${XDG_RUNTIME_DIR:-}" || ! -O "${XDG_RUNTIME_DIR:-}" ]]; then
    say "XDG_RUNTIME_DIR is unset or not yours (Mesa warns about it); for a private one:"
    say "    export XDG_RUNTIME_DIR=\"\$(mktemp -d)\"  (scripts/test.sh and scripts/demo.sh set one)"
fi
say "ready"
