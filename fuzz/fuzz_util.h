#pragma once
// Shared pieces of the libFuzzer targets (fuzz/fuzz_<parser>.cpp).
//
// Every target feeds its input through the same entry point real input takes. Most of Loom's parsers
// read from a path, so the input is written to a file in a per-process scratch directory (under
// /dev/shm when it exists, so no disk I/O) and the parser is given that path. A UserError is the
// parser's "bad input" answer and is fine; anything else that escapes (another exception type, a
// crash, a sanitizer report, a leak, a hang, an allocation over -malloc_limit_mb) is a bug.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "loom/core/error.h"

namespace loom::fuzz {

// A scratch directory private to this process, removed at exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string templ = std::string(base) + "/loom-fuzz-XXXXXX";
    if (!::mkdtemp(templ.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string keep = templ;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(keep, ec);
    });
    return templ;
  }();
  return dir;
}

inline std::string scratch_path(const std::string& name) { return scratch_dir() + "/" + name; }

// Writes `bytes` to `path` (replacing it) and returns the path.
inline std::string write_file(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();
  }
  return path;
}

inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  return write_file(scratch_path(name), bytes);
}

// Targets that need several files take one input holding them separated by this line, so seeds stay
// readable and the mutator can move bytes between the parts. Missing parts are empty.
constexpr std::string_view kPartSeparator = "\n--8<--\n";

inline std::vector<std::string_view> split_parts(const uint8_t* data, size_t size, size_t parts) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> out;
  while (out.size() + 1 < parts) {
    const size_t at = in.find(kPartSeparator);
    if (at == std::string_view::npos) break;
    out.push_back(in.substr(0, at));
    in.remove_prefix(at + kPartSeparator.size());
  }
  out.push_back(in);
  out.resize(parts);
  return out;
}

// Runs f, accepting a UserError (the parser rejecting the input) and nothing else.
template <class F>
void expect_user_errors_only(F&& f) {
  try {
    f();
  } catch (const UserError&) {
  }
}

// A file of the source tree (the bundled GPT-2 vocabulary, ...).
// The input as lines (a line may be empty), at most `max_lines`: the argument lists of the command-line targets.
inline std::vector<std::string> input_lines(const uint8_t* data, size_t size, size_t max_lines) {
  std::vector<std::string> lines;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty() && lines.size() < max_lines) {
    const size_t nl = in.find('\n');
    lines.emplace_back(in.substr(0, nl));
    if (nl == std::string_view::npos) break;
    in.remove_prefix(nl + 1);
  }
  return lines;
}

inline std::string source_file(const std::string& rel) { return std::string(LOOM_SOURCE_DIR) + "/" + rel; }

}  // namespace loom::fuzz
