#pragma once
// The zero-shot prompt templates' one formatting rule, on its own so that the classes file's reader
// (zero_shot_classes.cpp) needs nothing of the evaluation.
#include <string>

namespace loom::eval {

// Python's str.format(classname) for a template with at most one "{}" field and "{{" / "}}" escapes
// (the form open_clip's templates take). A second field, any other field ({0}, {name}) or a lone brace
// is a UserError naming the template (Python would raise too, or need arguments there are not).
std::string fill_template(const std::string& tmpl, const std::string& classname);

}  // namespace loom::eval
