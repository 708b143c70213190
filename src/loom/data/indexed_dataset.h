#pragma once
// Megatron's mmap indexed dataset ("MMIDIDX", --dataset-impl mmap): `<prefix>.bin` holds the token
// ids of every sequence back to back; `<prefix>.idx` describes them. Layout of the .idx, all
// little-endian, no padding:
//
//   offset  size          field
//   0       9             magic "MMIDIDX\x00\x00"
//   9       8   u64       version, 1
//   17      1   u8        dtype code of the .bin: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64,
//                         6 float64, 7 float64, 8 uint16 (Megatron writes 8 when vocab < 65500, else 4)
//   18      8   u64       N, number of sequences
//   26      8   u64       D, number of document-index entries (documents + 1)
//   34      4N  i32[N]    sizes: tokens per sequence
//   34+4N   8N  i64[N]    pointers: byte offset of each sequence in the .bin
//   34+12N  8D  i64[D]    document index: [0, end of document 1, end of document 2, ...] in sequences
//
// Without sentence splitting (GPT) every document is one sequence, so D = N + 1.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/data/files.h"

namespace loom::data {

// Megatron's dtype codes.
enum : uint8_t {
  kDtypeUint8 = 1, kDtypeInt8 = 2, kDtypeInt16 = 3, kDtypeInt32 = 4,
  kDtypeInt64 = 5, kDtypeFloat64 = 6, kDtypeDouble = 7, kDtypeUint16 = 8,
};
size_t dtype_size(uint8_t code);  // 0 for an unknown code
// Megatron's __best_fitting_dtype: uint16 when vocab_size < 65500, else int32.
uint8_t best_fitting_dtype(int64_t vocab_size);

std::string index_file_path(const std::string& prefix);  // prefix + ".idx"
std::string data_file_path(const std::string& prefix);   // prefix + ".bin"

// Read-only view of a .bin/.idx pair written by Loom or Megatron. Both files are mmapped; tokens are
// converted straight from the mapping into the caller's buffer. Opening validates everything against
// the file lengths (magic, version, dtype, array lengths, every sequence inside the .bin, document
// index monotonic), so a truncated or foreign file is a UserError naming it.
class IndexedDataset {
 public:
  explicit IndexedDataset(const std::string& prefix);
  const std::string& prefix() const { return prefix_; }
  uint8_t dtype() const { return dtype_; }
  int64_t size() const { return count_; }           // number of sequences (Megatron's len(sizes))
  int64_t doc_count() const { return doc_count_; }  // entries of the document index
  int32_t sequence_length(int64_t i) const;          // sizes[i]
  int64_t pointer(int64_t i) const;                  // pointers[i]
  int64_t doc_index(int64_t i) const;                // doc_idx[i]
  int64_t total_tokens() const { return total_tokens_; }
  std::vector<int32_t> sizes() const;                // all sizes, copied out
  // Tokens [offset, offset + length) of sequence i, as int32 (Megatron's get(i, offset, length)).
  void get(int64_t i, int64_t offset, int64_t length, int32_t* out) const;
  // The raw .bin bytes of sequence i (zero-copy; dtype() tells their type).
  const void* raw(int64_t i) const;
  // Every token id is in [0, vocab_size), or a UserError names the .bin, the first sequence holding an id
  // outside and that id (data preprocessed with another tokenizer would index past the embedding). One
  // vectorised, threaded pass over the .bin; the slow search for the culprit runs only when one exists.
  void check_token_ids(int64_t vocab_size) const;

 private:
  std::string prefix_;
  std::unique_ptr<MappedFile> idx_, bin_;
  uint8_t dtype_ = 0;
  size_t item_ = 0;
  int64_t count_ = 0, doc_count_ = 0, total_tokens_ = 0;
  const uint8_t* sizes_ = nullptr;     // unaligned in the mapping: read with memcpy
  const uint8_t* pointers_ = nullptr;
  const uint8_t* doc_idx_ = nullptr;
};

// Writes a .bin/.idx pair the way Megatron's MMapIndexedDatasetBuilder does. Both files are written
// under temporary names; finalize() renames them into place (.bin first, then .idx). Destroying the
// writer without finalize() removes them.
class IndexedDatasetWriter {
 public:
  IndexedDatasetWriter(const std::string& prefix, uint8_t dtype);
  // One sequence; ids must fit the dtype.
  void add_item(const int32_t* ids, size_t n);
  // Megatron's end_document(): records the number of sequences so far in the document index.
  void end_document();
  // Writes the .idx and renames both files into place.
  void finalize();
  // Close both files (surfacing write errors) without renaming; finalize() can follow.
  void close();
  int64_t sequences() const { return int64_t(sizes_.size()); }
  int64_t documents() const { return int64_t(doc_idx_.size()) - 1; }
  uint64_t tokens() const { return tokens_; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
  uint8_t dtype_;
  AtomicFile bin_;
  std::unique_ptr<AtomicFile> idx_;
  std::vector<int32_t> sizes_;
  std::vector<int64_t> doc_idx_{0};
  std::vector<uint8_t> buffer_;
  uint64_t tokens_ = 0;
};

}  // namespace loom::data
