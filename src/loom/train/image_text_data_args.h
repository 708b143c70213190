#pragma once
// The image-caption data flags of `loom train` (EVA-CLIP's / open_clip's names): --dataset-type json|csv
// with the index file given as --train-data (= --data-path), the JSON and CSV key flags and --workers.
#include <string>
#include <vector>

#include "loom/data/image_text_index.h"

namespace loom {

class ArgParser;

struct ImageTextDataArgs {
  std::string dataset_type = "indexed";  // indexed: Megatron's --data-path datasets; json / csv: an image index
  std::string json_image_key = "image", json_caption_key = "caption";
  std::string csv_img_key = "filepath", csv_caption_key = "title", csv_separator = "\t";
  int workers = 2;  // image decoding threads per process

  void register_flags(ArgParser& p);
  bool image_text() const { return dataset_type == "json" || dataset_type == "csv"; }
  // The index's configuration from --train-data/--data-path (exactly one path); UserError otherwise.
  data::ImageTextIndexConfig index_config(const std::vector<std::string>& data_path) const;
};

}  // namespace loom
