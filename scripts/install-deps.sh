#!/usr/bin/env bash
# Installs theta's Debian build dependencies when they are missing (fresh machine, CI).
# Extend: add a package name to PKGS.
set -euo pipefail
PKGS=(cmake g++ make libxtensor-dev libxtensor-blas-dev libopenblas-dev libboost-test-dev python3-numpy
      clang libclang-rt-dev zlib1g-dev nlohmann-json3-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist wamerican doxygen
      libdnnl-dev ocl-icd-opencl-dev opencl-headers fortunes libonnx-dev libprotobuf-dev libonnx-testdata)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
