#!/usr/bin/env bash
# One idempotent entry point for a fresh Debian 12 machine:
#   bash scripts/setup.sh demo [outdir]   install what is missing, build, run the demo
#   bash scripts/setup.sh test [paths]    install what is missing, build, run the test suite
set -euo pipefail

PACKAGES="build-essential cmake pkg-config lua5.4 liblua5.4-dev libopenblas-dev libhdf5-dev
lua-busted luarocks librsvg2-bin python3-ipykernel jupyter-nbconvert python3-nbconvert
jupyter-client python3-nbformat"
# The test suite also reads velua's files back with Python anndata and loompy (issue 4's
# round-trip checks), so `test` installs them too.
TEST_PACKAGES="python3-anndata python3-loompy"

CALLER_PWD=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)

usage() { echo "usage: bash scripts/setup.sh demo [outdir] | test [spec files or dirs]" >&2; exit 2; }

install_missing() {
  local missing=() p sudo=()
  for p in $PACKAGES; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "setup: installing missing Debian packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Output goes to build/setup.log and is shown only when something failed or was compiled.
build() {
  mkdir -p build
  local log=build/setup.log
  if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: build failed (log: $ROOT/$log)" >&2
    exit 1
  fi
  if grep -q -e 'Building C object' -e 'warning:' "$log"; then
    grep -e 'warning:' "$log" || true
    echo "setup: built build/velua/core.so and build/bin/velua"
  fi
}

[ $# -ge 1 ] || usage
cmd=$1; shift
case $cmd in
  demo) ;;
  test) PACKAGES="$PACKAGES $TEST_PACKAGES" ;;
  *) usage ;;
esac

install_missing
build
# The Jupyter kernelspec for this checkout, in the user's own Jupyter directory (re-written on
# every run, so it always points at this checkout). VELUA_KERNEL_DIR picks another directory.
if ! bash "$ROOT/scripts/jupyter/install_kernel.sh" ${VELUA_KERNEL_DIR:+"$VELUA_KERNEL_DIR"} >/dev/null 2>&1; then
  echo "setup: could not install the Jupyter kernelspec (scripts/jupyter/install_kernel.sh)" >&2
fi

if [ "$cmd" = demo ]; then
  cd "$CALLER_PWD" # so that the demo's output directory is relative to where it was asked for
  exec "$ROOT/build/bin/velua" demo "$@"
fi

# Plain `busted` runs under the default `lua`, which is 5.1 once luarocks is installed.
unset LUA_PATH_5_4 LUA_CPATH_5_4
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;$ROOT/tests/?.lua;;"
export LUA_CPATH="$ROOT/build/?.so;;"
[ $# -gt 0 ] || set -- tests
exec lua5.4 /usr/bin/busted --output=tests/support/summary_handler.lua --pattern=_spec "$@"
