#pragma once
// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}} padded
// with spaces to a multiple of 8, then the raw little-endian tensor bytes. Files are written to a
// temporary name and renamed when complete; reading validates every offset against the file size.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loom/core/dtype.h"

namespace loom {

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // writing: caller's bytes; reading: points into the loaded file
  size_t bytes = 0;
};

// Returns the CRC-32 (zlib's) of the bytes written.
uint32_t write_safetensors(const std::string& path, const std::vector<TensorEntry>& tensors,
                           const std::map<std::string, std::string>& metadata = {});

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws UserError naming the file
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const TensorEntry* find(const std::string& name) const;
  const TensorEntry& get(const std::string& name) const;  // throws UserError if missing
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<char> bytes_;
  std::vector<TensorEntry> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `bytes` to path atomically: a temporary file in the same directory, fsync, rename.
void write_file_atomic(const std::string& path, const std::string& bytes);
// CRC-32 of a whole file (UserError naming it if unreadable), and of a buffer.
uint32_t file_crc32(const std::string& path);
uint32_t crc32_of(const void* data, size_t bytes);

}  // namespace loom
