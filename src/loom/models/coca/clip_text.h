#pragma once
// CoCa's text tower: open_clip's TextTransformer as OpenAI CLIP builds it (no cls_emb, causal mask, no
// pad mask, argmax pooling):
//   x = token_embedding[ids] + positional_embedding          [B*ctx, W]
//   x = resblocks (causal ClipBlocks)
//   tokens = ln_final(x)                                     the decoder's input
//   latent = tokens[b, argmax(ids[b])] @ text_projection     [B, E] (EOT pooling: CLIP's EOT id is the
//                                                            largest; ties take the first, as torch.argmax)
// Registers exactly coca_parameter_specs' "text" tower, in its order. Storage units (ParamStore::acquire):
// embeddings (token + positional), one per block, head (ln_final + text_projection).
#include <cstdint>
#include <vector>

#include "loom/layers/norm.h"
#include "loom/layers/param_store.h"
#include "loom/models/coca/clip_block.h"
#include "loom/models/coca/coca_config.h"

namespace loom {

class ClipTextTower {
 public:
  // recompute: full activation recompute per block (keep each block's input, rerun its forward before
  // its backward); bitwise the same gradients.
  ClipTextTower(const CocaConfig& cfg, ParamStore& store, int max_batch, bool recompute = false);
  void init_params(uint64_t seed);  // after the store's finalize()

  // The parameter indices of each storage unit, and where the first lands in the store's unit list.
  std::vector<std::vector<int>> units() const;
  void set_first_unit(int u) { first_unit_ = u; }

  // ids [B, ctx], B <= max_batch; they must stay valid until backward(). Throws UserError for an id
  // outside the vocabulary (before any work).
  void forward(const int32_t* ids, int B);
  const float* latent() const { return latent_.f32(); }  // [B, E], before normalisation
  const float* tokens() const { return tokens_.f32(); }  // [B*ctx, W], after ln_final
  // d_latent [B, E]; d_tokens [B*ctx, W] or null. Parameter gradients accumulate.
  void backward(const float* d_latent, const float* d_tokens);

 private:
  int unit(int i) const { return first_unit_ + i; }

  ClipTextConfig cfg_;
  int embed_dim_;
  ParamStore& store_;
  int max_batch_;
  bool recompute_;
  int pos_ = -1, proj_ = -1, tok_ = -1;
  std::vector<ClipBlock> blocks_;
  Norm ln_final_;
  int ln_first_ = -1;
  int first_unit_ = 0;

  // The forward of the last call.
  int B_ = 0;
  const int32_t* ids_ = nullptr;
  std::vector<int> eot_;                     // [B] pooled position per sample
  Tensor positions_;                         // [max_batch*ctx] int32: t of each row
  std::vector<Tensor> hidden_;               // layers + 1 residual streams [N, W]
  std::vector<ClipBlock::Acts> acts_;        // per block, or one shared (recompute)
  ClipBlock::Scratch scratch_;
  Tensor recompute_out_;                     // the output of a rerun forward (discarded)
  Tensor tokens_, ln_mean_, ln_rstd_;        // ln_final
  Tensor pooled_, latent_, d_pooled_;        // [B, W], [B, E], [B, W]
  Tensor d_hidden_;                          // [N, W]
};

}  // namespace loom
