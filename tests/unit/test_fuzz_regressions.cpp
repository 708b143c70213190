// Defects the fuzz targets (fuzz/) found in the parsers of user input, one test each: the input that
// crashed (or was read out of bounds, or escaped as another exception type) is now a UserError naming
// the file. The crash inputs themselves are kept under fuzz/regressions/<target>/ and replayed by
// scripts/fuzz.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "loom/ckpt/checkpoint_reader.h"
#include "loom/ckpt/coca_state.h"
#include "loom/ckpt/hf_llama.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/data/gpt_data.h"
#include "loom/data/indexed_dataset.h"
#include "loom/data/make_images_args.h"
#include "loom/data/numpy_compat.h"
#include "loom/data/tiktoken_tokenizer.h"
#include "loom/data/tokenizer.h"
#include "loom/report/read_log.h"
#include "loom/train/arguments.h"
#include "loom/train/coca_args.h"
#include "loom/util/cli.h"
#include "test_data_tokenizer_util.h"

namespace {

// The bytes of fuzz/regressions/<target>/<name> (a kept fuzz input).
std::string regression_input(const std::string& target_and_name) {
  std::ifstream in(std::string(LOOM_SOURCE_DIR) + "/fuzz/regressions/" + target_and_name, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

using loom_test::TempFile;
using loom_test::user_error;

// A version 1.0 .npy header (padded as np.save pads it) followed by `data`.
std::string npy(const std::string& dict, const std::string& data = "") {
  std::string h = dict;
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += char(h.size() & 0xff);
  out += char(h.size() >> 8);
  return out + h + data;
}

}  // namespace

// fuzz_npy: a shape whose element count times the item size wraps around 2^64 to the file's data size
// (here 0) was accepted, and at() then read far outside the mapping.
TEST(FuzzRegressions, NpyShapeOverflowIsRejected) {
  TempFile f("overflow.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (4611686018427387904,), }"));
  EXPECT_NE(user_error([&] { loom::data::NpyArray a(f.path()); }).find("is too large"), std::string::npos);
  TempFile g("overflow2.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (65536, 65536, 65536, 65536), }"));
  EXPECT_NE(user_error([&] { loom::data::NpyArray a(g.path()); }).find("is too large"), std::string::npos);
}

// fuzz_npy: a dimension longer than stoll takes escaped as std::out_of_range ("internal" error, exit 1).
TEST(FuzzRegressions, NpyHugeDimensionIsAUserError) {
  TempFile f("huge.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (123456789012345678901234567890,), }"));
  const std::string e = user_error([&] { loom::data::NpyArray a(f.path()); });
  EXPECT_NE(e.find(f.path()), std::string::npos) << e;
  EXPECT_NE(e.find("is too large"), std::string::npos) << e;
  // A zero dimension still gives an empty array, however long the others are.
  TempFile z("zero.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (0, 999999999999999999), }"));
  loom::data::NpyArray a(z.path());
  EXPECT_EQ(a.size(), 0);
}

namespace {

// A safetensors file: 8-byte header length, the JSON header padded with spaces, the data.
std::string safetensors(const std::string& header_json, const std::string& data = "") {
  std::string h = header_json;
  while (h.size() % 8) h += ' ';
  std::string out;
  for (int i = 0; i < 8; i++) out += char((h.size() >> (8 * i)) & 0xff);
  return out + h + data;
}

}  // namespace

