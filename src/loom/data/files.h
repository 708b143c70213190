#pragma once
// File helpers for the data pipeline: read-only mappings and files that appear under their final
// name only once completely written.
#include <cstdint>
#include <cstdio>
#include <string>

#include "loom/util/tmp_cleanup.h"

namespace loom::data {

// A read-only memory mapping of a whole file (empty files map to nothing).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // UserError naming the file when it cannot be opened
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// A file written under a temporary name in the same directory (`<path>.tmp-<pid>-<n>`) and renamed
// to `path` by commit(). Destroying it uncommitted deletes the temporary file, so an error or an
// exception never leaves a partial file behind; neither does a termination signal (TmpRegistration).
// Temporaries of `path` left by a killed process (no longer alive) are removed when it opens.
// Write errors are UserErrors naming `path`; `path` being a directory is one before anything is written.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t size);
  uint64_t bytes_written() const { return written_; }
  // Flushes and closes the temporary file (reporting any error) without renaming it yet.
  void close();
  // close() then rename into place.
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  uint64_t written_ = 0;
  bool committed_ = false;
  TmpRegistration registration_;
};

// The whole content of `path`; UserError "cannot open <what> '<path>': <reason>" when it cannot be read.
std::string read_whole_file(const std::string& path, const std::string& what);

bool file_exists(const std::string& path);
// The directory part of `path` ("." when there is none).
std::string dirname_of(const std::string& path);
std::string basename_of(const std::string& path);

}  // namespace loom::data
