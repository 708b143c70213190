#pragma once
// Predicted time of one training iteration of a decoder (GPT, Llama) for a layout on a device
// (hardware.h), and the memory each rank needs. Every term comes from the shapes: each GEMM's
// (M, N, K) at the device's shape-dependent rate, attention at the fused-attention rate (or, unfused,
// as batched GEMMs plus the s x s softmax traffic), memory-bound kernels from the bytes they move, the
// tensor-parallel collectives (all-reduce, or all-gather + reduce-scatter with sequence parallelism),
// pipeline send/recv and the schedule's bubble, data-parallel gradient reduction (overlapped with the
// last micro-batch's backward when asked), ZeRO's gathers and reduce-scatters, recompute, the optimizer
// step and offload traffic.
#include <cstdint>
#include <string>
#include <vector>

#include "loom/models/decoder_counts.h"
#include "loom/parallel/pipeline_schedule.h"
#include "loom/plan/collective_model.h"
#include "loom/plan/hardware.h"
#include "loom/plan/memory_report.h"

namespace loom {

struct PlanLayout {
  int tp = 1, pp = 1, vpp = 1, dp = 1;
  int micro_batch = 1;
  int64_t global_batch = 1;
  bool sequence_parallel = false;
  RecomputeGranularity recompute = RecomputeGranularity::kNone;
  int zero_stage = 0;
  PipelineSchedule schedule = PipelineSchedule::OneFOneB;
  ComputeDType dtype = ComputeDType::kFp32;  // GEMM arithmetic (fp16/bf16 with --fp16/--bf16)
  int activation_bytes = 4;                  // stored activations and exchanged tensors (2 with half)
  int grad_reduce_bytes = 4;                 // gradient element (stored and reduced over data parallelism)
  bool overlap_grad_reduce = false;
  bool offload_optimizer = false;            // optimizer states and step on the host
  int vocab_divisible_by = 128;              // --make-vocab-size-divisible-by (the vocabulary pads to it x TP)
  int num_micro_batches() const { return int(global_batch / (int64_t(micro_batch) * dp)); }
  int world() const { return tp * pp * dp; }
};

// One row of the table of where the time goes (seconds per iteration on the slowest pipeline rank).
struct TimeRow {
  std::string name;
  double seconds = 0;
};

struct StepPrediction {
  std::vector<TimeRow> rows;  // sum to step_seconds
  double step_seconds = 0;
  double model_flops = 0;     // Megatron's count for the global batch
  double tflops_per_gpu = 0, tokens_per_s_per_gpu = 0;
  // Per micro-batch on the slowest stage (for comparing with Loom's forward/backward timers).
  double forward_seconds = 0, backward_seconds = 0, optimizer_seconds = 0;
  // Forward of one micro-batch through one transformer layer, the embedding and the output layer (with
  // its cross-entropy), compute only (as --profile-layers and reference log 003 time them).
  double layer_forward_seconds = 0, embedding_forward_seconds = 0, head_forward_seconds = 0;
  // Memory of the most loaded rank (bytes).
  double model_state_bytes = 0, activation_bytes = 0, working_bytes = 0;
  double peak_bytes() const { return model_state_bytes + activation_bytes + working_bytes; }
};

// Throws UserError when the layout does not divide the model (checked by check_layout).
StepPrediction predict_step(const ModelConfig& c, const PlanLayout& l, const Hardware& hw);
// Empty when the layout can run the model; otherwise why not.
std::string layout_problem(const ModelConfig& c, const PlanLayout& l);

// Per-parameter bytes of the model states under `zero_stage` sharded over dp ranks (ZeRO's accounting):
// half precision: 2 weight + `grad_bytes` gradient + 12 fp32 master and Adam moments (Megatron's 18 with
// fp32 gradients; Loom's --fp16 keeps fp16 gradients, 16); fp32: 4 + 4 + 8. ZeRO-1 shards the 12 (or 8),
// ZeRO-2 also the gradients, ZeRO-3 everything; offload moves the optimizer part to the host.
double model_state_bytes_per_param(bool half, int grad_bytes, int zero_stage, int dp, bool offload);

// The tensor-parallel communication of one layer's forward for one micro-batch: bytes of the tensors
// reduced or gathered (two all-reduces of s b h without sequence parallelism; two all-gathers and two
// reduce-scatters of s b h with it).
struct TpLayerComm {
  int all_reduces = 0, all_gathers = 0, reduce_scatters = 0;
  double tensor_bytes = 0;
};
TpLayerComm tp_layer_comm(const ModelConfig& c, const PlanLayout& l);

// Bytes the cross-entropy over `logits` fp32 logits moves (their GEMMs aside), forward and backward, with
// `e`-byte activations. Megatron's (vocab_parallel_cross_entropy on logits.float()) on a datasheet device:
// the fp32 copy (read e, write 4 bytes a logit), max (read), subtract (read, write), exp (read, write), sum
// (read) and the softmax divide (read, write) forward; the backward's multiply (read, write) and the copy's
// backward (read 4, write e). Loom's fused output layer on a calibrated machine: one read and write of each
// logit forward, its gradient formed in the same pass, nothing more backward; a vocabulary shard reduces
// the rows' maxima and sums over its group between three passes (read; read and write; read and write).
struct CrossEntropyTraffic {
  double forward = 0, backward = 0;
};
CrossEntropyTraffic cross_entropy_traffic(const Hardware& hw, double logits, double e, bool vocab_shard);
// The link between ranks inside a node (intra_node) or across nodes, as the collectives of a layout see it:
// the device's bandwidth times its link efficiency, its latency, and its all-gather and reduce-scatter
// factors.
Link device_link(const Hardware& hw, bool intra_node);
// The `loom train` flags of a layout (the model's flags are the caller's).
std::string layout_flags(const PlanLayout& l, int num_layers);

}  // namespace loom
