// HuggingFaceTokenizer on small tokenizer.json files written here: exact ids worked out by hand, the
// lowest-rank-first merge loop against a plain reference loop, ignore_merges, both merge spellings,
// added tokens, pre-tokenizer variants, and every malformed file a UserError naming the file.
// (Parity with llama3-tokenizer-js on Llama 3's real vocabulary: tests/parity/test_llama_tokenizers.py.)
#include <gtest/gtest.h>

#include <malloc.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "loom/data/bpe_merges.h"
#include "loom/data/byte_level_bpe.h"
#include "loom/data/hf_tokenizer.h"
#include "loom/data/pretokenizer_regex.h"
#include "loom/data/tiktoken_tokenizer.h"
#include "loom/data/tokenizer.h"
#include "test_data_tokenizer_util.h"

using namespace loom::data;
using loom_test::byte_level;
using loom_test::TempFile;
using loom_test::user_error;
using nlohmann::json;

namespace {

// Ids: byte b is b; then the tokens below from 256 on. Merges in this order (rank = index).
const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"}, {" w", "or"}, {"l", "d"}};
// 256 he, 257 ll, 258 hell, 259 hello, 260 " w", 261 or, 262 " wor", 263 ld, 264 " world" (no merge makes it)

// kMerges with ("he", "h") ranked before the ("h", "e") that makes its left part: merging "h e" can then make
// a pair of lower rank, which the one-pair-at-a-time loop takes at once ("hehe" -> "heh" "e") where a
// merge-every-occurrence pass would not ("he" "he"), so the tokenizer must keep the heap loop.
const std::vector<std::pair<std::string, std::string>> kMergesOutOfOrder = {
    {"he", "h"}, {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"}, {" w", "or"}, {"l", "d"}};

json tiny_tokenizer(bool ignore_merges, bool pair_merges,
                    const std::vector<std::pair<std::string, std::string>>& kMerges = ::kMerges) {
  json vocab = json::object();
  for (int b = 0; b < 256; b++) vocab[byte_level(std::string(1, char(b)))] = b;
  int id = 256;
  json merges = json::array();
  for (const auto& [a, b] : kMerges) {
    vocab[byte_level(a + b)] = id++;
    if (pair_merges)
      merges.push_back({byte_level(a), byte_level(b)});
    else
      merges.push_back(byte_level(a) + " " + byte_level(b));
  }
  vocab[byte_level(" world")] = id++;
  json model = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                {"ignore_merges", ignore_merges}, {"vocab", vocab}, {"merges", merges}};
  json split = {{"type", "Split"}, {"pattern", {{"Regex", std::string(kLlama3SplitPattern)}}}, {"behavior", "Isolated"}, {"invert", false}};
  json byte_level_pt = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
  return {{"version", "1.0"},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {split, byte_level_pt}}}},
          {"added_tokens",
           {{{"id", 300}, {"content", "<|begin_of_text|>"}, {"special", true}},
            {{"id", 301}, {"content", "<|end_of_text|>"}, {"special", true}}}},
          {"model", model}};
}

std::unique_ptr<Tokenizer> load(const json& j, const std::string& name = "tokenizer.json") {
  TempFile f(name, j.dump());
  return load_hf_tokenizer(f.path());
}

// The merge loop as Hugging Face describes it, on strings: merge the lowest-ranked adjacent pair, the
// leftmost on ties, until none applies.
std::vector<std::string> reference_bpe(const std::string& word,
                                       const std::vector<std::pair<std::string, std::string>>& kMerges = ::kMerges) {
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t i = 0; i < kMerges.size(); i++) rank[kMerges[i]] = i;
  std::vector<std::string> parts;
  for (char c : word) parts.emplace_back(1, c);
  for (;;) {
    size_t best = SIZE_MAX, at = 0;
    for (size_t i = 0; i + 1 < parts.size(); i++) {
      auto it = rank.find({parts[i], parts[i + 1]});
      if (it != rank.end() && it->second < best) best = it->second, at = i;
    }
    if (best == SIZE_MAX) return parts;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + long(at) + 1);
  }
}

// Bytes malloc has handed out and not had back (small blocks and mmapped ones).
size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

}  // namespace

