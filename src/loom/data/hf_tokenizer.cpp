#include "loom/data/hf_tokenizer.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "loom/core/error.h"
#include "loom/data/byte_level.h"
#include "loom/data/byte_level_bpe.h"
#include "loom/data/files.h"
#include "loom/data/hf_tokenizer_json.h"
#include "loom/data/pretokenizer_regex.h"
#include "loom/data/string_id_map.h"

namespace loom::data {
namespace {

using nlohmann::json;

struct Loader {
  std::string path;
  ByteLevelBpeSpec spec;
  StringIdMap token_text_id;  // vocabulary symbols and added tokens -> id

  [[noreturn]] void bad(const std::string& what) const { fail("tokenizer file '" + path + "': " + what); }

  static std::string type_of(const json& j) {
    return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
  }

  // Ids are 0..n-1 over the file's entries, with at most a few holes: an id far beyond that is wrong before
  // it costs a table that large (a 1 kB file naming id 243,000,000 asked for 7.8 GB).
  static constexpr size_t kIdSlack = 65536;
  size_t id_limit = kIdSlack;  // entries (vocabulary + added tokens) + kIdSlack, set by load_model

  void ensure_id(int64_t id) {
    if (size_t(id) >= id_limit)
      bad("id " + std::to_string(id) + " is beyond the file's " + std::to_string(id_limit - kIdSlack) +
          " vocabulary entries and added tokens by more than " + std::to_string(kIdSlack) + " (ids must be 0..n-1)");
    if (size_t(id) >= spec.id_bytes.size()) {
      spec.id_bytes.resize(size_t(id) + 1);
      spec.id_known.resize(size_t(id) + 1, false);
    }
  }

  int32_t read_id(const json& v, const std::string& what) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= std::numeric_limits<int32_t>::max())
      bad("the id of " + what + " is not a non-negative integer");
    return int32_t(v.get<int64_t>());
  }

