// The SGD kernel (kernels/cpu/sgd.h) against torch.optim.SGD's arithmetic written element by element,
// bit for bit, on any number of threads; the learning-rate schedule on resume (Megatron's _check_and_set);
// xavier_uniform_ initialisation drawn the same for every tensor-parallel slice.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/sgd.h"
#include "loom/layers/init.h"
#include "loom/layers/param_store.h"
#include "loom/optim/lr_schedule_resume.h"

using namespace loom;

namespace {

std::vector<float> randoms(int64_t n, uint64_t key, float std) {
  std::vector<float> v;
  v.resize(static_cast<size_t>(n));
  fill_normal(v.data(), 0, n, key, std);
  return v;
}

// torch.optim.SGD._single_tensor_sgd for one element: d_p = grad.add(param, alpha=wd) (a fused
// multiply-add in ATen), buf = clone(d_p) on the first step else buf.mul_(momentum).add_(d_p),
// param.add_(buf, alpha=-lr) (fused).
void torch_sgd(float& p, float g, float& buf, float lr, float mom, float wd, bool first) {
  const float d = std::fma(p, wd, g);
  if (mom != 0.f) buf = first ? d : float(mom * buf) + d;
  p = std::fma(mom != 0.f ? buf : d, -lr, p);
}

}  // namespace

TEST(SgdKernel, EqualsTorchSgdBitForBitOnAnyThreadCount) {
  const int64_t n = 3 * 16384 + 13;  // several threaded blocks and a scalar tail
  const std::vector<float> p0 = randoms(n, 1, 0.5f);
  for (float wd : {0.f, 0.1f}) {
    for (float mom : {0.f, 0.9f}) {
      std::vector<float> ref = p0, ref_buf(size_t(n), 0.f);
      std::vector<std::vector<float>> got(2, p0), buf(2, std::vector<float>(size_t(n), 0.f));
      for (int step = 0; step < 4; step++) {
        const std::vector<float> g = randoms(n, 100 + uint64_t(step), 1.0f);
        const float lr = 0.05f * float(step + 1);
        for (int64_t i = 0; i < n; i++) torch_sgd(ref[size_t(i)], g[size_t(i)], ref_buf[size_t(i)], lr, mom, wd, step == 0);
        for (int t = 0; t < 2; t++) {
          omp_set_num_threads(t == 0 ? 1 : 4);
          cpu::sgd_step(got[size_t(t)].data(), g.data(), mom != 0.f ? buf[size_t(t)].data() : nullptr, long(n),
                        {lr, mom, wd, step == 0});
        }
      }
      for (int t = 0; t < 2; t++) {
        EXPECT_EQ(std::memcmp(got[size_t(t)].data(), ref.data(), sizeof(float) * size_t(n)), 0) << "wd " << wd << " mom " << mom;
        if (mom != 0.f) {
          EXPECT_EQ(std::memcmp(buf[size_t(t)].data(), ref_buf.data(), sizeof(float) * size_t(n)), 0);
        }
      }
      EXPECT_NE(std::memcmp(ref.data(), p0.data(), sizeof(float) * size_t(n)), 0);
    }
  }
  omp_set_num_threads(2);
}

TEST(SgdKernel, FirstStepTakesTheUpdateAsTheBuffer) {
  float p[9], g[9], b[9];
  for (int i = 0; i < 9; i++) p[i] = 1.0f + float(i), g[i] = 0.5f, b[i] = 123.f;  // b: stale, must be ignored
  cpu::sgd_step(p, g, b, 9, {0.1f, 0.9f, 0.f, true});
  for (int i = 0; i < 9; i++) {
    EXPECT_EQ(b[i], 0.5f);
    EXPECT_EQ(p[i], std::fma(0.5f, -0.1f, 1.0f + float(i)));
  }
  cpu::sgd_step(p, g, b, 9, {0.1f, 0.9f, 0.f, false});
  EXPECT_EQ(b[0], float(0.9f * 0.5f) + 0.5f);
}

