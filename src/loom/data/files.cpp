#include "loom/data/files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "loom/core/error.h"

namespace loom::data {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("'" + path + "' is not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail("cannot map '" + path + "': " + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

namespace {
std::atomic<uint64_t> g_tmp_counter{0};
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail("cannot create '" + path_ + "': it is a directory");
  const size_t slash = path_.rfind('/');
  remove_stale_tmp_files(slash == std::string::npos ? "." : path_.substr(0, slash == 0 ? 1 : slash),
                         slash == std::string::npos ? path_ : path_.substr(slash + 1));
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(g_tmp_counter.fetch_add(1));
  registration_ = TmpRegistration(tmp_, false);
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail("cannot create '" + path_ + "': " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t size) {
  if (!f_) fail("internal: write to closed '" + path_ + "'");
  if (size && std::fwrite(data, 1, size, f_) != size) fail("cannot write '" + path_ + "': " + std::strerror(errno));
  written_ += size;
}

void AtomicFile::close() {
  if (!f_) return;
  const bool ok = std::fflush(f_) == 0;
  const int err = errno;
  const bool closed = std::fclose(f_) == 0;
  f_ = nullptr;
  if (!ok || !closed) fail("cannot write '" + path_ + "': " + std::strerror(err));
}

void AtomicFile::commit() {
  close();
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot rename into '" + path_ + "': " + std::strerror(errno));
  committed_ = true;
  registration_ = TmpRegistration();
}

std::string read_whole_file(const std::string& path, const std::string& what) {
  // A directory opens as a stream that reads nothing: say what it is rather than "empty".
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail(what + " '" + path + "' is a directory, not a file");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open " + what + " '" + path + "': " + std::strerror(errno));
  std::ostringstream s;
  s << f.rdbuf();
  if (f.bad()) fail("cannot read " + what + " '" + path + "'");
  return s.str();
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string dirname_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string basename_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace loom::data
