// Elementwise, activation and reduction ops. Expected values are computed by hand (or by closed
// formulas written out in the test), not taken from the implementation.
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/broadcast.h"
#include "ops/ops.h"
#include "tests/op_test_util.h"

using engine::Dims;
using engine::DType;
using engine::Tensor;
using engine::test::check_close;
using engine::test::NodeSpec;
using engine::test::run_node;

namespace {

engine::OpRegistry make_registry() {
  engine::OpRegistry r;
  engine::register_elementwise_ops(r);
  engine::register_activation_ops(r);
  engine::register_reduce_ops(r);
  return r;
}

Tensor f32(Dims shape, std::vector<float> v) {
  return Tensor::from_vector<float>(shape, v);
}
Tensor i32(Dims shape, std::vector<int32_t> v) {
  return Tensor::from_vector<int32_t>(shape, v);
}
Tensor i64(Dims shape, std::vector<int64_t> v) {
  return Tensor::from_vector<int64_t>(shape, v);
}

Tensor f16(Dims shape, const std::vector<float>& v) {
  Tensor t(DType::F16, shape);
  auto* p = static_cast<uint16_t*>(t.raw());
  for (size_t i = 0; i < v.size(); ++i) p[i] = engine::float_to_half(v[i]);
  return t;
}

NodeSpec spec(const char* op, int opset = 17) {
  NodeSpec s;
  s.op_type = op;
  s.opset = opset;
  return s;
}

Tensor run1(const char* op, const std::vector<Tensor>& in, int opset = 17,
            engine::Attributes attrs = {}) {
  static const engine::OpRegistry r = make_registry();
  NodeSpec s = spec(op, opset);
  s.attrs = std::move(attrs);
  return run_node(r, s, in)[0];
}

engine::Attributes attrs_i(const char* name, int64_t v) {
  engine::Attributes a;
  a.set(name, v);
  return a;
}

void check_ints(const Tensor& got, const std::vector<int64_t>& want, const Dims& shape) {
  REQUIRE(got.shape() == shape);
  REQUIRE(size_t(got.numel()) == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element ", i);
    CHECK(got.get_as_int(int64_t(i)) == want[i]);
  }
}

void check_bools(const Tensor& got, const std::vector<bool>& want, const Dims& shape) {
  REQUIRE(got.dtype() == DType::Bool);
  REQUIRE(got.shape() == shape);
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element ", i);
    CHECK(got.data<bool>()[i] == want[i]);
  }
}

}  // namespace

// ---------------------------------------------------------------- broadcasting helpers

TEST_CASE("broadcast: output shapes") {
  using engine::bcast::broadcast_shape;
  CHECK(broadcast_shape({3, 1, 5}, {1, 7, 1}) == Dims{3, 7, 5});
  CHECK(broadcast_shape({}, {2, 3}) == Dims{2, 3});
  CHECK(broadcast_shape({2, 3}, {}) == Dims{2, 3});
  CHECK(broadcast_shape({4, 1}, {3}) == Dims{4, 3});
  CHECK(broadcast_shape({0}, {1}) == Dims{0});
  CHECK(broadcast_shape({2, 1, 4}, {6, 1}) == Dims{2, 6, 4});
  CHECK(engine::bcast::broadcast_shapes({{2, 1}, {1, 3}, {5, 1, 1}}) == Dims{5, 2, 3});
  CHECK_THROWS_WITH_AS(broadcast_shape({2, 3}, {4}), doctest::Contains("not broadcastable"),
                       engine::Error);
  CHECK_THROWS_AS(broadcast_shape({0}, {2}), engine::Error);
  CHECK(engine::bcast::broadcastable_to({3, 1}, {2, 3, 4}));
  CHECK_FALSE(engine::bcast::broadcastable_to({2, 3, 4}, {3, 4}));
  CHECK_FALSE(engine::bcast::broadcastable_to({3}, {3, 4}));
}

TEST_CASE("broadcast: indexer collapses dims") {
  using engine::bcast::Indexer;
  // Same shape: one flat run.
  Indexer same({2, 3, 4}, {{2, 3, 4}, {2, 3, 4}});
  CHECK(same.collapsed_dims() == Dims{24});
  CHECK(same.inner_stride(0) == 1);
  CHECK(same.inner_stride(1) == 1);
  // Scalar: stride 0 everywhere.
  Indexer scal({2, 3, 4}, {{2, 3, 4}, {}});
  CHECK(scal.collapsed_dims() == Dims{24});
  CHECK(scal.inner_stride(1) == 0);
  // Bias over the last dim: leading dims merge.
  Indexer bias({2, 3, 4}, {{2, 3, 4}, {4}});
  CHECK(bias.collapsed_dims() == Dims{6, 4});
  // Per-channel [C,1,1] against NCHW: H and W merge.
  Indexer chan({1, 3, 5, 7}, {{1, 3, 5, 7}, {3, 1, 1}});
  CHECK(chan.collapsed_dims() == Dims{3, 35});
  CHECK(chan.inner_stride(1) == 0);
  // Walk segments of [2,3] + [3,1] -> offsets of input 1 follow the row index.
  Indexer ix({2, 3}, {{2, 3}, {2, 1}});
  std::vector<int64_t> seen;
  ix.for_segments(1, 5, [&](int64_t o, const int64_t* in, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      CHECK(in[0] + i == o + i);
      seen.push_back(in[1] + i * ix.inner_stride(1));
    }
  });
  CHECK(seen == std::vector<int64_t>{0, 0, 1, 1});
}

