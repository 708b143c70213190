#pragma once
// A dense, contiguous, row-major tensor. Storage is reference-counted and comes from the counting
// allocator; views share storage. Deliberately small: kernels take raw pointers and sizes, layers own
// the tensors and decide their lifetimes, so the hot loop never allocates.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "loom/core/dtype.h"

namespace loom {

class Storage {
 public:
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  bool mapped_;  // made under AddressSpaceOnly
  void* data_;
  size_t bytes_;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::vector<int64_t> shape, DType dtype = DType::F32);  // zero-filled
  static Tensor zeros(std::vector<int64_t> shape, DType dtype = DType::F32) { return Tensor(std::move(shape), dtype); }

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int ndim() const { return int(shape_.size()); }
  int64_t numel() const { return numel_; }
  DType dtype() const { return dtype_; }
  size_t nbytes() const { return size_t(numel_) * dtype_size(dtype_); }
  bool defined() const { return storage_ != nullptr; }

  void* raw() const { return static_cast<char*>(storage_->data()) + offset_; }
  float* f32() const;
  uint16_t* u16() const;  // bf16 / fp16 / uint16 payloads
  int32_t* i32() const;

  // A view of rows [begin, end) of the first dimension, sharing storage.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // The same storage with another shape of equal element count.
  Tensor reshape(std::vector<int64_t> shape) const;

  void zero();
  Tensor clone() const;
  std::string shape_str() const;

 private:
  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
};

int64_t shape_numel(const std::vector<int64_t>& shape);
std::string shape_to_string(const std::vector<int64_t>& shape);  // "[2, 3]"

}  // namespace loom
