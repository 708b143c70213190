// `loom report`: training logs of Megatron-LM, DeepSpeed, EVA-CLIP, the pipeline splitter and Loom into one
// table of metrics per iteration (CSV) and a self-contained HTML page of charts.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "commands.h"
#include "loom/core/error.h"
#include "loom/report/html_report.h"
#include "loom/report/metrics_table.h"
#include "loom/report/read_log.h"
#include "loom/util/cli.h"

namespace loom::cmd {

namespace {

namespace fs = std::filesystem;

void check_input(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path + ": cannot open: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(path + ": is a directory, expected a log file");
  if (::access(path.c_str(), R_OK) != 0) fail(path + ": cannot open: " + std::strerror(errno));
}

// An output must be creatable (its directory exists and is writable) and not overwrite a directory or
// one of the logs.
void check_output(const std::string& flag, const std::string& path, const std::vector<std::string>& logs) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail(flag + " " + path + ": is a directory");
    for (const auto& l : logs) {
      struct stat ls {};
      if (::stat(l.c_str(), &ls) == 0 && ls.st_dev == st.st_dev && ls.st_ino == st.st_ino)
        fail(flag + " " + path + ": is one of the logs read");
    }
  }
  std::string dir = fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    fail(flag + " " + path + ": cannot write: directory " + dir + " does not exist");
  if (::access(dir.c_str(), W_OK) != 0) fail(flag + " " + path + ": cannot write: " + std::strerror(errno));
}

// Written under a temporary name and renamed, so an output is never half-written.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path + ": cannot write: " + std::strerror(errno));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    fail(path + ": cannot write: " + std::strerror(e));
  }
}

std::string run_name(const std::string& path) {
  std::string n = fs::path(path).filename().string();
  for (const char* ext : {".gz", ".log", ".txt"})
    if (n.size() > std::strlen(ext) && n.compare(n.size() - std::strlen(ext), std::strlen(ext), ext) == 0)
      n.resize(n.size() - std::strlen(ext));
  return n;
}

}  // namespace

int report(int argc, char** argv) {
  std::string csv, html;
  ArgParser p("loom report",
              "loom report LOG [LOG ...] [--csv OUT.csv] [--html OUT.html]\n\nRead training logs - Megatron-LM (2021 and Megatron-Core formats), DeepSpeed, EVA-CLIP, the\n"
              "automatic pipeline splitter and Loom's own, plain or gzip - into one table of metrics per logged\n"
              "iteration (loss per loss name, lr, loss scale, grad norm, skipped iterations, step time,\n"
              "tokens/s or samples/s, TFLOP/s, memory, validation loss, timers: whatever each log has, blank\n"
              "where it has not). Values are copied digit for digit from the log. Writes the table as CSV and\n"
              "a self-contained HTML page with one chart per metric, the runs overlaid.");
  p.add_string("--csv", &csv, "write the table here (columns: run, iteration, then the metrics)");
  p.add_string("--html", &html, "write the page of charts here (no scripts or external resources)");
  p.add_example("loom report runs/a/train.log runs/b/train.log --csv runs/ab.csv --html runs/ab.html");
  p.add_example("loom report megatron.log deepspeed.log.gz --html compare.html");
  // Logs are the arguments that are neither a flag nor a flag's value.
  std::vector<std::string> logs;
  std::vector<char*> flags;
  for (int i = 0; i < argc; i++) {
    const std::string a = argv[i];
    if (a.rfind("-", 0) == 0) {
      flags.push_back(argv[i]);
      if ((a == "--csv" || a == "--html") && i + 1 < argc) flags.push_back(argv[++i]);
    } else {
      logs.push_back(a);
    }
  }
  if (!p.parse(int(flags.size()), flags.data())) return 0;
  if (logs.empty()) fail("no log given (usage: loom report LOG [LOG ...] --csv OUT.csv --html OUT.html)");
  if (csv.empty() && html.empty()) fail("nothing to write: give --csv and/or --html");
  if (!csv.empty() && csv == html) fail("--csv and --html name the same file " + csv);
  for (const auto& l : logs) check_input(l);
  if (!csv.empty()) check_output("--csv", csv, logs);
  if (!html.empty()) check_output("--html", html, logs);

  std::vector<report::RunTable> runs;
  for (const auto& l : logs) {
    runs.push_back(report::read_log(l));
    // Two logs of the same name stay apart in the table and the legends.
    std::string name = run_name(l), base = name;
    for (int k = 2;; k++) {
      bool taken = false;
      for (const auto& r : runs) taken = taken || r.name == name;
      if (!taken) break;
      name = base + "#" + std::to_string(k);
    }
    runs.back().name = name;
    const auto& rows = runs.back().rows();
    std::printf("%s: %s log, %zu logged iterations (%lld to %lld), %zu metrics\n", l.c_str(), runs.back().format.c_str(),
                rows.size(), (long long)rows.begin()->first, (long long)rows.rbegin()->first,
                runs.back().columns().size());
  }
  const auto columns = report::table_columns(runs);
  if (!csv.empty()) {
    write_file(csv, report::csv_text(runs, columns));
    std::printf("wrote %s (%zu columns)\n", csv.c_str(), columns.size() + 2);
  }
  if (!html.empty()) {
    write_file(html, report::html_report(runs, columns));
    std::printf("wrote %s\n", html.c_str());
  }
  return 0;
}

}  // namespace loom::cmd
