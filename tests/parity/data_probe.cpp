// Test driver for the data pipeline (tokenizer, indexed dataset, GPT dataset). Used by
// tests/parity/test_tokenizer_reference.py and test_indexed_dataset.py; not installed.
// Errors print `loom: error: ...` and exit 2, like the `loom` command.
//
//   data_probe tokenize-jsonl <vocab> <merges> <in.jsonl> <key> <out.bin>
//       per line: int32 count, then the int32 ids of the line's JSON string <key>
//   data_probe tokenize-b64 <vocab> <merges> <in.json> <out.json>
//       in: JSON array of base64 byte strings; out: {"ids": [[...]...], "decoded": [base64...]}
//   data_probe split-b64 <vocab> <merges> <in.json> <out.bin>
//       the pre-tokenisation only: per sample int32 count, then the byte length of every piece
//   data_probe read-indexed <prefix> <out.json>
//       {"dtype", "sizes", "pointers", "doc_idx", "tokens": [[...] per sequence], "total_tokens"}
//   data_probe gpt-build <config.json> <out.json>
//       config: {"data_path": [...], "split", "seq_length", "seed", "train_samples", "valid_samples",
//       "test_samples", "cache_dir", "quiet", "dump": [sample indices, or -1 for all]}; out: per split
//       null or {"size", "samples": {index: [ids]}}; the Megatron log goes to stdout
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/data/gpt2_tokenizer.h"
#include "loom/data/gpt_data.h"
#include "loom/data/indexed_dataset.h"
#include "loom/data/tokenizer.h"

#include "probe_io.h"

