#include "loom/train/image_text_data_args.h"

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

void ImageTextDataArgs::register_flags(ArgParser& p) {
  p.add_choice("--dataset-type", &dataset_type, {"indexed", "json", "csv"},
               "training data: indexed (Megatron's --data-path), or an image-caption index given as --train-data: "
               "json (JSON lines or a JSON array of {image, caption}) or csv");
  p.add_string("--json-image-key", &json_image_key, "--dataset-type json: the key of the image path");
  p.add_string("--json-caption-key", &json_caption_key, "--dataset-type json: the key of the caption");
  p.add_string("--csv-img-key", &csv_img_key, "--dataset-type csv: the column of the image path");
  p.add_string("--csv-caption-key", &csv_caption_key, "--dataset-type csv: the column of the caption");
  p.add_string("--csv-separator", &csv_separator, "--dataset-type csv: the field separator (a tab by default)");
  p.add_int("--workers", &workers, "image decoding threads per process (--dataset-type json/csv)");
}

data::ImageTextIndexConfig ImageTextDataArgs::index_config(const std::vector<std::string>& data_path) const {
  require(data_path.size() == 1, "--dataset-type " + dataset_type + " takes one image index file as --train-data (got " +
                                     std::to_string(data_path.size()) + " paths)");
  require(workers >= 1 && workers <= 256, "--workers must be between 1 and 256");
  data::ImageTextIndexConfig c;
  c.path = data_path[0];
  c.format = dataset_type;
  c.json_image_key = json_image_key;
  c.json_caption_key = json_caption_key;
  c.csv_img_key = csv_img_key;
  c.csv_caption_key = csv_caption_key;
  // `--csv-separator '\t'` in a shell passes a backslash and a t: read it as the tab it means.
  c.csv_separator = csv_separator == "\\t" ? std::string("\t") : csv_separator;
  return c;
}

}  // namespace loom
