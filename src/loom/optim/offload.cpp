#include "loom/optim/offload.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>

#include "loom/core/error.h"

namespace loom {

namespace {
std::atomic<int> g_next_id{0};
}

OffloadedMoments::OffloadedMoments(const std::string& dir, int64_t n, int64_t block_elements, bool with_main_weights)
    : n_(n), block_(std::max<int64_t>(1, std::min(block_elements, n))), arrays_(with_main_weights ? 3 : 2) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  path_ = (std::filesystem::path(dir) / ("loom_optimizer_" + std::to_string(getpid()) + "_" +
                                         std::to_string(g_next_id++) + ".bin"))
              .string();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd_ < 0) fail("--offload-path: cannot create " + path_ + ": " + std::strerror(errno));
  if (::ftruncate(fd_, off_t(arrays_ * n * 4)) != 0) {
    const int e = errno;
    ::close(fd_);
    ::unlink(path_.c_str());
    fail("--offload-path: cannot size " + path_ + ": " + std::strerror(e));
  }
  buffers_.assign(size_t(3 * arrays_) * size_t(block_), 0.f);
}

OffloadedMoments::~OffloadedMoments() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

// m of element i is at byte 4 i, v at 4 (n + i), w at 4 (2 n + i).
void OffloadedMoments::io(bool write, int64_t first, int64_t count, float* const* arrays) const {
  for (int which = 0; which < arrays_; which++) {
    char* p = reinterpret_cast<char*>(arrays[which]);
    off_t at = off_t((which * n_ + first) * 4);
    size_t left = size_t(count) * 4;
    while (left > 0) {
      const ssize_t r = write ? ::pwrite(fd_, p, left, at) : ::pread(fd_, p, left, at);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) fail("offloaded optimizer state " + path_ + ": " + (write ? "write" : "read") + " failed: " +
                       std::strerror(r < 0 ? errno : EIO));
      p += r;
      at += r;
      left -= size_t(r);
    }
  }
}

void OffloadedMoments::for_each_block(const std::function<void(int64_t, int64_t, float*, float*, float*)>& fn) {
  const int64_t blocks = (n_ + block_ - 1) / block_;
  auto arrays = [&](int b) {
    std::array<float*, 3> a{array_of(b, 0), array_of(b, 1), arrays_ > 2 ? array_of(b, 2) : nullptr};
    return a;
  };
  auto range = [&](int64_t i) { return std::min(block_, n_ - i * block_); };
  std::future<void> reading, writing;
  io(false, 0, range(0), arrays(0).data());
  for (int64_t i = 0; i < blocks; i++) {
    const int cur = int(i % 3), nxt = int((i + 1) % 3);
    if (i + 1 < blocks) {
      // Buffer nxt last held block i-2, whose write-back finished before block i-1's was started.
      reading = std::async(std::launch::async, [this, i, &range, &arrays, nxt] {
        io(false, (i + 1) * block_, range(i + 1), arrays(nxt).data());
      });
    }
    const auto a = arrays(cur);
    fn(i * block_, range(i), a[0], a[1], a[2]);
    if (writing.valid()) writing.get();  // surfaces a failed write
    writing = std::async(std::launch::async, [this, i, &range, &arrays, cur] {
      io(true, i * block_, range(i), arrays(cur).data());
    });
    if (reading.valid()) reading.get();
  }
  if (writing.valid()) writing.get();
}

void OffloadedMoments::read(float* m, float* v, float* w) const {
  float* a[3] = {m, v, w};
  io(false, 0, n_, a);
}

void OffloadedMoments::write(const float* m, const float* v, const float* w) {
  float* a[3] = {const_cast<float*>(m), const_cast<float*>(v), const_cast<float*>(w)};
  io(true, 0, n_, a);
}

}  // namespace loom
