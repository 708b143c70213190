#include "loom/report/read_log.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "loom/core/error.h"
#include "loom/report/log_parsers.h"

namespace loom::report {

namespace {

// Fills the values `from` has and `into` lacks (DeepSpeed's engine lines under Megatron's iteration lines).
void merge_missing(RunTable& into, const RunTable& from) {
  for (const auto& [it, values] : from.rows())
    for (const auto& c : from.columns())
      if (auto v = values.find(c); v != values.end()) into.set_if_absent(it, c, v->second.text);
}

}  // namespace

RunTable read_log(const std::string& path) {
  // gzread passes plain files through unchanged, so one reader serves both.
  std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  if (!f) fail(path + ": cannot open: " + std::strerror(errno ? errno : EIO));
  // 1 MiB reads for large logs; a small one needs no more than its size (zlib allocates the buffer and twice it
  // for output whatever the file holds, which was most of the work of reading a short log).
  struct stat st {};
  const size_t file_bytes = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) ? size_t(st.st_size) : size_t(1) << 20;
  gzbuffer(f.get(), unsigned(std::clamp<size_t>(file_bytes, 8192, size_t(1) << 20)));
  MegatronParser megatron;
  DeepSpeedParser deepspeed;
  EvaClipParser eva;
  PipelineSplitterParser splitter;
  LogParser* parsers[] = {&eva, &splitter, &megatron, &deepspeed};
  std::string line;
  char buf[1 << 16];
  for (;;) {
    const char* got = gzgets(f.get(), buf, sizeof buf);
    if (got) line += buf;
    const bool complete = !got || (!line.empty() && line.back() == '\n');
    if (!complete) continue;
    if (!line.empty() && line.back() == '\n') line.pop_back();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty())
      for (LogParser* p : parsers)
        if (p->line(line)) break;
    line.clear();
    if (!got) break;
  }
  int err = Z_OK;
  const char* msg = gzerror(f.get(), &err);
  if (err != Z_OK && err != Z_STREAM_END) fail(path + ": cannot read: " + (err == Z_ERRNO ? std::strerror(errno) : msg));

  RunTable out;
  if (eva.matched() && !eva.table().rows().empty()) {
    out = eva.table();
    out.format = "eva-clip";
  } else if (splitter.matched()) {
    out = splitter.table();
    out.format = "pipeline-splitter";
  } else if (megatron.matched() && megatron.saw_loom_fields()) {
    out = megatron.table();
    out.format = "loom";
  } else if (deepspeed.matched()) {
    out = megatron.table();
    merge_missing(out, deepspeed.table());
    out.format = "deepspeed";
  } else if (megatron.matched() && !megatron.table().rows().empty()) {
    out = megatron.table();
    out.format = "megatron";
  }
  if (out.rows().empty()) fail(path + ": not a Megatron, DeepSpeed, EVA-CLIP, pipeline-splitter or Loom log");
  out.path = path;
  return out;
}

}  // namespace loom::report
