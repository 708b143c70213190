#pragma once
// `loom report`'s command line: the logs (every argument that is neither a flag nor a flag's value) and the
// outputs, with the checks that need no file (tools/loom/cmd_report.cpp reads and writes; fuzz/fuzz_subcommand_args.cpp
// drives the parser).
#include <string>
#include <vector>

namespace loom::report {

struct ReportArgs {
  std::vector<std::string> logs;
  std::string csv, html;  // --csv, --html: empty when not given
};

// Returns false when --help was printed (the command exits 0). Throws UserError: no log, nothing to write,
// --csv and --html naming the same file, or a flag error.
bool parse_report_args(int argc, char** argv, ReportArgs& a);

}  // namespace loom::report
