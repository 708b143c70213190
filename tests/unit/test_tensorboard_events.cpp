// CRC-32C against published vectors (RFC 3720 B.4 and the common "123456789" check value), TFRecord
// framing against bytes computed with Debian's python3-crcmod, and the event writer's queue: order,
// back-pressure through a one-record queue, flush, long tags, a directory that is a file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "loom/core/error.h"
#include "loom/train/tensorboard_log.h"
#include "loom/util/crc32c.h"
#include "loom/util/event_proto.h"
#include "loom/util/event_writer.h"
#include "loom/util/tfrecord.h"

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

// An Event as a reader sees it, decoded from the wire by this test's own protobuf reader (keys, varints,
// fixed and length-delimited fields by TensorFlow's field numbers; unknown fields are an error).
struct DecodedEvent {
  double wall = 0;
  int64_t step_ = 0;
  std::string version;
  bool summary_ = false;
  struct Value {
    std::string tag_;
    float value = 0;
    bool has_value = false;
    const std::string& tag() const { return tag_; }
    float simple_value() const { return value; }
    bool has_simple_value() const { return has_value; }
  };
  struct Summary {
    std::vector<Value> values;
    int value_size() const { return int(values.size()); }
    const Value& value(int i) const { return values.at(size_t(i)); }
  } sum;
  double wall_time() const { return wall; }
  int64_t step() const { return step_; }
  const std::string& file_version() const { return version; }
  bool has_summary() const { return summary_; }
  const Summary& summary() const { return sum; }
};

struct WireReader {
  std::string_view s;
  size_t p = 0;
  bool done() const { return p >= s.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      EXPECT_LT(p, s.size());
      if (p >= s.size()) return v;
      const uint8_t b = uint8_t(s[p++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ADD_FAILURE() << "varint longer than 10 bytes";
    return v;
  }
  template <class T>
  T fixed() {
    T v{};
    EXPECT_LE(p + sizeof(T), s.size());
    if (p + sizeof(T) <= s.size()) std::memcpy(&v, s.data() + p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  std::string_view bytes() {
    const size_t n = size_t(varint());
    EXPECT_LE(p + n, s.size());
    const std::string_view b = s.substr(p, n);
    p += n;
    return b;
  }
};

DecodedEvent decode_event(std::string_view data) {
  DecodedEvent e;
  WireReader r{data};
  while (!r.done()) {
    const uint64_t key = r.varint();
    switch (key) {
      case 1 << 3 | 1: e.wall = r.fixed<double>(); break;
      case 2 << 3 | 0: e.step_ = int64_t(r.varint()); break;
      case 3 << 3 | 2: e.version = std::string(r.bytes()); break;
      case 5 << 3 | 2: {
        e.summary_ = true;
        WireReader sr{r.bytes()};
        while (!sr.done()) {
          EXPECT_EQ(sr.varint(), uint64_t(1 << 3 | 2)) << "Summary.value";
          WireReader vr{sr.bytes()};
          DecodedEvent::Value v;
          while (!vr.done()) {
            const uint64_t k = vr.varint();
            if (k == (1 << 3 | 2)) {
              v.tag_ = std::string(vr.bytes());
            } else if (k == (2 << 3 | 5)) {
              v.value = vr.fixed<float>();
              v.has_value = true;
            } else {
              ADD_FAILURE() << "unexpected Summary.Value key " << k;
              return e;
            }
          }
          e.sum.values.push_back(v);
        }
        break;
      }
      default: ADD_FAILURE() << "unexpected Event key " << key; return e;
    }
  }
  return e;
}

// Reads back every record of an event file, checking both CRCs.
std::vector<DecodedEvent> read_events(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), {});
  std::vector<DecodedEvent> out;
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
    out.push_back(decode_event(data));
    p += 16 + n;
  }
  return out;
}

// The exact bytes libprotobuf writes for these messages (protoc --encode on TensorFlow's field numbers):
// wall_time 1.5 (key 0x09, fixed64), step 3 (0x10, varint), summary (0x2a) { value (0x0a) { tag "a" (0x0a),
// simple_value 2.0f (0x15, fixed32) } }; the file-version event: wall_time, then file_version (0x1a).
TEST(EventProto, BytesAreProtobufsWireFormat) {
  EXPECT_EQ(encode_scalar_event(1.5, 3, "a", 2.0f),
            bytes({0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x10, 0x03, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, 'a', 0x15, 0, 0,
                   0, 0x40}));
  // Step 0 and an empty tag are proto3 defaults (left out); a oneof's 0.0f is written.
  EXPECT_EQ(encode_scalar_event(1.5, 0, "", 0.0f),
            bytes({0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x2a, 0x07, 0x0a, 0x05, 0x15, 0, 0, 0, 0}));
  // A negative step is a ten-byte varint; a step >= 2^7 takes more than one byte.
  EXPECT_EQ(encode_scalar_event(0.0, 300, "t", 1.0f),
            bytes({0x10, 0xac, 0x02, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, 't', 0x15, 0, 0, 0x80, 0x3f}));
  EXPECT_EQ(encode_scalar_event(0.0, -1, "t", 1.0f).substr(0, 11),
            bytes({0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
  EXPECT_EQ(encode_file_version_event(1.5, "brain.Event:2"),
            bytes({0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, 0x1a, 0x0d, 'b', 'r', 'a', 'i', 'n', '.', 'E', 'v', 'e', 'n', 't',
                   ':', '2'}));
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
