// Device descriptions: the datasheet table, JSON files (round trip, missing fields), the GEMM rate model
// and the ring collective volumes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "loom/core/error.h"
#include "loom/plan/collective_model.h"
#include "loom/plan/hardware.h"

namespace {

using loom::ComputeDType;

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const loom::UserError& e) {
    return e.what();
  }
  return "";
}

TEST(PlanHardware, Datasheets) {
  const loom::Hardware a = loom::find_hardware("A100-80G");
  EXPECT_DOUBLE_EQ(a.peak_bf16, 312e12);
  EXPECT_DOUBLE_EQ(a.peak_tf32, 156e12);
  EXPECT_DOUBLE_EQ(a.memory_bandwidth, 2039e9);
  EXPECT_DOUBLE_EQ(a.memory_bytes, 80.0 * 1073741824.0);
  EXPECT_EQ(a.gpus_per_node, 8);
  EXPECT_DOUBLE_EQ(loom::find_hardware("H200").memory_bandwidth, 4800e9);
  EXPECT_DOUBLE_EQ(loom::find_hardware("RTX4090").peak_fp16, 165.2e12);
  EXPECT_EQ(loom::builtin_hardware_names().size(), 9u);
  EXPECT_EQ(error_of([] { loom::peak_flops(loom::find_hardware("V100-32G"), ComputeDType::kBf16); }),
            "V100-32G has no bf16 arithmetic");
  const std::string e = error_of([] { loom::find_hardware("TPUv4"); });
  EXPECT_EQ(e.rfind("unknown hardware 'TPUv4' (--hardware takes one of: V100-16G, ", 0), 0u) << e;
}

TEST(PlanHardware, JsonRoundTripAndMissingFields) {
  loom::Hardware h = loom::find_hardware("L40S");
  h.gemm_table.push_back({512, 512, 512, ComputeDType::kBf16, 1e14});
  const loom::Hardware r = loom::parse_hardware_json(loom::hardware_to_json(h), "x.json");
  EXPECT_EQ(r.name, "L40S");
  EXPECT_DOUBLE_EQ(r.peak_bf16, h.peak_bf16);
  EXPECT_DOUBLE_EQ(r.inter_node_bandwidth, h.inter_node_bandwidth);
  EXPECT_DOUBLE_EQ(r.link_efficiency, h.link_efficiency);
  ASSERT_EQ(r.gemm_table.size(), 1u);
  EXPECT_EQ(r.gemm_table[0].dtype, ComputeDType::kBf16);
  EXPECT_EQ(error_of([] { loom::parse_hardware_json(R"({"name": "x", "peak_fp32_flops": 1})", "h.json"); }),
            "h.json: missing field 'peak_tf32_flops'");
  EXPECT_EQ(error_of([] { loom::parse_hardware_json("{", "h.json"); }), "h.json: malformed JSON");
}

TEST(PlanHardware, GemmRate) {
  loom::Hardware h = loom::find_hardware("A100-80G");
  // Roofline: a large square GEMM approaches peak x efficiency, a skinny one the bandwidth bound.
  // rate = P I / (I + P / B): P the efficient peak, B the efficient bandwidth, I = 2 n^3 / (2 x 3 n^2).
  const double P = 312e12 * h.gemm_efficiency, B = 2039e9 * h.memory_efficiency;
  const double big = loom::gemm_rate(h, 16384, 16384, 16384, ComputeDType::kBf16);
  EXPECT_NEAR(big, P * (16384.0 / 3) / (16384.0 / 3 + P / B), 1e-6 * P);
  EXPECT_GT(big, 0.97 * P);
  const double skinny = loom::gemm_rate(h, 8192, 1, 8192, ComputeDType::kBf16);
  const double intensity = 2.0 * 8192 * 8192 / loom::gemm_min_bytes(8192, 1, 8192, 2);
  EXPECT_LT(skinny, intensity * h.memory_bandwidth * h.memory_efficiency);
  EXPECT_GT(skinny, 0.9 * intensity * h.memory_bandwidth * h.memory_efficiency);
  // A measured table: linear in log intensity between samples, flat above the largest.
  h.gemm_table = {{256, 256, 256, ComputeDType::kFp32, 1e11}, {1024, 1024, 1024, ComputeDType::kFp32, 3e11}};
  auto I = [](double n) { return 2.0 * n * n * n / loom::gemm_min_bytes(int64_t(n), int64_t(n), int64_t(n), 4); };
  EXPECT_DOUBLE_EQ(loom::gemm_rate(h, 1024, 1024, 1024, ComputeDType::kFp32), 3e11);
  EXPECT_DOUBLE_EQ(loom::gemm_rate(h, 4096, 4096, 4096, ComputeDType::kFp32), 3e11);
  const double f = (std::log(I(512)) - std::log(I(256))) / (std::log(I(1024)) - std::log(I(256)));
  EXPECT_NEAR(loom::gemm_rate(h, 512, 512, 512, ComputeDType::kFp32), 1e11 + f * 2e11, 1.0);
  // Other dtypes keep the roofline.
  EXPECT_DOUBLE_EQ(loom::gemm_rate(h, 16384, 16384, 16384, ComputeDType::kBf16), big);
}