TEST(DataTokenizerHf, ExactIds) {
  const auto t = load(tiny_tokenizer(false, false));
  EXPECT_EQ(t->type(), "HuggingFaceTokenizer");
  EXPECT_EQ(t->encode("hello world"), (std::vector<int32_t>{259, 262, 263}));
  EXPECT_EQ(t->encode("hello"), (std::vector<int32_t>{259}));
  EXPECT_EQ(t->encode("hel lo"), (std::vector<int32_t>{256, 'l', ' ', 'l', 'o'}));
  EXPECT_EQ(t->encode("'S"), (std::vector<int32_t>{'\'', 'S'}));  // one pre-token, no merges
  EXPECT_EQ(t->encode(""), std::vector<int32_t>{});
  EXPECT_EQ(t->decode(t->encode("hello world")), "hello world");
}

TEST(DataTokenizerHf, MergeSpellingsAndIgnoreMerges) {
  const auto strings = load(tiny_tokenizer(false, false));
  const auto pairs = load(tiny_tokenizer(false, true));
  const auto ignore = load(tiny_tokenizer(true, false));
  for (const char* text : {"hello world", "he ll o", "worldly hello", "x  world\n\nhello"})
    EXPECT_EQ(strings->encode(text), pairs->encode(text)) << text;
  EXPECT_EQ(strings->encode(" world"), (std::vector<int32_t>{262, 263}));
  EXPECT_EQ(ignore->encode(" world"), (std::vector<int32_t>{264}));  // the pre-token is a vocabulary entry
  EXPECT_EQ(ignore->encode("hello world"), (std::vector<int32_t>{259, 264}));
}

TEST(DataTokenizerHf, MergeLoopEqualsReferenceOnRandomWords) {
  const auto t = load(tiny_tokenizer(false, false));
  auto* bl = dynamic_cast<const ByteLevelBpeTokenizer*>(t.get());
  ASSERT_NE(bl, nullptr);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 400; trial++) {
    std::string word;  // letters only: one pre-token; lengths past the short-word threshold use the heap
    const int n = 1 + int(rng() % 300);
    for (int i = 0; i < n; i++) word += "helowrdhhll"[rng() % 11];
    std::vector<int32_t> want;
    for (const auto& p : reference_bpe(word)) want.push_back(bl->token_id(p));
    EXPECT_EQ(t->encode(word), want) << word;
  }
}

// Words over 64 bytes take the rank-bucket pass when the merges only make higher-ranked pairs (kMerges)
// and the heap otherwise (kMergesOutOfOrder, where the two loops differ); both equal the reference loop.
TEST(DataTokenizerHf, LongWordLoopFollowsTheMergeOrder) {
  const int32_t he = 256, heh = 257;
  BpeMergeTable in_order, out_of_order;
  in_order.init(2);
  out_of_order.init(2);
  in_order.put('h', 'e', 0, he);
  in_order.put(he, 'h', 1, heh);
  out_of_order.put(he, 'h', 0, heh);
  out_of_order.put('h', 'e', 1, he);
  EXPECT_TRUE(merges_make_only_higher_pairs(in_order, 300));
  EXPECT_FALSE(merges_make_only_higher_pairs(out_of_order, 300));
  std::vector<int32_t> w1 = {'h', 'e', 'h', 'e'}, w2 = w1, a, b;
  bpe_merge_lowest_first(out_of_order, w1, a);
  bpe_merge_all_occurrences(out_of_order, w2, b, 2);
  EXPECT_EQ(a, (std::vector<int32_t>{heh, 'e'}));
  EXPECT_EQ(b, (std::vector<int32_t>{he, he}));
  const auto t = load(tiny_tokenizer(false, false, kMergesOutOfOrder));
  auto* bl = dynamic_cast<const ByteLevelBpeTokenizer*>(t.get());
  ASSERT_NE(bl, nullptr);
  std::mt19937 rng(9);
  for (int trial = 0; trial < 300; trial++) {
    std::string w;
    const int n = 40 + int(rng() % 400);
    for (int i = 0; i < n; i++) w += "helowrdhhll"[rng() % 11];
    std::vector<int32_t> want;
    for (const auto& p : reference_bpe(w, kMergesOutOfOrder)) want.push_back(bl->token_id(p));
    EXPECT_EQ(t->encode(w), want) << w;
  }
}

