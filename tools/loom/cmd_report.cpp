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
#include "loom/report/report_args.h"

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
  report::ReportArgs a;
  if (!report::parse_report_args(argc, argv, a)) return 0;
  const std::vector<std::string>& logs = a.logs;
  const std::string &csv = a.csv, &html = a.html;
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
