#pragma once
// Optimizer moments kept in a file instead of memory (--offload-optimizer nvme): the Adam m and v of n
// parameters live on disk and stream through a few block-sized buffers during the step. While block i is
// updated, block i+1 is being read and block i-1 written (read-ahead, write-behind), so the step costs
// roughly max(compute, I/O) and the resident optimizer state is 3 blocks whatever the model size.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace loom {

class OffloadedMoments {
 public:
  // Creates DIR/loom_optimizer_<pid>_<id>.bin (zeros, 8 n bytes); removed on destruction.
  OffloadedMoments(const std::string& dir, int64_t n, int64_t block_elements);
  ~OffloadedMoments();
  OffloadedMoments(const OffloadedMoments&) = delete;
  OffloadedMoments& operator=(const OffloadedMoments&) = delete;

  // fn(first, count, m, v) over consecutive blocks; m and v are written back after fn returns.
  void for_each_block(const std::function<void(int64_t first, int64_t count, float* m, float* v)>& fn);
  void read(float* m, float* v) const;         // all n values of each
  void write(const float* m, const float* v);  // all n values of each
  int64_t block() const { return block_; }
  const std::string& path() const { return path_; }

 private:
  void io(bool write, int64_t first, int64_t count, float* m, float* v) const;
  std::string path_;
  int fd_ = -1;
  int64_t n_, block_;
  std::vector<float> buffers_;  // 3 blocks of (m, v)
};

}  // namespace loom
