#pragma once
// TensorFlow's Event and Summary messages (tensorflow/core/util/event.proto, framework/summary.proto) as
// protobuf wire bytes, for the scalar event files TensorBoard reads. Written directly rather than through
// libprotobuf: Debian's libsentencepiece carries its own protobuf-lite 3.14, and linking the system's
// 3.21 beside it aborts every SentencePiece load ("compiled against version 3.14.0 ... installed version
// 3.21.12"). The bytes are libprotobuf's for the same message: fields in number order, proto3 defaults
// (step 0, an empty tag) left out, oneof members (file_version, summary, simple_value) always written.
#include <cstdint>
#include <string>
#include <string_view>

namespace loom {

// Event{wall_time = 1 (double), file_version = 3 (string)}: the first record of every event file.
std::string encode_file_version_event(double wall_time, std::string_view version);
// Event{wall_time = 1, step = 2 (int64), summary = 5 {value = 1 {tag = 1, simple_value = 2 (float)}}}.
std::string encode_scalar_event(double wall_time, int64_t step, std::string_view tag, float value);

}  // namespace loom
