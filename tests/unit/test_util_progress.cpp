// util/progress.h: concurrent add() from many threads counts every unit, reports are whole lines, and
// quick work prints nothing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "loom/util/progress.h"

namespace {

struct Env {
  Env(const char* delay, const char* interval) {
    setenv("LOOM_PROGRESS", "plain", 1);
    setenv("LOOM_PROGRESS_DELAY", delay, 1);
    setenv("LOOM_PROGRESS_INTERVAL", interval, 1);
  }
  ~Env() {
    unsetenv("LOOM_PROGRESS");
    unsetenv("LOOM_PROGRESS_DELAY");
    unsetenv("LOOM_PROGRESS_INTERVAL");
  }
};

TEST(Progress, ConcurrentAddsCountEverythingAndPrintWholeLines) {
  Env env("0", "0.001");  // a report at the first add, then at most one a millisecond
  testing::internal::CaptureStderr();
  {
    loom::Progress p("work", 8 * 20000, "items");
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++)
      threads.emplace_back([&p] {
        for (int i = 0; i < 20000; i++) p.add(1, 1);
      });
    for (auto& t : threads) t.join();
    p.finish();
  }
  const std::string out = testing::internal::GetCapturedStderr();
  std::istringstream lines(out);
  std::string line, last;
  int n = 0;
  const std::regex report(R"(loom: work: \d+ items, [0-9.]+ of 0\.15 MB \(\d+%\), [0-9.]+ MB/s(, ETA \d+:\d\d)?)");
  while (std::getline(lines, line)) {
    if (!last.empty()) {
      EXPECT_TRUE(std::regex_match(last, report)) << last;
    }
    last = line;
    n++;
  }
  EXPECT_GE(n, 2);
  EXPECT_TRUE(std::regex_match(last, std::regex(R"(loom: work: 160000 items, 0\.15 MB in [0-9.]+ s \([0-9.]+ MB/s\))")))
      << last;
}

TEST(Progress, QuickWorkPrintsNothing) {
  Env env("2", "0");
  testing::internal::CaptureStderr();
  {
    loom::Progress p("quick", 100);
    for (int i = 0; i < 100; i++) p.add(1);
    p.finish();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace
