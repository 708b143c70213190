// The pipeline splitter's lines (see log_parsers.h):
//   | epoch   1 |     2/  323 batches | lr 0.00 | ms/batch 1600.43 | loss  6.84 | ppl   933.51
// Iterations count on across epochs: (epoch - 1) * batches per epoch + batch.
#include <cstdlib>

#include "loom/report/log_parsers.h"

namespace loom::report {

bool PipelineSplitterParser::line(const std::string& text) {
  if (text.rfind("| epoch ", 0) != 0) return false;
  const auto fields = split_fields(text);
  if (fields.size() < 3 || fields[1].find(" batches") == std::string::npos) return false;
  char* end = nullptr;
  const int64_t epoch = std::strtoll(fields[0].c_str() + 5, &end, 10);
  if (end == fields[0].c_str() + 5) return false;
  const char* b = fields[1].c_str();
  const int64_t batch = std::strtoll(b, &end, 10);
  if (end == b || *end != '/') return false;
  const int64_t per_epoch = std::strtoll(end + 1, &end, 10);
  // Counts a log could hold: positive, and an iteration number that fits (a corrupt line's 19-digit
  // counts would overflow the product, undefined behaviour; such a line is not the splitter's).
  if (epoch < 1 || batch < 0 || per_epoch < 1) return false;
  int64_t it = 0;
  if (__builtin_mul_overflow(epoch - 1, per_epoch, &it) || __builtin_add_overflow(it, batch, &it)) return false;
  for (size_t i = 2; i < fields.size(); i++) {
    const auto sp = fields[i].find(' ');
    if (sp == std::string::npos) continue;
    const std::string key = fields[i].substr(0, sp), value = trim(fields[i].substr(sp + 1));
    if (key == "lr") table_.set(it, "lr", value);
    else if (key == "ms/batch") table_.set(it, "step_time_ms", value);
    else if (key == "loss") table_.set(it, "loss[loss]", value);
    else if (key == "ppl") table_.set(it, "ppl[loss]", value);
    else table_.set(it, key, value);
  }
  matched_++;
  return true;
}

}  // namespace loom::report
