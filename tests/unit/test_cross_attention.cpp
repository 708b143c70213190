// CrossAttention (layers/cross_attention.h) against a direct double-precision loop: the forward output, and
// every gradient (x, context, and each weight and bias) against central differences of that loop.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/layers/cross_attention.h"
#include "test_kernels_util.h"

namespace loom {
namespace {

struct Shape {
  int B, T, Tk, H, D, in_x, in_c, out;
  bool causal;
  int hd() const { return H * D; }
};

// All the operands as doubles, in torch layouts: W [out, in], rows b*T + t.
struct Operands {
  std::vector<double> wq, bq, wk, bk, wv, bv, wo, bo, x, c;
  std::vector<std::vector<double>*> all() { return {&wq, &bq, &wk, &bk, &wv, &bv, &wo, &bo, &x, &c}; }
};

std::vector<double> project(const std::vector<double>& in, int rows, int n_in, const std::vector<double>& w,
                            const std::vector<double>& b, int n_out) {
  std::vector<double> y(size_t(rows) * n_out);
  for (int r = 0; r < rows; r++)
    for (int o = 0; o < n_out; o++) {
      double s = b[size_t(o)];
      for (int i = 0; i < n_in; i++) s += in[size_t(r) * n_in + i] * w[size_t(o) * n_in + i];
      y[size_t(r) * n_out + o] = s;
    }
  return y;
}

std::vector<double> reference(const Shape& s, const Operands& p) {
  const int hd = s.hd();
  const auto q = project(p.x, s.B * s.T, s.in_x, p.wq, p.bq, hd);
  const auto k = project(p.c, s.B * s.Tk, s.in_c, p.wk, p.bk, hd);
  const auto v = project(p.c, s.B * s.Tk, s.in_c, p.wv, p.bv, hd);
  std::vector<double> a(size_t(s.B) * s.T * hd, 0.0);
  for (int b = 0; b < s.B; b++)
    for (int h = 0; h < s.H; h++)
      for (int t = 0; t < s.T; t++) {
        const int keys = s.causal ? t + 1 : s.Tk;
        std::vector<double> sc(static_cast<size_t>(keys));
        double mx = -1e300;
        for (int j = 0; j < keys; j++) {
          double d = 0;
          for (int e = 0; e < s.D; e++)
            d += q[(size_t(b) * s.T + t) * hd + h * s.D + e] * k[(size_t(b) * s.Tk + j) * hd + h * s.D + e];
          sc[size_t(j)] = d / std::sqrt(double(s.D));
          mx = std::max(mx, sc[size_t(j)]);
        }
        double z = 0;
        for (double& x : sc) z += (x = std::exp(x - mx));
        for (int j = 0; j < keys; j++)
          for (int e = 0; e < s.D; e++)
            a[(size_t(b) * s.T + t) * hd + h * s.D + e] += sc[size_t(j)] / z * v[(size_t(b) * s.Tk + j) * hd + h * s.D + e];
      }
  return project(a, s.B * s.T, hd, p.wo, p.bo, s.out);
}

double objective(const Shape& s, const Operands& p, const std::vector<double>& g) {
  const auto y = reference(s, p);
  double l = 0;
  for (size_t i = 0; i < y.size(); i++) l += y[i] * g[i];
  return l;
}

Operands random_operands(const Shape& s, uint64_t seed) {
  const int hd = s.hd();
  auto r = [&](size_t n, uint64_t k) { return test::to_double(test::random_floats(n, seed * 100 + k, -0.8f, 0.8f)); };
  Operands p;
  p.wq = r(size_t(hd) * s.in_x, 1), p.bq = r(size_t(hd), 2);
  p.wk = r(size_t(hd) * s.in_c, 3), p.bk = r(size_t(hd), 4);
  p.wv = r(size_t(hd) * s.in_c, 5), p.bv = r(size_t(hd), 6);
  p.wo = r(size_t(s.out) * hd, 7), p.bo = r(size_t(s.out), 8);
  p.x = r(size_t(s.B) * s.T * s.in_x, 9);
  p.c = r(size_t(s.B) * s.Tk * s.in_c, 10);
  // fp32-representable, so the layer and the reference see the same numbers.
  for (auto* v : p.all())
    for (double& e : *v) e = double(float(e));
  return p;
}

Tensor tensor_of(const std::vector<double>& v, std::vector<int64_t> shape) {
  Tensor t(std::move(shape));
  for (size_t i = 0; i < v.size(); i++) t.f32()[i] = float(v[i]);
  return t;
}

std::vector<float> floats(const Tensor& t) { return std::vector<float>(t.f32(), t.f32() + t.numel()); }

// packed: q, k, v as row blocks of one [3*H*D, in] weight and one [3*H*D] bias (nn.MultiheadAttention's
// in_proj; needs in_x == in_c); self: forward_self on x (needs x == context).
void check(const Shape& s, bool packed, bool self) {
  const int hd = s.hd();
  Operands p = random_operands(s, 7 + (packed ? 1 : 0) + (self ? 2 : 0));
  if (self) p.c = p.x;
  // The layer's operands.
  Tensor in_w, in_b, in_dw, in_db;
  LinearParams q, k, v, o;
  auto lin = [](const std::vector<double>& w, const std::vector<double>& b, int rows, int cols) {
    LinearParams l;
    l.weight = tensor_of(w, {rows, cols});
    l.bias = tensor_of(b, {rows});
    l.dweight = Tensor({rows, cols});
    l.dbias = Tensor({rows});
    return l;
  };
  if (packed) {
    std::vector<double> w = p.wq, b = p.bq;
    w.insert(w.end(), p.wk.begin(), p.wk.end());
    w.insert(w.end(), p.wv.begin(), p.wv.end());
    b.insert(b.end(), p.bk.begin(), p.bk.end());
    b.insert(b.end(), p.bv.begin(), p.bv.end());
    in_w = tensor_of(w, {3 * hd, s.in_x});
    in_b = tensor_of(b, {3 * hd});
    in_dw = Tensor({3 * hd, s.in_x});
    in_db = Tensor({3 * hd});
    auto part = [&](int i) {
      return LinearParams{in_w.slice_rows(i * hd, (i + 1) * hd), in_b.slice_rows(i * hd, (i + 1) * hd),
                          in_dw.slice_rows(i * hd, (i + 1) * hd), in_db.slice_rows(i * hd, (i + 1) * hd), nullptr};
    };
    q = part(0), k = part(1), v = part(2);
  } else {
    q = lin(p.wq, p.bq, hd, s.in_x);
    k = lin(p.wk, p.bk, hd, s.in_c);
    v = lin(p.wv, p.bv, hd, s.in_c);
  }
  o = lin(p.wo, p.bo, s.out, hd);
  Tensor x = tensor_of(p.x, {s.B * s.T, s.in_x}), c = tensor_of(p.c, {s.B * s.Tk, s.in_c});
  Tensor y({s.B * s.T, s.out}), dx({s.B * s.T, s.in_x}), dc({s.B * s.Tk, s.in_c});
  const std::vector<double> g = test::to_double(test::random_floats(size_t(s.B) * s.T * s.out, 99, -1.f, 1.f));
  Tensor dy = tensor_of(g, {s.B * s.T, s.out});

  CrossAttention attn(s.H, s.D, s.causal);
  // Larger than needed: the layer must work on the first rows of its buffers.
  CrossAttention::Saved saved = attn.make_saved(2 * s.B * s.T, 2 * s.B * s.Tk, self);
  CrossAttention::Scratch scratch = attn.make_scratch(2 * s.B * s.T, 2 * s.B * s.Tk, self);
  if (self) {
    const LinearParams qkv{in_w, in_b, in_dw, in_db, nullptr};
    attn.forward_self(qkv, o, x.f32(), s.B, s.T, y.f32(), saved);
    attn.backward_self(qkv, o, dy.f32(), x.f32(), s.B, s.T, dx.f32(), saved, scratch);
  } else {
    const AttentionProjections w{q, k, v, o};
    attn.forward(w, x.f32(), c.f32(), s.B, s.T, s.Tk, y.f32(), saved);
    dc.f32()[0] = 123.f;  // overwritten, not accumulated
    attn.backward(w, dy.f32(), x.f32(), c.f32(), s.B, s.T, s.Tk, dx.f32(), dc.f32(), saved, scratch);
  }
  EXPECT_TRUE(test::all_close(floats(y), reference(s, p), 1e-5)) << "forward";

  // Central differences of the double reference, per operand.
  auto numeric = [&](std::vector<double>& param, bool ties_x_and_c) {
    std::vector<double> d(param.size());
    for (size_t i = 0; i < param.size(); i++) {
      const double e = 1e-5, keep = param[i];
      param[i] = keep + e;
      if (ties_x_and_c) p.c = p.x;
      const double up = objective(s, p, g);
      param[i] = keep - e;
      if (ties_x_and_c) p.c = p.x;
      const double down = objective(s, p, g);
      param[i] = keep;
      if (ties_x_and_c) p.c = p.x;
      d[i] = (up - down) / (2 * e);
    }
    return d;
  };
  auto rows_of = [&](const Tensor& t, int i) {
    const std::vector<float> all = floats(t);
    const size_t n = all.size() / 3;
    return std::vector<float>(all.begin() + long(i * n), all.begin() + long((i + 1) * n));
  };
  // atol: the key bias gradient is zero in exact arithmetic (softmax ignores a per-query constant).
  const double tol = 1e-4;
  EXPECT_TRUE(test::all_close(floats(dx), numeric(p.x, self), tol, 1e-6)) << "dx";
  if (!self) {
    EXPECT_TRUE(test::all_close(floats(dc), numeric(p.c, false), tol, 1e-6)) << "dcontext";
  }
  EXPECT_TRUE(test::all_close(floats(o.dweight), numeric(p.wo, self), tol, 1e-6)) << "d out_proj.weight";
  EXPECT_TRUE(test::all_close(floats(o.dbias), numeric(p.bo, self), tol, 1e-6)) << "d out_proj.bias";
  if (packed) {
    EXPECT_TRUE(test::all_close(rows_of(in_dw, 0), numeric(p.wq, self), tol, 1e-6)) << "dWq";
    EXPECT_TRUE(test::all_close(rows_of(in_dw, 1), numeric(p.wk, self), tol, 1e-6)) << "dWk";
    EXPECT_TRUE(test::all_close(rows_of(in_dw, 2), numeric(p.wv, self), tol, 1e-6)) << "dWv";
    EXPECT_TRUE(test::all_close(rows_of(in_db, 0), numeric(p.bq, self), tol, 1e-6)) << "dbq";
    EXPECT_TRUE(test::all_close(rows_of(in_db, 1), numeric(p.bk, self), tol, 1e-6)) << "dbk";
    EXPECT_TRUE(test::all_close(rows_of(in_db, 2), numeric(p.bv, self), tol, 1e-6)) << "dbv";
  } else {
    EXPECT_TRUE(test::all_close(floats(q.dweight), numeric(p.wq, false), tol, 1e-6)) << "dWq";
    EXPECT_TRUE(test::all_close(floats(k.dweight), numeric(p.wk, false), tol, 1e-6)) << "dWk";
    EXPECT_TRUE(test::all_close(floats(v.dweight), numeric(p.wv, false), tol, 1e-6)) << "dWv";
    EXPECT_TRUE(test::all_close(floats(q.dbias), numeric(p.bq, false), tol, 1e-6)) << "dbq";
    EXPECT_TRUE(test::all_close(floats(k.dbias), numeric(p.bk, false), tol, 1e-6)) << "dbk";
    EXPECT_TRUE(test::all_close(floats(v.dbias), numeric(p.bv, false), tol, 1e-6)) << "dbv";
  }
}

TEST(CrossAttention, SeparateProjectionsOfAWiderContext) {
  // kdim != embed_dim (attentional pooling): separate q/k/v weights, Tk != T.
  check(Shape{2, 3, 5, 2, 3, 6, 4, 5, false}, false, false);
}

TEST(CrossAttention, PackedInProjCrossAttention) {
  // CoCa's decoder cross attention: q from rows [0, W) of in_proj, k and v from rows [W, 3W).
  check(Shape{2, 4, 3, 2, 4, 8, 8, 8, false}, true, false);
}

TEST(CrossAttention, PackedCausalSelfAttention) {
  check(Shape{2, 5, 5, 2, 4, 8, 8, 8, true}, true, true);
}

TEST(CrossAttention, PackedBidirectionalSelfAttention) {
  check(Shape{1, 4, 4, 4, 2, 8, 8, 8, false}, true, true);
}

}  // namespace
}  // namespace loom
