#!/usr/bin/env bash
# Configures and builds registryd. Usage: scripts/build.sh [BUILD_DIR] [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}; shift || true
cmake -S . -B "$build" -G Ninja "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
