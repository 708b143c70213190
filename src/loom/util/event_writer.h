#pragma once
// TensorBoard event files written off the caller's thread. add_scalar copies a small fixed-size record
// into a bounded queue (allocated once, at construction) and returns; a writer thread turns the records
// into Event protobufs, frames them as TFRecords and appends them to their files, flushing whenever the
// queue runs dry. A full queue makes add_scalar wait, as the queue of PyTorch's SummaryWriter does: no
// event is dropped. The destructor writes what is queued and closes the files; so does a SIGTERM, SIGINT
// or SIGHUP that nothing else handles, after which the signal takes its default course.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace loom {

class EventWriter {
 public:
  static constexpr size_t kMaxTag = 127;  // longer tags are refused (std::invalid_argument)

  // `queue_size`: records that may wait for the writer thread (Megatron's --tensorboard-queue-size).
  explicit EventWriter(size_t queue_size);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Creates `dir` (and its parents) if missing and a new event file in it, named as TensorFlow names
  // them (events.out.tfevents.<unix time>.<hostname>.<pid>.<n>), whose first record is the
  // file_version event. Returns the file's id for add_scalar; throws UserError when it cannot.
  int open(const std::string& dir);
  const std::string& path(int file) const { return files_.at(size_t(file)).path; }

  // Queues the scalar `tag` + `suffix` = `value` at `step`, stamped with the current wall time.
  void add_scalar(int file, std::string_view tag, double value, int64_t step, std::string_view suffix = {});
  // Queues `tag` at `step` whose value `sample()` gives on the writer thread, for figures that cost a
  // system call to read (the resident set size) and so stay out of the training thread.
  void add_sampled(int file, std::string_view tag, double (*sample)(), int64_t step);
  // Blocks until everything queued so far is in the files (written and flushed).
  void flush();

 private:
  struct Record {
    int file;
    int64_t step;
    double wall_time;
    float value;
    double (*sample)();  // when set, the value is sample() at write time
    uint8_t tag_len;
    char tag[kMaxTag];
  };
  struct File {
    std::string path;
    std::FILE* f = nullptr;
    bool failed = false;
  };
  void push(const Record& r);  // waits while the queue is full
  void run();
  void write(const Record& r, std::string& frame);
  void write_bytes(File& file, const std::string& bytes);
  void close_files();

  std::vector<Record> queue_;  // ring buffer
  size_t head_ = 0, count_ = 0;
  uint64_t queued_ = 0, written_ = 0;  // records ever queued / ever written, for flush()
  bool stop_ = false;
  std::mutex mu_;
  std::condition_variable has_work_, has_room_, drained_;
  std::vector<File> files_;  // only the writer thread touches the FILEs once it runs
  std::thread thread_;
};

}  // namespace loom
