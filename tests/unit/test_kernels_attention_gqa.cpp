// Grouped-query, bidirectional and cross attention (Tk != T) against a naive full-softmax reference in
// double, with and without attention dropout; finite differences on the kernels; consistency with the
// multi-head kernel; bitwise thread-count independence.
#include <functional>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "loom/core/rng.h"
#include "loom/kernels/cpu/attention.h"
#include "test_kernels_util.h"

namespace {

using loom::cpu::AttentionShape;
using loom::test::all_close;
using loom::test::random_floats;

// Where element d = 0 of a head lives: query head h of (b, t) in the q storage, group g of (b, key) in the
// kv storage.
struct RefLayout {
  std::function<size_t(int b, int t, int h)> q;
  std::function<size_t(int b, int k, int g)> k, v;
};

int groups(const AttentionShape& s) { return s.groups > 0 ? s.groups : s.H; }

double drop_mult(uint64_t key, const AttentionShape& s, int Tk, int b, int h, int q, int k, double p) {
  if (p <= 0) return 1.0;
  const int total = s.total_heads > 0 ? s.total_heads : s.H;
  const uint64_t i = ((uint64_t(b) * total + s.head_offset + h) * s.T + q) * uint64_t(Tk) + k;
  uint32_t w[4];
  loom::Philox4x32::generate(key, i / 4, w);
  return loom::u32_to_unit(w[i % 4]) < float(p) ? 0.0 : 1.0 / (1.0 - double(float(p)));
}

struct Ref {
  std::vector<double> out, lse, dq, dkv;  // dq in the q storage, dk/dv in the kv storage
};

// Naive attention: query head h uses group h / (H/G); causal: keys [0, q], else [0, Tk).
Ref attn_ref(const std::vector<double>& qs, const std::vector<double>& kvs, const RefLayout& L,
             const std::vector<double>& dout, AttentionShape s, int Tk, double p, uint64_t key) {
  const int B = s.B, T = s.T, H = s.H, D = s.D, hpg = H / groups(s);
  Ref r{std::vector<double>(size_t(B) * T * H * D), std::vector<double>(size_t(B) * H * T),
        std::vector<double>(qs.size()), std::vector<double>(kvs.size())};
  const double scale = 1.0 / std::sqrt(double(D));
  std::vector<double> P(Tk), M(Tk), dP(Tk);
  std::vector<size_t> Ki(Tk), Vi(Tk);
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++) {
      const int g = h / hpg;
      for (int q = 0; q < T; q++) {
        const int n = s.causal ? q + 1 : Tk;
        const double* Q = &qs[L.q(b, q, h)];
        for (int k = 0; k < n; k++) {
          Ki[k] = L.k(b, k, g);
          Vi[k] = L.v(b, k, g);
        }
        double m = -1e300;
        for (int k = 0; k < n; k++) {
          double sc = 0;
          for (int d = 0; d < D; d++) sc += Q[d] * kvs[Ki[k] + d];
          P[k] = sc * scale;
          m = std::max(m, P[k]);
        }
        double l = 0;
        for (int k = 0; k < n; k++) l += std::exp(P[k] - m);
        for (int k = 0; k < n; k++) {
          P[k] = std::exp(P[k] - m) / l;
          M[k] = drop_mult(key, s, Tk, b, h, q, k, p);
        }
        r.lse[(size_t(b) * H + h) * T + q] = m + std::log(l);
        double* o = &r.out[(size_t(b) * T + q) * H * D + size_t(h) * D];
        const double* gr = &dout[(size_t(b) * T + q) * H * D + size_t(h) * D];
        for (int d = 0; d < D; d++) {
          double acc = 0;
          for (int k = 0; k < n; k++) acc += P[k] * M[k] * kvs[Vi[k] + d];
          o[d] = acc;
        }
        double Di = 0;
        for (int k = 0; k < n; k++) {
          double dpd = 0;
          for (int d = 0; d < D; d++) {
            dpd += gr[d] * kvs[Vi[k] + d];
            r.dkv[Vi[k] + d] += P[k] * M[k] * gr[d];
          }
          dP[k] = dpd * M[k];
          Di += dP[k] * P[k];
        }
        const size_t qi = L.q(b, q, h);
        for (int k = 0; k < n; k++) {
          const double ds = P[k] * (dP[k] - Di) * scale;
          for (int d = 0; d < D; d++) {
            r.dq[qi + d] += ds * kvs[Ki[k] + d];
            r.dkv[Ki[k] + d] += ds * Q[d];
          }
        }
      }
    }
  return r;
}

