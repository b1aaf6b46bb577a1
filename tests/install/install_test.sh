#!/bin/sh
# make install as a user would: install the build into a fresh prefix, run the installed binaries and the
# Python module from there, build a C and a C++ consumer with find_package(ttmem) and with pkg-config, and
# build the client-only configuration (-DTTMEM_CLIENT_ONLY=ON) and link a consumer against it.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
source=$2
work=$(mktemp -d /tmp/ttmem-install-XXXXXX)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "install_test: $*" >&2
  exit 1
}
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || fail "cmake --install failed: $(tail -5 "$work/install.log")"

# What a package holds: the library with its SONAME, headers, CMake package, pkg-config, units, tools.
lib=$(find "$prefix" -name 'libttmem.so.0.*' | head -1)
[ -n "$lib" ] || fail "no libttmem.so.0.* under $prefix"
readelf -d "$lib" | grep -q 'SONAME.*\[libttmem.so.0\]' || fail "$lib has no SONAME libttmem.so.0"
for f in include/ttmem/ttmem.h include/ttmem/client.hpp include/ttmem/protocol.hpp include/ttmem/vocab.hpp \
         bin/ttmemd bin/ttmem bin/ttmem-emu lib/systemd/system/ttmemd.service lib/systemd/system/ttmemd.socket; do
  [ -e "$prefix/$f" ] || fail "$f was not installed"
done
grep -q "ExecStart=$prefix/bin/ttmemd" "$prefix/lib/systemd/system/ttmemd.service" ||
  fail "ttmemd.service does not start the installed ttmemd"
config=$(find "$prefix" -name ttmemConfig.cmake | head -1)
pc=$(find "$prefix" -name ttmem.pc | head -1)
[ -n "$config" ] && [ -n "$pc" ] || fail "no ttmemConfig.cmake or ttmem.pc"

# The installed tools run from the prefix (their libttmem found beside them, not in the build).
"$prefix/bin/ttmemd" --version | grep -q '^ttmemd 0\.' || fail "installed ttmemd --version"
"$prefix/bin/ttmem" --version >/dev/null || fail "installed ttmem --version"
mkfifo "$work/ready"
"$prefix/bin/ttmemd" --socket "$work/ttmemd.sock" --no-history --ready-fd 3 3>"$work/ready" >"$work/ttmemd.log" 2>&1 &
pid=$!
[ "$(head -c1 "$work/ready")" = 1 ] || fail "installed ttmemd did not start: $(cat "$work/ttmemd.log")"
export TTMEM_SOCKET=$work/ttmemd.sock

# A C++ and a C consumer built with find_package(ttmem), run against that ttmemd.
cmake -S "$source/tests/install/consumer" -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/consumer.log" 2>&1 || fail "find_package(ttmem) consumer does not configure: $(tail -20 "$work/consumer.log")"
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 || fail "consumer does not build: $(tail -20 "$work/consumer.log")"
"$work/consumer/cxx_consumer" || fail "the C++ consumer's report did not reach ttmemd"
"$work/consumer/c_consumer" || fail "the C consumer's report did not reach ttmemd"
# Each exited holding its buffer: ttmemd's orphan records name the consumers' sites.
# ttmemd learns of each exit from the process's pidfd: ask until both records are there (5 s at most).
tries=0
until "$prefix/bin/ttmem" leaks --json >"$work/leaks.json" && grep -q consumer.cpp "$work/leaks.json" &&
  grep -q consumer.c: "$work/leaks.json"; do
  tries=$((tries + 1))
  [ $tries -lt 100 ] || break
  sleep 0.05
done
grep -q '"site": "consumer.cpp:19"' "$work/leaks.json" || fail "ttmemd has no record of the C++ consumer's buffer"
grep -q '"site": "consumer.c:21"' "$work/leaks.json" || fail "ttmemd has no record of the C consumer's buffer"

# The same C program built with pkg-config only.
export PKG_CONFIG_PATH=$(dirname "$pc")
cc -o "$work/c_pkgconfig" "$source/tests/install/consumer/main.c" $(pkg-config --cflags --libs ttmem) \
  -Wl,-rpath,"$(pkg-config --variable=libdir ttmem)" || fail "pkg-config build failed"
[ "$(pkg-config --modversion ttmem)" = "$("$prefix/bin/ttmemd" --version | sed -n 's/^ttmemd \([0-9.]*\).*/\1/p')" ] ||
  fail "ttmem.pc's version is not ttmemd's"
"$work/c_pkgconfig" || fail "the pkg-config C consumer's report did not reach ttmemd"

# The Python module from the prefix: imports, knows its version, finds the installed ttmemd and the
# pytest plugin's entry point.
pydir=$(dirname "$(dirname "$(find "$prefix" -path '*ttmem/__init__.py' | head -1)")")
PYTHONPATH=$pydir TTMEM_BIN_DIR= /usr/bin/python3 - "$prefix" <<'PY' || fail "the installed Python module"
import importlib.metadata, sys
import ttmem
prefix = sys.argv[1]
assert ttmem.__file__.startswith(prefix), ttmem.__file__
assert importlib.metadata.version("ttmem").startswith("0."), importlib.metadata.version("ttmem")
eps = [e.value for e in importlib.metadata.entry_points(group="pytest11") if e.name == "ttmem"]
assert eps == ["ttmem.pytest_plugin"], eps
with ttmem.Server(track=False) as s:
    assert s.process.args[0] == prefix + "/bin/ttmemd", s.process.args
    assert s.stats()["devices"] == []
PY

# Client only: a C++ compiler and CMake, nothing else configured (no fmt, spdlog, CLI11, tools, tests).
cmake -S "$source" -B "$work/client-only" -G Ninja -DTTMEM_CLIENT_ONLY=ON -DTTMEM_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Release >"$work/co.log" 2>&1 || fail "client-only does not configure: $(tail -20 "$work/co.log")"
if grep -Eq '^(fmt|spdlog|CLI11|GTest|SQLite3|pybind11)_DIR:PATH=[^-]' "$work/client-only/CMakeCache.txt"; then
  fail "the client-only build looked for a library: $(grep -E '_DIR:PATH=' "$work/client-only/CMakeCache.txt")"
fi
cmake --build "$work/client-only" >>"$work/co.log" 2>&1 || fail "client-only does not build: $(tail -20 "$work/co.log")"
cmake --install "$work/client-only" --prefix "$work/client-prefix" >>"$work/co.log"
[ ! -e "$work/client-prefix/bin" ] || fail "client-only installed binaries: $(ls "$work/client-prefix/bin")"
cmake -S "$source/tests/install/consumer" -B "$work/consumer2" -G Ninja -DCMAKE_PREFIX_PATH="$work/client-prefix" \
  >"$work/consumer2.log" 2>&1 && cmake --build "$work/consumer2" >>"$work/consumer2.log" 2>&1 ||
  fail "consumer against the client-only install: $(tail -20 "$work/consumer2.log")"
"$work/consumer2/c_consumer" || fail "the client-only library's report did not reach ttmemd"
echo "ok: installed to $prefix, consumers built with find_package and pkg-config, client-only built"
