#include "loom/report/report_args.h"

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom::report {

bool parse_report_args(int argc, char** argv, ReportArgs& a) {
  ArgParser p("loom report",
              "loom report LOG [LOG ...] [--csv OUT.csv] [--html OUT.html]\n\nRead training logs - Megatron-LM (2021 and Megatron-Core formats), DeepSpeed, EVA-CLIP, the\n"
              "automatic pipeline splitter and Loom's own, plain or gzip - into one table of metrics per logged\n"
              "iteration (loss per loss name, lr, loss scale, grad norm, skipped iterations, step time,\n"
              "tokens/s or samples/s, TFLOP/s, memory, validation loss, timers: whatever each log has, blank\n"
              "where it has not). Values are copied digit for digit from the log. Writes the table as CSV and\n"
              "a self-contained HTML page with one chart per metric, the runs overlaid.");
  p.add_string("--csv", &a.csv, "write the table here (columns: run, iteration, then the metrics)");
  p.add_string("--html", &a.html, "write the page of charts here (no scripts or external resources)");
  p.add_example("loom report runs/a/train.log runs/b/train.log --csv runs/ab.csv --html runs/ab.html");
  p.add_example("loom report megatron.log deepspeed.log.gz --html compare.html");
  // Logs are the arguments that are neither a flag nor a flag's value.
  std::vector<char*> flags;
  for (int i = 0; i < argc; i++) {
    const std::string arg = argv[i];
    if (arg.rfind("-", 0) == 0) {
      flags.push_back(argv[i]);
      if ((arg == "--csv" || arg == "--html") && i + 1 < argc) flags.push_back(argv[++i]);
    } else {
      a.logs.push_back(arg);
    }
  }
  if (!p.parse(int(flags.size()), flags.data())) return false;
  if (a.logs.empty()) fail("no log given (usage: loom report LOG [LOG ...] --csv OUT.csv --html OUT.html)");
  if (a.csv.empty() && a.html.empty()) fail("nothing to write: give --csv and/or --html");
  if (!a.csv.empty() && a.csv == a.html) fail("--csv and --html name the same file " + a.csv);
  return true;
}

}  // namespace loom::report
