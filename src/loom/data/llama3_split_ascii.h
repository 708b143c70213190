#pragma once
// Llama 3's pre-tokenizer regex (kLlama3SplitPattern as js_compatible_pattern() rewrites it) decided by
// hand for ASCII text, where PCRE2's JIT with Unicode properties cost a third of `loom preprocess`'s
// time on English text:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
//   \s+(?!\S)|\s+
// In ASCII \p{L} is [A-Za-z], \p{N} [0-9] and (JavaScript's) \s [\t\n\v\f\r ]. Whenever the match would
// depend on a byte >= 0x80 (a letter, number or space of another script), the answer is "undecided" and
// RegexSplitter asks PCRE2 instead, so the pieces are always the regex's.
#include <cstddef>
#include <string_view>

namespace loom::data {

constexpr size_t kSplitUndecided = ~size_t(0);

// The end of the regex's match at `pos` < s.size(), or kSplitUndecided.
size_t llama3_split_ascii(std::string_view s, size_t pos);

}  // namespace loom::data