  void load_model(const json& root, const HfVocabMerges& vm) {
    if (!root.contains("model") || !root["model"].is_object()) bad("no \"model\" object (is this a tokenizer.json?)");
    const json& model = root["model"];
    const std::string type = type_of(model);
    if (!type.empty() && type != "BPE")
      bad("model type '" + type + "' is not supported (only byte-level \"BPE\")");
    if (!vm.vocab_taken || vm.vocab.empty()) bad("model.vocab is missing or not an object of token -> id");
    if (!vm.merges_taken) bad("model.merges is missing or not a list");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
        bad(std::string("model.") + key + " is not supported (byte-level BPE has none)");
    if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>())
      bad("model.byte_fallback is not supported (byte-level BPE needs none)");
    if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() != 0.0)
      bad("model.dropout is not supported (encoding must be deterministic)");
    spec.ignore_merges = model.contains("ignore_merges") && model["ignore_merges"].is_boolean() &&
                         model["ignore_merges"].get<bool>();

    id_limit = vm.vocab.size() + kIdSlack;
    if (root.contains("added_tokens") && root["added_tokens"].is_array()) id_limit += root["added_tokens"].size();
    spec.vocab.reserve(vm.vocab.size());  // start-up time: no rehashing of Llama 3's 128k entries
    token_text_id.reserve(vm.vocab.size() + 512);
    // A block at a time, prefetching both maps' slots first, as load_merges() does; errors in order.
    constexpr size_t kBlock = 32;
    struct Pending {
      std::string_view text;
      size_t bytes_off, bytes_len;
      uint64_t text_hash, bytes_hash;
    };
    std::array<Pending, kBlock> block;
    std::string bytes, block_bytes;
    for (size_t first = 0; first < vm.vocab.size(); first += kBlock) {
      const size_t count = std::min(kBlock, vm.vocab.size() - first);
      size_t ready = 0;  // the entries before a malformed one
      block_bytes.clear();
      for (; ready < count; ready++) {
        const HfVocabMerges::Entry& e = vm.vocab[first + ready];
        Pending& p = block[ready];
        p.text = vm.at(e.off, e.len);
        if (e.id < 0 || !byte_level_to_bytes(p.text, bytes) || bytes.empty()) break;
        p.bytes_off = block_bytes.size();
        p.bytes_len = bytes.size();
        block_bytes += bytes;
      }
      for (size_t i = 0; i < ready; i++) {
        Pending& p = block[i];
        p.text_hash = StringIdMap::hash(p.text);
        p.bytes_hash = StringIdMap::hash(std::string_view(block_bytes).substr(p.bytes_off, p.bytes_len));
        token_text_id.prefetch(p.text_hash);
        spec.vocab.prefetch(p.bytes_hash);
      }
      for (size_t i = 0; i < ready; i++) {
        const Pending& p = block[i];
        const auto id = int32_t(vm.vocab[first + i].id);
        const std::string_view b = std::string_view(block_bytes).substr(p.bytes_off, p.bytes_len);
        ensure_id(id);
        if (spec.id_known[size_t(id)])
          bad("id " + std::to_string(id) + " is given to two vocabulary entries (one is " + quoted_symbol(p.text) + ")");
        // A token listed twice reaches here only from the SAX reading, which then rereads the file as a DOM.
        if (!token_text_id.insert(p.text, id, p.text_hash))
          bad("vocabulary entry " + quoted_symbol(p.text) + " is listed twice");
        spec.id_known[size_t(id)] = true;
        spec.id_bytes[size_t(id)] = b;
        spec.vocab.insert(b, id, p.bytes_hash);
      }
      if (ready < count) {
        const std::string_view text = block[ready].text;
        if (vm.vocab[first + ready].id < 0)
          bad("the id of vocabulary entry " + quoted_symbol(text) + " is not a non-negative integer");
        bad("vocabulary entry " + quoted_symbol(text) + " is not a byte-level BPE symbol");
      }
    }
    for (int b = 0; b < 256; b++) {
      const char c = char(b);
      spec.byte_id[size_t(b)] = spec.vocab.find(std::string_view(&c, 1));
      if (spec.byte_id[size_t(b)] < 0)
        bad("the vocabulary has no entry for byte " + std::to_string(b) + " (a byte-level BPE has all 256)");
    }

    load_merges(vm);
  }

  // A merge's two tokens; false when it is neither "a b" (one space) nor ["a", "b"].
  static bool merge_parts(const HfVocabMerges& vm, const HfVocabMerges::Merge& m, std::string_view& a,
                          std::string_view& b) {
    if (m.kind == 1) {
      a = vm.at(m.off, m.len);
      b = vm.at(m.off2, m.len2);
      return true;
    }
    if (m.kind != 0) return false;
    const std::string_view s = vm.at(m.off, m.len);
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) return false;
    a = s.substr(0, space);
    b = s.substr(space + 1);
    return true;
  }

  // Merges a block at a time: the block's tokens are hashed and their slots prefetched, then looked up,
  // then the merge table's slots prefetched and filled. 280k merges so wait for memory a block at a time,
  // not one cache miss after the other (the cost of start-up). Errors come in rank order.
  void load_merges(const HfVocabMerges& vm) {
    constexpr size_t kBlock = 32;
    struct Pending {
      std::string_view a, b;
      size_t joined_off;
      uint64_t hash[3];
      int32_t ids[3];
    };
    std::array<Pending, kBlock> block;
    std::string joined;  // the block's a + b, one after the other
    spec.merges.init(vm.merges.size());
    for (size_t first = 0; first < vm.merges.size(); first += kBlock) {
      const size_t count = std::min(kBlock, vm.merges.size() - first);
      size_t ready = 0;  // the merges before a malformed one
      joined.clear();
      for (; ready < count; ready++) {
        Pending& p = block[ready];
        if (!merge_parts(vm, vm.merges[first + ready], p.a, p.b)) break;
        p.joined_off = joined.size();
        joined.append(p.a).append(p.b);
      }
      auto joined_of = [&](const Pending& p) {
        return std::string_view(joined).substr(p.joined_off, p.a.size() + p.b.size());
      };
      for (size_t i = 0; i < ready; i++) {
        Pending& p = block[i];
        const std::string_view parts[3] = {p.a, p.b, joined_of(p)};
        for (int k = 0; k < 3; k++) {
          p.hash[k] = StringIdMap::hash(parts[k]);
          token_text_id.prefetch(p.hash[k]);
        }
      }
      for (size_t i = 0; i < ready; i++) {
        Pending& p = block[i];
        const std::string_view parts[3] = {p.a, p.b, joined_of(p)};
        for (int k = 0; k < 3; k++) {  // token_text_id holds only model.vocab so far
          p.ids[k] = token_text_id.find(parts[k], p.hash[k]);
          if (p.ids[k] < 0)  // the message is built only here: 280k merges would pay for it
            bad("merge #" + std::to_string(first + i + 1) + " " +
                quoted_symbol(std::string(p.a) + " " + std::string(p.b)) + ": " + (k < 2 ? "uses " : "makes ") +
                quoted_symbol(parts[k]) + ", which is not in model.vocab");
        }
        spec.merges.prefetch(p.ids[0], p.ids[1]);
      }
      for (size_t i = 0; i < ready; i++)
        spec.merges.put(block[i].ids[0], block[i].ids[1], int32_t(first + i), block[i].ids[2]);
      if (ready < count) {
        const size_t rank = first + ready;
        const HfVocabMerges::Merge& m = vm.merges[rank];
        if (m.kind == 0)
          bad("merge #" + std::to_string(rank + 1) + " " + quoted_symbol(vm.at(m.off, m.len)) +
              " is not two tokens separated by a space");
        bad("merge #" + std::to_string(rank + 1) + " is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }

  void load_added_tokens(const json& root) {
    if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return;
    if (!root["added_tokens"].is_array()) bad("added_tokens is not a list");
    for (const json& t : root["added_tokens"]) {
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string() || !t.contains("id"))
        bad("an added_tokens entry lacks \"id\" or \"content\"");
      const std::string content = t["content"].get<std::string>();
      const int32_t id = read_id(t["id"], "added token " + quoted_symbol(content));
      ensure_id(id);
      spec.id_known[size_t(id)] = true;
      spec.id_bytes[size_t(id)] = content;  // added tokens decode to their text, as Hugging Face does
      token_text_id.assign(content, id);
    }
  }

  // Returns the regex (empty for none) and sets add_prefix_space.
  void load_pre_tokenizer(const json& root) {
    const json none;
    const json& pre = root.contains("pre_tokenizer") ? root["pre_tokenizer"] : none;
    auto byte_level = [&](const json& bl, bool alone) {
      const bool use_regex = !bl.contains("use_regex") || bl["use_regex"].get<bool>();
      const bool prefix = !bl.contains("add_prefix_space") || bl["add_prefix_space"].get<bool>();
      if (prefix && !alone) bad("pre_tokenizer: ByteLevel with add_prefix_space after a Split is not supported");
      spec.add_prefix_space = prefix;
      return use_regex;
    };
    try {
      const std::string type = type_of(pre);
      if (type == "ByteLevel") {
        if (byte_level(pre, true)) spec.pattern = kGpt2SplitPattern;
        return;
      }
      if (type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array()) {
        const json& seq = pre["pretokenizers"];
        if (seq.size() == 1 && type_of(seq[0]) == "ByteLevel") {
          if (byte_level(seq[0], true)) spec.pattern = kGpt2SplitPattern;
          return;
        }
        if (seq.size() == 2 && type_of(seq[0]) == "Split" && type_of(seq[1]) == "ByteLevel") {
          const json& split = seq[0];
          if (!split.contains("pattern") || !split["pattern"].is_object() || !split["pattern"].contains("Regex") ||
              !split["pattern"]["Regex"].is_string())
            bad("pre_tokenizer: only a Split with a \"Regex\" pattern is supported");
          if (!split.contains("behavior") || split["behavior"] != "Isolated")
            bad("pre_tokenizer: only a Split with behavior \"Isolated\" is supported");
          if (split.contains("invert") && split["invert"].is_boolean() && split["invert"].get<bool>())
            bad("pre_tokenizer: a Split with invert is not supported");
          if (byte_level(seq[1], false))
            bad("pre_tokenizer: a Split followed by ByteLevel with use_regex is not supported");
          spec.pattern = js_compatible_pattern(split["pattern"]["Regex"].get<std::string>());
          try {
            RegexSplitter check(spec.pattern);
          } catch (const std::invalid_argument& e) {
            bad("pre_tokenizer: the Split regex " + quoted_symbol(split["pattern"]["Regex"].get<std::string>()) + ": " +
                e.what());
          }
          return;
        }
      }
    } catch (const json::exception&) {
      bad("pre_tokenizer: malformed ByteLevel or Split options");
    }
    bad("pre_tokenizer " + (pre.is_null() ? std::string("null") : quoted_symbol(pre.dump().substr(0, 80))) +
        " is not supported (ByteLevel, or Sequence[Split(Regex, Isolated), ByteLevel(use_regex false)])");
  }

  int32_t find_token(const std::string& text) const { return token_text_id.find(text); }

  // bos/eos from TemplateProcessing's "single" template, then by name.
  void load_special_ids(const json& root) {
    std::string template_first, template_last;
    std::function<void(const json&)> visit = [&](const json& p) {
      if (type_of(p) == "Sequence" && p.contains("processors") && p["processors"].is_array())
        for (const json& q : p["processors"]) visit(q);
      if (type_of(p) != "TemplateProcessing" || !p.contains("single") || !p["single"].is_array() || p["single"].empty())
        return;
      auto special = [](const json& item) -> std::string {
        if (item.is_object() && item.contains("SpecialToken") && item["SpecialToken"].is_object() &&
            item["SpecialToken"].contains("id") && item["SpecialToken"]["id"].is_string())
          return item["SpecialToken"]["id"].get<std::string>();
        return "";
      };
      template_first = special(p["single"].front());
      template_last = special(p["single"].back());
    };
    if (root.contains("post_processor")) visit(root["post_processor"]);
    auto pick = [&](const std::string& from_template, std::initializer_list<const char*> names) {
      if (!from_template.empty() && find_token(from_template) >= 0) return find_token(from_template);
      for (const char* n : names)
        if (find_token(n) >= 0) return find_token(n);
      return -1;
    };
    spec.eod = pick(template_last, {"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>"});
    spec.bos = pick(template_first, {"<|begin_of_text|>", "<s>", "<bos>"});
  }
};

}  // namespace

namespace {

std::unique_ptr<Tokenizer> build(Loader& l, const json& root, const HfVocabMerges& vm) {
  if (!root.is_object()) l.bad("expected a JSON object (a Hugging Face tokenizer.json)");
  if (root.contains("normalizer") && !root["normalizer"].is_null())
    l.bad("normalizer " + quoted_symbol(Loader::type_of(root["normalizer"])) + " is not supported (only null)");
  l.load_model(root, vm);
  l.load_added_tokens(root);
  l.load_pre_tokenizer(root);
  l.load_special_ids(root);
  l.spec.type = "HuggingFaceTokenizer";
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(l.spec));
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path_in) {
  require(!path_in.empty(), "HuggingFaceTokenizer needs --tokenizer-model (a tokenizer.json, or its directory)");
  std::string path = path_in;
  struct stat st {};
  if (::stat(path_in.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) path = path_in + "/tokenizer.json";
  const std::string text = read_whole_file(path, "tokenizer file");
  // The SAX reading first; a file it declines, or one with an error (reported in the DOM's order, the
  // vocabulary sorted), is read again as a whole DOM.
  try {
    json rest;
    HfVocabMerges vm;
    if (read_tokenizer_json(text, rest, vm)) {
      Loader l;
      l.path = path;
      return build(l, rest, vm);
    }
  } catch (const json::exception&) {
  } catch (const UserError&) {
  }
  Loader l;
  l.path = path;
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (what.rfind("[json.exception.", 0) == 0 && what.find("] ") != std::string::npos) what = what.substr(what.find("] ") + 2);
    l.bad("malformed JSON (" + what + ")");
  }
  HfVocabMerges vm;
  collect_vocab_merges(root, vm);
  return build(l, root, vm);
}

}  // namespace loom::data
