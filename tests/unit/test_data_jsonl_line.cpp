// read_string_object() (preprocess's in-place reading of a JSONL line of string values) against nlohmann:
// whenever it accepts a line, nlohmann parses the same object with the same strings; it declines every
// line nlohmann rejects, and the shapes it leaves to nlohmann.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "loom/data/jsonl_line.h"

using loom::data::JsonlFields;
using loom::data::read_string_object;

namespace {

// Accepted lines agree with nlohmann; returns whether it was accepted.
bool check(const std::string& line) {
  JsonlFields f;
  const bool fast = read_string_object(line, f);
  nlohmann::json doc;
  bool ok = true;
  try {
    doc = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    ok = false;
  }
  if (!fast) return false;
  EXPECT_TRUE(ok && doc.is_object()) << line;
  if (!ok || !doc.is_object()) return true;
  for (const auto& field : f.fields) {
    EXPECT_TRUE(doc.contains(std::string(field.key))) << line;
    if (doc.contains(std::string(field.key))) {
      EXPECT_EQ(doc[std::string(field.key)].get<std::string>(), std::string(*f.find(field.key))) << line;
    }
  }
  EXPECT_LE(doc.size(), f.fields.size()) << line;
  return true;
}

}  // namespace

TEST(DataJsonlLine, AcceptsStringObjectsAsNlohmannReadsThem) {
  EXPECT_TRUE(check(R"({"id": "Ge1", "text": "In the beginning"})"));
  EXPECT_TRUE(check(" {\t\"a\" :\"\" , \"b\":\"x\"}\r"));
  EXPECT_TRUE(check("{}"));
  EXPECT_TRUE(check(R"({"t": "q\"b\\s\/\b\f\n\r\t\u00e9\u20ac\u0000z", "t": "last"})"));
  EXPECT_TRUE(check("{\"t\": \"caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80\"}"));
  JsonlFields f;
  ASSERT_TRUE(read_string_object(R"({"k\u0041": "v\n", "k\u0041": "w"})", f));
  EXPECT_EQ(*f.find("kA"), "w");  // a repeated key: the last value
  ASSERT_TRUE(read_string_object(R"({"id": "1", "text": "plain"})", f));
  EXPECT_EQ(*f.find("text"), "plain");
  EXPECT_EQ(f.find("none"), nullptr);
  // Left to nlohmann: other value types, surrogates (pairs or lone), a byte order mark; and errors.
  for (const std::string line :
       {R"({"id": 5, "text": "x"})", R"({"t": ["x"]})", R"({"t": null})", R"({"t": "\ud83d\ude00"})",
        R"({"t": "\udc00"})", "\xEF\xBB\xBF{\"t\": \"x\"}", R"([{"t": "x"}])", R"("t")", R"({"t": "x"} x)",
        R"({"t": "x",})", R"({"t" "x"})", R"({'t': "x"})", "{\"t\": \"a\x01\"}", "{\"t\": \"\xC3\"}",
        "{\"t\": \"\xED\xA0\x80\"}", "{\"t\": \"\xC0\xAF\"}", R"({"t": "\x"})", R"({"t": "\u12g4"})", R"({"t": "x)",
        R"({"t": "x")", "{\"t\": \"\\u00e9\xFF\"}"})
    EXPECT_FALSE(check(line)) << line;
}

TEST(DataJsonlLine, RandomMutationsNeverDisagree) {
  const std::string base = R"({"id": "Ge1", "text": "a\u00e9\n\"b\" caf)" "\xC3\xA9" R"( z"})";
  const std::string bytes = "{}[]\":,\\ u0aAeE9\t\r\x01\x7f\xC3\xA9\xED\xF0\xBF";
  std::mt19937 rng(17);
  int accepted = 0;
  for (int round = 0; round < 20000; round++) {
    std::string s = base;
    for (int k = 1 + int(rng() % 3); k > 0; k--) {
      const size_t at = rng() % (s.size() + 1);
      switch (rng() % 3) {
        case 0: s.insert(at, 1, bytes[rng() % bytes.size()]); break;
        case 1: if (at < s.size()) s.erase(at, 1); break;
        default: if (at < s.size()) s[at] = bytes[rng() % bytes.size()]; break;
      }
    }
    accepted += check(s);
  }
  EXPECT_GT(accepted, 1000);  // the mutations keep many lines valid
}
