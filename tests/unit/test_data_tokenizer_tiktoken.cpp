// TikTokenizer on small rank files written here: exact ids worked out by hand, Meta's special tokens,
// the same ids as a tokenizer.json of the same vocabulary (merges derived from the ranks as Hugging
// Face's converter does), Meta's cutting of long runs, and every malformed file a UserError naming
// the file. (Parity on Llama 3's real ranks: tests/parity/test_llama_tokenizers.py.)
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "loom/data/byte_level_bpe.h"
#include "loom/data/hf_tokenizer.h"
#include "loom/data/tiktoken_tokenizer.h"
#include "test_data_tokenizer_util.h"

using namespace loom::data;
using loom_test::byte_level;
using loom_test::TempFile;
using loom_test::user_error;

namespace {

std::string b64(const std::string& in) {
  static const char* chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    if (i + 2 < in.size()) v |= uint8_t(in[i + 2]);
    out += chars[(v >> 18) & 63];
    out += chars[(v >> 12) & 63];
    out += i + 1 < in.size() ? chars[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? chars[v & 63] : '=';
  }
  return out;
}

// Ranks: byte b is b, then these tokens from 256 on.
const std::vector<std::string> kTokens = {"he", "ll", "hell", "hello", " w", "or", " wor", "ld", "wo", "lo", "ol"};

std::vector<std::string> all_tokens() {
  std::vector<std::string> t;
  for (int b = 0; b < 256; b++) t.emplace_back(1, char(b));
  t.insert(t.end(), kTokens.begin(), kTokens.end());
  return t;
}

std::string rank_file() {
  std::string out;
  const auto t = all_tokens();
  for (size_t i = 0; i < t.size(); i++) out += b64(t[i]) + " " + std::to_string(i) + "\n";
  return out;
}

// The tokenizer.json Hugging Face's TikTokenConverter would write for the same ranks.
nlohmann::json converted_tokenizer_json() {
  const auto t = all_tokens();
  std::map<std::string, int> rank;
  for (size_t i = 0; i < t.size(); i++) rank[t[i]] = int(i);
  nlohmann::json vocab = nlohmann::json::object(), merges = nlohmann::json::array();
  for (size_t i = 0; i < t.size(); i++) vocab[byte_level(t[i])] = i;
  for (size_t i = 0; i < t.size(); i++) {
    std::vector<std::pair<int, int>> local;
    for (size_t cut = 1; cut < t[i].size(); cut++)
      if (rank.count(t[i].substr(0, cut)) && rank.count(t[i].substr(cut)))
        local.emplace_back(rank[t[i].substr(0, cut)], rank[t[i].substr(cut)]);
    std::sort(local.begin(), local.end());
    for (auto [l, r] : local) merges.push_back(byte_level(t[size_t(l)]) + " " + byte_level(t[size_t(r)]));
  }
  nlohmann::json split = {{"type", "Split"}, {"pattern", {{"Regex", std::string(kLlama3SplitPattern)}}}, {"behavior", "Isolated"}};
  nlohmann::json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  return {{"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {split, bl}}}},
          {"model", {{"type", "BPE"}, {"ignore_merges", true}, {"vocab", vocab}, {"merges", merges}}}};
}

}  // namespace

TEST(DataTokenizerTiktoken, ExactIdsAndSpecialTokens) {
  TempFile f("ranks.tiktoken", rank_file());
  const auto t = load_tiktoken_tokenizer(f.path());
  const int32_t n = 256 + int32_t(kTokens.size());
  EXPECT_EQ(t->type(), "TikTokenizer");
  EXPECT_EQ(t->vocab_size(), n + 256);
  EXPECT_EQ(t->bos(), n);
  EXPECT_EQ(t->eod(), n + 1);
  EXPECT_EQ(t->encode("hello world"), (std::vector<int32_t>{259, 262, 263}));  // " w", "or" -> " wor"; "ld"
  EXPECT_EQ(t->encode("hellol"), (std::vector<int32_t>{259, 'l'}));  // he, ll, hell, hello: "ol" (266) never wins
  EXPECT_EQ(t->decode(std::vector<int32_t>{n, 259, n + 1}), "<|begin_of_text|>hello<|end_of_text|>");
  EXPECT_EQ(t->decode(std::vector<int32_t>{n + 9}), "<|eot_id|>");
  EXPECT_EQ(t->decode(std::vector<int32_t>{n + 255}), "<|reserved_special_token_250|>");
  EXPECT_THROW(t->decode(std::vector<int32_t>{n + 256}), loom::UserError);
  EXPECT_EQ(llama3_special_tokens().size(), 256u);
  EXPECT_EQ(t->decode(t->encode("\xF0\x9F\x98\x80 caf\xC3\xA9\xFF")), "\xF0\x9F\x98\x80 caf\xC3\xA9\xEF\xBF\xBD");
}

TEST(DataTokenizerTiktoken, SameIdsAsTheConvertedTokenizerJson) {
  TempFile ranks("ranks.tiktoken", rank_file());
  TempFile hf("converted.json", converted_tokenizer_json().dump());
  const auto a = load_tiktoken_tokenizer(ranks.path());
  const auto b = load_hf_tokenizer(hf.path());
  std::mt19937 rng(3);
  const std::vector<std::string> pieces = {"h", "e", "l", "o", "w", "r", "d", " ", "  ", "\n", "'s", "1", "!", "\xC3\xA9"};
  for (int trial = 0; trial < 500; trial++) {
    std::string text;
    const int n = int(rng() % 120);
    for (int i = 0; i < n; i++) text += pieces[rng() % pieces.size()];
    EXPECT_EQ(a->encode(text), b->encode(text)) << text;
  }
}

TEST(DataTokenizerTiktoken, LongRunsAreCutAsMetaDoes) {
  std::vector<std::string> parts;
  auto split = [&](const std::string& s) {
    parts.clear();
    split_like_meta_llama3(s, [&](std::string_view p) { parts.emplace_back(p); });
    return parts;
  };
  EXPECT_EQ(split("abc d"), (std::vector<std::string>{"abc d"}));
  EXPECT_EQ(split(std::string(25000, 'a')), (std::vector<std::string>{std::string(25000, 'a')}));
  EXPECT_EQ(split(std::string(25001, 'a')), (std::vector<std::string>{std::string(25000, 'a'), "a"}));
  EXPECT_EQ(split("  " + std::string(25001, 'b') + "   c"),
            (std::vector<std::string>{"  " + std::string(25000, 'b'), "b   c"}));
  EXPECT_EQ(split(std::string(30000, ' ') + "x"), (std::vector<std::string>{std::string(25000, ' '), std::string(5000, ' ') + "x"}));
  // Code points, not bytes: 25,001 two-byte letters are cut after 25,000 of them.
  std::string e;
  for (int i = 0; i < 25001; i++) e += "\xC3\xA9";
  EXPECT_EQ(split(e), (std::vector<std::string>{e.substr(0, 50000), "\xC3\xA9"}));
  // 400,000-code-point chunks first; the run count starts afresh in each.
  std::string ab;
  for (int i = 0; i < 200001; i++) ab += "a ";
  EXPECT_EQ(split(ab), (std::vector<std::string>{ab.substr(0, 400000), "a "}));
  // The tokenizer encodes the parts separately: ids of a 60,000-letter run = ids of the parts.
  TempFile f("ranks.tiktoken", rank_file());
  const auto t = load_tiktoken_tokenizer(f.path());
  const std::string run = std::string(60000, 'l');
  std::vector<int32_t> want;
  for (const auto& p : split(run)) t->encode(p, want);
  EXPECT_EQ(t->encode(run), want);
  EXPECT_EQ(want.size(), 30000u);  // "ll" x 12,500 per 25,000 and 5,000 for the rest
}

TEST(DataTokenizerTiktoken, MalformedFilesNameTheFileAndTheLine) {
  auto expect_error = [](const std::string& content, const std::string& what) {
    TempFile f("bad.tiktoken", content);
    const std::string msg = user_error([&] { load_tiktoken_tokenizer(f.path()); });
    EXPECT_NE(msg.find("'" + f.path() + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
  };
  const std::string good = rank_file();
  expect_error("", "no ranks");
  expect_error("\n\n", "no ranks");
  expect_error("!!!! 0\n", "line 1: the token is not base64");
  expect_error("\x0a\x0bsentencepiece\x12\x03\x00\x01", "SentencePiece");
  expect_error(good + "aGk=\n", "expected '<base64 token> <rank>'");
  expect_error(good + "aGk= -3\n", "is not a non-negative integer");
  expect_error(good + "aGk= 3x\n", "is not a non-negative integer");
  expect_error(good + b64("he") + " 999\n", "the token is listed twice");
  expect_error(good + b64("xyz") + " 256\n", "rank 256 is also on line 257");
  expect_error(good + b64("xyz") + " 999\n", "the ranks must be 0..");
  std::string no_q;
  const auto t = all_tokens();
  for (size_t i = 0, r = 0; i < t.size(); i++)
    if (t[i] != "Q") no_q += b64(t[i]) + " " + std::to_string(r++) + "\n";
  expect_error(no_q, "no rank for byte 81");
  EXPECT_NE(user_error([] { load_tiktoken_tokenizer("/nonexistent/tokenizer.model"); })
                .find("cannot open tokenizer file '/nonexistent/tokenizer.model'"),
            std::string::npos);
}
