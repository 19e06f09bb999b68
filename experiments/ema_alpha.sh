#!/usr/bin/env bash
# Table 3: mobilenet_v2 with the moving-average (ema) observer, alpha 0.5 / 0.9 / 0.99, vs minmax.
# Calibration batch 32 (8 batches of the 256 images); the EMA is updated once per batch.
source "$(dirname "$0")/common.sh"
m=mobilenet_v2
{
  echo "### 3. mobilenet_v2: moving-average observer (per batch of 32) vs minmax"
  echo
  echo "| observer | top-1 % | loss | agrees with FP32 |"
  echo "|---|---|---|---|"
  row "FP32" "$(evaluate $m)"
  row "minmax" "$(evaluate $m --int8 "${CALIB[@]}" --observer minmax --compare-fp32)"
  for a in 0.5 0.9 0.99; do
    row "ema alpha $a" "$(evaluate $m --int8 "${CALIB[@]}" --observer ema --alpha $a --compare-fp32)"
  done
  row "ema alpha 0.9, per sample" "$(evaluate $m --int8 "${CALIB[@]}" --observer ema --alpha 0.9 \
    --ema-per sample --compare-fp32)"
} | tee "$RESULTS/ema_alpha.md"
