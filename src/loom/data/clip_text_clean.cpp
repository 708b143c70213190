// CLIP's text cleaning, step by step as Python does it (see clip_text_clean.h).
#include "loom/data/clip_text_clean.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "loom/data/byte_level.h"

namespace loom::data {
namespace {

struct HtmlEntity {
  const char* name;   // as html.entities.html5 spells it, with ';' where the name has one
  const char* value;  // UTF-8
};
struct NumericReplacement {
  uint32_t code, replacement;
};
struct CodeRange {
  uint32_t lo, hi;
};
struct LowerPair {
  uint32_t from, to;
};

#include "loom/data/clip_text_tables.inc"

template <size_t N>
bool in_ranges(const CodeRange (&table)[N], uint32_t c) {
  const CodeRange* it = std::upper_bound(table, table + N, c, [](uint32_t v, const CodeRange& r) { return v < r.lo; });
  return it != table && c <= (it - 1)->hi;
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

// The code points of valid UTF-8 `s`.
std::u32string code_points(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out += char32_t(next_code_point(s, i));
  return out;
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, uint32_t(c));
  return out;
}

const HtmlEntity* find_entity(std::string_view name) {
  const HtmlEntity* end = kHtml5Entities + std::size(kHtml5Entities);
  const HtmlEntity* it =
      std::lower_bound(kHtml5Entities, end, name, [](const HtmlEntity& e, std::string_view n) { return std::string_view(e.name) < n; });
  return it != end && std::string_view(it->name) == name ? it : nullptr;
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') return int(c - '0');
  if (c >= 'a' && c <= 'f') return int(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return int(c - 'A' + 10);
  return -1;
}

// Python's int() of the digits, saturated above 0x10FFFF (every such value is replaced alike).
uint32_t saturating_number(std::u32string_view digits, int base) {
  uint64_t v = 0;
  for (char32_t c : digits) {
    v = v * uint64_t(base) + uint64_t(hex_value(c));
    if (v > 0x110000) v = 0x110000;
  }
  return uint32_t(v);
}

// Python's html._replace_charref for a numeric reference.
void append_numeric(std::string& out, uint32_t num) {
  for (const auto& r : kInvalidCharrefs)
    if (r.code == num) return append_utf8(out, r.replacement);
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return append_utf8(out, 0xFFFD);
  if (in_ranges(kInvalidCodepoints, num)) return;
  append_utf8(out, num);
}

// Python's str.isspace().
bool py_isspace(uint32_t c) { return in_ranges(kPythonSpace, c); }

// python3-regex's \s: Unicode White_Space.
bool regex_space(uint32_t c) {
  return (c >= 0x9 && c <= 0xD) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::u32string_view py_strip(std::u32string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && py_isspace(uint32_t(s[a]))) a++;
  while (b > a && py_isspace(uint32_t(s[b - 1]))) b--;
  return s.substr(a, b - a);
}

uint32_t lower_simple(uint32_t c) {
  const LowerPair* end = kLowerCase + std::size(kLowerCase);
  const LowerPair* it = std::lower_bound(kLowerCase, end, c, [](const LowerPair& p, uint32_t v) { return p.from < v; });
  return it != end && it->from == c ? it->to : c;
}

}  // namespace

std::string python_html_unescape(std::string_view text) {
  if (text.find('&') == std::string_view::npos) return std::string(text);
  const std::u32string s = code_points(text);
  std::string out;
  out.reserve(text.size());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    if (s[i] != U'&') {
      append_utf8(out, uint32_t(s[i++]));
      continue;
    }
    // The reference's pattern: &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
    size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      size_t k = j + 1;
      if (k < n && is_ascii_digit(s[k])) {
        while (k < n && is_ascii_digit(s[k])) k++;
        const uint32_t num = saturating_number(std::u32string_view(s).substr(j + 1, k - j - 1), 10);
        if (k < n && s[k] == U';') k++;
        append_numeric(out, num);
        i = k;
        continue;
      }
      if (k + 1 < n && (s[k] == U'x' || s[k] == U'X') && hex_value(s[k + 1]) >= 0) {
        size_t m = k + 1;
        while (m < n && hex_value(s[m]) >= 0) m++;
        const uint32_t num = saturating_number(std::u32string_view(s).substr(k + 1, m - k - 1), 16);
        if (m < n && s[m] == U';') m++;
        append_numeric(out, num);
        i = m;
        continue;
      }
      out += '&';  // "&#" not followed by a number: the '&' stays, scanning goes on at '#'
      i = j;
      continue;
    }
    size_t k = j;
    while (k < n && k - j < 32 && s[k] != U'\t' && s[k] != U'\n' && s[k] != U'\f' && s[k] != U' ' && s[k] != U'<' &&
           s[k] != U'&' && s[k] != U'#' && s[k] != U';')
      k++;
    if (k == j) {
      out += '&';
      i = j;
      continue;
    }
    if (k < n && s[k] == U';') k++;
    const std::string name = to_utf8(std::u32string_view(s).substr(j, k - j));
    if (const HtmlEntity* e = find_entity(name)) {
      out += e->value;
    } else {
      // The longest prefix (of at least 2 code points) that is a name, then the rest as it was.
      const std::u32string_view cps = std::u32string_view(s).substr(j, k - j);
      bool found = false;
      for (size_t x = cps.size() - 1; x > 1; x--) {
        if (const HtmlEntity* p = find_entity(to_utf8(cps.substr(0, x)))) {
          out += p->value;
          out += to_utf8(cps.substr(x));
          found = true;
          break;
        }
      }
      if (!found) {
        out += '&';
        out += name;
      }
    }
    i = k;
  }
  return out;
}

