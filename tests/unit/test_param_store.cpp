// ParamStore and ParamStorage in one process (no ZeRO group): the flat fp32 layout, and half-precision
// weights / gradients behind fp32 working views (acquire / commit / release, acquire_full / commit_full /
// release_full). Stored bytes are checked against the exact scalar converters of core/dtype.h.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "loom/core/dtype.h"
#include "test_kernels_util.h"
#include "loom/core/rng.h"
#include "loom/layers/param_store.h"

using namespace loom;

namespace {

using test::f32_bits;

// The value a storage type holds for fp32 x, as fp32.
float rounded(float x, DType t) { return t == DType::F32 ? x : test::half_value(test::half_bits(x, t), t); }

// Reads element j of a stored buffer of type t as fp32.
float stored_at(const void* data, DType t, int64_t j) {
  if (t == DType::F32) return static_cast<const float*>(data)[j];
  return test::half_value(static_cast<const uint16_t*>(data)[j], t);
}

// Three parameters of odd sizes: 15, 17 and 1 elements, padded to 16, 32 and 16.
struct Layout {
  std::vector<std::vector<int64_t>> shapes = {{3, 5}, {17}, {1}};
  std::vector<int64_t> numel = {15, 17, 1};
  std::vector<int64_t> offset = {0, 16, 48};
  int64_t total = 64;
};

void add_params(ParamStore& s) {
  const Layout L;
  s.add("layer0.weight", L.shapes[0], true);
  s.add("layer0.bias", L.shapes[1], false);
  s.add("layer1.scale", L.shapes[2], false);
}

// Values that are not representable in half precision (so rounding is visible), with a few exact ties.
std::vector<float> test_values(int64_t n, uint64_t seed) {
  Rng r(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = r.normal() * 3.0f + 0.1234567f;
  if (n > 2) {
    v[0] = 1.0f + std::ldexp(1.0f, -11);  // fp16 tie (-> 1)
    v[1] = 1.0f + 3.0f * std::ldexp(1.0f, -8);  // bf16 tie (-> 1 + 2^-6)
    v[2] = -0.0f;
  }
  return v;
}

}  // namespace

TEST(ParamStore, DefaultStorageIsFlatFp32) {
  ParamStore s;
  EXPECT_EQ(s.storage().weights, DType::F32);
  EXPECT_EQ(s.storage().grads, DType::F32);
  add_params(s);
  s.finalize();
  const Layout L;
  EXPECT_TRUE(s.values_direct());
  EXPECT_TRUE(s.grads_direct());
  EXPECT_TRUE(s.has_full_values());
  EXPECT_TRUE(s.grads_whole());
  ASSERT_NE(s.values(), nullptr);
  ASSERT_NE(s.grads(), nullptr);
  EXPECT_EQ(s.numel(), L.total);
  EXPECT_EQ(s.weight_bytes(), 4 * L.total);
  EXPECT_EQ(s.grad_bytes(), 4 * L.total);
  EXPECT_EQ(s.working_bytes(), 0);
  ASSERT_EQ(s.all().size(), 3u);
  for (int i = 0; i < 3; i++) {
    Param& p = s.at(i);
    EXPECT_EQ(p.offset, L.offset[size_t(i)]) << p.name;
    EXPECT_EQ(p.numel(), L.numel[size_t(i)]);
    // The views are valid straight after finalize, without acquire, and are the flat buffers.
    ASSERT_TRUE(p.value.defined()) << p.name;
    ASSERT_TRUE(p.grad.defined()) << p.name;
    EXPECT_EQ(p.value.shape(), L.shapes[size_t(i)]);
    EXPECT_EQ(p.grad.shape(), L.shapes[size_t(i)]);
    EXPECT_EQ(p.value.f32(), s.values() + p.offset);
    EXPECT_EQ(p.grad.f32(), s.grads() + p.offset);
  }
  EXPECT_EQ(s.find("layer0.bias"), &s.at(1));
  EXPECT_EQ(s.find("nope"), nullptr);
  EXPECT_EQ(s.index_of("layer1.scale"), 2);
  // Writes through a view land in the flat buffer; acquire/commit/release leave direct views alone.
  s.at(1).value.f32()[16] = 2.5f;
  s.at(0).grad.f32()[14] = -1.0f;
  s.acquire(0, true);
  s.commit(0);
  s.release(0, true);
  EXPECT_EQ(s.at(1).value.f32(), s.values() + 16);
  EXPECT_EQ(s.values()[16 + 16], 2.5f);
  EXPECT_EQ(s.grads()[14], -1.0f);
  s.acquire_full();
  EXPECT_EQ(s.at(1).value.f32(), s.values() + 16);
  s.release_full();
  EXPECT_TRUE(s.at(1).value.defined());
  EXPECT_TRUE(s.has_full_values());
  s.zero_grads();
  EXPECT_EQ(s.grads()[14], 0.0f);
}

TEST(ParamStore, ConfigureErrors) {
  ParamStore s;
  add_params(s);
  EXPECT_THROW(s.configure(ParamStorage{}), std::logic_error);  // after add
  ParamStore t;
  ParamStorage st;
  st.shard_grads = true;  // sharding without a ZeRO group
  EXPECT_THROW(t.configure(st), std::logic_error);
  ParamStorage sw;
  sw.shard_weights = true;
  EXPECT_THROW(t.configure(sw), std::logic_error);
}

class HalfParamStore : public ::testing::TestWithParam<std::tuple<DType, DType>> {
 protected:
  void SetUp() override {
    std::tie(wt_, gt_) = GetParam();
    ParamStorage st;
    st.weights = wt_;
    st.grads = gt_;
    s_.configure(st);
    add_params(s_);
    s_.finalize(16, {{0, 1}, {2}});
  }
  const std::vector<int>& unit(int u) const { return units_[size_t(u)]; }
  // Writes fp32 values into every parameter of unit u and commits them; returns them by parameter.
  void write_unit(int u, std::map<int, std::vector<float>>& want, uint64_t seed) {
    s_.acquire(u, false);
    for (int i : unit(u)) {
      Param& p = s_.at(i);
      ASSERT_TRUE(p.value.defined()) << p.name;
      ASSERT_EQ(p.value.shape(), p.shape);
      want[i] = test_values(p.numel(), seed + uint64_t(i));
      std::memcpy(p.value.f32(), want[i].data(), sizeof(float) * size_t(p.numel()));
    }
    s_.commit(u);
  }
  // Acquires unit u and checks its views hold the stored (rounded) values, and the stored bits are the
  // rounded fp32 values.
  void check_unit(int u, const std::map<int, std::vector<float>>& want) {
    s_.acquire(u, false);
    for (int i : unit(u)) {
      const Param& p = s_.at(i);
      ASSERT_TRUE(p.value.defined()) << p.name;
      const std::vector<float>& w = want.at(i);
      for (int64_t j = 0; j < p.numel(); j++) {
        const float r = rounded(w[size_t(j)], wt_);
        ASSERT_EQ(f32_bits(p.value.f32()[j]), f32_bits(r)) << p.name << "[" << j << "] wrote " << w[size_t(j)];
      }
    }
    check_stored_weights(want, unit(u));
  }
  void check_stored_weights(const std::map<int, std::vector<float>>& want, const std::vector<int>& params) {
    const std::vector<Segment> own = s_.owned_slices();
    for (int i : params) {
      const Segment& sg = own.at(size_t(i));
      ASSERT_EQ(sg.param, i);
      const uint16_t* h = static_cast<const uint16_t*>(s_.weight_data(sg));
      for (int64_t j = 0; j < sg.count; j++)
        ASSERT_EQ(h[j], test::half_bits(want.at(i)[size_t(j)], wt_)) << s_.at(i).name << "[" << j << "]";
    }
  }