// A table keyed by shape and form: a measured shape gets its own rate, whatever the intensity curve says;
// a shape near it keeps its deviation from the curve; each form (NT, NN, TN) reads its own samples.
TEST(PlanHardware, GemmRateByShapeAndForm) {
  using loom::GemmOp;
  loom::Hardware h = loom::find_hardware("A100-80G");
  const auto f32 = ComputeDType::kFp32;
  // Two square samples set the curve; a vocabulary-wide one of the 512^3 GEMM's intensity runs at half
  // the curve there.
  h.gemm_table = {{256, 256, 256, f32, 1e11, GemmOp::kNT}, {1024, 1024, 1024, f32, 3e11, GemmOp::kNT},
                  {512, 50304, 256, f32, 0.5e11, GemmOp::kNT}, {512, 512, 512, f32, 4e11, GemmOp::kTN}};
  EXPECT_DOUBLE_EQ(loom::gemm_rate(h, 512, 50304, 256, f32, GemmOp::kNT), 0.5e11);
  // Half the curve near it too: 448 rows is a shape no sample has; its nearest (distance ln(512/448))
  // says 0.5, the others (much farther) 1, weighted by 1 / distance^2.
  const double curve_at = [&] {
    loom::Hardware c = h;
    c.gemm_table.resize(2);
    return loom::gemm_rate(c, 448, 50304, 256, f32, GemmOp::kNT);
  }();
  auto d2 = [](double m, double n, double k, double sm, double sn, double sk) {
    return std::pow(std::log(m / sm), 2) + std::pow(std::log(n / sn), 2) + std::pow(std::log(k / sk), 2);
  };
  const double w_near = 1 / d2(448, 50304, 256, 512, 50304, 256), w_256 = 1 / d2(448, 50304, 256, 256, 256, 256),
               w_1024 = 1 / d2(448, 50304, 256, 1024, 1024, 1024);
  // The square samples lie on the curve (ratio 1); the wide one's ratio is 0.5e11 over the curve there.
  loom::Hardware c = h;
  c.gemm_table.resize(2);
  const double wide_ratio = 0.5e11 / loom::gemm_rate(c, 512, 50304, 256, f32, GemmOp::kNT);
  const double expected = curve_at * (w_near * wide_ratio + w_256 + w_1024) / (w_near + w_256 + w_1024);
  EXPECT_NEAR(loom::gemm_rate(h, 448, 50304, 256, f32, GemmOp::kNT), expected, 1e-6 * expected);
  EXPECT_LT(expected, 0.6 * curve_at);
  // The TN form has its own sample; the NN form has none, so it reads every fp32 sample.
  EXPECT_DOUBLE_EQ(loom::gemm_rate(h, 512, 512, 512, f32, GemmOp::kTN), 4e11);
  EXPECT_DOUBLE_EQ(loom::gemm_rate(h, 2048, 2048, 2048, f32, GemmOp::kTN), 4e11);
  EXPECT_DOUBLE_EQ(loom::gemm_rate(h, 512, 50304, 256, f32, GemmOp::kNN), 0.5e11);
}

TEST(PlanHardware, JsonGemmForms) {
  loom::Hardware h = loom::find_hardware("L40S");
  h.gemm_table = {{512, 256, 1024, ComputeDType::kFp32, 1e11, loom::GemmOp::kNN},
                  {256, 1024, 512, ComputeDType::kFp32, 2e11, loom::GemmOp::kTN}};
  const std::string json = loom::hardware_to_json(h);
  EXPECT_NE(json.find("\"op\": \"nn\""), std::string::npos) << json;
  const loom::Hardware r = loom::parse_hardware_json(json, "x.json");
  ASSERT_EQ(r.gemm_table.size(), 2u);
  EXPECT_EQ(r.gemm_table[0].op, loom::GemmOp::kNN);
  EXPECT_EQ(r.gemm_table[1].op, loom::GemmOp::kTN);
  // A file from before the forms were measured: no "op", read as the forward form.
  std::string old = json;
  const size_t at = old.find("\"op\": \"nn\",");
  ASSERT_NE(at, std::string::npos);
  old.erase(at, std::string("\"op\": \"nn\",").size());
  EXPECT_EQ(loom::parse_hardware_json(old, "x.json").gemm_table[0].op, loom::GemmOp::kNT);
  std::string bad = json;
  bad.replace(bad.find("\"nn\""), 4, "\"tt\"");
  EXPECT_EQ(error_of([&] { loom::parse_hardware_json(bad, "x.json"); }), "x.json: gemm[0]: op 'tt' is not one of nt, nn, tn");
}

