#!/bin/sh
# make package as a packager would: the Debian package CPack builds from this build is inspected (files,
# control fields, dependencies that are Debian 12 packages), installed with dpkg into a fresh root, and its
# binaries and Python module run from there.
# Usage: package_test.sh BUILD_DIR
set -eu
build=$1
work=$(mktemp -d /tmp/ttmem-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "package_test: $*" >&2
  exit 1
}
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/out" >"$work/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -20 "$work/cpack.log")"
deb=$(find "$work/out" -maxdepth 1 -name 'ttmem_*.deb' | head -1)
[ -n "$deb" ] || fail "no ttmem_*.deb in $work/out"
version=$("$build/bin/ttmemd" --version | sed -n 's/^ttmemd \([0-9.]*\).*/\1/p')
[ "$(dpkg-deb -f "$deb" Package)" = ttmem ] || fail "the package is not named ttmem"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "the package's version is not ttmemd's ($version)"
dpkg-deb -c "$deb" | awk '{print $6}' >"$work/contents"
for f in ./usr/bin/ttmemd ./usr/bin/ttmem ./usr/bin/ttmem-emu ./usr/lib/libttmem.so.0 ./usr/include/ttmem/ttmem.h \
         ./usr/lib/cmake/ttmem/ttmemConfig.cmake ./usr/lib/pkgconfig/ttmem.pc \
         ./usr/lib/python3/dist-packages/ttmem/__init__.py ./usr/lib/python3/dist-packages/ttmem/pytest_plugin.py \
         ./usr/lib/systemd/system/ttmemd.service ./usr/lib/systemd/system/ttmemd.socket; do
  grep -qx "$f" "$work/contents" || fail "$f is not in the package"
done
! grep -q '^./usr/lib/python3\.[0-9]' "$work/contents" || fail "the module is under a versioned python dir"
# Every dependency is a package of this Debian (dpkg-shlibdeps derived them from the binaries).
dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//; s/ .*//' >"$work/depends"
grep -qx libsqlite3-0 "$work/depends" || fail "no dependency on libsqlite3-0: $(cat "$work/depends")"
# (A name may be virtual: libspdlog1.10-fmt9 is provided by libspdlog1.10.)
dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' >"$work/installed"
while read -r dep; do
  grep '^ii' "$work/installed" | cut -d'|' -f2- | tr '|,' '\n\n' | sed 's/^ *//; s/ .*//; s/:.*//' |
    grep -qx "$dep" || fail "depends on $dep, which no package installed here is or provides"
done <"$work/depends"

# Installed with dpkg into an empty root. Its maintainer script runs ldconfig: a stub records that it
# ran and leaves this machine's cache alone.
if [ "$(id -u)" = 0 ]; then
  root=$work/root
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" "$work/stub"
  : >"$root/var/lib/dpkg/status"
  printf '#!/bin/sh\necho ran >"%s/ldconfig-ran"\n' "$work" >"$work/stub/ldconfig"
  chmod +x "$work/stub/ldconfig"
  PATH=$work/stub:$PATH dpkg --root="$root" --force-depends --force-script-chrootless -i "$deb" \
    >"$work/dpkg.log" 2>&1 || fail "dpkg -i into a fresh root: $(tail -20 "$work/dpkg.log")"
  dpkg --root="$root" -s ttmem | grep -q '^Status: install ok installed' || fail "dpkg does not list ttmem installed"
  [ -f "$work/ldconfig-ran" ] || fail "the package's postinst did not run ldconfig"
else
  root=$work/root
  dpkg-deb -x "$deb" "$root"
  echo "package_test: not root: extracted instead of installed with dpkg" >&2
fi
grep -q '^ExecStart=/usr/bin/ttmemd ' "$root/usr/lib/systemd/system/ttmemd.service" || fail "the unit's ExecStart"
"$root/usr/bin/ttmemd" --version | grep -q "^ttmemd $version" || fail "the packaged ttmemd does not run"
"$root/usr/bin/ttmem" --version >/dev/null || fail "the packaged ttmem does not run"
PYTHONPATH=$root/usr/lib/python3/dist-packages TTMEM_BIN_DIR=$root/usr/bin /usr/bin/python3 - "$root" <<'PY' ||
import importlib.metadata, sys
import ttmem
root = sys.argv[1]
assert ttmem.__file__.startswith(root), ttmem.__file__
assert importlib.metadata.version("ttmem"), "no metadata"
with ttmem.Server(track=False) as s:
    assert s.process.args[0] == root + "/usr/bin/ttmemd", s.process.args
    assert s.info()["version"]
PY
  fail "the packaged Python module"
echo "ok: $(basename "$deb") installed into a fresh root and run from it"
