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
# AddressSanitizer + UndefinedBehaviorSanitizer: the unit, CLI (hostile models included) and ONNX
# conformance tests and the differential random graphs in a separate -O1 build; any report fails
# the run.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 \
  -DENGINE_SANITIZE=address,undefined -DENGINE_WERROR=ON
cmake --build build-asan -j2 --target engine_tests onnx_node_tests engine_cli fuzz_diff_standalone \
  fuzz_loader_standalone
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ENGINE_CLI="$PWD/build-asan/engine" build-asan/tests/engine_tests -tse=models
build-asan/tests/onnx_node_tests --skips tests/onnx_node_skips.txt
build-asan/tests/fuzz_diff_standalone --random 300 1 tests/fuzz/regressions/diff-*
build-asan/tests/fuzz_loader_standalone tests/fuzz/regressions/loader-* tests/hostile/*.onnx
