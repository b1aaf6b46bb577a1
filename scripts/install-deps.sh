#!/usr/bin/env bash
# Installs the Debian packages ttmem needs to build, test, benchmark and fuzz.
# Idempotent: only packages that are missing are installed; nothing else is touched.
set -euo pipefail

packages=(
  # toolchain and build
  g++ cmake ninja-build make pkg-config clang clang-format libclang-rt-14-dev
  # libraries
  libfmt-dev libspdlog-dev nlohmann-json3-dev libcli11-dev libncurses-dev libcpp-httplib-dev libsqlite3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest librapidcheck-dev libbenchmark-dev tmux
  # python module
  python3 python3-dev pybind11-dev python3-pytest
  # HTTP: the Prometheus text parser and promtool check what /metrics serves; the dashboard's browser
  # test drives Debian's chromium; npm installs the dashboard's packages (below)
  python3-prometheus-client prometheus chromium nodejs
  # make package: CPack's DEB generator derives the dependencies with dpkg-shlibdeps
  dpkg-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

install_packages() {
  echo "install-deps: installing $*"
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO=sudo
    else
      echo "install-deps: need root (or sudo) to install: $*" >&2
      exit 1
    fi
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be absent on a fresh machine; refresh them once per install.
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

if [ ${#missing[@]} -gt 0 ]; then
  install_packages "${missing[@]}"
fi
# Debian's nodejs comes without npm (NodeSource's has it).
if ! command -v npm >/dev/null 2>&1; then
  install_packages npm
fi

# The dashboard's npm packages, exactly as its lockfile says (uPlot is built into ttmemd; puppeteer-core
# drives the browser test). Skipped while node_modules was installed from this very lockfile.
cd "$(dirname "$0")/../web"
if ! cmp -s package-lock.json node_modules/.ttmem-installed-lock; then
  echo "install-deps: npm ci in web/"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.ttmem-installed-lock
fi
