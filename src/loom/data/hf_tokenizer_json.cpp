#include "loom/data/hf_tokenizer_json.h"

#include <limits>

namespace loom::data {
namespace {

using nlohmann::json;

// SAX events of the whole file: those inside model.vocab and model.merges are collected, the others
// build the DOM. Returning false stops the parse (sax_parse then returns false).
class Reader {
 public:
  Reader(json& root, HfVocabMerges& out) : dom_(root), out_(out) {}

  bool null() { return mode_ == kNone && dom_.null(); }
  bool boolean(bool v) { return mode_ == kNone && dom_.boolean(v); }
  bool number_float(json::number_float_t v, const std::string& s) { return mode_ == kNone && dom_.number_float(v, s); }
  bool binary(json::binary_t& v) { return mode_ == kNone && dom_.binary(v); }
  bool number_integer(json::number_integer_t v) {
    if (mode_ == kNone) return dom_.number_integer(v);
    return v >= 0 && vocab_id(uint64_t(v));
  }
  bool number_unsigned(json::number_unsigned_t v) { return mode_ == kNone ? dom_.number_unsigned(v) : vocab_id(v); }

  bool string(std::string& s) {
    switch (mode_) {
      case kNone:
        return dom_.string(s);
      case kMerges:
        out_.merges.push_back({out_.add(s), uint32_t(s.size()), 0, 0, 0});
        return true;
      case kPair:
        if (pair_parts_ == 2) return false;
        pair_[pair_parts_++] = {out_.add(s), uint32_t(s.size())};
        return true;
      default:
        return false;
    }
  }

  bool key(std::string& k) {
    if (mode_ == kVocab) {
      key_ = {out_.add(k), uint32_t(k.size())};
      return true;
    }
    if (level_ == 1 && root_is_object_) {
      root_key_ = k;
      if (k == "model" && ++model_keys_ > 1) return false;
    } else if (level_ == 2 && in_model_) {
      model_key_ = k;
      if ((k == "vocab" && ++vocab_keys_ > 1) || (k == "merges" && ++merges_keys_ > 1)) return false;
    }
    return dom_.key(k);
  }

  bool start_object(std::size_t n) {
    if (mode_ != kNone) return false;
    if (level_ == 0) root_is_object_ = true;
    if (level_ == 1 && root_is_object_ && root_key_ == "model") in_model_ = true;
    if (level_ == 2 && in_model_ && model_key_ == "vocab") {
      mode_ = kVocab;
      out_.vocab_taken = true;
    }
    level_++;
    return dom_.start_object(n);
  }
  bool end_object() {
    mode_ = kNone;  // only the vocabulary object can end in a mode
    if (--level_ == 1) in_model_ = false;
    return dom_.end_object();
  }

  bool start_array(std::size_t n) {
    if (mode_ == kMerges) {
      mode_ = kPair;
      pair_parts_ = 0;
      return true;
    }
    if (mode_ != kNone) return false;
    if (level_ == 2 && in_model_ && model_key_ == "merges") {
      mode_ = kMerges;
      out_.merges_taken = true;
    }
    level_++;
    return dom_.start_array(n);
  }
  bool end_array() {
    if (mode_ == kPair) {
      if (pair_parts_ != 2) return false;
      out_.merges.push_back({pair_[0].off, pair_[0].len, pair_[1].off, pair_[1].len, 1});
      mode_ = kMerges;
      return true;
    }
    mode_ = kNone;
    level_--;
    return dom_.end_array();
  }

  template <class Exception>
  bool parse_error(std::size_t pos, const std::string& token, const Exception& ex) {
    return dom_.parse_error(pos, token, ex);  // throws ex, as json::parse does
  }

 private:
  enum Mode { kNone, kVocab, kMerges, kPair };
  struct Span {
    uint32_t off = 0, len = 0;
  };

  bool vocab_id(uint64_t v) {
    if (mode_ != kVocab || v >= uint64_t(std::numeric_limits<int32_t>::max())) return false;
    out_.vocab.push_back({key_.off, key_.len, int64_t(v)});
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  HfVocabMerges& out_;
  Mode mode_ = kNone;
  int level_ = 0;  // open objects and arrays
  bool root_is_object_ = false, in_model_ = false;
  std::string root_key_, model_key_;
  int model_keys_ = 0, vocab_keys_ = 0, merges_keys_ = 0;
  Span key_, pair_[2];
  int pair_parts_ = 0;
};

}  // namespace

bool read_tokenizer_json(const std::string& file_text, json& rest, HfVocabMerges& out) {
  Reader reader(rest, out);
  return json::sax_parse(file_text, &reader);
}

void collect_vocab_merges(const json& root, HfVocabMerges& out) {
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) return;
  const json& model = root["model"];
  if (model.contains("vocab") && model["vocab"].is_object()) {
    out.vocab_taken = true;
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
      const json& v = it.value();
      const bool ok = v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < std::numeric_limits<int32_t>::max();
      out.vocab.push_back({out.add(it.key()), uint32_t(it.key().size()), ok ? v.get<int64_t>() : -1});
    }
  }
  if (model.contains("merges") && model["merges"].is_array()) {
    out.merges_taken = true;
    for (const json& m : model["merges"]) {
      if (m.is_string()) {
        const auto& s = m.get_ref<const std::string&>();
        out.merges.push_back({out.add(s), uint32_t(s.size()), 0, 0, 0});
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        const auto& a = m[0].get_ref<const std::string&>();
        const auto& b = m[1].get_ref<const std::string&>();
        const uint32_t oa = out.add(a), ob = out.add(b);
        out.merges.push_back({oa, uint32_t(a.size()), ob, uint32_t(b.size()), 1});
      } else {
        out.merges.push_back({0, 0, 0, 0, 2});
      }
    }
  }
}

}  // namespace loom::data
