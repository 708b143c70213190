#pragma once
// What `loom plan` knows about a device and its cluster: peak arithmetic rates per dtype, memory size and
// bandwidth, the links inside a node and between nodes, and (from `loom bench --calibrate`) measured GEMM
// rates by shape. Built-in entries come from vendor datasheets (hardware.cpp cites each); any other
// machine is a JSON file with the same fields (`--hardware FILE.json`, written by `loom bench --calibrate`).
#include <cstdint>
#include <string>
#include <vector>

namespace loom {

enum class ComputeDType { kFp32, kTf32, kFp16, kBf16 };

// How a linear layer's three GEMMs read their operands (row-major, as kernels/cpu/gemm.h takes them):
// the forward Y[N,out] = X W^T (kNT), the input gradient dX[N,in] = dY W (kNN), the weight gradient
// dW[out,in] += dY^T X (kTN). The same shape runs at different rates in the three forms.
enum class GemmOp { kNT, kNN, kTN };

// One measured GEMM: C[M,N] = op(A)[M,K] op(B)[K,N] at `flops_per_s` (2MNK / seconds).
struct GemmSample {
  int64_t m = 0, n = 0, k = 0;
  ComputeDType dtype = ComputeDType::kFp32;
  double flops_per_s = 0;
  GemmOp op = GemmOp::kNT;
};

// Measured fused attention (flash kernel) at `seq` queries and keys per head: useful FLOP/s forward and
// backward (causal counts half the products, as the kernel skips them).
struct AttentionSample {
  int64_t seq = 0;
  bool causal = true;
  double forward_flops_per_s = 0, backward_flops_per_s = 0;
};

struct Hardware {
  std::string name;
  // Dense peak rates (FLOP/s); 0 where the device has no such unit (V100: no bf16).
  double peak_fp32 = 0, peak_tf32 = 0, peak_fp16 = 0, peak_bf16 = 0;
  double memory_bytes = 0;
  double memory_bandwidth = 0;  // bytes/s, device memory
  // Fraction of the peak rate the device's GEMM library reaches on large square GEMMs; used with the
  // roofline curve below when no measured GEMM table is given.
  double gemm_efficiency = 0.8;
  // Fraction of the memory bandwidth memory-bound kernels reach, and of the peak rate fused attention
  // reaches (flash attention on Ampere and later; the unfused softmax is then bytes, not flops).
  double memory_efficiency = 0.8, attention_efficiency = 0.5;
  bool fused_attention = true;  // false: attention scores are materialised (s x s per head)
  double attention_backward_ratio = 2.5;  // fused attention: backward time / forward time
  // Fraction of the link bandwidths below that collectives reach (NCCL's bus bandwidth vs the nominal
  // figure); 1 for measured links.
  double link_efficiency = 1.0;
  // All-gather and reduce-scatter bandwidth as fractions of the all-reduce's (Link; measured by
  // `loom bench --calibrate`, 1 for the datasheet entries, whose collectives are NCCL's rings).
  double all_gather_factor = 1.0, reduce_scatter_factor = 1.0;
  double host_memory_bandwidth = 40e9;  // host DRAM, for the offloaded optimizer step (bytes/s)
  // Links: per-GPU bandwidth (bytes/s, one direction) and per-message latency (s) as a ring sees them.
  std::string intra_node_link;  // "NVLink", "PCIe", "MPI shared memory", ...
  double intra_node_bandwidth = 0, intra_node_latency = 0;
  int gpus_per_node = 1;
  double inter_node_bandwidth = 0, inter_node_latency = 0;
  double host_bandwidth = 0;  // device <-> host (offloaded optimizer states), bytes/s one direction
  std::vector<GemmSample> gemm_table;  // measured (calibration); empty for the datasheet entries
  std::vector<AttentionSample> attention_table;  // measured (calibration); empty: attention_efficiency
};

double peak_flops(const Hardware& hw, ComputeDType dtype);  // throws UserError when the device lacks it
const char* dtype_name(ComputeDType dtype);                  // "fp32", "tf32", "fp16", "bf16"

// Predicted rate (FLOP/s) of one GEMM. With a measured table (the samples of that dtype and form, or of
// that dtype in any form when the table has none in this form): the rate interpolated in log arithmetic
// intensity, times the measured / interpolated ratio of the samples nearest in shape (log m, log n,
// log k; inverse-distance weighted over the four nearest), so a measured shape gets its own rate and a
// shape near it inherits its deviation from the intensity curve (a vocabulary-wide output layer runs
// slower than a cache-sized GEMM of the same intensity). Without a table: the roofline
// min(peak, intensity x bandwidth), smoothed and scaled by gemm_efficiency.
double gemm_rate(const Hardware& hw, int64_t m, int64_t n, int64_t k, ComputeDType dtype, GemmOp op = GemmOp::kNT);
const char* gemm_op_name(GemmOp op);

// Fused attention's rates (FLOP/s, forward and backward) for `seq` tokens per head (queries x keys: their
// geometric mean): interpolated in log seq over the measured samples of that kind (causal or not; of
// either kind when none), flat beyond them; without a table the peak times attention_efficiency forward
// and that over attention_backward_ratio backward. Short sequences run the kernel far below its rate at
// 512 tokens (here a causal 77-token head at 58% forward, 49% backward).
struct AttentionRates {
  double forward = 0, backward = 0;
};
AttentionRates attention_rates(const Hardware& hw, ComputeDType dtype, double seq, bool causal);  // "nt", "nn", "tn": the field `op` of the JSON file's gemm samples
// Bytes a GEMM moves at least (A, B read, C written) for `element_bytes`-byte operands.
double gemm_min_bytes(int64_t m, int64_t n, int64_t k, int element_bytes);

// A machine `loom bench --calibrate` measured (its GEMM table): Loom's own kernels ran the samples, so
// its predictions are this engine's (Loom's fused output layer, Loom's activations); a datasheet device
// stands for a Megatron-style GPU engine (its unfused cross-entropy, Korthikanti's activations).
inline bool is_calibrated(const Hardware& hw) { return !hw.gemm_table.empty(); }

// Built-in table (names as --hardware takes them).
std::vector<std::string> builtin_hardware_names();
// A built-in name or a path to a JSON file (anything ending in .json); throws UserError on an unknown
// name, an unreadable file, malformed JSON or a missing/invalid field (the message names the field).
Hardware find_hardware(const std::string& name_or_path);
Hardware parse_hardware_json(const std::string& text, const std::string& where);
std::string hardware_to_json(const Hardware& hw);

}  // namespace loom