// ---------------------------------------------------------------- binary arithmetic

TEST_CASE("Add: [3,1,5] + [1,7,1] broadcasts to [3,7,5]") {
  std::vector<float> a(15), b(7), want(3 * 7 * 5);
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 5; ++k) a[size_t(i * 5 + k)] = float(10 * i + k);
  for (int j = 0; j < 7; ++j) b[size_t(j)] = float(100 * j);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 7; ++j)
      for (int k = 0; k < 5; ++k) want[size_t((i * 7 + j) * 5 + k)] = float(10 * i + k + 100 * j);
  check_close(run1("Add", {f32({3, 1, 5}, a), f32({1, 7, 1}, b)}), want, {3, 7, 5});
  // Commuted operands give the same result.
  check_close(run1("Add", {f32({1, 7, 1}, b), f32({3, 1, 5}, a)}), want, {3, 7, 5});
}

TEST_CASE("Add/Sub/Mul with scalars and rank-0 tensors") {
  check_close(run1("Sub", {f32({2, 2}, {1, 2, 3, 4}), Tensor::scalar(1.5f)}),
              {-0.5f, 0.5f, 1.5f, 2.5f}, {2, 2});
  check_close(run1("Sub", {Tensor::scalar(10.0f), f32({3}, {1, 2, 3})}), {9, 8, 7}, {3});
  check_close(run1("Mul", {Tensor::scalar(2.0f), Tensor::scalar(3.5f)}), {7.0f}, {});
  check_close(run1("Mul", {f32({1}, {3}), f32({2, 1}, {1, -2})}), {3, -6}, {2, 1});
  // Double precision.
  Tensor d = run1("Add", {Tensor::from_vector<double>({2}, {0.1, 1e300}),
                          Tensor::from_vector<double>({1}, {0.2})});
  CHECK(d.dtype() == DType::F64);
  CHECK(d.data<double>()[0] == doctest::Approx(0.3).epsilon(1e-15));
}

TEST_CASE("Add/Mul on integer types") {
  Tensor s = run1("Add", {i64({2, 1}, {1, 2}), i64({3}, {10, 20, 30})});
  CHECK(s.dtype() == DType::I64);
  check_ints(s, {11, 21, 31, 12, 22, 32}, {2, 3});
  check_ints(run1("Mul", {i32({3}, {-3, 4, 100000}), i32({}, {3})}), {-9, 12, 300000}, {3});
  // uint8 wraps around.
  Tensor u = run1("Add", {Tensor::from_vector<uint8_t>({2}, {250, 3}),
                          Tensor::from_vector<uint8_t>({2}, {10, 4})});
  check_ints(u, {4, 7}, {2});
  // int32 overflow wraps (two's complement) instead of being undefined.
  check_ints(run1("Add", {i32({1}, {2147483647}), i32({1}, {1})}), {-2147483648LL}, {1});
}

TEST_CASE("Div: integer division truncates toward zero") {
  check_ints(run1("Div", {i32({4}, {7, -7, 7, -7}), i32({4}, {2, 2, -2, -2})}), {3, -3, -3, 3},
             {4});
  check_ints(run1("Div", {i64({3}, {9, -1, 0}), i64({}, {4})}), {2, 0, 0}, {3});
  // INT_MIN / -1 wraps instead of trapping.
  check_ints(run1("Div", {i32({1}, {std::numeric_limits<int32_t>::min()}), i32({1}, {-1})}),
             {std::numeric_limits<int32_t>::min()}, {1});
  CHECK_THROWS_WITH_AS(run1("Div", {i32({2}, {1, 2}), i32({2}, {1, 0})}),
                       doctest::Contains("division by zero"), engine::Error);
  Tensor fd = run1("Div", {f32({3}, {1, -3, 1}), f32({3}, {4, 2, 0})});
  CHECK(fd.data<float>()[0] == 0.25f);
  CHECK(fd.data<float>()[1] == -1.5f);
  CHECK(fd.data<float>()[2] == std::numeric_limits<float>::infinity());  // float x / 0 is fine
}

TEST_CASE("Mod: integer and fmod semantics") {
  engine::Attributes fm = attrs_i("fmod", 1);
  // fmod = 0: the result has the sign of the divisor (Python %).
  check_ints(run1("Mod", {i32({4}, {7, -7, 7, -7}), i32({4}, {3, 3, -3, -3})}), {1, 2, -2, -1},
             {4});
  // fmod = 1: the sign of the dividend (C fmod).
  check_ints(run1("Mod", {i32({4}, {7, -7, 7, -7}), i32({4}, {3, 3, -3, -3})}, 13, fm),
             {1, -1, 1, -1}, {4});
  check_close(run1("Mod", {f32({2}, {5.5f, -5.5f}), f32({1}, {2})}, 13, fm), {1.5f, -1.5f}, {2});
  CHECK_THROWS_AS(run1("Mod", {f32({1}, {1}), f32({1}, {1})}), engine::Error);
}

