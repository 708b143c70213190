// llama3_split_ascii() (the hand-written ASCII path of Llama 3's pre-tokenizer regex) against PCRE2 on the
// same pattern: the pieces must be the regex's on any text, ASCII or not.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "loom/data/llama3_split_ascii.h"
#include "loom/data/pretokenizer_regex.h"
#include "loom/data/tiktoken_tokenizer.h"

using namespace loom::data;

namespace {

std::vector<std::string> pieces(const RegexSplitter& r, const std::string& s) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < s.size();) {
    const size_t end = r.next(s, pos);
    out.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

}  // namespace

TEST(DataLlama3Split, AsciiPathGivesThePcre2Pieces) {
  const std::string pattern = js_compatible_pattern(kLlama3SplitPattern);
  const RegexSplitter fast(pattern);
  const RegexSplitter pcre2("(?:" + pattern + ")");  // the same regex, not recognised: PCRE2 only
  // Characters each alternative turns on: contractions, letters, digits, JavaScript white space, CR/LF,
  // punctuation and controls, and non-ASCII letters, numbers, spaces and symbols (U+00A0, U+3000, U+0085,
  // U+FEFF, U+00B2, U+0660, e-acute, CJK, an emoji).
  const std::vector<std::string> alphabet = {
      "'", "s", "S", "t", "r", "e", "v", "m", "l", "L", "d", "D", "a", "Z", "0", "7", " ", " ", "\t", "\n", "\r",
      "\v", "\f", "!", ".", "-", "\x01", "\x1c", "\x7f", "\xc2\xa0", "\xe3\x80\x80", "\xc2\x85", "\xef\xbb\xbf",
      "\xc2\xb2", "\xd9\xa0", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xe2\x80\x94"};
  std::mt19937 rng(3);
  for (int round = 0; round < 20000; round++) {
    std::string s;
    const int len = 1 + int(rng() % 12);
    const bool ascii_only = round % 2 == 0;
    for (int i = 0; i < len; i++) {
      const std::string& c = alphabet[rng() % alphabet.size()];
      if (ascii_only && static_cast<unsigned char>(c[0]) >= 0x80) continue;
      s += c;
    }
    if (s.empty()) continue;
    ASSERT_EQ(pieces(fast, s), pieces(pcre2, s)) << "text: '" << s << "'";
    if (ascii_only) {  // ASCII text never needs PCRE2
      for (size_t pos = 0; pos < s.size(); pos++) ASSERT_NE(llama3_split_ascii(s, pos), kSplitUndecided) << s;
    }
  }
  const std::string text = "I'll GO'S... 12345 x,\r\n\r\n  \tthen   !!\n x  ";
  const std::vector<std::string> want = {"I", "'ll", " GO", "'S", "...", " ", "123", "45", " x", ",\r\n\r\n",
                                         "  ", "\tthen", "  ", " !!\n", " x", "  "};
  EXPECT_EQ(pieces(pcre2, text), want);
  EXPECT_EQ(pieces(fast, text), want);
}