TEST(PlanCollectives, RingVolumes) {
  EXPECT_DOUBLE_EQ(loom::all_reduce_bytes_sent(1000, 4), 2.0 * 3 / 4 * 1000);
  EXPECT_DOUBLE_EQ(loom::reduce_scatter_bytes_sent(1000, 4), 750);
  EXPECT_DOUBLE_EQ(loom::all_gather_bytes_sent(1000, 8), 875);
  EXPECT_DOUBLE_EQ(loom::all_reduce_bytes_sent(1000, 1), 0);
  const loom::Link l{1e9, 1e-5};
  EXPECT_DOUBLE_EQ(loom::all_reduce_time(1e9, 4, l), 6 * 1e-5 + 1.5);
  EXPECT_DOUBLE_EQ(loom::reduce_scatter_time(1e9, 4, l), 3 * 1e-5 + 0.75);
  EXPECT_DOUBLE_EQ(loom::send_recv_time(1e9, l), 1e-5 + 1.0);
  EXPECT_DOUBLE_EQ(loom::all_reduce_time(1e9, 1, l), 0);
  // A calibrated machine's own all-gather and reduce-scatter bandwidth (fractions of the all-reduce's);
  // the all-reduce and send/recv keep the link's.
  loom::Link m = l;
  m.all_gather_factor = 2.0, m.reduce_scatter_factor = 0.25;
  EXPECT_DOUBLE_EQ(loom::all_gather_time(1e9, 4, m), 3 * 1e-5 + 0.75 / 2.0);
  EXPECT_DOUBLE_EQ(loom::reduce_scatter_time(1e9, 4, m), 3 * 1e-5 + 0.75 / 0.25);
  EXPECT_DOUBLE_EQ(loom::all_reduce_time(1e9, 4, m), loom::all_reduce_time(1e9, 4, l));
  EXPECT_DOUBLE_EQ(loom::send_recv_time(1e9, m), 1e-5 + 1.0);
}

TEST(PlanHardware, CollectiveFactorsInJson) {
  loom::Hardware h = loom::find_hardware("A40");
  EXPECT_DOUBLE_EQ(h.all_gather_factor, 1.0);
  EXPECT_DOUBLE_EQ(h.reduce_scatter_factor, 1.0);
  h.all_gather_factor = 1.4, h.reduce_scatter_factor = 0.3;
  const std::string json = loom::hardware_to_json(h);
  const loom::Hardware r = loom::parse_hardware_json(json, "x.json");
  EXPECT_DOUBLE_EQ(r.all_gather_factor, 1.4);
  EXPECT_DOUBLE_EQ(r.reduce_scatter_factor, 0.3);
  std::string bad = json;
  bad.replace(bad.find("0.3"), 3, "-1");
  EXPECT_EQ(error_of([&] { loom::parse_hardware_json(bad, "x.json"); }),
            "x.json: field 'reduce_scatter_factor' must be a positive number");
}

// Measured attention by length: interpolated in log length over the samples of its kind, flat beyond;
// without samples, the single efficiency and backward ratio.
TEST(PlanHardware, AttentionRatesBySequence) {
  loom::Hardware h = loom::find_hardware("A100-80G");
  const auto bf16 = ComputeDType::kBf16;
  const loom::AttentionRates d = loom::attention_rates(h, bf16, 77, true);
  EXPECT_DOUBLE_EQ(d.forward, 312e12 * h.attention_efficiency);
  EXPECT_DOUBLE_EQ(d.backward, d.forward / h.attention_backward_ratio);
  h.attention_table = {{64, true, 2e11, 1e11}, {256, true, 4e11, 2e11}, {64, false, 6e11, 3e11}};
  EXPECT_DOUBLE_EQ(loom::attention_rates(h, bf16, 64, true).forward, 2e11);
  EXPECT_DOUBLE_EQ(loom::attention_rates(h, bf16, 128, true).forward, 3e11);  // halfway in log length
  EXPECT_DOUBLE_EQ(loom::attention_rates(h, bf16, 128, true).backward, 1.5e11);
  EXPECT_DOUBLE_EQ(loom::attention_rates(h, bf16, 16, true).forward, 2e11);  // flat below and above
  EXPECT_DOUBLE_EQ(loom::attention_rates(h, bf16, 4096, true).backward, 2e11);
  EXPECT_DOUBLE_EQ(loom::attention_rates(h, bf16, 300, false).forward, 6e11);  // its own kind
  h.attention_table.resize(2);
  EXPECT_DOUBLE_EQ(loom::attention_rates(h, bf16, 64, false).forward, 2e11);  // none of its kind: any
  const loom::Hardware r = loom::parse_hardware_json(loom::hardware_to_json(h), "x.json");
  ASSERT_EQ(r.attention_table.size(), 2u);
  EXPECT_EQ(r.attention_table[1].seq, 256);
  EXPECT_TRUE(r.attention_table[1].causal);
  EXPECT_DOUBLE_EQ(r.attention_table[1].backward_flops_per_s, 2e11);
  std::string bad = loom::hardware_to_json(h);
  bad.replace(bad.find("\"seq\": 64"), std::string("\"seq\": 64").size(), "\"seq\": 0");
  EXPECT_EQ(error_of([&] { loom::parse_hardware_json(bad, "x.json"); }), "x.json: attention[0]: seq must be a positive integer");
}

}  // namespace
