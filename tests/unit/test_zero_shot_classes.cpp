// The zero-shot class-names file (--zeroshot-classes): make-images' JSON form and the one-name-a-line
// text form (then EVA-CLIP's 80 OpenAI ImageNet templates), and the messages of bad files. Exit code and
// the single error line: tests/cli/test_coca_zeroshot.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "loom/core/error.h"
#include "loom/eval/zero_shot_classes.h"

namespace fs = std::filesystem;
using namespace loom::eval;

namespace {

std::string write(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("loom_zs_classes_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

std::string error_of(const std::string& path) {
  try {
    load_zero_shot_classes(path);
  } catch (const loom::UserError& e) {
    fs::remove(path);
    return e.what();
  }
  fs::remove(path);
  return "(no error)";
}

}  // namespace

TEST(ZeroShotClasses, JsonForm) {
  const std::string p = write("a.json", R"({"classes": ["red square", "blue circle"], "templates": ["a {}.", "{{x}} {}"],
                                           "label_key": "cls", "other": 1})");
  const ZeroShotClasses z = load_zero_shot_classes(p);
  fs::remove(p);
  EXPECT_EQ(z.classes, (std::vector<std::string>{"red square", "blue circle"}));
  EXPECT_EQ(z.templates, (std::vector<std::string>{"a {}.", "{{x}} {}"}));
  EXPECT_EQ(z.label_key, "cls");
}

TEST(ZeroShotClasses, TextFormTakesOpenAiTemplates) {
  const std::string p = write("b.txt", "tench\r\n\ngoldfish\n  \ngreat white shark");
  const ZeroShotClasses z = load_zero_shot_classes(p);
  fs::remove(p);
  EXPECT_EQ(z.classes, (std::vector<std::string>{"tench", "goldfish", "great white shark"}));
  EXPECT_EQ(z.label_key, "");
  ASSERT_EQ(z.templates.size(), 80u);  // EVA-CLIP's openai_imagenet_template
  EXPECT_EQ(z.templates.front(), "a bad photo of a {}.");
  EXPECT_EQ(z.templates[39], "a photo of a {}.");
  EXPECT_EQ(z.templates.back(), "a tattoo of the {}.");
  for (const std::string& t : z.templates) EXPECT_NE(t.find("{}"), std::string::npos) << t;
}

TEST(ZeroShotClasses, BadFiles) {
  auto bad = [](const std::string& name, const std::string& text) {
    const std::string p = write(name, text);
    const std::string e = error_of(p);
    const std::string prefix = "--zeroshot-classes " + p + ": ";
    EXPECT_EQ(e.rfind(prefix, 0), 0u) << e;
    return e.substr(std::min(e.size(), prefix.size()));
  };
  EXPECT_EQ(bad("1", "{\"classes\": [\"a\"],}").rfind("not JSON (", 0), 0u);
  EXPECT_EQ(bad("2", "{\"names\": [\"a\"]}"), "has no 'classes' list");
  EXPECT_EQ(bad("3", "{\"classes\": [\"a\", 3]}"), "'classes' is not a list of strings");
  EXPECT_EQ(bad("4", "{\"classes\": []}"), "names no classes");
  EXPECT_EQ(bad("5", "\n\n"), "names no classes");
  EXPECT_EQ(bad("6", "{\"classes\": [\"a\", \"\"]}"), "a class name is empty");
  EXPECT_EQ(bad("7", "a\nb\na\n"), "the class name 'a' appears twice");
  EXPECT_EQ(bad("8", "{\"classes\": [\"a\"], \"templates\": []}"), "'templates' is empty");
  EXPECT_EQ(bad("9", "{\"classes\": [\"a\"], \"templates\": [\"{} and {}\"]}"),
            "zero-shot template '{} and {}': more than one '{}' field");
  EXPECT_EQ(bad("10", "{\"classes\": [\"a\"], \"label_key\": 3}"), "'label_key' is not a key name");
  EXPECT_EQ(error_of("/nonexistent/classes.json"), "--zeroshot-classes /nonexistent/classes.json: cannot be read");
}
