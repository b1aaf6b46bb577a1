#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets (clang, ASan + UBSan) and runs each for SECONDS, starting from the
# seed corpus and the regression inputs. A crash stops with the input's path: add it to
# fuzz/regressions/TARGET/ (make test replays those) and fix the bug.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
mapfile -t targets < <(grep -E '^[a-z_]+$' fuzz/targets.txt)
cmake --preset fuzz >/dev/null
cmake --build build-fuzz --target "${targets[@]/#/fuzz_}"
mkdir -p build-fuzz/artifacts
# Two targets at a time: one per core.
run_one() {
  local t=$1 work="build-fuzz/corpus/$1"
  mkdir -p "$work"
  if ! build-fuzz/bin/fuzz_$t -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="build-fuzz/artifacts/$t-" "$work" "fuzz/corpus/$t" "fuzz/regressions/$t" \
       > "build-fuzz/fuzz_$t.log" 2>&1; then
    echo "== fuzz_$t for ${seconds}s: found a crash; see build-fuzz/fuzz_$t.log and build-fuzz/artifacts/$t-*"
    tail -30 "build-fuzz/fuzz_$t.log"
    return 1
  fi
  echo "== fuzz_$t for ${seconds}s: $(grep -E "stat::number_of_executed_units|stat::new_units_added" "build-fuzz/fuzz_$t.log" | tr '\n' ' ')"
}
status=0
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -eq 2 ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[1]}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
