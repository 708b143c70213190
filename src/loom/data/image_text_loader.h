#pragma once
// The image-caption loader: images decoded and transformed, captions tokenised, on worker threads
// ahead of the training step, into a ring of preallocated batch buffers.
//
// Order. Each epoch is a seeded shuffle of the index, the same on every rank: the entries sorted by a
// 64-bit hash of (seed, epoch, entry key), the key being a hash of the entry's path and caption
// (ImageTextIndex::key). Leaving entries out of an index therefore leaves the others in the same
// relative order, and each image's random crop is keyed by (seed, epoch, entry key) as well.
//
// Batches. A global batch is `global_batch` samples, local_batch = global_batch / world of them per rank.
// Rank r's stream is its slice of every window of global_batch positions of the epoch's order:
// positions w*global_batch + r*local_batch + j (0 <= j < local_batch), window after window. A local
// batch is the next local_batch READABLE samples of that stream: an image that is missing or does not
// decode is skipped (one log line "skipping unreadable image <path>: <reason>", counted) and the batch
// is filled with the samples after it. The epoch ends (drop-last) when the stream has fewer than
// local_batch readable samples left, unless drop_last is off (evaluation): then the readable samples
// left make one last, smaller batch.
//  - One process: a run over an index with unreadable entries is exactly the run over the index
//    without them (same batches, same crops, same epoch length floor(readable / global_batch)).
//  - Several data-parallel ranks: with no unreadable images the ranks' batches, concatenated in rank
//    order, are the one-process global batch. An unreadable image shifts only its own rank's stream, so
//    ranks need no communication; their epochs may then end at different steps: the caller ends the
//    epoch for every rank when any rank reports its end (an all-reduce of next()'s result) and keeps
//    every rank's position for a resume.
// Resume. position() after a batch is (epoch, stream positions consumed, unreadable images skipped so
// far); a loader constructed with that position yields exactly the batches that would have followed.
//
// Threads. `workers` threads decode (image_codec.h) and transform (image_transform.h: random resized crop
// for training, resize + centre crop for evaluation) straight into the batch buffer the sample belongs
// to; a ring of `prefetch` batch buffers is allocated once; the steady state allocates nothing per batch.
// Results do not depend on the number of workers.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loom/data/image_text_index.h"
#include "loom/data/image_transform.h"
#include "loom/data/tokenizer.h"

namespace loom::data {

struct ImageTextLoaderConfig {
  int64_t global_batch = 0;
  int rank = 0, world = 1;
  int workers = 2;
  int prefetch = 0;  // batch buffers in the ring; 0: workers + 2
  uint64_t seed = 0;
  int context = 77;   // caption tokens per sample
  bool train = true;  // random resized crop (train) or resize + centre crop (eval)
  bool drop_last = true;  // false: the epoch's incomplete last batch is returned too (evaluation)
  ImageTransformConfig transform;
  // Where skip lines go; default: stderr.
  std::function<void(const std::string&)> log;
};

struct LoaderPosition {
  uint64_t epoch = 0;
  int64_t consumed = 0;  // positions of this rank's stream in `epoch` consumed by the batches returned
  int64_t skipped = 0;   // unreadable images skipped by them, all epochs
  bool operator==(const LoaderPosition&) const = default;
};

struct ImageTextBatch {
  int64_t size = 0;               // local batch (fewer in the last batch without drop_last)
  const float* images = nullptr;  // [size, 3, S, S], normalised
  const int32_t* text = nullptr;  // [size, context]
  const uint64_t* entries = nullptr;  // the index entries, for tests and logs
  uint64_t epoch = 0;
  int64_t step_in_epoch = 0;
};

// The epoch's order of the index (positions -> entries), as every rank computes it.
std::vector<uint32_t> image_text_epoch_order(const ImageTextIndex& index, uint64_t seed, uint64_t epoch);

class ImageTextLoader {
 public:
  ImageTextLoader(const ImageTextIndex& index, const Tokenizer& tokenizer, ImageTextLoaderConfig config,
                  LoaderPosition start = {});
  ~ImageTextLoader();
  ImageTextLoader(const ImageTextLoader&) = delete;
  ImageTextLoader& operator=(const ImageTextLoader&) = delete;

  // The next local batch of the current epoch, valid until the next call; false at the epoch's end
  // (then the next call starts the following epoch).
  bool next(ImageTextBatch& batch);
  // The position after the last batch returned (or the start).
  LoaderPosition position() const;
  int64_t skipped() const { return position().skipped; }
  // floor(index size / global batch): the epoch length when every image is readable.
  int64_t nominal_steps_per_epoch() const { return int64_t(index_.size()) / cfg_.global_batch; }
  int64_t local_batch() const { return local_; }

 private:
  struct Slot;
  void start_epoch(uint64_t epoch, int64_t consumed);
  void stop_workers();
  void worker_main(size_t w);
  int64_t stream_length() const;
  size_t entry_at(int64_t stream_pos) const;

  const ImageTextIndex& index_;
  const Tokenizer& tok_;
  ImageTextLoaderConfig cfg_;
  ImageTransform transform_;
  int64_t local_ = 0;
  size_t image_floats_ = 0;

  std::vector<uint32_t> order_;  // this epoch's order of the index
  std::vector<std::unique_ptr<Slot>> ring_;
  std::vector<std::thread> threads_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t epoch_ = 0;
  int64_t epoch_start_ = 0;    // stream position the epoch resumed at
  int64_t next_task_ = 0;      // next stream position to hand to a worker
  int64_t resolved_ = 0;       // stream positions < resolved_ have a known status
  int64_t readable_ = 0;       // readable samples among [epoch_start_, resolved_)
  int64_t skipped_ = 0;        // total skipped among resolved positions
  int64_t returned_ = 0;       // batches returned this epoch
  bool epoch_done_ = false;
  int writers_ = 0;            // workers writing into a ring slot right now
  bool holding_ = false;       // the caller holds batch returned_ - 1
  // What each worker holds: the stream position it decoded, its result and, once resolved in order,
  // its readable sample number. Positions are resolved by scanning these (a handful), so the loader
  // keeps no per-position state: memory does not grow with the index.
  struct Task {
    int64_t pos = -1;
    int8_t status = 0;  // 0 decoding, 1 readable, 2 unreadable
    int64_t assigned = -1;
    std::string error;
  };
  std::vector<Task> tasks_;
  std::vector<int64_t> batch_end_, batch_skipped_;  // per batch of the epoch: stream end, skipped so far
  LoaderPosition position_;
};

}  // namespace loom::data
