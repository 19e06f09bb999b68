// Post-training INT8 on the shared Fashion-MNIST models (suite "models"): calibrated on the first
// 256 training images as ../shared/README.md prescribes, evaluated on the first 1000 test images
// against the labels and against the FP32 model's own predictions.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "engine/engine.h"
#include "frontend/dataset.h"
#include "test_data.h"

namespace engine::test {
namespace {

const char* kTrain = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
const char* kTest = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const char* kTestLabels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

PreprocessOptions fashion_recipe() {
  PreprocessOptions p;
  p.pad = 2;
  p.channels = 3;
  parse_scale("1/255", p);
  p.mean = {0.2860405969887955f};
  p.std = {0.35302424451492254f};
  return p;
}

BatchSource calibration(const Dataset& ds, int64_t count, int64_t batch) {
  auto pos = std::make_shared<int64_t>(0);
  return [&ds, pos, count, batch](std::vector<Tensor>& in) {
    if (*pos >= count) return false;
    const int64_t n = std::min(batch, count - *pos);
    in.push_back(make_batch(ds, *pos, n).images);
    *pos += n;
    return true;
  };
}

int argmax(const float* row, int64_t n) {
  return int(std::max_element(row, row + n) - row);
}

struct Score {
  int correct_fp32 = 0, correct_int8 = 0, agree = 0, n = 0;
};

Score score(const Model& fp32, const Model& int8, const Dataset& test, int64_t count) {
  Score s;
  for (int64_t start = 0; start < count; start += 100) {
    const Batch b = make_batch(test, start, std::min<int64_t>(100, count - start));
    const Tensor yf = fp32.run({b.images})[0];
    const Tensor yq = int8.run({b.images})[0];
    for (size_t i = 0; i < b.labels.size(); ++i) {
      const int pf = argmax(yf.data<float>() + i * 10, 10);
      const int pq = argmax(yq.data<float>() + i * 10, 10);
      s.correct_fp32 += pf == b.labels[i];
      s.correct_int8 += pq == b.labels[i];
      s.agree += pf == pq;
      ++s.n;
    }
  }
  return s;
}

}  // namespace

TEST_SUITE("models") {
  TEST_CASE("W8A8 post-training quantization of the fashion models stays at FP32 accuracy") {
    const std::string dir = test_data_dir();
    if (dir.empty()) return;
    const Dataset train = Dataset::from_idx(kTrain, "", fashion_recipe());
    const Dataset test = Dataset::from_idx(kTest, kTestLabels, fashion_recipe());
    for (const std::string name : {"resnet18_fp32", "mobilenet_v2_fp32"}) {
      CAPTURE(name);
      const Model fp32 = Model::load(dir + "/models/fashion/" + name + ".onnx");
      quant::QuantConfig cfg;  // minmax, per-channel int8 weights, uint8 activations
      QuantizeReport rep;
      const Model int8 = fp32.quantize(cfg, calibration(train, 256, 64), &rep);
      CHECK(rep.samples == 256);
      for (const auto& d : rep.decisions)
        CHECK_MESSAGE(d.quantized, d.name << " stays FP32: " << d.reason);
      CHECK(rep.quantize_nodes == 1);
      CHECK(rep.dequantize_nodes == 1);
      const Score s = score(fp32, int8, test, 1000);
      MESSAGE(name << ": FP32 " << s.correct_fp32 << ", INT8 " << s.correct_int8
                   << " correct of 1000; agreement " << s.agree);
      // ONNX Runtime's MinMax per-channel QDQ model agrees with FP32 on 99.6-99.8 % of the test
      // set (../shared/README.md); hold ours to at least 99 % here, and top-1 within 0.5 points.
      CHECK(s.agree >= 990);
      CHECK(std::abs(s.correct_int8 - s.correct_fp32) <= 5);
      // Batch split (each thread runs its own samples through the whole graph): the INT8 graph
      // is separable, and the logits are bit-identical to running the batch layer by layer.
      const Batch b = make_batch(test, 0, 18);
      CHECK(int8.plan({b.images.shape()})->batch_separable);
      RunOptions split, whole;
      split.threads = whole.threads = 2;
      whole.batch_split = false;
      const Tensor ys = int8.run({b.images}, split)[0], yw = int8.run({b.images}, whole)[0];
      REQUIRE(ys.shape() == yw.shape());
      CHECK(std::memcmp(ys.raw(), yw.raw(), ys.nbytes()) == 0);
    }
  }
}

}  // namespace engine::test
