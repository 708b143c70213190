#include "loom/util/event_proto.h"

#include <cstring>

namespace loom {

namespace {

enum WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(uint8_t(v)));
}

void put_key(std::string& out, int field, WireType type) { put_varint(out, uint64_t(field) << 3 | type); }

template <class T>
void put_fixed(std::string& out, T v) {  // little-endian, as x86 stores it
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

void put_wall_time(std::string& out, double wall_time) {
  if (wall_time == 0.0) return;  // proto3 default
  put_key(out, 1, kFixed64);
  put_fixed(out, wall_time);
}

}  // namespace

std::string encode_file_version_event(double wall_time, std::string_view version) {
  std::string e;
  put_wall_time(e, wall_time);
  put_bytes(e, 3, version);
  return e;
}

std::string encode_scalar_event(double wall_time, int64_t step, std::string_view tag, float value) {
  std::string v;  // Summary.Value
  if (!tag.empty()) put_bytes(v, 1, tag);
  put_key(v, 2, kFixed32);
  put_fixed(v, value);
  std::string summary;
  put_bytes(summary, 1, v);
  std::string e;
  put_wall_time(e, wall_time);
  if (step != 0) {
    put_key(e, 2, kVarint);
    put_varint(e, uint64_t(step));  // negative int64: ten bytes of two's complement, as protobuf does
  }
  put_bytes(e, 5, summary);
  return e;
}

}  // namespace loom
