// Tests of ops/pool.cpp (MaxPool, AveragePool, LpPool, Global*Pool) and ops/pad_resize.cpp
// (Pad, Resize, Upsample). Expected values are worked out by hand in the comments.
#include <doctest/doctest.h>

#include <numeric>

#include "ops/ops.h"
#include "tests/op_test_util.h"

namespace {

using engine::Attributes;
using engine::Dims;
using engine::DType;
using engine::Tensor;
using engine::test::check_close;
using engine::test::NodeSpec;
using engine::test::run_node;

Tensor F(Dims shape, std::vector<float> v) {
  return Tensor::from_vector<float>(std::move(shape), v);
}
Tensor I64(Dims shape, std::vector<int64_t> v) {
  return Tensor::from_vector<int64_t>(std::move(shape), v);
}
// 0, 1, 2, ... (n values) as float, or start, start+1, ...
Tensor ramp(Dims shape, float start = 0) {
  const int64_t n = engine::checked_numel(shape);
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return F(std::move(shape), v);
}

struct A {
  Attributes a;
  A& i(const std::string& n, int64_t v) { return a.set(n, v), *this; }
  A& f(const std::string& n, float v) { return a.set(n, v), *this; }
  A& s(const std::string& n, std::string v) { return a.set(n, std::move(v)), *this; }
  A& is(const std::string& n, std::vector<int64_t> v) { return a.set(n, std::move(v)), *this; }
  A& fs(const std::string& n, std::vector<float> v) { return a.set(n, std::move(v)), *this; }
};

NodeSpec node(const std::string& op, const A& attrs, int opset = 17, int outputs = 1) {
  NodeSpec s;
  s.op_type = op;
  s.attrs = attrs.a;
  s.opset = opset;
  s.num_outputs = outputs;
  return s;
}

engine::OpRegistry pool_registry() {
  engine::OpRegistry r;
  engine::register_pool_ops(r);
  return r;
}
engine::OpRegistry pad_registry() {
  engine::OpRegistry r;
  engine::register_pad_resize_ops(r);
  return r;
}

}  // namespace

// ============================== MaxPool ==============================

TEST_CASE("MaxPool 3x3 stride 2 pad 1 on a 5x5 ramp, with Indices") {
  auto r = pool_registry();
  // x[i][j] = 5i + j. Windows per axis start at -1, 1, 3 -> valid rows {0,1}, {1,2,3}, {3,4};
  // the max is at the largest row and column: rows 1, 3, 4 and columns 1, 3, 4.
  A at;
  at.is("kernel_shape", {3, 3}).is("strides", {2, 2}).is("pads", {1, 1, 1, 1});
  auto out = run_node(r, node("MaxPool", at, 12, 2), {ramp({1, 1, 5, 5})});
  check_close(out[0], {6, 8, 9, 16, 18, 19, 21, 23, 24}, {1, 1, 3, 3});
  REQUIRE(out[1].dtype() == DType::I64);
  // Row-major flat index of the max = its value.
  CHECK(out[1].to_int_vector() == std::vector<int64_t>{6, 8, 9, 16, 18, 19, 21, 23, 24});

  // storage_order=1: column-major spatial index row + 5 * col.
  at.i("storage_order", 1);
  out = run_node(r, node("MaxPool", at, 12, 2), {ramp({1, 1, 5, 5})});
  CHECK(out[1].to_int_vector() == std::vector<int64_t>{6, 16, 21, 8, 18, 23, 9, 19, 24});
}

TEST_CASE("MaxPool Indices include the batch/channel offset") {
  auto r = pool_registry();
  // 1x2x1x4, kernel 2 stride 2: channel 0 = [0,1,2,3], channel 1 = [4,5,6,7] (value = index).
  A at;
  at.is("kernel_shape", {1, 2}).is("strides", {1, 2});
  auto out = run_node(r, node("MaxPool", at, 12, 2), {ramp({1, 2, 1, 4})});
  check_close(out[0], {1, 3, 5, 7}, {1, 2, 1, 2});
  CHECK(out[1].to_int_vector() == std::vector<int64_t>{1, 3, 5, 7});
}

TEST_CASE("MaxPool ceil_mode (ONNX test_maxpool_2d_ceil)") {
  auto r = pool_registry();
  // 4x4 of 1..16, kernel 3 stride 2: floor gives 1, ceil gives 2 -> windows {0,1,2}, {2,3}.
  A at;
  at.is("kernel_shape", {3, 3}).is("strides", {2, 2}).i("ceil_mode", 1);
  auto out = run_node(r, node("MaxPool", at, 12), {ramp({1, 1, 4, 4}, 1)});
  check_close(out[0], {11, 12, 15, 16}, {1, 1, 2, 2});
  at.i("ceil_mode", 0);
  out = run_node(r, node("MaxPool", at, 12), {ramp({1, 1, 4, 4}, 1)});
  check_close(out[0], {11}, {1, 1, 1, 1});
}

