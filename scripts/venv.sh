#!/usr/bin/env bash
# Create or refresh the project's virtualenv at .venv/ with every extra installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  echo "Recreating .venv (it is not Python 3.11)"; rm -rf .venv
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
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
