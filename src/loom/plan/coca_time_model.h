#pragma once
// Predicted time of one training step of a CoCa image-text model (models/coca: EVA-02 vision tower,
// attentional poolers, CLIP text tower, multimodal caption decoder) under data parallelism, as EVA-CLIP
// runs it on DeepSpeed (reference log 000): every linear layer's three GEMMs at the device's rate for
// that shape and form, attention (self, causal and not, and the decoder's cross-attention over the
// image tokens) at the fused rate or as materialised scores, norms / activations / RoPE / residuals and
// the caption cross-entropy from the bytes they move, gradient checkpointing (every block's forward
// again), the contrastive loss over the gathered features, the gradient reduction and ZeRO-1's
// all-gather of the updated weights, and the optimizer step (AdamW or LAMB) from the bytes it moves.
// The rows are those of the decoder's time model (time_model.h), so `loom plan` prints both alike.
#include "loom/models/coca/coca_config.h"
#include "loom/plan/hardware.h"
#include "loom/plan/time_model.h"

namespace loom {

struct CocaLayout {
  int dp = 1;           // data-parallel ranks
  int batch = 64;       // samples per rank (EVA-CLIP's --batch-size)
  ComputeDType dtype = ComputeDType::kFp32;
  int activation_bytes = 4;  // 2 with fp16/bf16
  bool grad_checkpointing = false;
  int zero_stage = 0;   // 0: all-reduce of the gradients; 1-2: reduce-scatter, then all-gather the weights
  bool lamb = false;    // LAMB's trust ratio reads the weights and the update once more than AdamW
};

// One step; throws UserError on a shape the model cannot run (a batch or data-parallel size below 1).
// model_flops counts the global batch's forward and backward (3 x forward), recompute excluded, as
// Megatron counts; tokens_per_s_per_gpu is samples per second per GPU.
StepPrediction predict_coca_step(const CocaConfig& c, const CocaLayout& l, const Hardware& hw);

// Forward FLOPs of one sample (every GEMM and attention product; the element-wise work left out).
double coca_forward_flops_per_sample(const CocaConfig& c);

}  // namespace loom