  ParamStore s_;
  DType wt_ = DType::BF16, gt_ = DType::F16;
  std::vector<std::vector<int>> units_ = {{0, 1}, {2}};
};

TEST_P(HalfParamStore, LayoutAndBytes) {
  const Layout L;
  EXPECT_FALSE(s_.values_direct());
  EXPECT_EQ(s_.grads_direct(), gt_ == DType::F32);
  EXPECT_EQ(s_.values(), nullptr);
  if (gt_ != DType::F32) {
    EXPECT_EQ(s_.grads(), nullptr);
  } else {
    EXPECT_NE(s_.grads(), nullptr);
  }
  EXPECT_EQ(s_.num_units(), 2);
  EXPECT_EQ(s_.numel(), L.total);
  EXPECT_TRUE(s_.grads_whole());
  for (int i = 0; i < 3; i++) EXPECT_EQ(s_.at(i).offset, L.offset[size_t(i)]);
  // Each parameter padded to a multiple of 16 elements: 16 + 32 + 16 = 64, 2 bytes each (4 for fp32 grads).
  EXPECT_EQ(s_.weight_bytes(), 2 * L.total);
  EXPECT_EQ(s_.grad_bytes(), int64_t(dtype_size(gt_)) * L.total);
  // Working buffers: fp32, the largest unit (params 0 and 1: 48 elements), for weights and half grads.
  EXPECT_EQ(s_.working_bytes(), 4 * 48 * (gt_ == DType::F32 ? 1 : 2));
  // Without a ZeRO group: every parameter whole, at its offset in the flat buffers.
  for (int rank : {-1, 0}) {
    const std::vector<Segment> own = s_.owned_slices(rank);
    ASSERT_EQ(own.size(), 3u);
    for (int i = 0; i < 3; i++) {
      EXPECT_EQ(own[size_t(i)].param, i);
      EXPECT_EQ(own[size_t(i)].begin, 0);
      EXPECT_EQ(own[size_t(i)].count, L.numel[size_t(i)]);
      EXPECT_EQ(own[size_t(i)].pos, L.offset[size_t(i)]);
      EXPECT_EQ(static_cast<char*>(s_.weight_data(own[size_t(i)])) - static_cast<char*>(s_.weight_data(own[0])),
                2 * L.offset[size_t(i)]);
    }
  }
  const std::vector<Segment>& gs = s_.grad_segments();
  ASSERT_EQ(gs.size(), 3u);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(gs[size_t(i)].param, i);
    EXPECT_EQ(gs[size_t(i)].begin, 0);
    EXPECT_EQ(gs[size_t(i)].count, L.numel[size_t(i)]);
    EXPECT_EQ(gs[size_t(i)].pos, L.offset[size_t(i)]);
    EXPECT_EQ(s_.grad_data(gs[size_t(i)]),
              static_cast<char*>(s_.grad_storage()) + dtype_size(gt_) * size_t(L.offset[size_t(i)]));
  }
}

