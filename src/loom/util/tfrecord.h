#pragma once
// TFRecord framing, the container of TensorFlow event files: per record
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
#include <string>
#include <string_view>

namespace loom {

// Appends one framed record holding `data` to `out`.
void append_tfrecord(std::string& out, std::string_view data);

}  // namespace loom
