# Shared settings of the experiment scripts. Each script prints a Markdown table and writes it to
# experiments/results/<script>.md; run_all.sh collects them into experiments/RESULTS.md.
#   ENGINE_DATA  shared data folder (default ../shared)
#   ENGINE       the engine binary (default build/engine)
#   LIMIT        test images per evaluation (default 10000 = the whole Fashion-MNIST test set)
#   THREADS      threads (default: all cores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENGINE="${ENGINE:-$ROOT/build/engine}"
ENGINE_DATA="${ENGINE_DATA:-$ROOT/../shared}"
LIMIT="${LIMIT:-10000}"
THREADS="${THREADS:-0}"
FASHION=/usr/share/datasets/fashion-mnist
MODELS="$ENGINE_DATA/models/fashion"
RESULTS="$ROOT/experiments/results"
mkdir -p "$RESULTS"
[ -x "$ENGINE" ] || { echo "build the engine first ($ENGINE missing)" >&2; exit 1; }
[ -d "$MODELS" ] || { echo "ENGINE_DATA=$ENGINE_DATA has no models/fashion" >&2; exit 1; }

# The models/fashion recipe; calibration = first 256 training images (file order).
RECIPE=(--pad 2 --channels 3 --scale 1/255 --mean 0.2860405969887955 --std 0.35302424451492254)
TEST=(--data "$FASHION/t10k-images-idx3-ubyte.gz" --labels "$FASHION/t10k-labels-idx1-ubyte.gz"
      --limit "$LIMIT")
CALIB=(--calib "$FASHION/train-images-idx3-ubyte.gz" --calib-size 256)

model_file() {  # short name -> file
  case "$1" in
    resnet18) echo "$MODELS/resnet18_fp32.onnx" ;;
    vgg16_bn) echo "$MODELS/vgg16_bn_fp16w.onnx" ;;
    mobilenet_v2) echo "$MODELS/mobilenet_v2_fp32.onnx" ;;
    *) echo "$MODELS/$1.onnx" ;;
  esac
}

# json_field JSON KEY -> the value of a top-level number/string field.
json_field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,}\"]*\).*/\1/p" <<<"$1"; }

# evaluate MODEL [flags...] -> one JSON line (engine eval --json).
evaluate() {
  local model="$1"; shift
  "$ENGINE" eval "$(model_file "$model")" "${RECIPE[@]}" "${TEST[@]}" --threads "$THREADS" \
    --json "$@"
}

# row LABEL JSON -> "| label | top-1 | loss | agree |"
row() {
  local top1 loss agree
  top1=$(json_field "$2" top1); loss=$(json_field "$2" loss); agree=$(json_field "$2" agree_with_fp32)
  printf '| %s | %.2f | %.4f | %s |\n' "$1" "$top1" "$loss" "${agree:--}"
}
