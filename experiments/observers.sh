#!/usr/bin/env bash
# Table 1: FP32 vs W8A8 for each model and each observer, per-channel and per-tensor weights.
# Calibration statistics are computed once per model (--stats-out) and reused (--stats-in) by
# every observer, so the table isolates the observers.
source "$(dirname "$0")/common.sh"
OBSERVERS="${OBSERVERS:-minmax ema avg n_std percentile entropy mse}"
out="$RESULTS/observers.md"
{
  echo "### 1. FP32 vs W8A8 per observer (calibration: first 256 training images; $LIMIT test images)"
  echo
  echo "| model / setting | top-1 % | loss | agrees with FP32 |"
  echo "|---|---|---|---|"
  for m in ${MODELS_LIST:-resnet18 vgg16_bn mobilenet_v2}; do
    row "$m FP32" "$(evaluate "$m")"
    stats="$RESULTS/$m.stats.json"
    "$ENGINE" quantize "$(model_file "$m")" "${RECIPE[@]}" "${CALIB[@]}" --stats-out "$stats" \
      -o "$RESULTS/$m.int8.onnx" >/dev/null 2>&1
    for gran in per-channel per-tensor; do
      flag=(); [ "$gran" = per-tensor ] && flag=(--per-tensor)
      for o in $OBSERVERS; do
        row "$m W8A8 $o $gran" "$(evaluate "$m" --int8 --stats-in "$stats" --observer "$o" \
          "${flag[@]}" --compare-fp32)"
      done
    done
  done
} | tee "$out"
