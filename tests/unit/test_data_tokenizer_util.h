#pragma once
// Helpers for the tokenizer unit tests: files written at test time, and the byte-level spelling.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "loom/core/error.h"
#include "loom/data/byte_level.h"

namespace loom_test {

// A file under the test's temporary directory, removed at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& content) {
    path_ = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_" + name;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The byte-level (GPT-2 bytes_to_unicode) spelling of raw bytes, UTF-8 encoded.
inline std::string byte_level(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    const uint32_t cp = loom::data::gpt2_byte_to_unicode()[b];
    if (cp < 0x80) {
      out += char(cp);
    } else {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

// The message of the UserError `f` throws ("" and a test failure if it throws none).
template <class F>
std::string user_error(F&& f) {
  try {
    f();
  } catch (const loom::UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no UserError";
  return "";
}

}  // namespace loom_test
