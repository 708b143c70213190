#include "loom/util/event_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "loom/core/error.h"
#include "loom/util/event_proto.h"
#include "loom/util/tfrecord.h"

namespace loom {

namespace {

constexpr size_t kMaxFiles = 8;  // files_ never reallocates, so the writer thread may index it unlocked

// Signals: the handler only records the signal; each writer thread sees it within kPoll, writes what is
// queued and closes its files, and the last one to finish re-raises the signal with its default action.
constexpr auto kPoll = std::chrono::milliseconds(50);
volatile std::sig_atomic_t g_signal = 0;
std::mutex g_live_mu;
int g_live = 0, g_closed_on_signal = 0;

void on_signal(int sig) { g_signal = sig; }

void install_signal_handlers_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
      struct sigaction old {};
      sigaction(sig, nullptr, &old);
      if (old.sa_handler != SIG_DFL) continue;  // the run handles it (--exit-signal-handler): its exit flushes
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      sigaction(sig, &sa, nullptr);
    }
  });
}

double unix_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

EventWriter::EventWriter(size_t queue_size) : queue_(std::max<size_t>(queue_size, 1)) {
  files_.reserve(kMaxFiles);
  install_signal_handlers_once();
  {
    std::lock_guard<std::mutex> l(g_live_mu);
    g_live++;
  }
  thread_ = std::thread([this] { run(); });
}

EventWriter::~EventWriter() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  has_work_.notify_all();
  thread_.join();
  std::lock_guard<std::mutex> l(g_live_mu);
  g_live--;
}

int EventWriter::open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  require(std::filesystem::is_directory(dir), "cannot create the TensorBoard directory " + dir +
                                                  (ec ? ": " + ec.message() : ": not a directory"));
  static int serial = 0;  // as TensorFlow's global uid: two files opened in the same second differ
  const std::string path = dir + "/events.out.tfevents." + std::to_string(int64_t(unix_time())) + "." + hostname() +
                           "." + std::to_string(getpid()) + "." + std::to_string(serial++);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  require(f != nullptr, "cannot write the TensorBoard event file " + path + ": " + std::strerror(errno));
  std::string frame;
  append_tfrecord(frame, encode_file_version_event(unix_time(), "brain.Event:2"));
  const bool ok = std::fwrite(frame.data(), 1, frame.size(), f) == frame.size() && std::fflush(f) == 0;
  if (!ok) {
    const std::string why = std::strerror(errno);
    std::fclose(f);
    fail("cannot write the TensorBoard event file " + path + ": " + why);
  }
  std::lock_guard<std::mutex> l(mu_);
  require(files_.size() < kMaxFiles, "too many TensorBoard event files in one run");
  files_.push_back({path, f, false});
  return int(files_.size() - 1);
}

void EventWriter::add_scalar(int file, std::string_view tag, double value, int64_t step, std::string_view suffix) {
  if (tag.size() + suffix.size() > kMaxTag)
    throw std::invalid_argument("TensorBoard tag longer than " + std::to_string(kMaxTag) + " bytes");
  Record r;
  r.file = file;
  r.step = step;
  r.wall_time = unix_time();
  r.value = float(value);  // simple_value is a float, as in TensorFlow's summary.proto
  r.sample = nullptr;
  r.tag_len = uint8_t(tag.size() + suffix.size());
  // (an empty string_view may hold a null pointer, which memcpy must not get)
  if (!tag.empty()) std::memcpy(r.tag, tag.data(), tag.size());
  if (!suffix.empty()) std::memcpy(r.tag + tag.size(), suffix.data(), suffix.size());
  push(r);
}

void EventWriter::add_sampled(int file, std::string_view tag, double (*sample)(), int64_t step) {
  if (tag.size() > kMaxTag) throw std::invalid_argument("TensorBoard tag longer than " + std::to_string(kMaxTag) + " bytes");
  Record r;
  r.file = file;
  r.step = step;
  r.wall_time = unix_time();
  r.value = 0;
  r.sample = sample;
  r.tag_len = uint8_t(tag.size());
  if (!tag.empty()) std::memcpy(r.tag, tag.data(), tag.size());
  push(r);
}

void EventWriter::push(const Record& r) {
  {
    std::unique_lock<std::mutex> l(mu_);
    has_room_.wait(l, [&] { return count_ < queue_.size(); });
    queue_[(head_ + count_) % queue_.size()] = r;
    count_++;
    queued_++;
  }
  has_work_.notify_one();
}

void EventWriter::flush() {
  std::unique_lock<std::mutex> l(mu_);
  const uint64_t target = queued_;
  has_work_.notify_one();
  drained_.wait(l, [&] { return written_ >= target; });
}

void EventWriter::run() {
  std::vector<Record> batch;
  batch.reserve(queue_.size());
  std::string frame;
  for (;;) {
    bool stopping;
    size_t nfiles;
    {
      std::unique_lock<std::mutex> l(mu_);
      while (count_ == 0 && !stop_ && !g_signal) has_work_.wait_for(l, kPoll);
      for (; count_ > 0; count_--, head_ = (head_ + 1) % queue_.size()) batch.push_back(queue_[head_]);
      stopping = stop_ || g_signal;
      nfiles = files_.size();
    }
    has_room_.notify_all();
    for (const Record& r : batch) write(r, frame);
    for (size_t i = 0; i < nfiles; i++)
      if (File& f = files_[i]; f.f && !f.failed && std::fflush(f.f) != 0) write_bytes(f, {});  // reports it once
    {
      std::lock_guard<std::mutex> l(mu_);
      written_ += batch.size();
    }
    drained_.notify_all();
    batch.clear();
    if (stopping) break;
  }
  close_files();
  if (const int sig = g_signal) {
    std::lock_guard<std::mutex> l(g_live_mu);
    if (++g_closed_on_signal >= g_live) {
      std::signal(sig, SIG_DFL);
      std::raise(sig);
    }
  }
}

void EventWriter::write(const Record& r, std::string& frame) {
  File& file = files_[size_t(r.file)];
  if (file.failed) return;
  frame.clear();
  append_tfrecord(frame, encode_scalar_event(r.wall_time, r.step, std::string_view(r.tag, r.tag_len),
                                             r.sample ? float(r.sample()) : r.value));
  write_bytes(file, frame);
}

void EventWriter::write_bytes(File& file, const std::string& bytes) {
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file.f) == bytes.size()) return;
  // A full disk must not stop the training: say so once and write nothing more to this file.
  std::fprintf(stderr, "loom: warning: cannot write the TensorBoard event file %s: %s; no more events go to it\n",
               file.path.c_str(), std::strerror(errno));
  file.failed = true;
}

void EventWriter::close_files() {
  for (File& f : files_)
    if (f.f) {
      std::fclose(f.f);
      f.f = nullptr;
    }
}

}  // namespace loom
