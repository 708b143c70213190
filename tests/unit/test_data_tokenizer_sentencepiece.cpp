// SentencePieceTokenizer: a small model trained here by the library's trainer; vocab size, eos/bos,
// ids equal to the library's own processor, invalid UTF-8 repaired first, and load errors naming the
// file. (Parity with python3-sentencepiece on the corpus: tests/parity/test_llama_tokenizers.py.)
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>

#include "loom/data/sentencepiece_tokenizer.h"
#include "test_data_tokenizer_util.h"

using namespace loom::data;
using loom_test::TempFile;
using loom_test::user_error;

namespace {

// Trains once: a BPE model with byte fallback (Llama 2's setup) on the first chapters of the corpus.
const std::string& model_path() {
  static const std::string path = [] {
    const std::string dir = ::testing::TempDir() + "/loom_spm_" + std::to_string(::getpid());
    const std::string text = dir + ".txt";
    std::ifstream in(std::string(LOOM_SOURCE_DIR) + "/data/corpus/kjv.jsonl");
    std::ofstream out(text);
    std::string line;
    for (int i = 0; i < 60 && std::getline(in, line); i++) {
      const auto p = line.find("\"text\": \"");
      std::string t = line.substr(p + 9, line.rfind('"') - p - 9);
      for (size_t s = 0; s < t.size(); s += 200) out << t.substr(s, 200) << "\n";
    }
    out.close();
    const auto status = sentencepiece::SentencePieceTrainer::Train(
        "--input=" + text + " --model_prefix=" + dir +
        " --vocab_size=400 --model_type=bpe --byte_fallback=true --num_threads=1 --minloglevel=2");
    EXPECT_TRUE(status.ok()) << status.ToString();
    std::remove(text.c_str());
    return dir + ".model";
  }();
  return path;
}

}  // namespace

TEST(DataTokenizerSentencePiece, IdsAreTheLibrarysAndSpecialIdsTheModels) {
  const auto t = load_sentencepiece_tokenizer(model_path());
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(model_path()).ok());
  EXPECT_EQ(t->type(), "SentencePieceTokenizer");
  EXPECT_EQ(t->vocab_size(), 400);
  EXPECT_EQ(t->eod(), sp.eos_id());
  EXPECT_EQ(t->bos(), sp.bos_id());
  EXPECT_EQ(t->eod(), 2);
  EXPECT_EQ(t->bos(), 1);
  for (const std::string text : {"In the beginning God created the heaven and the earth.", "", "  x  \n\ty",
                                 "\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 byte fallback"}) {
    std::vector<int> want;
    ASSERT_TRUE(sp.Encode(text, &want).ok());
    EXPECT_EQ(t->encode(text), std::vector<int32_t>(want.begin(), want.end())) << text;
    std::string dec;
    ASSERT_TRUE(sp.Decode(want, &dec).ok());
    EXPECT_EQ(t->decode(t->encode(text)), dec);
  }
  // Byte fallback gives the raw bytes back: the emoji is not in a 400-piece vocabulary.
  EXPECT_EQ(t->decode(t->encode("\xF0\x9F\x98\x80")), "\xF0\x9F\x98\x80");
  // Invalid UTF-8 is repaired first, as for every tokenizer.
  EXPECT_EQ(t->encode("God\xFF"), t->encode("God\xEF\xBF\xBD"));
  EXPECT_THROW(t->decode(std::vector<int32_t>{400}), loom::UserError);
}

TEST(DataTokenizerSentencePiece, LoadErrorsNameTheFile) {
  TempFile bad("not_a_model.model", "this is not a protobuf \xFF\xFF\xFF\xFF");
  const std::string msg = user_error([&] { load_sentencepiece_tokenizer(bad.path()); });
  EXPECT_NE(msg.find("tokenizer file '" + bad.path() + "': not a SentencePiece model"), std::string::npos) << msg;
  EXPECT_NE(user_error([] { load_sentencepiece_tokenizer("/nonexistent/x.model"); }).find("'/nonexistent/x.model'"),
            std::string::npos);
  EXPECT_NE(user_error([] { load_sentencepiece_tokenizer(""); }).find("--tokenizer-model"), std::string::npos);
}
