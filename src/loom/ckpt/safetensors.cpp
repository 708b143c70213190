#include "loom/ckpt/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <zlib.h>

#include "loom/core/error.h"
#include "loom/util/progress.h"

namespace loom {

namespace {

DType parse_dtype(const std::string& s, const std::string& path, const std::string& name) {
  if (s == "F32") return DType::F32;
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "U16") return DType::U16;
  fail(path + ": tensor '" + name + "' has unsupported dtype " + s);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail("cannot write " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("cannot write " + path + ": " + std::strerror(e));
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot write " + path + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot write " + path + ": " + std::strerror(errno));
  }
}

uint32_t crc32_of(const void* data, size_t bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef* p = static_cast<const Bytef*>(data);
  while (bytes > 0) {
    const uInt n = uInt(std::min<size_t>(bytes, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    bytes -= n;
  }
  return uint32_t(crc);
}

uint32_t file_crc32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open " + path + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 22);
  uLong crc = crc32(0L, Z_NULL, 0);
  f.seekg(0, std::ios::end);
  Progress progress("checking " + path, uint64_t(std::max<std::streamoff>(0, f.tellg())));
  f.seekg(0, std::ios::beg);
  while (f) {
    f.read(buf.data(), std::streamsize(buf.size()));
    if (f.gcount() > 0) crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), uInt(f.gcount()));
    progress.add(uint64_t(f.gcount()));
  }
  progress.finish();
  return uint32_t(crc);
}

uint32_t write_safetensors(const std::string& path, const std::vector<TensorEntry>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes}}};
    offset += t.bytes;
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::string head;
  uint64_t n = h.size();
  for (int i = 0; i < 8; i++) head += char((n >> (8 * i)) & 0xff);
  head += h;
  // Stream the tensors straight from their buffers (no copy of the payload), CRC as we go; then fsync
  // and rename, so the file appears only complete.
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail("cannot write " + path + ": " + std::strerror(errno));
  uLong crc = crc32(0L, Z_NULL, 0);
  std::optional<Progress> progress;  // only where the command asked (not training's background saves)
  if (report_file_writes()) progress.emplace("writing " + path, uint64_t(head.size() + offset));
  auto put = [&](const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const size_t chunk = std::min<size_t>(bytes, 1u << 26);
      crc = crc32(crc, reinterpret_cast<const Bytef*>(p), uInt(chunk));
      size_t done = 0;
      while (done < chunk) {
        ssize_t w = ::write(fd, p + done, chunk - done);
        if (w < 0) {
          if (errno == EINTR) continue;
          const int e = errno;
          ::close(fd);
          ::unlink(tmp.c_str());
          fail("cannot write " + path + ": " + std::strerror(e));
        }
        done += size_t(w);
      }
      p += chunk;
      bytes -= chunk;
      if (progress) progress->add(chunk);
    }
  };
  put(head.data(), head.size());
  for (const auto& t : tensors) put(t.data, t.bytes);
  if (progress) progress->finish();
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot write " + path + ": " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot write " + path + ": " + std::strerror(errno));
  }
  return uint32_t(crc);
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open " + path + ": " + std::strerror(errno));
  // In 4 MiB reads, with progress for large files (util/progress.h: silent when quick).
  f.seekg(0, std::ios::end);
  const auto size = f.tellg();
  f.seekg(0, std::ios::beg);
  if (size < 0) fail("cannot read " + path);
  bytes_.resize(size_t(size));
  Progress progress("reading " + path, uint64_t(size));
  for (size_t done = 0; done < bytes_.size();) {
    const size_t n = std::min<size_t>(bytes_.size() - done, size_t(1) << 22);
    if (!f.read(bytes_.data() + done, std::streamsize(n))) fail("cannot read " + path + ": " + std::strerror(errno));
    done += n;
    progress.add(n);
  }
  progress.finish();
  if (bytes_.size() < 8) fail(path + ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t(uint8_t(bytes_[i])) << (8 * i);
  if (n > bytes_.size() - 8) fail(path + ": truncated or not a safetensors file (header length " + std::to_string(n) + ")");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes_.begin() + 8, bytes_.begin() + 8 + long(n));
  } catch (const nlohmann::json::exception& e) {
    fail(path + ": malformed safetensors header: " + e.what());
  }
  if (!header.is_object()) fail(path + ": malformed safetensors header: not a JSON object");
  const size_t data_begin = 8 + n, data_size = bytes_.size() - data_begin;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail(path + ": malformed safetensors header: __metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m)
        if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    try {
      TensorEntry t;
      t.name = it.key();
      t.dtype = parse_dtype(it->at("dtype").get<std::string>(), path, t.name);
      t.shape = it->at("shape").get<std::vector<int64_t>>();
      auto off = it->at("data_offsets").get<std::vector<uint64_t>>();
      if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
        fail(path + ": tensor '" + t.name + "' lies outside the file (truncated?)");
      // The element count, saturated: any count whose bytes exceed the file cannot match its data (and
      // must not wrap around to a size that does).
      uint64_t numel = 1;
      const uint64_t too_many = uint64_t(data_size) + 1;
      for (auto d : t.shape)
        if (d < 0) fail(path + ": tensor '" + t.name + "' has a negative dimension");
      for (auto d : t.shape) numel = d == 0 ? 0 : numel > too_many / uint64_t(d) ? too_many : numel * uint64_t(d);
      if (numel >= too_many || numel * dtype_size(t.dtype) != off[1] - off[0])
        fail(path + ": tensor '" + t.name + "' byte length does not match its shape");
      t.data = bytes_.data() + data_begin + off[0];
      t.bytes = off[1] - off[0];
      tensors_.push_back(std::move(t));
    } catch (const nlohmann::json::exception& e) {
      fail(path + ": malformed entry '" + it.key() + "': " + e.what());
    }
  }
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorEntry& SafetensorsFile::get(const std::string& name) const {
  const TensorEntry* t = find(name);
  if (!t) fail(path_ + ": no tensor named '" + name + "'");
  return *t;
}

}  // namespace loom