TEST_P(HalfParamStore, CommittedWeightsAreStoredRounded) {
  std::map<int, std::vector<float>> want;
  write_unit(0, want, 100);
  write_unit(1, want, 200);  // reuses the working buffer: must not disturb unit 0's stored weights
  check_unit(0, want);
  check_unit(1, want);
  check_unit(0, want);
  // The rounding is real (not every value survives): at least one stored value differs from what was written.
  int changed = 0;
  for (auto& [i, w] : want)
    for (float x : w) changed += rounded(x, wt_) != x;
  EXPECT_GT(changed, 0);
  // Rewriting one unit leaves the other alone.
  std::map<int, std::vector<float>> again = want;
  write_unit(1, again, 300);
  check_unit(0, want);
  check_unit(1, again);
}

TEST_P(HalfParamStore, GradientsAccumulateInStorageType) {
  if (gt_ == DType::F32) {
    // fp32 gradients are direct: plain views of the flat buffer, valid without acquire.
    for (int i = 0; i < 3; i++) {
      ASSERT_TRUE(s_.at(i).grad.defined());
      EXPECT_EQ(s_.at(i).grad.f32(), s_.grads() + s_.at(i).offset);
    }
  }
  // Reference: the stored gradient of every element, as fp32 (starts at zero).
  std::map<int, std::vector<float>> ref;
  for (int i = 0; i < 3; i++) ref[i].assign(size_t(s_.at(i).numel()), 0.0f);
  for (int step = 0; step < 4; step++) {
    for (int u = 0; u < 2; u++) {
      s_.acquire(u, true);
      for (int i : unit(u)) {
        Param& p = s_.at(i);
        ASSERT_TRUE(p.grad.defined()) << p.name;
        ASSERT_EQ(p.grad.shape(), p.shape);
        float* g = p.grad.f32();
        const std::vector<float> add = test_values(p.numel(), uint64_t(1000 + 10 * step + i));
        for (int64_t j = 0; j < p.numel(); j++) {
          // The view starts from the stored gradient (converted to fp32).
          ASSERT_EQ(f32_bits(g[j]), f32_bits(ref[i][size_t(j)])) << p.name << "[" << j << "] step " << step;
          g[j] += add[size_t(j)];
          ref[i][size_t(j)] = rounded(ref[i][size_t(j)] + add[size_t(j)], gt_);
        }
      }
      s_.release(u, true);
    }
  }
  auto check_stored = [&](const char* when) {
    for (const Segment& sg : s_.grad_segments()) {
      const void* d = s_.grad_data(sg);
      for (int64_t j = 0; j < sg.count; j++)
        ASSERT_EQ(f32_bits(stored_at(d, gt_, j)), f32_bits(ref[sg.param][size_t(sg.begin + j)]))
            << when << ": " << s_.at(sg.param).name << "[" << j << "]";
    }
  };
  check_stored("after accumulation");
  // Half accumulation actually rounded something (the test can tell fp32 from half storage).
  if (gt_ != DType::F32) {
    int inexact = 0;
    for (int i = 0; i < 3; i++) {
      const std::vector<float> add = test_values(s_.at(i).numel(), uint64_t(1000 + i));  // step 0
      for (float x : add) inexact += rounded(x, gt_) != x;
    }
    EXPECT_GT(inexact, 0);
  }
  // release(u, false): whatever was written into the views is dropped (not for direct fp32 grads, whose
  // views are the storage itself).
  if (gt_ != DType::F32) {
    s_.acquire(0, true);
    for (int i : unit(0)) s_.at(i).grad.f32()[0] += 1000.0f;
    s_.release(0, false);
    check_stored("after release without writes");
  }
  s_.zero_grads();
  for (auto& [i, r] : ref) std::fill(r.begin(), r.end(), 0.0f);
  check_stored("after zero_grads");
  s_.acquire(1, true);
  EXPECT_EQ(s_.at(2).grad.f32()[0], 0.0f);
  s_.release(1, false);
}

