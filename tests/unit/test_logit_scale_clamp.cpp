// CLIP's logit_scale.clamp_(0, math.log(100)) after the optimizer step: the bound as torch rounds it for a
// float32 tensor, NaN kept, and the stored weights of fp32 and half-precision stores clamped in place.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "loom/kernels/cpu/precision.h"
#include "loom/optim/logit_scale_clamp.h"

namespace loom {
namespace {

TEST(LogitScaleClamp, Bounds) {
  const float ln100 = float(std::log(100.0));  // math.log(100) = 4.605170185988092, as float32
  EXPECT_EQ(kLogitScaleMax, ln100);
  EXPECT_EQ(clamp_logit_scale(-0.5f), 0.0f);
  EXPECT_EQ(clamp_logit_scale(2.6592600f), 2.6592600f);  // ln(1/0.07): the initial value, untouched
  EXPECT_EQ(clamp_logit_scale(4.7f), ln100);
  EXPECT_EQ(clamp_logit_scale(ln100), ln100);
  EXPECT_EQ(clamp_logit_scale(std::nextafter(ln100, 10.f)), ln100);
  EXPECT_EQ(clamp_logit_scale(0.0f), 0.0f);
  EXPECT_TRUE(std::isnan(clamp_logit_scale(std::numeric_limits<float>::quiet_NaN())));
}

TEST(LogitScaleClamp, StoredWeightsFp32AndHalf) {
  for (DType wt : {DType::F32, DType::F16, DType::BF16}) {
    ParamStore s;
    ParamStorage st;
    st.weights = wt;
    st.grads = wt == DType::F32 ? DType::F32 : wt;
    s.configure(st);
    s.add("w", {3}, true);
    const int ls = s.add("logit_scale", {}, false);
    s.finalize();
    s.acquire_full();
    s.at(0).value.f32()[0] = 7.0f;  // another parameter: left alone
    s.at(0).value.f32()[1] = -3.0f;
    s.at(0).value.f32()[2] = 1.0f;
    s.at(ls).value.f32()[0] = 5.25f;
    s.commit_full();
    s.release_full();
    clamp_logit_scale(s, ls);
    s.acquire_full();
    float want = kLogitScaleMax;  // rounded to the storage type
    char buf[4];
    cpu::from_f32(&want, buf, wt, 1);
    cpu::to_f32(buf, wt, &want, 1);
    EXPECT_EQ(s.at(ls).value.f32()[0], want) << int(wt);
    EXPECT_EQ(s.at(0).value.f32()[0], 7.0f);
    EXPECT_EQ(s.at(0).value.f32()[1], -3.0f);
    s.at(ls).value.f32()[0] = -1.0f;
    s.commit_full();
    s.release_full();
    clamp_logit_scale(s, ls);
    s.acquire_full();
    EXPECT_EQ(s.at(ls).value.f32()[0], 0.0f) << int(wt);
    s.release_full();
  }
}

}  // namespace
}  // namespace loom
