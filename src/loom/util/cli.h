#pragma once
// A small Megatron-style flag parser: `--name value`, `--name=value`, `--flag`. Every value is checked
// (numbers must parse completely, choices must match) and anything wrong throws UserError naming the
// flag, so commands fail with one line before any work. It also renders `--help` with examples and
// Megatron's argument dump (`  name ........ value`).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace loom {

class ArgParser {
 public:
  ArgParser(std::string program, std::string summary);

  void add_int(const std::string& flag, int64_t* dst, const std::string& help);
  void add_int(const std::string& flag, int* dst, const std::string& help);
  void add_opt_int(const std::string& flag, std::optional<int64_t>* dst, const std::string& help);
  void add_float(const std::string& flag, double* dst, const std::string& help);
  void add_opt_float(const std::string& flag, std::optional<double>* dst, const std::string& help);
  void add_string(const std::string& flag, std::string* dst, const std::string& help);
  void add_strings(const std::string& flag, std::vector<std::string>* dst, const std::string& help);  // nargs+
  void add_choice(const std::string& flag, std::string* dst, std::vector<std::string> choices,
                  const std::string& help);
  void add_flag(const std::string& flag, bool* dst, const std::string& help);      // store_true
  // store_false; `dest` names it in the argument dump (Megatron's dest=, e.g. log_loss_scale_to_tensorboard
  // for --no-log-loss-scale-to-tensorboard), by default the flag's own name.
  void add_no_flag(const std::string& flag, bool* dst, const std::string& help, const std::string& dest = "");
  void add_example(const std::string& line) { examples_.push_back(line); }
  // Another spelling of a registered flag (Megatron v1's and DeepSpeed's names): it sets the same value,
  // was_set(target) reports it, and it has no line of its own in --help or the argument dump.
  void add_alias(const std::string& alias, const std::string& target);
  // The name the argument dump shows for `flag` (Megatron's dest, e.g. bias_gelu_fusion for --no-bias-gelu-fusion).
  void set_dest(const std::string& flag, const std::string& dest);
  bool has(const std::string& flag) const;
  // Keeps a registered flag out of --help (the Megatron flags that only are accepted or refused; README lists them).
  void hide_from_help(const std::string& flag);

  // Returns false when --help was printed (the caller exits 0). Throws UserError on bad input.
  bool parse(int argc, char** argv);
  bool was_set(const std::string& flag) const;

  std::string help() const;
  // (name with underscores, value as Python would print it), sorted case-insensitively like Megatron; a
  // name given by two spellings (set_dest) appears once, with the first one's value.
  std::vector<std::pair<std::string, std::string>> dump() const;
  // The value dump() shows under `name` (nullopt when it has no such line), without building the dump.
  std::optional<std::string> shown(const std::string& name) const;

 private:
  struct Option {
    std::string flag, help, metavar, dest;
    bool takes_value = true;
    bool multi = false;
    bool set = false;
    bool hidden = false;
    std::function<void(const std::string&)> assign;
    std::function<void()> reset;  // multi-value flags: a repeated flag replaces the earlier values
    std::function<std::string()> show;
  };
  Option& add(const std::string& flag, const std::string& help);
  Option* find(const std::string& flag);
  std::string program_, summary_;
  std::vector<Option> options_;
  std::vector<std::pair<std::string, std::string>> aliases_;  // (alias, target)
  // Lookup by name (the first registration of a name wins, as the linear search did): `loom train`
  // registers some 700 flags and looks each up a few times (set_dest, hide_from_help, was_set), which was
  // quadratic and made one parse take milliseconds.
  std::unordered_map<std::string, size_t> option_index_;                 // flag -> options_ index
  std::unordered_map<std::string, std::string> alias_index_;             // alias -> target
  const Option* find(const std::string& flag) const;
  std::vector<std::string> examples_;
};

// Python's repr of a float: shortest round-trip digits, with ".0" on integral values.
std::string python_float(double v);
// Megatron's argument block, ready to print.
std::string format_arguments(const std::vector<std::pair<std::string, std::string>>& args);

}  // namespace loom
