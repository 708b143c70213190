#include "loom/plan/hardware.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "loom/core/error.h"

namespace loom {
namespace {

constexpr double T = 1e12, G = 1e9, GiB = 1073741824.0, us = 1e-6;

// Datasheet figures, dense (no structured sparsity), SXM parts where a PCIe part also exists:
//  - V100: NVIDIA Tesla V100 datasheet (2018): SXM2 15.7 TF fp32, 125 TF tensor (fp16), no tf32/bf16;
//    16/32 GB HBM2 at 900 GB/s; NVLink 300 GB/s (both directions); DGX-1: 8 GPUs, 4 x 100 Gb/s EDR IB.
//  - A100: NVIDIA A100 datasheet (2021): 19.5 TF fp32, 156 TF tf32, 312 TF fp16/bf16; 40 GB at
//    1,555 GB/s, 80 GB at 2,039 GB/s; NVLink 600 GB/s; DGX A100: 8 GPUs, 8 x 200 Gb/s HDR IB.
//  - H100 SXM5: NVIDIA H100 datasheet: 67 TF fp32, 494.7 TF tf32, 989.4 TF fp16/bf16; 80 GB at
//    3.35 TB/s; NVLink 900 GB/s; DGX H100: 8 GPUs, 8 x 400 Gb/s NDR IB.
//  - H200 SXM: NVIDIA H200 datasheet: H100's rates; 141 GB at 4.8 TB/s; NVLink 900 GB/s; DGX H200 as H100.
//  - RTX 4090: NVIDIA Ada GPU architecture whitepaper, appendix: 82.6 TF fp32, 82.6 TF tf32, 165.2 TF
//    fp16/bf16 with fp32 accumulate; 24 GB GDDR6X at 1,008 GB/s; PCIe 4.0 x16 (no NVLink, no P2P).
//  - A40: NVIDIA A40 datasheet: 37.4 TF fp32, 74.8 TF tf32, 149.7 TF fp16/bf16; 48 GB GDDR6 at 696 GB/s;
//    PCIe 4.0 x16 64 GB/s (both directions).
//  - L40S: NVIDIA L40S datasheet: 91.6 TF fp32, 183 TF tf32, 362.05 TF fp16/bf16; 48 GB GDDR6 at
//    864 GB/s; PCIe 4.0 x16 64 GB/s (both directions), no NVLink.
// Link bandwidths are per GPU and direction: half the bidirectional NVLink/PCIe figure, and the node's
// InfiniBand divided by the GPUs sharing it. The network of the PCIe boards is not on a datasheet; the
// entries assume one 200 Gb/s HDR port per node (4090, A40, L40S servers) and say so here. Latencies are
// typical NCCL step latencies (a few microseconds over NVLink, ~10 over PCIe and InfiniBand), not datasheet
// figures. gemm_efficiency is the share of peak cuBLAS reaches on large GEMMs (about 0.8 on A100/H100 in
// NVIDIA's published cuBLAS figures, lower on GeForce/PCIe boards whose clocks drop under load).
Hardware entry(const char* name, double fp32, double tf32, double fp16, double bf16, double mem, double bw,
               const char* link, double link_bw, double link_lat, int per_node, double ib_bw, double host_bw,
               double gemm_eff, bool fused_attention) {
  Hardware h;
  h.name = name;
  h.peak_fp32 = fp32 * T, h.peak_tf32 = tf32 * T, h.peak_fp16 = fp16 * T, h.peak_bf16 = bf16 * T;
  h.memory_bytes = mem * GiB;
  h.memory_bandwidth = bw * G;
  h.intra_node_link = link;
  h.intra_node_bandwidth = link_bw * G;
  h.intra_node_latency = link_lat * us;
  h.gpus_per_node = per_node;
  h.inter_node_bandwidth = ib_bw * G;
  h.inter_node_latency = 10 * us;
  h.host_bandwidth = host_bw * G;
  h.gemm_efficiency = gemm_eff;
  h.fused_attention = fused_attention;
  h.link_efficiency = 0.75;  // NCCL bus bandwidth is about three quarters of the nominal link rate
  return h;
}

const std::vector<Hardware>& builtins() {
  static const std::vector<Hardware> all = {
      // name           fp32   tf32   fp16   bf16  GiB  GB/s  link     GB/s  us  node IB GB/s/GPU host eff  fused
      // V100 (Volta) has no flash attention: scores are materialised.
      entry("V100-16G", 15.7, 0, 125, 0, 16, 900, "NVLink", 150, 5, 8, 100.0 * 4 / 8 / 8, 16, 0.75, false),
      entry("V100-32G", 15.7, 0, 125, 0, 32, 900, "NVLink", 150, 5, 8, 100.0 * 4 / 8 / 8, 16, 0.75, false),
      entry("A100-40G", 19.5, 156, 312, 312, 40, 1555, "NVLink", 300, 5, 8, 200.0 / 8, 32, 0.8, true),
      entry("A100-80G", 19.5, 156, 312, 312, 80, 2039, "NVLink", 300, 5, 8, 200.0 / 8, 32, 0.8, true),
      entry("H100-SXM", 67, 494.7, 989.4, 989.4, 80, 3350, "NVLink", 450, 5, 8, 400.0 / 8, 64, 0.75, true),
      entry("H200", 67, 494.7, 989.4, 989.4, 141e9 / GiB, 4800, "NVLink", 450, 5, 8, 400.0 / 8, 64, 0.75, true),
      entry("RTX4090", 82.6, 82.6, 165.2, 165.2, 24, 1008, "PCIe", 32, 10, 4, 200.0 / 8 / 4, 32, 0.7, true),
      entry("A40", 37.4, 74.8, 149.7, 149.7, 48, 696, "PCIe", 32, 10, 8, 200.0 / 8 / 8, 32, 0.7, true),
      entry("L40S", 91.6, 183, 362.05, 362.05, 48, 864, "PCIe", 32, 10, 8, 200.0 / 8 / 8, 32, 0.7, true),
  };
  return all;
}

const char* kDTypes[] = {"fp32", "tf32", "fp16", "bf16"};

ComputeDType parse_dtype(const std::string& s, const std::string& where) {
  for (int i = 0; i < 4; i++)
    if (s == kDTypes[i]) return ComputeDType(i);
  fail(where + ": dtype '" + s + "' is not one of fp32, tf32, fp16, bf16");
}

// Arithmetic intensity (FLOPs per byte moved) of a GEMM with 2-byte (or 4-byte fp32) operands.
double intensity(int64_t m, int64_t n, int64_t k, ComputeDType d) {
  const int e = d == ComputeDType::kFp32 || d == ComputeDType::kTf32 ? 4 : 2;
  return 2.0 * double(m) * double(n) * double(k) / gemm_min_bytes(m, n, k, e);
}

}  // namespace

const char* dtype_name(ComputeDType d) { return kDTypes[int(d)]; }

double peak_flops(const Hardware& hw, ComputeDType d) {
  const double rates[] = {hw.peak_fp32, hw.peak_tf32, hw.peak_fp16, hw.peak_bf16};
  const double r = rates[int(d)];
  require(r > 0, hw.name + " has no " + std::string(dtype_name(d)) + " arithmetic");
  return r;
}

double gemm_min_bytes(int64_t m, int64_t n, int64_t k, int e) {
  return double(e) * (double(m) * double(k) + double(k) * double(n) + double(m) * double(n));
}

namespace {

// The fastest rate the table shows at each log intensity: the upper concave hull of the samples'
// (log intensity, rate) points, linear between its vertices, proportional to the intensity below the
// first (bandwidth-bound), flat above the last. A shape slower than its intensity suggests (a
// vocabulary-wide output layer) lies below the hull and does not drag it down for the others.
struct IntensityCurve {
  std::vector<std::pair<double, double>> hull;  // vertices, increasing log intensity

