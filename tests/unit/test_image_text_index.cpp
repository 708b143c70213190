// The image-caption index (--dataset-type json / csv): JSON lines and a JSON array, the CSV form with a
// header, configurable keys, paths relative to the index's directory, and each bad input's message
// (line numbers included). Exit code and the single error line: tests/cli/test_image_text_index.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "loom/core/error.h"
#include "loom/data/image_text_index.h"

namespace fs = std::filesystem;
using namespace loom::data;

namespace {

struct TmpDir {
  fs::path path = fs::temp_directory_path() / ("loom_image_text_index_" + std::to_string(::getpid()));
  TmpDir() { fs::create_directories(path); }
  ~TmpDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = (path / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

std::string error_of(const ImageTextIndexConfig& c) {
  try {
    ImageTextIndex::load(c);
  } catch (const loom::UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ImageTextIndex, JsonLines) {
  TmpDir d;
  ImageTextIndexConfig c;
  c.path = d.write("train.json",
                   "{\"image\": \"a/1.jpg\", \"caption\": \"two red squares\"}\n"
                   "\n"
                   "  {\"id\": 7, \"extra\": {\"image\": \"no\"}, \"caption\": \"caf\\u00e9 \\\"q\\\"\", \"image\": \"/abs/2.png\"}\r\n"
                   "{\"caption\": \"\", \"image\": \"3.jpg\", \"tags\": [1, \"x\", null]}");
  const ImageTextIndex idx = ImageTextIndex::load(c);
  ASSERT_EQ(idx.size(), 3u);
  EXPECT_EQ(idx.raw_path(0), "a/1.jpg");
  EXPECT_EQ(idx.image_path(0), (d.path / "a/1.jpg").string());
  EXPECT_EQ(idx.caption(0), "two red squares");
  EXPECT_EQ(idx.image_path(1), "/abs/2.png");
  EXPECT_EQ(idx.caption(1), "caf\xC3\xA9 \"q\"");
  EXPECT_EQ(idx.caption(2), "");
  EXPECT_NE(idx.key(0), idx.key(1));
  EXPECT_LT(idx.memory_bytes(), 200u);
}

TEST(ImageTextIndex, JsonArrayAndCustomKeys) {
  TmpDir d;
  ImageTextIndexConfig c;
  c.path = d.write("train.json", " [ {\"img\": \"x.jpg\", \"text\": \"one\"},\n {\"text\": \"two\", \"img\": \"y.jpg\"} ]\n");
  c.json_image_key = "img";
  c.json_caption_key = "text";
  const ImageTextIndex idx = ImageTextIndex::load(c);
  ASSERT_EQ(idx.size(), 2u);
  EXPECT_EQ(idx.raw_path(1), "y.jpg");
  EXPECT_EQ(idx.caption(1), "two");
  // The same entries in JSON lines have the same keys (the key is the content, not the position).
  c.path = d.write("lines.json", "{\"img\": \"y.jpg\", \"text\": \"two\"}\n");
  EXPECT_EQ(ImageTextIndex::load(c).key(0), idx.key(1));
}

TEST(ImageTextIndex, CsvWithHeader) {
  TmpDir d;
  ImageTextIndexConfig c;
  c.format = "csv";
  c.path = d.write("train.csv",
                   "title\tfilepath\tother\n"
                   "a cat\timgs/c.jpg\t1\n"
                   "\"quoted \"\"tab\"\"\tinside\"\t/abs/d.jpg\t2\r\n"
                   "\n");
  const ImageTextIndex idx = ImageTextIndex::load(c);
  ASSERT_EQ(idx.size(), 2u);
  EXPECT_EQ(idx.image_path(0), (d.path / "imgs/c.jpg").string());
  EXPECT_EQ(idx.caption(0), "a cat");
  EXPECT_EQ(idx.caption(1), "quoted \"tab\"\tinside");
  EXPECT_EQ(idx.image_path(1), "/abs/d.jpg");
  c.csv_separator = ",";
  c.csv_img_key = "path";
  c.csv_caption_key = "cap";
  c.path = d.write("comma.csv", "cap,path\nhello,h.png\n");
  EXPECT_EQ(ImageTextIndex::load(c).raw_path(0), "h.png");
}

TEST(ImageTextIndex, BadInputNamesTheFileAndLine) {
  TmpDir d;
  ImageTextIndexConfig c;
  c.path = (d.path / "missing.json").string();
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' does not exist");
  c.path = d.write("notjson.json", "{\"image\": \"a.jpg\", \"caption\": \"x\"}\n{\"image\": \"b.jpg\", caption}\n");
  EXPECT_NE(error_of(c).find("line 2: not JSON"), std::string::npos) << error_of(c);
  c.path = d.write("nocap.json", "{\"image\": \"a.jpg\", \"caption\": \"x\"}\n\n{\"image\": \"b.jpg\"}\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 3: has no 'caption' key (--json-caption-key)");
  c.path = d.write("noimg.json", "{\"caption\": \"x\"}\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 1: has no 'image' key (--json-image-key)");
  c.path = d.write("num.json", "{\"image\": \"a.jpg\", \"caption\": 5}\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 1: 'caption' is not a string");
  c.path = d.write("arr.json", "[1, 2]\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' element 0: is not a JSON object");
  c.path = d.write("linearr.json", "[{\"image\": \"a.jpg\", \"caption\": \"x\"}\n");
  EXPECT_NE(error_of(c).find("not a JSON array of objects nor JSON lines"), std::string::npos) << error_of(c);
  c.path = d.write("empty.json", "\n\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' has no entries");
  c.path = d.write("emptypath.json", "{\"image\": \"\", \"caption\": \"x\"}\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 1: the image path is empty");
  c.format = "csv";
  c.path = d.write("nokey.csv", "path\ttitle\na.jpg\tx\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 1: the header has no 'filepath' column (--csv-img-key)");
  c.path = d.write("short.csv", "filepath\ttitle\na.jpg\tx\nb.jpg\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 3: 1 fields, the header has 2");
  c.path = d.write("quote.csv", "filepath\ttitle\na.jpg\t\"open\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 2: unclosed quote");
}

TEST(ImageTextIndex, ClassLabelsByNameOrIndex) {
  TmpDir d;
  ImageTextIndexConfig c;
  c.label_key = "label";
  c.label_names = {"red square", "blue circle", "7"};
  // JSON lines: a class name or an integer index; labels not read without a label key.
  c.path = d.write("l.json",
                   "{\"image\": \"1.jpg\", \"caption\": \"x\", \"label\": \"blue circle\"}\n"
                   "{\"image\": \"2.jpg\", \"label\": 0, \"caption\": \"y\"}\n"
                   "{\"label\": 2, \"image\": \"3.jpg\", \"caption\": \"z\", \"more\": {\"label\": 5}}\n");
  const ImageTextIndex idx = ImageTextIndex::load(c);
  ASSERT_TRUE(idx.has_labels());
  EXPECT_EQ(idx.label(0), 1);
  EXPECT_EQ(idx.label(1), 0);
  EXPECT_EQ(idx.label(2), 2);
  EXPECT_EQ(idx.caption(1), "y");
  ImageTextIndexConfig plain = c;
  plain.label_key.clear();
  EXPECT_FALSE(ImageTextIndex::load(plain).has_labels());
  // A JSON array.
  c.path = d.write("a.json", "[{\"image\": \"1.jpg\", \"caption\": \"x\", \"label\": 1}]");
  EXPECT_EQ(ImageTextIndex::load(c).label(0), 1);
  // CSV: a field that is a class name ("7" is class 2), else a decimal index.
  c.format = "csv";
  c.path = d.write("l.csv", "filepath\ttitle\tlabel\n1.jpg\ta\tred square\n2.jpg\tb\t1\n3.jpg\tc\t7\n");
  const ImageTextIndex csv = ImageTextIndex::load(c);
  EXPECT_EQ(csv.label(0), 0);
  EXPECT_EQ(csv.label(1), 1);
  EXPECT_EQ(csv.label(2), 2);
}

TEST(ImageTextIndex, BadLabelsNameTheLine) {
  TmpDir d;
  ImageTextIndexConfig c;
  c.label_key = "label";
  c.label_names = {"red square", "blue circle"};
  auto json = [&](const std::string& second) {
    c.format = "json";
    c.path = d.write("b.json", "{\"image\": \"1.jpg\", \"caption\": \"x\", \"label\": 0}\n" + second + "\n");
    return error_of(c);
  };
  const std::string at = "image index '" + (d.path / "b.json").string() + "' line 2: ";
  EXPECT_EQ(json("{\"image\": \"2.jpg\", \"caption\": \"y\"}"),
            at + "has no 'label' key (the class label zero-shot classification needs)");
  EXPECT_EQ(json("{\"image\": \"2.jpg\", \"caption\": \"y\", \"label\": \"green triangle\"}"),
            at + "label 'green triangle' is not one of the 2 classes of the class-names file");
  EXPECT_EQ(json("{\"image\": \"2.jpg\", \"caption\": \"y\", \"label\": 2}"),
            at + "label 2 is outside the 2 classes of the class-names file (0..1)");
  EXPECT_EQ(json("{\"image\": \"2.jpg\", \"caption\": \"y\", \"label\": -1}"),
            at + "label -1 is outside the 2 classes of the class-names file (0..1)");
  EXPECT_EQ(json("{\"image\": \"2.jpg\", \"caption\": \"y\", \"label\": 1.5}"),
            at + "'label' is neither a class name nor an integer class index");
  EXPECT_EQ(json("{\"image\": \"2.jpg\", \"caption\": \"y\", \"label\": [1]}"),
            at + "'label' is neither a class name nor an integer class index");
  c.format = "csv";
  c.path = d.write("b.csv", "filepath\ttitle\n1.jpg\ta\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path +
                             "' line 1: the header has no 'label' column (the class label zero-shot classification needs)");
  c.path = d.write("c.csv", "filepath\ttitle\tlabel\n1.jpg\ta\tred square\n2.jpg\tb\t3x\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 3: label '3x' is not one of the 2 classes of the class-names file");
  c.path = d.write("d.csv", "filepath\ttitle\tlabel\n1.jpg\ta\n");
  EXPECT_EQ(error_of(c), "image index '" + c.path + "' line 2: 2 fields, the header has 3");
}
