#pragma once
// Temporary outputs (a file or a flat directory of files, written under a temporary name and renamed into
// place when complete) that must not outlive the process that writes them: removed when the writer fails
// (the owner's destructor or error path) and when a termination signal (SIGTERM, SIGINT, SIGHUP) ends
// the process. A SIGKILL leaves them behind; remove_stale_tmps() clears them at the next start.
//
// The signal handler is installed on the first registration, only for signals still at their default
// action (a command that handles the signal itself, as `loom train --exit-signal-handler` does, finishes
// its files and keeps its handler); it removes what is registered with async-signal-safe calls only, then
// ends the process with the signal as before.
#include <string>

namespace loom {

class TmpRegistration {
 public:
  TmpRegistration() = default;
  // `path` (a file, or a directory holding only files) is deleted if a signal ends the process first.
  TmpRegistration(const std::string& path, bool directory);
  ~TmpRegistration();  // unregisters (does not delete: the owner commits or removes)
  TmpRegistration(TmpRegistration&& other) noexcept;
  TmpRegistration& operator=(TmpRegistration&& other) noexcept;
  TmpRegistration(const TmpRegistration&) = delete;
  TmpRegistration& operator=(const TmpRegistration&) = delete;

 private:
  int slot_ = -1;
};

// In directory `dir`, removes the entries whose names are `stem` + ".tmp-<pid>-<n>" (AtomicFile's
// temporaries) or `stem` + ".tmp.<pid>" (write_file_atomic's) where no process <pid> is alive. Only those
// exact patterns: nothing else is touched. Returns how many were removed.
int remove_stale_tmp_files(const std::string& dir, const std::string& stem);

}  // namespace loom
