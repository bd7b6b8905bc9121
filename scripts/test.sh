#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (packages), builds registryd and passes every test: unit
# tests, integration tests against real docker-registry, skopeo, containerd/ctr, curl and
# openssl, and the out-of-tree SDK example.
#   scripts/test.sh              everything, in build/
#   scripts/test.sh --sanitize   the unit tests built with ASan and UBSan, in build-asan/
# Set REGISTRYD_SKIP_INSTALL=1 to skip the apt-get step on a machine already set up.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${REGISTRYD_SKIP_INSTALL:-0}" != 1 ]; then scripts/install-deps.sh; fi

if [ "${1:-}" = "--sanitize" ]; then
  scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DREGISTRYD_SANITIZE=ON
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure -L unit -j "$(nproc)"
else
  scripts/build.sh build
  ctest --test-dir build --output-on-failure -j "$(nproc)"
fi