TEST_CASE("Pow: mixed base and exponent types") {
  Tensor a = run1("Pow", {f32({3}, {2, 3, -2}), i64({1}, {3})});
  CHECK(a.dtype() == DType::F32);
  check_close(a, {8, 27, -8}, {3});
  // Integer base, float exponent (ONNX test_pow_types_int32_float32).
  Tensor b = run1("Pow", {i32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})});
  CHECK(b.dtype() == DType::I32);
  check_ints(b, {1, 32, 729}, {3});
  check_ints(run1("Pow", {i64({4}, {2, -3, 1, -1}), i64({4}, {10, 3, -5, -3})}), {1024, -27, 1, -1},
             {4});
  check_close(run1("Pow", {f32({2, 1}, {4, 9}), f32({2}, {0.5f, 2})}), {2, 16, 3, 81}, {2, 2});
  check_close(run1("Pow", {f32({2}, {-3, 1.5f}), Tensor::scalar(2.0f)}), {9, 2.25f}, {2});
}

TEST_CASE("binary ops: shape and type errors") {
  CHECK_THROWS_WITH_AS(run1("Add", {f32({2, 3}, {1, 2, 3, 4, 5, 6}), f32({4}, {1, 2, 3, 4})}),
                       doctest::Contains("not broadcastable"), engine::Error);
  CHECK_THROWS_WITH_AS(run1("Mul", {f32({1}, {1}), i32({1}, {1})}), doctest::Contains("same type"),
                       engine::Error);
  CHECK_THROWS_AS(
      run1("Add", {Tensor::from_vector<bool>({1}, {true}), Tensor::from_vector<bool>({1}, {true})}),
      engine::Error);
}

TEST_CASE("comparisons and logic produce bool") {
  check_bools(run1("Equal", {i32({3}, {1, 2, 3}), i32({1}, {2})}), {false, true, false}, {3});
  check_bools(run1("Less", {f32({2, 1}, {1, 5}), f32({2}, {3, 5})}), {true, true, false, false},
              {2, 2});
  check_bools(run1("Greater", {f32({3}, {1, 5, NAN}), f32({}, {2})}), {false, true, false}, {3});
  check_bools(run1("GreaterOrEqual", {i64({3}, {1, 2, 3}), i64({}, {2})}), {false, true, true},
              {3});
  check_bools(run1("LessOrEqual", {i64({3}, {1, 2, 3}), i64({}, {2})}), {true, true, false}, {3});
  Tensor t = Tensor::from_vector<bool>({4}, {true, true, false, false});
  Tensor u = Tensor::from_vector<bool>({4}, {true, false, true, false});
  check_bools(run1("And", {t, u}), {true, false, false, false}, {4});
  check_bools(run1("Or", {t, u}), {true, true, true, false}, {4});
  check_bools(run1("Xor", {t, u}), {false, true, true, false}, {4});
  check_bools(run1("Not", {t}), {false, false, true, true}, {4});
}

// ---------------------------------------------------------------- variadic, Where

TEST_CASE("Max/Min/Sum/Mean are variadic and broadcast") {
  Tensor a = f32({3}, {1, 5, 3});
  Tensor b = f32({1}, {4});
  Tensor c = f32({2, 1}, {0, 6});
  check_close(run1("Max", {a, b, c}), {4, 5, 4, 6, 6, 6}, {2, 3});
  check_close(run1("Min", {a, b, c}), {0, 0, 0, 1, 4, 3}, {2, 3});
  check_close(run1("Sum", {a, b, c}), {5, 9, 7, 11, 15, 13}, {2, 3});
  check_close(run1("Mean", {a, b, c}), {5.f / 3, 3, 7.f / 3, 11.f / 3, 5, 13.f / 3}, {2, 3});
  // One input: identity.
  check_close(run1("Max", {a}), {1, 5, 3}, {3});
  check_close(run1("Sum", {a}), {1, 5, 3}, {3});
  // Integer and float16 inputs.
  check_ints(run1("Max", {i64({2}, {-5, 7}), i64({2}, {3, 2})}), {3, 7}, {2});
  Tensor h = run1("Min", {f16({3}, {1.5f, -2, 8}), f16({3}, {2, -4, 0.25f})});
  CHECK(h.dtype() == DType::F16);
  check_close(h, {1.5f, -4, 0.25f}, {3});
  // NaN propagates (numpy.maximum).
  CHECK(std::isnan(run1("Max", {f32({1}, {NAN}), f32({1}, {1})}).data<float>()[0]));
  CHECK_THROWS_AS(run1("Max", {f32({2}, {1, 2}), f32({3}, {1, 2, 3})}), engine::Error);
}

