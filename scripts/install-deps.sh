#!/usr/bin/env bash
# Installs everything the engine and its tests need, from Debian 12 packages. Run as root.
# chromium: the test that renders `engine debug --report` pages headless.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  g++ cmake make pkg-config git clang-format \
  libdnnl-dev ocl-icd-opencl-dev opencl-c-headers libprotobuf-dev protobuf-compiler libonnx-dev libstb-dev doctest-dev \
  nlohmann-json3-dev libcli11-dev libyaml-cpp-dev zlib1g-dev libbenchmark-dev \
  libonnx-testdata dataset-fashion-mnist chromium >/dev/null
# Node.js runs ONNX Runtime (npm package onnxruntime-node) for the QDQ export round-trip test and
# the benchmarks; skipped when node and npm are already there (e.g. from another repository).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
echo "dependencies installed"
