#!/usr/bin/env bash
# The tests: every unit, integration and doc test of the workspace, in release mode (the f64 oracle
# and the software GPU adapters are slow in debug). GPU tests run on every adapter found (lavapipe
# and llvmpipe on a machine without a GPU) and fail, never skip, when there is none.
#
# Usage: scripts/test.sh [cargo test arguments, e.g. a test name filter or `-- --nocapture`]
set -euo pipefail
# shellcheck source=scripts/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

scripts/setup.sh --tests
exec cargo test --release --workspace "$@"
