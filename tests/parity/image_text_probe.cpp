// Test and measurement driver for the image-caption index and loader (tests/cli/test_image_text_index.sh,
// bench/image_text_loader_bench.sh); not installed. Errors print `loom: error: ...` and exit 2.
//
//   image_text_probe index <json|csv> <index file>
//       parses the index; prints {"entries", "seconds", "entries_per_s", "bytes_per_entry", "max_rss_mb"}
//   image_text_probe loader <index file> <tokenizer type> <tokenizer file> <global batch> <workers> <size> <steps>
//       (GPT2BPETokenizer: <tokenizer file> is "vocab.json:merges.txt") runs <steps> batches after one
//       warm-up batch; prints {"images_per_s", "seconds", "skipped", "workers", "batch"}
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loom/core/error.h"
#include "loom/data/image_text_index.h"
#include "loom/data/image_text_loader.h"
#include "loom/data/tokenizer.h"

namespace {

using loom::fail;
using namespace loom::data;

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int run(const std::vector<std::string>& a) {
  if (a.size() == 3 && a[0] == "index") {
    ImageTextIndexConfig c;
    c.format = a[1];
    c.path = a[2];
    const double t0 = now();
    const ImageTextIndex idx = ImageTextIndex::load(c);
    const double s = now() - t0;
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("%s\n", nlohmann::json{{"entries", idx.size()}, {"seconds", s}, {"entries_per_s", double(idx.size()) / s},
                                       {"bytes_per_entry", double(idx.memory_bytes()) / double(idx.size())},
                                       {"max_rss_mb", double(ru.ru_maxrss) / 1024.0}}
                            .dump()
                            .c_str());
    return 0;
  }
  if (a.size() == 8 && a[0] == "loader") {
    ImageTextIndexConfig ic;
    ic.path = a[1];
    const ImageTextIndex idx = ImageTextIndex::load(ic);
    TokenizerConfig tc;
    tc.type = a[2];
    if (tc.type == "GPT2BPETokenizer") {
      const size_t colon = a[3].find(':');
      if (colon == std::string::npos) fail("GPT2BPETokenizer: give vocab.json:merges.txt");
      tc.vocab_file = a[3].substr(0, colon);
      tc.merge_file = a[3].substr(colon + 1);
    } else {
      tc.tokenizer_model = a[3];
    }
    const auto tok = make_tokenizer(tc);
    ImageTextLoaderConfig lc;
    lc.global_batch = std::stoll(a[4]);
    lc.workers = std::stoi(a[5]);
    lc.transform.size = std::stoi(a[6]);
    const int steps = std::stoi(a[7]);
    ImageTextLoader loader(idx, *tok, lc);
    ImageTextBatch b;
    if (!loader.next(b)) fail("the index has no complete batch");
    const double t0 = now();
    int64_t images = 0;
    for (int s = 0; s < steps; s++) {
      if (!loader.next(b) && !loader.next(b)) fail("no batch");
      images += b.size;
    }
    const double sec = now() - t0;
    std::printf("%s\n", nlohmann::json{{"images_per_s", double(images) / sec}, {"seconds", sec}, {"skipped", loader.skipped()},
                                       {"workers", lc.workers}, {"batch", lc.global_batch}}
                            .dump()
                            .c_str());
    return 0;
  }
  fail("usage: see the comment at the top of image_text_probe.cpp");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loom: error: %s\n", e.what());
    return 2;
  }
}
