// Tests of the shape / data-movement operators (ops/shape_ops.cpp). Expected values are computed
// by hand or taken from the examples in the ONNX operator documentation.
#include <cstring>
#include <limits>

#include "ops/ops.h"
#include "tests/op_test_util.h"

using namespace engine;
using engine::test::check_close;
using engine::test::NodeSpec;
using engine::test::run_node;

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Float tensor holding 0, 1, 2, ... in row-major order.
Tensor iota(const Dims& shape) {
  Tensor t(DType::F32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i);
  return t;
}
Tensor f32(const Dims& shape, const std::vector<float>& v) {
  return Tensor::from_vector(shape, v);
}
Tensor i64(const std::vector<int64_t>& v) {
  return Tensor::from_vector<int64_t>({int64_t(v.size())}, v);
}
Tensor i32(const std::vector<int32_t>& v) {
  return Tensor::from_vector<int32_t>({int64_t(v.size())}, v);
}

NodeSpec node(const std::string& op, int opset = 17, Attributes a = {}, int outputs = 1) {
  NodeSpec s;
  s.op_type = op;
  s.opset = opset;
  s.attrs = std::move(a);
  s.num_outputs = outputs;
  return s;
}
template <class V>
Attributes attr(const std::string& name, V v) {
  Attributes a;
  a.set(name, AttrValue(std::move(v)));
  return a;
}
std::vector<int64_t> ints(std::initializer_list<int64_t> v) {
  return v;
}

// Runs a single-output node.
Tensor run1(const OpRegistry& r, const NodeSpec& s, const std::vector<Tensor>& in) {
  auto out = run_node(r, s, in);
  REQUIRE(out.size() == 1);
  return out[0];
}

}  // namespace

TEST_CASE("Flatten: positive, negative and boundary axes") {
  OpRegistry r;
  register_shape_ops(r);
  const Tensor x = iota({2, 3, 4});
  std::vector<float> all(24);
  for (int i = 0; i < 24; ++i) all[size_t(i)] = float(i);
  check_close(run1(r, node("Flatten"), {x}), all, {2, 12});  // default axis 1
  check_close(run1(r, node("Flatten", 13, attr("axis", int64_t(0))), {x}), all, {1, 24});
  check_close(run1(r, node("Flatten", 13, attr("axis", int64_t(3))), {x}), all, {24, 1});
  check_close(run1(r, node("Flatten", 13, attr("axis", int64_t(-1))), {x}), all, {6, 4});
  check_close(run1(r, node("Flatten", 13, attr("axis", int64_t(-3))), {x}), all, {1, 24});
  CHECK_THROWS_WITH_AS(run1(r, node("Flatten", 13, attr("axis", int64_t(4))), {x}),
                       doctest::Contains("axis=4"), Error);
}

TEST_CASE("Reshape: 0 copies, -1 inferred, allowzero") {
  OpRegistry r;
  register_shape_ops(r);
  const Tensor x = iota({2, 3, 4});
  std::vector<float> all(24);
  for (int i = 0; i < 24; ++i) all[size_t(i)] = float(i);
  check_close(run1(r, node("Reshape"), {x, i64({0, -1})}), all, {2, 12});
  check_close(run1(r, node("Reshape"), {x, i64({4, 0, -1})}), all, {4, 3, 2});
  check_close(run1(r, node("Reshape"), {x, i64({-1})}), all, {24});
  check_close(run1(r, node("Reshape"), {x, i64({2, 0, 2, 2})}), all, {2, 3, 2, 2});
  // Opset 5: 0 copies the input dimension.
  check_close(run1(r, node("Reshape", 5), {x, i64({0, 0, 4})}), all, {2, 3, 4});
  // Opset < 5: shape attribute.
  check_close(run1(r, node("Reshape", 1, attr("shape", ints({6, -1}))), {x}), all, {6, 4});

  // allowzero=1: a 0 is a real zero dimension.
  const Tensor empty(DType::F32, {0, 3});
  Tensor y = run1(r, node("Reshape", 14, attr("allowzero", int64_t(1))), {empty, i64({3, 0})});
  CHECK(y.shape() == Dims{3, 0});
  // allowzero=0 copies the input's 0.
  y = run1(r, node("Reshape", 14), {empty, i64({0, 3})});
  CHECK(y.shape() == Dims{0, 3});
  // allowzero with 0 and -1 is invalid.
  CHECK_THROWS_AS(
      run1(r, node("Reshape", 14, attr("allowzero", int64_t(1))), {empty, i64({0, -1})}), Error);
  // allowzero=1 is ignored below opset 14 (0 copies).
  y = run1(r, node("Reshape", 13, attr("allowzero", int64_t(1))), {x, i64({0, 12})});
  CHECK(y.shape() == Dims{2, 12});

  // Errors.
  CHECK_THROWS_WITH_AS(run1(r, node("Reshape"), {x, i64({5, 5})}), doctest::Contains("24 elements"),
                       Error);
  CHECK_THROWS_WITH_AS(run1(r, node("Reshape"), {x, i64({-1, -1})}),
                       doctest::Contains("more than one -1"), Error);
  CHECK_THROWS_AS(run1(r, node("Reshape"), {x, i64({5, -1})}), Error);  // 24 % 5 != 0
  CHECK_THROWS_AS(run1(r, node("Reshape"), {x, i64({-2, 12})}), Error);
  CHECK_THROWS_AS(run1(r, node("Reshape"), {iota({24}), i64({4, 0, 6})}), Error);  // 0 past rank
}

