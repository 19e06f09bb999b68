#!/usr/bin/env bash
# Model load time: ONNX file vs the same model as a native file (--format native).
#   bench/load_time.sh [BUILD_DIR, default build] [ROUNDS, default 7]
# Per model: `engine run FILE --random --threads 1`, ONNX and native alternating; the table
# shows the median of the engine's own "loaded in" figure and of the whole process's wall time
# (load + plan + weight packing + one batch-1 run + exit).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="${1:-$ROOT/build}"
ROUNDS="${2:-7}"
DATA="${ENGINE_DATA:-$ROOT/../shared}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
E="$B/engine"
models=(
  "fashion resnet18 QAT W8A8 (QDQ)|$DATA/models/fashion/resnet18_qat_w8a8_qdq.onnx|"
  "fashion mobilenet_v2 (ORT QDQ)|$DATA/models/fashion/mobilenet_v2_qdq_minmax_pc_ort.onnx|"
  "ImageNet mobilenetv2-12-int8 (QLinear)|$DATA/imagenet/models/mobilenetv2-12-int8.onnx|"
  "fashion vgg16_bn, engine PTQ INT8|$DATA/models/fashion/vgg16_bn_fp16w.onnx|--calib-noise 4"
)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
run_once() {  # prints "load_ms wall_ms"
  local t0 t1 out
  t0=$(date +%s%N)
  out=$("$E" run "$1" --random --threads 1 2>&1)
  t1=$(date +%s%N)
  echo "$(echo "$out" | sed -n 's/.*loaded in \([0-9.]*\) ms.*/\1/p') $(( (t1 - t0) / 1000000 ))"
}
printf "| model | ONNX bytes | native bytes | ONNX load ms | native load ms | load ratio | ONNX wall ms | native wall ms | wall ratio |\n|---|---|---|---|---|---|---|---|---|\n"
for m in "${models[@]}"; do
  IFS='|' read -r name src flags <<<"$m"
  onnx="$src"
  if [ -n "$flags" ]; then  # FP32 source: quantize once, keep both forms
    onnx="$TMP/q.onnx"
    # shellcheck disable=SC2086
    "$E" quantize "$src" $flags --stats-out "$TMP/s.json" -o "$onnx" >/dev/null 2>&1
  fi
  "$E" quantize "$onnx" --format native -o "$TMP/m.eng" >/dev/null 2>&1
  : >"$TMP/a"; : >"$TMP/b"
  for _ in $(seq "$ROUNDS"); do
    run_once "$onnx" >>"$TMP/a"
    run_once "$TMP/m.eng" >>"$TMP/b"
  done
  la=$(cut -d' ' -f1 "$TMP/a" | median); lb=$(cut -d' ' -f1 "$TMP/b" | median)
  wa=$(cut -d' ' -f2 "$TMP/a" | median); wb=$(cut -d' ' -f2 "$TMP/b" | median)
  printf "| %s | %s | %s | %.1f | %.1f | %.2f | %s | %s | %.2f |\n" "$name" "$(stat -c %s "$onnx")" \
    "$(stat -c %s "$TMP/m.eng")" "$la" "$lb" "$(awk "BEGIN {print $lb / $la}")" "$wa" "$wb" \
    "$(awk "BEGIN {print $wb / $wa}")"
done
