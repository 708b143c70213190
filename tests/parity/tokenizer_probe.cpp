// Test driver for the tokenizers behind make_tokenizer() (tests/parity/test_llama_tokenizers.py,
// bench/preprocess_llama_bench.sh); not installed. Errors print `loom: error: ...` and exit 2, like the
// `loom` command. Several modes may follow one another, separated by "::", to load the tokenizer once.
//
//   tokenizer_probe <type> <model file> info
//       {"type", "vocab_size", "eod", "bos"}
//   tokenizer_probe <type> <model file> tokenize-jsonl <in.jsonl> <key> <out.bin>
//       per line: int32 count, then the int32 ids of the line's JSON string <key>
//   tokenizer_probe <type> <model file> tokenize-b64 <in.json> <out.json>
//       in: JSON array of base64 byte strings; out: {"ids": [[...]...], "decoded": [base64...]}
//   tokenizer_probe <type> <model file> captions-b64 <in.json> <context> <out.json>
//       in: JSON array of base64 byte strings; out: JSON array of tokenize_caption() rows (<context> ids)
//   tokenizer_probe CLIPTokenizer <model file> clip-pieces-b64 <in.json> <out.json>
//       in: JSON array of base64 byte strings; out: per string, the pre-tokens of its cleaned text (UTF-8)
//   tokenizer_probe <type> <model file> long-run <megabytes> <letter>
//       encodes one run of <letter> (ASCII) without spaces; prints {"bytes", "tokens", "seconds",
//       "max_rss_mb", "first_ids"} (max_rss_mb: the process's peak resident memory)
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/data/clip_tokenizer.h"
#include "loom/data/tokenizer.h"

#include "probe_io.h"

namespace {

using loom::fail;

using loom::probe::b64_decode;
using loom::probe::b64_encode;
using loom::probe::slurp;
using loom::probe::spit;

void run_mode(const loom::data::Tokenizer* tok, const std::vector<std::string>& a) {
  const std::string& mode = a[2];
  if (mode == "info") {
    std::printf("%s\n", nlohmann::json{{"type", tok->type()}, {"vocab_size", tok->vocab_size()}, {"eod", tok->eod()},
                                       {"bos", tok->bos()}}
                            .dump()
                            .c_str());
  } else if (mode == "tokenize-jsonl" && a.size() == 6) {
    std::ifstream in(a[3], std::ios::binary);
    if (!in) fail("cannot open '" + a[3] + "'");
    std::string line, out;
    std::vector<int32_t> ids;
    while (std::getline(in, line)) {
      ids.clear();
      tok->encode(nlohmann::json::parse(line).at(a[4]).get<std::string>(), ids);
      const auto n = int32_t(ids.size());
      out.append(reinterpret_cast<const char*>(&n), 4);
      out.append(reinterpret_cast<const char*>(ids.data()), ids.size() * 4);
    }
    spit(a[5], out);
  } else if (mode == "tokenize-b64" && a.size() == 5) {
    auto samples = nlohmann::json::parse(slurp(a[3]));
    nlohmann::json ids = nlohmann::json::array(), decoded = nlohmann::json::array();
    for (auto& s : samples) {
      auto v = tok->encode(b64_decode(s.get<std::string>()));
      decoded.push_back(b64_encode(tok->decode(v)));
      ids.push_back(std::move(v));
    }
    spit(a[4], nlohmann::json{{"ids", ids}, {"decoded", decoded}}.dump());
  } else if (mode == "captions-b64" && a.size() == 6) {
    auto samples = nlohmann::json::parse(slurp(a[3]));
    const int context = std::stoi(a[4]);
    nlohmann::json rows = nlohmann::json::array();
    std::vector<int32_t> row(static_cast<size_t>(context)), scratch;
    for (auto& s : samples) {
      loom::data::tokenize_caption(*tok, b64_decode(s.get<std::string>()), row.data(), context, scratch);
      rows.push_back(row);
    }
    spit(a[5], rows.dump());
  } else if (mode == "clip-pieces-b64" && a.size() == 5) {
    const auto* clip = dynamic_cast<const loom::data::ClipTokenizer*>(tok);
    if (!clip) fail("clip-pieces-b64 needs a CLIPTokenizer");
    auto samples = nlohmann::json::parse(slurp(a[3]));
    nlohmann::json out = nlohmann::json::array();
    std::vector<std::string> pieces;
    for (auto& s : samples) {
      pieces.clear();
      clip->pretokenize(b64_decode(s.get<std::string>()), pieces);
      nlohmann::json row = nlohmann::json::array();
      for (const auto& p : pieces) row.push_back(p);
      out.push_back(std::move(row));
    }
    spit(a[4], out.dump());
  } else if (mode == "long-run" && a.size() == 5) {
    const std::string text(size_t(std::stod(a[3]) * 1e6), a[4].at(0));
    const auto start = std::chrono::steady_clock::now();
    const auto ids = tok->encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::vector<int32_t> first(ids.begin(), ids.begin() + long(std::min<size_t>(ids.size(), 8)));
    std::printf("%s\n", nlohmann::json{{"bytes", text.size()}, {"tokens", ids.size()}, {"seconds", seconds},
                                       {"max_rss_mb", double(ru.ru_maxrss) / 1024.0}, {"first_ids", first}}
                            .dump()
                            .c_str());
  } else {
    fail("unknown mode or wrong arguments: '" + mode + "' (see the comment at the top of tokenizer_probe.cpp)");
  }
}

int run(const std::vector<std::string>& a) {
  if (a.size() < 3) fail("usage: tokenizer_probe <type> <model file> info|tokenize-jsonl|tokenize-b64|long-run ...");
  loom::data::TokenizerConfig c;
  c.type = a[0];
  c.tokenizer_model = a[1];
  const auto tok = loom::data::make_tokenizer(c);
  std::vector<std::string> mode = {a[0], a[1]};
  for (size_t i = 2; i <= a.size(); i++) {
    if (i == a.size() || a[i] == "::") {
      if (mode.size() > 2) run_mode(tok.get(), mode);
      mode.resize(2);
    } else {
      mode.push_back(a[i]);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
