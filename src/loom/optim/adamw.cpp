#include "loom/optim/adamw.h"

#include <cmath>

#include "loom/kernels/cpu/adamw.h"

namespace loom {

AdamW::AdamW(ParamStore& params, AdamWOptions opt)
    : params_(params), opt_(opt), m_({params.numel()}), v_({params.numel()}) {}

void AdamW::step(double lr) {
  step_++;
  for (auto& p : params_.all()) {
    cpu::AdamWConfig c{float(lr), float(opt_.beta1), float(opt_.beta2), float(opt_.eps),
                       p.weight_decay ? float(opt_.weight_decay) : 0.f, long(step_)};
    cpu::adamw_step(p.value.f32(), p.grad.f32(), m_.f32() + p.offset, v_.f32() + p.offset, long(p.numel()), c);
  }
}

void clip_grads(ParamStore& params, double norm, double max_norm) {
  const double coeff = max_norm / (norm + 1e-6);
  if (max_norm > 0 && coeff < 1.0) cpu::scale_inplace(params.grads(), long(params.numel()), float(coeff));
}

}  // namespace loom