// Megatron's fused GQA row: group g at g*(H/G+2)*D: H/G query heads, k, v.
RefLayout fused_layout(const AttentionShape& s) {
  const int G = groups(s), hpg = s.H / G, D = s.D, T = s.T;
  const size_t ld = size_t(s.H + 2 * G) * D, gs = size_t(hpg + 2) * D;
  return {[=](int b, int t, int h) { return (size_t(b) * T + t) * ld + (h / hpg) * gs + size_t(h % hpg) * D; },
          [=](int b, int k, int g) { return (size_t(b) * T + k) * ld + g * gs + size_t(hpg) * D; },
          [=](int b, int k, int g) { return (size_t(b) * T + k) * ld + g * gs + size_t(hpg + 1) * D; }};
}

// Selected entries (by a storage-index predicate) of got and want, each part judged against its own scale.
template <class Pred>
::testing::AssertionResult part_close(const std::vector<float>& got, const std::vector<double>& want, Pred keep,
                                      double rtol, double atol) {
  std::vector<float> g;
  std::vector<double> w;
  for (size_t i = 0; i < got.size(); i++)
    if (keep(i)) {
      g.push_back(got[i]);
      w.push_back(want[i]);
    }
  return all_close(g, w, rtol, atol);
}

void check_fused(AttentionShape s, float p, uint64_t key, uint64_t seed) {
  const int G = groups(s), hpg = s.H / G, D = s.D;
  const size_t ld = size_t(s.H + 2 * G) * D;
  auto qkv = random_floats(size_t(s.B) * s.T * ld, seed, -2, 2);
  auto dout = random_floats(size_t(s.B) * s.T * s.H * D, seed + 1);
  std::vector<float> out(dout.size(), 7.0f), lse(size_t(s.B) * s.H * s.T), dqkv(qkv.size(), 9.0f);
  loom::cpu::attention_forward(qkv.data(), out.data(), lse.data(), s, p, key);
  loom::cpu::attention_backward(dout.data(), qkv.data(), out.data(), lse.data(), dqkv.data(), s, p, key);
  const auto q = loom::test::to_double(qkv);
  const Ref r = attn_ref(q, q, fused_layout(s), loom::test::to_double(dout), s, s.T, p, key);
  std::ostringstream what;
  what << "B " << s.B << " T " << s.T << " H " << s.H << " G " << G << " causal " << s.causal << " p " << p;
  EXPECT_TRUE(all_close(out, r.out, 1e-5)) << what.str();
  EXPECT_TRUE(all_close(lse, r.lse, 1e-6)) << what.str();
  // dq, dk, dv: the column within a group says which (q of head j < hpg, k, v).
  for (int part = 0; part < 3; part++) {
    auto keep = [&](size_t i) {
      const int slot = int((i % ld) % (size_t(hpg + 2) * D) / D);  // 0..hpg+1
      return part == 0 ? slot < hpg : slot == hpg - 1 + part;
    };
    std::vector<double> want(r.dq.size());
    for (size_t i = 0; i < want.size(); i++) want[i] = r.dq[i] + r.dkv[i];
    EXPECT_TRUE(part_close(dqkv, want, keep, 1e-5, 1e-6)) << what.str() << " part " << part;
  }
}

TEST(KernelAttentionGqa, FusedMatchesNaive) {
  for (bool causal : {true, false})
    for (int G : {1, 2, 4})
      for (int T : {7, 70}) {
        AttentionShape s{2, T, 4, 16};
        s.groups = G;
        s.causal = causal;
        check_fused(s, 0.0f, 0, 100 + T + G);
      }
  AttentionShape big{1, 130, 6, 32};  // 3 groups of 2 query heads; T spans three query blocks
  big.groups = 3;
  check_fused(big, 0.0f, 0, 7);
}

