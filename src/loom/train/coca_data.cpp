// The CoCa run's data: the image-text index (data/image_text_index), the captions' tokenizer and the
// threaded loader (data/image_text_loader) behind CocaDataSource.
#include "loom/train/coca_data.h"

#include <memory>
#include <mutex>

#include "loom/core/error.h"
#include "loom/data/image_text_index.h"
#include "loom/data/image_text_loader.h"
#include "loom/data/tokenizer.h"
#include "loom/train/coca_args.h"

namespace loom {

namespace {

class LoaderSource final : public CocaDataSource {
 public:
  LoaderSource(const CocaArgs& a, const std::string& index_path, bool training, int rank, int world) {
    index_ = data::ImageTextIndex::load(a.data.index_config({index_path}));
    data::TokenizerConfig tc;
    tc.type = a.tokenizer_type;
    tc.tokenizer_model = a.tokenizer_model;
    tc.vocab_file = a.vocab_file;
    tc.merge_file = a.merge_file;
    tokenizer_ = data::make_tokenizer(tc);
    if (tokenizer_->vocab_size() > a.shape.text.vocab_size)
      fail("the " + tokenizer_->type() + " tokenizer has " + std::to_string(tokenizer_->vocab_size()) +
           " ids, more than --text-vocab-size " + std::to_string(a.shape.text.vocab_size));
    cfg_.global_batch = int64_t(a.batch_size) * world;
    cfg_.rank = rank;
    cfg_.world = world;
    cfg_.workers = a.data.workers;
    cfg_.seed = uint64_t(a.seed);
    cfg_.context = a.shape.text.context_length;
    cfg_.train = training;
    cfg_.transform.size = a.shape.vision.image_size;
    // Called by the loader's worker threads: queued under a lock, printed by the training thread.
    cfg_.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> g(skip_mu_);
      skip_lines_.push_back(line);
    };
    if (!training) cfg_.global_batch = std::min<int64_t>(cfg_.global_batch, int64_t(index_.size()));
    loader_ = std::make_unique<data::ImageTextLoader>(index_, *tokenizer_, cfg_);
  }
  int64_t num_samples() const override { return int64_t(index_.size()); }
  int64_t batches_per_epoch() const override { return loader_->nominal_steps_per_epoch(); }
  bool next(CocaBatch& b) override {
    data::ImageTextBatch batch;
    const bool ok = loader_->next(batch);
    flush_skip_lines();
    if (!ok) return false;
    b.images = batch.images;
    b.text = batch.text;
    b.size = int(batch.size);
    return true;
  }
  void end_epoch() override {
    data::ImageTextBatch batch;
    while (loader_->next(batch)) {
    }
    flush_skip_lines();
  }
  int64_t skipped() const override { return loader_->skipped(); }
  nlohmann::json state() const override {
    const data::LoaderPosition p = loader_->position();
    return {{"epoch", p.epoch}, {"consumed", p.consumed}, {"skipped", p.skipped}};
  }
  void restore(const nlohmann::json& s) override {
    data::LoaderPosition p;
    p.epoch = s.value("epoch", uint64_t(0));
    p.consumed = s.value("consumed", int64_t(0));
    p.skipped = s.value("skipped", int64_t(0));
    loader_ = std::make_unique<data::ImageTextLoader>(index_, *tokenizer_, cfg_, p);
  }

 private:
  // EVA-CLIP's json loader logs an unreadable image's path as an INFO line; this rank's, from the main
  // thread (the loader's workers only queue them).
  void flush_skip_lines() {
    std::vector<std::string> lines;
    {
      std::lock_guard<std::mutex> g(skip_mu_);
      if (skip_lines_.empty()) return;
      lines.swap(skip_lines_);
    }
    for (const std::string& l : lines) std::fprintf(stdout, "%s\n", l.c_str());
    std::fflush(stdout);
  }
  data::ImageTextIndex index_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  data::ImageTextLoaderConfig cfg_;
  std::unique_ptr<data::ImageTextLoader> loader_;
  std::mutex skip_mu_;
  std::vector<std::string> skip_lines_;
};

}  // namespace

std::unique_ptr<CocaDataSource> make_coca_data(const CocaArgs& a, const std::string& index, bool training, int rank,
                                               int world) {
  return std::make_unique<LoaderSource>(a, index, training, rank, world);
}

}  // namespace loom