// The loops of bpe_merge_lowest_first (rescan, one heap, a heap per rank for huge words) give the same ids,
// on a table whose merges make pairs of lower rank (so the order of merging matters) and on GPT-2's.
TEST(DataTokenizerHf, LowestFirstLoopsAgree) {
  BpeMergeTable table;
  table.init(kMergesOutOfOrder.size());
  const auto t = load(tiny_tokenizer(false, false, kMergesOutOfOrder));
  auto* bl = dynamic_cast<const ByteLevelBpeTokenizer*>(t.get());
  ASSERT_NE(bl, nullptr);
  for (size_t r = 0; r < kMergesOutOfOrder.size(); r++) {
    const auto& [a, b] = kMergesOutOfOrder[r];
    table.put(bl->token_id(a), bl->token_id(b), int32_t(r), bl->token_id(a + b));
  }
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; trial++) {
    std::string w;
    const int n = 1 + int(rng() % (trial < 150 ? 60 : 5000));
    for (int i = 0; i < n; i++) w += "helowrdhhll"[rng() % 11];
    std::vector<int32_t> symbols, want, got;
    for (char c : w) symbols.push_back(bl->token_id(std::string(1, c)));
    for (int algorithm = 1; algorithm <= 3; algorithm++) {
      std::vector<int32_t> s = symbols, ids;
      bpe_merge_lowest_first(table, s, ids, algorithm);
      if (algorithm == 1) want = ids;
      ASSERT_EQ(ids, want) << "algorithm " << algorithm << " on " << w;
    }
  }
}

TEST(DataTokenizerHf, AddedTokensAreDecodedAndCountedButNotMatched) {
  const auto t = load(tiny_tokenizer(false, false));
  EXPECT_EQ(t->vocab_size(), 302);  // len(tokenizer): highest id + 1
  EXPECT_EQ(t->bos(), 300);
  EXPECT_EQ(t->eod(), 301);
  EXPECT_EQ(t->decode(std::vector<int32_t>{300, 259, 301}), "<|begin_of_text|>hello<|end_of_text|>");
  const auto ids = t->encode("<|end_of_text|>");
  EXPECT_GT(ids.size(), 1u);  // ordinary text
  EXPECT_EQ(t->decode(ids), "<|end_of_text|>");
  EXPECT_THROW(t->decode(std::vector<int32_t>{280}), loom::UserError);  // an id no token has
  EXPECT_THROW(t->decode(std::vector<int32_t>{302}), loom::UserError);
  EXPECT_THROW(t->decode(std::vector<int32_t>{-1}), loom::UserError);
}

TEST(DataTokenizerHf, EodFromThePostProcessorTemplate) {
  json j = tiny_tokenizer(false, false);
  j["added_tokens"].push_back({{"id", 302}, {"content", "</s>"}});
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}}}},
                                     {{"Sequence", {{"id", "A"}}}},
                                     {{"SpecialToken", {{"id", "</s>"}}}}}}};
  const auto t = load(j);
  EXPECT_EQ(t->bos(), 300);
  EXPECT_EQ(t->eod(), 302);
}

TEST(DataTokenizerHf, ByteLevelPreTokenizerVariants) {
  json j = tiny_tokenizer(false, false);
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  EXPECT_EQ(load(j)->encode("hello world"), (std::vector<int32_t>{259, 262, 263}));
  j["pre_tokenizer"]["add_prefix_space"] = true;
  EXPECT_EQ(load(j)->encode("hello"), (std::vector<int32_t>{' ', 259}));
  EXPECT_EQ(load(j)->encode(" world"), (std::vector<int32_t>{262, 263}));
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  EXPECT_EQ(load(j)->encode("hello world"), (std::vector<int32_t>{259, 262, 263}));  // one piece, same merges
  // Invalid UTF-8 is repaired before pre-tokenisation; decode gives the repaired bytes.
  const auto t = load(tiny_tokenizer(false, false));
  EXPECT_EQ(t->decode(t->encode("he\xFFllo")), "he\xEF\xBF\xBDllo");
}

TEST(DataTokenizerHf, JsCompatiblePatternRewritesClasses) {
  EXPECT_EQ(js_compatible_pattern("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"),
            std::string(kGpt2SplitPattern));
  EXPECT_EQ(js_compatible_pattern("(?i:'s|'t|'re|'ve|'m|'ll|'d)x"), "(?:'([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))x");
  const std::string space = js_compatible_pattern("\\s");  // [JavaScript's white space]
  ASSERT_GT(space.size(), 2u);
  EXPECT_NE(space.find("\\x{FEFF}"), std::string::npos);
  const std::string body = space.substr(1, space.size() - 2);
  EXPECT_EQ(js_compatible_pattern("[a\\s]\\d"), "[a" + body + "]\\d");   // inside a class: the body only
  EXPECT_EQ(js_compatible_pattern("(?!\\S)"), "(?![^" + body + "])");
  EXPECT_EQ(js_compatible_pattern("[]\\s]"), "[]" + body + "]");           // a leading ] is a literal
}

