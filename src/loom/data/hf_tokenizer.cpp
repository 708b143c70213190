#include "loom/data/hf_tokenizer.h"

#include <sys/stat.h>

#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "loom/core/error.h"
#include "loom/data/byte_level.h"
#include "loom/data/byte_level_bpe.h"
#include "loom/data/files.h"
#include "loom/data/pretokenizer_regex.h"

namespace loom::data {
namespace {

using nlohmann::json;

struct Loader {
  std::string path;
  ByteLevelBpeSpec spec;
  std::unordered_map<std::string, int32_t> token_text_id;  // vocabulary symbols and added tokens -> id

  [[noreturn]] void bad(const std::string& what) const { fail("tokenizer file '" + path + "': " + what); }

  static std::string type_of(const json& j) {
    return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
  }

  void ensure_id(int64_t id) {
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

  void load_model(const json& root) {
    if (!root.contains("model") || !root["model"].is_object()) bad("no \"model\" object (is this a tokenizer.json?)");
    const json& model = root["model"];
    const std::string type = type_of(model);
    if (!type.empty() && type != "BPE")
      bad("model type '" + type + "' is not supported (only byte-level \"BPE\")");
    if (!model.contains("vocab") || !model["vocab"].is_object() || model["vocab"].empty())
      bad("model.vocab is missing or not an object of token -> id");
    if (!model.contains("merges") || !model["merges"].is_array()) bad("model.merges is missing or not a list");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
        bad(std::string("model.") + key + " is not supported (byte-level BPE has none)");
    if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>())
      bad("model.byte_fallback is not supported (byte-level BPE needs none)");
    if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() != 0.0)
      bad("model.dropout is not supported (encoding must be deterministic)");
    spec.ignore_merges = model.contains("ignore_merges") && model["ignore_merges"].is_boolean() &&
                         model["ignore_merges"].get<bool>();

    std::string bytes;
    const json& vocab = model["vocab"];
    spec.vocab.reserve(vocab.size());  // start-up time: no rehashing of Llama 3's 128k entries
    token_text_id.reserve(vocab.size() + 512);
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      const int32_t id = read_id(it.value(), "vocabulary entry " + quoted_symbol(it.key()));
      if (!byte_level_to_bytes(it.key(), bytes) || bytes.empty())
        bad("vocabulary entry " + quoted_symbol(it.key()) + " is not a byte-level BPE symbol");
      ensure_id(id);
      if (spec.id_known[size_t(id)])
        bad("id " + std::to_string(id) + " is given to two vocabulary entries (one is " + quoted_symbol(it.key()) + ")");
      spec.id_known[size_t(id)] = true;
      spec.id_bytes[size_t(id)] = bytes;
      spec.vocab.emplace(bytes, id);
      token_text_id.emplace(it.key(), id);
    }
    for (int b = 0; b < 256; b++) {
      auto it = spec.vocab.find(std::string(1, char(b)));
      if (it == spec.vocab.end())
        bad("the vocabulary has no entry for byte " + std::to_string(b) + " (a byte-level BPE has all 256)");
      spec.byte_id[size_t(b)] = it->second;
    }

    const json& merges = model["merges"];
    spec.merges.init(merges.size());
    for (size_t rank = 0; rank < merges.size(); rank++) {
      const json& m = merges[rank];
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          bad("merge #" + std::to_string(rank + 1) + " " + quoted_symbol(s) + " is not two tokens separated by a space");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        bad("merge #" + std::to_string(rank + 1) + " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      int32_t ids[3];
      const std::string joined = a + b;
      const std::string* parts[3] = {&a, &b, &joined};
      for (int k = 0; k < 3; k++) {  // token_text_id holds only model.vocab so far
        auto it = token_text_id.find(*parts[k]);
        if (it == token_text_id.end())  // the message is built only here: 280k merges would pay for it
          bad("merge #" + std::to_string(rank + 1) + " " + quoted_symbol(a + " " + b) + ": " +
              (k < 2 ? "uses " : "makes ") + quoted_symbol(*parts[k]) + ", which is not in model.vocab");
        ids[k] = it->second;
      }
      spec.merges.put(ids[0], ids[1], int32_t(rank), ids[2]);
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
      token_text_id[content] = id;
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

  int32_t find_token(const std::string& text) const {
    auto it = token_text_id.find(text);
    return it == token_text_id.end() ? -1 : it->second;
  }

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

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path_in) {
  require(!path_in.empty(), "HuggingFaceTokenizer needs --tokenizer-model (a tokenizer.json, or its directory)");
  Loader l;
  l.path = path_in;
  struct stat st {};
  if (::stat(path_in.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) l.path = path_in + "/tokenizer.json";
  json root;
  try {
    root = json::parse(read_whole_file(l.path, "tokenizer file"));
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (what.rfind("[json.exception.", 0) == 0 && what.find("] ") != std::string::npos) what = what.substr(what.find("] ") + 2);
    l.bad("malformed JSON (" + what + ")");
  }
  if (!root.is_object()) l.bad("expected a JSON object (a Hugging Face tokenizer.json)");
  if (root.contains("normalizer") && !root["normalizer"].is_null())
    l.bad("normalizer " + quoted_symbol(Loader::type_of(root["normalizer"])) + " is not supported (only null)");
  l.load_model(root);
  l.load_added_tokens(root);
  l.load_pre_tokenizer(root);
  l.load_special_ids(root);
  l.spec.type = "HuggingFaceTokenizer";
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(l.spec));
}

}  // namespace loom::data
