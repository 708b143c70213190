#include "loom/util/system_memory.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace loom {

int64_t available_memory_bytes() {
  if (const char* mb = std::getenv("LOOM_MEMORY_AVAILABLE_MB"); mb && *mb) return int64_t(std::atof(mb) * 1048576.0);
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long total = 0, resident = 0;
  if (!(statm >> total >> resident)) return 0;
  return int64_t(resident) * int64_t(sysconf(_SC_PAGESIZE));
}

std::string human_bytes(double bytes) {
  char buf[64];
  if (bytes >= 10.0 * 1073741824.0)
    std::snprintf(buf, sizeof buf, "%.1f GB", bytes / 1073741824.0);
  else if (bytes >= 1073741824.0)
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1073741824.0);
  else
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1048576.0);
  return buf;
}

}  // namespace loom
