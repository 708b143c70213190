// What opening a dataset refuses (issue 17): a .bin longer than its .idx describes, and token ids outside
// the tokenizer's vocabulary, named by file, sequence and id.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "loom/core/error.h"
#include "loom/data/indexed_dataset.h"

using namespace loom::data;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const loom::UserError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string write_dataset(const fs::path& dir, const std::string& name, uint8_t dtype,
                          const std::vector<std::vector<int32_t>>& seqs) {
  const std::string prefix = (dir / name).string();
  IndexedDatasetWriter w(prefix, dtype);
  for (const auto& s : seqs) {
    w.add_item(s.data(), s.size());
    w.end_document();
  }
  w.finalize();
  return prefix;
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("loom_test_checks_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

}  // namespace

TEST(DataChecks, BinMustBeExactlyWhatTheIndexDescribes) {
  TempDir dir;
  const std::string p = write_dataset(dir.path, "d", kDtypeUint16, {{1, 2, 3}, {4, 5}});
  EXPECT_NO_THROW(IndexedDataset{p});
  std::ofstream(p + ".bin", std::ios::app | std::ios::binary).write("\0\0", 2);  // one token more
  EXPECT_NE(error_of([&] { IndexedDataset ds(p); })
                .find("data file '" + p + ".bin' has 12 bytes but '" + p + ".idx' describes 10 bytes"),
            std::string::npos);
  // No sequences: the .bin must be empty.
  const std::string e = write_dataset(dir.path, "e", kDtypeUint16, {});
  std::ofstream(e + ".bin", std::ios::binary).write("\1\0", 2);
  EXPECT_NE(error_of([&] { IndexedDataset ds(e); }).find("describes 0 bytes"), std::string::npos);
}

TEST(DataChecks, TokenIdsOutsideTheVocabularyNameFileSequenceAndId) {
  TempDir dir;
  std::vector<std::vector<int32_t>> seqs(50);
  for (size_t i = 0; i < seqs.size(); i++) seqs[i].assign(3000 + i, int32_t(i));  // more than one block
  for (uint8_t dtype : {kDtypeUint16, kDtypeInt32}) {
    seqs[37][1234] = 300;
    const std::string p = write_dataset(dir.path, "v" + std::to_string(dtype), dtype, seqs);
    IndexedDataset ds(p);
    EXPECT_NO_THROW(ds.check_token_ids(301));
    EXPECT_EQ(error_of([&] { ds.check_token_ids(300); }),
              "data file '" + p + ".bin': sequence 37 holds token id 300 (position 1234), outside the tokenizer's "
              "vocabulary of 300 ids (preprocessed with another tokenizer? give the one the data was made with)");
    EXPECT_NE(error_of([&] { ds.check_token_ids(37); }).find("sequence 37 holds token id 37 (position 0)"),
              std::string::npos);
    seqs[37][1234] = 37;
  }
  seqs[2][5] = -7;  // int32 data may hold negative ids
  const std::string n = write_dataset(dir.path, "neg", kDtypeInt32, seqs);
  IndexedDataset ds(n);
  EXPECT_NE(error_of([&] { ds.check_token_ids(1000); }).find("sequence 2 holds token id -7 (position 5)"),
            std::string::npos);
}
