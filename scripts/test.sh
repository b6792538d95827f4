#!/usr/bin/env bash
# Installs what is missing, builds theta (Release) with its tests and runs them all through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
cd build && BOOST_TEST_COLOR_OUTPUT=no ctest --output-on-failure -j"$(nproc)"
