#include "loom/data/byte_level.h"

namespace loom::data {
namespace {

std::array<uint32_t, 256> make_byte_to_unicode() {
  std::array<uint32_t, 256> map{};
  std::array<bool, 256> printable{};
  for (int b = '!'; b <= '~'; b++) printable[size_t(b)] = true;
  for (int b = 0xA1; b <= 0xAC; b++) printable[size_t(b)] = true;
  for (int b = 0xAE; b <= 0xFF; b++) printable[size_t(b)] = true;
  uint32_t n = 0;
  for (int b = 0; b < 256; b++) map[size_t(b)] = printable[size_t(b)] ? uint32_t(b) : 256 + n++;
  return map;
}

}  // namespace

const std::array<uint32_t, 256>& gpt2_byte_to_unicode() {
  static const std::array<uint32_t, 256> map = make_byte_to_unicode();
  return map;
}

uint32_t next_code_point(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + size_t(len) > s.size()) return UINT32_MAX;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
  for (int k = 1; k < len; k++) {
    const auto d = static_cast<unsigned char>(s[i + size_t(k)]);
    if ((d & 0xC0) != 0x80) return UINT32_MAX;
    cp = (cp << 6) | (d & 0x3Fu);
  }
  i += size_t(len);
  return cp;
}

bool byte_level_to_bytes(std::string_view symbol, std::string& out) {
  static const auto inverse = [] {
    std::array<int, 324> inv;
    inv.fill(-1);
    const auto& fwd = gpt2_byte_to_unicode();
    for (int b = 0; b < 256; b++) inv[fwd[size_t(b)]] = b;
    return inv;
  }();
  out.clear();
  size_t i = 0;
  while (i < symbol.size()) {
    uint32_t cp = next_code_point(symbol, i);
    if (cp >= inverse.size() || inverse[cp] < 0) return false;
    out += char(inverse[cp]);
  }
  return true;
}

std::string quoted_symbol(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace loom::data
