#include "loom/train/coca_zero_shot.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loom/core/error.h"
#include "loom/data/clip_tokenizer.h"
#include "loom/data/tokenizer.h"
#include "loom/eval/zero_shot.h"
#include "loom/models/coca/coca_model.h"
#include "loom/train/coca_args.h"
#include "loom/train/coca_data.h"

namespace loom {

CocaZeroShot::CocaZeroShot(const CocaArgs& a) : a_(a) {
  classes_ = eval::load_zero_shot_classes(a.zeroshot.classes);
  tokenizer_ = make_coca_tokenizer(a);
  CocaDataOptions o;
  o.training = false;
  o.drop_last = false;  // EVA-CLIP's ImageNet loader keeps every image
  o.label_key = !a.zeroshot.label_key.empty() ? a.zeroshot.label_key
                : !classes_.label_key.empty() ? classes_.label_key
                                              : "label";
  o.label_names = classes_.classes;
  images_ = make_coca_data(a, a.zeroshot.index(a.val_data), o, 0, 1);
}

CocaZeroShot::~CocaZeroShot() = default;

bool CocaZeroShot::due(int64_t epoch) const { return a_.zeroshot.due(epoch, a_.epochs); }

void CocaZeroShot::evaluate(CocaModel& model, int64_t epoch, std::vector<eval::EvalMetric>& metrics,
                            const std::function<void(const std::string&)>& log) {
  const int E = a_.shape.embed_dim, ctx = a_.shape.text.context_length, max_b = model.max_batch();
  const char* dump_dir = std::getenv("LOOM_TEST_ZEROSHOT_DUMP");
  nlohmann::json dump;
  log("Starting zero-shot imagenet.");
  log("Building zero-shot classifier");
  std::vector<int32_t> ids, scratch;
  const eval::TextEmbedder embed = [&](const std::vector<std::string>& texts, float* latents) {
    const int n = int(texts.size());
    ids.assign(size_t(std::min(n, max_b)) * size_t(ctx), 0);
    for (int s = 0; s < n; s += max_b) {  // the text tower takes at most max_batch rows at a time
      const int b = std::min(max_b, n - s);
      for (int j = 0; j < b; j++)
        data::tokenize_caption(*tokenizer_, texts[size_t(s + j)], ids.data() + size_t(j) * size_t(ctx), ctx, scratch);
      model.encode(nullptr, ids.data(), b, nullptr, latents + size_t(s) * size_t(E));
    }
    if (dump_dir) {
      dump["texts"].push_back(texts);
      dump["text_latents"].push_back(std::vector<float>(latents, latents + size_t(n) * size_t(E)));
    }
  };
  const int C = int(classes_.classes.size());
  eval::ZeroShotAccuracy acc(eval::build_zero_shot_classifier(classes_.classes, classes_.templates, E, embed), E, C);
  log("Using classifier");
  std::vector<float> lat(size_t(max_b) * size_t(E));
  CocaBatch b;
  while (images_->next(b)) {
    model.encode(b.images, nullptr, b.size, lat.data(), nullptr);
    acc.add(lat.data(), b.labels, b.size);
    if (dump_dir) {
      for (int i = 0; i < b.size; i++) {
        dump["image_latents"].push_back(std::vector<float>(lat.begin() + int64_t(i) * E, lat.begin() + int64_t(i + 1) * E));
        dump["labels"].push_back(b.labels[i]);
        dump["entries"].push_back(b.entries[i]);
      }
    }
  }
  acc.add_metrics(metrics, int(epoch));
  log("Finished zero-shot imagenet.");
  if (dump_dir) {
    dump["classes"] = classes_.classes;
    dump["templates"] = classes_.templates;
    const std::string path = (std::filesystem::path(dump_dir) / ("zeroshot_epoch_" + std::to_string(epoch) + ".json")).string();
    std::ofstream(path) << dump.dump() << "\n";
  }
}

}  // namespace loom