TEST(KernelAttentionGqa, DropoutMatchesNaiveWithSameMask) {
  for (bool causal : {true, false})
    for (int G : {1, 2, 4}) {
      AttentionShape s{2, 33, 4, 16};
      s.groups = G;
      s.causal = causal;
      check_fused(s, 0.2f, loom::stream_key(5, G), 300 + G);
    }
  // Tensor parallel: 4 local query heads in 2 groups are heads 4..7 of 12; the mask follows the global head.
  AttentionShape tp{2, 40, 4, 16, 4, 12};
  tp.groups = 2;
  check_fused(tp, 0.3f, 11, 400);
}

// GQA equals multi-head attention on the qkv with every group's k and v repeated for its query heads:
// forward and dq bitwise (the same arithmetic per head), dk and dv (sums over the heads) to rounding.
TEST(KernelAttentionGqa, EqualsMultiHeadWithRepeatedKeyValues) {
  for (bool causal : {true, false}) {
    const int B = 2, T = 75, H = 6, G = 2, D = 16, hpg = H / G;
    AttentionShape s{B, T, H, D};
    s.groups = G;
    s.causal = causal;
    AttentionShape m{B, T, H, D};
    m.causal = causal;
    const size_t ld = size_t(H + 2 * G) * D, ldm = size_t(3) * H * D;
    auto qkv = random_floats(size_t(B) * T * ld, 500), dout = random_floats(size_t(B) * T * H * D, 501);
    std::vector<float> mqkv(size_t(B) * T * ldm);
    for (int r = 0; r < B * T; r++)
      for (int h = 0; h < H; h++) {
        const float* grp = &qkv[r * ld + (h / hpg) * (hpg + 2) * D];
        float* dst = &mqkv[r * ldm + h * 3 * D];
        std::copy_n(grp + (h % hpg) * D, D, dst);
        std::copy_n(grp + hpg * D, D, dst + D);
        std::copy_n(grp + (hpg + 1) * D, D, dst + 2 * D);
      }
    std::vector<float> o1(dout.size()), l1(size_t(B) * H * T), d1(qkv.size());
    std::vector<float> o2(dout.size()), l2(size_t(B) * H * T), d2(mqkv.size());
    loom::cpu::attention_forward(qkv.data(), o1.data(), l1.data(), s, 0.1f, 3);
    loom::cpu::attention_backward(dout.data(), qkv.data(), o1.data(), l1.data(), d1.data(), s, 0.1f, 3);
    loom::cpu::attention_forward(mqkv.data(), o2.data(), l2.data(), m, 0.1f, 3);
    loom::cpu::attention_backward(dout.data(), mqkv.data(), o2.data(), l2.data(), d2.data(), m, 0.1f, 3);
    EXPECT_TRUE(loom::test::bitwise_equal(o1, o2));
    EXPECT_TRUE(loom::test::bitwise_equal(l1, l2));
    std::vector<float> dq1, dq2;
    std::vector<double> dkv_sum, dkv1;
    for (int r = 0; r < B * T; r++)
      for (int g = 0; g < G; g++) {
        for (int j = 0; j < hpg; j++)
          for (int d = 0; d < D; d++) {
            dq1.push_back(d1[r * ld + (g * (hpg + 2) + j) * D + d]);
            dq2.push_back(d2[r * ldm + (g * hpg + j) * 3 * D + d]);
          }
        for (int part = 1; part <= 2; part++)
          for (int d = 0; d < D; d++) {
            double sum = 0;
            for (int j = 0; j < hpg; j++) sum += d2[r * ldm + (g * hpg + j) * 3 * D + part * D + d];
            dkv_sum.push_back(sum);
            dkv1.push_back(d1[r * ld + (g * (hpg + 2) + hpg + part - 1) * D + d]);
          }
      }
    EXPECT_TRUE(loom::test::bitwise_equal(dq1, dq2));
    EXPECT_TRUE(all_close(dkv1, dkv_sum, 1e-6));
  }
}

