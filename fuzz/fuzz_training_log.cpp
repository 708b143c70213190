// Training logs, as `loom report LOG` and `loom plan --compare-log LOG` read them: the input is the log (plain,
// or gzip: the reader takes both). report::read_log() recognises Megatron-LM, DeepSpeed, EVA-CLIP, the
// pipeline splitter's and Loom's formats; a log it accepts must have at least one logged iteration and must
// go through the CSV table and the HTML page. plan's read_training_log() takes the iteration times, timers
// and memory lines; a log it accepts must have an iteration time and format against a prediction.
#include "fuzz_util.h"
#include "loom/plan/log_compare.h"
#include "loom/report/html_report.h"
#include "loom/report/metrics_table.h"
#include "loom/report/read_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace loom;
  const std::string path = fuzz::write_scratch("run.log", std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_user_errors_only([&] {
    std::vector<report::RunTable> runs{report::read_log(path)};
    if (runs[0].rows().empty()) std::abort();  // cmd_report prints the first and last iteration
    runs.push_back(runs[0]);                    // two runs of one log, as `loom report a.log a.log`
    runs[1].name = "again";
    const auto columns = report::table_columns(runs);
    (void)report::csv_text(runs, columns);
    (void)report::html_report(runs, columns);
  });
  fuzz::expect_user_errors_only([&] {
    const MeasuredRun r = read_training_log(path);
    if (r.elapsed_ms.empty()) std::abort();
    StepPrediction p;
    p.step_seconds = 0.5, p.forward_seconds = 0.01, p.backward_seconds = 0.02, p.optimizer_seconds = 0.05;
    (void)format_comparison(r, p, 8);
  });
  return 0;
}
