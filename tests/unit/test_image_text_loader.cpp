// The image-caption loader: batches independent of the worker count, every entry once per epoch and a
// new order each epoch, pixels equal to the transform of the decoded file and text equal to
// tokenize_caption; unreadable (corrupt, truncated, missing) images skipped, logged and counted, and a
// run over such an index equal to the run over the clean index; an exact resume from a saved position
// (mid-epoch and at the epoch's end); data-parallel ranks: without skips their batches concatenate to
// the one-process batch, with skips each rank's batches are the readable samples of its own stream.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "loom/core/error.h"
#include "loom/data/clip_tokenizer.h"
#include "loom/data/image_codec.h"
#include "loom/data/image_text_index.h"
#include "loom/data/image_text_loader.h"
#include "loom/data/image_transform.h"

namespace fs = std::filesystem;
using namespace loom::data;

namespace {

struct Fixture {
  fs::path dir = fs::temp_directory_path() / ("loom_image_text_loader_" + std::to_string(::getpid()));
  std::unique_ptr<ClipTokenizer> tok;
  std::vector<std::string> bad;  // file names of the unreadable entries
  Fixture() {
    fs::create_directories(dir / "img");
    const std::string vocab = (dir / "vocab.txt.gz").string();
    gzFile f = gzopen(vocab.c_str(), "wb");
    const std::string text = "#version\nr e\ne d</w>\ns q\nsq u\nsqu a\nsqua re\nc i\nci r\ncir c\ncirc le</w>\nt w\ntw o</w>";
    gzwrite(f, text.data(), unsigned(text.size()));
    gzclose(f);
    tok = ClipTokenizer::load(vocab);
  }
  ~Fixture() { fs::remove_all(dir); }

  // n entries; every `bad_every`-th (from 3) is corrupt, truncated or missing when bad_every > 0.
  // Writes <name>.json (all entries) and <name>_clean.json (the readable ones, same order).
  void make(const std::string& name, int n, int bad_every) {
    std::ofstream all(dir / (name + ".json")), clean(dir / (name + "_clean.json"));
    bad.clear();
    for (int i = 0; i < n; i++) {
      const std::string file = "img/" + name + "_" + std::to_string(i) + (i % 2 ? ".png" : ".jpg");
      const bool broken = bad_every > 0 && i % bad_every == 3;
      const int kind = (i / std::max(bad_every, 1)) % 3;
      if (!broken || kind != 2) {
        Image img;
        img.width = 20 + (i * 7) % 23;
        img.height = 18 + (i * 5) % 19;
        img.rgb.resize(size_t(img.width) * img.height * 3);
        for (size_t k = 0; k < img.rgb.size(); k++) img.rgb[k] = uint8_t((k * 31 + size_t(i) * 17) & 255);
        const std::string p = (dir / file).string();
        if (i % 2)
          write_png(p, img);
        else
          write_jpeg(p, img, 90);
        if (broken && kind == 0) {  // corrupt: garbage after the first bytes
          std::fstream g(p, std::ios::in | std::ios::out | std::ios::binary);
          g.seekp(0);
          g << "not an image at all, just text";
        } else if (broken && kind == 1) {  // truncated
          fs::resize_file(p, 40);
        }
      }
      const std::string line = "{\"image\": \"" + file + "\", \"caption\": \"" + (i % 3 ? "two red squares" : "a circle") +
                               " " + std::to_string(i) + "\"}\n";
      all << line;
      if (broken)
        bad.push_back(file);
      else
        clean << line;
    }
  }
  ImageTextIndex index(const std::string& name) const {
    ImageTextIndexConfig c;
    c.path = (dir / (name + ".json")).string();
    return ImageTextIndex::load(c);
  }
};

ImageTextLoaderConfig config(int64_t global, int workers, int rank = 0, int world = 1) {
  ImageTextLoaderConfig c;
  c.global_batch = global;
  c.workers = workers;
  c.rank = rank;
  c.world = world;
  c.seed = 42;
  c.context = 12;
  c.transform.size = 16;
  c.log = [](const std::string&) {};
  return c;
}

// What a test compares: per batch, the entries' paths, the pixels and the tokens.
struct Seen {
  std::vector<std::string> paths;
  std::vector<float> pixels;
  std::vector<int32_t> tokens;
  bool operator==(const Seen&) const = default;
};

// Batches until `steps` batches or (steps < 0) the end of the current epoch; false results recorded as
// an empty Seen.
std::vector<Seen> take(ImageTextLoader& loader, const ImageTextIndex& idx, int steps, const ImageTextLoaderConfig& c) {
  std::vector<Seen> out;
  ImageTextBatch b;
  for (int s = 0; steps < 0 || s < steps; s++) {
    if (!loader.next(b)) {
      out.emplace_back();
      if (steps < 0) break;
      continue;
    }
    Seen seen;
    for (int64_t i = 0; i < b.size; i++) seen.paths.emplace_back(idx.raw_path(b.entries[i]));
    const size_t floats = size_t(b.size) * 3 * size_t(c.transform.size) * size_t(c.transform.size);
    seen.pixels.assign(b.images, b.images + floats);
    seen.tokens.assign(b.text, b.text + size_t(b.size) * size_t(c.context));
    out.push_back(std::move(seen));
  }
  return out;
}

}  // namespace

