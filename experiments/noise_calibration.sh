#!/usr/bin/env bash
# Table 2: resnet18 calibrated on 1, 10, 100 Gaussian-noise inputs vs 1, 10, 100 real images.
source "$(dirname "$0")/common.sh"
m=resnet18
{
  echo "### 2. resnet18: calibration on Gaussian noise vs real images (minmax, W8A8 per-channel)"
  echo
  echo "| calibration | top-1 % | loss | agrees with FP32 |"
  echo "|---|---|---|---|"
  row "FP32" "$(evaluate $m)"
  for n in 1 10 100; do
    row "$n Gaussian-noise inputs" "$(evaluate $m --int8 --calib-noise $n --compare-fp32)"
    row "$n real images" "$(evaluate $m --int8 --calib "$FASHION/train-images-idx3-ubyte.gz" \
      --calib-size $n --compare-fp32)"
  done
} | tee "$RESULTS/noise_calibration.md"
