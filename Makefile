# ttmem: the two commands a newcomer runs are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
# PRESET picks the build tree (CMakePresets.json): default -> build/, debug -> build-debug/.
PRESET ?= default
BUILD_DIR := $(if $(filter default,$(PRESET)),build,build-$(PRESET))

.PHONY: deps build test demo bench fuzz soak asan tsan format format-check clean install package

deps:
	@scripts/install-deps.sh

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET)

# Every test suite; fails if any suite fails.
test: build
	@ctest --preset $(PRESET)

demo: build
	@BUILD_DIR=$(BUILD_DIR) scripts/demo.sh

# Into PREFIX (default /usr/local; DESTDIR for staging): binaries, libttmem, headers, CMake package,
# pkg-config, systemd units, the Python module (docs/install.md).
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD_DIR) --prefix $(PREFIX)

# A Debian package for /usr in build/ (ttmem_VERSION_amd64.deb).
package: build
	@cd $(BUILD_DIR) && cpack -G DEB

# Every benchmark figure, several runs; writes bench/results/latest.json and docs/benchmarks.md.
bench: build
	@TTMEM_BIN_DIR=$(CURDIR)/$(BUILD_DIR)/bin /usr/bin/python3 bench/run_bench.py --runs 3

# libFuzzer on every target for FUZZ_SECONDS each (clang build in build-fuzz/); a crash fails it.
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

# The chaos test, long: more workers, steps, kills and server restarts, over several seeds.
soak: build
	@for seed in 1 2 3 4 5; do \
	  echo "== chaos soak, seed $$seed =="; \
	  TTMEM_CHAOS_SEED=$$seed TTMEM_CHAOS_WORKERS=12 TTMEM_CHAOS_STEPS=200000 TTMEM_CHAOS_KILLS=10 \
	  TTMEM_CHAOS_RESTARTS=10 $(BUILD_DIR)/bin/chaos_tests || exit 1; \
	done

# Sanitizer builds of the whole C++ suite (separate build trees).
asan: deps
	@cmake --preset asan >/dev/null && cmake --build --preset asan && ctest --preset asan

tsan: deps
	@cmake --preset tsan >/dev/null && cmake --build --preset tsan && ctest --preset tsan

format:
	@git ls-files --cached --others --exclude-standard '*.cpp' '*.hpp' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf build build-debug build-asan build-tsan build-fuzz
