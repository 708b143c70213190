#pragma once
// CoCa's caption decoder: open_clip's MultimodalTransformer and CoCaLoss's caption term.
//   x = text tower tokens at positions 0..ctx-2 (teacher forcing; the decoder is causal, so this equals
//       open_clip's running all ctx positions and dropping the last logit)
//   per layer i: x = resblocks.i(x) (causal self-attention block), x = cross_attn.i(x, image tokens)
//   logits = ln_final(x) @ text_projection [W, vocab]
//   caption loss = cross-entropy against ids[:, 1:], mean over the targets that are not pad (id 0,
//                  nn.CrossEntropyLoss(ignore_index=pad_id))
// The logits are formed a chunk of rows at a time (the fused lm_head cross-entropy kernel), so the
// [B*(ctx-1), vocab] matrix never exists; the backward forms them again.
// Registers exactly coca_parameter_specs' "text_decoder" tower, in its order. Storage units: one per
// block (resblocks.0.., cross_attn.0..), head (ln_final + text_projection).
#include <cstdint>
#include <vector>

#include "loom/layers/norm.h"
#include "loom/layers/param_store.h"
#include "loom/models/coca/clip_block.h"
#include "loom/models/coca/coca_config.h"

namespace loom {

class MultimodalDecoder {
 public:
  // recompute: full activation recompute per block, as ClipTextTower.
  MultimodalDecoder(const CocaConfig& cfg, ParamStore& store, int max_batch, bool recompute = false);
  void init_params(uint64_t seed);  // after the store's finalize()

  std::vector<std::vector<int>> units() const;
  void set_first_unit(int u) { first_unit_ = u; }

  // text_tokens [B*ctx, W] (ClipTextTower::tokens()), ids [B, ctx], image_tokens [B*Q, E] (Q = pooler
  // queries). The three must stay valid until backward(). Returns the mean caption loss over the
  // non-pad targets (0 when there are none); *targets receives their count.
  // grad_scale != 0: the backward's scale, known in advance; the head's gradients are then formed in the
  // forward from the same logits (as LmHead does), so the backward does not form them again.
  double forward(const float* text_tokens, const int32_t* ids, const float* image_tokens, int B,
                 int64_t* targets = nullptr, float grad_scale = 0.f);
  // scale = d(total objective) / d(mean caption loss) (equal to a nonzero grad_scale of the forward).
  // Fills d_text_tokens and d_image_tokens; parameter gradients accumulate.
  void backward(float scale);
  const float* d_text_tokens() const { return d_text_.f32(); }    // [B*ctx, W], zero at position ctx-1
  const float* d_image_tokens() const { return d_image_.f32(); }  // [B*Q, E]

 private:
  int unit(int i) const { return first_unit_ + i; }
  int T() const { return ctx_ - 1; }
  // Loss per row and, with scale != 0, d_normed_ and the projection's gradient, one chunk at a time.
  void head(int N, float scale);

  CocaDecoderConfig cfg_;
  int ctx_, queries_, pad_id_;
  ParamStore& store_;
  int max_batch_;
  bool recompute_;
  int proj_ = -1, ln_first_ = -1;
  std::vector<ClipBlock> self_, cross_;
  Norm ln_final_;
  int first_unit_ = 0;

  int B_ = 0;
  const float* image_ = nullptr;
  int64_t count_ = 0;
  float fused_scale_ = 0.f;  // the forward's grad_scale (0: the head's gradients wait for the backward)
  std::vector<Tensor> hidden_;                 // 2 * layers + 1 residual streams [B*(ctx-1), W]
  std::vector<ClipBlock::Acts> self_acts_, cross_acts_;
  ClipBlock::Scratch self_scratch_, cross_scratch_;
  Tensor recompute_out_;
  Tensor normed_, ln_mean_, ln_rstd_, d_normed_;
  Tensor labels_;                              // [B*(ctx-1)] int32, -1 where the target is pad
  Tensor token_loss_, row_scale_, logits_;     // [rows], [rows], [chunk, vocab]
  int chunk_rows_ = 0;
  Tensor d_hidden_, d_text_, d_image_;
};

}  // namespace loom
