# ttmem: the two commands a newcomer runs are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PRESET ?= default
BUILD_DIR := build

.PHONY: deps build test demo bench fuzz asan tsan format format-check clean

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD_DIR)

# Every test suite; fails if any suite fails.
test: build
	@ctest --preset default

demo: build
	@scripts/demo.sh

# Every benchmark figure, several runs; writes bench/results/latest.json and docs/benchmarks.md.
bench: build
	@/usr/bin/python3 bench/run_bench.py --runs 3

# libFuzzer on every target for FUZZ_SECONDS each (clang build in build-fuzz/); a crash fails it.
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# Sanitizer builds of the whole C++ suite (separate build trees).
asan: deps
	@cmake --preset asan >/dev/null && cmake --build build-asan && ctest --preset asan

tsan: deps
	@cmake --preset tsan >/dev/null && cmake --build build-tsan && ctest --preset tsan

format:
	@git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf build build-debug build-asan build-tsan build-fuzz
