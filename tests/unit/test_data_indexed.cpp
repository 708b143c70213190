// Indexed dataset writer/reader, .npy files and atomic writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "loom/core/error.h"
#include "loom/data/indexed_dataset.h"
#include "loom/data/numpy_compat.h"

using namespace loom::data;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("loom_test_data_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  size_t count() const { return size_t(std::distance(fs::directory_iterator(path), fs::directory_iterator())); }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void spit(const std::string& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary);
  f.write(data.data(), std::streamsize(data.size()));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const loom::UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(DataIndexed, WriterReaderRoundTrip) {
  TempDir dir;
  const std::vector<std::vector<int32_t>> seqs = {{1, 2, 3}, {}, {65535, 0}, {50256}};
  for (uint8_t dtype : {kDtypeUint16, kDtypeInt32}) {
    const std::string prefix = dir / ("rt" + std::to_string(dtype));
    {
      IndexedDatasetWriter w(prefix, dtype);
      for (const auto& s : seqs) {
        w.add_item(s.data(), s.size());
        w.end_document();
      }
      w.finalize();
      EXPECT_EQ(w.documents(), 4);
    }
    IndexedDataset ds(prefix);
    EXPECT_EQ(ds.dtype(), dtype);
    ASSERT_EQ(ds.size(), 4);
    EXPECT_EQ(ds.doc_count(), 5);
    EXPECT_EQ(ds.total_tokens(), 6);
    int64_t ptr = 0;
    for (int64_t i = 0; i < 4; i++) {
      EXPECT_EQ(ds.sequence_length(i), int32_t(seqs[size_t(i)].size()));
      EXPECT_EQ(ds.pointer(i), ptr);
      ptr += int64_t(seqs[size_t(i)].size() * dtype_size(dtype));
      std::vector<int32_t> got(seqs[size_t(i)].size());
      ds.get(i, 0, int64_t(got.size()), got.data());
      EXPECT_EQ(got, seqs[size_t(i)]);
      EXPECT_EQ(ds.doc_index(i + 1), i + 1);
    }
    int32_t tail[1];
    ds.get(2, 1, 1, tail);
    EXPECT_EQ(tail[0], 0);
    EXPECT_THROW(ds.get(0, 2, 2, tail), std::out_of_range);
  }
  EXPECT_EQ(dir.count(), 4u);  // no temporary files left
  EXPECT_EQ(best_fitting_dtype(50257), kDtypeUint16);
  EXPECT_EQ(best_fitting_dtype(65500), kDtypeInt32);
}

TEST(DataIndexed, UnfinishedWriterLeavesNothing) {
  TempDir dir;
  {
    IndexedDatasetWriter w(dir / "x", kDtypeUint16);
    const int32_t ids[] = {1, 2};
    w.add_item(ids, 2);
    w.end_document();
  }
  EXPECT_EQ(dir.count(), 0u);
  {
    IndexedDatasetWriter w(dir / "y", kDtypeUint16);
    w.close();  // written under temporary names, never renamed
  }
  EXPECT_EQ(dir.count(), 0u);
}

TEST(DataIndexed, DamagedFilesAreUserErrorsNamingTheFile) {
  TempDir dir;
  const std::string prefix = dir / "d";
  {
    IndexedDatasetWriter w(prefix, kDtypeUint16);
    const int32_t ids[] = {1, 2, 3, 4, 5};
    w.add_item(ids, 5);
    w.end_document();
    w.add_item(ids, 3);
    w.end_document();
    w.finalize();
  }
  const std::string idx = slurp(prefix + ".idx"), bin = slurp(prefix + ".bin");
  auto expect = [&](const std::string& want) {
    const std::string e = error_of([&] { IndexedDataset ds(prefix); });
    EXPECT_NE(e.find(want), std::string::npos) << e;
  };
  spit(prefix + ".idx", idx.substr(0, idx.size() - 3));
  expect("index file '" + prefix + ".idx' is truncated");
  spit(prefix + ".idx", "not an index at all, just some text");
  expect("is not a Megatron mmap index");
  spit(prefix + ".idx", "");
  expect("is empty");
  spit(prefix + ".idx", idx);
  spit(prefix + ".bin", bin.substr(0, 10));
  expect("data file '" + prefix + ".bin' is truncated");
  spit(prefix + ".bin", bin.substr(0, 11));
  expect("not a whole number of 2-byte tokens");
  std::string bad_dtype = idx;
  bad_dtype[17] = 6;
  spit(prefix + ".idx", bad_dtype);
  spit(prefix + ".bin", bin);
  expect("floating-point");
  fs::remove(prefix + ".bin");
  expect(".bin is missing");
  fs::remove(prefix + ".idx");
  expect("does not exist");
}

TEST(DataNpy, WriteReadRoundTripInNumpyFormat) {
  TempDir dir;
  const std::vector<int32_t> a = {3, -1, 7, 9, 11, 13};
  write_npy(dir / "a.npy", a.data(), {3, 2});
  const std::string raw = slurp(dir / "a.npy");
  ASSERT_GE(raw.size(), 10u);
  EXPECT_EQ(raw.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header = size_t(uint8_t(raw[8])) | size_t(uint8_t(raw[9])) << 8;
  EXPECT_EQ((10 + header) % 64, 0u);  // np.save aligns the data to 64 bytes
  EXPECT_NE(raw.find("{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }"), std::string::npos);
  NpyArray r(dir / "a.npy");
  EXPECT_EQ(r.shape(), (std::vector<int64_t>{3, 2}));
  for (int64_t i = 0; i < 6; i++) EXPECT_EQ(r.at(i), a[size_t(i)]);
  const std::vector<uint32_t> b = {4000000000u, 1};
  write_npy(dir / "b.npy", b.data(), {2});
  EXPECT_NE(slurp(dir / "b.npy").find("'shape': (2,)"), std::string::npos);
  NpyArray rb(dir / "b.npy");
  EXPECT_EQ(rb.descr(), "<u4");
  EXPECT_EQ(rb.at(0), 4000000000ll);
  spit(dir / "c.npy", slurp(dir / "a.npy").substr(0, 100));
  EXPECT_THROW(NpyArray(dir / "c.npy"), loom::UserError);
  spit(dir / "c.npy", "garbage");
  EXPECT_THROW(NpyArray(dir / "c.npy"), loom::UserError);
  EXPECT_EQ(dir.count(), 3u);
}

TEST(DataNpy, AtomicFileAppearsOnlyOnCommit) {
  TempDir dir;
  {
    AtomicFile f(dir / "out");
    f.write("abc", 3);
    EXPECT_FALSE(file_exists(dir / "out"));
    f.commit();
  }
  EXPECT_EQ(slurp(dir / "out"), "abc");
  try {
    AtomicFile f(dir / "out");
    f.write("partial", 7);
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(slurp(dir / "out"), "abc");
  EXPECT_EQ(dir.count(), 1u);
  EXPECT_THROW(AtomicFile(dir / "no/such/dir/file"), loom::UserError);
}
