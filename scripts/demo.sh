#!/usr/bin/env bash
# make demo: the seed's investigation, done with ttmem (examples/demo.py drives it).
set -euo pipefail
cd "$(dirname "$0")/.."
export TTMEM_BIN_DIR="$PWD/build/bin"
export PYTHONPATH="$PWD/build/python${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 examples/demo.py
