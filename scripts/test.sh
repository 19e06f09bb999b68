#!/usr/bin/env bash
# Installs dependencies, builds with warnings as errors, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DENGINE_WERROR=ON
cmake --build build -j2
ctest --test-dir build --output-on-failure
# ThreadSanitizer: the concurrency tests in a separate build. libgomp is not instrumented, so
# OMP_NUM_THREADS=1 keeps OpenMP from starting threads TSan cannot see synchronize; the threads
# checked are the application's (8 sessions on one shared model).
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENGINE_SANITIZE=thread -DENGINE_WERROR=ON
cmake --build build-tsan -j2 --target concurrency_tests
OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/concurrency_tests
