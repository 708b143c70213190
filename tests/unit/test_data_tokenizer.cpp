// GPT-2 byte-level BPE: byte map, UTF-8 repair, known ids, the two BPE loops agreeing, thread safety,
// decode, and load errors. (Id-for-id parity with gpt-3-encoder is tests/parity/test_tokenizer_reference.py.)
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "loom/core/error.h"
#include "loom/data/gpt2_tokenizer.h"

using namespace loom::data;

namespace {

const std::string kVocab = std::string(LOOM_SOURCE_DIR) + "/data/gpt2/vocab.json";
const std::string kMerges = std::string(LOOM_SOURCE_DIR) + "/data/gpt2/merges.txt";

const Gpt2BpeTokenizer& gpt2() {
  static const auto t = Gpt2BpeTokenizer::load(kVocab, kMerges);
  return *t;
}

std::vector<std::string> corpus_texts(size_t max_lines) {
  std::ifstream f(std::string(LOOM_SOURCE_DIR) + "/data/corpus/kjv.jsonl");
  std::vector<std::string> out;
  std::string line;
  while (out.size() < max_lines && std::getline(f, line)) {
    // {"id": "...", "text": "..."}: the corpus has no escapes inside text
    auto p = line.find("\"text\": \"");
    out.push_back(line.substr(p + 9, line.rfind('"') - p - 9));
  }
  return out;
}

}  // namespace

TEST(DataTokenizer, ByteToUnicodeIsOpenAIs) {
  const auto& m = gpt2_byte_to_unicode();
  std::set<uint32_t> seen(m.begin(), m.end());
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(m['!'], uint32_t('!'));
  EXPECT_EQ(m['~'], uint32_t('~'));
  EXPECT_EQ(m[0xA1], 0xA1u);
  EXPECT_EQ(m[0xAD], 323u);  // the last of the 68 non-printable bytes (0x00-0x20, 0x7F-0xA0, 0xAD)
  EXPECT_EQ(m[0], 256u);     // first non-printable byte
  EXPECT_EQ(m[' '], 288u);   // 'Ġ'
  EXPECT_EQ(m['\n'], 266u);  // 'Ċ'
}

TEST(DataTokenizer, Utf8RepairIsWhatwg) {
  const std::string r = "\xEF\xBF\xBD";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"plain ascii", "plain ascii"},
      {"caf\xC3\xA9 \xF0\x9F\x98\x80", "caf\xC3\xA9 \xF0\x9F\x98\x80"},
      {"\xFF", r},
      {"a\xC3", "a" + r},                          // truncated at the end
      {"\xE2\x82" "x", r + "x"},                   // maximal subpart of two bytes, then x
      {"\xED\xA0\x80", r + r + r},                 // a surrogate: ED then two stray continuations
      {"\xF4\x90\x80\x80", r + r + r + r},         // above U+10FFFF
      {"\xC0\x80", r + r},                         // overlong
      {"\xE0\x80\xAF", r + r + r},                 // overlong 3-byte
      {"\xF0\x9F\x98" "\xF0\x9F\x98\x80", r + "\xF0\x9F\x98\x80"},
      {"\x80\x80", r + r},
      {"\xF8\x88\x80\x80\x80", r + r + r + r + r},
  };
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(repair_utf8(in), want) << in;
    EXPECT_EQ(is_valid_utf8(in), in == want) << in;
  }
}

