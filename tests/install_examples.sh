#!/usr/bin/env bash
# The installed package, as an application sees it: `cmake --install` into a temporary prefix,
# examples/ built with find_package(engine) (the small C++ API and the C API on the shared library,
# the full C++ API on the static one) and with pkg-config, both run in INT8 on every demo image from a stats file written
# by the installed CLI; libengine.so must export nothing but the C API.
#   install_examples.sh BUILD_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:?usage: install_examples.sh BUILD_DIR}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
P="$TMP/prefix"
cmake --install "$BUILD" --prefix "$P" >/dev/null
LIB="$(dirname "$(find "$P" -name libengine.so | head -1)")"
MODEL="$ROOT/demo/fashion_resnet8.onnx"
"$P/bin/engine" quantize "$MODEL" --calib "$ROOT/demo/images" --scale 1/255 --mean 0.286 \
  --std 0.353 --stats-out "$TMP/stats.json" -o "$TMP/q.onnx" >/dev/null 2>&1

cmake -S "$ROOT/examples" -B "$TMP/build" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release \
  >/dev/null
cmake --build "$TMP/build" -j2 >/dev/null
# The C example again, with pkg-config instead of CMake.
PKG_CONFIG_PATH="$LIB/pkgconfig" cc -O2 -o "$TMP/classify_pc" "$ROOT/examples/classify.c" \
  $(PKG_CONFIG_PATH="$LIB/pkgconfig" pkg-config --cflags --libs engine) -Wl,-rpath,"$LIB" -lm

fails=0
for img in "$ROOT"/demo/images/*.png; do
  want="$(basename "$img")"
  want="${want%%_*}"
  for ex in "$TMP/build/classify_cpp" "$TMP/build/classify_full" "$TMP/build/classify_c" \
    "$TMP/classify_pc"; do
    out="$("$ex" "$MODEL" "$TMP/stats.json" "$img" 0.00392156862745098 0.286 0.353)"
    if [[ "$out" != "class $want "* ]]; then
      echo "FAIL $(basename "$ex") on $(basename "$img"): '$out', expected class $want"
      fails=$((fails + 1))
    fi
  done
done
# Errors come back as messages and exit code 1, not crashes.
for ex in "$TMP/build/classify_cpp" "$TMP/build/classify_full" "$TMP/build/classify_c"; do
  set +e
  msg="$("$ex" /no/such.onnx "$TMP/stats.json" "$ROOT/demo/images/7_sneaker.png" 2>&1)"
  rc=$?
  set -e
  if [[ $rc -ne 1 || "$msg" != *"/no/such.onnx"* ]]; then
    echo "FAIL $(basename "$ex") on a missing model: exit $rc, '$msg'"
    fails=$((fails + 1))
  fi
done
exported="$(nm -D --defined-only "$LIB/libengine.so" | awk '{print $3}' | grep -v '^engine_' || true)"
if [[ -n "$exported" ]]; then
  echo "FAIL libengine.so exports symbols outside the C API:"
  echo "$exported" | head
  fails=$((fails + 1))
fi
[[ -f "$P/include/engine/engine_c.h" && -f "$P/include/engine/engine.h" ]] || {
  echo "FAIL headers not installed"
  fails=$((fails + 1))
}
if [[ $fails -ne 0 ]]; then exit 1; fi
echo "installed package: 4 example builds x 10 demo images classified, errors clean, C API only exported"
