#include "loom/optim/logit_scale_clamp.h"

#include <vector>

#include "loom/kernels/cpu/precision.h"

namespace loom {

void clamp_logit_scale(ParamStore& store, int index) {
  const Param& p = store.at(index);
  std::vector<Segment> held;
  if (store.storage().shard_weights) {
    for (const Segment& s : store.owned_slices())
      if (s.param == index) held.push_back(s);
  } else {
    held.push_back(Segment{index, 0, p.numel(), 0});
  }
  const DType wt = store.storage().weights;
  for (const Segment& s : held) {
    // A handful of elements (logit_scale is one): converted one at a time through fp32.
    char* data = static_cast<char*>(store.weight_data(s));
    for (int64_t i = 0; i < s.count; i++) {
      float v;
      cpu::to_f32(data + size_t(i) * dtype_size(wt), wt, &v, 1);
      v = clamp_logit_scale(v);
      cpu::from_f32(&v, data + size_t(i) * dtype_size(wt), wt, 1);
    }
  }
}

}  // namespace loom
