#pragma once
// The image-caption index of --dataset-type json (EVA-CLIP's json loader) and csv (open_clip's
// CsvDataset), read once before training:
//   json: one JSON object per line, {"image": path, "caption": text} (the key names configurable; other
//         keys ignored; blank lines skipped), or the whole file one JSON array of such objects;
//   csv:  a header line naming the columns, then one row per line, fields separated by --csv-separator
//         (a tab by default); a field may be double-quoted ("" inside for a quote), as pandas reads it.
// Image paths are relative to the index file's directory unless absolute. Everything is kept in one
// text arena plus 12 bytes per entry (offset and path length).
// Bad input is a UserError naming the file and line (or array element): a missing file, a line that is
// not JSON or not an object, a missing key or a value that is not a string, a CSV row with too few
// fields, a header without the keys, an empty path, an index with no entries.
// Class labels (zero-shot classification), read only when a label key is configured: every entry must
// carry one, a class name of label_names or (JSON) an integer index into them (CSV: a field that is not a
// class name but a decimal integer is an index); a missing label, an unknown name or an index outside the
// classes is a UserError naming the line.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom::data {

struct ImageTextIndexConfig {
  std::string path;
  std::string format = "json";  // "json" or "csv"
  std::string json_image_key = "image", json_caption_key = "caption";
  std::string csv_img_key = "filepath", csv_caption_key = "title";
  std::string csv_separator = "\t";
  std::string label_key;                 // empty: labels are not read
  std::vector<std::string> label_names;  // the classes labels name or index
};

class ImageTextIndex {
 public:
  static ImageTextIndex load(const ImageTextIndexConfig& config);

  size_t size() const { return path_len_.size(); }
  // The path as the index spells it, and as the loader opens it (joined to the index's directory).
  std::string_view raw_path(size_t i) const { return {arena_.data() + offset_[i], path_len_[i]}; }
  void image_path(size_t i, std::string& out) const;
  std::string image_path(size_t i) const {
    std::string s;
    image_path(i, s);
    return s;
  }
  std::string_view caption(size_t i) const {
    const uint64_t start = offset_[i] + path_len_[i];
    return {arena_.data() + start, size_t(offset_[i + 1] - start)};
  }
  // A 64-bit key of the entry's content (path and caption), the same in any index that lists the entry:
  // the shuffle and the crop randomness use it, so an index with extra (e.g. unreadable) entries orders
  // and crops the others exactly as one without them.
  uint64_t key(size_t i) const;
  // Entry i's class (an index into the config's label_names); only when the index was loaded with labels.
  bool has_labels() const { return !labels_.empty(); }
  int32_t label(size_t i) const { return labels_[i]; }
  const std::string& base_dir() const { return base_dir_; }
  // Bytes of memory held per entry (arena + offsets), for the report.
  size_t memory_bytes() const { return arena_.capacity() + offset_.capacity() * 8 + path_len_.capacity() * 4; }

  // Appends one entry (for the parsers and tests).
  void add(std::string_view path, std::string_view caption);
  void add(std::string_view path, std::string_view caption, int32_t label);

 private:
  std::string base_dir_;
  std::string arena_;
  std::vector<uint64_t> offset_{0};
  std::vector<uint32_t> path_len_;
  std::vector<int32_t> labels_;
};

}  // namespace loom::data
