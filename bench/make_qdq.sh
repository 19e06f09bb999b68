#!/usr/bin/env bash
# Makes ONNX Runtime-style INT8 QDQ models (per-channel int8 weights, uint8 activations, min/max
# calibration) of the torchvision models in bench/models, for engine-vs-ONNX-Runtime INT8 speed
# comparisons: bench/models/NAME_qdq.onnx. Calibration: 16 standard-normal 3x224x224 inputs
# (seed 0) -- fine for speed, meaningless for accuracy (the weights are random too).
# Needs Debian's python3-onnx and python3-numpy, and onnxruntime-node in bench/node_modules
# (`node bench/compare.js` installs it). Uses $ENGINE_DATA/tools/qdq_quantize.py.
set -euo pipefail
cd "$(dirname "$0")"
DATA="${ENGINE_DATA:-$(cd ../.. && pwd)/shared}"
calib=models/calib16.f32
[ -f "$calib" ] || /usr/bin/python3 -c "
import numpy as np
np.random.default_rng(0).standard_normal((16, 3, 224, 224), dtype=np.float32).tofile('$calib')"
for m in "${@:-resnet18 resnet50 mobilenet_v2 vgg16_bn}"; do
  for name in $m; do
    [ -f "models/$name.onnx" ] || { echo "models/$name.onnx missing: run node compare.js --models $name first" >&2; exit 1; }
    [ -f "models/${name}_qdq.onnx" ] && continue
    NODE_PATH="$PWD/node_modules" /usr/bin/python3 "$DATA/tools/qdq_quantize.py" \
      "models/$name.onnx" "models/${name}_qdq.onnx" "$calib"
  done
done
