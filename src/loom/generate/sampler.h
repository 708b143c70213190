#pragma once
// Autoregressive sampling from a GPT: temperature, top-k and top-p (nucleus) filtering, as in
// Megatron's text generation (top-k and top-p together: top-k first, then top-p).
#include <cstdint>
#include <functional>
#include <vector>

#include "loom/core/rng.h"
#include "loom/models/decoder_model.h"

namespace loom {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy
  int top_k = 0;             // 0: off
  double top_p = 0.0;        // 0: off
  int max_new_tokens = 100;
  uint64_t seed = 1234;
  int32_t stop_token = -1;   // end generation when sampled (e.g. end of document); -1: never
};

// Picks the next token from logits over the first `vocab` entries (padded entries are never chosen).
int32_t sample_token(const float* logits, int vocab, const SamplingOptions& opt, Rng& rng, std::vector<float>& scratch);

// Extends `tokens` by up to max_new_tokens; the model sees at most its seq_length last tokens.
// `on_token` (may be empty) is called with each new token as it is produced.
void generate(DecoderModel& model, std::vector<int32_t>& tokens, const SamplingOptions& opt,
              const std::function<void(int32_t)>& on_token);

}  // namespace loom
