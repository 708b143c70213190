// `loom preprocess`: Megatron's tools/preprocess_data.py for GPT. JSONL in, an mmap indexed dataset
// (<output-prefix>_<key>_document.bin/.idx, byte-for-byte Megatron's format) out.
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "loom/core/error.h"
#include "loom/data/preprocess.h"
#include "loom/data/preprocess_args.h"

namespace loom::cmd {

int preprocess(int argc, char** argv) {
  data::PreprocessConfig cfg;
  if (!data::parse_preprocess_args(argc, argv, cfg)) return 0;
  cfg.progress = true;  // a bar on a terminal, a line every few seconds otherwise; silent when quick
  cfg.log = stdout;
  data::preprocess(cfg);
  return 0;
}

}  // namespace loom::cmd
