#include "loom/eval/zero_shot_classes.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "loom/core/error.h"
#include "loom/eval/zero_shot_template.h"

namespace loom::eval {

const std::vector<std::string>& openai_imagenet_templates() {
  static const std::vector<std::string> t = {
      "a bad photo of a {}.",
      "a photo of many {}.",
      "a sculpture of a {}.",
      "a photo of the hard to see {}.",
      "a low resolution photo of the {}.",
      "a rendering of a {}.",
      "graffiti of a {}.",
      "a bad photo of the {}.",
      "a cropped photo of the {}.",
      "a tattoo of a {}.",
      "the embroidered {}.",
      "a photo of a hard to see {}.",
      "a bright photo of a {}.",
      "a photo of a clean {}.",
      "a photo of a dirty {}.",
      "a dark photo of the {}.",
      "a drawing of a {}.",
      "a photo of my {}.",
      "the plastic {}.",
      "a photo of the cool {}.",
      "a close-up photo of a {}.",
      "a black and white photo of the {}.",
      "a painting of the {}.",
      "a painting of a {}.",
      "a pixelated photo of the {}.",
      "a sculpture of the {}.",
      "a bright photo of the {}.",
      "a cropped photo of a {}.",
      "a plastic {}.",
      "a photo of the dirty {}.",
      "a jpeg corrupted photo of a {}.",
      "a blurry photo of the {}.",
      "a photo of the {}.",
      "a good photo of the {}.",
      "a rendering of the {}.",
      "a {} in a video game.",
      "a photo of one {}.",
      "a doodle of a {}.",
      "a close-up photo of the {}.",
      "a photo of a {}.",
      "the origami {}.",
      "the {} in a video game.",
      "a sketch of a {}.",
      "a doodle of the {}.",
      "a origami {}.",
      "a low resolution photo of a {}.",
      "the toy {}.",
      "a rendition of the {}.",
      "a photo of the clean {}.",
      "a photo of a large {}.",
      "a rendition of a {}.",
      "a photo of a nice {}.",
      "a photo of a weird {}.",
      "a blurry photo of a {}.",
      "a cartoon {}.",
      "art of a {}.",
      "a sketch of the {}.",
      "a embroidered {}.",
      "a pixelated photo of a {}.",
      "itap of the {}.",
      "a jpeg corrupted photo of the {}.",
      "a good photo of a {}.",
      "a plushie {}.",
      "a photo of the nice {}.",
      "a photo of the small {}.",
      "a photo of the weird {}.",
      "the cartoon {}.",
      "art of the {}.",
      "a drawing of the {}.",
      "a photo of the large {}.",
      "a black and white photo of a {}.",
      "the plushie {}.",
      "a dark photo of a {}.",
      "itap of a {}.",
      "graffiti of the {}.",
      "a toy {}.",
      "itap of my {}.",
      "a photo of a cool {}.",
      "a photo of a small {}.",
      "a tattoo of the {}.",
  };
  return t;
}

namespace {

std::vector<std::string> string_list(const nlohmann::json& v, const std::string& what, const std::string& where) {
  if (!v.is_array()) fail(where + "'" + what + "' is not a list of strings");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) fail(where + "'" + what + "' is not a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

ZeroShotClasses load_zero_shot_classes(const std::string& path) {
  const std::string where = "--zeroshot-classes " + path + ": ";
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(where + "cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  ZeroShotClasses z;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      fail(where + "not JSON (" + std::string(e.what()) + ")");
    }
    if (!doc.contains("classes")) fail(where + "has no 'classes' list");
    z.classes = string_list(doc["classes"], "classes", where);
    if (doc.contains("templates")) {
      z.templates = string_list(doc["templates"], "templates", where);
      if (z.templates.empty()) fail(where + "'templates' is empty");
    }
    if (doc.contains("label_key")) {
      if (!doc["label_key"].is_string() || doc["label_key"].get<std::string>().empty())
        fail(where + "'label_key' is not a key name");
      z.label_key = doc["label_key"].get<std::string>();
    }
  } else {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") != std::string::npos) z.classes.push_back(line);
    }
  }
  if (z.classes.empty()) fail(where + "names no classes");
  std::set<std::string> seen;
  for (const std::string& c : z.classes) {
    if (c.empty()) fail(where + "a class name is empty");
    if (!seen.insert(c).second) fail(where + "the class name '" + c + "' appears twice");
  }
  if (z.templates.empty()) z.templates = openai_imagenet_templates();
  for (const std::string& t : z.templates) {
    try {
      fill_template(t, z.classes[0]);
    } catch (const UserError& e) {
      fail(where + e.what());
    }
  }
  return z;
}

}  // namespace loom::eval
