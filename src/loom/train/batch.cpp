#include "loom/train/batch.h"

namespace loom {

BatchBuffer::BatchBuffer(int batch, int seq)
    : batch_(batch),
      seq_(seq),
      samples_(size_t(batch) * (seq + 1)),
      tokens_(size_t(batch) * seq),
      labels_(size_t(batch) * seq),
      positions_(size_t(batch) * seq),
      key_start_(size_t(batch) * seq),
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
  data::make_lm_batch(samples_.data(), batch_, seq_, opt, tokens_.data(), labels_.data(), loss_mask_.data(),
                      positions_.data(), key_start_.data());
  mb_.key_start = opt.reset_attention_mask ? key_start_.data() : nullptr;
  return mb_;
}

}  // namespace loom
