#include "loom/data/numpy_compat.h"

#include <cstring>

#include "loom/core/error.h"

namespace loom::data {

// ---------------------------------------------------------------------------------------------
// MT19937 as numpy's legacy RandomState uses it.

NumpyRandomState::NumpyRandomState(uint64_t seed) {
  if (seed > 0xFFFFFFFFull) fail("seed must be between 0 and 2**32 - 1 (numpy RandomState), got " + std::to_string(seed));
  // numpy's mt19937_seed (Knuth's init_genrand).
  uint32_t s = uint32_t(seed);
  for (int i = 0; i < 624; i++) {
    mt_[size_t(i)] = s;
    s = 1812433253u * (s ^ (s >> 30)) + uint32_t(i + 1);
  }
  pos_ = 624;
}

void NumpyRandomState::refill() {
  constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrixA = 0x9908b0dfu;
  for (int i = 0; i < 624; i++) {
    const uint32_t y = (mt_[size_t(i)] & kUpper) | (mt_[size_t((i + 1) % 624)] & kLower);
    mt_[size_t(i)] = mt_[size_t((i + 397) % 624)] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
  }
  pos_ = 0;
}

uint32_t NumpyRandomState::next_uint32() {
  if (pos_ >= 624) refill();
  uint32_t y = mt_[size_t(pos_++)];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t NumpyRandomState::next_uint64() {
  const uint64_t hi = next_uint32();
  return (hi << 32) | next_uint32();
}

uint64_t NumpyRandomState::interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  uint64_t value;
  if (max <= 0xFFFFFFFFull) {
    while ((value = (next_uint32() & mask)) > max) {
    }
  } else {
    while ((value = (next_uint64() & mask)) > max) {
    }
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// .npy

template <> std::string npy_descr<int8_t>() { return "|i1"; }
template <> std::string npy_descr<uint8_t>() { return "|u1"; }
template <> std::string npy_descr<int16_t>() { return "<i2"; }
template <> std::string npy_descr<uint16_t>() { return "<u2"; }
template <> std::string npy_descr<int32_t>() { return "<i4"; }
template <> std::string npy_descr<uint32_t>() { return "<u4"; }
template <> std::string npy_descr<int64_t>() { return "<i8"; }
template <> std::string npy_descr<uint64_t>() { return "<u8"; }

template <class T>
void write_npy(const std::string& path, const T* data, const std::vector<int64_t>& shape) {
  // np.save's header: the dict repr, padded with spaces and a newline so data starts at a multiple of 64.
  std::string dict = "{'descr': '" + npy_descr<T>() + "', 'fortran_order': False, 'shape': (";
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); i++) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
    count *= shape[i];
  }
  dict += "), }";
  const size_t unpadded = 10 + dict.size() + 1;
  dict += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string header = "\x93NUMPY";
  header += char(1);
  header += char(0);
  header += char(dict.size() & 0xFF);
  header += char((dict.size() >> 8) & 0xFF);
  header += dict;
  AtomicFile f(path);
  f.write(header.data(), header.size());
  f.write(data, size_t(count) * sizeof(T));
  f.commit();
}

template void write_npy<int32_t>(const std::string&, const int32_t*, const std::vector<int64_t>&);
template void write_npy<uint32_t>(const std::string&, const uint32_t*, const std::vector<int64_t>&);
template void write_npy<int64_t>(const std::string&, const int64_t*, const std::vector<int64_t>&);
template void write_npy<uint8_t>(const std::string&, const uint8_t*, const std::vector<int64_t>&);

