// preprocess() with a loaded tokenizer writes the bytes the tokenizer config gives, and the input is read in
// batches sized to the file (small, one batch; larger than a batch; a pipe, whose size is not known).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "loom/data/preprocess.h"

namespace {

using namespace loom::data;

std::string dir() {
  const std::string d = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_preprocess";
  std::filesystem::create_directories(d);
  return d;
}

std::string bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

PreprocessConfig config(const std::string& input, const std::string& prefix) {
  PreprocessConfig c;
  c.input = input;
  c.output_prefix = prefix;
  c.json_keys = {"text"};
  c.tokenizer.vocab_file = std::string(LOOM_SOURCE_DIR) + "/data/gpt2/vocab.json";
  c.tokenizer.merge_file = std::string(LOOM_SOURCE_DIR) + "/data/gpt2/merges.txt";
  c.append_eod = true;
  return c;
}

// `lines` JSONL lines of varying length ("line 17: ..." repeated).
std::string jsonl(int lines) {
  std::string s;
  for (int i = 0; i < lines; i++) {
    s += "{\"text\": \"line " + std::to_string(i) + ":";
    for (int k = 0; k < i % 23; k++) s += " word" + std::to_string(k * i % 97);
    s += "\"}\n";
  }
  return s;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

TEST(Preprocess, LoadedTokenizerWritesTheSameBytes) {
  const std::string d = dir();
  for (int lines : {3, 20000}) {  // one batch; about 1.9 MB, over the 1 MiB batch
    const std::string in = d + "/in" + std::to_string(lines) + ".jsonl";
    write(in, jsonl(lines));
    const PreprocessConfig a = config(in, d + "/a" + std::to_string(lines));
    const PreprocessConfig b = config(in, d + "/b" + std::to_string(lines));
    const PreprocessResult ra = preprocess(a);
    const auto tok = make_tokenizer(b.tokenizer);
    const PreprocessResult rb = preprocess(b, *tok);
    ASSERT_EQ(ra.outputs.size(), 1u);
    EXPECT_EQ(ra.outputs[0].documents, int64_t(lines));
    EXPECT_EQ(ra.outputs[0].documents, rb.outputs[0].documents);
    EXPECT_EQ(ra.outputs[0].tokens, rb.outputs[0].tokens);
    EXPECT_EQ(ra.lines, lines);
    for (const char* ext : {".bin", ".idx"})
      EXPECT_EQ(bytes_of(ra.outputs[0].prefix + ext), bytes_of(rb.outputs[0].prefix + ext)) << lines << ext;
  }
}

// A FIFO has no size: it is read in 1 MiB batches, and gives the bytes the same lines give from a file.
TEST(Preprocess, PipeInputEqualsFileInput) {
  const std::string d = dir();
  const std::string text = jsonl(20000), file = d + "/file.jsonl", fifo = d + "/fifo.jsonl";
  write(file, text);
  std::remove(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { write(fifo, text); });
  const PreprocessResult rp = preprocess(config(fifo, d + "/p"));
  writer.join();
  const PreprocessResult rf = preprocess(config(file, d + "/f"));
  EXPECT_EQ(rp.lines, 20000);
  EXPECT_EQ(rp.bytes, uint64_t(text.size()));
  for (const char* ext : {".bin", ".idx"})
    EXPECT_EQ(bytes_of(rp.outputs[0].prefix + ext), bytes_of(rf.outputs[0].prefix + ext)) << ext;
}

}  // namespace
