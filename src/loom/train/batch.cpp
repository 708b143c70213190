#include "loom/train/batch.h"

namespace loom {

BatchBuffer::BatchBuffer(int batch, int seq)
    : batch_(batch),
      seq_(seq),
      samples_(size_t(batch) * (seq + 1)),
      tokens_(size_t(batch) * seq),
      labels_(size_t(batch) * seq),
      positions_(size_t(batch) * seq),
      loss_mask_(size_t(batch) * seq) {
  mb_.batch = batch;
  mb_.seq = seq;
  mb_.tokens = tokens_.data();
  mb_.labels = labels_.data();
  mb_.positions = positions_.data();
  mb_.loss_mask = loss_mask_.data();
}

const MicroBatch& BatchBuffer::load(const SampleSet& set, int64_t first, const BatchOptions& opt) {
  for (int b = 0; b < batch_; b++) set.get((first + b) % set.size, samples_.data() + size_t(b) * (seq_ + 1));
  return build(opt);
}

const MicroBatch& BatchBuffer::build(const BatchOptions& opt) {
  for (int b = 0; b < batch_; b++) {
    const int32_t* s = samples_.data() + size_t(b) * (seq_ + 1);
    int32_t* tok = tokens_.data() + size_t(b) * seq_;
    int32_t* lab = labels_.data() + size_t(b) * seq_;
    int32_t* pos = positions_.data() + size_t(b) * seq_;
    float* mask = loss_mask_.data() + size_t(b) * seq_;
    int32_t position = 0;
    for (int t = 0; t < seq_; t++) {
      tok[t] = s[t];
      lab[t] = s[t + 1];
      mask[t] = (opt.eod_mask_loss && s[t] == opt.eod) ? 0.f : 1.f;
      pos[t] = position++;
      // Megatron resets the position of the token *after* an end-of-document.
      if (opt.reset_position_ids && s[t] == opt.eod) position = 0;
    }
  }
  return mb_;
}

}  // namespace loom
