#pragma once
// The text cleaning of open_clip's SimpleTokenizer (and OpenAI CLIP's, EVA-CLIP's) before its regex:
//   whitespace_clean(basic_clean(text)).lower()
// without the ftfy.fix_text() step that basic_clean starts with (Loom has no ftfy; for text that ftfy
// leaves alone, such as plain captions without mojibake, curly quotes, ligatures or full-width forms,
// the result is the same). Each step follows Python 3.11 exactly, from tables generated out of Python
// itself (clip_text_tables.inc, scripts/gen_clip_text_tables.py):
//   1. html.unescape() twice: named references (all 2,231 of HTML5, the legacy ones also without ';',
//      the longest known prefix of an unknown name), decimal and hex numeric references (invalid ones
//      replaced or dropped as Python does);
//   2. str.strip() (str.isspace(): includes U+001C..U+001F);
//   3. regex.sub(r'\s+', ' ') with python3-regex's \s (Unicode White_Space: NOT U+001C..U+001F), then
//      str.strip() again;
//   4. str.lower(): full lower-case mapping (U+0130 -> "i" U+0307) with Final_Sigma (U+03A3 -> U+03C2
//      at the end of a word).
#include <string>
#include <string_view>

namespace loom::data {

// `text` must be valid UTF-8 (the tokenizer repairs it first); the result is valid UTF-8.
std::string clip_clean_text(std::string_view text);
// The same into `out` (its capacity reused; no allocation per call once the buffers have grown).
void clip_clean_text(std::string_view text, std::string& out);

// The steps on their own, for tests.
std::string python_html_unescape(std::string_view text);
std::string python_lower(std::string_view text);
void python_lower(std::string_view text, std::string& out);

// The pattern body of python3-regex's \s, \p{L} and \p{N} as PCRE2 class contents (PCRE2 10.42's
// own \p{L}/\p{N} plus the code points Unicode 15 added).
const char* clip_regex_space_class();
std::string clip_regex_letter_class();
std::string clip_regex_number_class();

}  // namespace loom::data
