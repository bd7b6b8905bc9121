#!/usr/bin/env bash
# Installs every Debian 12 package that registryd's build, tests and benchmarks need.
# Idempotent: safe to run again. Needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

BUILD_PKGS=(
  build-essential cmake pkg-config ninja-build git
  libboost-dev libboost-filesystem-dev libboost-system-dev
  libssl-dev libcpp-httplib-dev nlohmann-json3-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev catch2 libcli11-dev libcrypt-dev
  libarchive-dev libtomlplusplus-dev libbenchmark-dev prometheus-cpp-dev
)
TEST_PKGS=(
  docker-registry skopeo containerd curl openssl ca-certificates
  apache2-utils umoci jq iproute2 procps python3 binutils podman etcd-server etcd-client
)
BENCH_PKGS=(nginx-light libnginx-mod-stream wrk hey)

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}"
