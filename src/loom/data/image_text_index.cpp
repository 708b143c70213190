// Parsing the image-caption index (see image_text_index.h).
#include "loom/data/image_text_index.h"

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "loom/core/error.h"
#include "loom/data/bpe_cache.h"
#include "loom/data/files.h"

namespace loom::data {
namespace {

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim_json_space(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && is_json_space(s[a])) a++;
  while (b > a && is_json_space(s[b - 1])) b--;
  return s.substr(a, b - a);
}

// The class names of ImageTextIndexConfig::label_names -> their index.
class LabelNames {
 public:
  explicit LabelNames(const std::vector<std::string>& names) : names_(names) {
    for (size_t i = 0; i < names.size(); i++) index_.emplace(names[i], int32_t(i));
  }
  // -1 when `name` is not a class name.
  int32_t find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
  }
  int32_t checked_index(int64_t i, const std::string& where) const {
    if (i < 0 || i >= int64_t(names_.size()))
      fail(where + "label " + std::to_string(i) + " is outside the " + std::to_string(names_.size()) +
           " classes of the class-names file (0.." + std::to_string(int64_t(names_.size()) - 1) + ")");
    return int32_t(i);
  }
  int32_t checked_name(const std::string& name, const std::string& where) const {
    const int32_t c = find(name);
    if (c < 0)
      fail(where + "label '" + name + "' is not one of the " + std::to_string(names_.size()) +
           " classes of the class-names file");
    return c;
  }

 private:
  const std::vector<std::string>& names_;
  std::unordered_map<std::string, int32_t> index_;
};

// Collects the wanted values of one top-level object (the image path, the caption and, when a label key
// is set, the label) without building a DOM: everything else is validated by the parser and dropped.
class EntrySax : public nlohmann::json_sax<nlohmann::json> {
 public:
  EntrySax(const std::string& image_key, const std::string& caption_key, const std::string& label_key)
      : image_key_(image_key), caption_key_(caption_key), label_key_(label_key) {}
  void reset() {
    depth_ = 0;
    want_ = 0;
    have_image_ = have_caption_ = false;
    non_string_ = 0;
    top_is_object_ = false;
    image_.clear();
    caption_.clear();
    label_kind_ = 0;
    label_name_.clear();
  }
  bool null() override { return value(nullptr); }
  bool boolean(bool) override { return value(nullptr); }
  bool number_integer(number_integer_t v) override { return label_number(v) || value(nullptr); }
  bool number_unsigned(number_unsigned_t v) override {
    return label_number(v > number_unsigned_t(std::numeric_limits<int64_t>::max()) ? -1 : int64_t(v)) || value(nullptr);
  }
  bool number_float(number_float_t, const string_t&) override { return value(nullptr); }
  bool string(string_t& s) override { return value(&s); }
  bool binary(binary_t&) override { return value(nullptr); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) top_is_object_ = true;
    note_nested();
    depth_++;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1)
      want_ = k == image_key_ ? 1 : k == caption_key_ ? 2 : !label_key_.empty() && k == label_key_ ? 3 : 0;
    return true;
  }
  bool end_object() override {
    depth_--;
    return true;
  }
  bool start_array(std::size_t) override {
    note_nested();
    depth_++;
    return true;
  }
  bool end_array() override {
    depth_--;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = e.what();
    return false;
  }

  std::string image_, caption_, error_;
  bool have_image_ = false, have_caption_ = false, top_is_object_ = false;
  int non_string_ = 0;  // 1: the image value is not a string, 2: the caption's, 3: the label is neither a string nor an integer
  int label_kind_ = 0;  // 0: no label, 1: a class name, 2: an index
  std::string label_name_;
  int64_t label_index_ = 0;

 private:
  void note_nested() {
    if (depth_ == 1 && want_ && !non_string_) non_string_ = want_;
    if (depth_ == 1) want_ = 0;
  }
  // An integer as the label's value: a class index (true when consumed).
  bool label_number(int64_t v) {
    if (depth_ != 1 || want_ != 3) return false;
    label_kind_ = 2;
    label_index_ = v;
    want_ = 0;
    return true;
  }
  bool value(string_t* s) {
    if (depth_ == 1 && want_) {
      if (!s) {
        if (!non_string_) non_string_ = want_;
      } else if (want_ == 1) {
        image_ = std::move(*s);
        have_image_ = true;
      } else if (want_ == 2) {
        caption_ = std::move(*s);
        have_caption_ = true;
      } else {
        label_name_ = std::move(*s);
        label_kind_ = 1;
      }
      want_ = 0;
    }
    return true;
  }
  const std::string& image_key_;
  const std::string& caption_key_;
  const std::string& label_key_;
  int depth_ = 0, want_ = 0;
};

