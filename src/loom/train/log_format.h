#pragma once
// Megatron's log lines, formatted exactly (see ../shared/DESIGN.md and the reference logs).
#include <cstdint>
#include <string>

namespace loom {

struct IterationLog {
  int64_t iteration = 0, train_iters = 0, consumed_samples = 0;
  int64_t skipped_samples = 0;  // shown after the consumed samples when above 0, as Megatron
  double elapsed_ms = 0;     // per iteration, averaged over the interval
  double tflops = 0;         // model TFLOP/s per process
  double tokens_per_s = 0;   // per process
  double learning_rate = 0;
  int64_t global_batch_size = 0;
  double lm_loss = 0;
  bool has_loss = true;
  double loss_scale = 1.0;
  double grad_norm = 0;
  bool has_grad_norm = true;
  double num_zeros = -1, params_norm = -1;  // printed when >= 0 (--log-num-zeros-in-grad, --log-params-norm)
  int skipped = 0, nan_iterations = 0;
  std::string timestamp;     // "YYYY-MM-DD HH:MM:SS"
};

std::string format_iteration_line(const IterationLog& l);
// " > number of parameters on (tensor, pipeline) model parallel rank (t, p): N"
std::string format_param_count_line(int tp_rank, int pp_rank, int64_t count);
// The dashed validation (or test) block: three lines.
std::string format_validation_block(const std::string& prefix, double lm_loss);
// "[Rank 0] (after N iterations) memory (MB) | allocated: ... | max allocated: ... | reserved: ... | max reserved: ..."
std::string format_memory_line(int rank, int64_t iteration, double allocated_mb, double max_allocated_mb,
                               double reserved_mb, double max_reserved_mb);
// Loom's own: what the model states (ZeRO's accounting) occupy on this rank, measured from the buffers;
// working buffers: the fp32 copies layers compute on and, with --bf16, the bf16 GEMM operands.
// "[Rank 0] model states (MB) | weights: ... | gradients: ... | optimizer: ... | total: ... | working buffers: ..."
std::string format_model_states_line(int rank, double weights_mb, double grads_mb, double optimizer_mb,
                                     double working_mb);
// Loom's own: the activation memory of this rank's model chunks (saved tensors of the micro-batches in
// flight, residual stream, layer scratch), measured from the buffers.
// "[Rank 0] activations (MB) | micro-batches in flight: 1 | total: ..."
std::string format_activations_line(int rank, int in_flight, double total_mb);
std::string now_timestamp();

}  // namespace loom
