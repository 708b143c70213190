#pragma once
// One function per `loom` subcommand; argv starts after the subcommand name.
namespace loom::cmd {
int train(int argc, char** argv);
int train_coca(int argc, char** argv);  // train --model coca
int generate(int argc, char** argv);
int plan(int argc, char** argv);
int plan_coca(int argc, char** argv);  // plan --model coca
int convert(int argc, char** argv);
int preprocess(int argc, char** argv);
int report(int argc, char** argv);
int bench(int argc, char** argv);
int make_images(int argc, char** argv);
}  // namespace loom::cmd
