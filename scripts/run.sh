#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds registryd and runs it in the foreground on
# https://127.0.0.1:5001 with its own CA, state in ./out/state. Ctrl-C stops it.
# For now registryd starts in Unmanaged mode (the Local mode is not built yet: docs/status.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${REGISTRYD_SKIP_INSTALL:-0}" != 1 ]; then scripts/install-deps.sh; fi
scripts/build.sh build
mkdir -p out/state out/data
echo "registryd: CA certificate at out/state/pki/ca.crt once started; try:"
echo "  curl --cacert out/state/pki/ca.crt https://127.0.0.1:5001/v2/"
exec build/bin/registryd serve --state-dir out/state --data-dir out/data "$@"
