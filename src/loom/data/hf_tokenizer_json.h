#pragma once
// Reading a Hugging Face tokenizer.json for hf_tokenizer.cpp. model.vocab and model.merges are nearly
// all of such a file (Llama 3's: 128k entries and 280k merges in 6.6 MB), and a nlohmann DOM of them
// (a std::map node and strings per entry) cost most of the tokenizer's start-up. So those two are
// collected flat into one buffer, in file order, by nlohmann's SAX parser (the same lexer and the same
// parse_error messages as json::parse), and only the rest of the file becomes a DOM, with an empty {}
// and [] in their place.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace loom::data {

struct HfVocabMerges {
  bool vocab_taken = false;   // model.vocab was an object (collected below)
  bool merges_taken = false;  // model.merges was a list
  struct Entry {
    uint32_t off, len;  // the token's text in `text`
    int64_t id;         // -1: not an integer in [0, INT32_MAX)
  };
  struct Merge {
    uint32_t off, len;    // kind 0: the whole "a b" string; kind 1: a
    uint32_t off2, len2;  // kind 1: b
    int kind;             // 0 "a b", 1 ["a", "b"], 2 neither
  };
  std::vector<Entry> vocab;
  std::vector<Merge> merges;
  std::string text;

  std::string_view at(uint32_t off, uint32_t len) const { return std::string_view(text).substr(off, len); }
  uint32_t add(std::string_view s) {
    const auto off = uint32_t(text.size());
    text.append(s);
    return off;
  }
};

// The fast reading: `rest` gets the DOM of everything but model.vocab's entries and model.merges' items,
// which go to `out`. False when the file needs the whole DOM instead: a duplicate "model", "vocab" or
// "merges" key (the DOM keeps the last), or an entry of an unusual shape (a vocabulary id that is not a
// non-negative int32, a merge that is neither "a b" nor ["a", "b"]), whose error the DOM reading reports.
// Malformed JSON throws json::parse_error as json::parse does.
bool read_tokenizer_json(const std::string& file_text, nlohmann::json& rest, HfVocabMerges& out);

// The DOM reading: model.vocab and model.merges of a parsed file into `out`, in the DOM's order (vocab
// sorted by token).
void collect_vocab_merges(const nlohmann::json& root, HfVocabMerges& out);

}  // namespace loom::data
