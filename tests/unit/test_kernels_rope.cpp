// Rotary position embedding: frequencies (plain and llama3-scaled) and the cos/sin table against numbers
// from PyTorch, the rotation (rotate-half and interleaved, partial rotary, strided heads) against a naive
// double reference, the backward as the exact transpose (finite differences and <Rx, y> = <x, R^T y>), and
// bitwise thread-count independence.
#include <vector>

#include "loom/kernels/cpu/rope.h"
#include "test_kernels_util.h"

namespace {

using loom::cpu::RopeScaling;
using loom::cpu::RopeTable;
using loom::test::all_close;
using loom::test::random_floats;

// Expected values computed with Debian's /usr/bin/python3 and python3-torch (2.x, CPU, fp32), with a copy of
// Hugging Face's _compute_default_rope_parameters + _compute_llama3_parameters (Megatron's
// apply_rope_scaling is the same code):
//   inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
//   wavelen = 2 * math.pi / inv; il = torch.where(wavelen > old / lo, inv / factor, inv)
//   sf = (old / wavelen - lo) / (hi - lo); sm = (1 - sf) * il / factor + sf * il
//   il = torch.where(~(wavelen < old / hi) * ~(wavelen > old / lo), sm, il)
// printed with "%.9e" (exact fp32 round trip). {i, inv[i], scaled inv[i]}.
struct FreqCase {
  int i;
  float inv, scaled;
};
// dim 128, base 500000, factor 8, low 1, high 4, original 8192 (Llama 3.1 8B): i = 0..28 are high
// frequencies (kept), 29..35 medium (interpolated), the rest low (divided by 8).
const FreqCase kLlama31[] = {{0, 1.000000000e+00f, 1.000000000e+00f},  {20, 1.656044088e-02f, 1.656044088e-02f},
                             {28, 3.211446106e-03f, 3.211446106e-03f}, {29, 2.616099082e-03f, 2.166570630e-03f},
                             {31, 1.736046746e-03f, 8.567514597e-04f}, {33, 1.152042649e-03f, 3.126936499e-04f},
                             {35, 7.644969737e-04f, 9.556212171e-05f}, {40, 2.742481884e-04f, 3.428102355e-05f},
                             {63, 2.455140702e-06f, 3.068925878e-07f}};
// dim 64, base 500000, factor 32, low 1, high 4, original 8192 (Llama 3.2 1B).
const FreqCase kLlama32[] = {{0, 1.000000000e+00f, 1.000000000e+00f},  {14, 3.211446106e-03f, 3.211446106e-03f},
                             {15, 2.131119603e-03f, 1.290548011e-03f}, {16, 1.414213446e-03f, 4.295567051e-04f},
                             {17, 9.384738514e-04f, 9.708286234e-05f}, {31, 3.013858077e-06f, 9.418306490e-08f}};
// dim 32, base 10000, no scaling: all 16 frequencies.
const float kDefault32[] = {1.000000000e+00f, 5.623413324e-01f, 3.162277639e-01f, 1.778279394e-01f,
                            1.000000015e-01f, 5.623412877e-02f, 3.162277862e-02f, 1.778279431e-02f,
                            9.999999776e-03f, 5.623413250e-03f, 3.162277862e-03f, 1.778279431e-03f,
                            1.000000047e-03f, 5.623413017e-04f, 3.162277862e-04f, 1.778279402e-04f};
// The cos/sin table of the dim-128 llama3 frequencies above, same script:
//   freqs = torch.outer(torch.arange(100001, dtype=torch.float32), il); freqs.cos(), freqs.sin()
// {position, i, cos, sin}.
struct TableCase {
  int p, i;
  float c, s;
};
const TableCase kTable[] = {
    {1, 0, 5.403023362e-01f, 8.414709568e-01f},         {1, 1, 6.861469150e-01f, 7.274630070e-01f},
    {1, 29, 9.999976754e-01f, 2.166569000e-03f},        {1, 63, 1.000000000e+00f, 3.068925878e-07f},
    {77, 0, -3.097503260e-02f, 9.995201230e-01f},       {77, 1, 9.943524599e-01f, -1.061279327e-01f},
    {77, 29, 9.861168265e-01f, 1.660531908e-01f},       {77, 40, 9.999965429e-01f, 2.639635699e-03f},
    {4095, 0, -6.597599387e-02f, -9.978212118e-01f},    {4095, 29, -8.511251807e-01f, 5.249627829e-01f},
    {4095, 63, 9.999992251e-01f, 1.256724820e-03f},     {8191, 0, -6.463904977e-01f, -7.630068064e-01f},
    {8191, 1, 9.773988128e-01f, -2.114038616e-01f},     {8191, 29, 4.507633150e-01f, -8.926435113e-01f},
    {8191, 40, 9.608352184e-01f, 2.771204412e-01f},     {100000, 0, -9.993607998e-01f, 3.574879840e-02f},
    {100000, 1, 9.756255746e-01f, 2.194419205e-01f},    {100000, 29, -9.936409593e-01f, 1.125951037e-01f},
    {100000, 40, -9.592361450e-01f, -2.826058269e-01f}, {100000, 63, 9.995291233e-01f, 3.068444133e-02f}};

// Within one ulp (torch's fp32 pow is not always correctly rounded).
::testing::AssertionResult within_ulp(float got, float want) {
  const float ulp = std::nextafter(std::fabs(want), INFINITY) - std::fabs(want);
  if (std::fabs(got - want) <= ulp) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << " want " << want;
}

TEST(KernelRope, InverseFrequenciesMatchPyTorch) {
  const auto plain = loom::cpu::rope_inv_freq(32, 10000.0, nullptr);
  ASSERT_EQ(plain.size(), 16u);
  for (int i = 0; i < 16; i++) EXPECT_TRUE(within_ulp(plain[i], kDefault32[i])) << i;

  const RopeScaling s31;  // defaults: factor 8, 1, 4, 8192
  const auto base128 = loom::cpu::rope_inv_freq(128, 500000.0, nullptr);
  const auto l31 = loom::cpu::rope_inv_freq(128, 500000.0, &s31);
  ASSERT_EQ(l31.size(), 64u);
  for (const FreqCase& c : kLlama31) {
    EXPECT_TRUE(within_ulp(base128[c.i], c.inv)) << c.i;
    EXPECT_TRUE(within_ulp(l31[c.i], c.scaled)) << c.i;
  }
  RopeScaling s32;
  s32.factor = 32;
  const auto l32 = loom::cpu::rope_inv_freq(64, 500000.0, &s32);
  for (const FreqCase& c : kLlama32) EXPECT_TRUE(within_ulp(l32[c.i], c.scaled)) << c.i;
}

TEST(KernelRope, Llama3ScalingFollowsItsDefinition) {
  // The piecewise definition in double (independent of the fp32 emulation), for several settings.
  for (RopeScaling s : {RopeScaling{}, RopeScaling{32, 1, 4, 8192}, RopeScaling{4, 2, 8, 4096}}) {
    const int dim = 128;
    const auto plain = loom::cpu::rope_inv_freq(dim, 500000.0, nullptr);
    const auto got = loom::cpu::rope_inv_freq(dim, 500000.0, &s);
    for (int i = 0; i < dim / 2; i++) {
      const double f = plain[i], wl = 2 * M_PI / f;
      const double lo_wl = s.original_max_position / s.low_freq_factor;
      const double hi_wl = s.original_max_position / s.high_freq_factor;
      double want;
      if (wl < hi_wl) {
        want = f;
      } else if (wl > lo_wl) {
        want = f / s.factor;
      } else {
        const double sm = (s.original_max_position / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        want = (1 - sm) * f / s.factor + sm * f;
      }
      EXPECT_NEAR(got[i], want, 1e-6 * want) << "factor " << s.factor << " i " << i;
    }
  }
}

TEST(KernelRope, TableMatchesPyTorch) {
  const RopeScaling s31;
  const RopeTable t = loom::cpu::make_rope_table(128, 100001, loom::cpu::rope_inv_freq(128, 500000.0, &s31));
  ASSERT_EQ(t.cos.size(), size_t(100001) * 64);
  for (int i = 0; i < 64; i++) {
    EXPECT_EQ(t.cos[i], 1.0f);
    EXPECT_EQ(t.sin[i], 0.0f);
  }
  for (const TableCase& c : kTable) {
    EXPECT_NEAR(t.cos[size_t(c.p) * 64 + c.i], c.c, 1.2e-7) << c.p << " " << c.i;
    EXPECT_NEAR(t.sin[size_t(c.p) * 64 + c.i], c.s, 1.2e-7) << c.p << " " << c.i;
  }
}

struct RopeCase {
  int rows, heads, head_dim, rotary_dim;
  long head_stride, ld;
};

// Naive rotation in double: y = R(theta) x (inverse: R(-theta)), from the table's angles recomputed in
// double from the same fp32 angle float(p) * inv[i].
std::vector<double> rope_ref(const std::vector<float>& x, const RopeCase& c, const std::vector<int32_t>& pos,
                             const std::vector<float>& inv, bool interleaved, bool inverse) {
  std::vector<double> y(x.begin(), x.end());
  const int half = c.rotary_dim / 2;
  for (int r = 0; r < c.rows; r++)
    for (int j = 0; j < c.heads; j++) {
      const size_t base = size_t(r) * c.ld + size_t(j) * c.head_stride;
      for (int i = 0; i < half; i++) {
        const double th = double(float(pos[r]) * inv[i]) * (inverse ? -1.0 : 1.0);
        const size_t a = base + (interleaved ? 2 * i : i), b = base + (interleaved ? 2 * i + 1 : i + half);
        y[a] = x[a] * std::cos(th) - double(x[b]) * std::sin(th);
        y[b] = x[b] * std::cos(th) + double(x[a]) * std::sin(th);
      }
    }
  return y;
}

const RopeCase kCases[] = {
    {5, 1, 16, 16, 16, 16},      // one head, full rotary
    {7, 3, 24, 24, 72, 216},     // MHA q heads in a per-head [q k v] row (stride 3D)
    {6, 2, 40, 20, 40, 96},      // partial rotary (half of the head), row padding beyond the heads
    {4, 5, 64, 64, 64, 6 * 64},  // GQA group: 4 query heads + the key head, stride D, v untouched
    {3, 2, 14, 6, 14, 28},       // tiny half (3): scalar tails only
};

TEST(KernelRope, MatchesNaiveRotation) {
  for (bool interleaved : {false, true})
    for (const RopeCase& c : kCases) {
      const auto inv = loom::cpu::rope_inv_freq(c.rotary_dim, 10000.0, nullptr);
      const RopeTable t = loom::cpu::make_rope_table(c.rotary_dim, 300, inv);
      std::vector<int32_t> pos(c.rows);
      for (int r = 0; r < c.rows; r++) pos[r] = (r * 97 + 13) % 300;
      const auto x = random_floats(size_t(c.rows) * c.ld, 7 + c.ld);
      for (bool inverse : {false, true}) {
        std::vector<float> y = x;
        (inverse ? loom::cpu::rope_backward : loom::cpu::rope_forward)(y.data(), c.rows, c.ld, c.heads, c.head_stride,
                                                                       c.rotary_dim, pos.data(), t, interleaved);
        const auto want = rope_ref(x, c, pos, inv, interleaved, inverse);
        // Rotated elements to fp32 accuracy; everything else (partial rotary tail, v, padding) untouched.
        EXPECT_TRUE(all_close(y, want, 1e-6)) << "interleaved " << interleaved << " rd " << c.rotary_dim;
        for (size_t i = 0; i < y.size(); i++)
          if (want[i] == double(x[i]) && y[i] != x[i]) ADD_FAILURE() << "element " << i << " changed";
      }
    }
}

TEST(KernelRope, BackwardIsTheTransposeAndInverse) {
  for (bool interleaved : {false, true})
    for (const RopeCase& c : kCases) {
      const auto inv = loom::cpu::rope_inv_freq(c.rotary_dim, 500000.0, nullptr);
      const RopeTable t = loom::cpu::make_rope_table(c.rotary_dim, 64, inv);
      std::vector<int32_t> pos(c.rows);
      for (int r = 0; r < c.rows; r++) pos[r] = (r * 29 + 5) % 64;
      const size_t n = size_t(c.rows) * c.ld;
      auto x = random_floats(n, 20 + c.ld), g = random_floats(n, 21 + c.ld);
      std::vector<float> rx = x, rtg = g;
      loom::cpu::rope_forward(rx.data(), c.rows, c.ld, c.heads, c.head_stride, c.rotary_dim, pos.data(), t,
                              interleaved);
      loom::cpu::rope_backward(rtg.data(), c.rows, c.ld, c.heads, c.head_stride, c.rotary_dim, pos.data(), t,
                               interleaved);
      // <R x, g> = <x, R^T g>.
      double a = 0, b = 0, scale = 0;
      for (size_t i = 0; i < n; i++) {
        a += double(rx[i]) * g[i];
        b += double(x[i]) * rtg[i];
        scale += std::fabs(double(x[i]) * g[i]);
      }
      EXPECT_NEAR(a, b, 1e-6 * scale);
      // R^T R x = x.
      std::vector<float> back = rx;
      loom::cpu::rope_backward(back.data(), c.rows, c.ld, c.heads, c.head_stride, c.rotary_dim, pos.data(), t,
                               interleaved);
      EXPECT_TRUE(all_close(back, x, 1e-6));
      // Finite differences of <rope(x), g> in a few coordinates give (R^T g)_i.
      for (size_t i = 0; i < n; i += 7) {
        const float s = x[i], h = 1e-2f;
        auto loss = [&](float v) {
          std::vector<float> z = x;
          z[i] = v;
          loom::cpu::rope_forward(z.data(), c.rows, c.ld, c.heads, c.head_stride, c.rotary_dim, pos.data(), t,
                                  interleaved);
          double l = 0;
          for (size_t k = 0; k < n; k++) l += double(z[k]) * g[k];
          return l;
        };
        EXPECT_NEAR((loss(s + h) - loss(s - h)) / (2 * h), rtg[i], 1e-4) << i;
      }
    }
}

TEST(KernelRope, DeterministicAcrossThreadCounts) {
  const int rows = 512, heads = 8, D = 64;
  const RopeTable t = loom::cpu::make_rope_table(D, 1024, loom::cpu::rope_inv_freq(D, 10000.0, nullptr));
  std::vector<int32_t> pos(rows);
  for (int r = 0; r < rows; r++) pos[r] = r % 1024;
  const auto x = random_floats(size_t(rows) * heads * D, 30);
  std::vector<float> res[2][2];
  for (int th = 0; th < 2; th++) {
    loom::test::ScopedThreads threads(th + 1);
    for (int mode = 0; mode < 2; mode++) {
      std::vector<float> y = x;
      loom::cpu::rope_forward(y.data(), rows, long(heads) * D, heads, D, D, pos.data(), t, mode == 1);
      loom::cpu::rope_backward(y.data(), rows, long(heads) * D, heads, D, D / 2, pos.data(), t, mode == 1);
      res[th][mode] = y;
    }
  }
  for (int m = 0; m < 2; m++) EXPECT_TRUE(loom::test::bitwise_equal(res[0][m], res[1][m])) << m;
}

}  // namespace