TEST(ImageTextLoader, DeterministicEveryEntryOncePerEpochPixelsAndTokens) {
  Fixture fx;
  fx.make("d", 37, 0);
  const ImageTextIndex idx = fx.index("d");
  auto c1 = config(8, 1), c3 = config(8, 3);
  c3.prefetch = 2;
  ImageTextLoader a(idx, *fx.tok, c1), b(idx, *fx.tok, c3);
  EXPECT_EQ(a.nominal_steps_per_epoch(), 4);
  const auto sa = take(a, idx, 10, c1), sb = take(b, idx, 10, c3);
  ASSERT_EQ(sa.size(), 10u);
  EXPECT_TRUE(sa == sb) << "batches depend on the number of workers";
  // Epoch 0 = steps 0-3, step 4 ends it (false), epoch 1 = steps 5-8, step 9 ends it.
  EXPECT_TRUE(sa[4].paths.empty());
  EXPECT_TRUE(sa[9].paths.empty());
  std::set<std::string> e0, e1;
  for (int s = 0; s < 4; s++) e0.insert(sa[size_t(s)].paths.begin(), sa[size_t(s)].paths.end());
  for (int s = 5; s < 9; s++) e1.insert(sa[size_t(s)].paths.begin(), sa[size_t(s)].paths.end());
  EXPECT_EQ(e0.size(), 32u);  // 32 distinct of 37 (drop-last)
  EXPECT_EQ(e1.size(), 32u);
  EXPECT_NE(sa[0].paths, sa[5].paths) << "the order must change between epochs";
  // The order is image_text_epoch_order's.
  const auto order = image_text_epoch_order(idx, 42, 0);
  for (int j = 0; j < 8; j++) EXPECT_EQ(sa[1].paths[size_t(j)], idx.raw_path(order[size_t(8 + j)]));
  // Pixels: the transform of the decoded file with the crop keyed by (seed, epoch, entry key); text:
  // tokenize_caption.
  ImageTransform t(c1.transform);
  Image img, work;
  ResampleScratch scratch;
  std::vector<float> want(3 * 16 * 16);
  std::vector<int32_t> ids(12), tmp;
  for (int j = 0; j < 8; j++) {
    const size_t e = order[size_t(8 + j)];
    ASSERT_TRUE(decode_image(idx.image_path(e), img, nullptr));
    t.train(img, 42, 0, idx.key(e), want.data(), work, scratch);
    EXPECT_EQ(0, std::memcmp(want.data(), sa[1].pixels.data() + size_t(j) * want.size(), want.size() * 4)) << j;
    tokenize_caption(*fx.tok, idx.caption(e), ids.data(), 12, tmp);
    EXPECT_TRUE(std::equal(ids.begin(), ids.end(), sa[1].tokens.begin() + j * 12)) << j;
  }
  EXPECT_EQ(sa[1].tokens[0], fx.tok->bos());
}

TEST(ImageTextLoader, UnreadableImagesSkippedAndTheRunEqualsTheCleanIndex) {
  Fixture fx;
  fx.make("s", 60, 20);  // entries 3, 23, 43: corrupt, truncated, missing (5%)
  ASSERT_EQ(fx.bad.size(), 3u);
  const ImageTextIndex idx = fx.index("s"), clean = fx.index("s_clean");
  ASSERT_EQ(clean.size(), 57u);
  auto c = config(10, 2);
  std::vector<std::string> lines;
  c.log = [&](const std::string& l) { lines.push_back(l); };
  ImageTextLoader with_bad(idx, *fx.tok, c);
  auto cc = config(10, 2);
  ImageTextLoader without(clean, *fx.tok, cc);
  // 12 calls: epoch 0 (5 batches, then its end) and epoch 1 (the same); nothing of epoch 2 is read.
  const auto a = take(with_bad, idx, 12, c), b = take(without, clean, 12, cc);
  EXPECT_TRUE(a == b) << "a run over the index with unreadable images differs from the run over the clean index";
  EXPECT_TRUE(a[5].paths.empty()) << "epoch 0 has floor(57 / 10) = 5 batches";
  EXPECT_FALSE(a[4].paths.empty());
  EXPECT_EQ(with_bad.skipped(), 6);  // two epochs
  EXPECT_EQ(without.skipped(), 0);
  ASSERT_EQ(lines.size(), 6u);
  std::set<std::string> named;
  for (const auto& l : lines) {
    EXPECT_EQ(l.rfind("skipping unreadable image " + (fx.dir / "img").string() + "/s_", 0), 0u) << l;
    for (const auto& f : fx.bad)
      if (l.find((fx.dir / f).string() + ":") != std::string::npos) named.insert(f);
  }
  EXPECT_EQ(named.size(), 3u);
}

