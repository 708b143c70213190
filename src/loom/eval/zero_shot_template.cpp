#include "loom/eval/zero_shot_template.h"

#include <algorithm>

#include "loom/core/error.h"

namespace loom::eval {

std::string fill_template(const std::string& tmpl, const std::string& classname) {
  std::string out;
  bool filled = false;
  for (size_t i = 0; i < tmpl.size(); i++) {
    const char c = tmpl[i];
    const bool next_same = i + 1 < tmpl.size() && tmpl[i + 1] == c;
    if (c == '{' && next_same) {
      out += '{';
      i++;
    } else if (c == '}' && next_same) {
      out += '}';
      i++;
    } else if (c == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
      // str.format(classname) has one argument: a second "{}" is Python's IndexError.
      if (filled) fail("zero-shot template '" + tmpl + "': more than one '{}' field");
      filled = true;
      out += classname;
      i++;
    } else if (c == '{' || c == '}') {
      fail("zero-shot template '" + tmpl + "': only '{}' fields (and '{{', '}}') are supported, found '" +
           tmpl.substr(i, std::min<size_t>(tmpl.size() - i, 8)) + "'");
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace loom::eval
