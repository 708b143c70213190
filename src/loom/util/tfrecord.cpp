#include "loom/util/tfrecord.h"

#include <cstdint>

#include "loom/util/crc32c.h"

namespace loom {

namespace {

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out.push_back(char((v >> (8 * i)) & 0xff));
}

}  // namespace

void append_tfrecord(std::string& out, std::string_view data) {
  const size_t header = out.size();
  put_le(out, data.size(), 8);
  put_le(out, mask_crc32c(crc32c(out.data() + header, 8)), 4);
  out.append(data);
  put_le(out, mask_crc32c(crc32c(data)), 4);
}

}  // namespace loom
