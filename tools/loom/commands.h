#pragma once
// One function per `loom` subcommand; argv starts after the subcommand name.
namespace loom::cmd {
int train(int argc, char** argv);
int generate(int argc, char** argv);
int plan(int argc, char** argv);
int convert(int argc, char** argv);
int preprocess(int argc, char** argv);
int report(int argc, char** argv);
int bench(int argc, char** argv);
int make_images(int argc, char** argv);
}  // namespace loom::cmd