TEST_CASE("Transpose: [2,3,4] perm [1,2,0], default perm, other dtypes") {
  OpRegistry r;
  register_shape_ops(r);
  // out[i][j][k] = x[k][i][j] = 12k + 4i + j: pairs (m, m + 12) for m = 0..11.
  Tensor y = run1(r, node("Transpose", 13, attr("perm", ints({1, 2, 0}))), {iota({2, 3, 4})});
  check_close(
      y, {0, 12, 1, 13, 2, 14, 3, 15, 4, 16, 5, 17, 6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23},
      {3, 4, 2});
  // Default perm reverses the dims.
  check_close(run1(r, node("Transpose"), {iota({2, 3})}), {0, 3, 1, 4, 2, 5}, {3, 2});
  // perm [0,2,1] on [1,2,3]: [[0,1,2],[3,4,5]] -> [[0,3],[1,4],[2,5]].
  check_close(run1(r, node("Transpose", 13, attr("perm", ints({0, 2, 1}))), {iota({1, 2, 3})}),
              {0, 3, 1, 4, 2, 5}, {1, 3, 2});
  // Identity perm.
  check_close(run1(r, node("Transpose", 13, attr("perm", ints({0, 1}))), {iota({2, 2})}),
              {0, 1, 2, 3}, {2, 2});
  // F16 data (2-byte elements) moved bit-exactly.
  Tensor h(DType::F16, {2, 3});
  auto* hp = static_cast<uint16_t*>(h.raw());
  for (int i = 0; i < 6; ++i) hp[i] = uint16_t(0x3c00 + i);
  Tensor hy = run1(r, node("Transpose"), {h});
  REQUIRE(hy.dtype() == DType::F16);
  CHECK(hy.shape() == Dims{3, 2});
  const uint16_t want[] = {0x3c00, 0x3c03, 0x3c01, 0x3c04, 0x3c02, 0x3c05};
  CHECK(std::memcmp(hy.raw(), want, sizeof want) == 0);
  // int8 and int64.
  Tensor b = Tensor::from_vector<int8_t>({2, 2}, {1, 2, 3, 4});
  check_close(run1(r, node("Transpose"), {b}), {1, 3, 2, 4}, {2, 2});
  Tensor l = Tensor::from_vector<int64_t>({3, 1}, {7, 8, 9});
  check_close(run1(r, node("Transpose"), {l}), {7, 8, 9}, {1, 3});
  // Invalid perms.
  CHECK_THROWS_AS(run1(r, node("Transpose", 13, attr("perm", ints({0, 0}))), {iota({2, 2})}),
                  Error);
  CHECK_THROWS_AS(run1(r, node("Transpose", 13, attr("perm", ints({0}))), {iota({2, 2})}), Error);
  CHECK_THROWS_AS(run1(r, node("Transpose", 13, attr("perm", ints({0, 2}))), {iota({2, 2})}),
                  Error);
}

TEST_CASE("Transpose NCHW -> NHWC with 1-5 channels (few-row fast path, column blocks)") {
  OpRegistry r;
  register_shape_ops(r);
  const int64_t B = 2, H = 5, W = 1000, P = H * W;  // 5000 pixels: more than one column block
  for (int64_t C = 1; C <= 5; ++C) {
    CAPTURE(C);
    Tensor xf(DType::F32, {B, C, H, W});
    Tensor xu(DType::U8, {B, C, H, W});
    for (int64_t i = 0; i < xf.numel(); ++i) {
      xf.data<float>()[i] = float(i);
      xu.data<uint8_t>()[i] = uint8_t(i * 7 % 251);
    }
    const auto perm = attr("perm", ints({0, 2, 3, 1}));
    const Tensor yf = run1(r, node("Transpose", 13, perm), {xf});
    const Tensor yu = run1(r, node("Transpose", 13, perm), {xu});
    REQUIRE(yf.shape() == Dims{B, H, W, C});
    int64_t bad = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t o = (b * P + p) * C + c, i = (b * C + c) * P + p;
          bad += yf.data<float>()[o] != float(i);
          bad += yu.data<uint8_t>()[o] != uint8_t(i * 7 % 251);
        }
    CHECK(bad == 0);
  }
}