TEST(DataTokenizerHf, MalformedFilesNameTheFileAndTheProblem) {
  const json good = tiny_tokenizer(false, false);
  auto expect_error = [](const std::string& content, const std::string& what) {
    TempFile f("bad_tokenizer.json", content);
    const std::string msg = user_error([&] { load_hf_tokenizer(f.path()); });
    EXPECT_NE(msg.find("'" + f.path() + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
  };
  expect_error("{not json", "malformed JSON");
  expect_error("[1, 2]", "expected a JSON object");
  expect_error(json{{"version", "1.0"}}.dump(), "no \"model\"");
  auto with = [&](const std::function<void(json&)>& change) {
    json j = good;
    change(j);
    return j.dump();
  };
  expect_error(with([](json& j) { j["model"]["type"] = "WordPiece"; }), "model type 'WordPiece' is not supported");
  expect_error(with([](json& j) { j["model"].erase("vocab"); }), "model.vocab is missing");
  expect_error(with([](json& j) { j["model"].erase("merges"); }), "model.merges is missing");
  expect_error(with([](json& j) { j["model"]["merges"].push_back("zz q"); }), "uses 'zz', which is not in model.vocab");
  expect_error(with([](json& j) { j["model"]["merges"].push_back("w o"); }), "makes 'wo', which is not in model.vocab");
  expect_error(with([](json& j) { j["model"]["merges"].push_back("abc"); }), "not two tokens separated by a space");
  expect_error(with([](json& j) { j["model"]["merges"].push_back(42); }), "neither");
  expect_error(with([](json& j) { j["model"]["vocab"].erase(byte_level("Q")); }), "no entry for byte 81");
  expect_error(with([](json& j) { j["model"]["vocab"]["x"] = "seven"; }), "not a non-negative integer");
  expect_error(with([](json& j) { j["model"]["vocab"]["\xE2\x82\xAC"] = 999; }), "not a byte-level BPE symbol");
  expect_error(with([](json& j) { j["model"]["byte_fallback"] = true; }), "byte_fallback is not supported");
  expect_error(with([](json& j) { j["normalizer"] = {{"type", "NFC"}}; }), "normalizer 'NFC' is not supported");
  expect_error(with([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }), "is not supported");
  expect_error(with([](json& j) { j["pre_tokenizer"] = nullptr; }), "pre_tokenizer null is not supported");
  expect_error(with([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; }), "Isolated");
  expect_error(with([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Regex", "(unclosed"}}; }),
               "does not compile");
  expect_error(with([](json& j) { j["added_tokens"] = 5; }), "added_tokens is not a list");
  const std::string missing = user_error([] { load_hf_tokenizer("/nonexistent/tokenizer.json"); });
  EXPECT_NE(missing.find("cannot open tokenizer file '/nonexistent/tokenizer.json'"), std::string::npos) << missing;
  EXPECT_NE(user_error([] { load_hf_tokenizer(""); }).find("--tokenizer-model"), std::string::npos);
}

// model.vocab and model.merges are read by SAX (hf_tokenizer_json.h); a file with duplicate keys is read
// again as a DOM, which keeps the last value of a key, as json::parse (and Python's json) do.
TEST(DataTokenizerHf, DuplicateKeysMeanTheLastValue) {
  const std::string good = tiny_tokenizer(false, true).dump();
  auto load_text = [](const std::string& text) {
    TempFile f("tokenizer.json", text);
    return load_hf_tokenizer(f.path());
  };
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  const std::vector<int32_t> want = {259, 262, 263};
  EXPECT_EQ(load_text(good)->encode("hello world"), want);
  // A first vocabulary and a first merges list that would fail, then the real ones.
  EXPECT_EQ(load_text(replaced("\"vocab\":{", "\"vocab\":{\"x\":0},\"vocab\":{"))->encode("hello world"), want);
  EXPECT_EQ(load_text(replaced("\"merges\":[", "\"merges\":[\"zz q\"],\"merges\":["))->encode("hello world"), want);
  // A token listed twice: its first id (5, byte 5's) is replaced by the second.
  EXPECT_EQ(load_text(replaced("\"vocab\":{", "\"vocab\":{\"hello\":5,"))->encode("hello world"), want);
  // A second "model" wins too: here it has no vocabulary.
  const std::string msg = user_error([&] { load_text(good.substr(0, good.size() - 1) + ",\"model\":{\"type\":\"BPE\"}}"); });
  EXPECT_NE(msg.find("model.vocab is missing"), std::string::npos) << msg;
}

TEST(DataTokenizerHf, FactoryAndDirectory) {
  TempFile f("tokenizer.json", tiny_tokenizer(false, false).dump());
  TokenizerConfig c;
  c.type = "HuggingFaceTokenizer";
  c.tokenizer_model = f.path();
  EXPECT_EQ(make_tokenizer(c)->encode("hello world"), (std::vector<int32_t>{259, 262, 263}));
  const auto types = tokenizer_types();
  for (const char* t : {"GPT2BPETokenizer", "HuggingFaceTokenizer", "TikTokenizer", "SentencePieceTokenizer"})
    EXPECT_NE(std::find(types.begin(), types.end(), t), types.end()) << t;
}

// Defect 11 (a 50 MB line of letters is one pre-token): Hugging Face does not cut long pre-tokens, so neither
// does Loom; the long-word loops are O(n log n). On a 2-million-letter word the tokenizer's ids equal the
// one-pair-at-a-time heap loop's and the GPT-2 tokenizer's (checked against gpt-3-encoder), and the loop's
// memory is given back afterwards instead of staying with the thread.
TEST(DataTokenizerHf, HugeWordEqualsGpt2AndKeepsNoMemory) {
  const std::string dir = std::string(LOOM_SOURCE_DIR) + "/data/gpt2/";
  std::ifstream vf(dir + "vocab.json"), mf(dir + "merges.txt");
  const json vocab = json::parse(vf);
  json merges = json::array();
  std::string line;
  std::getline(mf, line);  // #version
  while (std::getline(mf, line))
    if (!line.empty()) merges.push_back(line);
  json model = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  json pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  const auto hf = load({{"version", "1.0"}, {"normalizer", nullptr}, {"pre_tokenizer", pre}, {"model", model},
                        {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}}}});
  TokenizerConfig gc;
  gc.vocab_file = dir + "vocab.json";
  gc.merge_file = dir + "merges.txt";
  const auto gpt2 = make_tokenizer(gc);
  // The one-pair-at-a-time heap loop on the same merges, as a second reference.
  BpeMergeTable table;
  table.init(merges.size());
  for (size_t r = 0; r < merges.size(); r++) {
    const std::string m = merges[r].get<std::string>();
    const size_t sp = m.find(' ');
    table.put(vocab.at(m.substr(0, sp)).get<int32_t>(), vocab.at(m.substr(sp + 1)).get<int32_t>(), int32_t(r),
              vocab.at(m.substr(0, sp) + m.substr(sp + 1)).get<int32_t>());
  }
  EXPECT_TRUE(merges_make_only_higher_pairs(table, 50257));
  std::mt19937 rng(11);
  std::string word;
  for (int i = 0; i < 2'000'000; i++) word += char('a' + rng() % 26);
  std::vector<int32_t> symbols, heap_ids;
  for (char c : word) symbols.push_back(vocab.at(std::string(1, c)).get<int32_t>());
  bpe_merge_lowest_first(table, symbols, heap_ids);
  EXPECT_EQ(hf->encode(word.substr(0, 5'000)), gpt2->encode(word.substr(0, 5'000)));  // warms the thread's state
  const std::vector<int32_t> want = gpt2->encode(word);
  EXPECT_GT(want.size(), 500'000u);
  EXPECT_EQ(heap_ids, want);
  symbols = {};
  heap_ids = {};
  const size_t before = heap_in_use();
  EXPECT_EQ(hf->encode(word), want);
  const size_t after = heap_in_use();
  // Before, the heap loop's 16 bytes per byte (32 MB here) stayed; what stays now (about 8 MB) is the
  // regex splitter's per-thread PCRE2 state, whose JIT stack is capped at 4 MB.
  EXPECT_LT(after, before + (16u << 20)) << "kept " << (after - before) << " bytes";
}