namespace {

// The value of `key` in a numpy header dict, as written by np.save (no nesting except the shape tuple).
std::string header_value(const std::string& dict, const std::string& key, const std::string& path) {
  const std::string k = "'" + key + "'";
  auto p = dict.find(k);
  if (p == std::string::npos) fail("'" + path + "' is not a valid .npy file (no " + k + " in its header)");
  p = dict.find(':', p + k.size());
  if (p == std::string::npos) fail("'" + path + "' is not a valid .npy file (bad header)");
  p++;
  while (p < dict.size() && dict[p] == ' ') p++;
  size_t end = p;
  if (p < dict.size() && dict[p] == '(') {
    end = dict.find(')', p);
    if (end == std::string::npos) fail("'" + path + "' is not a valid .npy file (bad shape)");
    return dict.substr(p, end + 1 - p);
  }
  while (end < dict.size() && dict[end] != ',' && dict[end] != '}') end++;
  std::string v = dict.substr(p, end - p);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

}  // namespace

NpyArray::NpyArray(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  const uint8_t* d = file_->data();
  const size_t n = file_->size();
  const auto bad = [&](const std::string& why) { fail("'" + path + "' is not a valid .npy file (" + why + ")"); };
  if (n < 10 || std::memcmp(d, "\x93NUMPY", 6) != 0) bad("no \\x93NUMPY magic");
  const int major = d[6];
  size_t header_len, offset;
  if (major == 1) {
    header_len = size_t(d[8]) | size_t(d[9]) << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (n < 12) bad("truncated header");
    header_len = size_t(d[8]) | size_t(d[9]) << 8 | size_t(d[10]) << 16 | size_t(d[11]) << 24;
    offset = 12;
  } else {
    bad("unsupported format version " + std::to_string(major));
  }
  if (offset + header_len > n) bad("truncated header");
  const std::string dict(reinterpret_cast<const char*>(d + offset), header_len);
  std::string descr = header_value(dict, "descr", path);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"')) bad("descr " + descr);
  descr_ = descr.substr(1, descr.size() - 2);
  if (header_value(dict, "fortran_order", path) != "False") bad("Fortran order");
  if (descr_.size() != 3 || (descr_[0] != '<' && descr_[0] != '|') || (descr_[1] != 'i' && descr_[1] != 'u') ||
      (descr_[2] != '1' && descr_[2] != '2' && descr_[2] != '4' && descr_[2] != '8'))
    bad("dtype " + descr_ + "; expected a little-endian integer type");
  kind_ = descr_[1];
  itemsize_ = descr_[2] - '0';
  const std::string shape = header_value(dict, "shape", path);
  count_ = 1;
  for (size_t i = 1; i < shape.size();) {
    while (i < shape.size() && (shape[i] == ' ' || shape[i] == ',' || shape[i] == ')')) i++;
    if (i >= shape.size()) break;
    size_t j = i;
    while (j < shape.size() && shape[j] >= '0' && shape[j] <= '9') j++;
    if (j == i) bad("shape " + shape);
    // The element count must stay far from overflowing (the data size check below multiplies it), and a
    // dimension must not be too long for stoll: both only come from a damaged header.
    if (j - i > 18) bad("shape " + shape + " is too large");
    const int64_t dim = std::stoll(shape.substr(i, j - i));
    if (dim != 0 && count_ > (int64_t(1) << 56) / dim) bad("shape " + shape + " is too large");
    shape_.push_back(dim);
    count_ *= dim;
    i = j;
  }
  data_ = d + offset + header_len;
  const size_t need = size_t(count_) * size_t(itemsize_);
  if (size_t(n - offset - header_len) != need)
    bad("data is " + std::to_string(n - offset - header_len) + " bytes, its header promises " + std::to_string(need));
}

int64_t NpyArray::at(int64_t i) const {
  const uint8_t* p = data_ + size_t(i) * size_t(itemsize_);
  switch (itemsize_ * (kind_ == 'u' ? -1 : 1)) {
    case 1: return int8_t(*p);
    case -1: return *p;
    case 2: { int16_t v; std::memcpy(&v, p, 2); return v; }
    case -2: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case 4: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case -4: { uint32_t v; std::memcpy(&v, p, 4); return v; }
    case 8: { int64_t v; std::memcpy(&v, p, 8); return v; }
    default: { uint64_t v; std::memcpy(&v, p, 8); return int64_t(v); }
  }
}

}  // namespace loom::data
