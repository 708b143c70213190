#include "loom/data/indexed_dataset.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "loom/core/error.h"

namespace loom::data {
namespace {

constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', '\0', '\0'};
constexpr size_t kHeader = 34;

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
void store(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

std::string plural(uint64_t n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

}  // namespace

size_t dtype_size(uint8_t code) {
  switch (code) {
    case kDtypeUint8: case kDtypeInt8: return 1;
    case kDtypeInt16: case kDtypeUint16: return 2;
    case kDtypeInt32: return 4;
    case kDtypeInt64: case kDtypeFloat64: case kDtypeDouble: return 8;
    default: return 0;
  }
}

uint8_t best_fitting_dtype(int64_t vocab_size) { return vocab_size < 65500 ? kDtypeUint16 : kDtypeInt32; }

std::string index_file_path(const std::string& prefix) { return prefix + ".idx"; }
std::string data_file_path(const std::string& prefix) { return prefix + ".bin"; }

// ---------------------------------------------------------------------------------------------
// Reader

IndexedDataset::IndexedDataset(const std::string& prefix) : prefix_(prefix) {
  const std::string idx_path = index_file_path(prefix), bin_path = data_file_path(prefix);
  const bool has_idx = file_exists(idx_path), has_bin = file_exists(bin_path);
  if (!has_idx && !has_bin)
    fail("dataset '" + prefix + "' does not exist: no " + idx_path + " or " + bin_path +
         " (give the prefix of a .bin/.idx pair, e.g. my-gpt2_text_document)");
  if (!has_idx) fail("dataset '" + prefix + "': " + idx_path + " is missing (found only the .bin)");
  if (!has_bin) fail("dataset '" + prefix + "': " + bin_path + " is missing (found only the .idx)");
  idx_ = std::make_unique<MappedFile>(idx_path);
  const uint8_t* d = idx_->data();
  const size_t n = idx_->size();
  const auto bad = [&](const std::string& why) { fail("index file '" + idx_path + "' " + why); };
  if (n == 0) bad("is empty");
  if (std::memcmp(d, kMagic, std::min(n, sizeof kMagic)) != 0)
    bad("is not a Megatron mmap index (no MMIDIDX header; was it written with --dataset-impl mmap?)");
  if (n < kHeader) bad("is truncated (" + plural(n, "byte") + ", the header alone has 34)");
  const uint64_t version = load<uint64_t>(d + 9);
  if (version != 1) bad("has version " + std::to_string(version) + "; only version 1 is supported");
  dtype_ = d[17];
  item_ = dtype_size(dtype_);
  if (item_ == 0) bad("has unknown dtype code " + std::to_string(dtype_));
  if (dtype_ == kDtypeFloat64 || dtype_ == kDtypeDouble) bad("holds floating-point data, not token ids");
  const uint64_t count = load<uint64_t>(d + 18), docs = load<uint64_t>(d + 26);
  // Guard the arithmetic below against absurd counts from a damaged header.
  if (count > (uint64_t(1) << 40) || docs > (uint64_t(1) << 40))
    bad("is damaged (claims " + std::to_string(count) + " sequences and " + std::to_string(docs) + " document entries)");
  const uint64_t expected = kHeader + 12 * count + 8 * docs;
  if (n < expected)
    bad("is truncated: " + plural(count, "sequence") + " and " + std::to_string(docs) + (docs == 1 ? " document-index entry" : " document-index entries") + " need " +
        plural(expected, "byte") + ", the file has " + std::to_string(n));
  if (n > expected)
    bad("has " + plural(n - expected, "byte") + " after its document index (expected exactly " +
        std::to_string(expected) + ")");
  count_ = int64_t(count);
  doc_count_ = int64_t(docs);
  sizes_ = d + kHeader;
  pointers_ = sizes_ + 4 * count;
  doc_idx_ = pointers_ + 8 * count;

  bin_ = std::make_unique<MappedFile>(bin_path);
  const uint64_t bin_size = bin_->size();
  if (bin_size % item_ != 0)
    fail("data file '" + bin_path + "' is " + plural(bin_size, "byte") + ", not a whole number of " +
         std::to_string(item_) + "-byte tokens (truncated, or not the .bin of '" + idx_path + "')");
  int64_t total = 0;
  uint64_t data_end = 0;  // where the last sequence ends: the .bin must end exactly there
  for (int64_t i = 0; i < count_; i++) {
    const int32_t size = sequence_length(i);
    const int64_t ptr = pointer(i);
    if (size < 0) bad("is damaged: sequence " + std::to_string(i) + " has negative size " + std::to_string(size));
    if (ptr < 0 || ptr % int64_t(item_) != 0)
      bad("is damaged: sequence " + std::to_string(i) + " starts at byte " + std::to_string(ptr));
    const uint64_t end = uint64_t(ptr) + uint64_t(size) * item_;
    if (end > bin_size)
      fail("data file '" + bin_path + "' is truncated: sequence " + std::to_string(i) + " ends at byte " +
           std::to_string(end) + " but the file has " + plural(bin_size, "byte") + " (or '" + idx_path +
           "' belongs to another .bin)");
    data_end = std::max(data_end, end);
    total += size;
  }
  // Megatron's writer puts the sequences back to back, so the index implies the .bin's exact length; a
  // longer .bin is another dataset's (its tokens would be read with the wrong boundaries).
  if (bin_size != data_end)
    fail("data file '" + bin_path + "' has " + plural(bin_size, "byte") + " but '" + idx_path + "' describes " +
         plural(data_end, "byte") + ": the two files belong to different datasets (preprocess the data again)");
  total_tokens_ = total;
  int64_t prev = 0;
  for (int64_t i = 0; i < doc_count_; i++) {
    const int64_t v = doc_index(i);
    if (v < prev || v > count_)
      bad("is damaged: document index entry " + std::to_string(i) + " is " + std::to_string(v) +
          " (entries must be non-decreasing and at most " + std::to_string(count_) + ")");
    prev = v;
  }
}

int32_t IndexedDataset::sequence_length(int64_t i) const { return load<int32_t>(sizes_ + 4 * size_t(i)); }
int64_t IndexedDataset::pointer(int64_t i) const { return load<int64_t>(pointers_ + 8 * size_t(i)); }
int64_t IndexedDataset::doc_index(int64_t i) const { return load<int64_t>(doc_idx_ + 8 * size_t(i)); }

std::vector<int32_t> IndexedDataset::sizes() const {
  std::vector<int32_t> out(static_cast<size_t>(count_));
  if (count_ > 0) std::memcpy(out.data(), sizes_, 4 * out.size());
  return out;
}

const void* IndexedDataset::raw(int64_t i) const { return bin_->data() + pointer(i); }

void IndexedDataset::get(int64_t i, int64_t offset, int64_t length, int32_t* out) const {
  if (i < 0 || i >= count_ || offset < 0 || length < 0 || offset + length > sequence_length(i))
    throw std::out_of_range("IndexedDataset::get(" + std::to_string(i) + ", " + std::to_string(offset) + ", " +
                            std::to_string(length) + ") outside sequence of " +
                            std::to_string(i >= 0 && i < count_ ? sequence_length(i) : -1) + " tokens in " + prefix_);
  const auto n = size_t(length);
  if (n == 0) return;
  const uint8_t* p = bin_->data() + pointer(i) + size_t(offset) * item_;
  switch (dtype_) {
    case kDtypeUint16:
      for (size_t k = 0; k < n; k++) out[k] = load<uint16_t>(p + 2 * k);
      break;
    case kDtypeInt32:
      std::memcpy(out, p, 4 * n);
      break;
    case kDtypeUint8:
      for (size_t k = 0; k < n; k++) out[k] = p[k];
      break;
    case kDtypeInt8:
      for (size_t k = 0; k < n; k++) out[k] = int8_t(p[k]);
      break;
    case kDtypeInt16:
      for (size_t k = 0; k < n; k++) out[k] = load<int16_t>(p + 2 * k);
      break;
    case kDtypeInt64:
      for (size_t k = 0; k < n; k++) out[k] = int32_t(load<int64_t>(p + 8 * k));
      break;
    default:
      throw std::logic_error("unsupported dtype");
  }
}

namespace {

// Smallest and largest value of n little-endian items of type T at p (unaligned: memcpy'd reads, which
// the compiler turns into vector loads).
template <class T>
std::pair<int64_t, int64_t> id_range(const uint8_t* p, size_t n) {
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
  if (n == 0) return {0, 0};
  constexpr size_t kBlock = size_t(1) << 16;
  const size_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for reduction(min : lo) reduction(max : hi) schedule(static)
  for (size_t b = 0; b < blocks; b++) {
    const size_t end = std::min(n, (b + 1) * kBlock);
    T mn = std::numeric_limits<T>::max(), mx = std::numeric_limits<T>::lowest();
#pragma omp simd reduction(min : mn) reduction(max : mx)
    for (size_t k = b * kBlock; k < end; k++) {
      T v;
      std::memcpy(&v, p + k * sizeof(T), sizeof(T));
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
    }
    lo = std::min<int64_t>(lo, int64_t(mn));
    hi = std::max<int64_t>(hi, int64_t(mx));
  }
  return {lo, hi};
}

}  // namespace

void IndexedDataset::check_token_ids(int64_t vocab_size) const {
  const uint8_t* d = bin_->data();
  const size_t n = bin_->size() / item_;  // the .bin is exactly the sequences (checked when opened)
  std::pair<int64_t, int64_t> r;
  switch (dtype_) {
    case kDtypeUint8: r = id_range<uint8_t>(d, n); break;
    case kDtypeInt8: r = id_range<int8_t>(d, n); break;
    case kDtypeInt16: r = id_range<int16_t>(d, n); break;
    case kDtypeUint16: r = id_range<uint16_t>(d, n); break;
    case kDtypeInt32: r = id_range<int32_t>(d, n); break;
    case kDtypeInt64: r = id_range<int64_t>(d, n); break;
    default: throw std::logic_error("unsupported dtype");
  }
  if (r.first >= 0 && r.second < vocab_size) return;
  // Name the first sequence (in index order) holding an id outside the vocabulary.
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < count_; i++) {
    ids.resize(size_t(sequence_length(i)));
    get(i, 0, int64_t(ids.size()), ids.data());
    for (size_t k = 0; k < ids.size(); k++)
      if (ids[k] < 0 || ids[k] >= vocab_size)
        fail("data file '" + data_file_path(prefix_) + "': sequence " + std::to_string(i) + " holds token id " +
             std::to_string(ids[k]) + " (position " + std::to_string(k) + "), outside the tokenizer's vocabulary of " +
             std::to_string(vocab_size) + " ids (preprocessed with another tokenizer? give the one the data was made with)");
  }
  // An int64 id that int32 cannot hold (get() narrows it): report the raw range.
  fail("data file '" + data_file_path(prefix_) + "' holds token ids from " + std::to_string(r.first) + " to " +
       std::to_string(r.second) + ", outside the tokenizer's vocabulary of " + std::to_string(vocab_size) + " ids");
}

// ---------------------------------------------------------------------------------------------
// Writer

IndexedDatasetWriter::IndexedDatasetWriter(const std::string& prefix, uint8_t dtype)
    : prefix_(prefix), dtype_(dtype), bin_(data_file_path(prefix)) {
  if (dtype != kDtypeUint16 && dtype != kDtypeInt32)
    throw std::invalid_argument("IndexedDatasetWriter: dtype must be uint16 or int32");
}

void IndexedDatasetWriter::add_item(const int32_t* ids, size_t n) {
  if (n > size_t(std::numeric_limits<int32_t>::max()))
    fail("a document of " + std::to_string(n) + " tokens does not fit the int32 sizes of '" + prefix_ + ".idx'");
  if (dtype_ == kDtypeUint16) {
    buffer_.resize(2 * n);
    for (size_t k = 0; k < n; k++) {
      if (ids[k] < 0 || ids[k] > 0xFFFF) throw std::out_of_range("token id does not fit uint16");
      const auto v = uint16_t(ids[k]);
      std::memcpy(buffer_.data() + 2 * k, &v, 2);
    }
    bin_.write(buffer_.data(), buffer_.size());
  } else {
    bin_.write(ids, 4 * n);
  }
  sizes_.push_back(int32_t(n));
  tokens_ += n;
}

void IndexedDatasetWriter::end_document() { doc_idx_.push_back(int64_t(sizes_.size())); }

void IndexedDatasetWriter::close() {
  if (idx_) return;
  bin_.close();
  std::vector<uint8_t> h;
  h.reserve(kHeader + 12 * sizes_.size() + 8 * doc_idx_.size());
  h.insert(h.end(), kMagic, kMagic + sizeof kMagic);
  store<uint64_t>(h, 1);
  h.push_back(dtype_);
  store<uint64_t>(h, sizes_.size());
  store<uint64_t>(h, doc_idx_.size());
  for (int32_t s : sizes_) store<int32_t>(h, s);
  int64_t address = 0;
  const auto item = int64_t(dtype_size(dtype_));
  for (int32_t s : sizes_) {
    store<int64_t>(h, address);
    address += s * item;
  }
  for (int64_t d : doc_idx_) store<int64_t>(h, d);
  idx_ = std::make_unique<AtomicFile>(index_file_path(prefix_));
  idx_->write(h.data(), h.size());
  idx_->close();
}

void IndexedDatasetWriter::finalize() {
  close();
  bin_.commit();
  idx_->commit();
}

}  // namespace loom::data
