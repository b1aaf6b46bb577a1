#!/usr/bin/env bash
# make demo: the seed's investigation, done with ttmem (examples/demo.py drives it).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"  # make demo PRESET=debug passes build-debug
export TTMEM_BIN_DIR="$PWD/$BUILD_DIR/bin"
export TTMEM_DEMO_OUT="${TTMEM_DEMO_OUT:-$PWD/$BUILD_DIR/demo}"  # the history and the two exports
export PYTHONPATH="$PWD/$BUILD_DIR/python${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 examples/demo.py
