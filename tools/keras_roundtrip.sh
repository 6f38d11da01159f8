#!/usr/bin/env bash
# The export round trip against the real Keras layer, for every fixture (needs the Python packages of
# tools/requirements.txt and a GPU adapter): `gqa export` writes each fixture's layer (and the two
# Keras-saved files) to safetensors, `gqa run` runs it on the fixture's inputs (with the call options
# the fixture records) with both masked-row policies, and `tools/keras_fixtures.py --check` loads the
# exported file into Keras and compares.
#
# Usage: tools/keras_roundtrip.sh [python] [extra gqa run flags, e.g. --backend gl]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${1:-python3}
shift || true
fixtures=tests/fixtures/keras
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q -p gqa-cli
gqa=target/release/gqa
failed=0
passed=0

check() { # name layer-args...
    local name=$1
    shift
    local exported="$work/$name.layer.safetensors" inputs="$fixtures/$name.safetensors"
    "$gqa" export "$@" --output "$exported" >/dev/null
    for rows in zeros keras-default; do
        local out="$work/$name.$rows.safetensors"
        # The fixture's metadata `call` (use_causal_mask) applies: gqa run reads it from --inputs.
        "$gqa" run --layer "$exported" --inputs "$inputs" --output "$out" --scores --masked-rows "$rows" \
            "${extra[@]}" >/dev/null
        if "$python" tools/keras_fixtures.py --check "$exported" --inputs "$inputs" --expected "$out" \
            >"$work/log" 2>&1; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "MISMATCH $name ($rows):"
            cat "$work/log"
        fi
    done
}

extra=("$@")
for f in "$fixtures"/*.safetensors; do
    name=$(basename "$f" .safetensors)
    check "$name" --layer "$f"
done
check keras_model --layer "$fixtures/keras_model.keras" --layer-name attn_in_model
check keras_weights_h5 --layer "$fixtures/keras_weights_h5.weights.h5" --config "$fixtures/keras_weights_h5.model.json"
echo "keras round trip: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