TEST_P(HalfParamStore, FullValuesRoundTrip) {
  std::map<int, std::vector<float>> want;
  write_unit(0, want, 400);
  write_unit(1, want, 500);
  EXPECT_FALSE(s_.has_full_values());
  EXPECT_THROW(s_.commit_full(), std::logic_error);  // commit_full without acquire_full
  s_.acquire_full();
  EXPECT_TRUE(s_.has_full_values());
  EXPECT_EQ(s_.working_bytes() - 4 * 48 * (gt_ == DType::F32 ? 1 : 2), 4 * 64);  // + the full fp32 copy
  // Every parameter's view valid at once, holding the stored values.
  for (int i = 0; i < 3; i++) {
    const Param& p = s_.at(i);
    ASSERT_TRUE(p.value.defined()) << p.name;
    ASSERT_EQ(p.value.shape(), p.shape);
    for (int64_t j = 0; j < p.numel(); j++)
      ASSERT_EQ(f32_bits(p.value.f32()[j]), f32_bits(rounded(want[i][size_t(j)], wt_))) << p.name << "[" << j << "]";
  }
  // The views are distinct memory: writing all of them then committing stores every parameter.
  std::map<int, std::vector<float>> next;
  for (int i = 0; i < 3; i++) {
    Param& p = s_.at(i);
    next[i] = test_values(p.numel(), uint64_t(600 + i));
    for (int64_t j = 0; j < p.numel(); j++) next[i][size_t(j)] *= -2.0f;
    std::memcpy(p.value.f32(), next[i].data(), sizeof(float) * size_t(p.numel()));
  }
  s_.commit_full();
  check_stored_weights(next, {0, 1, 2});
  s_.release_full();
  EXPECT_FALSE(s_.has_full_values());
  EXPECT_EQ(s_.working_bytes(), 4 * 48 * (gt_ == DType::F32 ? 1 : 2));
  check_unit(0, next);
  check_unit(1, next);
  // A second acquire_full sees the committed values.
  s_.acquire_full();
  EXPECT_TRUE(s_.has_full_values());
  for (int i = 0; i < 3; i++)
    for (int64_t j = 0; j < s_.at(i).numel(); j++)
      ASSERT_EQ(f32_bits(s_.at(i).value.f32()[j]), f32_bits(rounded(next[i][size_t(j)], wt_)));
  s_.release_full();
}

TEST_P(HalfParamStore, ParameterSharedByTwoUnitsAccumulatesBoth) {
  // A tied parameter (used by two layers): its gradient is the sum of both layers' contributions.
  ParamStore s;
  ParamStorage st;
  st.weights = wt_;
  st.grads = gt_;
  s.configure(st);
  add_params(s);
  s.finalize(16, {{0, 1}, {1, 2}});
  std::vector<float> ref(17, 0.0f);
  for (int u = 0; u < 2; u++) {
    s.acquire(u, true);
    float* g = s.at(1).grad.f32();
    const std::vector<float> add = test_values(17, uint64_t(700 + u));
    for (int j = 0; j < 17; j++) {
      ASSERT_EQ(f32_bits(g[j]), f32_bits(ref[size_t(j)])) << "unit " << u << " [" << j << "]";
      g[j] += add[size_t(j)];
      ref[size_t(j)] = rounded(ref[size_t(j)] + add[size_t(j)], gt_);
    }
    s.release(u, true);
  }
  const Segment& sg = s.grad_segments().at(1);
  for (int j = 0; j < 17; j++) ASSERT_EQ(f32_bits(stored_at(s.grad_data(sg), gt_, j)), f32_bits(ref[size_t(j)])) << j;
}

