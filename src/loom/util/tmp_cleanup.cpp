#include "loom/util/tmp_cleanup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>

namespace loom {

namespace {

constexpr int kSlots = 64;
constexpr size_t kMaxPath = 4096;

struct Slot {
  std::atomic<bool> used{false};  // set after `path` is written, cleared before it is reused
  bool directory = false;
  char path[kMaxPath] = {};
};
Slot g_slots[kSlots];
std::mutex g_mutex;  // registration only (never taken in the handler)

// A flat directory: unlink every entry, then the directory. getdents64/unlinkat/rmdir are system calls,
// safe in a signal handler (opendir/readdir may allocate).
void remove_flat_dir(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    alignas(8) char buf[8192];
    for (;;) {
      const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        // struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name
        unsigned short reclen;
        std::memcpy(&reclen, buf + off + 16, sizeof reclen);
        const char* name = buf + off + 19;
        if (std::strcmp(name, ".") != 0 && std::strcmp(name, "..") != 0) ::unlinkat(fd, name, 0);
        off += reclen;
      }
    }
    ::close(fd);
  }
  ::rmdir(path);
}

void on_signal(int sig) {
  for (Slot& s : g_slots) {
    if (!s.used.load()) continue;
    if (s.directory) remove_flat_dir(s.path);
    else ::unlink(s.path);
  }
  // End as the signal would have ended the process.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_handlers_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
      struct sigaction old {};
      if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      ::sigaction(sig, &sa, nullptr);
    }
  });
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool process_alive(const std::string& pid) {
  if (pid.size() > 9) return false;
  const long p = std::stol(pid);
  return p > 0 && (::kill(pid_t(p), 0) == 0 || errno == EPERM);
}

}  // namespace

TmpRegistration::TmpRegistration(const std::string& path, bool directory) {
  if (path.size() >= kMaxPath) return;
  install_handlers_once();
  std::lock_guard<std::mutex> lock(g_mutex);
  for (int i = 0; i < kSlots; i++) {
    Slot& s = g_slots[i];
    if (s.used.load()) continue;
    s.directory = directory;
    std::memcpy(s.path, path.c_str(), path.size() + 1);
    s.used.store(true);
    slot_ = i;
    return;
  }
}

TmpRegistration::~TmpRegistration() {
  if (slot_ >= 0) g_slots[slot_].used.store(false);
}

TmpRegistration::TmpRegistration(TmpRegistration&& other) noexcept : slot_(other.slot_) { other.slot_ = -1; }

TmpRegistration& TmpRegistration::operator=(TmpRegistration&& other) noexcept {
  if (this != &other) {
    if (slot_ >= 0) g_slots[slot_].used.store(false);
    slot_ = other.slot_;
    other.slot_ = -1;
  }
  return *this;
}

int remove_stale_tmp_files(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(dir.empty() ? "." : dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= stem.size() + 5 || name.compare(0, stem.size(), stem) != 0) continue;
    const std::string rest = name.substr(stem.size());
    std::string pid;
    if (rest.rfind(".tmp-", 0) == 0) {  // .tmp-<pid>-<n>
      const std::string tail = rest.substr(5);
      const size_t dash = tail.find('-');
      if (dash == std::string::npos || !all_digits(tail.substr(0, dash)) || !all_digits(tail.substr(dash + 1))) continue;
      pid = tail.substr(0, dash);
    } else if (rest.rfind(".tmp.", 0) == 0 && all_digits(rest.substr(5))) {  // .tmp.<pid>
      pid = rest.substr(5);
    } else {
      continue;
    }
    if (process_alive(pid) || !entry.is_regular_file(ec)) continue;
    if (fs::remove(entry.path(), ec)) removed++;
  }
  return removed;
}

}  // namespace loom
