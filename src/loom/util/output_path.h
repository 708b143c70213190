#pragma once
// Checks that a command can write where it was told to, made before the work starts, so a run never
// trains for hours and then fails to save. Each returns "" when the path is fine, else the reason (the
// caller names the flag): the path is of the wrong kind (a file where a directory is needed, or the
// reverse), a component of it is a file, its parent is missing, or the place cannot be written (read-only
// filesystem, permissions). Writability is probed by creating and removing a file, since root passes
// every permission check that access(2) makes.
#include <string>

namespace loom {

// A directory the command will create if needed (as create_directories does) and write files into.
std::string output_dir_problem(const std::string& path);
// A file the command will write (through a temporary file in the same directory, renamed into place):
// its directory must exist; an existing path must be a regular file.
std::string output_file_problem(const std::string& path);

}  // namespace loom
