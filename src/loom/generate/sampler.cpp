#include "loom/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "loom/core/error.h"

namespace loom {

int32_t sample_token(const float* logits, int vocab, const SamplingOptions& opt, Rng& rng, std::vector<float>& p) {
  if (opt.temperature <= 0) return int32_t(std::max_element(logits, logits + vocab) - logits);
  // Candidates sorted by logit, cut to top-k.
  std::vector<int32_t> idx(static_cast<size_t>(vocab));
  std::iota(idx.begin(), idx.end(), 0);
  int k = opt.top_k > 0 ? std::min(opt.top_k, vocab) : vocab;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  idx.resize(size_t(k));
  // Softmax at the temperature over the candidates.
  p.resize(size_t(k));
  const double mx = logits[idx[0]];
  double sum = 0;
  for (int i = 0; i < k; i++) sum += p[i] = float(std::exp((logits[idx[i]] - mx) / opt.temperature));
  for (auto& x : p) x = float(x / sum);
  // Nucleus: keep the smallest prefix whose mass reaches top_p (always at least one token).
  if (opt.top_p > 0 && opt.top_p < 1) {
    double mass = 0;
    int keep = 0;
    while (keep < k) {
      mass += p[keep++];
      if (mass >= opt.top_p) break;
    }
    p.resize(size_t(keep));
    idx.resize(size_t(keep));
    sum = mass;
  } else {
    sum = 1.0;
  }
  double u = double(rng.uniform()) * sum, acc = 0;
  for (size_t i = 0; i < p.size(); i++) {
    acc += p[i];
    if (u < acc) return idx[i];
  }
  return idx.back();
}

void generate(DecoderModel& model, std::vector<int32_t>& tokens, const SamplingOptions& opt,
              const std::function<void(int32_t)>& on_token) {
  const ModelConfig& c = model.config();
  require(!tokens.empty(), "generation needs at least one prompt token");
  Rng rng(stream_key(opt.seed, 0x6E4));
  std::vector<int32_t> window, positions;
  std::vector<float> logits(size_t(c.padded_vocab_size)), scratch;
  for (int n = 0; n < opt.max_new_tokens; n++) {
    const size_t len = std::min(tokens.size(), size_t(c.seq_length));
    window.assign(tokens.end() - long(len), tokens.end());
    positions.resize(len);
    std::iota(positions.begin(), positions.end(), 0);
    MicroBatch mb;
    mb.batch = 1;
    mb.seq = int(len);
    mb.tokens = window.data();
    mb.positions = positions.data();
    StepContext ctx;
    ctx.mb = &mb;
    ctx.training = false;
    model.forward(ctx);
    model.logits({int(len) - 1}, logits.data());
    const int32_t next = sample_token(logits.data(), c.vocab_size, opt, rng, scratch);
    tokens.push_back(next);
    if (on_token) on_token(next);
    if (next == opt.stop_token) break;
  }
}

}  // namespace loom
