// The image-caption loader (see image_text_loader.h).
#include "loom/data/image_text_loader.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "loom/core/error.h"
#include "loom/data/clip_tokenizer.h"
#include "loom/data/image_codec.h"

namespace loom::data {
namespace {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<uint32_t> image_text_epoch_order(const ImageTextIndex& index, uint64_t seed, uint64_t epoch) {
  const size_t n = index.size();
  std::vector<std::pair<uint64_t, uint32_t>> keyed(n);
  const uint64_t salt = mix64(mix64(seed) ^ (epoch * 0xD1B54A32D192ED03ull));
  for (size_t i = 0; i < n; i++) keyed[i] = {mix64(index.key(i) ^ salt), uint32_t(i)};
  std::sort(keyed.begin(), keyed.end());  // ties (identical entries) keep index order
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; i++) order[i] = keyed[i].second;
  return order;
}

struct ImageTextLoader::Slot {
  std::vector<float> images;
  std::vector<int32_t> text;
  std::vector<uint64_t> entries;
  int64_t batch = 0;  // the batch of the epoch this buffer holds or will hold
  int64_t filled = 0;
};

ImageTextLoader::ImageTextLoader(const ImageTextIndex& index, const Tokenizer& tokenizer, ImageTextLoaderConfig config,
                                 LoaderPosition start)
    : index_(index), tok_(tokenizer), cfg_(std::move(config)), transform_(cfg_.transform) {
  require(cfg_.world >= 1 && cfg_.rank >= 0 && cfg_.rank < cfg_.world, "image loader: bad rank/world");
  require(cfg_.global_batch > 0 && cfg_.global_batch % cfg_.world == 0,
          "the global batch (" + std::to_string(cfg_.global_batch) + ") must be a positive multiple of the " +
              std::to_string(cfg_.world) + " data-parallel ranks");
  require(int64_t(index_.size()) >= cfg_.global_batch,
          "the image index has " + std::to_string(index_.size()) + " entries, fewer than one global batch of " +
              std::to_string(cfg_.global_batch));
  require(index_.size() < (size_t(1) << 32), "the image index has more than 2^32 entries");
  require(cfg_.workers >= 1, "--workers must be at least 1");
  require(cfg_.context >= 2, "the caption context must be at least 2");
  require(tok_.eod() >= 0, "tokenizer " + tok_.type() + " has no end-of-text token to end captions with");
  if (!cfg_.log) cfg_.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  local_ = cfg_.global_batch / cfg_.world;
  image_floats_ = size_t(3) * size_t(cfg_.transform.size) * size_t(cfg_.transform.size);
  const int prefetch = cfg_.prefetch > 0 ? cfg_.prefetch : cfg_.workers + 2;
  for (int i = 0; i < prefetch; i++) {
    auto s = std::make_unique<Slot>();
    s->images.assign(size_t(local_) * image_floats_, 0.0f);
    s->text.assign(size_t(local_) * size_t(cfg_.context), 0);
    s->entries.assign(size_t(local_), 0);
    ring_.push_back(std::move(s));
  }
  position_ = start;
  {
    std::unique_lock<std::mutex> lk(mu_);
    skipped_ = start.skipped;
    start_epoch(start.epoch, start.consumed);
  }
  tasks_.resize(size_t(cfg_.workers));
  for (int i = 0; i < cfg_.workers; i++) threads_.emplace_back([this, i] { worker_main(size_t(i)); });
}

ImageTextLoader::~ImageTextLoader() { stop_workers(); }

void ImageTextLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

int64_t ImageTextLoader::stream_length() const {
  const int64_t n = int64_t(index_.size()), g = cfg_.global_batch;
  const int64_t full = n / g;
  const int64_t tail = std::clamp<int64_t>(n - full * g - int64_t(cfg_.rank) * local_, 0, local_);
  return full * local_ + tail;
}

size_t ImageTextLoader::entry_at(int64_t s) const {
  const int64_t w = s / local_, j = s % local_;
  return order_[size_t(w * cfg_.global_batch + int64_t(cfg_.rank) * local_ + j)];
}

// Called with mu_ held and no worker writing into the ring.
void ImageTextLoader::start_epoch(uint64_t epoch, int64_t consumed) {
  order_ = image_text_epoch_order(index_, cfg_.seed, epoch);

  const int64_t len = stream_length();
  require(consumed >= 0 && consumed <= len, "image loader position: " + std::to_string(consumed) +
                                                " samples consumed, but this rank's epoch has " + std::to_string(len));
  epoch_ = epoch;
  epoch_start_ = next_task_ = resolved_ = consumed;
  readable_ = 0;
  returned_ = 0;
  epoch_done_ = false;
  holding_ = false;
  const size_t left = size_t(len - consumed);
  for (auto& t : tasks_) t = Task{};
  batch_end_.assign(left / size_t(local_) + 1, 0);
  batch_skipped_.assign(left / size_t(local_) + 1, 0);
  for (size_t i = 0; i < ring_.size(); i++) {
    ring_[i]->batch = int64_t(i);
    ring_[i]->filled = 0;
  }
}

void ImageTextLoader::worker_main(size_t w) {
  Image img, work;
  ResampleScratch scratch;
  std::string path, error;
  std::vector<int32_t> tokens;
  const int64_t len = stream_length();
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    if (next_task_ >= len) {
      cv_.wait(lk);
      continue;
    }
    const int64_t p = next_task_++;
    const uint64_t ep = epoch_;
    const size_t e = entry_at(p);
    tasks_[w].pos = p;
    tasks_[w].status = 0;
    tasks_[w].assigned = -1;
    lk.unlock();
    index_.image_path(e, path);
    const bool ok = decode_image(path, img, &error);
    lk.lock();
    if (stop_ || ep != epoch_) continue;  // the epoch was restarted meanwhile (tasks_ were reset)
    tasks_[w].status = ok ? 1 : 2;
    if (!ok) tasks_[w].error.swap(error);
    // Resolve in stream order: skip lines come out in that order, readable samples get their number.
    for (bool progress = true; progress && resolved_ < len;) {
      progress = false;
      for (Task& t : tasks_) {
        if (t.pos != resolved_ || t.status == 0) continue;
        if (t.status == 2) {
          skipped_++;
          cfg_.log("skipping unreadable image " + t.error);
          t.pos = -1;
        } else {
          t.assigned = readable_;
          if (readable_ % local_ == local_ - 1) {
            batch_end_[size_t(readable_ / local_)] = resolved_ + 1;
            batch_skipped_[size_t(readable_ / local_)] = skipped_;
          }
          readable_++;
        }
        resolved_++;
        progress = true;
      }
    }
    cv_.notify_all();
    // The task stays this worker's until it is resolved (an unreadable one too: its line is logged in
    // order, by whichever worker resolves it).
    cv_.wait(lk, [&] { return stop_ || ep != epoch_ || resolved_ > p; });
    if (stop_ || ep != epoch_ || !ok) continue;
    const int64_t s = tasks_[w].assigned, k = s / local_, j = s % local_;
    tasks_[w].pos = -1;
    Slot& slot = *ring_[size_t(k % int64_t(ring_.size()))];
    bool dropped = false;
    cv_.wait(lk, [&] {
      // in the epoch's incomplete last batch
      dropped = cfg_.drop_last && resolved_ == len && k >= readable_ / local_;
      return stop_ || ep != epoch_ || dropped || slot.batch == k;
    });
    if (stop_ || ep != epoch_ || dropped) continue;
    writers_++;
    lk.unlock();
    const uint64_t key = index_.key(e);
    float* out = slot.images.data() + size_t(j) * image_floats_;
    if (cfg_.train)
      transform_.train(img, cfg_.seed, ep, key, out, work, scratch);
    else
      transform_.eval(img, out, work, scratch);
    tokenize_caption(tok_, index_.caption(e), slot.text.data() + size_t(j) * size_t(cfg_.context), cfg_.context, tokens);
    slot.entries[size_t(j)] = e;
    lk.lock();
    writers_--;
    slot.filled++;
    cv_.notify_all();
  }
}

