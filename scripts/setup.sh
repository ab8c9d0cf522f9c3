#!/usr/bin/env bash
# Installs what the project builds against (Debian packages only; idempotent).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(
  cmake ninja-build g++ pkg-config
  libcli11-dev nlohmann-json3-dev libcurl4-openssl-dev libhdf5-dev
  libbenchmark-dev libgtest-dev libgmock-dev libsentencepiece-dev libopenblas-dev
  libcpp-httplib-dev libyaml-cpp-dev zlib1g-dev
  python3-numpy   # tests: the .npy reader is checked on files numpy wrote (tests/accuracy/npy_test.cc)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "setup: all ${#PKGS[@]} packages present"