void python_lower(std::string_view text, std::string& out) {
  thread_local std::u32string s;
  s.clear();
  for (size_t i = 0; i < text.size();) s += char32_t(next_code_point(text, i));
  out.clear();
  for (size_t i = 0; i < s.size(); i++) {
    const uint32_t c = uint32_t(s[i]);
    if (c < 0x80) {
      out += char(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {
      out += "i\xCC\x87";
    } else if (c == 0x3A3) {
      // Final_Sigma: a cased letter before (case-ignorable ones skipped) and none after.
      size_t j = i;
      while (j > 0 && in_ranges(kCaseIgnorable, uint32_t(s[j - 1]))) j--;
      bool final_sigma = j > 0 && in_ranges(kCased, uint32_t(s[j - 1]));
      if (final_sigma) {
        size_t k = i + 1;
        while (k < s.size() && in_ranges(kCaseIgnorable, uint32_t(s[k]))) k++;
        final_sigma = k == s.size() || !in_ranges(kCased, uint32_t(s[k]));
      }
      append_utf8(out, final_sigma ? 0x3C2 : 0x3C3);
    } else {
      append_utf8(out, lower_simple(c));
    }
  }
}

std::string python_lower(std::string_view text) {
  std::string out;
  python_lower(text, out);
  return out;
}

void clip_clean_text(std::string_view text, std::string& out) {
  // Thread-local buffers: the data loader's workers clean every caption without allocating once warm.
  thread_local std::u32string cps, collapsed;
  thread_local std::string unescaped, joined;
  std::string_view t = text;
  if (t.find('&') != std::string_view::npos) {
    unescaped = python_html_unescape(python_html_unescape(t));
    t = unescaped;
  }
  cps.clear();
  for (size_t i = 0; i < t.size();) cps += char32_t(next_code_point(t, i));
  const std::u32string_view stripped = py_strip(cps);
  collapsed.clear();
  for (size_t i = 0; i < stripped.size();) {
    if (regex_space(uint32_t(stripped[i]))) {
      while (i < stripped.size() && regex_space(uint32_t(stripped[i]))) i++;
      collapsed += U' ';
    } else {
      collapsed += stripped[i++];
    }
  }
  const std::u32string_view done = py_strip(collapsed);
  joined.clear();
  for (char32_t c : done) append_utf8(joined, uint32_t(c));
  python_lower(joined, out);
}

std::string clip_clean_text(std::string_view text) {
  std::string out;
  clip_clean_text(text, out);
  return out;
}

const char* clip_regex_space_class() { return kRegexSpace; }
std::string clip_regex_letter_class() { return std::string("\\p{L}") + kNewLetters; }
std::string clip_regex_number_class() { return std::string("\\p{N}") + kNewNumbers; }

}  // namespace loom::data
