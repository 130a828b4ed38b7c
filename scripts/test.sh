#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs dependencies, builds
# hearth with tests, and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd "${HEARTH_BUILD_DIR:-build}"
# Tests start real processes and sockets; two at a time suits a 2-core machine.
ctest --output-on-failure --timeout 900 -j "${HEARTH_TEST_JOBS:-2}"
