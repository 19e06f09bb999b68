#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan + UBSan and runs each for a fixed time.
# -march=native: clang 14 rejects the per-function AVX-512 target attributes of the x86 kernels
# (GCC accepts them), so the fuzz build enables the host ISA for every file instead.
#   tests/fuzz/run_fuzz.sh [SECONDS per target, default 600] [BUILD_DIR, default build-fuzz]
#                          [TARGETS, default "loader files diff native"; native = fuzz_loader
#                          on native-format files]
# Seed corpora: the hostile models, the ONNX backend test models and tensors, the demo model and
# images, .npy / IDX / stats / config files made here. Crashes land in BUILD_DIR/crashes/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECONDS_PER="${1:-600}"
B="${2:-$ROOT/build-fuzz}"
TARGETS="${3:-loader files diff native}"
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="-march=native" -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g" -DENGINE_FUZZ=ON \
  -DENGINE_SANITIZE=address,undefined >/dev/null
cmake --build "$B" -j2 --target fuzz_loader fuzz_files fuzz_diff engine_cli >/dev/null
mkdir -p "$B/corpus/loader" "$B/corpus/files" "$B/corpus/diff" "$B/crashes"
# Graph seeds for the differential target: any bytes describe a graph.
for i in $(seq 1 64); do head -c 48 /dev/urandom >"$B/corpus/diff/seed$i"; done
cp "$ROOT"/tests/fuzz/regressions/diff-* "$B/corpus/diff/"
cp "$ROOT"/tests/hostile/*.onnx "$ROOT/demo/fashion_resnet8.onnx" "$B/corpus/loader/"
{ find /usr/share -path '*onnx*' -name model.onnx -size -64k 2>/dev/null || true; } | head -400 |
  while read -r f; do cp "$f" "$B/corpus/loader/$(echo "$f" | md5sum | cut -c1-12).onnx"; done || true
# Reader seeds: a kind byte (0 npy, 1 idx, 2 pb, 3 image, 4 stats, 5 config JSON, 6 YAML) + file.
seed() { { printf "\\x$(printf %02x "$1")"; cat "$2"; } > "$B/corpus/files/$1_$(basename "$2")"; }
for f in "$ROOT"/demo/images/*.png; do seed 3 "$f"; done
{ find /usr/share -path '*onnx*' -name 'input_0.pb' -size -16k 2>/dev/null || true; } | head -50 |
  while read -r f; do seed 2 "$f"; done || true
"$B/engine" run "$ROOT/demo/fashion_resnet8.onnx" --random --batch 2 -o "$B/x.npy" >/dev/null
seed 0 "$B/x.npy"
{ zcat /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz || true; } | head -c 200 >"$B/labels.idx"
seed 1 "$B/labels.idx"
"$B/engine" quantize "$ROOT/demo/fashion_resnet8.onnx" --calib-noise 2 --stats-out "$B/stats.json" \
  -o "$B/q.onnx" >/dev/null 2>&1
seed 4 "$B/stats.json"
printf '{"defaults": {"observer": "entropy"}, "layers": [{"match": "Conv", "bits_w": 4}]}' > "$B/c.json"
seed 5 "$B/c.json"
printf 'layers:\n  - {match: "/l1/*", quantize: false}\n' > "$B/c.yaml"
seed 6 "$B/c.yaml"
# Native-format seeds (the "native" run: fuzz_loader on native files only).
mkdir -p "$B/corpus/native"
"$B/engine" quantize "$ROOT/demo/fashion_resnet8.onnx" --calib-noise 2 --format native \
  -o "$B/corpus/native/demo_int8.eng" >/dev/null 2>&1
for f in $(ls "$B"/corpus/loader/*.onnx | head -40); do
  "$B/engine" quantize "$f" --calib-noise 1 --format native -o "$B/corpus/native/$(basename "$f").eng" \
    >/dev/null 2>&1 || true
done
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in $TARGETS; do
  echo "== fuzz_$t, ${SECONDS_PER} s"
  bin="fuzz_$t"
  [ "$t" = native ] && bin=fuzz_loader
  "$B/tests/$bin" "$B/corpus/$t" -max_total_time="$SECONDS_PER" -rss_limit_mb=4096 \
    -timeout=20 -max_len=1048576 -artifact_prefix="$B/crashes/" -print_final_stats=1 2>&1 |
    grep -E "^stat::|Done|ERROR|SUMMARY|fuzz_diff:|#[0-9]+ *DONE" || true
done
ls "$B/crashes"