TEST_CASE("Where broadcasts condition, X and Y") {
  Tensor cond = Tensor::from_vector<bool>({2, 1}, {true, false});
  check_close(run1("Where", {cond, f32({3}, {1, 2, 3}), f32({}, {-1})}), {1, 2, 3, -1, -1, -1},
              {2, 3});
  Tensor cond2 = Tensor::from_vector<bool>({3}, {false, true, false});
  check_ints(run1("Where", {cond2, i64({2, 1}, {7, 8}), i64({3}, {1, 2, 3})}), {1, 7, 3, 1, 8, 3},
             {2, 3});
  CHECK_THROWS_AS(run1("Where", {f32({1}, {1}), f32({1}, {1}), f32({1}, {1})}), engine::Error);
}

// ---------------------------------------------------------------- unary math

TEST_CASE("unary math") {
  check_close(run1("Sqrt", {f32({3}, {0, 4, 2.25f})}), {0, 2, 1.5f}, {3});
  check_close(run1("Exp", {f32({2}, {0, 1})}), {1, 2.718281828f}, {2});
  check_close(run1("Log", {f32({2}, {1, 2.718281828f})}), {0, 1}, {2});
  check_close(run1("Reciprocal", {f32({2}, {4, -0.5f})}), {0.25f, -2}, {2});
  check_close(run1("Floor", {f32({4}, {1.5f, -1.5f, 2, -0.1f})}), {1, -2, 2, -1}, {4});
  check_close(run1("Ceil", {f32({4}, {1.5f, -1.5f, 2, -0.1f})}), {2, -1, 2, 0}, {4});
  check_close(run1("Round", {f32({5}, {0.5f, 1.5f, 2.5f, -0.5f, 2.6f})}), {0, 2, 2, 0, 3}, {5});
  check_close(run1("Neg", {f32({2}, {1, -2})}), {-1, 2}, {2});
  check_ints(run1("Neg", {i32({2}, {3, -4})}), {-3, 4}, {2});
  check_ints(run1("Abs", {i64({3}, {-3, 0, 5})}), {3, 0, 5}, {3});
  check_close(run1("Abs", {f32({2}, {-1.5f, 2})}), {1.5f, 2}, {2});
  check_close(run1("Sign", {f32({3}, {-2, 0, 3})}), {-1, 0, 1}, {3});
  check_close(run1("Sqrt", {f16({2}, {4, 9})}), {2, 3}, {2});
  CHECK_THROWS_WITH_AS(run1("Sqrt", {i32({1}, {4})}), doctest::Contains("int32"), engine::Error);
}

// ---------------------------------------------------------------- Cast

TEST_CASE("Cast float -> int truncates toward zero") {
  Tensor y =
      run1("Cast", {f32({5}, {1.7f, -1.7f, 2.5f, -0.5f, 100.99f})}, 13, attrs_i("to", 6));  // INT32
  CHECK(y.dtype() == DType::I32);
  check_ints(y, {1, -1, 2, 0, 100}, {5});
  Tensor z = run1("Cast", {f32({2}, {3.9f, -3.9f})}, 13, attrs_i("to", 7));  // INT64
  CHECK(z.dtype() == DType::I64);
  check_ints(z, {3, -3}, {2});
  // int64 -> int8 wraps like C / numpy.
  check_ints(run1("Cast", {i64({2}, {300, -129})}, 13, attrs_i("to", 3)), {44, 127}, {2});
  // bool
  check_bools(run1("Cast", {f32({3}, {0, -0.5f, 2})}, 13, attrs_i("to", 9)), {false, true, true},
              {3});
  check_close(run1("Cast", {Tensor::from_vector<bool>({2}, {true, false})}, 13, attrs_i("to", 1)),
              {1, 0}, {2});
}

TEST_CASE("Cast float -> float16 -> float round trip") {
  // 1/3 rounds to the nearest half 0x3555 = 0.333251953125; 1e-8 underflows to 0;
  // 65520 overflows to inf; 2^-24 is the smallest subnormal.
  const float tiny = std::ldexp(1.0f, -24);
  Tensor h =
      run1("Cast", {f32({6}, {1.0f, -0.5f, 65504, 1.0f / 3, 1e-8f, tiny})}, 13, attrs_i("to", 10));
  CHECK(h.dtype() == DType::F16);
  const auto* bits = static_cast<const uint16_t*>(h.raw());
  CHECK(bits[0] == 0x3c00);
  CHECK(bits[1] == 0xb800);
  CHECK(bits[2] == 0x7bff);
  CHECK(bits[3] == 0x3555);
  CHECK(bits[4] == 0x0000);
  CHECK(bits[5] == 0x0001);
  Tensor back = run1("Cast", {h}, 13, attrs_i("to", 1));
  check_close(back, {1.0f, -0.5f, 65504, 0.333251953125f, 0, tiny}, {6}, 0, 0);
  // double -> float16 directly; float16 -> double.
  Tensor hd = run1("Cast", {Tensor::from_vector<double>({1}, {0.1})}, 13, attrs_i("to", 10));
  CHECK(static_cast<const uint16_t*>(hd.raw())[0] == 0x2e66);
  Tensor d = run1("Cast", {hd}, 13, attrs_i("to", 11));
  CHECK(d.dtype() == DType::F64);
  CHECK(d.data<double>()[0] == 0.0999755859375);
  // CastLike takes the target type from input 1.
  Tensor cl = run1("CastLike", {f32({2}, {2.5f, -7}), i64({}, {0})});
  check_ints(cl, {2, -7}, {2});
}

