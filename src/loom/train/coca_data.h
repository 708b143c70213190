#pragma once
// What the CoCa run needs of its image-text data: this rank's slice of each drop-last global batch
// (images transformed and normalised, captions tokenised), epochs, the count of skipped images, and a
// position that a checkpoint stores so a resumed run sees exactly the batches the uninterrupted one would.
#include <cstdint>
#include <string>

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

namespace loom {

struct CocaArgs;
namespace data {
class Tokenizer;
}

struct CocaBatch {
  const float* images = nullptr;  // [size, 3, S, S]
  const int32_t* text = nullptr;  // [size, context]
  const int32_t* labels = nullptr;    // [size] class labels, when the index was read with them
  const uint64_t* entries = nullptr;  // [size] the index entries (lines) the samples come from
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

// How a source reads its index.
struct CocaDataOptions {
  bool training = true;    // random crops, the global batch split over the ranks; else centre crops, one process
  bool drop_last = true;   // false: an epoch's incomplete last batch too (evaluation over every image)
  std::string label_key;                 // read class labels from this key / column ("": none)
  std::vector<std::string> label_names;  // the classes the labels name or index
};

// The captions' tokenizer of the run's flags (--tokenizer-type ...); UserError when it has more ids than
// --text-vocab-size.
std::unique_ptr<data::Tokenizer> make_coca_tokenizer(const CocaArgs& a);

std::unique_ptr<CocaDataSource> make_coca_data(const CocaArgs& a, const std::string& index, const CocaDataOptions& o,
                                               int rank, int world);

}  // namespace loom