TEST(ImageTextLoader, ResumeYieldsTheBatchesOfTheUninterruptedRun) {
  Fixture fx;
  fx.make("r", 45, 10);
  const ImageTextIndex idx = fx.index("r");
  auto c = config(6, 2);
  ImageTextLoader full(idx, *fx.tok, c);
  const auto want = take(full, idx, 16, c);  // epoch 0: 6 batches (40 readable), then epoch 1
  for (int cut : {1, 3, 6, 7, 9}) {
    ImageTextLoader first(idx, *fx.tok, c);
    take(first, idx, cut, c);
    const LoaderPosition pos = first.position();
    ImageTextLoader resumed(idx, *fx.tok, c, pos);
    EXPECT_EQ(resumed.position(), pos);
    const auto got = take(resumed, idx, 16 - cut, c);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin() + cut)) << "resume after " << cut << " batches";
    if (cut == 7) {  // the end of epoch 0 was returned: the position is epoch 1's start
      EXPECT_EQ(pos.epoch, 1u);
    }
  }
  EXPECT_GT(full.position().skipped, 0);
}

TEST(ImageTextLoader, DataParallelRanks) {
  Fixture fx;
  fx.make("p", 50, 0);
  const ImageTextIndex idx = fx.index("p");
  auto c1 = config(8, 2);
  ImageTextLoader one(idx, *fx.tok, c1);
  const auto whole = take(one, idx, 7, c1);
  std::vector<std::vector<Seen>> ranks;
  for (int r = 0; r < 2; r++) {
    auto c = config(8, 1 + r, r, 2);
    ImageTextLoader l(idx, *fx.tok, c);
    ranks.push_back(take(l, idx, 7, c));
  }
  for (size_t s = 0; s < 7; s++) {
    Seen cat = ranks[0][s];
    cat.paths.insert(cat.paths.end(), ranks[1][s].paths.begin(), ranks[1][s].paths.end());
    cat.pixels.insert(cat.pixels.end(), ranks[1][s].pixels.begin(), ranks[1][s].pixels.end());
    cat.tokens.insert(cat.tokens.end(), ranks[1][s].tokens.begin(), ranks[1][s].tokens.end());
    EXPECT_TRUE(cat == whole[s]) << "step " << s;
  }

  // With unreadable images each rank fills its batches from the readable samples of its own stream:
  // its slice (4 positions) of every window of 8 of the epoch order, window after window.
  fx.make("q", 50, 7);
  const ImageTextIndex q = fx.index("q");
  const std::set<std::string> bad(fx.bad.begin(), fx.bad.end());
  const auto order = image_text_epoch_order(q, 42, 0);
  std::set<std::string> used;
  for (int r = 0; r < 2; r++) {
    std::vector<std::string> stream;
    for (size_t w = 0; w * 8 < order.size(); w++)
      for (size_t j = 0; j < 4; j++) {
        const size_t pos = w * 8 + size_t(r) * 4 + j;
        if (pos < order.size() && !bad.count(std::string(q.raw_path(order[pos])))) stream.emplace_back(q.raw_path(order[pos]));
      }
    auto c = config(8, 2, r, 2);
    ImageTextLoader l(q, *fx.tok, c);
    const auto got = take(l, q, -1, c);
    ASSERT_EQ(got.size(), stream.size() / 4 + 1) << "rank " << r;
    for (size_t s = 0; s + 1 < got.size(); s++) {
      EXPECT_TRUE(std::equal(got[s].paths.begin(), got[s].paths.end(), stream.begin() + long(s) * 4)) << r << " " << s;
      for (const auto& p : got[s].paths) EXPECT_TRUE(used.insert(p).second) << p << " used twice";
    }
  }
}

TEST(ImageTextLoader, BadConfiguration) {
  Fixture fx;
  fx.make("b", 5, 0);
  const ImageTextIndex idx = fx.index("b");
  EXPECT_THROW(ImageTextLoader(idx, *fx.tok, config(8, 1)), loom::UserError);   // fewer entries than a batch
  EXPECT_THROW(ImageTextLoader(idx, *fx.tok, config(3, 1, 0, 2)), loom::UserError);  // 3 not a multiple of 2
  EXPECT_THROW(ImageTextLoader(idx, *fx.tok, config(4, 0)), loom::UserError);  // no workers
}

