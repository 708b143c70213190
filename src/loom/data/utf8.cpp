// UTF-8 validation and repair (declared in tokenizer.h): every tokenizer repairs its input the same way.
#include <cstring>
#include <string>
#include <string_view>

#include "loom/data/tokenizer.h"

namespace loom::data {

namespace {
// A UTF-8 lead byte: how many continuation bytes follow and the allowed range of the first of them
// (excluding overlongs, surrogates and code points above U+10FFFF). False for a byte that cannot lead.
bool utf8_lead(unsigned char c, int& more, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    more = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    more = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    more = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return false;
  }
  return true;
}
}  // namespace

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t v;
      std::memcpy(&v, p + i, 8);
      if (v & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    unsigned char lo, hi;
    int more;
    if (!utf8_lead(c, more, lo, hi)) {
      return false;
    }
    if (i + size_t(more) >= n) return false;  // truncated at the end
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (int k = 2; k <= more; k++)
      if ((p[i + size_t(k)] & 0xC0) != 0x80) return false;
    i += size_t(more) + 1;
  }
  return true;
}

std::string repair_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  static const char kReplacement[] = "\xEF\xBF\xBD";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  std::string out;
  out.reserve(n + 16);
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      out += char(c);
      i++;
      continue;
    }
    unsigned char lo, hi;
    int more;
    if (!utf8_lead(c, more, lo, hi)) {
      out += kReplacement;  // a byte that can never start a sequence
      i++;
      continue;
    }
    // Consume continuation bytes while they fit; the first one has the narrowed range.
    size_t j = i + 1;
    int got = 0;
    while (got < more && j < n) {
      const unsigned char d = p[j];
      const bool ok = got == 0 ? (d >= lo && d <= hi) : (d & 0xC0) == 0x80;
      if (!ok) break;
      j++;
      got++;
    }
    if (got == more) {
      out.append(s.data() + i, j - i);
    } else {
      out += kReplacement;  // the maximal subpart [i, j) is one replacement; p[j] is looked at anew
    }
    i = j;
  }
  return out;
}

}  // namespace loom::data
