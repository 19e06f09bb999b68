#!/usr/bin/env bash
# Table 8: the quantization debugger's fixes on mobilenet_v2.
#   a) per-tensor weights: what --equalize / --bias-correct recover of the per-channel accuracy;
#   b) W4A8: `engine debug --max-drop 0.3` picks the layers to keep in FP32; the config it
#      writes is then evaluated by `engine eval --config` (all 10,000 test images).
LIMIT=10000  # always the whole test set (the --max-drop target is stated on it)
source "$(dirname "$0")/common.sh"
m=mobilenet_v2
cfg="$RESULTS/mobilenet_v2_w4a8_fp32_layers.yaml"
{
  echo "### 8. Debugger fixes on mobilenet_v2 (W8A8 unless noted; all 10,000 test images)"
  echo
  echo "| model / setting | top-1 % | loss | agrees with FP32 |"
  echo "|---|---|---|---|"
  row "$m FP32" "$(evaluate $m)"
  row "$m FP32 equalized (ReLU6 between pairs -> ReLU)" "$(evaluate $m --equalize)"
  for f in "" "--per-tensor" "--per-tensor --equalize" "--per-tensor --bias-correct" \
           "--per-tensor --equalize --bias-correct"; do
    label="per-channel"; [ -n "$f" ] && label="${f//--/}"
    row "$m W8A8 minmax $label" "$(evaluate $m --int8 "${CALIB[@]}" $f --compare-fp32)"
  done
  row "$m W4A8 minmax per-channel" \
    "$(evaluate $m --int8 "${CALIB[@]}" --bits-w 4 --compare-fp32)"
  "$ENGINE" debug "$(model_file $m)" "${RECIPE[@]}" --data "$FASHION/t10k-images-idx3-ubyte.gz" \
    --labels "$FASHION/t10k-labels-idx1-ubyte.gz" "${CALIB[@]}" --bits-w 4 --samples 256 \
    --threads "$THREADS" --max-drop 0.3 --config-out "$cfg" >"$RESULTS/debug_w4a8.txt" 2>&1
  row "$m W4A8 minmax, debug --max-drop 0.3 config ($(grep -c 'quantize: false' "$cfg") layers FP32)" \
    "$(evaluate $m --int8 "${CALIB[@]}" --bits-w 4 --config "$cfg" --compare-fp32)"
  echo
  echo "Layers \`engine debug --max-drop 0.3\` kept in FP32 (ranked by the isolated mode on 256"
  echo "test images, accuracy checked on all 10,000):"
  echo
  grep 'match:' "$cfg" | sed 's/.*match: "\(.*\)"/- `\1`/'
} | tee "$RESULTS/debug_dfq.md"
