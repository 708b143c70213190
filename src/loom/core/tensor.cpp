#include "loom/core/tensor.h"

#include <cstring>
#include <sstream>

#include "loom/core/allocator.h"
#include "loom/core/error.h"

namespace loom {

Storage::Storage(size_t bytes) : mapped_(address_space_only()), bytes_(bytes) {
  data_ = mapped_ ? mem_map_zeroed(bytes) : mem_alloc(bytes);  // a fresh mapping reads as zeros already
  if (data_ && !mapped_) std::memset(data_, 0, bytes);
}
Storage::~Storage() {
  if (mapped_)
    mem_unmap(data_, bytes_);
  else
    mem_free(data_, bytes_);
}

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor::Tensor(std::vector<int64_t> shape, DType dtype)
    : shape_(std::move(shape)), numel_(shape_numel(shape_)), dtype_(dtype) {
  storage_ = std::make_shared<Storage>(nbytes());
}

float* Tensor::f32() const {
  if (dtype_ != DType::F32) throw std::logic_error("tensor is not fp32");
  return static_cast<float*>(raw());
}
uint16_t* Tensor::u16() const {
  if (dtype_size(dtype_) != 2) throw std::logic_error("tensor is not a 16-bit type");
  return static_cast<uint16_t*>(raw());
}
int32_t* Tensor::i32() const {
  if (dtype_ != DType::I32) throw std::logic_error("tensor is not int32");
  return static_cast<int32_t*>(raw());
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  if (shape_.empty() || begin < 0 || end > shape_[0] || begin > end) throw std::logic_error("bad row slice");
  Tensor t = *this;
  int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  t.offset_ += size_t(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  t.numel_ = (end - begin) * row;
  return t;
}

Tensor Tensor::reshape(std::vector<int64_t> shape) const {
  if (shape_numel(shape) != numel_) throw std::logic_error("reshape changes element count");
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

void Tensor::zero() {
  if (defined()) std::memset(raw(), 0, nbytes());
}

Tensor Tensor::clone() const {
  Tensor t(shape_, dtype_);
  if (numel_) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); i++) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

std::string Tensor::shape_str() const { return shape_to_string(shape_); }

}  // namespace loom
