#pragma once
// What the CoCa run needs of its image-text data: this rank's slice of each drop-last global batch
// (images transformed and normalised, captions tokenised), epochs, the count of skipped images, and a
// position that a checkpoint stores so a resumed run sees exactly the batches the uninterrupted one would.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace loom {

struct CocaBatch {
  const float* images = nullptr;  // [size, 3, S, S]
  const int32_t* text = nullptr;  // [size, context]
  int size = 0;
};

class CocaDataSource {
 public:
  virtual ~CocaDataSource() = default;
  virtual int64_t num_samples() const = 0;        // entries of the index (EVA-CLIP's samples per epoch)
  virtual int64_t batches_per_epoch() const = 0;  // drop-last global batches when every image reads
  // This rank's next batch of the current epoch; false at its end (the next call starts the next
  // epoch). Ranks can disagree when unreadable images shorten one rank's stream: the caller ends the
  // epoch when any rank has ended it, and the others drain theirs (end_epoch).
  virtual bool next(CocaBatch& batch) = 0;
  virtual void end_epoch() = 0;
  virtual int64_t skipped() const = 0;            // unreadable images skipped so far
  virtual nlohmann::json state() const = 0;       // for checkpoints
  virtual void restore(const nlohmann::json& state) = 0;
};

}  // namespace loom