// fuzz_safetensors: an "__metadata__" that is not an object escaped as nlohmann's invalid_iterator.
TEST(FuzzRegressions, SafetensorsMetadataMustBeAnObject) {
  TempFile f("meta.safetensors",
             safetensors(R"({"__metadata__":"x","a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')));
  const std::string e = user_error([&] { loom::SafetensorsFile s(f.path()); });
  EXPECT_NE(e.find(f.path() + ": malformed safetensors header: __metadata__ is not an object"), std::string::npos) << e;
}

// fuzz_safetensors: shape [2^32, 2^32] overflowed int64 (UB); wrapped to 0 elements it matched 0 bytes.
TEST(FuzzRegressions, SafetensorsElementCountCannotWrap) {
  TempFile f("wrap.safetensors", safetensors(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"));
  const std::string e = user_error([&] { loom::SafetensorsFile s(f.path()); });
  EXPECT_NE(e.find("tensor 'a' byte length does not match its shape"), std::string::npos) << e;
  // Still fine: an empty tensor with a huge other dimension, and an ordinary one.
  TempFile g("empty.safetensors",
             safetensors(R"({"e":{"dtype":"F32","shape":[4294967296,0],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                         std::string(8, '\0')));
  loom::SafetensorsFile s(g.path());
  EXPECT_EQ(s.get("e").bytes, 0u);
  EXPECT_EQ(s.get("s").bytes, 8u);
}

// fuzz_hf_config: num_key_value_heads 2^32 became 0 in Loom's int config and then divided
// num_attention_heads (SIGFPE); a huge original_max_position_embeddings was cast to int (UB).
TEST(FuzzRegressions, HfConfigIntegersMustFitLoomsConfig) {
  const std::string dir = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_hf_regression";
  std::filesystem::create_directories(dir);
  auto import_with = [&](const std::string& extra) {
    std::ofstream(dir + "/config.json")
        << R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
               "num_attention_heads": 2, "vocab_size": 40)"
        << extra << "}";
    return user_error([&] { loom::import_hf_llama(dir, dir + "/out.safetensors"); });
  };
  std::string e = import_with(R"(, "num_key_value_heads": 4294967296)");
  EXPECT_NE(e.find(dir + "/config.json: 'num_key_value_heads' must be a positive integer (at most 2147483647)"),
            std::string::npos) << e;
  e = import_with(R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 1e300})");
  EXPECT_NE(e.find("a positive original_max_position_embeddings"), std::string::npos) << e;
  // In range, the import goes on to the weights (none here).
  e = import_with(R"(, "num_key_value_heads": 1)");
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << e;
  std::filesystem::remove_all(dir);
}

// fuzz_deepspeed_config: a float integer field beyond int's range was cast by nlohmann's get<int>() (UB),
// reduce_bucket_size beyond int64's by int64_t(double) (UB); an integer 2^32 wrapped to 0.
TEST(FuzzRegressions, DeepSpeedIntegersOutOfRange) {
  auto validate_with = [](const std::string& json) {
    TempFile f("ds.json", json);
    loom::ArgParser p("loom train", "test");
    loom::TrainArgs a;
    a.register_flags(p);
    std::vector<std::string> args = {"--num-layers", "2", "--hidden-size", "8", "--num-attention-heads", "2",
                                     "--seq-length", "16", "--deepspeed-config", f.path()};
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    try {
      loom::TrainArgs::parse(p, int(argv.size()), argv.data());
      a.validate(p, false);
    } catch (const loom::UserError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string e = validate_with(R"({"train_micro_batch_size_per_gpu": 1e30})");
  EXPECT_NE(e.find("ds.json: train_micro_batch_size_per_gpu 1e+30 is out of range"), std::string::npos) << e;
  e = validate_with(R"({"zero_optimization": {"reduce_bucket_size": 1e20}})");
  EXPECT_NE(e.find("ds.json: zero_optimization.reduce_bucket_size 1e+20 is out of range"), std::string::npos) << e;
  e = validate_with(R"({"train_micro_batch_size_per_gpu": 4294967296})");
  EXPECT_NE(e.find("train_micro_batch_size_per_gpu 4294967296 is out of range"), std::string::npos) << e;
  e = validate_with(R"({"fp16": {"enabled": true, "initial_scale_power": -1e9}})");
  EXPECT_NE(e.find("fp16.initial_scale_power -1000000000.0 is out of range"), std::string::npos) << e;
  // Ordinary values still map: micro-batch 2 x global 8 passes validate().
  e = validate_with(R"({"train_micro_batch_size_per_gpu": 2, "train_batch_size": 8, "zero_optimization": {"stage": 1, "reduce_bucket_size": 5e8}} )");
  EXPECT_EQ(e, "");
}

namespace {

// An iteration directory with one shard file holding model/w as [rows, 6] = 1, 2, ..., and a
// metadata.json recording the tensor as [4, 6] with the shard records `shards` (file, shape, dim, offset).
struct TinyCheckpoint {
  std::string dir;
  explicit TinyCheckpoint(const std::string& shards, int64_t rows = 4) {
    dir = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_ckpt_regression";
    std::filesystem::create_directories(dir);
    std::vector<float> w(size_t(rows) * 6);
    for (size_t i = 0; i < w.size(); i++) w[i] = float(i + 1);
    const uint32_t crc =
        loom::write_safetensors(dir + "/s.safetensors", {{"model/w", loom::DType::F32, {rows, 6}, w.data(), w.size() * 4}});
    const auto bytes = std::filesystem::file_size(dir + "/s.safetensors");
    std::ofstream(dir + "/metadata.json") << R"({"files": {"s.safetensors": {"crc32": )" << crc << R"(, "bytes": )"
                                          << bytes << R"(}}, "tensors": {"model/w": {"global_shape": [4, 6], "shards": )"
                                          << shards << "}}}";
  }
  ~TinyCheckpoint() { std::filesystem::remove_all(dir); }
};

}  // namespace

// fuzz_checkpoint: a shard record whose shape or offset does not fit the tensor was read outside the
// shard's data (the copy trusted the record's region); one with an empty shape indexed shape[0].
TEST(FuzzRegressions, CheckpointShardMustFitItsTensor) {
  std::vector<float> dst(24);
  for (const char* bad : {R"([{"file": "s.safetensors", "shape": [4, 6], "dim": 0, "offset": 2}])",
                          R"([{"file": "s.safetensors", "shape": [4, 6], "dim": 7, "offset": 0}])",
                          R"([{"file": "s.safetensors", "shape": [], "dim": 0, "offset": 0}])",
                          R"([{"file": "s.safetensors", "shape": [4, 6], "dim": -1, "offset": -3}])"}) {
    TinyCheckpoint c(bad);
    loom::CheckpointReader r(c.dir);
    const std::string e = user_error([&] { r.read("model/w", {4, 6}, -1, 0, {4, 6}, dst.data()); });
    EXPECT_NE(e.find("does not fit the tensor's shape [4, 6]"), std::string::npos) << bad << ": " << e;
  }
  // The same shard recorded correctly reads back exactly, whole and as a tensor-parallel row slice.
  TinyCheckpoint good(R"([{"file": "s.safetensors", "shape": [4, 6], "dim": -1, "offset": 0}])");
  loom::CheckpointReader r(good.dir);
  r.read("model/w", {4, 6}, -1, 0, {4, 6}, dst.data());
  for (int i = 0; i < 24; i++) EXPECT_EQ(dst[size_t(i)], float(i + 1));
  std::vector<float> half(12);
  r.read("model/w", {4, 6}, 0, 2, {2, 6}, half.data());
  for (int i = 0; i < 12; i++) EXPECT_EQ(half[size_t(i)], float(13 + i));
}

// fuzz_checkpoint: a float where the metadata needs an integer (a shape of 3.3e124) was cast to int64_t by
// nlohmann's get<>(), undefined behaviour (UBSan); now a malformed-metadata error (input kept in
// fuzz/regressions/fuzz_checkpoint).
TEST(FuzzRegressions, CheckpointIntegersMustBeIntegers) {
  std::vector<float> dst(24);
  for (const char* bad : {R"([{"file": "s.safetensors", "shape": [3.33333e+124, 6], "dim": 0, "offset": 0}])",
                          R"([{"file": "s.safetensors", "shape": [4, 6], "dim": 0.5, "offset": 0}])",
                          R"([{"file": "s.safetensors", "shape": [4, 6], "dim": 4294967296, "offset": 0}])",
                          R"([{"file": "s.safetensors", "shape": [4, 6], "dim": -1, "offset": 1e30}])",
                          R"([{"file": "s.safetensors", "shape": 4, "dim": -1, "offset": 0}])"}) {
    TinyCheckpoint c(bad);
    loom::CheckpointReader r(c.dir);
    const std::string e = user_error([&] { r.read("model/w", {4, 6}, -1, 0, {4, 6}, dst.data()); });
    EXPECT_NE(e.find("malformed checkpoint metadata"), std::string::npos) << bad << ": " << e;
  }
}

// fuzz_checkpoint: overlapping shard records whose areas add up to the tensor's loaded with part of
// it never written (zeros, or whatever the buffer held).
TEST(FuzzRegressions, CheckpointShardsMustNotOverlap) {
  // Rows 0-1 recorded twice: 24 elements, the count of [4, 6], but rows 2-3 come from nowhere.
  TinyCheckpoint c(R"([{"file": "s.safetensors", "shape": [2, 6], "dim": 0, "offset": 0},
                       {"file": "s.safetensors", "shape": [2, 6], "dim": 0, "offset": 0}])",
                   2);
  loom::CheckpointReader r(c.dir);
  std::vector<float> dst(24, -1.f);
  const std::string e = user_error([&] { r.read("model/w", {4, 6}, -1, 0, {4, 6}, dst.data()); });
  EXPECT_NE(e.find("shards of 'model/w' overlap"), std::string::npos) << e;
}

// fuzz_tiktoken: a rank of 111,111,111 in a 2.8 kB file made a 888 MB table before the ranks were checked
// (input kept in fuzz/regressions/fuzz_tiktoken).
TEST(FuzzRegressions, TiktokenRankBeyondTheFileIsRejectedFirst) {
  TempFile f("ranks.tiktoken", "QQ== 0\nQg== 111111111\n");
  const std::string e = user_error([&] { loom::data::load_tiktoken_tokenizer(f.path()); });
  EXPECT_NE(e.find("line 2: rank 111111111 is beyond the file's 3 lines"), std::string::npos) << e;
}

// fuzz_sentencepiece: a model whose piece list holds an empty piece made libsentencepiece's trie builder
// throw Darts::Details::Exception out of LoadFromSerializedProto (std::terminate: no UserError).
TEST(FuzzRegressions, SentencePieceTrieExceptionIsAUserError) {
  const std::string input = regression_input("fuzz_sentencepiece/darts_throws");
  const size_t sep = input.find("\n--8<--\n");
  ASSERT_NE(sep, std::string::npos);
  TempFile f("spm.model", input.substr(0, sep));
  loom::data::TokenizerConfig c;
  c.type = "SentencePieceTokenizer";
  c.tokenizer_model = f.path();
  const std::string e = user_error([&] { loom::data::make_tokenizer(c); });
  EXPECT_NE(e.find("tokenizer file '" + f.path() + "': not a SentencePiece model ("), std::string::npos) << e;
  EXPECT_NE(e.find("zero-length key"), std::string::npos) << e;
}

namespace {

// fuzz_coca_state's input (state.json SEP model.safetensors) written into a tag directory, and the shape
// the target checks it against.
struct CocaTag {
  explicit CocaTag(const std::string& input_file) {
    std::ifstream in(std::string(LOOM_SOURCE_DIR) + "/fuzz/" + input_file, std::ios::binary);
    const std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t sep = input.find("\n--8<--\n");
    EXPECT_NE(sep, std::string::npos) << input_file;
    dir = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_coca_epoch_1";
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/state.json", std::ios::binary) << input.substr(0, sep);
    std::ofstream(dir + "/model.safetensors", std::ios::binary) << input.substr(sep + 8);
  }
  ~CocaTag() { std::filesystem::remove_all(dir); }
  static nlohmann::json shape() {
    return {{"image_size", 32},   {"patch_size", 8},       {"vision_width", 16},     {"vision_layers", 1},
            {"vision_heads", 2},  {"vision_mlp_hidden", 32}, {"rope_pt_grid", 0},    {"text_width", 16},
            {"text_layers", 1},   {"text_heads", 2},       {"text_mlp_hidden", 32},  {"text_context_length", 8},
            {"text_vocab_size", 64}, {"decoder_layers", 1}, {"pooler_queries", 4},  {"pooler_heads", 2},
            {"embed_dim", 8}};
  }
  std::string error() const {
    return user_error([&] { loom::read_coca_state(dir, shape()); });
  }
  std::string dir;
};

}  // namespace

// fuzz_coca_state's seed: every counter, the loss scaler and the loader's position as saved.
TEST(FuzzRegressions, CocaStateSeedReadsAsSaved) {
  CocaTag t("corpus/fuzz_coca_state/fp16_scaler");
  const loom::CocaTrainState st = loom::read_coca_state(t.dir, CocaTag::shape());
  EXPECT_EQ(st.epoch, 2);
  EXPECT_EQ(st.step, 40);
  EXPECT_EQ(st.batch_in_epoch, 3);
  EXPECT_EQ(st.optimizer_steps, 38);
  EXPECT_TRUE(st.has_scaler);
  EXPECT_EQ(st.scaler.scale, 65536.0f);
  EXPECT_EQ(st.scaler.growth_tracker, 12);
  EXPECT_EQ(st.scaler.hysteresis_tracker, 2);
  EXPECT_EQ(st.loader, nlohmann::json({{"epoch", 2}, {"position", 96}, {"seed", 0}}));
  auto shape = CocaTag::shape();
  shape["embed_dim"] = 16;
  EXPECT_EQ(user_error([&] { loom::read_coca_state(t.dir, shape); }),
            "checkpoint " + t.dir + " was trained with embed_dim = 8, this run has 16");
}

// Reviewing state.json's reader for fuzz_coca_state: the counters and the loss scaler were read after the
// JSON error handler, so a non-object loss_scaler escaped as nlohmann's type_error, a float counter beyond
// int64 was cast (undefined behaviour), and a "files" entry naming the directory itself made file_size
// throw std::filesystem_error.
TEST(FuzzRegressions, CocaStateBadValuesAreUserErrors) {
  {
    CocaTag t("regressions/fuzz_coca_state/loss_scaler_not_an_object");
    EXPECT_EQ(t.error(), t.dir + "/state.json: loss_scaler is not an object");
  }
  {
    CocaTag t("regressions/fuzz_coca_state/epoch_float_out_of_range");
    EXPECT_EQ(t.error(), t.dir + "/state.json: epoch 1e+300 is not an integer");
  }
  {
    CocaTag t("regressions/fuzz_coca_state/file_is_the_directory");
    EXPECT_EQ(t.error(), "checkpoint " + t.dir + " lacks .");
  }
}

// Reviewing make-images' checks for fuzz_subcommand_args: --num-train + --num-val was summed in int64, so
// 9223372036854775807 + 1 overflowed (undefined behaviour; UBSan stopped the target on the kept input).
TEST(FuzzRegressions, MakeImagesCountsDoNotOverflow) {
  std::ifstream in(std::string(LOOM_SOURCE_DIR) + "/fuzz/regressions/fuzz_subcommand_args/num_images_sum_overflows");
  std::vector<std::string> args;
  for (std::string line; std::getline(in, line);) args.push_back(line);
  ASSERT_EQ(args.size(), 7u);
  ASSERT_EQ(args[0], "make-images");
  std::vector<char*> argv;
  for (size_t i = 1; i < args.size(); i++) argv.push_back(args[i].data());
  loom::data::SyntheticImagesConfig cfg;
  ASSERT_TRUE(loom::data::parse_make_images_args(int(argv.size()), argv.data(), cfg));
  EXPECT_EQ(cfg.num_train, 9223372036854775807);
  EXPECT_EQ(user_error([&] { loom::data::check_synthetic_images_config(cfg); }),
            "--num-train + --num-val must be at most 100000000");
  cfg.num_train = 99'999'999;
  cfg.num_val = 2;
  EXPECT_EQ(user_error([&] { loom::data::check_synthetic_images_config(cfg); }),
            "--num-train + --num-val must be at most 100000000");
}

// fuzz_npy: cached index maps of the right shapes, in bounds and in document order, whose sample-idx gives
// one sample too few tokens were loaded, and reading that sample ended the run with std::runtime_error
// ("internal" error). check_maps now counts every sample's tokens, so such maps are rebuilt: the samples
// equal those of a fresh build. The dataset and cache names are fuzz_npy's.
TEST(FuzzRegressions, CachedSampleOfTheWrongLengthIsRebuilt) {
  const std::string dir = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_npy_maps";
  std::filesystem::create_directories(dir);
  const std::string prefix = dir + "/maps";
  {
    loom::data::IndexedDatasetWriter w(prefix, loom::data::kDtypeUint16);
    int32_t next = 0;
    for (int d = 0; d < 5; d++) {
      std::vector<int32_t> ids(size_t(3 + 2 * d));
      for (auto& v : ids) v = next++;
      w.add_item(ids.data(), ids.size());
      w.end_document();
    }
    w.finalize();
  }
  loom::data::GptDataConfig c;
  c.data_path = {prefix};
  c.split = "1,0,0";
  c.seq_length = 8;
  c.seed = 1234;
  c.train_samples = 6;
  c.quiet = true;
  auto samples = [&] {
    const loom::data::GptDatasets sets = loom::data::build_gpt_datasets(c);
    std::vector<int32_t> all;
    std::vector<int32_t> tokens(9);
    for (int64_t i = 0; i < sets.train->size(); i++) {
      sets.train->get(i, tokens.data());
      all.insert(all.end(), tokens.begin(), tokens.end());
    }
    return all;
  };
  const std::vector<int32_t> fresh = samples();
  const std::string input = regression_input("fuzz_npy/sample_of_wrong_length");
  const std::string sep = "\n--8<--\n";
  const size_t a = input.find(sep), b = input.find(sep, a + sep.size());
  ASSERT_NE(b, std::string::npos);
  const std::string base = prefix + "_train_indexmap_6ns_8sl_1234s";
  std::ofstream(base + "_doc_idx.npy", std::ios::binary) << input.substr(0, a);
  std::ofstream(base + "_sample_idx.npy", std::ios::binary) << input.substr(a + sep.size(), b - a - sep.size());
  std::ofstream(base + "_shuffle_idx.npy", std::ios::binary) << input.substr(b + sep.size());
  EXPECT_EQ(samples(), fresh);
  std::filesystem::remove_all(dir);
}

// fuzz_hf_tokenizer (long run): a 4.4 kB tokenizer.json giving one vocabulary entry id 243333337 sized the
// id table for it (7.8 GB). Ids far beyond the file's entries are refused before any table is sized.
TEST(FuzzRegressions, HfTokenizerIdFarBeyondTheFileIsRejectedFirst) {
  const std::string input = regression_input("fuzz_hf_tokenizer/id_allocates_7gb");
  const size_t sep = input.find("\n--8<--\n");
  ASSERT_NE(sep, std::string::npos);
  TempFile f("tokenizer.json", input.substr(0, sep));
  loom::data::TokenizerConfig c;
  c.type = "HuggingFaceTokenizer";
  c.tokenizer_model = f.path();
  const std::string e = user_error([&] { loom::data::make_tokenizer(c); });
  EXPECT_NE(e.find("tokenizer file '" + f.path() + "': id 243333337 is beyond the file's "), std::string::npos) << e;
  EXPECT_NE(e.find("by more than 65536 (ids must be 0..n-1)"), std::string::npos) << e;
}

// fuzz_training_log (long run): a line "validation loss at iteration |" made MegatronParser read the
// iteration number 29 characters into its first field, which trimming had left 28 long: a heap read past
// the string (under ASan: heap-buffer-overflow). Such a line has no iteration and is passed over; the
// validation line beside it still counts.
TEST(FuzzRegressions, ValidationLineWithoutIterationIsPassedOver) {
  TempFile f("run.log",
             " iteration        1/      10 | consumed samples:            8 | elapsed time per iteration (ms): 100.0 | "
             "learning rate: 1.000000E-04 | global batch size:     8 | lm loss: 1.000000E+01 | loss scale: 1.0 | "
             "number of skipped iterations:   0 | number of nan iterations:   0 |\n"
             " validation loss at iteration |\n"
             " validation loss at iteration 1 | lm loss value: 9.500000E+00 | lm loss PPL: 1.335973E+04 |\n");
  const loom::report::RunTable t = loom::report::read_log(f.path());
  ASSERT_EQ(t.rows().size(), 1u);
  const auto& row = t.rows().begin()->second;
  ASSERT_TRUE(row.count("valid_loss[lm loss]"));
  EXPECT_EQ(row.at("valid_loss[lm loss]").text, "9.500000E+00");
  const std::string input = regression_input("fuzz_training_log/validation_line_without_number");
  ASSERT_FALSE(input.empty());
  TempFile crash("crash.log", input);
  try {
    (void)loom::report::read_log(crash.path());
  } catch (const loom::UserError&) {  // not a recognised log: also fine
  }
}

// fuzz_training_log (second long run): a pipeline-splitter line whose batch count is 66 digits (strtoll's
// LLONG_MAX) made the iteration number (epoch - 1) x batches + batch overflow int64 (undefined behaviour,
// UBSan's "signed integer overflow"). Counts whose iteration does not fit mark the line as not the
// splitter's; the good line beside it still counts.
TEST(FuzzRegressions, SplitterLineWhoseIterationOverflowsIsPassedOver) {
  TempFile f("split.log",
             "| epoch   1 |     2/  323 batches | lr 0.00 | ms/batch 1600.43 | loss  6.84 | ppl   933.51\n"
             "| epoch   5 |     666666666666666666666666/  323 batches | lr 0.00 | ms/batch 1.00 | loss  6.00\n"
             "| epoch   3 |     1/  9223372036854775807 batches | lr 0.00 | ms/batch 1.00 | loss  6.00\n");
  const loom::report::RunTable t = loom::report::read_log(f.path());
  ASSERT_EQ(t.rows().size(), 1u);
  EXPECT_EQ(t.rows().begin()->first, 2);
  EXPECT_EQ(t.rows().begin()->second.at("step_time_ms").text, "1600.43");
  const std::string input = regression_input("fuzz_training_log/splitter_iteration_overflows");
  ASSERT_FALSE(input.empty());
  TempFile crash("crash.log", input);
  try {
    (void)loom::report::read_log(crash.path());
  } catch (const loom::UserError&) {  // not a recognised log: also fine
  }
}

// fuzz_subcommand_args (3 December, third session, 543,906 inputs): `train --model coca --patch-size 0`
// divided by the patch size (the vision grid, for the RoPE grid's default) before the shape check refused
// it: UBSan's "division by zero", SIGFPE in a release build. The default is now taken after the check.
TEST(FuzzRegressions, CocaPatchSizeZeroIsRefusedBeforeTheGrid) {
  std::vector<std::string> args = {"--model", "coca", "--patch-size", "0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  loom::CocaArgs a;
  loom::ArgParser p("loom train --model coca", "test");
  a.register_flags(p);
  ASSERT_TRUE(p.parse(int(argv.size()), argv.data()));
  try {
    a.validate(1);
    FAIL() << "--patch-size 0 was accepted";
  } catch (const loom::UserError& e) {
    EXPECT_STREQ(e.what(), "--patch-size must be positive (got 0)");
  }
  EXPECT_FALSE(regression_input("fuzz_subcommand_args/coca_patch_size_zero").empty());
}

// fuzz_subcommand_args (3 December, after the fix above, 842,725 inputs): `plan --model-preset llama3-8b
// --tensor-model-parallel-size 0` divided the query groups by the tensor-parallel size before the size's own
// check: UBSan's "division by zero" (SIGFPE in release). The size is checked first.
TEST(FuzzRegressions, GroupedQueryAttentionWithTensorParallelZeroIsRefused) {
  std::vector<std::string> args = {"--model-preset", "llama3-8b", "--tensor-model-parallel-size", "0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  loom::ArgParser p("loom plan", "test");
  loom::TrainArgs a;
  a.register_flags(p);
  ASSERT_TRUE(loom::TrainArgs::parse(p, int(argv.size()), argv.data()));
  try {
    a.validate(p, /*need_data=*/false);
    FAIL() << "--tensor-model-parallel-size 0 was accepted";
  } catch (const loom::UserError& e) {
    EXPECT_STREQ(e.what(), "--tensor-model-parallel-size must be positive");
  }
  EXPECT_FALSE(regression_input("fuzz_subcommand_args/plan_gqa_tp_zero").empty());
}
