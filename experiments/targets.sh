#!/usr/bin/env bash
# Table 0: the PTQ targets on the whole Fashion-MNIST test set (10,000 images, whatever LIMIT
# says): W8A8 per-channel with the observers ONNX Runtime's quantizer offers plus ema, avg and mse, and
# per-tensor minmax, next to the ONNX Runtime figures listed in ../shared/README.md.
source "$(dirname "$0")/common.sh"
TEST=(--data "$FASHION/t10k-images-idx3-ubyte.gz" --labels "$FASHION/t10k-labels-idx1-ubyte.gz")
# ONNX Runtime reference (../shared/README.md): top-1 (agreement with its FP32 model).
ort() {
  case "$1/$2" in
    resnet18/minmax-pc) echo "94.91 (9977)" ;; resnet18/entropy-pc) echo "94.91 (9977)" ;;
    resnet18/percentile-pc) echo "94.92 (9978)" ;; resnet18/minmax-pt) echo "94.85 (9968)" ;;
    vgg16_bn/minmax-pc) echo "94.47 (9983)" ;; vgg16_bn/entropy-pc) echo "94.47 (9983)" ;;
    vgg16_bn/percentile-pc) echo "94.44 (9980)" ;; vgg16_bn/minmax-pt) echo "94.47 (9978)" ;;
    mobilenet_v2/minmax-pc) echo "94.92 (9959)" ;; mobilenet_v2/entropy-pc) echo "94.92 (9959)" ;;
    mobilenet_v2/percentile-pc) echo "94.89 (9966)" ;; mobilenet_v2/minmax-pt) echo "94.62 (9838)" ;;
    *) echo "-" ;;
  esac
}
{
  echo "### 0. Targets: W8A8 on all 10,000 test images vs ONNX Runtime's quantizer"
  echo
  echo "Calibration: first 256 training images. ONNX Runtime column: its top-1 % (agreement with"
  echo "its FP32 model) from ../shared/README.md; its vgg16_bn figures are for the float32-weight"
  echo "original, ours for vgg16_bn_fp16w.onnx (FP32 top-1 94.50 %)."
  echo
  echo "| model / setting | top-1 % | loss | agrees with FP32 | ONNX Runtime |"
  echo "|---|---|---|---|---|"
  for m in ${MODELS_LIST:-resnet18 vgg16_bn mobilenet_v2}; do
    stats="$RESULTS/$m.stats.json"
    "$ENGINE" quantize "$(model_file "$m")" "${RECIPE[@]}" "${CALIB[@]}" --stats-out "$stats" \
      -o "$RESULTS/$m.int8.onnx" >/dev/null 2>&1
    fp32=$(evaluate "$m")
    echo "$(row "$m FP32" "$fp32") - |"
    for o in ${OBSERVERS:-minmax ema avg entropy percentile mse}; do
      echo "$(row "$m W8A8 $o per-channel" "$(evaluate "$m" --int8 --stats-in "$stats" \
        --observer "$o" --compare-fp32)") $(ort "$m" "$o-pc") |"
    done
    echo "$(row "$m W8A8 minmax per-tensor" "$(evaluate "$m" --int8 --stats-in "$stats" \
      --per-tensor --compare-fp32)") $(ort "$m" minmax-pt) |"
  done
} | tee "$RESULTS/targets.md"
