#pragma once
// `loom preprocess`'s fast reading of one JSONL line: an object whose keys and values are all strings
// (the usual {"id": "...", "text": "..."}) is read without a nlohmann DOM, its values left in place in
// the line (or decoded into one buffer when they have escapes). nlohmann's lexer, one character and
// one push_back at a time, cost as much as tokenising the text. Any other line (numbers, nesting, a
// \u surrogate, a control character or invalid UTF-8 in a string, a syntax error, a byte order mark)
// returns false, and the caller parses it with nlohmann as before, with the same errors.
#include <string>
#include <string_view>
#include <vector>

namespace loom::data {

struct JsonlFields {
  struct Field {
    std::string_view key, value;
  };
  std::vector<Field> fields;  // in the line's order
  std::string decoded;        // the strings that had escapes

  // The value of `key` (the last one when the key is repeated, as nlohmann keeps), or nullptr.
  const std::string_view* find(std::string_view key) const {
    for (size_t i = fields.size(); i-- > 0;)
      if (fields[i].key == key) return &fields[i].value;
    return nullptr;
  }
};

// True when `line` is such an object (JSON white space allowed around its tokens); fills `out`.
bool read_string_object(std::string_view line, JsonlFields& out);

}  // namespace loom::data
