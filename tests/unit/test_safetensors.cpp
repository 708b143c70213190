// safetensors: exact bytes, round trip, and every kind of damage reported with the file's name.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "loom/ckpt/model_weights.h"
#include "loom/ckpt/safetensors.h"
#include "loom/core/error.h"
#include "loom/models/decoder_model.h"

using namespace loom;
namespace fs = std::filesystem;

namespace {
std::string tmp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("loom_test_" + std::to_string(getpid()) + "_" + name)).string();
}
std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_all(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Safetensors, ExactBytes) {
  const std::string p = tmp_path("exact.safetensors");
  float v[2] = {1.0f, -2.0f};
  write_safetensors(p, {{"a", DType::F32, {2}, v, 8}});
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  std::string expect;
  uint64_t n = padded.size();
  for (int i = 0; i < 8; i++) expect += char((n >> (8 * i)) & 0xff);
  expect += padded;
  expect.append(reinterpret_cast<const char*>(v), 8);
  EXPECT_EQ(read_all(p), expect);
  fs::remove(p);
}

TEST(Safetensors, RoundTripAndDamage) {
  const std::string p = tmp_path("rt.safetensors");
  std::vector<float> a(6);
  for (int i = 0; i < 6; i++) a[i] = float(i) * 0.5f;
  int32_t b[3] = {7, -1, 9};
  write_safetensors(p, {{"w", DType::F32, {2, 3}, a.data(), 24}, {"i", DType::I32, {3}, b, 12}}, {{"k", "v"}});
  {
    SafetensorsFile f(p);
    ASSERT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.get("w").shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(static_cast<const float*>(f.get("w").data)[5], 2.5f);
    EXPECT_EQ(static_cast<const int32_t*>(f.get("i").data)[1], -1);
    EXPECT_EQ(f.metadata().at("k"), "v");
    EXPECT_NE(error_of([&] { f.get("nope"); }).find("no tensor named 'nope'"), std::string::npos);
  }
  std::string bytes = read_all(p);
  const std::string cut = tmp_path("cut.safetensors");
  write_all(cut, bytes.substr(0, bytes.size() - 4));
  EXPECT_NE(error_of([&] { SafetensorsFile f(cut); }).find(cut + ": tensor 'i' lies outside the file"), std::string::npos);
  write_all(cut, bytes.substr(0, 5));
  EXPECT_NE(error_of([&] { SafetensorsFile f(cut); }).find(cut), std::string::npos);
  std::string garbage = bytes;
  garbage[8] = '#';  // the header's opening brace
  write_all(cut, garbage);
  EXPECT_NE(error_of([&] { SafetensorsFile f(cut); }).find("malformed safetensors header"), std::string::npos);
  EXPECT_NE(error_of([&] { SafetensorsFile f(tmp_path("missing")); }).find("cannot open"), std::string::npos);
  fs::remove(p);
  fs::remove(cut);
}

TEST(Safetensors, ModelWeightsRefuseAnotherShape) {
  ModelConfig c;
  c.num_layers = 1;
  c.hidden_size = 8;
  c.num_attention_heads = 2;
  c.ffn_hidden_size = 16;
  c.seq_length = c.max_position_embeddings = 4;
  c.vocab_size = c.padded_vocab_size = 16;
  DecoderModel m(c, 1, 4);
  m.init(3);
  const std::string p = tmp_path("model.safetensors");
  save_weights(p, m.params(), model_config_metadata(c));
  DecoderModel same(c, 1, 4);
  load_weights(p, same.params());
  EXPECT_EQ(0, std::memcmp(same.params().values(), m.params().values(), size_t(m.params().numel()) * 4));
  ModelConfig other = c;
  other.hidden_size = 12;
  other.ffn_hidden_size = 24;
  DecoderModel wrong(other, 1, 4);
  const std::string err = error_of([&] { load_weights(p, wrong.params()); });
  EXPECT_NE(err.find("has shape [16, 8] but the model needs [16, 12]"), std::string::npos) << err;
  EXPECT_EQ(model_config_from_metadata(SafetensorsFile(p).metadata(), p).hidden_size, 8);
  fs::remove(p);
}
