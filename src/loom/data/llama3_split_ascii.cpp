#include "loom/data/llama3_split_ascii.h"

#include <cstdint>

namespace loom::data {
namespace {

// Byte classes: a letter, a digit, JavaScript white space, CR or LF, and a byte >= 0x80 (unknown here).
enum : uint8_t { kLetter = 1, kDigit = 2, kSpace = 4, kNewline = 8, kHigh = 16 };

struct Classes {
  uint8_t c[256];
  constexpr Classes() : c{} {
    for (int b = 'a'; b <= 'z'; b++) c[b] = kLetter;
    for (int b = 'A'; b <= 'Z'; b++) c[b] = kLetter;
    for (int b = '0'; b <= '9'; b++) c[b] = kDigit;
    for (int b : {'\t', '\n', '\v', '\f', '\r', ' '}) c[b] = kSpace;
    c[int('\r')] |= kNewline;
    c[int('\n')] |= kNewline;
    for (int b = 0x80; b < 256; b++) c[b] = kHigh;
  }
};
constexpr Classes kClasses;

inline uint8_t cls(std::string_view s, size_t i) { return kClasses.c[static_cast<unsigned char>(s[i])]; }
inline char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c + 32) : c; }

// The end of a run of letters from i (the regex's \p{L}+ runs further on a non-ASCII letter).
size_t letters(std::string_view s, size_t i) {
  while (i < s.size() && cls(s, i) == kLetter) i++;
  return i < s.size() && cls(s, i) == kHigh ? kSplitUndecided : i;
}

}  // namespace

size_t llama3_split_ascii(std::string_view s, size_t pos) {
  const size_t n = s.size();
  const uint8_t c = cls(s, pos);
  if (c == kHigh) return kSplitUndecided;
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (s[pos] == '\'' && pos + 1 < n) {
    const char d = lower(s[pos + 1]);
    if (d == 's' || d == 't' || d == 'm' || d == 'd') return pos + 2;
    if (pos + 2 < n) {
      const char e = lower(s[pos + 2]);
      if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return pos + 3;
    }
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c == kLetter) return letters(s, pos);
  if (!(c & (kNewline | kDigit)) && pos + 1 < n) {  // c may be the optional lead-in
    const uint8_t d = cls(s, pos + 1);
    if (d == kHigh) return kSplitUndecided;
    if (d == kLetter) return letters(s, pos + 1);
  }
  // \p{N}{1,3}
  if (c == kDigit) {
    size_t i = pos + 1;
    while (i < n && i < pos + 3 && cls(s, i) == kDigit) i++;
    if (i < n && i < pos + 3 && cls(s, i) == kHigh) return kSplitUndecided;
    return i;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t i = pos;
  if (s[pos] == ' ' && pos + 1 < n) i = pos + 1;
  if (cls(s, i) == kHigh) return kSplitUndecided;
  if (cls(s, i) == 0) {  // ASCII punctuation, symbols and control characters that are not white space
    while (i < n && cls(s, i) == 0) i++;
    if (i < n && cls(s, i) == kHigh) return kSplitUndecided;
    while (i < n && (cls(s, i) & kNewline)) i++;
    return i;
  }
  // Only white space is left: \s*[\r\n]+ | \s+(?!\S) | \s+ over the run of white space from pos.
  size_t end = pos, last_newline = kSplitUndecided;
  while (end < n && (cls(s, end) & kSpace)) {
    if (cls(s, end) & kNewline) last_newline = end;
    end++;
  }
  if (end < n && cls(s, end) == kHigh) return kSplitUndecided;  // the run may go on (U+00A0, U+3000, ...)
  if (last_newline != kSplitUndecided) return last_newline + 1;
  if (end == n || end - pos == 1) return end;
  return end - 1;  // (?!\S): the last space stays for the next piece
}

}  // namespace loom::data
