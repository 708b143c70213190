// The Loom side of test_eval_metrics.py (src/loom/eval): retrieval metrics, zero-shot classifier and
// accuracy, and EVA-CLIP's evaluation line.
//   eval_driver retrieval IN OUT EPOCH VAL_LOSS NUM_SAMPLES
//       IN: int32 n, E; float32 logit_scale; image [n,E]; text [n,E] (normalised features)
//       OUT: int64 i2t preds [n], t2i preds [n]; stdout: the `Eval Epoch:` line of the validation metrics,
//       then their results.jsonl line
//   eval_driver repr VALUE...               Python's repr of each value (C99 hex floats), one per line
//   eval_driver classifier IN.json OUT      {"E": .., "classnames": [..], "templates": [..]}
//       texts are embedded by a fixed hash (below; test_eval_metrics.py has the same one); OUT: float32
//       W [E,C]; stdout: every text batch given to the embedder, one text per line, "--" between calls
//   eval_driver zeroshot IN OUT EPOCH BATCH
//       IN: int32 n, E, C; float32 W [E,C]; image latents [n,E]; int32 targets [n]
//       OUT: int64 topk indices [n, min(5,C)]; stdout: the zero-shot `Eval Epoch:` line
//   eval_driver format KIND VALUE...        KIND: py | int | numpy; VALUE as C99 hex float; one per line
//   eval_driver template TEMPLATE NAME      prints fill_template's text
// Bad input to the library (a template field other than {}, a target outside the classes) ends with
// `loom: error: ...` and exit code 2.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/eval/eval_log.h"
#include "loom/eval/retrieval.h"
#include "loom/eval/zero_shot.h"

using namespace loom;
using namespace loom::eval;

namespace {

template <class T>
std::vector<T> read_vec(std::ifstream& in, size_t n) {
  std::vector<T> v(n);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(n * sizeof(T)));
  if (!in) fail("short input");
  return v;
}

template <class T>
void write_vec(std::ofstream& out, const std::vector<T>& v) {
  out.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(T)));
}

// A stand-in text tower: byte c at position p adds (c % 7) - 3 to component (c + 3p) mod E. Integer
// sums, so the float32 latents are exact and the Python side reproduces them bit for bit.
void hash_embed(const std::vector<std::string>& texts, float* out, int E) {
  for (size_t t = 0; t < texts.size(); t++) {
    float* row = out + t * size_t(E);
    for (int k = 0; k < E; k++) row[k] = 0;
    for (size_t p = 0; p < texts[t].size(); p++) {
      const int c = static_cast<unsigned char>(texts[t][p]);
      row[(c + 3 * p) % size_t(E)] += float(c % 7 - 3);
    }
  }
}

int run(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "retrieval" && argc == 7) {
    std::ifstream in(argv[2], std::ios::binary);
    auto hdr = read_vec<int32_t>(in, 2);
    const float scale = read_vec<float>(in, 1)[0];
    const int n = hdr[0], E = hdr[1];
    auto img = read_vec<float>(in, size_t(n) * E), txt = read_vec<float>(in, size_t(n) * E);
    ClipRetrieval r = clip_retrieval_metrics(img.data(), txt.data(), n, E, scale);
    std::ofstream out(argv[3], std::ios::binary);
    write_vec(out, r.i2t_preds);
    write_vec(out, r.t2i_preds);
    std::vector<EvalMetric> m;
    add_retrieval_metrics(m, r);
    set_metric(m, "val_loss", std::strtod(argv[5], nullptr), MetricKind::PyFloat);
    set_metric(m, "epoch", std::atoi(argv[4]), MetricKind::PyInt);
    set_metric(m, "num_samples", std::atoi(argv[6]), MetricKind::PyInt);
    std::printf("%s\n", eval_epoch_line(std::atoi(argv[4]), m).c_str());
    std::printf("%s\n", results_json_line(m).c_str());
    return 0;
  }
  if (mode == "repr") {
    for (int i = 2; i < argc; i++) std::printf("%s\n", python_float_repr(std::strtod(argv[i], nullptr)).c_str());
    return 0;
  }
  if (mode == "classifier" && argc == 4) {
    std::ifstream in(argv[2]);
    nlohmann::json j = nlohmann::json::parse(in);
    const int E = j["E"];
    auto classnames = j["classnames"].get<std::vector<std::string>>();
    auto templates = j["templates"].get<std::vector<std::string>>();
    auto W = build_zero_shot_classifier(classnames, templates, E, [&](const std::vector<std::string>& texts, float* lat) {
      for (const std::string& t : texts) std::printf("%s\n", t.c_str());
      std::printf("--\n");
      hash_embed(texts, lat, E);
    });
    std::ofstream out(argv[3], std::ios::binary);
    write_vec(out, W);
    return 0;
  }
  if (mode == "zeroshot" && argc == 6) {
    std::ifstream in(argv[2], std::ios::binary);
    auto hdr = read_vec<int32_t>(in, 3);
    const int n = hdr[0], E = hdr[1], C = hdr[2], batch = std::atoi(argv[5]);
    auto W = read_vec<float>(in, size_t(E) * C);
    auto img = read_vec<float>(in, size_t(n) * E);
    auto targets = read_vec<int32_t>(in, size_t(n));
    const int k = std::min(5, C);
    std::vector<int64_t> idx(size_t(n) * k);
    ZeroShotAccuracy acc(W, E, C);
    for (int i0 = 0; i0 < n; i0 += batch)
      acc.add(img.data() + size_t(i0) * E, targets.data() + i0, std::min(batch, n - i0), idx.data() + size_t(i0) * k);
    std::ofstream out(argv[3], std::ios::binary);
    write_vec(out, idx);
    std::vector<EvalMetric> m;
    acc.add_metrics(m, std::atoi(argv[4]));
    std::printf("%s\n", eval_epoch_line(std::atoi(argv[4]), m).c_str());
    return 0;
  }
  if (mode == "format" && argc >= 3) {
    const std::string kind = argv[2];
    const MetricKind k = kind == "numpy" ? MetricKind::NumpyFloat64 : kind == "int" ? MetricKind::PyInt : MetricKind::PyFloat;
    for (int i = 3; i < argc; i++) std::printf("%s\n", format_metric_value(std::strtod(argv[i], nullptr), k).c_str());
    return 0;
  }
  if (mode == "template" && argc == 4) {
    std::printf("%s\n", fill_template(argv[2], argv[3]).c_str());
    return 0;
  }
  if (mode == "progress" && argc == 6) {
    std::printf("%s\n", eval_progress_line(std::atoi(argv[2]), std::atol(argv[3]), std::atol(argv[4]),
                                           std::strtod(argv[5], nullptr)).c_str());
    return 0;
  }
  std::fprintf(stderr, "usage: eval_driver retrieval|classifier|zeroshot|format|template|progress ...\n");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UserError& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