TEST_CASE("Cast rejects string and unknown targets") {
  CHECK_THROWS_WITH_AS(run1("Cast", {f32({1}, {1})}, 13, attrs_i("to", 8)),
                       doctest::Contains("string"), engine::Error);
  CHECK_THROWS_WITH_AS(run1("Cast", {f32({1}, {1})}, 13, attrs_i("to", 16)),
                       doctest::Contains("bfloat16"), engine::Error);
  CHECK_THROWS_AS(run1("Cast", {f32({1}, {1})}, 13, attrs_i("to", 99)), engine::Error);
  CHECK_THROWS_WITH_AS(run1("Cast", {f32({1}, {1})}, 13), doctest::Contains("'to'"), engine::Error);
}

// ---------------------------------------------------------------- activations

TEST_CASE("Relu, LeakyRelu, PRelu") {
  check_close(run1("Relu", {f32({4}, {-1, 0, 2, -0.5f})}), {0, 0, 2, 0}, {4});
  check_ints(run1("Relu", {i32({3}, {-4, 0, 7})}), {0, 0, 7}, {3});
  check_close(run1("LeakyRelu", {f32({3}, {-100, 0, 3})}), {-1, 0, 3}, {3});  // alpha 0.01
  engine::Attributes a;
  a.set("alpha", 0.5f);
  check_close(run1("LeakyRelu", {f32({2}, {-4, 4})}, 17, a), {-2, 4}, {2});
  // Slope per channel [C,1,1] on [1,3,1,2].
  Tensor x = f32({1, 3, 1, 2}, {-1, 1, -2, 2, -3, 3});
  check_close(run1("PRelu", {x, f32({3, 1, 1}, {0.1f, 0.2f, 0.3f})}),
              {-0.1f, 1, -0.4f, 2, -0.9f, 3}, {1, 3, 1, 2});
  check_close(run1("PRelu", {x, f32({1}, {2})}), {-2, 1, -4, 2, -6, 3}, {1, 3, 1, 2});
  // The slope may not grow the output.
  CHECK_THROWS_WITH_AS(run1("PRelu", {f32({2}, {1, 2}), f32({2, 2}, {1, 1, 1, 1})}),
                       doctest::Contains("does not broadcast"), engine::Error);
  // A 1-D slope of size C that does not broadcast numpy-style is per channel (old exporters).
  check_close(run1("PRelu", {x, f32({3}, {0.1f, 0.2f, 0.3f})}), {-0.1f, 1, -0.4f, 2, -0.9f, 3},
              {1, 3, 1, 2});
  CHECK_THROWS_AS(run1("PRelu", {x, f32({4}, {1, 1, 1, 1})}), engine::Error);
}

TEST_CASE("Add/Mul: legacy opset-6 broadcasting with axis") {
  // A [2,3,2] + B [3] at axis 1: B[c] is added to every A[n,c,w].
  Tensor a = f32({2, 3, 2}, {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1});
  engine::Attributes at;
  at.set("broadcast", int64_t(1));
  at.set("axis", int64_t(1));
  check_close(run1("Add", {a, f32({3}, {10, 20, 30})}, 6, at),
              {10, 10, 20, 20, 30, 30, 11, 11, 21, 21, 31, 31}, {2, 3, 2});
  // B [2,3] at axis 0 multiplies along the first two dims.
  at.set("axis", int64_t(0));
  check_close(run1("Mul", {a, f32({2, 3}, {1, 2, 3, 4, 5, 6})}, 6, at),
              {0, 0, 0, 0, 0, 0, 4, 4, 5, 5, 6, 6}, {2, 3, 2});
  at.set("axis", int64_t(3));
  CHECK_THROWS_WITH_AS(run1("Add", {a, f32({3}, {1, 2, 3})}, 6, at),
                       doctest::Contains("does not place B"), engine::Error);
}

TEST_CASE("Clip: opset 6 attributes vs opset 13 optional inputs") {
  Tensor x = f32({5}, {-3, -1, 0, 1, 3});
  engine::Attributes a;
  a.set("min", -1.5f);  // max keeps its default (+inf)
  check_close(run1("Clip", {x}, 6, a), {-1.5f, -1, 0, 1, 3}, {5});
  engine::Attributes none;
  check_close(run1("Clip", {x}, 6, none), {-3, -1, 0, 1, 3}, {5});
  // opset 13: min omitted, max given.
  check_close(run1("Clip", {x, Tensor(), Tensor::scalar(0.5f)}, 13), {-3, -1, 0, 0.5f, 0.5f}, {5});
  check_close(run1("Clip", {x, Tensor::scalar(-1.0f)}, 13), {-1, -1, 0, 1, 3}, {5});
  check_close(run1("Clip", {x}, 13), {-3, -1, 0, 1, 3}, {5});
  // min > max: everything becomes max.
  check_close(run1("Clip", {x, Tensor::scalar(2.0f), Tensor::scalar(1.0f)}, 13), {1, 1, 1, 1, 1},
              {5});
  // Integer types (opset 12+).
  check_ints(run1("Clip",
                  {Tensor::from_vector<int8_t>({4}, {-128, -5, 5, 127}),
                   Tensor::scalar<int8_t>(-10), Tensor::scalar<int8_t>(10)},
                  13),
             {-10, -5, 5, 10}, {4});
  CHECK_THROWS_AS(run1("Clip", {x, f32({2}, {0, 1})}, 13), engine::Error);
  CHECK_THROWS_AS(run1("Clip", {x, Tensor::scalar(1.0)}, 13), engine::Error);  // double vs float
}