// Cross attention through the separate-operand entry: q [B*T, ldq] with padding columns, k and v halves of
// one kv buffer [B*Tk, 2*G*D].
void check_cross(AttentionShape s, int Tk, float p, uint64_t key, uint64_t seed) {
  const int G = groups(s), D = s.D, H = s.H;
  const long ldq = long(H) * D + 5, ldkv = 2L * G * D;
  auto q = random_floats(size_t(s.B) * s.T * ldq, seed, -2, 2);
  auto kv = random_floats(size_t(s.B) * Tk * ldkv, seed + 1, -2, 2);
  auto dout = random_floats(size_t(s.B) * s.T * H * D, seed + 2);
  std::vector<float> out(dout.size(), 7.0f), lse(size_t(s.B) * H * s.T), dq(q.size(), 9.0f), dkv(kv.size(), 9.0f);
  const float* k = kv.data();
  const float* v = kv.data() + size_t(G) * D;
  loom::cpu::attention_forward_qkv(q.data(), ldq, k, v, ldkv, out.data(), lse.data(), s, Tk, p, key);
  loom::cpu::attention_backward_qkv(dout.data(), q.data(), ldq, k, v, ldkv, out.data(), lse.data(), dq.data(),
                                    dkv.data(), dkv.data() + size_t(G) * D, s, Tk, p, key);
  RefLayout L{[=](int b, int t, int h) { return (size_t(b) * s.T + t) * ldq + size_t(h) * D; },
              [=](int b, int k, int g) { return (size_t(b) * Tk + k) * ldkv + size_t(g) * D; },
              [=](int b, int k, int g) { return (size_t(b) * Tk + k) * ldkv + size_t(G + g) * D; }};
  const Ref r =
      attn_ref(loom::test::to_double(q), loom::test::to_double(kv), L, loom::test::to_double(dout), s, Tk, p, key);
  std::ostringstream what;
  what << "T " << s.T << " Tk " << Tk << " H " << H << " G " << G << " causal " << s.causal << " p " << p;
  EXPECT_TRUE(all_close(out, r.out, 1e-5)) << what.str();
  EXPECT_TRUE(all_close(lse, r.lse, 1e-6)) << what.str();
  auto q_col = [&](size_t i) { return long(i % ldq) < H * D; };
  auto k_col = [&](size_t i) { return long(i % ldkv) < G * D; };
  auto v_col = [&](size_t i) { return long(i % ldkv) >= G * D; };
  EXPECT_TRUE(part_close(dq, r.dq, q_col, 1e-5, 1e-6)) << what.str();
  for (size_t i = 0; i < dq.size(); i++) {
    if (long(i % ldq) >= H * D) {
      ASSERT_EQ(dq[i], 9.0f) << "padding column of dq written";
    }
  }
  EXPECT_TRUE(part_close(dkv, r.dkv, k_col, 1e-5, 1e-6)) << what.str();
  EXPECT_TRUE(part_close(dkv, r.dkv, v_col, 1e-5, 1e-6)) << what.str();
}

TEST(KernelAttentionCross, MatchesNaive) {
  for (int G : {1, 2, 4}) {
    AttentionShape s{2, 5, 4, 16};
    s.groups = G;
    s.causal = false;
    check_cross(s, 37, 0.0f, 0, 600 + G);  // fewer queries than keys (a decoder over image tokens)
    s.T = 70;
    check_cross(s, 130, 0.0f, 0, 610 + G);  // several query blocks, keys not a multiple of 16
    s.T = 90;
    check_cross(s, 9, 0.0f, 0, 620 + G);  // more queries than keys
    s.T = 1;
    check_cross(s, 20, 0.0f, 0, 630 + G);  // one learned query (attentional pooling)
  }
  AttentionShape c{2, 33, 4, 16};  // causal through the separate entry (Tk == T)
  c.groups = 2;
  check_cross(c, 33, 0.0f, 0, 640);
}

TEST(KernelAttentionCross, DropoutMatchesNaiveWithSameMask) {
  for (int G : {1, 4}) {
    AttentionShape s{2, 21, 4, 16};
    s.groups = G;
    s.causal = false;
    check_cross(s, 50, 0.25f, loom::stream_key(9, G), 700 + G);
  }
}

