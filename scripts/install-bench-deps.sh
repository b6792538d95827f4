#!/usr/bin/env bash
# The benchmark peers (not needed to build or test theta): PyTorch for Python and libtorch
# for C++, from Debian. Then re-run cmake so that bench_libtorch is built.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends python3-numpy python3-torch libtorch-dev util-linux