TEST_CASE("sigmoid-like and other pointwise activations") {
  check_close(run1("Sigmoid", {f32({3}, {0, 2, -100})}), {0.5f, 0.880797078f, 0}, {3});
  check_close(run1("HardSigmoid", {f32({3}, {-3, 0, 1})}), {0, 0.5f, 0.7f}, {3});
  engine::Attributes hs;
  hs.set("alpha", 0.5f);
  hs.set("beta", 0.6f);
  check_close(run1("HardSigmoid", {f32({3}, {-2, 0, 1})}, 17, hs), {0, 0.6f, 1}, {3});
  check_close(run1("HardSwish", {f32({4}, {-4, -3, 1, 3})}, 14), {0, 0, 2.0f / 3, 3}, {4});
  check_close(run1("Tanh", {f32({2}, {0, 1})}), {0, 0.761594156f}, {2});
  check_close(run1("Elu", {f32({2}, {-1, 2})}), {-0.632120559f, 2}, {2});
  // Selu(x<0) = gamma * alpha * (e^x - 1).
  check_close(run1("Selu", {f32({2}, {-1, 2})}),
              {float(1.0507009873554805 * 1.6732632423543772 * (std::exp(-1.0) - 1)),
               float(1.0507009873554805 * 2)},
              {2});
  check_close(run1("Celu", {f32({2}, {-1, 2})}), {-0.632120559f, 2}, {2});
  check_close(run1("ThresholdedRelu", {f32({3}, {0.5f, 1, 1.5f})}), {0, 0, 1.5f}, {3});
  check_close(run1("Softplus", {f32({3}, {0, 100, -100})}), {0.693147181f, 100, 0}, {3});
  check_close(run1("Softsign", {f32({2}, {1, -3})}), {0.5f, -0.75f}, {2});
  check_close(run1("Erf", {f32({2}, {0, 1})}), {0, 0.842700793f}, {2});
  check_close(run1("Sigmoid", {Tensor::from_vector<double>({1}, {0.0})}), {0.5f}, {1});
}

