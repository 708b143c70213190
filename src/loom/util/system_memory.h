#pragma once
// What this machine can hold, for the checks that refuse work that cannot fit before it starts.
#include <cstdint>
#include <string>

namespace loom {

// Bytes this node can still give out: MemAvailable of /proc/meminfo, or LOOM_MEMORY_AVAILABLE_MB when
// set (tests and users model a smaller machine, or reserve room for other jobs). 0 when unknown.
int64_t available_memory_bytes();
// Resident bytes of this process now (/proc/self/statm).
int64_t resident_bytes();
// "1234.5 MB" / "12.34 GB": a byte count as people read it in an error line.
std::string human_bytes(double bytes);

}  // namespace loom