TEST_CASE("Concat: axes, zero-size inputs, int64, errors") {
  OpRegistry r;
  register_shape_ops(r);
  const Tensor a = f32({2, 1}, {1, 2});
  const Tensor b = f32({2, 2}, {3, 4, 5, 6});
  check_close(run1(r, node("Concat", 13, attr("axis", int64_t(1))), {a, b}), {1, 3, 4, 2, 5, 6},
              {2, 3});
  check_close(run1(r, node("Concat", 13, attr("axis", int64_t(-1))), {a, b}), {1, 3, 4, 2, 5, 6},
              {2, 3});
  // axis 0 with 3 inputs.
  check_close(run1(r, node("Concat", 13, attr("axis", int64_t(0))), {b, f32({1, 2}, {7, 8}), b}),
              {3, 4, 5, 6, 7, 8, 3, 4, 5, 6}, {5, 2});
  // Zero-size inputs.
  const Tensor z(DType::F32, {2, 0});
  check_close(run1(r, node("Concat", 13, attr("axis", int64_t(1))), {z, b, z}), {3, 4, 5, 6},
              {2, 2});
  Tensor zz = run1(r, node("Concat", 13, attr("axis", int64_t(1))), {z, z});
  CHECK(zz.shape() == Dims{2, 0});
  // int64 shape vectors (shape subgraphs).
  Tensor s =
      run1(r, node("Concat", 13, attr("axis", int64_t(0))), {i64({1}), i64({}), i64({-1, 7})});
  REQUIRE(s.dtype() == DType::I64);
  CHECK(s.to_int_vector() == std::vector<int64_t>{1, -1, 7});
  // A middle axis of a 3-D tensor: [[[0,1]],[[2,3]]] and [[[10,11],[12,13]],[[14,15],[16,17]]].
  check_close(run1(r, node("Concat", 13, attr("axis", int64_t(1))),
                   {iota({2, 1, 2}), f32({2, 2, 2}, {10, 11, 12, 13, 14, 15, 16, 17})}),
              {0, 1, 10, 11, 12, 13, 2, 3, 14, 15, 16, 17}, {2, 3, 2});
  // Errors: rank mismatch, other-dim mismatch, axis out of range, dtype mismatch.
  CHECK_THROWS_WITH_AS(run1(r, node("Concat", 13, attr("axis", int64_t(0))), {a, i64({1})}),
                       doctest::Contains("type"), Error);
  CHECK_THROWS_WITH_AS(run1(r, node("Concat", 13, attr("axis", int64_t(0))), {a, iota({2})}),
                       doctest::Contains("rank"), Error);
  CHECK_THROWS_AS(run1(r, node("Concat", 13, attr("axis", int64_t(0))), {a, b}), Error);
  CHECK_THROWS_AS(run1(r, node("Concat", 13, attr("axis", int64_t(2))), {a, b}), Error);
  CHECK_THROWS_AS(run1(r, node("Concat", 13), {a, b}), Error);  // axis is required
}

