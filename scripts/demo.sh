#!/usr/bin/env bash
# The main job: run the seed's scenario on the emulated runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin
echo "== The seed scenario on an emulated T3000 (examples/seed.ttm) =="
"$bin/ttmem-emu" examples/seed.ttm
