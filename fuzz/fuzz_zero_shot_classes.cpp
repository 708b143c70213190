// Zero-shot class names and prompt templates (--zeroshot-classes FILE, eval/zero_shot_classes.h): the input
// is the file, JSON {"classes", "templates", "label_key"} or one class name per line. It is read by
// load_zero_shot_classes(); what it returns must be usable: classes non-empty, distinct and non-empty, every
// template filling with every class name.
#include <set>

#include "fuzz_util.h"
#include "loom/eval/zero_shot_classes.h"
#include "loom/eval/zero_shot_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const std::string path =
      fuzz::write_scratch("classes.txt", std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_user_errors_only([&] {
    const eval::ZeroShotClasses z = eval::load_zero_shot_classes(path);
    if (z.classes.empty() || z.templates.empty()) std::abort();
    const std::set<std::string> distinct(z.classes.begin(), z.classes.end());
    if (distinct.size() != z.classes.size() || distinct.count("")) std::abort();
    for (size_t c = 0; c < std::min<size_t>(z.classes.size(), 4); c++)
      for (const std::string& t : z.templates) (void)eval::fill_template(t, z.classes[c]);  // must not throw
  });
  return 0;
}
