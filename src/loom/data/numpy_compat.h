#pragma once
// Bits of numpy that Megatron's dataset code relies on, reproduced exactly:
//  - NumpyRandomState: np.random.RandomState(seed) (MT19937 seeded by init_genrand) with its
//    shuffle() of a 1-d array, so index shuffles equal Megatron's bit for bit;
//  - .npy files (format 1.0) written atomically and read back through mmap.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/data/files.h"

namespace loom::data {

class NumpyRandomState {
 public:
  // np.random.RandomState(seed); numpy accepts 0 <= seed <= 2**32 - 1 (UserError otherwise).
  explicit NumpyRandomState(uint64_t seed);
  uint32_t next_uint32();
  // numpy's next_uint64 for MT19937: two 32-bit draws, the first is the high half.
  uint64_t next_uint64();
  // numpy's random_interval(max): a uniform value in [0, max] by masked rejection sampling.
  uint64_t interval(uint64_t max);
  // RandomState.shuffle(x) for a 1-d ndarray x of n elements (Fisher-Yates from the end).
  template <class T>
  void shuffle(T* x, int64_t n) {
    for (int64_t i = n - 1; i >= 1; i--) {
      const auto j = int64_t(interval(uint64_t(i)));
      T t = x[j];
      x[j] = x[i];
      x[i] = t;
    }
  }

 private:
  void refill();
  std::array<uint32_t, 624> mt_{};
  int pos_ = 624;
};

// An integer .npy array, mmapped. Elements are read with at(), whatever the stored integer type
// ('<i4', '<u4', '<i8', '<u8', ...); C order only.
class NpyArray {
 public:
  explicit NpyArray(const std::string& path);  // UserError on anything that is not such a file
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t size() const { return count_; }
  const std::string& descr() const { return descr_; }
  int64_t at(int64_t i) const;  // flat index

 private:
  std::unique_ptr<MappedFile> file_;
  std::string descr_;
  std::vector<int64_t> shape_;
  int64_t count_ = 0;
  char kind_ = 'i';
  int itemsize_ = 4;
  const uint8_t* data_ = nullptr;
};

// numpy's descr for T: "<i4", "<u4", "<i8", "|u1", ...
template <class T>
std::string npy_descr();

// Writes a C-order .npy (format 1.0, as np.save) to `path` through a temporary file in the same
// directory that is renamed into place once complete, so readers never see a partial file.
template <class T>
void write_npy(const std::string& path, const T* data, const std::vector<int64_t>& shape);


}  // namespace loom::data
