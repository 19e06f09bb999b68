#!/usr/bin/env bash
# Table 5: W4A4 and W2A4 post-training quantization (large drops expected; the QAT models of
# ../shared recover them).
source "$(dirname "$0")/common.sh"
{
  echo "### 5. Low-bit post-training quantization (per-channel weights)"
  echo
  echo "| model / setting | top-1 % | loss | agrees with FP32 |"
  echo "|---|---|---|---|"
  for m in ${MODELS_LIST:-resnet18 vgg16_bn mobilenet_v2}; do
    for bits in "4 4" "2 4"; do
      set -- $bits
      for o in minmax mse; do
        row "$m W$1A$2 $o" "$(evaluate $m --int8 "${CALIB[@]}" --bits-w $1 --bits-a $2 \
          --observer $o --weight-observer $o --compare-fp32)"
      done
    done
  done
} | tee "$RESULTS/low_bits.md"
