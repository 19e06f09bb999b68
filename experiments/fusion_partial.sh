#!/usr/bin/env bash
# Table 4: fuse none / blocks / all, and quantization starting at the first, a middle and a late
# node (everything before it stays FP32).
source "$(dirname "$0")/common.sh"
m=resnet18
f=$(model_file $m)
nodes=$("$ENGINE" inspect "$f" | awk '$2 ~ /^(FusedConv|Conv|NhwcConv)$/ {gsub("\047", "", $3); print $3}')
first=$(echo "$nodes" | sed -n 1p)
middle=$(echo "$nodes" | sed -n "$(( $(echo "$nodes" | wc -l) / 2 ))p")
late=$(echo "$nodes" | tail -n 3 | head -n 1)
{
  echo "### 4. resnet18: fusion presets and quantizing from a later node (minmax, W8A8)"
  echo
  echo "| setting | top-1 % | loss | agrees with FP32 |"
  echo "|---|---|---|---|"
  for fuse in none blocks all; do
    row "--fuse $fuse" "$(evaluate $m --fuse $fuse --int8 "${CALIB[@]}" --compare-fp32)"
  done
  for n in "$first" "$middle" "$late"; do
    row "--quantize-from $n" "$(evaluate $m --int8 "${CALIB[@]}" --quantize-from "$n" --compare-fp32)"
  done
} | tee "$RESULTS/fusion_partial.md"
