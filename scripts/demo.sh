#!/usr/bin/env bash
# The main job: run a GroupQueryAttention layer on the best GPU adapter and check it against the CPU
# oracle (see `scripts/demo.sh --help` for the flags; WGPU_BACKEND=vulkan|gl picks the backend).
# Exits non-zero when the GPU output is out of tolerance, the flags are invalid or no adapter is found.
#
# Usage: scripts/demo.sh [`gqa demo` flags, e.g. --batch 1 --target-len 256 --scores]
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

scripts/setup.sh
exec cargo run --release -p gqa-cli --bin gqa -- demo "$@"
