#pragma once
// Optimizer state kept in a file instead of memory (--offload-optimizer nvme): the Adam m and v of n
// parameters (and, for a half-precision model, the fp32 main weights w) live on disk and stream through a
// few block-sized buffers during the step. While block i is
// updated, block i+1 is being read and block i-1 written (read-ahead, write-behind), so the step costs
// roughly max(compute, I/O) and the resident optimizer state is 3 blocks whatever the model size.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace loom {

class OffloadedMoments {
 public:
  // Creates DIR/loom_optimizer_<pid>_<id>.bin (zeros, 8 n bytes, 12 n with main weights); removed on
  // destruction.
  OffloadedMoments(const std::string& dir, int64_t n, int64_t block_elements, bool with_main_weights = false);
  ~OffloadedMoments();
  OffloadedMoments(const OffloadedMoments&) = delete;
  OffloadedMoments& operator=(const OffloadedMoments&) = delete;

  // fn(first, count, m, v, w) over consecutive blocks (w null without main weights); all are written
  // back after fn returns.
  void for_each_block(const std::function<void(int64_t first, int64_t count, float* m, float* v, float* w)>& fn);
  // All n values of each (w ignored without main weights).
  void read(float* m, float* v, float* w = nullptr) const;
  void write(const float* m, const float* v, const float* w = nullptr);
  int64_t block() const { return block_; }
  int arrays() const { return arrays_; }
  const std::string& path() const { return path_; }

 private:
  void io(bool write, int64_t first, int64_t count, float* const* arrays) const;
  float* array_of(int buffer, int which) { return buffers_.data() + (size_t(buffer) * size_t(arrays_) + size_t(which)) * size_t(block_); }
  std::string path_;
  int fd_ = -1;
  int64_t n_, block_;
  int arrays_;
  std::vector<float> buffers_;  // 3 blocks of (m, v[, w])
};

}  // namespace loom