TEST(ImageTextLoader, Gpt2BpeCaptions) {
  // The GPT-2 BPE for captions: no bos, so no start token; <|endoftext|> ends them and is the only largest id,
  // where the text tower pools (a start token equal to it made every caption pool position 0).
  TokenizerConfig tc;
  tc.vocab_file = std::string(LOOM_SOURCE_DIR) + "/data/gpt2/vocab.json";
  tc.merge_file = std::string(LOOM_SOURCE_DIR) + "/data/gpt2/merges.txt";
  const auto gpt2 = make_tokenizer(tc);
  std::vector<int32_t> row(8), scratch;
  tokenize_caption(*gpt2, "two red squares", row.data(), 8, scratch);
  const auto ids = gpt2->encode("two red squares");
  std::vector<int32_t> want(ids.begin(), ids.end());
  want.push_back(50256);
  want.resize(8, 0);
  EXPECT_EQ(row, want);
  // Cut: the end token stays last.
  tokenize_caption(*gpt2, "one two three four five six seven eight nine ten", row.data(), 8, scratch);
  const auto long_ids = gpt2->encode("one two three four five six seven eight nine ten");
  EXPECT_EQ(row.back(), 50256);
  EXPECT_TRUE(std::equal(row.begin(), row.end() - 1, long_ids.begin()));
  EXPECT_EQ(std::count(row.begin(), row.end(), 50256), 1);

  Fixture fx;
  fx.make("g", 12, 0);
  const ImageTextIndex idx = fx.index("g");
  auto c = config(4, 2);
  ImageTextLoader loader(idx, *gpt2, c);
  ImageTextBatch b;
  ASSERT_TRUE(loader.next(b));
  std::vector<int32_t> r(12), tmp;
  for (int j = 0; j < 4; j++) {
    tokenize_caption(*gpt2, idx.caption(b.entries[j]), r.data(), 12, tmp);
    EXPECT_TRUE(std::equal(r.begin(), r.end(), b.text + j * 12));
  }
}

TEST(ImageTextLoader, WithoutDropLastTheLastSmallerBatchHoldsTheRest) {
  // Evaluation (drop_last off): every readable image once per epoch, the last batch smaller; with
  // unreadable images the same batches as the clean index; independent of the worker count.
  Fixture fx;
  fx.make("t", 60, 20);  // 57 readable
  const ImageTextIndex idx = fx.index("t"), clean = fx.index("t_clean");
  auto c1 = config(10, 1), c3 = config(10, 3), cc = config(10, 2);
  c1.drop_last = c3.drop_last = cc.drop_last = false;
  c1.train = c3.train = cc.train = false;
  ImageTextLoader a(idx, *fx.tok, c1), b(idx, *fx.tok, c3), w(clean, *fx.tok, cc);
  const auto sa = take(a, idx, 14, c1), sb = take(b, idx, 14, c3), sw = take(w, clean, 14, cc);
  EXPECT_TRUE(sa == sb) << "batches depend on the number of workers";
  EXPECT_TRUE(sa == sw) << "the index with unreadable images differs from the clean index";
  // Epoch 0: 5 batches of 10, one of 7, then its end; epoch 1 the same.
  for (int s = 0; s < 5; s++) EXPECT_EQ(sa[size_t(s)].paths.size(), 10u) << s;
  EXPECT_EQ(sa[5].paths.size(), 7u);
  EXPECT_TRUE(sa[6].paths.empty());
  EXPECT_EQ(sa[12].paths.size(), 7u);
  EXPECT_TRUE(sa[13].paths.empty());
  std::multiset<std::string> e0;
  for (int s = 0; s < 6; s++) e0.insert(sa[size_t(s)].paths.begin(), sa[size_t(s)].paths.end());
  EXPECT_EQ(e0.size(), 57u);
  EXPECT_EQ(std::set<std::string>(e0.begin(), e0.end()).size(), 57u) << "an image twice in one epoch";
  // The last batch's pixels: the evaluation transform of the decoded files.
  ImageTextLoader again(idx, *fx.tok, c1);
  ImageTextBatch batch;
  for (int s = 0; s < 6; s++) ASSERT_TRUE(again.next(batch));
  ASSERT_EQ(batch.size, 7);
  ImageTransform t(c1.transform);
  Image img, work;
  ResampleScratch scratch;
  std::vector<float> want(3 * 16 * 16);
  for (int j = 0; j < 7; j++) {
    ASSERT_TRUE(decode_image(idx.image_path(batch.entries[j]), img, nullptr));
    t.eval(img, want.data(), work, scratch);
    EXPECT_EQ(0, std::memcmp(want.data(), batch.images + size_t(j) * want.size(), want.size() * 4)) << j;
  }
  EXPECT_FALSE(again.next(batch));
}
