#include "loom/train/pipeline_delay.h"

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "loom/core/error.h"
#include "loom/core/rng.h"

namespace loom {

namespace {
double number(const std::string& key, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  require(!text.empty() && end && *end == '\0' && v >= 0,
          "LOOM_PIPELINE_DELAY: " + key + "=" + text + " is not a non-negative number");
  return v;
}
}  // namespace

PipelineDelay PipelineDelay::parse(const std::string& spec) {
  PipelineDelay d;
  if (spec.empty()) return d;
  std::stringstream in(spec);
  std::string item;
  bool has_stage = false;
  while (std::getline(in, item, ',')) {
    const size_t eq = item.find('=');
    require(eq != std::string::npos, "LOOM_PIPELINE_DELAY: '" + item + "' is not key=value (stage, prob, ms, frac, seed, link)");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    const double v = number(key, value);
    if (key == "stage") {
      require(v == double(int(v)), "LOOM_PIPELINE_DELAY: stage=" + value + " is not a stage number");
      d.stage_ = int(v);
      has_stage = true;
    } else if (key == "prob") {
      require(v <= 1, "LOOM_PIPELINE_DELAY: prob=" + value + " is not in [0, 1]");
      d.prob_ = v;
    } else if (key == "ms") {
      d.ms_ = v;
    } else if (key == "frac") {
      d.frac_ = v;
    } else if (key == "seed") {
      d.seed_ = uint64_t(v);
    } else if (key == "link") {
      require(v == 0 || v == 1, "LOOM_PIPELINE_DELAY: link=" + value + " is not 0 or 1");
      d.link_ = v == 1;
    } else {
      fail("LOOM_PIPELINE_DELAY: unknown key '" + key + "' (stage, prob, ms, frac, seed, link)");
    }
  }
  require(has_stage, "LOOM_PIPELINE_DELAY: no stage= given");
  require((d.ms_ > 0) != (d.frac_ > 0), "LOOM_PIPELINE_DELAY: give one of ms= and frac=");
  require(!d.link_ || d.ms_ > 0, "LOOM_PIPELINE_DELAY: link=1 takes ms= (a message has no pass time to take frac= of)");
  return d;
}

PipelineDelay PipelineDelay::from_environment() {
  const char* v = std::getenv("LOOM_PIPELINE_DELAY");
  return parse(v ? v : "");
}

double PipelineDelay::after_pass(int stage, double pass_us) {
  if (link_ || !active_on(stage)) return 0;
  Rng r(stream_key(seed_, 0xDE1A, uint64_t(stage), passes_++));
  if (!(r.uniform() < prob_)) return 0;
  const double us = ms_ > 0 ? ms_ * 1e3 : frac_ * pass_us;
  std::this_thread::sleep_for(std::chrono::duration<double, std::micro>(us));
  return us;
}

double PipelineDelay::message_delay_us(int stage, uint64_t run, int micro, int chunk, int kind) const {
  if (!link_ || !active_on(stage)) return 0;
  Rng r(stream_key(seed_, 0x11E4, uint64_t(stage), run, (uint64_t(micro) << 24) | (uint64_t(chunk) << 1) | uint64_t(kind)));
  return r.uniform() < prob_ ? ms_ * 1e3 : 0.0;
}

}  // namespace loom