void add_checked(ImageTextIndex& index, const EntrySax& sax, const ImageTextIndexConfig& c, const LabelNames& labels,
                 const std::string& where) {
  if (!sax.top_is_object_) fail(where + "is not a JSON object");
  if (sax.non_string_ == 3) fail(where + "'" + c.label_key + "' is neither a class name nor an integer class index");
  if (sax.non_string_)
    fail(where + "'" + (sax.non_string_ == 1 ? c.json_image_key : c.json_caption_key) + "' is not a string");
  if (!sax.have_image_) fail(where + "has no '" + c.json_image_key + "' key (--json-image-key)");
  if (!sax.have_caption_) fail(where + "has no '" + c.json_caption_key + "' key (--json-caption-key)");
  if (sax.image_.empty()) fail(where + "the image path is empty");
  if (c.label_key.empty()) {
    index.add(sax.image_, sax.caption_);
    return;
  }
  if (sax.label_kind_ == 0) fail(where + "has no '" + c.label_key + "' key (the class label zero-shot classification needs)");
  const int32_t label = sax.label_kind_ == 1 ? labels.checked_name(sax.label_name_, where)
                                             : labels.checked_index(sax.label_index_, where);
  index.add(sax.image_, sax.caption_, label);
}

void parse_json_lines(ImageTextIndex& index, const MappedFile& file, const ImageTextIndexConfig& c,
                      const LabelNames& labels) {
  const std::string_view all(reinterpret_cast<const char*>(file.data()), file.size());
  EntrySax sax(c.json_image_key, c.json_caption_key, c.label_key);
  size_t line_no = 0;
  for (size_t pos = 0; pos < all.size();) {
    size_t end = all.find('\n', pos);
    if (end == std::string_view::npos) end = all.size();
    const std::string_view line = trim_json_space(all.substr(pos, end - pos));
    pos = end + 1;
    line_no++;
    if (line.empty()) continue;
    const std::string where = "image index '" + c.path + "' line " + std::to_string(line_no) + ": ";
    sax.reset();
    if (!nlohmann::json::sax_parse(line.begin(), line.end(), &sax)) fail(where + "not JSON (" + sax.error_ + ")");
    add_checked(index, sax, c, labels, where);
  }
}

void parse_json_array(ImageTextIndex& index, const MappedFile& file, const ImageTextIndexConfig& c,
                      const LabelNames& labels) {
  const char* begin = reinterpret_cast<const char*>(file.data());
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(begin, begin + file.size());
  } catch (const nlohmann::json::exception& e) {
    fail("image index '" + c.path + "': not a JSON array of objects nor JSON lines (" + e.what() + ")");
  }
  EntrySax sax(c.json_image_key, c.json_caption_key, c.label_key);
  for (size_t i = 0; i < doc.size(); i++) {
    const std::string where = "image index '" + c.path + "' element " + std::to_string(i) + ": ";
    sax.reset();
    const std::string text = doc[i].dump();
    nlohmann::json::sax_parse(text, &sax);
    add_checked(index, sax, c, labels, where);
  }
}

