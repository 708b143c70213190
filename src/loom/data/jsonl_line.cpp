#include "loom/data/jsonl_line.h"

#include <cstdint>

#include "loom/data/tokenizer.h"

namespace loom::data {
namespace {

struct Span {
  bool decoded;  // in JsonlFields::decoded, else in the line
  size_t off, len;
};

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// The string at s[i] == '"'; i ends after its closing quote.
bool read_string(std::string_view s, size_t& i, std::string& decoded, Span& span) {
  const size_t start = ++i;
  size_t j = start;
  while (j < s.size() && s[j] != '"' && s[j] != '\\') {
    if (static_cast<unsigned char>(s[j]) < 0x20) return false;
    j++;
  }
  if (j >= s.size()) return false;
  if (s[j] == '"') {
    if (!is_valid_utf8(s.substr(start, j - start))) return false;
    span = {false, start, j - start};
    i = j + 1;
    return true;
  }
  // Escapes: decode the whole string into `decoded` (the raw bytes between escapes are checked below).
  const size_t off = decoded.size();
  decoded.append(s.substr(start, j - start));
  while (j < s.size() && s[j] != '"') {
    const char c = s[j];
    if (static_cast<unsigned char>(c) < 0x20) return false;
    if (c != '\\') {
      decoded += c;
      j++;
      continue;
    }
    if (j + 1 >= s.size()) return false;
    const char e = s[j + 1];
    j += 2;
    switch (e) {
      case '"': decoded += '"'; break;
      case '\\': decoded += '\\'; break;
      case '/': decoded += '/'; break;
      case 'b': decoded += '\b'; break;
      case 'f': decoded += '\f'; break;
      case 'n': decoded += '\n'; break;
      case 'r': decoded += '\r'; break;
      case 't': decoded += '\t'; break;
      case 'u': {
        if (j + 4 > s.size()) return false;
        uint32_t cp = 0;
        for (int k = 0; k < 4; k++) {
          const int h = hex(s[j + size_t(k)]);
          if (h < 0) return false;
          cp = cp * 16 + uint32_t(h);
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // surrogate pairs: left to nlohmann
        put_utf8(cp, decoded);
        j += 4;
        break;
      }
      default:
        return false;
    }
  }
  if (j >= s.size()) return false;
  // Raw bytes were copied as they are; escapes only add valid UTF-8, so checking the result checks them.
  if (!is_valid_utf8(std::string_view(decoded).substr(off))) return false;
  span = {true, off, decoded.size() - off};
  i = j + 1;
  return true;
}

void skip_ws(std::string_view s, size_t& i) {
  while (i < s.size() && is_ws(s[i])) i++;
}

}  // namespace

bool read_string_object(std::string_view line, JsonlFields& out) {
  out.fields.clear();
  out.decoded.clear();
  thread_local std::vector<Span> spans;  // key, value, key, value, ...
  spans.clear();
  size_t i = 0;
  skip_ws(line, i);
  if (i >= line.size() || line[i] != '{') return false;
  i++;
  skip_ws(line, i);
  if (i < line.size() && line[i] == '}') {
    i++;
  } else {
    for (;;) {
      Span key{}, value{};
      if (i >= line.size() || line[i] != '"' || !read_string(line, i, out.decoded, key)) return false;
      skip_ws(line, i);
      if (i >= line.size() || line[i] != ':') return false;
      i++;
      skip_ws(line, i);
      if (i >= line.size() || line[i] != '"' || !read_string(line, i, out.decoded, value)) return false;
      spans.push_back(key);
      spans.push_back(value);
      skip_ws(line, i);
      if (i >= line.size()) return false;
      if (line[i] == '}') {
        i++;
        break;
      }
      if (line[i] != ',') return false;
      i++;
      skip_ws(line, i);
    }
  }
  skip_ws(line, i);
  if (i != line.size()) return false;
  // Views only now: `decoded` no longer moves.
  auto view = [&](const Span& sp) {
    return sp.decoded ? std::string_view(out.decoded).substr(sp.off, sp.len) : line.substr(sp.off, sp.len);
  };
  for (size_t k = 0; k < spans.size(); k += 2) out.fields.push_back({view(spans[k]), view(spans[k + 1])});
  return true;
}

}  // namespace loom::data