// The separate-operand entry on the heads of a fused MHA qkv computes bitwise what the fused entry does.
TEST(KernelAttentionCross, SeparateEntryEqualsFusedEntry) {
  for (bool causal : {true, false}) {
    const int B = 2, T = 70, H = 3, D = 16;
    AttentionShape s{B, T, H, D};
    s.causal = causal;
    const size_t ld = size_t(3) * H * D, no = size_t(B) * T * H * D;
    auto qkv = random_floats(size_t(B) * T * ld, 800), dout = random_floats(no, 801);
    std::vector<float> q(no), k(no), v(no);
    for (int r = 0; r < B * T; r++)
      for (int h = 0; h < H; h++)
        for (int d = 0; d < D; d++) {
          q[r * H * D + h * D + d] = qkv[r * ld + h * 3 * D + d];
          k[r * H * D + h * D + d] = qkv[r * ld + h * 3 * D + D + d];
          v[r * H * D + h * D + d] = qkv[r * ld + h * 3 * D + 2 * D + d];
        }
    std::vector<float> o1(no), l1(size_t(B) * H * T), d1(qkv.size()), o2(no), l2(l1.size()), dq(no), dk(no), dv(no);
    loom::cpu::attention_forward(qkv.data(), o1.data(), l1.data(), s, 0.1f, 4);
    loom::cpu::attention_backward(dout.data(), qkv.data(), o1.data(), l1.data(), d1.data(), s, 0.1f, 4);
    loom::cpu::attention_forward_qkv(q.data(), H * D, k.data(), v.data(), H * D, o2.data(), l2.data(), s, T, 0.1f, 4);
    loom::cpu::attention_backward_qkv(dout.data(), q.data(), H * D, k.data(), v.data(), H * D, o2.data(), l2.data(),
                                      dq.data(), dk.data(), dv.data(), s, T, 0.1f, 4);
    EXPECT_TRUE(loom::test::bitwise_equal(o1, o2));
    EXPECT_TRUE(loom::test::bitwise_equal(l1, l2));
    std::vector<float> g(qkv.size());
    for (int r = 0; r < B * T; r++)
      for (int h = 0; h < H; h++)
        for (int d = 0; d < D; d++) {
          g[r * ld + h * 3 * D + d] = dq[r * H * D + h * D + d];
          g[r * ld + h * 3 * D + D + d] = dk[r * H * D + h * D + d];
          g[r * ld + h * 3 * D + 2 * D + d] = dv[r * H * D + h * D + d];
        }
    EXPECT_TRUE(loom::test::bitwise_equal(g, d1)) << "causal " << causal;
  }
}

// Finite differences of sum(out * dout) on the kernels (fp32 forward), GQA bidirectional and cross
// attention, dropout on.
TEST(KernelAttentionGqa, BackwardFiniteDifferencesOnKernel) {
  loom::test::ScopedThreads threads(1);  // many tiny calls: no parallel regions (results do not depend on it)
  {
    AttentionShape s{1, 9, 4, 8};
    s.groups = 2;
    s.causal = false;
    const size_t ld = size_t(4 + 4) * 8;
    auto qkv = random_floats(9 * ld, 900), dout = random_floats(9 * 32, 901);
    std::vector<float> out(dout.size()), lse(4 * 9), d(qkv.size());
    loom::cpu::attention_forward(qkv.data(), out.data(), lse.data(), s, 0.1f, 42);
    loom::cpu::attention_backward(dout.data(), qkv.data(), out.data(), lse.data(), d.data(), s, 0.1f, 42);
    auto loss = [&]() {
      loom::cpu::attention_forward(qkv.data(), out.data(), lse.data(), s, 0.1f, 42);
      double t = 0;
      for (size_t i = 0; i < out.size(); i++) t += double(out[i]) * dout[i];
      return t;
    };
    const float h = 1e-3f;
    for (size_t i = 0; i < qkv.size(); i += 3) {
      const float v = qkv[i];
      qkv[i] = v + h;
      const double lp = loss();
      qkv[i] = v - h;
      const double lm = loss();
      qkv[i] = v;
      EXPECT_NEAR((lp - lm) / (2 * h), d[i], 1e-2 * std::fabs(d[i]) + 2e-3) << i;
    }
  }
  {
    AttentionShape s{1, 6, 2, 8};
    s.groups = 1;
    s.causal = false;
    const int Tk = 11;
    auto q = random_floats(6 * 16, 910), k = random_floats(Tk * 8, 911), v = random_floats(Tk * 8, 912);
    auto dout = random_floats(6 * 16, 913);
    std::vector<float> out(dout.size()), lse(2 * 6), dq(q.size()), dk(k.size()), dv(v.size());
    loom::cpu::attention_forward_qkv(q.data(), 16, k.data(), v.data(), 8, out.data(), lse.data(), s, Tk, 0.1f, 43);
    loom::cpu::attention_backward_qkv(dout.data(), q.data(), 16, k.data(), v.data(), 8, out.data(), lse.data(),
                                      dq.data(), dk.data(), dv.data(), s, Tk, 0.1f, 43);
    auto loss = [&]() {
      loom::cpu::attention_forward_qkv(q.data(), 16, k.data(), v.data(), 8, out.data(), lse.data(), s, Tk, 0.1f, 43);
      double t = 0;
      for (size_t i = 0; i < out.size(); i++) t += double(out[i]) * dout[i];
      return t;
    };
    const float h = 1e-3f;
    for (auto [x, g] : {std::pair{&q, &dq}, std::pair{&k, &dk}, std::pair{&v, &dv}})
      for (size_t i = 0; i < x->size(); i += 2) {
        const float s0 = (*x)[i];
        (*x)[i] = s0 + h;
        const double lp = loss();
        (*x)[i] = s0 - h;
        const double lm = loss();
        (*x)[i] = s0;
        EXPECT_NEAR((lp - lm) / (2 * h), (*g)[i], 1e-2 * std::fabs((*g)[i]) + 2e-3) << i;
      }
  }
}