// One CSV record of `line` split at `sep`; a field may be double-quoted. False on an unclosed quote.
bool split_csv(std::string_view line, std::string_view sep, std::vector<std::string>& fields) {
  fields.clear();
  size_t pos = 0;
  for (;;) {
    std::string field;
    if (pos < line.size() && line[pos] == '"') {
      pos++;
      for (;;) {
        if (pos >= line.size()) return false;
        if (line[pos] == '"') {
          if (pos + 1 < line.size() && line[pos + 1] == '"') {
            field += '"';
            pos += 2;
            continue;
          }
          pos++;
          break;
        }
        field += line[pos++];
      }
      // Text after the closing quote up to the separator belongs to the field, as pandas keeps it.
      const size_t next = line.find(sep, pos);
      field.append(line.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
      pos = next;
    } else {
      const size_t next = line.find(sep, pos);
      field.assign(line.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
      pos = next;
    }
    fields.push_back(std::move(field));
    if (pos == std::string_view::npos) return true;
    pos += sep.size();
  }
}

void parse_csv(ImageTextIndex& index, const MappedFile& file, const ImageTextIndexConfig& c, const LabelNames& labels) {
  require(!c.csv_separator.empty(), "--csv-separator must not be empty");
  const std::string_view all(reinterpret_cast<const char*>(file.data()), file.size());
  std::vector<std::string> fields;
  size_t line_no = 0, img_col = 0, cap_col = 0, label_col = 0, columns = 0;
  const bool with_labels = !c.label_key.empty();
  for (size_t pos = 0; pos < all.size();) {
    size_t end = all.find('\n', pos);
    if (end == std::string_view::npos) end = all.size();
    std::string_view line = all.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    line_no++;
    const std::string where = "image index '" + c.path + "' line " + std::to_string(line_no) + ": ";
    if (line.empty()) continue;
    if (!split_csv(line, c.csv_separator, fields)) fail(where + "unclosed quote");
    if (columns == 0) {
      columns = fields.size();
      img_col = cap_col = label_col = columns;
      for (size_t i = 0; i < fields.size(); i++) {
        if (fields[i] == c.csv_img_key) img_col = i;
        if (fields[i] == c.csv_caption_key) cap_col = i;
        if (with_labels && fields[i] == c.label_key) label_col = i;
      }
      if (img_col == columns) fail(where + "the header has no '" + c.csv_img_key + "' column (--csv-img-key)");
      if (cap_col == columns) fail(where + "the header has no '" + c.csv_caption_key + "' column (--csv-caption-key)");
      if (with_labels && label_col == columns)
        fail(where + "the header has no '" + c.label_key + "' column (the class label zero-shot classification needs)");
      if (!with_labels) label_col = 0;
      continue;
    }
    if (fields.size() <= std::max({img_col, cap_col, label_col}))
      fail(where + std::to_string(fields.size()) + " fields, the header has " + std::to_string(columns));
    if (fields[img_col].empty()) fail(where + "the image path is empty");
    if (!with_labels) {
      index.add(fields[img_col], fields[cap_col]);
      continue;
    }
    // A class name first; otherwise a decimal class index.
    const std::string& f = fields[label_col];
    int32_t label = labels.find(f);
    if (label < 0) {
      int64_t v = 0;
      const auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
      if (f.empty() || ec != std::errc() || end != f.data() + f.size()) label = labels.checked_name(f, where);
      else label = labels.checked_index(v, where);
    }
    index.add(fields[img_col], fields[cap_col], label);
  }
  if (columns == 0) fail("image index '" + c.path + "' has no header line");
}

}  // namespace

void ImageTextIndex::add(std::string_view path, std::string_view caption) {
  require(path.size() < std::numeric_limits<uint32_t>::max(), "an image path is too long");
  arena_.append(path);
  arena_.append(caption);
  path_len_.push_back(uint32_t(path.size()));
  offset_.push_back(arena_.size());
}

void ImageTextIndex::add(std::string_view path, std::string_view caption, int32_t label) {
  add(path, caption);
  labels_.push_back(label);
}

void ImageTextIndex::image_path(size_t i, std::string& out) const {
  const std::string_view p = raw_path(i);
  out.clear();
  if (p[0] != '/' && base_dir_ != ".") {
    out.append(base_dir_);
    out += '/';
  }
  out.append(p);
}

uint64_t ImageTextIndex::key(size_t i) const {
  const std::string_view p = raw_path(i), cap = caption(i);
  const uint64_t a = hash_bytes(p.data(), p.size()), b = hash_bytes(cap.data(), cap.size());
  uint64_t h = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  return h ^ (h >> 29);
}

ImageTextIndex ImageTextIndex::load(const ImageTextIndexConfig& c) {
  require(!c.path.empty(), "--train-data is required with --dataset-type json/csv (the image index file)");
  if (!file_exists(c.path)) fail("image index '" + c.path + "' does not exist");
  if (c.format != "json" && c.format != "csv") fail("unknown image index format '" + c.format + "' (json or csv)");
  if (!c.label_key.empty()) require(!c.label_names.empty(), "image index '" + c.path + "': labels need class names");
  const LabelNames labels(c.label_names);
  const MappedFile file(c.path);
  ImageTextIndex index;
  index.base_dir_ = dirname_of(c.path);
  index.arena_.reserve(file.size());
  if (c.format == "csv") {
    parse_csv(index, file, c, labels);
  } else {
    size_t first = 0;
    while (first < file.size() && is_json_space(char(file.data()[first]))) first++;
    if (first < file.size() && file.data()[first] == '[')
      parse_json_array(index, file, c, labels);
    else
      parse_json_lines(index, file, c, labels);
  }
  if (index.size() == 0) fail("image index '" + c.path + "' has no entries");
  index.arena_.shrink_to_fit();
  index.offset_.shrink_to_fit();
  index.path_len_.shrink_to_fit();
  index.labels_.shrink_to_fit();
  return index;
}

}  // namespace loom::data