  explicit IntensityCurve(std::vector<std::pair<double, double>> pts) {
    std::sort(pts.begin(), pts.end());
    for (const auto& p : pts) {
      if (!hull.empty() && p.first - hull.back().first < 1e-12) {  // same intensity: the faster
        if (p.second <= hull.back().second) continue;
        hull.pop_back();
      }
      // Pop vertices on or below the chord from the one before to p (Andrew's monotone chain).
      while (hull.size() >= 2) {
        const auto& o = hull[hull.size() - 2];
        const auto& a = hull.back();
        if ((a.first - o.first) * (p.second - o.second) - (a.second - o.second) * (p.first - o.first) < 0) break;
        hull.pop_back();
      }
      hull.push_back(p);
    }
  }
  double at(double x) const {
    if (x <= hull.front().first) return hull.front().second * std::exp(x - hull.front().first);
    if (x >= hull.back().first) return hull.back().second;
    const auto it = std::lower_bound(hull.begin(), hull.end(), std::make_pair(x, -1.0));
    const auto& lo = *(it - 1);
    const double f = (x - lo.first) / (it->first - lo.first);
    return lo.second + f * (it->second - lo.second);
  }
};

}  // namespace

const char* gemm_op_name(GemmOp op) {
  const char* names[] = {"nt", "nn", "tn"};
  return names[int(op)];
}

double gemm_rate(const Hardware& hw, int64_t m, int64_t n, int64_t k, ComputeDType d, GemmOp op) {
  std::vector<const GemmSample*> samples;
  for (const GemmSample& g : hw.gemm_table)
    if (g.dtype == d && g.op == op) samples.push_back(&g);
  if (samples.empty())
    for (const GemmSample& g : hw.gemm_table)
      if (g.dtype == d) samples.push_back(&g);
  const double x = std::log(intensity(m, n, k, d));
  if (!samples.empty()) {
    std::vector<std::pair<double, double>> pts;  // (log intensity, rate)
    for (const GemmSample* g : samples) pts.push_back({std::log(intensity(g->m, g->n, g->k, d)), g->flops_per_s});
    const IntensityCurve curve(pts);
    // Each sample's distance in log shape and its measured / curve ratio; the four nearest vote.
    struct Near {
      double d2, ratio, rate;
      bool operator<(const Near& o) const { return d2 < o.d2; }
    };
    std::vector<Near> near;
    for (size_t i = 0; i < samples.size(); i++) {
      const GemmSample& g = *samples[i];
      const double dm = std::log(double(m) / g.m), dn = std::log(double(n) / g.n), dk = std::log(double(k) / g.k);
      near.push_back({dm * dm + dn * dn + dk * dk, g.flops_per_s / curve.at(pts[i].first), g.flops_per_s});
    }
    std::stable_sort(near.begin(), near.end());
    if (near.front().d2 < 1e-18) return near.front().rate;  // a measured shape: its own rate
    near.resize(std::min<size_t>(near.size(), 4));
    double wsum = 0, rsum = 0;
    for (const Near& q : near) wsum += 1.0 / q.d2, rsum += q.ratio / q.d2;
    return curve.at(x) * rsum / wsum;
  }
  // Roofline, smoothed: rate = P I / (I + P / B), which reaches half of each bound at the ridge point.
  const double peak = peak_flops(hw, d) * hw.gemm_efficiency;
  const double bw = hw.memory_bandwidth * hw.memory_efficiency;
  const double I = std::exp(x);
  return peak * I / (I + peak / bw);
}

AttentionRates attention_rates(const Hardware& hw, ComputeDType d, double seq, bool causal) {
  std::vector<const AttentionSample*> kind;
  for (const AttentionSample& a : hw.attention_table)
    if (a.causal == causal) kind.push_back(&a);
  if (kind.empty())
    for (const AttentionSample& a : hw.attention_table) kind.push_back(&a);
  AttentionRates r;
  if (kind.empty()) {
    r.forward = peak_flops(hw, d) * hw.attention_efficiency;
    r.backward = r.forward / hw.attention_backward_ratio;
    return r;
  }
  std::stable_sort(kind.begin(), kind.end(), [](const AttentionSample* a, const AttentionSample* b) { return a->seq < b->seq; });
  const double x = std::log(std::max(1.0, seq));
  auto at = [&](double AttentionSample::*field) {
    if (x <= std::log(double(kind.front()->seq))) return kind.front()->*field;
    if (x >= std::log(double(kind.back()->seq))) return kind.back()->*field;
    for (size_t i = 1; i < kind.size(); i++) {
      const double x1 = std::log(double(kind[i]->seq));
      if (x <= x1) {
        const double x0 = std::log(double(kind[i - 1]->seq));
        const double f = x1 > x0 ? (x - x0) / (x1 - x0) : 1.0;
        return kind[i - 1]->*field + f * (kind[i]->*field - kind[i - 1]->*field);
      }
    }
    return kind.back()->*field;
  };
  r.forward = at(&AttentionSample::forward_flops_per_s), r.backward = at(&AttentionSample::backward_flops_per_s);
  return r;
}

std::vector<std::string> builtin_hardware_names() {
  std::vector<std::string> names;
  for (const auto& h : builtins()) names.push_back(h.name);
  return names;
}

Hardware parse_hardware_json(const std::string& text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    fail(where + ": malformed JSON");
  }
  require(j.is_object(), where + ": not a JSON object");
  Hardware h;
  auto num = [&](const char* key, double* dst, bool positive) {
    require(j.contains(key), where + ": missing field '" + key + "'");
    require(j[key].is_number(), where + ": field '" + std::string(key) + "' must be a number");
    *dst = j[key].get<double>();
    require(positive ? *dst > 0 : *dst >= 0,
            where + ": field '" + std::string(key) + "' must be " + (positive ? "positive" : "non-negative"));
  };
  require(j.contains("name") && j["name"].is_string(), where + ": missing field 'name'");
  h.name = j["name"].get<std::string>();
  num("peak_fp32_flops", &h.peak_fp32, true);
  num("peak_tf32_flops", &h.peak_tf32, false);
  num("peak_fp16_flops", &h.peak_fp16, false);
  num("peak_bf16_flops", &h.peak_bf16, false);
  num("memory_bytes", &h.memory_bytes, true);
  num("memory_bandwidth", &h.memory_bandwidth, true);
  num("intra_node_bandwidth", &h.intra_node_bandwidth, true);
  num("intra_node_latency", &h.intra_node_latency, false);
  num("inter_node_bandwidth", &h.inter_node_bandwidth, true);
  num("inter_node_latency", &h.inter_node_latency, false);
  num("host_bandwidth", &h.host_bandwidth, true);
  double per_node = 0;
  num("gpus_per_node", &per_node, true);
  require(per_node == std::floor(per_node), where + ": field 'gpus_per_node' must be an integer");
  h.gpus_per_node = int(per_node);
  require(j.contains("intra_node_link") && j["intra_node_link"].is_string(), where + ": missing field 'intra_node_link'");
  h.intra_node_link = j["intra_node_link"].get<std::string>();
  // Optional, with the defaults of the struct.
  auto opt = [&](const char* key, double* dst) {
    if (!j.contains(key)) return;
    require(j[key].is_number() && j[key].get<double>() > 0, where + ": field '" + std::string(key) + "' must be a positive number");
    *dst = j[key].get<double>();
  };
  opt("gemm_efficiency", &h.gemm_efficiency);
  opt("memory_efficiency", &h.memory_efficiency);
  opt("attention_efficiency", &h.attention_efficiency);
  opt("attention_backward_ratio", &h.attention_backward_ratio);
  opt("link_efficiency", &h.link_efficiency);
  opt("all_gather_factor", &h.all_gather_factor);
  opt("reduce_scatter_factor", &h.reduce_scatter_factor);
  opt("host_memory_bandwidth", &h.host_memory_bandwidth);
  if (j.contains("fused_attention")) {
    require(j["fused_attention"].is_boolean(), where + ": field 'fused_attention' must be true or false");
    h.fused_attention = j["fused_attention"].get<bool>();
  }
  if (j.contains("gemm")) {
    require(j["gemm"].is_array(), where + ": field 'gemm' must be an array");
    for (size_t i = 0; i < j["gemm"].size(); i++) {
      const auto& g = j["gemm"][i];
      const std::string at = where + ": gemm[" + std::to_string(i) + "]";
      for (const char* key : {"m", "n", "k", "dtype", "flops_per_s"})
        require(g.is_object() && g.contains(key), at + ": missing field '" + key + "'");
      GemmSample s;
      require(g["m"].is_number_integer() && g["n"].is_number_integer() && g["k"].is_number_integer(),
              at + ": m, n, k must be integers");
      s.m = g["m"].get<int64_t>(), s.n = g["n"].get<int64_t>(), s.k = g["k"].get<int64_t>();
      require(s.m > 0 && s.n > 0 && s.k > 0, at + ": m, n, k must be positive");
      require(g["dtype"].is_string(), at + ": dtype must be a string");
      s.dtype = parse_dtype(g["dtype"].get<std::string>(), at);
      require(g["flops_per_s"].is_number() && g["flops_per_s"].get<double>() > 0, at + ": flops_per_s must be positive");
      s.flops_per_s = g["flops_per_s"].get<double>();
      if (g.contains("op")) {  // files written before the three forms were measured have none: "nt"
        require(g["op"].is_string(), at + ": op must be a string");
        const std::string op = g["op"].get<std::string>();
        bool known = false;
        for (GemmOp o : {GemmOp::kNT, GemmOp::kNN, GemmOp::kTN})
          if (op == gemm_op_name(o)) s.op = o, known = true;
        require(known, at + ": op '" + op + "' is not one of nt, nn, tn");
      }
      h.gemm_table.push_back(s);
    }
  }
  if (j.contains("attention")) {  // files written before attention was measured by length have none
    require(j["attention"].is_array(), where + ": field 'attention' must be an array");
    for (size_t i = 0; i < j["attention"].size(); i++) {
      const auto& a = j["attention"][i];
      const std::string at = where + ": attention[" + std::to_string(i) + "]";
      for (const char* key : {"seq", "causal", "forward_flops_per_s", "backward_flops_per_s"})
        require(a.is_object() && a.contains(key), at + ": missing field '" + key + "'");
      require(a["seq"].is_number_integer() && a["seq"].get<int64_t>() > 0, at + ": seq must be a positive integer");
      require(a["causal"].is_boolean(), at + ": causal must be true or false");
      for (const char* key : {"forward_flops_per_s", "backward_flops_per_s"})
        require(a[key].is_number() && a[key].get<double>() > 0, at + ": " + key + " must be positive");
      h.attention_table.push_back({a["seq"].get<int64_t>(), a["causal"].get<bool>(), a["forward_flops_per_s"].get<double>(),
                                   a["backward_flops_per_s"].get<double>()});
    }
  }
  return h;
}