namespace {

using loom::fail;

using loom::probe::b64_decode;
using loom::probe::b64_encode;
using loom::probe::slurp;
using loom::probe::spit;

std::unique_ptr<loom::data::Tokenizer> tokenizer(const std::string& vocab, const std::string& merges) {
  loom::data::TokenizerConfig c;
  c.vocab_file = vocab;
  c.merge_file = merges;
  return loom::data::make_tokenizer(c);
}

int tokenize_jsonl(const std::vector<std::string>& a) {
  if (a.size() != 5) fail("usage: tokenize-jsonl <vocab> <merges> <in.jsonl> <key> <out.bin>");
  auto tok = tokenizer(a[0], a[1]);
  std::ifstream in(a[2], std::ios::binary);
  if (!in) fail("cannot open '" + a[2] + "'");
  std::string line, out;
  std::vector<int32_t> ids;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    ids.clear();
    tok->encode(j.at(a[3]).get<std::string>(), ids);
    int32_t n = int32_t(ids.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    out.append(reinterpret_cast<const char*>(ids.data()), ids.size() * 4);
  }
  spit(a[4], out);
  return 0;
}

int tokenize_b64(const std::vector<std::string>& a) {
  if (a.size() != 4) fail("usage: tokenize-b64 <vocab> <merges> <in.json> <out.json>");
  auto tok = tokenizer(a[0], a[1]);
  auto samples = nlohmann::json::parse(slurp(a[2]));
  nlohmann::json ids = nlohmann::json::array(), decoded = nlohmann::json::array();
  for (auto& s : samples) {
    auto v = tok->encode(b64_decode(s.get<std::string>()));
    ids.push_back(v);
    decoded.push_back(b64_encode(tok->decode(v)));
  }
  spit(a[3], nlohmann::json{{"ids", ids}, {"decoded", decoded}}.dump());
  return 0;
}

int split_b64(const std::vector<std::string>& a) {
  if (a.size() != 4) fail("usage: split-b64 <vocab> <merges> <in.json> <out.bin>");
  auto tok = loom::data::Gpt2BpeTokenizer::load(a[0], a[1]);
  auto samples = nlohmann::json::parse(slurp(a[2]));
  std::string out;
  std::vector<std::pair<size_t, size_t>> pieces;
  for (auto& s : samples) {
    pieces.clear();
    tok->split(loom::data::repair_utf8(b64_decode(s.get<std::string>())), pieces);
    std::vector<int32_t> lengths{int32_t(pieces.size())};
    for (auto& p : pieces) lengths.push_back(int32_t(p.second));
    out.append(reinterpret_cast<const char*>(lengths.data()), 4 * lengths.size());
  }
  spit(a[3], out);
  return 0;
}

int read_indexed(const std::vector<std::string>& a) {
  if (a.size() != 2) fail("usage: read-indexed <prefix> <out.json>");
  loom::data::IndexedDataset ds(a[0]);
  nlohmann::json sizes = nlohmann::json::array(), pointers = nlohmann::json::array(), doc_idx = nlohmann::json::array(),
                 tokens = nlohmann::json::array();
  std::vector<int32_t> buf;
  for (int64_t i = 0; i < ds.size(); i++) {
    sizes.push_back(ds.sequence_length(i));
    pointers.push_back(ds.pointer(i));
    buf.resize(size_t(ds.sequence_length(i)));
    ds.get(i, 0, ds.sequence_length(i), buf.data());
    tokens.push_back(buf);
  }
  for (int64_t i = 0; i < ds.doc_count(); i++) doc_idx.push_back(ds.doc_index(i));
  spit(a[1], nlohmann::json{{"dtype", ds.dtype()}, {"sizes", sizes}, {"pointers", pointers}, {"doc_idx", doc_idx},
                            {"tokens", tokens}, {"total_tokens", ds.total_tokens()}}
                 .dump());
  return 0;
}

int gpt_build(const std::vector<std::string>& a) {
  if (a.size() != 2) fail("usage: gpt-build <config.json> <out.json>");
  auto j = nlohmann::json::parse(slurp(a[0]));
  loom::data::GptDataConfig c;
  c.data_path = j.at("data_path").get<std::vector<std::string>>();
  c.split = j.value("split", c.split);
  c.seq_length = j.value("seq_length", c.seq_length);
  c.seed = j.value("seed", c.seed);
  c.train_samples = j.value("train_samples", int64_t(0));
  c.valid_samples = j.value("valid_samples", int64_t(0));
  c.test_samples = j.value("test_samples", int64_t(0));
  c.cache_dir = j.value("cache_dir", std::string());
  c.quiet = j.value("quiet", false);
  const auto dump = j.value("dump", std::vector<int64_t>{-1});
  auto ds = loom::data::build_gpt_datasets(c);
  nlohmann::json out;
  const std::pair<const char*, loom::data::SampleSource*> splits[] = {
      {"train", ds.train.get()}, {"valid", ds.valid.get()}, {"test", ds.test.get()}};
  std::vector<int32_t> buf(size_t(c.seq_length) + 1);
  for (auto [name, src] : splits) {
    if (!src) {
      out[name] = nullptr;
      continue;
    }
    nlohmann::json samples = nlohmann::json::object();
    std::vector<int64_t> which = dump;
    if (which.size() == 1 && which[0] == -1) {
      which.clear();
      for (int64_t i = 0; i < src->size(); i++) which.push_back(i);
    }
    for (int64_t i : which) {
      if (i >= src->size()) continue;
      src->get(i, buf.data());
      samples[std::to_string(i)] = buf;
    }
    out[name] = {{"size", src->size()}, {"samples", samples}};
  }
  spit(a[1], out.dump());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::map<std::string, std::function<int(const std::vector<std::string>&)>> commands = {
      {"tokenize-jsonl", tokenize_jsonl},
      {"tokenize-b64", tokenize_b64},
      {"split-b64", split_b64},
      {"read-indexed", read_indexed},
      {"gpt-build", gpt_build},
  };
  if (argc < 2 || !commands.count(argv[1])) {
    std::fprintf(stderr, "usage: data_probe <command> ...; commands:");
    for (auto& [name, _] : commands) std::fprintf(stderr, " %s", name.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  try {
    return commands.at(argv[1])(std::vector<std::string>(argv + 2, argv + argc));
  } catch (const loom::UserError& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom: error: internal: %s\n", e.what());
    return 1;
  }
}
