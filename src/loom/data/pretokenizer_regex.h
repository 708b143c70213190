#pragma once
// Pre-tokenisation by regular expression (PCRE2 with UTF + UCP, JIT-compiled), shared by the byte-level
// BPE tokenizers. The references Loom is checked against are JavaScript encoders (`/gu` regexes in
// node), so patterns are first rewritten to JavaScript's meaning of their classes, see
// js_compatible_pattern().
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace loom::data {

// GPT-2's pattern, 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+, already
// rewritten by js_compatible_pattern(). Also Hugging Face's ByteLevel pre-tokenizer with use_regex.
extern const char kGpt2SplitPattern[];

// `pattern` (Python/Rust syntax, as tokenizer.json and tiktoken spell it) with:
//  - \s as JavaScript's white space (ECMA-262 WhiteSpace + LineTerminator): TAB LF VT FF CR SP U+00A0
//    U+1680 U+2000-U+200A U+2028 U+2029 U+202F U+205F U+3000 U+FEFF; \S as its complement. (PCRE2's
//    and Python's \s follow Unicode's White_Space instead: they add U+0085 and lack U+FEFF.)
//  - \p{L} and \p{N} extended by the letters and numbers of node's Unicode 17 tables that Debian 12's
//    PCRE2 10.42 (Unicode 14) does not know yet.
//  - Llama 3's case-insensitive contraction group (?i:'s|'t|'re|'ve|'m|'ll|'d) spelled with ASCII
//    classes, as transformers.js (and so llama3-tokenizer-js) rewrites it: PCRE2's caseless s would
//    also match U+017F LONG S.
// Everything else is passed through unchanged.
std::string js_compatible_pattern(std::string_view pattern);

class RegexSplitter {
 public:
  // Compiles `pattern` as is; std::invalid_argument with PCRE2's message when it does not compile.
  explicit RegexSplitter(const std::string& pattern);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // End of the piece of valid UTF-8 `s` that starts at `pos` < s.size(). Pieces are the matches and
  // the stretches of text between them (Hugging Face's Split with behaviour "Isolated"); for patterns
  // that match every code point, as GPT-2's and Llama 3's do, that is just the matches. Safe to call
  // from many threads at once (match state is per thread).
  size_t next(std::string_view s, size_t pos) const;

 private:
  struct Code;
  std::unique_ptr<Code> code_;
};

}  // namespace loom::data