TEST_CASE("Split: equal, uneven, opset 11 attribute vs opset 13 input, num_outputs") {
  OpRegistry r;
  register_shape_ops(r);
  auto x = f32({6}, {1, 2, 3, 4, 5, 6});
  auto out = run_node(r, node("Split", 13, {}, 3), {x});
  check_close(out[0], {1, 2}, {2});
  check_close(out[1], {3, 4}, {2});
  check_close(out[2], {5, 6}, {2});

  // Not divisible: chunks of ceil(7/3) = 3, last smaller.
  out = run_node(r, node("Split", 13, {}, 3), {f32({7}, {1, 2, 3, 4, 5, 6, 7})});
  check_close(out[0], {1, 2, 3}, {3});
  check_close(out[1], {4, 5, 6}, {3});
  check_close(out[2], {7}, {1});

  // 2-D, axis 1: [[1..6],[7..12]] split [2,4].
  auto m = f32({2, 6}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  Attributes a11 = attr("axis", int64_t(1));
  a11.set("split", ints({2, 4}));
  out = run_node(r, node("Split", 11, a11, 2), {m});
  check_close(out[0], {1, 2, 7, 8}, {2, 2});
  check_close(out[1], {3, 4, 5, 6, 9, 10, 11, 12}, {2, 4});
  // Opset 13: split is an input; negative axis.
  out = run_node(r, node("Split", 13, attr("axis", int64_t(-1)), 2), {m, i64({4, 2})});
  check_close(out[0], {1, 2, 3, 4, 7, 8, 9, 10}, {2, 4});
  check_close(out[1], {5, 6, 11, 12}, {2, 2});
  // Opset 13 ignores a (stale) split attribute in favour of equal parts when no input is given.
  out = run_node(r, node("Split", 13, a11, 2), {m});
  check_close(out[0], {1, 2, 3, 7, 8, 9}, {2, 3});
  check_close(out[1], {4, 5, 6, 10, 11, 12}, {2, 3});
  // Opset 18 num_outputs, uneven: 5 -> 3 + 2.
  out = run_node(r, node("Split", 18, attr("num_outputs", int64_t(2)), 2),
                 {f32({5}, {1, 2, 3, 4, 5})});
  check_close(out[0], {1, 2, 3}, {3});
  check_close(out[1], {4, 5}, {2});
  // Zero-size splits.
  out = run_node(r, node("Split", 13, {}, 3), {Tensor(DType::F32, {0}), i64({0, 0, 0})});
  for (auto& t : out) CHECK(t.shape() == Dims{0});
  // Zero-size part in the middle.
  out = run_node(r, node("Split", 13, {}, 3), {x, i64({2, 0, 4})});
  check_close(out[0], {1, 2}, {2});
  CHECK(out[1].shape() == Dims{0});
  check_close(out[2], {3, 4, 5, 6}, {4});
  // Errors.
  CHECK_THROWS_WITH_AS(run_node(r, node("Split", 13, {}, 2), {x, i64({2, 3})}),
                       doctest::Contains("sums to 5"), Error);
  CHECK_THROWS_AS(run_node(r, node("Split", 13, {}, 3), {x, i64({6})}), Error);
  CHECK_THROWS_AS(run_node(r, node("Split", 13, {}, 4), {f32({5}, {1, 2, 3, 4, 5})}), Error);
  CHECK_THROWS_AS(run_node(r, node("Split", 17, attr("num_outputs", int64_t(2)), 2), {x}), Error);
}

TEST_CASE("Slice: attributes (opset 9), inputs, negative steps, clamping") {
  OpRegistry r;
  register_shape_ops(r);
  // Opset 9 attributes: rows [0,-1) = row 0, columns [1, 1000) clamps to [1,4).
  auto m = f32({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  Attributes a9 = attr("starts", ints({0, 1}));
  a9.set("ends", ints({-1, 1000}));
  check_close(run1(r, node("Slice", 9, a9), {m}), {2, 3, 4}, {1, 3});
  Attributes a9b = attr("starts", ints({1}));
  a9b.set("ends", ints({3}));
  a9b.set("axes", ints({1}));
  check_close(run1(r, node("Slice", 9, a9b), {m}), {2, 3, 6, 7}, {2, 2});

  const Tensor x = iota({10});
  const Tensor none;
  // Full reverse: start -1 -> 9, end INT64_MIN clamps to -1.
  check_close(run1(r, node("Slice"), {x, i64({-1}), i64({kMin}), i64({0}), i64({-1})}),
              {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, {10});
  // Step -3 from 8 down to (excluding) 1: 8, 5, 2.
  check_close(run1(r, node("Slice"), {x, i64({8}), i64({1}), none, i64({-3})}), {8, 5, 2}, {3});
  // Negative step, start beyond the end clamps to dim-1 = 9; end 0 excluded.
  check_close(run1(r, node("Slice"), {x, i64({20}), i64({0}), none, i64({-1})}),
              {9, 8, 7, 6, 5, 4, 3, 2, 1}, {9});
  // Negative step with end -1 means index 9 (not "before 0"): empty.
  CHECK(run1(r, node("Slice"), {x, i64({5}), i64({-1}), none, i64({-1})}).shape() == Dims{0});
  // Out-of-range starts.
  CHECK(run1(r, node("Slice"), {x, i64({1000}), i64({1000})}).shape() == Dims{0});
  check_close(run1(r, node("Slice"), {x, i64({-1000}), i64({2})}), {0, 1}, {2});
  // INT64_MAX end; step 3.
  check_close(run1(r, node("Slice"), {x, i64({2}), i64({kMax})}), {2, 3, 4, 5, 6, 7, 8, 9}, {8});
  check_close(run1(r, node("Slice"), {x, i64({1}), i64({kMax}), i64({0}), i64({3})}), {1, 4, 7},
              {3});
  // start > end with a positive step: empty.
  CHECK(run1(r, node("Slice"), {x, i64({5}), i64({2})}).shape() == Dims{0});
  // 2-D, negative axis, steps 2, int32 index tensors: columns 0 and 2.
  check_close(run1(r, node("Slice"), {m, i32({0}), i32({4}), i32({-1}), i32({2})}), {1, 3, 5, 7},
              {2, 2});
  // Both axes, reverse rows and columns 3..1: [[8,7,6],[4,3,2]].
  check_close(run1(r, node("Slice"), {m, i64({-1, 3}), i64({kMin, 0}), i64({0, 1}), i64({-1, -1})}),
              {8, 7, 6, 4, 3, 2}, {2, 3});
  // Errors: zero step, repeated axis, axis out of range, length mismatch.
  CHECK_THROWS_AS(run1(r, node("Slice"), {x, i64({0}), i64({5}), none, i64({0})}), Error);
  CHECK_THROWS_AS(run1(r, node("Slice"), {m, i64({0, 0}), i64({1, 1}), i64({1, -1})}), Error);
  CHECK_THROWS_AS(run1(r, node("Slice"), {m, i64({0}), i64({1}), i64({2})}), Error);
  CHECK_THROWS_AS(run1(r, node("Slice"), {m, i64({0, 1}), i64({1})}), Error);
}

TEST_CASE("Squeeze / Unsqueeze: opset 11 attribute vs opset 13 input") {
  OpRegistry r;
  register_shape_ops(r);
  const Tensor x = iota({1, 3, 1, 2});
  const std::vector<float> v{0, 1, 2, 3, 4, 5};
  check_close(run1(r, node("Squeeze", 11, attr("axes", ints({0, 2}))), {x}), v, {3, 2});
  check_close(run1(r, node("Squeeze", 11, attr("axes", ints({-2}))), {x}), v, {1, 3, 2});
  check_close(run1(r, node("Squeeze", 13), {x, i64({-2})}), v, {1, 3, 2});
  check_close(run1(r, node("Squeeze", 13), {x, i64({0, 2})}), v, {3, 2});
  check_close(run1(r, node("Squeeze", 13), {x}), v, {3, 2});  // all 1-dims
  check_close(run1(r, node("Squeeze", 11), {x}), v, {3, 2});
  CHECK(run1(r, node("Squeeze", 13), {iota({1, 1})}).shape() == Dims{});
  CHECK_THROWS_WITH_AS(run1(r, node("Squeeze", 13), {x, i64({1})}), doctest::Contains("not 1"),
                       Error);
  CHECK_THROWS_AS(run1(r, node("Squeeze", 13), {x, i64({4})}), Error);
  CHECK_THROWS_AS(run1(r, node("Squeeze", 13, attr("axes", ints({0}))), {x}), Error);

  const Tensor y = iota({2, 3});
  check_close(run1(r, node("Unsqueeze", 11, attr("axes", ints({0, 3}))), {y}), v, {1, 2, 3, 1});
  check_close(run1(r, node("Unsqueeze", 13), {y, i64({0, 3})}), v, {1, 2, 3, 1});
  // Negative axes count in the output rank (4): -1 -> 3; unsorted.
  check_close(run1(r, node("Unsqueeze", 13), {y, i64({-1, 1})}), v, {2, 1, 3, 1});
  check_close(run1(r, node("Unsqueeze", 13), {y, i64({2})}), v, {2, 3, 1});
  // Scalar -> [1] (shape subgraphs).
  Tensor s = run1(r, node("Unsqueeze", 13), {Tensor::scalar<int64_t>(5), i64({0})});
  CHECK(s.shape() == Dims{1});
  CHECK(s.to_int_vector() == std::vector<int64_t>{5});
  CHECK_THROWS_AS(run1(r, node("Unsqueeze", 13), {y, i64({1, 1})}), Error);
  CHECK_THROWS_AS(run1(r, node("Unsqueeze", 13), {y, i64({4})}), Error);
  CHECK_THROWS_AS(run1(r, node("Unsqueeze", 13), {y}), Error);
}

TEST_CASE("Shape and Size: start/end, known at inference time") {
  OpRegistry r;
  register_shape_ops(r);
  const Tensor x = iota({2, 3, 4});
  auto shape_of = [&](Attributes a) {
    return run1(r, node("Shape", 15, std::move(a)), {x}).to_int_vector();
  };
  CHECK(shape_of({}) == std::vector<int64_t>{2, 3, 4});
  CHECK(shape_of(attr("start", int64_t(1))) == std::vector<int64_t>{3, 4});
  CHECK(shape_of(attr("start", int64_t(-1))) == std::vector<int64_t>{4});
  CHECK(shape_of(attr("end", int64_t(-1))) == std::vector<int64_t>{2, 3});
  CHECK(shape_of(attr("end", int64_t(1))) == std::vector<int64_t>{2});
  CHECK(shape_of(attr("start", int64_t(-10))) == std::vector<int64_t>{2, 3, 4});
  CHECK(shape_of(attr("end", int64_t(10))) == std::vector<int64_t>{2, 3, 4});
  Attributes se = attr("start", int64_t(2));
  se.set("end", int64_t(1));
  CHECK(shape_of(se).empty());

  // The value is known from the shape alone, with no input data.
  Node n;
  n.op_type = "Shape";
  n.opset = 15;
  n.outputs = {1};
  InferContext::Input in;
  in.dtype = DType::F32;
  in.shape = {5, 7};
  InferContext ic(n, {in});
  r.find("", "Shape")->infer(ic);
  REQUIRE(ic.known_outputs().size() == 1);
  CHECK(ic.known_outputs()[0].to_int_vector() == std::vector<int64_t>{5, 7});

  n.op_type = "Size";
  InferContext ic2(n, {in});
  r.find("", "Size")->infer(ic2);
  REQUIRE(ic2.known_outputs().size() == 1);
  CHECK(ic2.known_outputs()[0].shape() == Dims{});
  CHECK(ic2.known_outputs()[0].to_int_vector() == std::vector<int64_t>{35});

  Tensor sz = run1(r, node("Size"), {x});
  REQUIRE(sz.dtype() == DType::I64);
  CHECK(sz.to_int_vector() == std::vector<int64_t>{24});
}

TEST_CASE("Gather: axes, negative indices, int32 indices, bounds") {
  OpRegistry r;
  register_shape_ops(r);
  const Tensor d = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  check_close(run1(r, node("Gather", 13, attr("axis", int64_t(1))), {d, i64({-1, 0})}),
              {3, 1, 6, 4}, {2, 2});
  check_close(run1(r, node("Gather", 13, attr("axis", int64_t(-1))), {d, i32({2, -3, 1})}),
              {3, 1, 2, 6, 4, 5}, {2, 3});
  // 2-D int32 indices along axis 0: shape [2,1] + [3].
  check_close(run1(r, node("Gather"), {d, Tensor::from_vector<int32_t>({2, 1}, {1, 0})}),
              {4, 5, 6, 1, 2, 3}, {2, 1, 3});
  // Scalar index removes the axis (shape subgraph: Shape -> Gather).
  Tensor g = run1(r, node("Gather"), {i64({2, 3, 4}), Tensor::scalar<int64_t>(-2)});
  CHECK(g.shape() == Dims{});
  CHECK(g.to_int_vector() == std::vector<int64_t>{3});
  // Empty indices.
  CHECK(run1(r, node("Gather", 13, attr("axis", int64_t(1))), {d, i64({})}).shape() == Dims{2, 0});
  // F16 data.
  Tensor h(DType::F16, {3});
  auto* hp = static_cast<uint16_t*>(h.raw());
  hp[0] = 0x3c00, hp[1] = 0x4000, hp[2] = 0x4200;
  Tensor hg = run1(r, node("Gather"), {h, i64({2, 2, 0})});
  REQUIRE(hg.dtype() == DType::F16);
  const uint16_t want[] = {0x4200, 0x4200, 0x3c00};
  CHECK(std::memcmp(hg.raw(), want, sizeof want) == 0);

  // Out-of-range indices throw (axis 1 has size 3: valid [-3, 2]).
  CHECK_THROWS_WITH_AS(run1(r, node("Gather", 13, attr("axis", int64_t(1))), {d, i64({3})}),
                       doctest::Contains("out of range"), Error);
  CHECK_THROWS_AS(run1(r, node("Gather", 13, attr("axis", int64_t(1))), {d, i64({-4})}), Error);
  CHECK_THROWS_AS(run1(r, node("Gather", 13, attr("axis", int64_t(2))), {d, i64({0})}), Error);
  CHECK_THROWS_AS(run1(r, node("Gather"), {d, f32({1}, {0})}), Error);

  // The kernel itself checks indices that were not known at inference time.
  Node n;
  n.op_type = "Gather";
  n.opset = 13;
  n.attrs.set("axis", int64_t(0));
  Tensor idx = i64({0, 2});
  Tensor out(DType::F32, {2, 3});
  KernelContext kc{n, {&d, &idx}, {&out}, 1};
  CHECK_THROWS_WITH_AS(r.find("", "Gather")->kernel(kc), doctest::Contains("out of range"), Error);
}

TEST_CASE("Constant and ConstantOfShape") {
  OpRegistry r;
  register_shape_ops(r);
  Tensor c = run1(r, node("Constant", 13, attr("value", f32({2}, {1.5f, -2}))), {});
  check_close(c, {1.5f, -2}, {2});
  c = run1(r, node("Constant", 13, attr("value_float", 3.0f)), {});
  CHECK(c.dtype() == DType::F32);
  check_close(c, {3}, {});
  c = run1(r, node("Constant", 13, attr("value_floats", std::vector<float>{1, 2})), {});
  check_close(c, {1, 2}, {2});
  c = run1(r, node("Constant", 13, attr("value_int", int64_t(7))), {});
  CHECK(c.dtype() == DType::I64);
  check_close(c, {7}, {});
  c = run1(r, node("Constant", 13, attr("value_ints", ints({4, 5, 6}))), {});
  CHECK(c.dtype() == DType::I64);
  check_close(c, {4, 5, 6}, {3});
  CHECK_THROWS_WITH_AS(run1(r, node("Constant", 13, attr("value_string", std::string("a"))), {}),
                       doctest::Contains("value_string"), Error);
  CHECK_THROWS_WITH_AS(run1(r, node("Constant", 13, attr("sparse_value", f32({1}, {1}))), {}),
                       doctest::Contains("sparse_value"), Error);
  CHECK_THROWS_AS(run1(r, node("Constant", 13), {}), Error);
  Attributes two = attr("value_int", int64_t(1));
  two.set("value_float", 1.0f);
  CHECK_THROWS_AS(run1(r, node("Constant", 13, two), {}), Error);

  // ConstantOfShape.
  Tensor z = run1(r, node("ConstantOfShape"), {i64({2, 3})});
  CHECK(z.dtype() == DType::F32);
  check_close(z, {0, 0, 0, 0, 0, 0}, {2, 3});
  Tensor s =
      run1(r, node("ConstantOfShape", 13, attr("value", Tensor::from_vector<int32_t>({1}, {7}))),
           {i64({3})});
  CHECK(s.dtype() == DType::I32);
  check_close(s, {7, 7, 7}, {3});
  s = run1(r, node("ConstantOfShape", 13, attr("value", f32({1}, {2.5f}))), {i64({})});
  check_close(s, {2.5f}, {});
  s = run1(r, node("ConstantOfShape", 13, attr("value", Tensor::from_vector<int32_t>({1}, {0}))),
           {i64({0})});
  CHECK(s.shape() == Dims{0});
  CHECK_THROWS_AS(run1(r, node("ConstantOfShape"), {i64({-1})}), Error);
  CHECK_THROWS_AS(run1(r, node("ConstantOfShape", 13, attr("value", f32({2}, {1, 2}))), {i64({1})}),
                  Error);
}

TEST_CASE("Expand and Tile") {
  OpRegistry r;
  register_shape_ops(r);
  // [3,1] expanded to [2,1,4] -> [2,3,4], out[a][b][c] = x[b].
  Tensor y = run1(r, node("Expand"), {f32({3, 1}, {1, 2, 3}), i64({2, 1, 4})});
  check_close(y, {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
              {2, 3, 4});
  // Shape of lower rank than the input, and dims of 1 in the shape keep the input dims.
  check_close(run1(r, node("Expand"), {f32({2, 1}, {1, 2}), i64({3})}), {1, 1, 1, 2, 2, 2}, {2, 3});
  check_close(run1(r, node("Expand"), {f32({1, 2}, {1, 2}), i64({2, 1})}), {1, 2, 1, 2}, {2, 2});
  // Scalar input.
  check_close(run1(r, node("Expand"), {Tensor::scalar<float>(4), i64({2})}), {4, 4}, {2});
  CHECK_THROWS_AS(run1(r, node("Expand"), {iota({2, 3}), i64({4})}), Error);

  // Tile [[1,2],[3,4]] by [2,3].
  check_close(run1(r, node("Tile"), {f32({2, 2}, {1, 2, 3, 4}), i64({2, 3})}),
              {1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}, {4, 6});
  check_close(run1(r, node("Tile"), {f32({3}, {1, 2, 3}), i64({2})}), {1, 2, 3, 1, 2, 3}, {6});
  CHECK(run1(r, node("Tile"), {iota({2, 2}), i64({0, 1})}).shape() == Dims{0, 2});
  CHECK_THROWS_AS(run1(r, node("Tile"), {iota({2, 2}), i64({2})}), Error);
  CHECK_THROWS_AS(run1(r, node("Tile"), {iota({2}), i64({-1})}), Error);
}

TEST_CASE("Range") {
  OpRegistry r;
  register_shape_ops(r);
  check_close(run1(r, node("Range"),
                   {Tensor::scalar<float>(1), Tensor::scalar<float>(5), Tensor::scalar<float>(2)}),
              {1, 3}, {2});
  Tensor y =
      run1(r, node("Range"),
           {Tensor::scalar<int32_t>(10), Tensor::scalar<int32_t>(4), Tensor::scalar<int32_t>(-3)});
  CHECK(y.dtype() == DType::I32);
  check_close(y, {10, 7}, {2});
  check_close(
      run1(r, node("Range"),
           {Tensor::scalar<int64_t>(0), Tensor::scalar<int64_t>(5), Tensor::scalar<int64_t>(1)}),
      {0, 1, 2, 3, 4}, {5});
  CHECK(run1(r, node("Range"),
             {Tensor::scalar<int64_t>(3), Tensor::scalar<int64_t>(3), Tensor::scalar<int64_t>(1)})
            .shape() == Dims{0});
  CHECK(run1(r, node("Range"),
             {Tensor::scalar<int64_t>(5), Tensor::scalar<int64_t>(3), Tensor::scalar<int64_t>(1)})
            .shape() == Dims{0});
  CHECK_THROWS_AS(
      run1(r, node("Range"),
           {Tensor::scalar<int64_t>(0), Tensor::scalar<int64_t>(3), Tensor::scalar<int64_t>(0)}),
      Error);
}

TEST_CASE("DepthToSpace / SpaceToDepth") {
  OpRegistry r;
  register_shape_ops(r);
  const Tensor x = iota({1, 8, 2, 3});
  // Examples from the ONNX DepthToSpace documentation.
  Tensor dcr = run1(r, node("DepthToSpace", 13, attr("blocksize", int64_t(2))), {x});
  check_close(dcr, {0,  12, 1,  13, 2,  14, 24, 36, 25, 37, 26, 38, 3,  15, 4,  16,
                    5,  17, 27, 39, 28, 40, 29, 41, 6,  18, 7,  19, 8,  20, 30, 42,
                    31, 43, 32, 44, 9,  21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47},
              {1, 2, 4, 6});
  Attributes crd = attr("blocksize", int64_t(2));
  crd.set("mode", std::string("CRD"));
  check_close(run1(r, node("DepthToSpace", 13, crd), {x}),
              {0,  6,  1,  7,  2,  8,  12, 18, 13, 19, 14, 20, 3,  9,  4,  10,
               5,  11, 15, 21, 16, 22, 17, 23, 24, 30, 25, 31, 26, 32, 36, 42,
               37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47},
              {1, 2, 4, 6});
  // SpaceToDepth undoes DepthToSpace in DCR mode.
  Tensor back = run1(r, node("SpaceToDepth", 13, attr("blocksize", int64_t(2))), {dcr});
  std::vector<float> all(48);
  for (int i = 0; i < 48; ++i) all[size_t(i)] = float(i);
  check_close(back, all, {1, 8, 2, 3});
  // Small hand case: [1,2,2,2] = 0..7 -> channel b1*2*C + b2*C + c.
  check_close(
      run1(r, node("SpaceToDepth", 13, attr("blocksize", int64_t(2))), {iota({1, 2, 2, 2})}),
      {0, 4, 1, 5, 2, 6, 3, 7}, {1, 8, 1, 1});
  Attributes bad = attr("blocksize", int64_t(2));
  bad.set("mode", std::string("XYZ"));
  CHECK_THROWS_WITH_AS(run1(r, node("DepthToSpace", 13, bad), {x}), doctest::Contains("mode"),
                       Error);
  CHECK_THROWS_AS(run1(r, node("DepthToSpace", 13, attr("blocksize", int64_t(3))), {x}), Error);
  CHECK_THROWS_AS(
      run1(r, node("SpaceToDepth", 13, attr("blocksize", int64_t(2))), {iota({1, 1, 3, 2})}),
      Error);
  CHECK_THROWS_AS(run1(r, node("SpaceToDepth", 13), {x}), Error);  // blocksize required
}

TEST_CASE("Shape subgraph: Shape -> Gather -> Unsqueeze -> Concat -> Reshape") {
  OpRegistry r;
  register_shape_ops(r);
  const Tensor x = iota({2, 3, 4});
  Tensor shp = run1(r, node("Shape"), {x});
  Tensor batch = run1(r, node("Gather"), {shp, Tensor::scalar<int64_t>(0)});
  Tensor b1 = run1(r, node("Unsqueeze"), {batch, i64({0})});
  Tensor target = run1(r, node("Concat", 13, attr("axis", int64_t(0))), {b1, i64({-1})});
  CHECK(target.to_int_vector() == std::vector<int64_t>{2, -1});
  Tensor y = run1(r, node("Reshape"), {x, target});
  CHECK(y.shape() == Dims{2, 12});
  CHECK(y.get_as_double(23) == 23.0);
}

TEST_CASE("Transpose layout changes (NCHW <-> NHWC, tiled path) match index math, odd sizes") {
  const OpRegistry& r = reference_registry();
  for (const Dims& shape : {Dims{3, 5, 7, 33}, Dims{1, 64, 9, 9}, Dims{2, 3, 1, 70}}) {
    for (const std::vector<int64_t>& perm :
         {ints({0, 2, 3, 1}), ints({0, 3, 1, 2}), ints({2, 3, 0, 1}), ints({0, 1, 3, 2})}) {
      CAPTURE(dims_str(shape));
      CAPTURE(dims_str(perm));
      const Tensor x = iota(shape);
      const Tensor y = run1(r, node("Transpose", 13, attr("perm", perm)), {x});
      // y[o0,o1,o2,o3] = x[i] with i_perm[k] = o_k.
      const Dims& ys = y.shape();
      int bad = 0;
      for (int64_t a = 0; a < ys[0]; ++a)
        for (int64_t b = 0; b < ys[1]; ++b)
          for (int64_t c = 0; c < ys[2]; ++c)
            for (int64_t d = 0; d < ys[3]; ++d) {
              int64_t idx[4];
              const int64_t o[4] = {a, b, c, d};
              for (int k = 0; k < 4; ++k) idx[perm[size_t(k)]] = o[k];
              const int64_t src =
                  ((idx[0] * shape[1] + idx[1]) * shape[2] + idx[2]) * shape[3] + idx[3];
              const int64_t dst = ((a * ys[1] + b) * ys[2] + c) * ys[3] + d;
              bad += y.data<float>()[dst] != float(src);
            }
      CHECK(bad == 0);
    }
  }
  // uint8 (1-byte elements) takes the same tiled path.
  Tensor q(DType::U8, {2, 3, 4, 5});
  for (int64_t i = 0; i < q.numel(); ++i) q.data<uint8_t>()[i] = uint8_t(i);
  const Tensor qt = run1(r, node("Transpose", 13, attr("perm", ints({0, 2, 3, 1}))), {q});
  CHECK(qt.shape() == Dims{2, 4, 5, 3});
  CHECK(qt.data<uint8_t>()[1] == 20);   // y[0,0,0,1] = x[0,1,0,0]
  CHECK(qt.data<uint8_t>()[3] == 1);    // y[0,0,1,0] = x[0,0,0,1]
  CHECK(qt.data<uint8_t>()[60] == 60);  // y[1,0,0,0] = x[1,0,0,0]
}
