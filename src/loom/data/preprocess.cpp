#include "loom/data/preprocess.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "loom/core/error.h"
#include "loom/data/indexed_dataset.h"
#include "loom/data/jsonl_line.h"
#include "loom/util/progress.h"

namespace loom::data {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One batch of whole input lines and what the workers made of it.
struct Job {
  int64_t first_line = 1;  // 1-based number of the first line in `data`
  std::string data;
  struct KeyOutput {
    std::vector<int32_t> ids;        // the documents' ids back to back
    std::vector<uint32_t> lengths;   // per written document
    int64_t empty = 0;               // documents skipped for having no tokens
  };
  std::vector<KeyOutput> keys;
  std::vector<std::pair<int64_t, std::string>> bad;  // (line number, reason)
  int64_t lines = 0;
  std::exception_ptr error;
  bool done = false;
};

// A printable, bounded version of a JSON parser message.
std::string clean_message(std::string m) {
  if (m.rfind("[json.exception.", 0) == 0) {
    auto close = m.find("] ");
    if (close != std::string::npos) m = m.substr(close + 2);
  }
  auto last = m.find("; last read: ");
  if (last != std::string::npos && m.size() - last > 60) m = m.substr(0, last + 50) + "...'";
  std::string out;
  for (unsigned char c : m) {
    if (c < 0x20 || c >= 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

void process(Job& job, const PreprocessConfig& cfg, const Tokenizer& tok) {
  job.keys.assign(cfg.json_keys.size(), Job::KeyOutput{});
  const std::string_view data(job.data);
  int64_t line_no = job.first_line;
  JsonlFields fields;                   // a line of string values, read in place (jsonl_line.h)
  std::vector<std::string_view> texts;  // the values of cfg.json_keys, in the line or in `doc`
  for (size_t pos = 0; pos < data.size(); line_no++) {
    const size_t nl = data.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? data.size() : nl;
    const std::string_view line = data.substr(pos, end - pos);
    pos = end + 1;
    job.lines++;
    auto bad = [&](std::string reason) {
      job.bad.emplace_back(line_no, std::move(reason));
      return !cfg.skip_bad_lines;  // true: stop, the run fails on this line
    };
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      if (bad("malformed JSON (empty line)")) return;
      continue;
    }
    // Check every key before tokenising any, so a skipped line contributes to no output.
    std::string problem;
    texts.clear();
    nlohmann::json doc;
    if (read_string_object(line, fields)) {
      for (const auto& key : cfg.json_keys) {
        const std::string_view* v = fields.find(key);
        if (!v) {
          problem = "missing key '" + key + "'";
          break;
        }
        texts.push_back(*v);
      }
    } else {
      try {
        doc = nlohmann::json::parse(line.begin(), line.end());
      } catch (const nlohmann::json::exception& e) {
        if (bad("malformed JSON (" + clean_message(e.what()) + ")")) return;
        continue;
      }
      if (!doc.is_object()) {
        if (bad(std::string("malformed JSON (expected an object, found ") + doc.type_name() + ")")) return;
        continue;
      }
      for (const auto& key : cfg.json_keys) {
        auto it = doc.find(key);
        if (it == doc.end()) {
          problem = "missing key '" + key + "'";
          break;
        }
        if (!it->is_string()) {
          problem = "key '" + key + "' is not a string (found " + it->type_name() + ")";
          break;
        }
        texts.push_back(it->get_ref<const std::string&>());
      }
    }
    if (!problem.empty()) {
      if (bad(problem)) return;
      continue;
    }
    for (size_t k = 0; k < cfg.json_keys.size(); k++) {
      auto& out = job.keys[k];
      const size_t before = out.ids.size();
      tok.encode(texts[k], out.ids);
      const size_t n = out.ids.size() - before;
      if (n == 0) {
        out.empty++;  // Megatron: no sentence ids -> no EOD and no document
        continue;
      }
      if (cfg.append_eod) out.ids.push_back(tok.eod());
      out.lengths.push_back(uint32_t(out.ids.size() - before));
    }
  }
}

// Worker threads taking jobs in submission order.
class Pool {
 public:
  Pool(int n, std::function<void(Job&)> fn) : fn_(std::move(fn)) {
    for (int i = 0; i < n; i++) threads_.emplace_back([this] { run(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    work_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void submit(std::shared_ptr<Job> job) {
    {
      std::lock_guard<std::mutex> lock(m_);
      queue_.push_back(std::move(job));
    }
    work_.notify_one();
  }
  void wait(const Job& job) {
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [&] { return job.done; });
  }

 private:
  void run() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(m_);
        work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      try {
        fn_(*job);
      } catch (...) {
        job->error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(m_);
        job->done = true;
      }
      done_.notify_all();
    }
  }
  std::function<void(Job&)> fn_;
  std::mutex m_;
  std::condition_variable work_, done_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// Reads whole lines in batches of about `chunk` bytes.
class LineReader {
 public:
  LineReader(std::FILE* f, std::string path, size_t chunk) : f_(f), path_(std::move(path)), chunk_(chunk) {}
  bool next(std::string& out) {
    out.clear();
    out.swap(carry_);
    for (;;) {
      const size_t old = out.size();
      out.resize(old + chunk_);
      const size_t got = std::fread(out.data() + old, 1, chunk_, f_);
      out.resize(old + got);
      if (got == 0) {
        if (std::ferror(f_)) fail("cannot read '" + path_ + "': " + std::strerror(errno));
        return !out.empty();  // the last line has no newline
      }
      const size_t nl = out.rfind('\n');
      if (nl != std::string::npos && nl >= old) {
        carry_.assign(out, nl + 1, std::string::npos);
        out.resize(nl + 1);
        return true;
      }
    }
  }

 private:
  std::FILE* f_;
  std::string path_;
  size_t chunk_;
  std::string carry_;
};

int64_t count_lines(const std::string& data) {
  int64_t n = 0;
  for (const char* p = data.data(); (p = static_cast<const char*>(std::memchr(p, '\n', size_t(data.data() + data.size() - p))));
       p++)
    n++;
  if (!data.empty() && data.back() != '\n') n++;
  return n;
}

}  // namespace

std::string preprocess_output_prefix(const std::string& output_prefix, const std::string& key) {
  return output_prefix + "_" + key + "_document";
}

namespace {

PreprocessResult run_preprocess(const PreprocessConfig& cfg, const Tokenizer* preloaded) {
  require(!cfg.input.empty(), "the following arguments are required: --input");
  require(!cfg.output_prefix.empty(), "the following arguments are required: --output-prefix");
  require(!cfg.json_keys.empty(), "--json-keys needs at least one key");
  require(cfg.workers >= 1 && cfg.workers <= 1024, "--workers must be between 1 and 1024");
  {
    std::set<std::string> seen;
    for (const auto& k : cfg.json_keys) require(seen.insert(k).second, "--json-keys lists '" + k + "' twice");
  }
  std::FILE* log = cfg.log;
  const auto startup = Clock::now();
  struct stat st {};
  if (::stat(cfg.input.c_str(), &st) != 0) fail("cannot open input '" + cfg.input + "': " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("input '" + cfg.input + "' is a directory, expected a JSONL file");
  if (log) std::fprintf(log, "Opening %s\n", cfg.input.c_str());
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(cfg.input.c_str(), "rb"), std::fclose);
  if (!in) fail("cannot open input '" + cfg.input + "': " + std::strerror(errno));

  std::unique_ptr<Tokenizer> loaded;
  const Tokenizer* tok = preloaded;
  if (!tok) {
    loaded = make_tokenizer(cfg.tokenizer);
    tok = loaded.get();
  }
  if (cfg.append_eod && tok->eod() < 0)
    fail("--append-eod: the " + tok->type() + " has no end-of-document token");
  const uint8_t dtype = best_fitting_dtype(tok->vocab_size());
  PreprocessResult result;
  std::vector<std::unique_ptr<IndexedDatasetWriter>> writers;
  for (const auto& key : cfg.json_keys) {
    PreprocessResult::Output o;
    o.key = key;
    o.prefix = preprocess_output_prefix(cfg.output_prefix, key);
    writers.push_back(std::make_unique<IndexedDatasetWriter>(o.prefix, dtype));
    result.outputs.push_back(o);
  }
  result.startup_seconds = seconds_since(startup);
  if (log) {
    std::fprintf(log, "Vocab size: %lld\n", static_cast<long long>(tok->vocab_size()));
    std::fprintf(log, "Output prefix: %s\n", cfg.output_prefix.c_str());
    std::fprintf(log, "Time to startup: %.3f s\n", result.startup_seconds);
    std::fflush(log);
  }

  const auto start = Clock::now();
  // Documents, MB/s and ETA on stderr for long runs (a bar on a terminal, lines otherwise).
  int64_t documents = 0;
  std::optional<Progress> progress;
  if (cfg.progress) progress.emplace("preprocess", uint64_t(st.st_size), "documents");
  {
    Pool pool(cfg.workers, [&](Job& job) { process(job, cfg, *tok); });
    // Batches of 1 MiB; a smaller file is read in one (a 1 MiB buffer per call is most of the work of
    // preprocessing a small file, as the fuzz target does a million times).
    const size_t chunk = S_ISREG(st.st_mode) ? std::clamp<size_t>(size_t(st.st_size) + 1, 4096, size_t(1) << 20)
                                             : size_t(1) << 20;
    LineReader reader(in.get(), cfg.input, chunk);
    std::deque<std::shared_ptr<Job>> inflight;
    const size_t max_inflight = size_t(2 * cfg.workers + 2);
    bool eof = false;
    int64_t next_line = 1;
    for (;;) {
      while (!eof && inflight.size() < max_inflight) {
        auto job = std::make_shared<Job>();
        job->first_line = next_line;
        if (!reader.next(job->data)) {
          eof = true;
          break;
        }
        next_line += count_lines(job->data);
        inflight.push_back(job);
        pool.submit(job);
      }
      if (inflight.empty()) break;
      const std::shared_ptr<Job> job = inflight.front();
      inflight.pop_front();
      pool.wait(*job);
      if (job->error) std::rethrow_exception(job->error);
      for (const auto& [line, reason] : job->bad) {
        const std::string where = cfg.input + ":" + std::to_string(line) + ": " + reason;
        if (!cfg.skip_bad_lines) fail(where + " (--skip-bad-lines leaves such lines out)");
        result.bad_lines++;
        if (result.bad_line_reasons.size() < 10) result.bad_line_reasons.push_back(where);
      }
      result.lines += job->lines;
      result.bytes += job->data.size();
      documents += job->lines - int64_t(job->bad.size());
      if (progress) progress->add(job->data.size(), uint64_t(job->lines - int64_t(job->bad.size())));
      for (size_t k = 0; k < writers.size(); k++) {
        const auto& out = job->keys[k];
        size_t offset = 0;
        for (uint32_t len : out.lengths) {
          writers[k]->add_item(out.ids.data() + offset, len);
          writers[k]->end_document();
          offset += len;
        }
        result.outputs[k].empty_documents += out.empty;
      }
      job->data.clear();
      job->keys.clear();
    }
  }
  for (auto& w : writers) w->close();  // all written before any appears under its final name
  for (size_t k = 0; k < writers.size(); k++) {
    writers[k]->finalize();
    result.outputs[k].documents = writers[k]->documents();
    result.outputs[k].tokens = writers[k]->tokens();
  }
  result.seconds = seconds_since(start);
  if (progress) progress->finish();
  if (log) {
    const double t = std::max(result.seconds, 1e-9);
    std::fprintf(log, "Processed %lld lines, %.2f MB in %.3f s (%.2f MB/s, %.0f docs/s) with %d worker%s\n",
                 static_cast<long long>(result.lines), double(result.bytes) / 1048576.0, result.seconds,
                 double(result.bytes) / t / 1048576.0, double(documents) / t, cfg.workers, cfg.workers == 1 ? "" : "s");
    if (result.bad_lines) {
      std::fprintf(log, "Skipped %lld bad line%s (--skip-bad-lines):\n", static_cast<long long>(result.bad_lines),
                   result.bad_lines == 1 ? "" : "s");
      for (const auto& r : result.bad_line_reasons) std::fprintf(log, "  %s\n", r.c_str());
      if (result.bad_lines > int64_t(result.bad_line_reasons.size())) std::fprintf(log, "  ...\n");
    }
    for (const auto& o : result.outputs) {
      std::fprintf(log, "Wrote %s.bin/.idx: %lld documents, %llu tokens (%s)\n", o.prefix.c_str(),
                   static_cast<long long>(o.documents), static_cast<unsigned long long>(o.tokens),
                   dtype == kDtypeUint16 ? "uint16" : "int32");
      if (o.empty_documents)
        std::fprintf(log, "  left out %lld empty document%s of key '%s' (no tokens, as Megatron does)\n",
                     static_cast<long long>(o.empty_documents), o.empty_documents == 1 ? "" : "s", o.key.c_str());
    }
    std::fflush(log);
  }
  return result;
}

}  // namespace

PreprocessResult preprocess(const PreprocessConfig& cfg) { return run_preprocess(cfg, nullptr); }

PreprocessResult preprocess(const PreprocessConfig& cfg, const Tokenizer& tokenizer) {
  return run_preprocess(cfg, &tokenizer);
}

}  // namespace loom::data
