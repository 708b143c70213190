#pragma once
// The class names and prompt templates of zero-shot classification (`--zeroshot-classes FILE`), in
// either of two forms:
//   JSON: {"classes": ["red square", ...], "templates": ["a photo of a {}.", ...], "label_key": "label"}
//         (what `loom make-images` writes as classes.json; "templates" and "label_key" optional);
//   text: one class name per line (blank lines skipped), e.g. ImageNet's 1000 names.
// Without templates, EVA-CLIP's (training/imagenet_zeroshot_data.py openai_imagenet_template, OpenAI's
// 80 ImageNet prompts) are used, as its zero_shot_eval does. A template is a str.format string with one
// "{}" (fill_template). Bad input is a UserError naming the file: missing, malformed JSON, no or empty
// class list, an empty or repeated class name (a label must name one class), a template fill_template
// refuses.
#include <string>
#include <vector>

namespace loom::eval {

struct ZeroShotClasses {
  std::vector<std::string> classes;
  std::vector<std::string> templates;
  std::string label_key;  // the file's "label_key", "" when it names none
};

ZeroShotClasses load_zero_shot_classes(const std::string& path);

// OpenAI's 80 ImageNet prompt templates in EVA-CLIP's order, "{}" for the class name.
const std::vector<std::string>& openai_imagenet_templates();

}  // namespace loom::eval