// bf16 weights stored whole: stored_bf16 points at each parameter's stored bits (fp16 storage: none); a
// parameter marked read_as_bf16_only is not widened by acquire(..., Widen::Fp32Readers), the others are, and
// Widen::All widens every one.
TEST_P(HalfParamStore, StoredBf16WeightsAndTheReadersAcquire) {
  std::map<int, std::vector<float>> want;
  write_unit(0, want, 100);
  for (int i = 0; i < 3; i++) {
    const Param& p = s_.at(i);
    if (wt_ != DType::BF16) {
      EXPECT_EQ(p.stored_bf16, nullptr);
      continue;
    }
    ASSERT_EQ(static_cast<const void*>(p.stored_bf16), s_.weight_data(s_.owned_slices()[size_t(i)])) << p.name;
  }
  s_.read_as_bf16_only(0);
  const float sentinel = 12345.0f;
  auto fill = [&] {
    for (int i : unit(0)) std::fill(s_.at(i).value.f32(), s_.at(i).value.f32() + s_.at(i).numel(), sentinel);
  };
  fill();
  s_.acquire(0, false, -1, ParamStore::Widen::Fp32Readers);
  for (int i : unit(0)) {
    const Param& p = s_.at(i);
    const bool skipped = i == 0 && wt_ == DType::BF16;
    for (int64_t j = 0; j < p.numel(); j++) {
      const float want_value = skipped ? sentinel : rounded(want.at(i)[size_t(j)], wt_);
      ASSERT_EQ(f32_bits(p.value.f32()[j]), f32_bits(want_value)) << p.name << "[" << j << "]";
    }
  }
  fill();
  check_unit(0, want);  // acquire(u, false): Widen::All
}

INSTANTIATE_TEST_SUITE_P(Storage, HalfParamStore,
                         ::testing::Combine(::testing::Values(DType::BF16, DType::F16),
                                            ::testing::Values(DType::F16, DType::BF16, DType::F32)),
                         [](const auto& info) {
                           return std::string("w") + dtype_name(std::get<0>(info.param)) + "_g" +
                                  dtype_name(std::get<1>(info.param));
                         });

TEST(ParamStore, HasFullValuesSemantics) {
  {  // fp32 weights: always full, before and after finalize, whatever the gradient type.
    for (DType g : {DType::F32, DType::F16, DType::BF16}) {
      ParamStore s;
      ParamStorage st;
      st.grads = g;
      s.configure(st);
      add_params(s);
      EXPECT_TRUE(s.has_full_values());
      s.finalize();
      EXPECT_TRUE(s.values_direct());
      EXPECT_EQ(s.grads_direct(), g == DType::F32);
      EXPECT_TRUE(s.has_full_values());
      s.acquire_full();
      EXPECT_TRUE(s.has_full_values());
      s.release_full();
      EXPECT_TRUE(s.has_full_values());
      // Direct values stay valid views of the flat buffer through acquire_full/release_full.
      EXPECT_TRUE(s.at(0).value.defined());
      EXPECT_EQ(s.at(0).value.f32(), s.values());
    }
  }
  for (DType w : {DType::BF16, DType::F16}) {  // half weights: full only between acquire_full and release_full
    ParamStore s;
    ParamStorage st;
    st.weights = w;
    s.configure(st);
    add_params(s);
    s.finalize();
    EXPECT_FALSE(s.values_direct());
    EXPECT_TRUE(s.grads_direct());
    EXPECT_FALSE(s.has_full_values());
    s.acquire(0, false);  // one unit's views are not the full values
    EXPECT_FALSE(s.has_full_values());
    s.acquire_full();
    EXPECT_TRUE(s.has_full_values());
    s.commit_full();
    EXPECT_TRUE(s.has_full_values());
    s.release_full();
    EXPECT_FALSE(s.has_full_values());
    for (int i = 0; i < 3; i++) EXPECT_FALSE(s.at(i).value.defined()) << "release_full keeps a view of the freed copy";
  }
}