TEST_CASE("MaxPool ceil_mode drops a window starting in the right padding") {
  auto r = pool_registry();
  // 2x2 input, kernel 1, stride 2, ceil: ceil((2-1)/2)+1 = 2, but the 2nd window would start at
  // 2 >= in + pad_begin = 2, so it is dropped -> 1x1 (ONNX
  // maxpool_2d_ceil_output_size_reduce_by_one).
  A at;
  at.is("kernel_shape", {1, 1}).is("strides", {2, 2}).i("ceil_mode", 1);
  auto out = run_node(r, node("MaxPool", at), {F({1, 1, 2, 2}, {1, 2, 3, 4})});
  check_close(out[0], {1}, {1, 1, 1, 1});
  // 1-D [1,2,3], kernel 1, stride 2, pads [0,1]: ceil(3/2)+1 = 3, last window starts at 4 >= 3
  // -> dropped, output [1, 3].
  A b;
  b.is("kernel_shape", {1}).is("strides", {2}).is("pads", {0, 1}).i("ceil_mode", 1);
  out = run_node(r, node("MaxPool", b), {F({1, 1, 3}, {1, 2, 3})});
  check_close(out[0], {1, 3}, {1, 1, 2});
}

TEST_CASE("MaxPool 1-D ceil_mode partial last window, dilations, auto_pad") {
  auto r = pool_registry();
  const Tensor x = F({1, 1, 5}, {1, 2, 3, 4, 5});
  {  // kernel 2 stride 2 ceil: windows {0,1}, {2,3}, {4}
    A at;
    at.is("kernel_shape", {2}).is("strides", {2}).i("ceil_mode", 1);
    check_close(run_node(r, node("MaxPool", at), {x})[0], {2, 4, 5}, {1, 1, 3});
  }
  {  // dilation 2, kernel 2: taps {i, i+2}
    A at;
    at.is("kernel_shape", {2}).is("dilations", {2});
    auto out = run_node(r, node("MaxPool", at), {F({1, 1, 6}, {1, 5, 2, 8, 3, 7})});
    check_close(out[0], {2, 8, 3, 8}, {1, 1, 4});
  }
  {  // SAME_UPPER kernel 2: total pad 1 at the end -> windows {0,1} .. {4,pad}
    A at;
    at.is("kernel_shape", {2}).s("auto_pad", "SAME_UPPER");
    check_close(run_node(r, node("MaxPool", at), {x})[0], {2, 3, 4, 5, 5}, {1, 1, 5});
    at.s("auto_pad", "SAME_LOWER");  // pad at the beginning -> {pad,0}, {0,1} ...
    check_close(run_node(r, node("MaxPool", at), {x})[0], {1, 2, 3, 4, 5}, {1, 1, 5});
  }
  {  // SAME_UPPER kernel 3 stride 2: out ceil(5/2)=3, total pad 2*2+3-5=2 -> 1 each side
    A at;
    at.is("kernel_shape", {3}).is("strides", {2}).s("auto_pad", "SAME_UPPER");
    check_close(run_node(r, node("MaxPool", at), {x})[0], {2, 4, 5}, {1, 1, 3});
  }
  {  // VALID kernel 2 stride 2: floor((5-2)/2)+1 = 2
    A at;
    at.is("kernel_shape", {2}).is("strides", {2}).s("auto_pad", "VALID");
    check_close(run_node(r, node("MaxPool", at), {x})[0], {2, 4}, {1, 1, 2});
  }
}

TEST_CASE("MaxPool 2-D dilations (ONNX test_maxpool_2d_dilations)") {
  auto r = pool_registry();
  A at;
  at.is("kernel_shape", {2, 2}).is("dilations", {2, 2});
  // 4x4 of 1..16: window (0,0) taps rows/cols {0,2} -> max 11; (0,1) -> 12; ...
  auto out = run_node(r, node("MaxPool", at), {ramp({1, 1, 4, 4}, 1)});
  check_close(out[0], {11, 12, 15, 16}, {1, 1, 2, 2});
}

TEST_CASE("MaxPool 3-D and 2 channels") {
  auto r = pool_registry();
  A at;
  at.is("kernel_shape", {2, 2, 2});
  auto out = run_node(r, node("MaxPool", at), {ramp({1, 2, 2, 2, 2})});
  check_close(out[0], {7, 15}, {1, 2, 1, 1, 1});
  // 3-D with stride: 1x1x2x2x4 ramp, kernel (2,1,2) stride (1,1,2) -> out 1x1x1x2x2:
  // x[d][h][w] = 8d + 4h + w; max over d in {0,1}, w in {2o, 2o+1}: 8 + 4h + 2o + 1.
  A b;
  b.is("kernel_shape", {2, 1, 2}).is("strides", {1, 1, 2});
  out = run_node(r, node("MaxPool", b), {ramp({1, 1, 2, 2, 4})});
  check_close(out[0], {9, 11, 13, 15}, {1, 1, 1, 2, 2});
}

TEST_CASE("MaxPool int8 / uint8: padding never wins") {
  auto r = pool_registry();
  A at;
  at.is("kernel_shape", {2}).is("pads", {1, 1});
  auto out =
      run_node(r, node("MaxPool", at, 12), {Tensor::from_vector<int8_t>({1, 1, 2}, {-5, -3})});
  REQUIRE(out[0].dtype() == DType::I8);
  check_close(out[0], {-5, -3, -3}, {1, 1, 3});
  A b;
  b.is("kernel_shape", {2, 2});
  out = run_node(r, node("MaxPool", b, 12),
                 {Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {1, 200, 3, 4})});
  REQUIRE(out[0].dtype() == DType::U8);
  check_close(out[0], {200}, {1, 1, 1, 1});
}

