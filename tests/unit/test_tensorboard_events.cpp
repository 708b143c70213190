// CRC-32C against published vectors (RFC 3720 B.4 and the common "123456789" check value), TFRecord
// framing against bytes computed with Debian's python3-crcmod, and the event writer's queue: order,
// back-pressure through a one-record queue, flush, long tags, a directory that is a file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/train/tensorboard_log.h"
#include "loom/util/crc32c.h"
#include "loom/util/event_writer.h"
#include "loom/util/tfrecord.h"
#include "tensorboard_event.pb.h"

namespace loom {
namespace {

std::string bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(char(b));
  return s;
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  std::string zeros(32, '\0'), ones(32, '\xff'), up, down;
  for (int i = 0; i < 32; i++) up.push_back(char(i)), down.push_back(char(31 - i));
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down), 0x113FDB5Cu);
  std::string ramp;
  for (int r = 0; r < 5; r++)
    for (int i = 0; i < 256; i++) ramp.push_back(char(i));
  EXPECT_EQ(crc32c(ramp), 0x23B62C98u);  // python3-crcmod crc-32c
}

TEST(Crc32c, PortableAndHardwareAgreeAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string buf(1100, '\0');
  for (auto& c : buf) c = char(rng());
  for (size_t off = 0; off < 8; off++)
    for (size_t n = 0; n + off <= buf.size(); n += (n < 64 ? 1 : 37)) {
      const uint32_t p = crc32c_portable(buf.data() + off, n);
      ASSERT_EQ(p, crc32c(buf.data() + off, n)) << off << " " << n;
      if (crc32c_has_hardware()) {
        ASSERT_EQ(p, crc32c_hardware(buf.data() + off, n)) << off << " " << n;
      }
    }
  // Continuing a CRC over a second piece equals the CRC of the whole.
  EXPECT_EQ(crc32c(buf.data() + 300, 800, crc32c(buf.data(), 300)), crc32c(buf.data(), 1100));
}

TEST(TfRecord, FramingBytes) {
  // Expected bytes from python3-crcmod: length, masked CRC of the length, data, masked CRC of the data.
  std::string out;
  append_tfrecord(out, "hello");
  EXPECT_EQ(out, bytes({0x05, 0, 0, 0, 0, 0, 0, 0, 0xea, 0xb2, 0x04, 0x3e, 'h', 'e', 'l', 'l', 'o', 0xbb, 0x1f, 0x1c, 0x19}));
  EXPECT_EQ(mask_crc32c(crc32c(std::string(8, '\0'))), 0x07980329u);
}

// Reads back every record of an event file, checking both CRCs.
std::vector<tensorboard::Event> read_events(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), {});
  std::vector<tensorboard::Event> out;
  size_t p = 0;
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | uint8_t(s[at + size_t(i)]);
    return v;
  };
  while (p < s.size()) {
    EXPECT_LE(p + 12, s.size());
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | uint8_t(s[p + size_t(i)]);
    EXPECT_EQ(u32(p + 8), mask_crc32c(crc32c(s.data() + p, 8)));
    EXPECT_LE(p + 16 + n, s.size());
    const std::string data = s.substr(p + 12, n);
    EXPECT_EQ(u32(p + 12 + n), mask_crc32c(crc32c(data)));
    tensorboard::Event e;
    EXPECT_TRUE(e.ParseFromString(data));
    out.push_back(e);
    p += 16 + n;
  }
  return out;
}

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}

TEST(EventWriter, WritesEveryScalarInOrderThroughAOneRecordQueue) {
  const std::string dir = temp_dir("loom-events");
  std::string path;
  {
    EventWriter w(1);  // every add_scalar after the first waits for the writer thread
    const int f = w.open(dir + "/sub");
    path = w.path(f);
    for (int i = 0; i < 500; i++) w.add_scalar(f, "lm loss", 10.0 - i * 0.01, i, i % 2 ? " vs samples" : "");
    w.add_scalar(f, "zero", 0.0, 500);
  }
  const std::string name = std::filesystem::path(path).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  const auto ev = read_events(path);
  ASSERT_EQ(ev.size(), 502u);
  EXPECT_EQ(ev[0].file_version(), "brain.Event:2");
  for (int i = 0; i < 500; i++) {
    const auto& e = ev[size_t(i) + 1];
    ASSERT_TRUE(e.has_summary());
    ASSERT_EQ(e.summary().value_size(), 1);
    EXPECT_EQ(e.step(), i);
    EXPECT_EQ(e.summary().value(0).tag(), i % 2 ? "lm loss vs samples" : "lm loss");
    EXPECT_EQ(e.summary().value(0).simple_value(), float(10.0 - i * 0.01));
    EXPECT_GE(e.wall_time(), ev[size_t(i)].wall_time());
  }
  // 0.0 is written (a oneof member has presence), so readers see a scalar.
  EXPECT_TRUE(ev[501].summary().value(0).has_simple_value());
  std::filesystem::remove_all(dir);
}

TEST(EventWriter, FlushMakesQueuedScalarsReadable) {
  const std::string dir = temp_dir("loom-events-flush");
  EventWriter w(1000);
  const int f = w.open(dir);
  w.add_scalar(f, "a", 1.5, 3);
  w.add_sampled(f, "sampled", [] { return 2.25; }, 4);  // evaluated by the writer thread
  w.flush();
  const auto ev = read_events(w.path(f));
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[1].summary().value(0).tag(), "a");
  EXPECT_EQ(ev[1].summary().value(0).simple_value(), 1.5f);
  EXPECT_EQ(ev[2].summary().value(0).tag(), "sampled");
  EXPECT_EQ(ev[2].step(), 4);
  EXPECT_EQ(ev[2].summary().value(0).simple_value(), 2.25f);
  EXPECT_THROW(w.add_scalar(f, std::string(EventWriter::kMaxTag, 'x'), 1, 0, "y"), std::invalid_argument);
  std::filesystem::remove_all(dir);
}

TEST(EventWriter, RefusesADirectoryThatIsAFile) {
  const std::string file = temp_dir("loom-events-file");
  std::ofstream(file) << "x";
  EventWriter w(4);
  EXPECT_THROW(w.open(file), UserError);
  std::filesystem::remove(file);
}

TEST(RunTensorBoard, OnlyTheLastRankWritesAndFurtherScalarsFollowTheInterval) {
  const std::string dir = temp_dir("loom-run-tb");
  TensorBoardArgs a;
  a.dir = dir;
  a.log_interval = 2;
  { RunTensorBoard other(a, 0, 2); }  // rank 0 of 2: checks the directory, writes nothing
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  {
    RunTensorBoard last(a, 1, 2);
    for (int it = 1; it <= 4; it++) last.training_scalar("params-norm", 10.0 + it, it, 8 * it);
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path().string());
  ASSERT_EQ(files.size(), 1u);
  const auto ev = read_events(files[0]);
  ASSERT_EQ(ev.size(), 5u);
  const std::vector<std::pair<std::string, int64_t>> want = {
      {"params-norm", 2}, {"params-norm vs samples", 16}, {"params-norm", 4}, {"params-norm vs samples", 32}};
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(ev[i + 1].summary().value(0).tag(), want[i].first);
    EXPECT_EQ(ev[i + 1].step(), want[i].second);
    EXPECT_EQ(ev[i + 1].summary().value(0).simple_value(), float(10 + (i < 2 ? 2 : 4)));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace loom
