#!/usr/bin/env bash
# Runs the registryd benchmarks by hand (they are not part of the test suite):
#   bench/run.sh [local|proxy|direct|packages|frontdoor|balancer|all] [options]     (bench/run.sh --help for the options)
# Results: bench/results/<date>-<suite>.md and .json, and bench/results/README.md.
# REGISTRYD names the binary (default: build/bin/registryd of this tree); its plugins are found
# next to it. docs/benchmarks.md explains the figures and their caveats.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

registryd=${REGISTRYD:-$here/../build/bin/registryd}
missing=()
for tool in docker-registry nginx wrk hey ab curl openssl python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bench: missing ${missing[*]}; scripts/install-deps.sh installs them" >&2
  exit 2
fi
case " $* " in
  *" -h "*|*" --help "*) ;;
  *)
    if [ ! -x "$registryd" ]; then
      echo "bench: no registryd binary at $registryd; build it (scripts/build.sh) or set REGISTRYD" >&2
      exit 2
    fi ;;
esac

plugin_args=()
if [ -n "${REGISTRYD_PLUGIN_DIR:-}" ]; then plugin_args=(--plugin-dir "$REGISTRYD_PLUGIN_DIR"); fi
PYTHONDONTWRITEBYTECODE=1 exec python3 "$here/bench.py" --registryd "$registryd" "${plugin_args[@]}" "$@"
