// Image-caption index of --dataset-type json/csv (image_text_index.h): the input is one byte choosing
// the reading (bit 0: csv, bit 1: with class labels, bit 2: csv separator ',' instead of a tab) followed
// by the index file. It is loaded by ImageTextIndex::load(); every entry it keeps must have a non-empty
// path inside the arena, a caption, a key, and (with labels) a label among the classes.
#include "fuzz_util.h"
#include "loom/data/image_text_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  data::ImageTextIndexConfig cfg;
  cfg.format = (mode & 1) ? "csv" : "json";
  if (mode & 2) {
    cfg.label_key = "label";
    cfg.label_names = {"cat", "dog", "red square", "7"};
  }
  if (mode & 4) cfg.csv_separator = ",";
  cfg.path = fuzz::write_scratch("index.data", std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  fuzz::expect_user_errors_only([&] {
    const data::ImageTextIndex index = data::ImageTextIndex::load(cfg);
    if (index.size() == 0 || index.has_labels() != !cfg.label_key.empty()) std::abort();
    std::string path;
    for (size_t i = 0; i < index.size(); i++) {
      if (index.raw_path(i).empty()) std::abort();
      index.image_path(i, path);
      if (path.empty()) std::abort();
      (void)index.caption(i);
      (void)index.key(i);
      if (index.has_labels() && (index.label(i) < 0 || size_t(index.label(i)) >= cfg.label_names.size())) std::abort();
    }
  });
  return 0;
}
