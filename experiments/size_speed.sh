#!/usr/bin/env bash
# Table 6: model size on disk and images/s of FP32 vs INT8 (eval, batch 32).
source "$(dirname "$0")/common.sh"
{
  echo "### 6. Model size and speed, FP32 vs INT8 (engine eval, batch 32, threads=${THREADS})"
  echo
  echo "| model | FP32 bytes | INT8 bytes | FP32 images/s | INT8 images/s |"
  echo "|---|---|---|---|---|"
  for m in ${MODELS_LIST:-resnet18 vgg16_bn mobilenet_v2}; do
    f=$(evaluate $m); q=$(evaluate $m --int8 "${CALIB[@]}")
    printf '| %s | %s | %s | %.1f | %.1f |\n' "$m" "$(json_field "$f" model_bytes)" \
      "$(json_field "$q" int8_model_bytes)" "$(json_field "$f" images_per_s)" \
      "$(json_field "$q" images_per_s)"
  done
} | tee "$RESULTS/size_speed.md"