TEST(DataTokenizer, KnownIds) {
  const auto& t = gpt2();
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.eod(), 50256);
  EXPECT_EQ(t.type(), "GPT2BPETokenizer");
  EXPECT_EQ(t.encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(t.encode(" the"), (std::vector<int32_t>{262}));
  EXPECT_EQ(t.encode(""), (std::vector<int32_t>{}));
  // Special tokens in the text are plain text, as in Megatron and gpt-3-encoder.
  EXPECT_EQ(t.encode("<|endoftext|>"), (std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(t.decode(std::vector<int32_t>{50256}), "<|endoftext|>");
  // Invalid UTF-8 is tokenised as its repair.
  EXPECT_EQ(t.encode("a\xFF"), t.encode("a\xEF\xBF\xBD"));
}

TEST(DataTokenizer, PreTokenisation) {
  const auto& t = gpt2();
  auto pieces = [&](const std::string& s) {
    std::vector<std::pair<size_t, size_t>> out;
    t.split(s, out);
    std::vector<std::string> v;
    for (auto [o, n] : out) v.push_back(s.substr(o, n));
    return v;
  };
  EXPECT_EQ(pieces("I'm here  now\n\n"), (std::vector<std::string>{"I", "'m", " here", " ", " now", "\n\n"}));
  EXPECT_EQ(pieces("abc123 !!x"), (std::vector<std::string>{"abc", "123", " !!", "x"}));
  // NBSP is JavaScript white space (otherwise " \xC2\xA0" would be one punctuation piece).
  EXPECT_EQ(pieces("a \xC2\xA0" "b"), (std::vector<std::string>{"a", " ", "\xC2\xA0", "b"}));
}

TEST(DataTokenizer, HeapBpeEqualsReferenceLoop) {
  const auto& t = gpt2();
  std::mt19937 rng(42);
  const std::string alphabet[] = {"a", "b", "e", "t", "h", "in", "er", " ", "an", "\xC3\xA9", "s", "o"};
  for (int trial = 0; trial < 300; trial++) {
    std::string word;
    const int n = 1 + int(rng() % 400);
    for (int i = 0; i < n; i++) word += alphabet[rng() % 12];
    std::vector<int32_t> scan, heap;
    t.bpe(word, scan, 1);
    t.bpe(word, heap, 2);
    ASSERT_EQ(scan, heap) << word;
    EXPECT_EQ(t.decode(scan), word);
  }
  for (const std::string w : {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abababababababababababababababababab"}) {
    std::vector<int32_t> scan, heap;
    t.bpe(w, scan, 1);
    t.bpe(w, heap, 2);
    EXPECT_EQ(scan, heap) << w;
  }
}

TEST(DataTokenizer, ThreadsAgreeAndDecodeRoundTrips) {
  const auto& t = gpt2();
  const auto texts = corpus_texts(200);
  std::vector<std::vector<int32_t>> expect;
  for (const auto& s : texts) expect.push_back(t.encode(s));
  for (size_t i = 0; i < texts.size(); i++) ASSERT_EQ(t.decode(expect[i]), texts[i]);
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; k++)
    threads.emplace_back([&, k] {
      for (size_t rep = 0; rep < 2; rep++)
        for (size_t i = size_t(k); i < texts.size(); i++) ok[size_t(k)] += t.encode(texts[i]) == expect[i];
    });
  for (auto& th : threads) th.join();
  for (int k = 0; k < 4; k++) EXPECT_EQ(ok[size_t(k)], int(2 * (texts.size() - size_t(k))));
}

TEST(DataTokenizer, DecodeRejectsUnknownIds) {
  EXPECT_THROW(gpt2().decode(std::vector<int32_t>{50257}), loom::UserError);
  EXPECT_THROW(gpt2().decode(std::vector<int32_t>{-1}), loom::UserError);
}

TEST(DataTokenizer, LoadErrorsNameTheFile) {
  try {
    Gpt2BpeTokenizer::load("/nonexistent/vocab.json", kMerges);
    FAIL();
  } catch (const loom::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/vocab.json"), std::string::npos);
  }
  EXPECT_THROW(Gpt2BpeTokenizer::load(kMerges, kMerges), loom::UserError);  // merges.txt is not JSON
  EXPECT_THROW(make_tokenizer(TokenizerConfig{"SentencePieceTokenizer", kVocab, kMerges}), loom::UserError);
}
