#!/usr/bin/env bash
# QDQ export round trip (ctest "ort_roundtrip"): the engine quantizes each Fashion-MNIST FP32 model
# (W8A8, 256 calibration images), writes it with `engine quantize --format qdq`, and ONNX Runtime
# (onnxruntime-node, installed into bench/node_modules on first use) evaluates the file on the
# 10,000 test images with shared/tools/fashion_ref.js. Its top-1 must be within 0.2 points of the
# engine's own INT8 top-1 with the same settings.
# Env: ENGINE_CLI (the engine binary), ENGINE_DATA (shared data; when set, missing data fails).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE=${ENGINE_CLI:?set ENGINE_CLI to the engine binary}
DATA=${ENGINE_DATA:-../shared}
if [ ! -d "$DATA/models/fashion" ]; then
  if [ -n "${ENGINE_DATA:-}" ]; then echo "ENGINE_DATA=$DATA has no models/fashion" >&2; exit 1; fi
  echo "skipped: no shared data in $DATA"; exit 0
fi
FM=/usr/share/datasets/fashion-mnist
[ -f "$FM/t10k-images-idx3-ubyte.gz" ] || { echo "install dataset-fashion-mnist" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "install nodejs and npm" >&2; exit 1; }
if [ ! -d bench/node_modules/onnxruntime-node ]; then
  # The package ships its CPU library; skip the post-install download of other providers.
  (cd bench && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund >/dev/null)
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
zcat "$FM/t10k-images-idx3-ubyte.gz" | tail -c +17 >"$WORK/x.u8"  # raw pixels after the header
zcat "$FM/t10k-labels-idx1-ubyte.gz" | tail -c +9 >"$WORK/y.u8"
FLAGS="--pad 2 --channels 3 --scale 1/255 --mean 0.2860405969887955 --std 0.35302424451492254"
QUANT="--calib $FM/train-images-idx3-ubyte.gz --calib-size 256"
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s.trim().split("\n").pop())[process.argv[1]]))' "$1"; }
status=0
for model in resnet18_fp32 mobilenet_v2_fp32; do
  src="$DATA/models/fashion/$model.onnx"
  ours=$("$ENGINE" eval "$src" --int8 $QUANT $FLAGS --data "$FM/t10k-images-idx3-ubyte.gz" \
    --labels "$FM/t10k-labels-idx1-ubyte.gz" --batch 100 --json 2>/dev/null | json top1)
  "$ENGINE" quantize "$src" $QUANT $FLAGS --format qdq -o "$WORK/$model.qdq.onnx" >/dev/null
  theirs=$(NODE_PATH=bench/node_modules node "$DATA/tools/fashion_ref.js" "$WORK/x.u8" "$WORK/y.u8" \
    "$WORK" "$WORK/$model.qdq.onnx" | json top1)
  verdict=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { d = a - b; if (d < 0) d = -d; print (d <= 0.2 + 1e-9) ? "ok" : "FAIL" }')
  echo "$model: engine INT8 top-1 $ours %, ONNX Runtime on the exported QDQ file $theirs % -> $verdict"
  [ "$verdict" = ok ] || status=1
done
exit $status