Hardware find_hardware(const std::string& name) {
  const bool is_file = name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0;
  if (is_file) {
    std::ifstream f(name);
    require(bool(f), "cannot open --hardware " + name);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_hardware_json(ss.str(), name);
  }
  for (const auto& h : builtins())
    if (h.name == name) return h;
  std::string known;
  for (const auto& n : builtin_hardware_names()) known += (known.empty() ? "" : ", ") + n;
  fail("unknown hardware '" + name + "' (--hardware takes one of: " + known + ", or a FILE.json)");
}

std::string hardware_to_json(const Hardware& h) {
  nlohmann::ordered_json j;
  j["name"] = h.name;
  j["peak_fp32_flops"] = h.peak_fp32;
  j["peak_tf32_flops"] = h.peak_tf32;
  j["peak_fp16_flops"] = h.peak_fp16;
  j["peak_bf16_flops"] = h.peak_bf16;
  j["memory_bytes"] = h.memory_bytes;
  j["memory_bandwidth"] = h.memory_bandwidth;
  j["gemm_efficiency"] = h.gemm_efficiency;
  j["memory_efficiency"] = h.memory_efficiency;
  j["attention_efficiency"] = h.attention_efficiency;
  j["fused_attention"] = h.fused_attention;
  j["attention_backward_ratio"] = h.attention_backward_ratio;
  j["link_efficiency"] = h.link_efficiency;
  j["all_gather_factor"] = h.all_gather_factor;
  j["reduce_scatter_factor"] = h.reduce_scatter_factor;
  j["host_memory_bandwidth"] = h.host_memory_bandwidth;
  j["intra_node_link"] = h.intra_node_link;
  j["intra_node_bandwidth"] = h.intra_node_bandwidth;
  j["intra_node_latency"] = h.intra_node_latency;
  j["gpus_per_node"] = h.gpus_per_node;
  j["inter_node_bandwidth"] = h.inter_node_bandwidth;
  j["inter_node_latency"] = h.inter_node_latency;
  j["host_bandwidth"] = h.host_bandwidth;
  j["gemm"] = nlohmann::ordered_json::array();
  for (const auto& g : h.gemm_table)
    j["gemm"].push_back({{"m", g.m}, {"n", g.n}, {"k", g.k}, {"dtype", dtype_name(g.dtype)}, {"op", gemm_op_name(g.op)},
                         {"flops_per_s", g.flops_per_s}});
  if (!h.attention_table.empty()) {
    j["attention"] = nlohmann::ordered_json::array();
    for (const auto& a : h.attention_table)
      j["attention"].push_back({{"seq", a.seq}, {"causal", a.causal}, {"forward_flops_per_s", a.forward_flops_per_s},
                                {"backward_flops_per_s", a.backward_flops_per_s}});
  }
  return j.dump(2) + "\n";
}

}  // namespace loom
