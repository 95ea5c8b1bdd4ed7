#!/usr/bin/env bash
# Create or refresh the project's virtualenv at .venv/ with every extra installed.
#
# The venv must be Python 3.11: the Python backend stub that the embedded Triton runs is built for
# 3.11. It is made with $PYTHON when set (which must then be 3.11), else python3.11, else python3
# when that is 3.11; with none of them it stops and says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

is_311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; }

describe() {  # "python3 (Python 3.12.1)" or "python3 (not found)"
    if command -v "$1" >/dev/null 2>&1; then
        echo "$1 ($("$1" --version 2>&1 | head -n 1))"
    else
        echo "$1 (not found)"
    fi
}

pick_python() {
    if [ -n "${PYTHON:-}" ]; then
        candidates=("$PYTHON")
    else
        candidates=(python3.11 python3)
    fi
    for candidate in "${candidates[@]}"; do
        if command -v "$candidate" >/dev/null 2>&1 && is_311 "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    {
        echo "venv.sh: .venv needs Python 3.11 (the embedded Triton's Python backend stub is built for it), but:"
        for candidate in "${candidates[@]}"; do echo "    $(describe "$candidate")"; done
        echo "Install Python 3.11 (Debian 12: apt-get install python3.11 python3.11-venv) so that python3.11"
        echo "is on PATH, or set PYTHON=/path/to/python3.11."
    } >&2
    return 1
}

if [ -x .venv/bin/python ] && ! is_311 .venv/bin/python; then
    python="$(pick_python)" || exit 1  # refuse before removing the venv there is
    echo "Recreating .venv (it is not Python 3.11) with $python"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    python="${python:-$(pick_python)}" || exit 1
    "$python" -m venv .venv
fi
# The embedded Triton's Python backend stub links against the system libpython3.11.
if ! ldconfig -p 2>/dev/null | grep -q 'libpython3\.11\.so\.1\.0'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq libpython3.11 >/dev/null
    else
        echo "warning: libpython3.11.so.1.0 not found; install libpython3.11 to run the embedded server" >&2
    fi
fi
.venv/bin/python -m pip install -q --upgrade pip
# Strict editable mode: the top-level folders map into the tritonkit namespace and mypy sees them.
.venv/bin/python -m pip install -q -e '.[all]' --config-settings editable_mode=strict