TEST_CASE("Softmax: opset 11 coerces to 2-D, opset 13 uses one axis") {
  Tensor x = f32({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  // opset 11, default axis 1: rows [0,1,2,3] and [4,5,6,7], e^k / (1 + e + e^2 + e^3).
  const float s = 1 + 2.718281828f + 7.389056099f + 20.08553692f;
  const std::vector<float> row = {1 / s, 2.718281828f / s, 7.389056099f / s, 20.08553692f / s};
  std::vector<float> want11 = row;
  want11.insert(want11.end(), row.begin(), row.end());
  check_close(run1("Softmax", {x}, 11), want11, {2, 2, 2});
  // opset 13, default axis -1: pairs differing by 1.
  const float p = 1 / (1 + 2.718281828f), q = 1 - p;
  check_close(run1("Softmax", {x}, 13), {p, q, p, q, p, q, p, q}, {2, 2, 2});
  // opset 13, axis 1: pairs (x[i,0,j], x[i,1,j]) differ by 2 (strided reduction).
  const float u = 1 / (1 + 7.389056099f), v = 1 - u;
  check_close(run1("Softmax", {x}, 13, attrs_i("axis", 1)), {u, u, v, v, u, u, v, v}, {2, 2, 2});
  // opset 11, axis 2: same as opset 13 axis -1 here.
  check_close(run1("Softmax", {x}, 11, attrs_i("axis", 2)), {p, q, p, q, p, q, p, q}, {2, 2, 2});
  // LogSoftmax.
  check_close(run1("LogSoftmax", {x}, 13),
              {std::log(p), std::log(q), std::log(p), std::log(q), std::log(p), std::log(q),
               std::log(p), std::log(q)},
              {2, 2, 2});
  std::vector<float> logrow;
  for (float r : row) logrow.push_back(std::log(r));
  std::vector<float> want11log = logrow;
  want11log.insert(want11log.end(), logrow.begin(), logrow.end());
  check_close(run1("LogSoftmax", {x}, 11), want11log, {2, 2, 2});
  // Large inputs stay finite (max subtraction).
  check_close(run1("Softmax", {f32({1, 2}, {1000, 1001})}), {p, q}, {1, 2});
  check_close(run1("LogSoftmax", {f32({1, 2}, {1000, 1001})}), {std::log(p), std::log(q)}, {1, 2});
  CHECK_THROWS_WITH_AS(run1("Softmax", {x}, 13, attrs_i("axis", 3)),
                       doctest::Contains("out of range"), engine::Error);
  check_close(run1("Softmax", {f16({2}, {0, 1})}, 13), {p, q}, {2}, 1e-3f, 1e-3f);
}

// ---------------------------------------------------------------- reductions

namespace {
// [[[1,2],[3,4]],[[5,6],[7,8]],[[9,10],[11,12]]] (ONNX reduce examples)
Tensor reduce_data() {
  return f32({3, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
}
engine::Attributes reduce_attrs(std::vector<int64_t> axes, int64_t keepdims,
                                bool with_axes = true) {
  engine::Attributes a;
  if (with_axes) a.set("axes", axes);
  a.set("keepdims", keepdims);
  return a;
}
}  // namespace

TEST_CASE("ReduceSum: axes as input (opset 13), keepdims, noop_with_empty_axes") {
  check_close(run1("ReduceSum", {reduce_data(), i64({1}, {1})}, 13), {4, 6, 12, 14, 20, 22},
              {3, 1, 2});
  check_close(run1("ReduceSum", {reduce_data(), i64({1}, {-2})}, 13, reduce_attrs({}, 0, false)),
              {4, 6, 12, 14, 20, 22}, {3, 2});
  // No axes: reduce everything (keepdims default 1).
  check_close(run1("ReduceSum", {reduce_data()}, 13), {78}, {1, 1, 1});
  check_close(run1("ReduceSum", {reduce_data(), i64({0}, {})}, 13), {78}, {1, 1, 1});
  // Empty axes with noop_with_empty_axes = 1: identity.
  engine::Attributes noop = attrs_i("noop_with_empty_axes", 1);
  check_close(run1("ReduceSum", {reduce_data(), i64({0}, {})}, 13, noop),
              {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {3, 2, 2});
  // Legacy attribute form (opset 11).
  check_close(run1("ReduceSum", {reduce_data()}, 11, reduce_attrs({0, 2}, 0)),
              {5 + 6 + 9 + 10 + 1 + 2 + 0.0f, 3 + 4 + 7 + 8 + 11 + 12 + 0.0f}, {2});
  // Integer sum.
  check_ints(run1("ReduceSum", {i64({2, 3}, {1, 2, 3, 4, 5, 6}), i64({1}, {1})}, 13), {6, 15},
             {2, 1});
}

TEST_CASE("ReduceMean/Max/Min/Prod with attribute axes") {
  check_close(run1("ReduceMean", {reduce_data()}, 13, reduce_attrs({1}, 0)), {2, 3, 6, 7, 10, 11},
              {3, 2});
  check_close(run1("ReduceMean", {reduce_data()}, 13, reduce_attrs({}, 1, false)), {6.5f},
              {1, 1, 1});
  check_close(run1("ReduceMax", {reduce_data()}, 13, reduce_attrs({0}, 1)), {9, 10, 11, 12},
              {1, 2, 2});
  check_close(run1("ReduceMin", {reduce_data()}, 13, reduce_attrs({-1}, 0)), {1, 3, 5, 7, 9, 11},
              {3, 2});
  // Non-adjacent axes {0, 2}: products over x[i, j, k] for each j.
  check_close(run1("ReduceProd", {reduce_data()}, 13, reduce_attrs({0, 2}, 1)),
              {1 * 2 * 5 * 6 * 9 * 10, 3 * 4 * 7 * 8 * 11 * 12}, {1, 2, 1});
  // keepdims = 0 over all axes gives a scalar.
  check_close(run1("ReduceMax", {reduce_data()}, 13, reduce_attrs({0, 1, 2}, 0)), {12}, {});
  // opset 18: axes as input for every reduction.
  check_close(run1("ReduceMean", {reduce_data(), i64({2}, {0, 1})}, 18, reduce_attrs({}, 0, false)),
              {6, 7}, {2});
  check_ints(run1("ReduceMax", {i32({2, 2}, {-5, 3, 8, -1}), i64({1}, {1})}, 18), {3, 8}, {2, 1});
}

TEST_CASE("ReduceL1/L2/SumSquare/LogSum/LogSumExp") {
  Tensor x = f32({2, 2}, {3, -4, 1, 2});
  check_close(run1("ReduceL1", {x}, 13, reduce_attrs({1}, 0)), {7, 3}, {2});
  check_close(run1("ReduceL2", {x}, 13, reduce_attrs({1}, 0)), {5, std::sqrt(5.0f)}, {2});
  check_close(run1("ReduceSumSquare", {x}, 13, reduce_attrs({0}, 0)), {10, 20}, {2});
  check_close(run1("ReduceLogSum", {f32({2, 2}, {1, 2, 3, 4})}, 13, reduce_attrs({1}, 0)),
              {std::log(3.0f), std::log(7.0f)}, {2});
  // Stable for large values: log(e^1000 + e^1000) = 1000 + ln 2.
  check_close(run1("ReduceLogSumExp", {f32({1, 2}, {1000, 1000})}, 13, reduce_attrs({1}, 0)),
              {1000.693147f}, {1});
  check_close(run1("ReduceLogSumExp", {f32({2}, {0, 0})}, 13, reduce_attrs({0}, 1)), {0.693147181f},
              {1});
}

TEST_CASE("reductions: empty inputs, large inputs, errors") {
  // Reducing an empty axis gives the identity of the reduction.
  Tensor e(DType::F32, {2, 0});
  check_close(run1("ReduceSum", {e, i64({1}, {1})}, 13), {0, 0}, {2, 1});
  check_close(run1("ReduceProd", {e}, 13, reduce_attrs({1}, 0)), {1, 1}, {2});
  // Large enough to run in parallel: sum of columns and of rows of an all-ones [300, 200].
  Tensor ones(DType::F32, {300, 200});
  for (int64_t i = 0; i < ones.numel(); ++i) ones.data<float>()[i] = 1;
  check_close(run1("ReduceSum", {ones, i64({1}, {0})}, 13, reduce_attrs({}, 0, false)),
              std::vector<float>(200, 300), {200});
  check_close(run1("ReduceMean", {ones}, 13, reduce_attrs({1}, 0)), std::vector<float>(300, 1),
              {300});
  CHECK_THROWS_WITH_AS(run1("ReduceSum", {reduce_data(), i64({1}, {3})}, 13),
                       doctest::Contains("out of range"), engine::Error);
  CHECK_THROWS_WITH_AS(run1("ReduceMean", {reduce_data()}, 13, reduce_attrs({1, -2}, 1)),
                       doctest::Contains("twice"), engine::Error);
  CHECK_THROWS_AS(run1("ReduceMean", {reduce_data()}, 13, reduce_attrs({1}, 2)), engine::Error);
}

TEST_CASE("large broadcasts split across threads") {
  // [300, 200] + [200] and [300, 1]: checks the segment bookkeeping when chunks start mid-row.
  const int R = 300, C = 201;
  std::vector<float> a(static_cast<size_t>(R * C)), b(static_cast<size_t>(C));
  std::vector<float> c(static_cast<size_t>(R)), want(static_cast<size_t>(R * C));
  for (int i = 0; i < R; ++i) c[size_t(i)] = float(i * 1000);
  for (int j = 0; j < C; ++j) b[size_t(j)] = float(j);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) {
      a[size_t(i * C + j)] = 0.5f;
      want[size_t(i * C + j)] = float(i * 1000 + j) + 0.5f;
    }
  Tensor ab = run1("Add", {f32({R, C}, a), f32({C}, b)});
  check_close(run1("Add", {ab, f32({R, 1}, c)}), want, {R, C});
  check_close(run1("Sum", {f32({R, 1}, c), f32({C}, b), f32({}, {0.5f})}), want, {R, C});
}

TEST_CASE("extra ops: trig, IsNaN/IsInf, BitShift, Shrink, Hardmax") {
  check_close(run1("Cosh", {f32({2}, {0, 1})}), {1, 1.543080635f}, {2});
  check_close(run1("Atan", {f32({2}, {0, 1})}), {0, 0.785398163f}, {2});
  const float inf = std::numeric_limits<float>::infinity();
  check_bools(run1("IsNaN", {f32({3}, {NAN, 1, inf})}), {true, false, false}, {3});
  check_bools(run1("IsInf", {f32({4}, {-inf, 1, inf, NAN})}), {true, false, true, false}, {4});
  check_bools(run1("IsInf", {f32({2}, {-inf, inf})}, 17, attrs_i("detect_negative", 0)),
              {false, true}, {2});
  engine::Attributes left;
  left.set("direction", std::string("LEFT"));
  check_ints(run1("BitShift",
                  {Tensor::from_vector<uint8_t>({3}, {1, 3, 255}),
                   Tensor::from_vector<uint8_t>({3}, {2, 1, 9})},
                  17, left),
             {4, 6, 0}, {3});
  engine::Attributes bad;
  bad.set("direction", std::string("UP"));
  CHECK_THROWS_AS(
      run1("BitShift",
           {Tensor::from_vector<uint8_t>({1}, {1}), Tensor::from_vector<uint8_t>({1}, {1})}, 17,
           bad),
      engine::Error);
  engine::Attributes sh;
  sh.set("lambd", 1.0f);
  sh.set("bias", 0.5f);
  check_close(run1("Shrink", {f32({5}, {-2, -1, 0, 1, 2})}, 17, sh), {-1.5f, 0, 0, 0, 1.5f}, {5});
  // Hardmax: first maximum wins; opset 13 along the last axis, opset 11 over flattened rows.
  Tensor x = f32({2, 3}, {1, 3, 3, 0, -1, -2});
  check_close(run1("Hardmax", {x}, 13), {0, 1, 0, 1, 0, 0}, {2, 3});
  check_close(run1("Hardmax", {x}, 11, attrs_i("axis", 0)), {0, 1, 0, 0, 0, 0}, {2, 3});
}
