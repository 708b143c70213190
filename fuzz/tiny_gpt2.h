#pragma once
// A small GPT-2 vocabulary cut from the bundled one (data/gpt2): the 256 byte tokens (ids 0..255, as in
// GPT-2), the results of the first `merges` merges, and <|endoftext|>. Loading the full 50k vocabulary
// for every input would make a target that loads a tokenizer per input (preprocess) far too slow.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_util.h"

namespace loom::fuzz {

struct Gpt2Files {
  std::string vocab_json, merges_txt;
};

inline Gpt2Files tiny_gpt2(int merges) {
  std::ifstream vf(source_file("data/gpt2/vocab.json")), mf(source_file("data/gpt2/merges.txt"));
  const nlohmann::json full = nlohmann::json::parse(vf);
  nlohmann::json vocab = nlohmann::json::object();
  for (auto it = full.begin(); it != full.end(); ++it)
    if (it.value().get<int>() < 256) vocab[it.key()] = it.value();
  std::string line, merges_txt;
  std::getline(mf, line);  // #version
  merges_txt = line + "\n";
  for (int i = 0; i < merges && std::getline(mf, line); i++) {
    const size_t sp = line.find(' ');
    const std::string joined = line.substr(0, sp) + line.substr(sp + 1);
    if (!vocab.contains(joined)) vocab[joined] = int(vocab.size());
    merges_txt += line + "\n";
  }
  vocab["<|endoftext|>"] = int(vocab.size());
  return {vocab.dump(), merges_txt};
}

}  // namespace loom::fuzz