TEST(KernelAttentionGqa, DeterministicAcrossThreadCounts) {
  AttentionShape s{2, 100, 6, 16};
  s.groups = 2;
  const size_t ld = size_t(6 + 4) * 16;
  auto qkv = random_floats(200 * ld, 950), dout = random_floats(200 * 96, 951);
  AttentionShape c{2, 30, 4, 16};
  c.groups = 1;
  c.causal = false;
  const int Tk = 150;
  auto q = random_floats(60 * 64, 952), kv = random_floats(size_t(2) * Tk * 32, 953), dc = random_floats(60 * 64, 954);
  std::vector<std::vector<float>> res[2];
  for (int t = 0; t < 2; t++) {
    loom::test::ScopedThreads threads(t + 1);
    for (bool causal : {true, false}) {
      s.causal = causal;
      std::vector<float> out(dout.size()), lse(2 * 6 * 100), d(qkv.size());
      loom::cpu::attention_forward(qkv.data(), out.data(), lse.data(), s, 0.1f, 5);
      loom::cpu::attention_backward(dout.data(), qkv.data(), out.data(), lse.data(), d.data(), s, 0.1f, 5);
      res[t].insert(res[t].end(), {out, lse, d});
    }
    std::vector<float> out(dc.size()), lse(2 * 4 * 30), dq(q.size()), dkv(kv.size());
    loom::cpu::attention_forward_qkv(q.data(), 64, kv.data(), kv.data() + 16, 32, out.data(), lse.data(), c, Tk, 0.1f,
                                     6);
    loom::cpu::attention_backward_qkv(dc.data(), q.data(), 64, kv.data(), kv.data() + 16, 32, out.data(), lse.data(),
                                      dq.data(), dkv.data(), dkv.data() + 16, c, Tk, 0.1f, 6);
    res[t].insert(res[t].end(), {out, lse, dq, dkv});
  }
  for (size_t k = 0; k < res[0].size(); k++) EXPECT_TRUE(loom::test::bitwise_equal(res[0][k], res[1][k])) << k;
}

TEST(KernelAttentionGqa, RejectsImpossibleShapes) {
  std::vector<float> buf(4096);
  AttentionShape s{1, 4, 3, 8};
  s.groups = 2;  // 3 heads in 2 groups
  EXPECT_THROW(loom::cpu::attention_forward(buf.data(), buf.data(), buf.data(), s, 0.0f, 0), std::invalid_argument);
  AttentionShape c{1, 4, 2, 8};  // causal with Tk != T
  EXPECT_THROW(loom::cpu::attention_forward_qkv(buf.data(), 16, buf.data(), buf.data(), 16, buf.data(), buf.data(), c,
                                                5, 0.0f, 0),
               std::invalid_argument);
  std::vector<int32_t> ks(4, 0);
  c.key_start = ks.data();
  c.causal = false;  // document masks need causal
  EXPECT_THROW(loom::cpu::attention_forward(buf.data(), buf.data(), buf.data(), c, 0.0f, 0), std::invalid_argument);
}

}  // namespace