TEST_CASE("MaxPool errors") {
  auto r = pool_registry();
  const Tensor x = ramp({1, 1, 4, 4});
  A none;
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", none), {x}), doctest::Contains("kernel_shape"),
                       engine::Error);
  A k1;
  k1.is("kernel_shape", {2});
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", k1), {x}), doctest::Contains("spatial dims"),
                       engine::Error);
  A k2;
  k2.is("kernel_shape", {2, 2});
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", k2), {ramp({4, 4})}),
                       doctest::Contains("rank >= 3"), engine::Error);
  A ap = k2;
  ap.s("auto_pad", "SAME");
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", ap), {x}), doctest::Contains("auto_pad"),
                       engine::Error);
  A so = k2;
  so.i("storage_order", 2);
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", so), {x}), doctest::Contains("storage_order"),
                       engine::Error);
  A big;
  big.is("kernel_shape", {5, 5});
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", big), {x}), doctest::Contains("too small"),
                       engine::Error);
  A st = k2;
  st.is("strides", {0, 1});
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", st), {x}), doctest::Contains("strides"),
                       engine::Error);
  A np = k2;
  np.is("pads", {-1, 0, 0, 0});
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", np), {x}), doctest::Contains("pads"),
                       engine::Error);
  A pl = k2;
  pl.is("pads", {1, 1});
  CHECK_THROWS_WITH_AS(run_node(r, node("MaxPool", pl), {x}), doctest::Contains("pads"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(
      run_node(r, node("MaxPool", k2), {Tensor::from_vector<int32_t>({1, 1, 1, 2}, {1, 2})}),
      doctest::Contains("int32"), engine::Error);
}

// ============================== AveragePool ==============================

TEST_CASE("AveragePool 3x3 stride 2 pad 1 on a 5x5 ramp, with and without count_include_pad") {
  auto r = pool_registry();
  // Windows per axis: {0,1} (mean 0.5), {1,2,3} (mean 2), {3,4} (mean 3.5).
  // Excluding pads: 5 * mean_row + mean_col.
  A at;
  at.is("kernel_shape", {3, 3}).is("strides", {2, 2}).is("pads", {1, 1, 1, 1});
  auto out = run_node(r, node("AveragePool", at), {ramp({1, 1, 5, 5})});
  check_close(out[0], {3, 4.5, 6, 10.5, 12, 13.5, 18, 19.5, 21}, {1, 1, 3, 3});
  // Including pads: (count_rows * count_cols * mean) / 9, e.g. corner 4 * 3 / 9 = 4/3.
  at.i("count_include_pad", 1);
  out = run_node(r, node("AveragePool", at), {ramp({1, 1, 5, 5})});
  check_close(out[0], {4.f / 3, 3, 8.f / 3, 7, 12, 9, 8, 13, 28.f / 3}, {1, 1, 3, 3});
}

TEST_CASE("AveragePool ceil_mode (ONNX test_averagepool_2d_ceil) and 1-D partial window") {
  auto r = pool_registry();
  A at;
  at.is("kernel_shape", {3, 3}).is("strides", {2, 2}).i("ceil_mode", 1);
  // 4x4 of 1..16: rows {0,1,2} x cols {0,1,2} -> 6; cols {2,3} -> 7.5; rows {2,3} -> 12, 13.5.
  auto out = run_node(r, node("AveragePool", at, 11), {ramp({1, 1, 4, 4}, 1)});
  check_close(out[0], {6, 7.5, 12, 13.5}, {1, 1, 2, 2});

  // 1-D [1..5], kernel 2 stride 2 ceil: windows {0,1}, {2,3}, {4}. The last window lies past
  // the (zero) right padding, so it averages its single element with either count_include_pad.
  A b;
  b.is("kernel_shape", {2}).is("strides", {2}).i("ceil_mode", 1);
  const Tensor x = F({1, 1, 5}, {1, 2, 3, 4, 5});
  check_close(run_node(r, node("AveragePool", b), {x})[0], {1.5, 3.5, 5}, {1, 1, 3});
  b.i("count_include_pad", 1);
  check_close(run_node(r, node("AveragePool", b), {x})[0], {1.5, 3.5, 5}, {1, 1, 3});
  // With pads [0,1] the padded cell is counted: last window {4, pad} -> 5 / 2.
  b.is("pads", {0, 1});
  check_close(run_node(r, node("AveragePool", b), {x})[0], {1.5, 3.5, 2.5}, {1, 1, 3});
}

TEST_CASE("AveragePool auto_pad SAME_LOWER / SAME_UPPER excludes pads") {
  auto r = pool_registry();
  const Tensor x = F({1, 1, 5}, {1, 2, 3, 4, 5});
  A at;
  at.is("kernel_shape", {2}).s("auto_pad", "SAME_LOWER");
  check_close(run_node(r, node("AveragePool", at), {x})[0], {1, 1.5, 2.5, 3.5, 4.5}, {1, 1, 5});
  at.s("auto_pad", "SAME_UPPER");
  check_close(run_node(r, node("AveragePool", at), {x})[0], {1.5, 2.5, 3.5, 4.5, 5}, {1, 1, 5});
  at.i("count_include_pad", 1);  // the padded cell counts: last = 5 / 2
  check_close(run_node(r, node("AveragePool", at), {x})[0], {1.5, 2.5, 3.5, 4.5, 2.5}, {1, 1, 5});
}

TEST_CASE("AveragePool 3-D, double, errors") {
  auto r = pool_registry();
  A at;
  at.is("kernel_shape", {2, 2, 2});
  check_close(run_node(r, node("AveragePool", at), {ramp({1, 1, 2, 2, 2})})[0], {3.5},
              {1, 1, 1, 1, 1});
  A b;
  b.is("kernel_shape", {2});
  auto out = run_node(r, node("AveragePool", b),
                      {Tensor::from_vector<double>({1, 1, 3}, {1.0, 2.0, 4.0})});
  REQUIRE(out[0].dtype() == DType::F64);
  check_close(out[0], {1.5, 3}, {1, 1, 2});
  CHECK_THROWS_WITH_AS(
      run_node(r, node("AveragePool", b), {Tensor::from_vector<int8_t>({1, 1, 2}, {1, 2})}),
      doctest::Contains("float"), engine::Error);
  A c = b;
  c.i("count_include_pad", 3);
  CHECK_THROWS_WITH_AS(run_node(r, node("AveragePool", c), {ramp({1, 1, 3})}),
                       doctest::Contains("count_include_pad"), engine::Error);
  // AveragePool has a single output.
  CHECK(r.find("", "AveragePool")->max_outputs == 1);
}

// ============================== LpPool / Global pools ==============================

TEST_CASE("LpPool") {
  auto r = pool_registry();
  A at;
  at.is("kernel_shape", {2}).is("strides", {2}).i("p", 2);
  const Tensor x = F({1, 1, 4}, {3, -4, 0, 5});
  check_close(run_node(r, node("LpPool", at), {x})[0], {5, 5}, {1, 1, 2});
  at.i("p", 1);
  check_close(run_node(r, node("LpPool", at), {x})[0], {7, 5}, {1, 1, 2});
}

TEST_CASE("Global pools") {
  auto r = pool_registry();
  const Tensor x = ramp({1, 2, 2, 2}, 1);  // channel 0: 1..4, channel 1: 5..8
  check_close(run_node(r, node("GlobalAveragePool", A{}), {x})[0], {2.5, 6.5}, {1, 2, 1, 1});
  check_close(run_node(r, node("GlobalMaxPool", A{}), {x})[0], {4, 8}, {1, 2, 1, 1});
  // sqrt(1+4+9+16) = sqrt(30), sqrt(25+36+49+64) = sqrt(174)
  check_close(run_node(r, node("GlobalLpPool", A{}), {x})[0], {5.4772256f, 13.190906f},
              {1, 2, 1, 1});
  // 1-D and 3-D spatial.
  check_close(run_node(r, node("GlobalAveragePool", A{}), {ramp({2, 1, 3})})[0], {1, 4}, {2, 1, 1});
  check_close(run_node(r, node("GlobalMaxPool", A{}), {ramp({1, 1, 2, 2, 2})})[0], {7},
              {1, 1, 1, 1, 1});
  auto u8 = run_node(r, node("GlobalMaxPool", A{}),
                     {Tensor::from_vector<uint8_t>({1, 1, 3}, {7, 250, 9})});
  check_close(u8[0], {250}, {1, 1, 1});
  CHECK_THROWS_WITH_AS(run_node(r, node("GlobalAveragePool", A{}), {ramp({4})}),
                       doctest::Contains("rank >= 2"), engine::Error);
  CHECK_THROWS_AS(
      run_node(r, node("GlobalAveragePool", A{}), {Tensor::from_vector<uint8_t>({1, 1, 1}, {1})}),
      engine::Error);
}

// ============================== Pad ==============================

namespace {
Tensor x34() {
  return ramp({3, 4}, 1);
}  // [[1,2,3,4],[5,6,7,8],[9,10,11,12]]
}  // namespace

TEST_CASE("Pad reflect and edge on a 3x4 input") {
  auto r = pad_registry();
  // pads = [begin0, begin1, end0, end1] = [1, 2, 1, 1] -> 5x7.
  const Tensor pads = I64({4}, {1, 2, 1, 1});
  // reflect: rows [1,0,1,2,1], cols [2,1,0,1,2,3,2].
  auto out = run_node(r, node("Pad", A{}.s("mode", "reflect"), 13), {x34(), pads});
  check_close(out[0], {7,  6,  5, 6,  7,  8,  7,   //
                       3,  2,  1, 2,  3,  4,  3,   //
                       7,  6,  5, 6,  7,  8,  7,   //
                       11, 10, 9, 10, 11, 12, 11,  //
                       7,  6,  5, 6,  7,  8,  7},
              {5, 7});
  // edge: rows [0,0,1,2,2], cols [0,0,0,1,2,3,3].
  out = run_node(r, node("Pad", A{}.s("mode", "edge"), 13), {x34(), pads});
  check_close(out[0], {1, 1, 1, 2,  3,  4,  4,   //
                       1, 1, 1, 2,  3,  4,  4,   //
                       5, 5, 5, 6,  7,  8,  8,   //
                       9, 9, 9, 10, 11, 12, 12,  //
                       9, 9, 9, 10, 11, 12, 12},
              {5, 7});
}

TEST_CASE("Pad constant with constant_value input; default 0; opset 2 attributes") {
  auto r = pad_registry();
  auto out = run_node(r, node("Pad", A{}, 11),
                      {x34(), I64({4}, {0, 1, 1, 0}), Tensor::scalar<float>(2.5f)});
  check_close(out[0],
              {2.5, 1, 2, 3, 4, 2.5, 5, 6, 7, 8, 2.5, 9, 10, 11, 12, 2.5, 2.5, 2.5, 2.5, 2.5},
              {4, 5});
  // Omitted constant_value (and an empty one) -> 0.
  out = run_node(r, node("Pad", A{}, 11), {F({1, 2}, {1, 2}), I64({4}, {0, 1, 0, 0})});
  check_close(out[0], {0, 1, 2}, {1, 3});
  out = run_node(r, node("Pad", A{}, 11), {F({1, 2}, {1, 2}), I64({4}, {0, 1, 0, 0}), F({0}, {})});
  check_close(out[0], {0, 1, 2}, {1, 3});
  // Opset 2: pads and value attributes.
  A at;
  at.is("pads", {1, 1, 1, 1}).f("value", 9);
  out = run_node(r, node("Pad", at, 2), {F({2, 2}, {1, 2, 3, 4})});
  check_close(out[0], {9, 9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9, 9, 9, 9}, {4, 4});
  // int64 data keeps its type and values.
  out = run_node(r, node("Pad", A{}, 13),
                 {I64({2}, {int64_t(1) << 60, 7}), I64({2}, {1, 0}), I64({}, {-1})});
  CHECK(out[0].to_int_vector() == std::vector<int64_t>{-1, int64_t(1) << 60, 7});
}

TEST_CASE("Pad negative pads crop, then pad the cropped data") {
  auto r = pad_registry();
  // axis 0: begin 0, end -1 (drop last row); axis 1: begin -1 (drop first col), end +1.
  const Tensor pads = I64({4}, {0, -1, -1, 1});
  check_close(run_node(r, node("Pad", A{}, 13), {x34(), pads})[0], {2, 3, 4, 0, 6, 7, 8, 0},
              {2, 4});
  check_close(run_node(r, node("Pad", A{}.s("mode", "edge"), 13), {x34(), pads})[0],
              {2, 3, 4, 4, 6, 7, 8, 8}, {2, 4});
  // reflect of the cropped row [2,3,4] at the end -> 3.
  check_close(run_node(r, node("Pad", A{}.s("mode", "reflect"), 13), {x34(), pads})[0],
              {2, 3, 4, 3, 6, 7, 8, 7}, {2, 4});
}

TEST_CASE("Pad wrap, large reflect, axes input (opset 18)") {
  auto r = pad_registry();
  const Tensor x = F({3}, {1, 2, 3});
  check_close(run_node(r, node("Pad", A{}.s("mode", "wrap"), 19), {x, I64({2}, {2, 1})})[0],
              {2, 3, 1, 2, 3, 1}, {6});
  // reflect with a pad larger than size-1 keeps reflecting (numpy semantics): period 4.
  check_close(run_node(r, node("Pad", A{}.s("mode", "reflect"), 13), {x, I64({2}, {3, 0})})[0],
              {2, 3, 2, 1, 2, 3}, {6});
  // axes = [-1]: pads [1, 2] apply to the last axis only.
  auto out = run_node(r, node("Pad", A{}, 18),
                      {F({2, 2}, {1, 2, 3, 4}), I64({2}, {1, 2}), Tensor(), I64({1}, {-1})});
  check_close(out[0], {0, 1, 2, 0, 0, 0, 3, 4, 0, 0}, {2, 5});
}

TEST_CASE("Pad errors") {
  auto r = pad_registry();
  CHECK_THROWS_WITH_AS(
      run_node(r, node("Pad", A{}.s("mode", "symmetric"), 13), {x34(), I64({4}, {1, 1, 1, 1})}),
      doctest::Contains("mode"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Pad", A{}, 13), {x34(), I64({2}, {1, 1})}),
                       doctest::Contains("expected 4"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Pad", A{}, 13), {x34(), I64({4}, {-2, 0, -2, 0})}),
                       doctest::Contains("crop"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Pad", A{}.s("mode", "reflect"), 13),
                                {F({1, 0}, {}), I64({4}, {0, 1, 0, 1})}),
                       doctest::Contains("empty"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Pad", A{}, 13),
                                {x34(), I64({4}, {1, 1, 1, 1}), Tensor::scalar<double>(1.0)}),
                       doctest::Contains("constant_value"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Pad", A{}, 13), {x34(), F({4}, {1, 1, 1, 1})}),
                       doctest::Contains("int64"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Pad", A{}, 2), {x34()}), doctest::Contains("pads"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(
      run_node(r, node("Pad", A{}, 18), {x34(), I64({2}, {1, 1}), Tensor(), I64({1}, {2})}),
      doctest::Contains("out of range"), engine::Error);
}

// ============================== Resize ==============================

namespace {
Tensor x22() {
  return F({1, 1, 2, 2}, {1, 2, 3, 4});
}
Tensor none() {
  return Tensor();
}
Tensor empty_f() {
  return F({0}, {});
}
}  // namespace

TEST_CASE("Resize nearest 2x, asymmetric") {
  auto r = pad_registry();
  // x_orig = o / 2 = 0, 0.5, 1, 1.5; round_prefer_floor -> 0, 0, 1, 1.
  A at;
  at.s("mode", "nearest").s("coordinate_transformation_mode", "asymmetric");
  auto out = run_node(r, node("Resize", at, 13), {x22(), none(), F({4}, {1, 1, 2, 2})});
  check_close(out[0], {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, {1, 1, 4, 4});
  // round_prefer_ceil -> 0, 1, 1, 2 (clamped to 1).
  at.s("nearest_mode", "round_prefer_ceil");
  out = run_node(r, node("Resize", at, 13), {x22(), none(), F({4}, {1, 1, 2, 2})});
  check_close(out[0], {1, 2, 2, 2, 3, 4, 4, 4, 3, 4, 4, 4, 3, 4, 4, 4}, {1, 1, 4, 4});
}

TEST_CASE("Resize nearest modes floor / ceil with half_pixel, rank 1") {
  auto r = pad_registry();
  // 3 -> 5: x_orig = (o + 0.5) * 0.6 - 0.5 = -0.2, 0.4, 1.0, 1.6, 2.2
  const Tensor x = F({3}, {1, 2, 3});
  const Tensor sizes = I64({1}, {5});
  check_close(
      run_node(r, node("Resize", A{}.s("nearest_mode", "ceil"), 13), {x, none(), none(), sizes})[0],
      {1, 2, 2, 3, 3}, {5});
  check_close(run_node(r, node("Resize", A{}.s("nearest_mode", "floor"), 13),
                       {x, none(), none(), sizes})[0],
              {1, 1, 2, 2, 3}, {5});
  // Default round_prefer_floor: -0.2->0, 0.4->0, 1, 1.6->2, 2.2->2
  check_close(run_node(r, node("Resize", A{}, 13), {x, none(), none(), sizes})[0], {1, 1, 2, 3, 3},
              {5});
}

TEST_CASE("Resize nearest downsample (ONNX examples)") {
  auto r = pad_registry();
  const Tensor x = ramp({1, 1, 2, 4}, 1);
  // scales 0.6 -> 1x2; half_pixel: y = 0.5/0.6-0.5 = 0.33 -> 0; x = 0.33 -> 0, 2.0 -> 2.
  auto out = run_node(r, node("Resize", A{}, 13), {x, none(), F({4}, {1, 1, 0.6f, 0.6f})});
  check_close(out[0], {1, 3}, {1, 1, 1, 2});
  // tf_half_pixel_for_nearest, 4x4 -> 3x2: y = (o+0.5)/0.75 = 0.67, 2, 3.33 -> 1, 2, 3;
  // x = (o+0.5)/0.5 = 1, 3.
  A at;
  at.s("coordinate_transformation_mode", "tf_half_pixel_for_nearest");
  out = run_node(r, node("Resize", at, 13),
                 {ramp({1, 1, 4, 4}, 1), none(), none(), I64({4}, {1, 1, 3, 2})});
  check_close(out[0], {6, 8, 10, 12, 14, 16}, {1, 1, 3, 2});
}

TEST_CASE("Resize bilinear half_pixel 2x2 -> 4x4") {
  auto r = pad_registry();
  // x_orig = (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, .25, .75, 1.
  // value = 1 + 2 * y + x.
  const std::vector<float> want = {1,   1.25, 1.75, 2,   1.5, 1.75, 2.25, 2.5,
                                   2.5, 2.75, 3.25, 3.5, 3,   3.25, 3.75, 4};
  A at;
  at.s("mode", "linear");
  check_close(run_node(r, node("Resize", at, 13), {x22(), none(), F({4}, {1, 1, 2, 2})})[0], want,
              {1, 1, 4, 4});
  // Same through sizes, and through opset 11 with an empty scales tensor.
  check_close(
      run_node(r, node("Resize", at, 13), {x22(), none(), none(), I64({4}, {1, 1, 4, 4})})[0], want,
      {1, 1, 4, 4});
  check_close(
      run_node(r, node("Resize", at, 11), {x22(), empty_f(), empty_f(), I64({4}, {1, 1, 4, 4})})[0],
      want, {1, 1, 4, 4});
}

TEST_CASE("Resize linear align_corners, pytorch_half_pixel, downsample") {
  auto r = pad_registry();
  A at;
  at.s("mode", "linear").s("coordinate_transformation_mode", "align_corners");
  // 2 -> 4: x_orig = o / 3.
  check_close(
      run_node(r, node("Resize", at, 13), {x22(), none(), none(), I64({4}, {1, 1, 4, 4})})[0],
      {1, 4.f / 3, 5.f / 3, 2, 5.f / 3, 2, 7.f / 3, 8.f / 3, 7.f / 3, 8.f / 3, 3, 10.f / 3, 3,
       10.f / 3, 11.f / 3, 4},
      {1, 1, 4, 4});
  // Downsample with scales 0.6 (ONNX test_resize_downsample_scales_linear_align_corners): the
  // resized length is 0.6 * 4 = 2.4, so x_orig(1) = 1 * 3 / 1.4 = 2.142857 -> 3.142857.
  check_close(run_node(r, node("Resize", at, 13),
                       {ramp({1, 1, 2, 4}, 1), none(), F({4}, {1, 1, 0.6f, 0.6f})})[0],
              {1, 3.142857f}, {1, 1, 1, 2});
  // half_pixel downsample 0.6: y = 0.333, x = 0.333, 2.0 -> 1 + 4y + x.
  check_close(run_node(r, node("Resize", A{}.s("mode", "linear"), 13),
                       {ramp({1, 1, 2, 4}, 1), none(), F({4}, {1, 1, 0.6f, 0.6f})})[0],
              {2.6666667f, 4.3333333f}, {1, 1, 1, 2});
  // pytorch_half_pixel 4x4 -> 3x1: y = (o+0.5)/0.75-0.5 = 0.1667, 1.5, 2.8333; width 1 -> x=0.
  A pt;
  pt.s("mode", "linear").s("coordinate_transformation_mode", "pytorch_half_pixel");
  check_close(run_node(r, node("Resize", pt, 13),
                       {ramp({1, 1, 4, 4}, 1), none(), none(), I64({4}, {1, 1, 3, 1})})[0],
              {1.6666666f, 7, 12.333333f}, {1, 1, 3, 1});
}

TEST_CASE("Resize cubic") {
  auto r = pad_registry();
  // A = -0.75, at t = 0.5 the weights are [-0.09375, 0.59375, 0.59375, -0.09375]; asymmetric
  // x_orig = o / 2. Edge taps are clamped.
  A at;
  at.s("mode", "cubic").s("coordinate_transformation_mode", "asymmetric");
  const Tensor x = F({4}, {1, 2, 4, 8});
  check_close(run_node(r, node("Resize", at, 13), {x, none(), F({1}, {2})})[0],
              {1, 1.3125, 2, 2.71875, 4, 6.1875, 8, 8.375}, {8});
  // exclude_outside: out-of-range taps get weight 0 and the rest is renormalized.
  at.i("exclude_outside", 1);
  check_close(run_node(r, node("Resize", at, 13), {x, none(), F({1}, {2})})[0],
              {1, 1.40625f / 1.09375f, 2, 2.71875, 4, 6.9375f / 1.09375f, 8, 8.75}, {8});
}

TEST_CASE("Resize tf_crop_and_resize with extrapolation") {
  auto r = pad_registry();
  // 1x4 [10,20,30,40], roi axis1 0.5..1.5, sizes [1,3]: x_orig = 1.5 + o * 1.0 * 3 / 2
  // = 1.5, 3, 4.5 (outside -> extrapolation 7).
  A at;
  at.s("mode", "linear")
      .s("coordinate_transformation_mode", "tf_crop_and_resize")
      .f("extrapolation_value", 7);
  auto out =
      run_node(r, node("Resize", at, 13),
               {F({1, 4}, {10, 20, 30, 40}), F({4}, {0, 0.5f, 1, 1.5f}), none(), I64({2}, {1, 3})});
  check_close(out[0], {25, 40, 7}, {1, 3});
  CHECK_THROWS_WITH_AS(run_node(r, node("Resize", at, 13),
                                {F({1, 4}, {10, 20, 30, 40}), none(), none(), I64({2}, {1, 3})}),
                       doctest::Contains("roi"), engine::Error);
}

TEST_CASE("Resize opset 18 axes and keep_aspect_ratio_policy") {
  auto r = pad_registry();
  // 2x4 with sizes [3,3] on axes [2,3], not_larger: scale = min(1.5, 0.75) = 0.75 ->
  // out = round(1.5) = 2, 3. half_pixel nearest: y = 0.167, 1.5 -> 0, 1; x = 0.167, 1.5, 2.83
  // -> 0, 1, 3.
  A at;
  at.is("axes", {2, 3}).s("keep_aspect_ratio_policy", "not_larger");
  auto out = run_node(r, node("Resize", at, 18),
                      {ramp({1, 1, 2, 4}, 1), none(), none(), I64({2}, {3, 3})});
  check_close(out[0], {1, 2, 4, 5, 6, 8}, {1, 1, 2, 3});
  // axes only: scales for the listed axes.
  A b;
  b.is("axes", {-1}).s("coordinate_transformation_mode", "asymmetric");
  out = run_node(r, node("Resize", b, 18), {x22(), none(), F({1}, {2})});
  check_close(out[0], {1, 1, 2, 2, 3, 3, 4, 4}, {1, 1, 2, 4});
}

TEST_CASE("Resize integer types") {
  auto r = pad_registry();
  // uint8 linear asymmetric: [0, 127.5 -> 128, 255, 255]
  A at;
  at.s("mode", "linear").s("coordinate_transformation_mode", "asymmetric");
  auto out = run_node(r, node("Resize", at, 13),
                      {Tensor::from_vector<uint8_t>({2}, {0, 255}), none(), F({1}, {2})});
  REQUIRE(out[0].dtype() == DType::U8);
  check_close(out[0], {0, 128, 255, 255}, {4});
  // int64 nearest copies exactly.
  out = run_node(r, node("Resize", A{}.s("coordinate_transformation_mode", "asymmetric"), 13),
                 {I64({2}, {(int64_t(1) << 60) + 1, 3}), none(), F({1}, {2})});
  CHECK(out[0].to_int_vector() ==
        std::vector<int64_t>{(int64_t(1) << 60) + 1, (int64_t(1) << 60) + 1, 3, 3});
}

TEST_CASE("Resize opset 10 (legacy nearest: floor up, ceil down)") {
  auto r = pad_registry();
  // Downsample 0.6 asymmetric: x = 0, 1.67 -> ceil 2 -> [1, 3] (ONNX Resize-10 example).
  auto out =
      run_node(r, node("Resize", A{}, 10), {ramp({1, 1, 2, 4}, 1), F({4}, {1, 1, .6f, .6f})});
  check_close(out[0], {1, 3}, {1, 1, 1, 2});
  // Upsample 2x3: floor(o / s) -> repeat.
  out = run_node(r, node("Resize", A{}, 10), {x22(), F({4}, {1, 1, 2, 3})});
  check_close(out[0], {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4},
              {1, 1, 4, 6});
  // Linear is asymmetric: x = 0, .5, 1, 1.5 (clamped) -> value 1 + 2y + x.
  out = run_node(r, node("Resize", A{}.s("mode", "linear"), 10), {x22(), F({4}, {1, 1, 2, 2})});
  check_close(out[0], {1, 1.5, 2, 2, 2, 2.5, 3, 3, 3, 3.5, 4, 4, 3, 3.5, 4, 4}, {1, 1, 4, 4});
}

TEST_CASE("Resize errors") {
  auto r = pad_registry();
  const Tensor sc = F({4}, {1, 1, 2, 2});
  CHECK_THROWS_WITH_AS(run_node(r, node("Resize", A{}.s("mode", "area"), 13), {x22(), none(), sc}),
                       doctest::Contains("mode"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Resize", A{}.i("antialias", 1), 18), {x22(), none(), sc}),
                       doctest::Contains("antialias"), engine::Error);
  CHECK_THROWS_WITH_AS(
      run_node(r, node("Resize", A{}.s("coordinate_transformation_mode", "foo"), 13),
               {x22(), none(), sc}),
      doctest::Contains("coordinate_transformation_mode"), engine::Error);
  CHECK_THROWS_WITH_AS(
      run_node(r, node("Resize", A{}.s("nearest_mode", "up"), 13), {x22(), none(), sc}),
      doctest::Contains("nearest_mode"), engine::Error);
  CHECK_THROWS_WITH_AS(
      run_node(r, node("Resize", A{}, 13), {x22(), none(), sc, I64({4}, {1, 1, 4, 4})}),
      doctest::Contains("only one"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Resize", A{}, 13), {x22()}), doctest::Contains("scales"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Resize", A{}, 13), {x22(), none(), F({2}, {2, 2})}),
                       doctest::Contains("expected 4"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Resize", A{}, 13), {x22(), none(), F({4}, {1, 1, -2, 2})}),
                       doctest::Contains("positive"), engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Resize", A{}.s("mode", "cubic"), 10), {x22(), sc}),
                       doctest::Contains("cubic"), engine::Error);
  CHECK_THROWS_WITH_AS(
      run_node(r, node("Resize", A{}.s("mode", "linear"), 13),
               {Tensor::from_vector<bool>({2}, {true, false}), none(), F({1}, {2})}),
      doctest::Contains("bool"), engine::Error);
  CHECK_THROWS_WITH_AS(
      run_node(r, node("Resize", A{}, 13), {x22(), none(), none(), I64({4}, {1, 1, 0, 4})}),
      doctest::Contains("sizes"), engine::Error);
}

// ============================== Upsample ==============================

TEST_CASE("Upsample opset 7 and 9 (ONNX test_upsample_nearest)") {
  auto r = pad_registry();
  const std::vector<float> want = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                   3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
  A at;
  at.s("mode", "nearest").fs("scales", {1, 1, 2, 3});
  check_close(run_node(r, node("Upsample", at, 7), {x22()})[0], want, {1, 1, 4, 6});
  check_close(
      run_node(r, node("Upsample", A{}.s("mode", "nearest"), 9), {x22(), F({4}, {1, 1, 2, 3})})[0],
      want, {1, 1, 4, 6});
  // linear: asymmetric, x = o / 2 clamped to the last pixel -> value 1 + 2y + x.
  A lin;
  lin.s("mode", "linear").fs("scales", {1, 1, 2, 2});
  check_close(run_node(r, node("Upsample", lin, 7), {x22()})[0],
              {1, 1.5, 2, 2, 2, 2.5, 3, 3, 3, 3.5, 4, 4, 3, 3.5, 4, 4}, {1, 1, 4, 4});
  CHECK_THROWS_WITH_AS(run_node(r, node("Upsample", A{}, 7), {x22()}), doctest::Contains("scales"),
                       engine::Error);
  CHECK_THROWS_WITH_AS(run_node(r, node("Upsample", A{}.fs("scales", {2, 2}), 7), {x22()}),
                       doctest::Contains("expected 4"), engine::Error);
}

TEST_CASE("Pad and Resize float16 copy the bits") {
  auto r = pad_registry();
  Tensor x(DType::F16, {2});
  auto* xb = static_cast<uint16_t*>(x.raw());
  xb[0] = engine::float_to_half(1.5f);
  xb[1] = engine::float_to_half(-2.f);
  A at;
  at.is("pads", {1, 0}).f("value", 3);
  auto out = run_node(r, node("Pad", at, 2), {x});
  REQUIRE(out[0].dtype() == DType::F16);
  REQUIRE(out[0].shape() == Dims{3});
  const auto* yb = static_cast<const uint16_t*>(out[0].raw());
  CHECK(engine::half_to_float(yb[0]) == 3.f);
  CHECK(engine::half_to_float(yb[1]) == 1.5f);
  CHECK(engine::half_to_float(yb[2]) == -2.f);
  // Resize nearest on float16: [1.5, 1.5, -2, -2].
  out = run_node(r, node("Resize", A{}.s("coordinate_transformation_mode", "asymmetric"), 13),
                 {x, none(), F({1}, {2})});
  REQUIRE(out[0].dtype() == DType::F16);
  yb = static_cast<const uint16_t*>(out[0].raw());
  CHECK(engine::half_to_float(yb[1]) == 1.5f);
  CHECK(engine::half_to_float(yb[2]) == -2.f);
}
