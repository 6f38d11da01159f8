# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/demo.sh: the environment the GPU runs want.

# Mesa warns "XDG_RUNTIME_DIR is invalid" when it is unset or not a private directory of ours:
# give it one (kept per user, mode 0700) unless the caller already has a good one.
if [[ -z "${XDG_RUNTIME_DIR:-}" || ! -d "${XDG_RUNTIME_DIR:-}" || ! -O "${XDG_RUNTIME_DIR:-}" ]]; then
    XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/gqa-xdg-runtime-$(id -u)"
    [[ -d "$XDG_RUNTIME_DIR" ]] || mkdir -m 0700 "$XDG_RUNTIME_DIR"
    if [[ ! -O "$XDG_RUNTIME_DIR" ]]; then
        XDG_RUNTIME_DIR=$(mktemp -d)
    fi
    chmod 0700 "$XDG_RUNTIME_DIR"
    export XDG_RUNTIME_DIR
fi

# Run from the repository root whatever the caller's directory.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
