#include "loom/util/output_path.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace fs = std::filesystem;

namespace loom {

namespace {

// "" if a file can be created in the existing directory `dir`, else why not.
std::string probe_writable(const fs::path& dir) {
  const fs::path probe = dir / (".loom-write-probe-" + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return "cannot write in " + dir.string() + ": " + std::strerror(errno);
  ::close(fd);
  ::unlink(probe.c_str());
  return "";
}

}  // namespace

std::string output_dir_problem(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::path(path).lexically_normal();
  if (p.empty()) p = ".";
  const auto st = fs::status(p, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) return path + " exists and is not a directory";
    return probe_writable(p);
  }
  // The nearest existing ancestor must be a directory that can hold the new ones.
  fs::path up = p;
  while (true) {
    up = up.has_parent_path() && up.parent_path() != up ? up.parent_path() : fs::path(".");
    const auto s = fs::status(up, ec);
    if (fs::exists(s)) {
      if (!fs::is_directory(s)) return up.string() + " is not a directory";
      return probe_writable(up);
    }
    if (up == "." || up == up.root_path()) return "no existing directory above " + path;
  }
}

std::string output_file_problem(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  const auto st = fs::symlink_status(p, ec);
  if (fs::exists(st)) {
    if (fs::is_directory(fs::status(p, ec))) return path + " is a directory, expected a file name";
    if (!fs::is_regular_file(st)) return path + " exists and is not a regular file";
  }
  fs::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  const auto ds = fs::status(dir, ec);
  if (!fs::exists(ds)) {
    // Say which component is wrong: a missing directory or a file used as one.
    for (fs::path up = dir; !up.empty() && up != up.root_path(); up = up.parent_path()) {
      const auto s = fs::status(up, ec);
      if (fs::exists(s)) {
        if (!fs::is_directory(s)) return up.string() + " is not a directory";
        break;
      }
    }
    return "directory " + dir.string() + " does not exist";
  }
  if (!fs::is_directory(ds)) return dir.string() + " is not a directory";
  return probe_writable(dir);
}

}  // namespace loom