bool ImageTextLoader::next(ImageTextBatch& batch) {
  std::unique_lock<std::mutex> lk(mu_);
  if (epoch_done_) {
    cv_.wait(lk, [&] { return writers_ == 0; });
    start_epoch(epoch_ + 1, 0);
    cv_.notify_all();
  }
  if (holding_) {  // the caller is done with the previous batch: its buffer takes the batch R later
    Slot& prev = *ring_[size_t((returned_ - 1) % int64_t(ring_.size()))];
    prev.batch += int64_t(ring_.size());
    prev.filled = 0;
    holding_ = false;
    cv_.notify_all();
  }
  const int64_t k = returned_, len = stream_length();
  Slot& slot = *ring_[size_t(k % int64_t(ring_.size()))];
  // Without drop_last the epoch's incomplete last batch (all its readable samples known) is complete
  // when they are all written.
  const auto tail = [&] { return resolved_ == len && readable_ < (k + 1) * local_ ? readable_ - k * local_ : local_; };
  cv_.wait(lk, [&] {
    if (slot.batch == k && slot.filled == local_) return true;
    if (!(resolved_ == len && readable_ < (k + 1) * local_)) return false;
    return cfg_.drop_last || tail() <= 0 || (slot.batch == k && slot.filled == tail());
  });
  const int64_t size = slot.batch == k && slot.filled == local_ ? local_ : cfg_.drop_last ? 0 : std::max<int64_t>(tail(), 0);
  if (size == 0) {
    epoch_done_ = true;
    position_ = {epoch_ + 1, 0, skipped_};
    return false;
  }
  batch.size = size;
  batch.images = slot.images.data();
  batch.text = slot.text.data();
  batch.entries = slot.entries.data();
  batch.epoch = epoch_;
  batch.step_in_epoch = k;
  position_ = size == local_ ? LoaderPosition{epoch_, batch_end_[size_t(k)], batch_skipped_[size_t(k)]}
                             : LoaderPosition{epoch_, len, skipped_};  // the last, smaller batch: the stream's end
  returned_++;
  holding_ = true;
  return true;
}

LoaderPosition ImageTextLoader::position() const {
  std::lock_guard<std::mutex> lk(mu_);
  return position_;
}

}  // namespace loom::data
