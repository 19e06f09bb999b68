// Identity and Dropout (inference mode: output = input, optional mask = all true). Usually
// removed by the remove-identity pass; these kernels run when that pass is switched off.
#include <cstring>

#include "ops/ops.h"

namespace engine {

void register_identity_ops(OpRegistry& r) {
  auto copy_infer = [](InferContext& c) {
    c.set_output(0, c.dtype(0), c.shape(0));
    if (c.num_outputs() > 1) c.set_output(1, DType::Bool, c.shape(0));
  };
  auto copy_kernel = [](KernelContext& k) {
    if (k.in(0).nbytes()) std::memcpy(k.out(0).raw(), k.in(0).raw(), k.in(0).nbytes());
    if (k.outputs.size() > 1) {
      bool* m = k.out(1).data<bool>();
      for (int64_t i = 0; i < k.out(1).numel(); ++i) m[i] = true;
    }
  };
  r.add({"Identity", "", 1, 1, 1, 1, copy_infer, copy_kernel, nullptr, nullptr});
  // Dropout opset 12+: inputs ratio (default 0.5) and training_mode (default false). Training mode
  // with a non-zero ratio draws random masks, which an inference engine does not do.
  auto dropout_kernel = [copy_kernel](KernelContext& k) {
    const bool training = k.has_input(2) && k.in(2).numel() && k.in(2).get_as_int(0) != 0;
    const double ratio = k.has_input(1) && k.in(1).numel() ? k.in(1).get_as_double(0) : 0.5;
    ENGINE_CHECK(!training || ratio == 0.0,
                 "Dropout in training mode (random masks) is not supported; export the model "
                 "in eval mode");
    copy_kernel(k);
  };
  r.add({"Dropout", "", 1, 3, 1, 2, copy_infer, dropout_kernel, nullptr, nullptr});
}

}  // namespace engine