TEST(LrScheduleResume, MegatronsCheckAndSet) {
  LrSchedule cl, ck;
  cl.max_lr = 6e-3, cl.min_lr = 1e-4, cl.warmup_steps = 8, cl.decay_steps = 64, cl.style = "linear", cl.init_lr = 1e-5;
  ck.max_lr = 3e-3, ck.min_lr = 3e-4, ck.warmup_steps = 12, ck.decay_steps = 80, ck.style = "cosine";
  const LrScheduleResume use = resume_lr_schedule(cl, ck, true, false);
  EXPECT_EQ(use.schedule.max_lr, 3e-3);
  EXPECT_EQ(use.schedule.decay_steps, 80);
  EXPECT_EQ(use.schedule.style, "cosine");
  EXPECT_EQ(use.schedule.init_lr, 1e-5);  // not in Megatron's state dict
  ASSERT_EQ(use.lines.size(), 5u);
  EXPECT_EQ(use.lines[0], " > using checkpoint value 0.003 for learning rate");
  EXPECT_EQ(use.lines[2], " > using checkpoint value 12 for warmup iterations");
  EXPECT_TRUE(use.mismatches.empty());
  const LrScheduleResume over = resume_lr_schedule(cl, ck, false, true);
  EXPECT_EQ(over.schedule.max_lr, 6e-3);
  EXPECT_EQ(over.schedule.style, "linear");
  EXPECT_EQ(over.lines[3], " > overriding total number of iterations value to 64");
  const LrScheduleResume neither = resume_lr_schedule(cl, ck, false, false);
  EXPECT_EQ(neither.schedule.max_lr, 6e-3);
  EXPECT_TRUE(neither.lines.empty());
  ASSERT_EQ(neither.mismatches.size(), 5u);
  EXPECT_EQ(neither.mismatches[4], "learning rate decay style: checkpoint cosine, command line linear");
  ck.warmup_steps = 0.5 * 80;  // --lr-warmup-fraction: a fractional count prints as Python's float
  cl = ck;
  EXPECT_TRUE(resume_lr_schedule(cl, ck, false, false).mismatches.empty());
  ck.warmup_steps = 12.5;
  EXPECT_EQ(resume_lr_schedule(cl, ck, true, false).lines[2], " > using checkpoint value 12.5 for warmup iterations");
}

TEST(XavierInit, EveryTensorParallelSliceDrawsItsPartOfTheFullTensor) {
  const int64_t out = 48, in = 20;
  ParamStore full;
  full.add("w", {out, in}, true);
  full.finalize();
  init_xavier_uniform(full.at(0), 7);
  const float* f = full.at(0).value.f32();
  const float bound = float(std::sqrt(6.0 / double(in + out)));
  float m = 0.f;
  for (int64_t i = 0; i < out * in; i++) m = std::max(m, std::fabs(f[i]));
  EXPECT_LE(m, bound);
  EXPECT_GT(m, 0.95f * bound);
  for (int parts : {2, 4}) {
    for (int r = 0; r < parts; r++) {
      ParamStore rows, cols;  // column-parallel (split dim 0) and row-parallel (split dim 1) slices
      rows.add("w", {out / parts, in}, true, ParamSplit{{out, in}, 0, r * out / parts, false, {}});
      cols.add("w", {out, in / parts}, true, ParamSplit{{out, in}, 1, r * in / parts, false, {}});
      rows.finalize();
      cols.finalize();
      init_xavier_uniform(rows.at(0), 7);
      init_xavier_uniform(cols.at(0), 7);
      for (int64_t i = 0; i < out / parts; i++)
        for (int64_t j = 0; j < in; j++) ASSERT_EQ(rows.at(0).value.f32()[i * in + j], f[(r * out / parts + i) * in + j]);
      for (int64_t i = 0; i < out; i++)
        for (int64_t j = 0; j < in / parts; j++)
          ASSERT_EQ(cols.at(0).value.f32()[i * (in / parts) + j], f[i * in + r * in / parts + j]);
    }
  }
  // SwiGLU's gate and up halves take the fans of Megatron's fused [2 ffn, h] fc1.
  ParamStore gate;
  gate.add("g", {out, in}, true);
  gate.finalize();
  init_xavier_uniform(gate.at(0), 7, 2 * out);
  m = 0.f;
  for (int64_t i = 0; i < out * in; i++) m = std::max(m, std::fabs(gate.at(0).value.f32()[i]));
  EXPECT_LE(m, float(std::sqrt(6.0 / double(in + 2 * out))));
}
