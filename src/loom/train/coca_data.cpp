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
  LoaderSource(const CocaArgs& a, const std::string& index_path, const CocaDataOptions& o, int rank, int world) {
    const bool training = o.training;
    data::ImageTextIndexConfig ic = a.data.index_config({index_path});
    ic.label_key = o.label_key;
    ic.label_names = o.label_names;
    index_ = data::ImageTextIndex::load(ic);
    tokenizer_ = make_coca_tokenizer(a);
    cfg_.global_batch = int64_t(a.batch_size) * world;
    cfg_.rank = rank;
    cfg_.world = world;
    cfg_.workers = a.data.workers;
    cfg_.seed = uint64_t(a.seed);
    cfg_.context = a.shape.text.context_length;
    cfg_.train = training;
    cfg_.drop_last = o.drop_last;
    cfg_.transform.size = a.shape.vision.image_size;
    // Called by the loader's worker threads: queued under a lock, printed by the training thread.
    cfg_.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> g(skip_mu_);
      skip_lines_.push_back(line);
    };
    if (!training) cfg_.global_batch = std::min<int64_t>(cfg_.global_batch, int64_t(index_.size()));
    loader_ = std::make_unique<data::ImageTextLoader>(index_, *tokenizer_, cfg_);
    if (index_.has_labels()) labels_.resize(size_t(loader_->local_batch()));
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
    b.entries = batch.entries;
    b.size = int(batch.size);
    b.labels = nullptr;
    if (index_.has_labels()) {
      for (int64_t j = 0; j < batch.size; j++) labels_[size_t(j)] = index_.label(size_t(batch.entries[j]));
      b.labels = labels_.data();
    }
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
  std::vector<int32_t> labels_;  // the current batch's labels
  std::mutex skip_mu_;
  std::vector<std::string> skip_lines_;
};

}  // namespace

std::unique_ptr<data::Tokenizer> make_coca_tokenizer(const CocaArgs& a) {
  data::TokenizerConfig tc;
  tc.type = a.tokenizer_type;
  tc.tokenizer_model = a.tokenizer_model;
  tc.vocab_file = a.vocab_file;
  tc.merge_file = a.merge_file;
  std::unique_ptr<data::Tokenizer> t = data::make_tokenizer(tc);
  if (t->vocab_size() > a.shape.text.vocab_size)
    fail("the " + t->type() + " tokenizer has " + std::to_string(t->vocab_size()) + " ids, more than --text-vocab-size " +
         std::to_string(a.shape.text.vocab_size));
  return t;
}

std::unique_ptr<CocaDataSource> make_coca_data(const CocaArgs& a, const std::string& index, const CocaDataOptions& o,
                                               int rank, int world) {
  return std::make_unique<LoaderSource>(a, index, o, rank, world);
}

}  // namespace loom
