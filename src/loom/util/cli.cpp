#include "loom/util/cli.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "loom/core/error.h"

namespace loom {
namespace {

std::string underscored(const std::string& flag) {
  std::string s = flag.substr(2);
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

int64_t parse_int(const std::string& flag, const std::string& v) {
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty())
    fail("argument " + flag + ": invalid int value: '" + v + "'");
  return out;
}

double parse_float(const std::string& flag, const std::string& v) {
  double out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty() || !std::isfinite(out))
    fail("argument " + flag + ": invalid float value: '" + v + "'");
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, p);
  // Python uses scientific notation for exponents < -4 or >= 16, with a two-digit exponent.
  int exp10 = v == 0 ? 0 : int(std::floor(std::log10(std::fabs(v))));
  if (v != 0 && (exp10 < -4 || exp10 >= 16)) {
    auto [q, ec2] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    s.assign(buf, q);
    auto e = s.find('e');
    std::string mant = s.substr(0, e), ex = s.substr(e + 1);
    char sign = ex[0] == '-' ? '-' : '+';
    if (ex[0] == '-' || ex[0] == '+') ex = ex.substr(1);
    while (ex.size() > 1 && ex[0] == '0') ex = ex.substr(1);
    if (ex.size() < 2) ex = "0" + ex;
    return mant + "e" + sign + ex;
  }
  auto [q, ec3] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  s.assign(buf, q);
  if (s.find('.') == std::string::npos) s += ".0";
  return s;
}

ArgParser::ArgParser(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

ArgParser::Option& ArgParser::add(const std::string& flag, const std::string& help) {
  option_index_.emplace(flag, options_.size());
  options_.push_back(Option{});
  Option& o = options_.back();
  o.flag = flag;
  o.help = help;
  return o;
}

const ArgParser::Option* ArgParser::find(const std::string& flag) const {
  if (auto it = option_index_.find(flag); it != option_index_.end()) return &options_[it->second];
  if (auto it = alias_index_.find(flag); it != alias_index_.end()) return find(it->second);
  return nullptr;
}

ArgParser::Option* ArgParser::find(const std::string& flag) {
  return const_cast<Option*>(std::as_const(*this).find(flag));
}

void ArgParser::add_alias(const std::string& alias, const std::string& target) {
  if (!find(target)) throw std::logic_error("alias " + alias + " of unregistered flag " + target);
  aliases_.emplace_back(alias, target);
  alias_index_.emplace(alias, target);
}

void ArgParser::set_dest(const std::string& flag, const std::string& dest) {
  Option* o = find(flag);
  if (!o) throw std::logic_error("set_dest of unregistered flag " + flag);
  o->dest = dest;
}

void ArgParser::hide_from_help(const std::string& flag) {
  Option* o = find(flag);
  if (!o) throw std::logic_error("hide_from_help of unregistered flag " + flag);
  o->hidden = true;
}

bool ArgParser::has(const std::string& flag) const {
  return option_index_.count(flag) || alias_index_.count(flag);
}

void ArgParser::add_int(const std::string& flag, int64_t* dst, const std::string& help) {
  Option& o = add(flag, help);
  o.metavar = "N";
  o.assign = [flag, dst](const std::string& v) { *dst = parse_int(flag, v); };
  o.show = [dst] { return std::to_string(*dst); };
}

void ArgParser::add_int(const std::string& flag, int* dst, const std::string& help) {
  Option& o = add(flag, help);
  o.metavar = "N";
  o.assign = [flag, dst](const std::string& v) {
    int64_t x = parse_int(flag, v);
    if (x < INT32_MIN || x > INT32_MAX) fail("argument " + flag + ": value out of range: '" + v + "'");
    *dst = int(x);
  };
  o.show = [dst] { return std::to_string(*dst); };
}

void ArgParser::add_opt_int(const std::string& flag, std::optional<int64_t>* dst, const std::string& help) {
  Option& o = add(flag, help);
  o.metavar = "N";
  o.assign = [flag, dst](const std::string& v) { *dst = parse_int(flag, v); };
  o.show = [dst] { return *dst ? std::to_string(**dst) : std::string("None"); };
}

void ArgParser::add_float(const std::string& flag, double* dst, const std::string& help) {
  Option& o = add(flag, help);
  o.metavar = "X";
  o.assign = [flag, dst](const std::string& v) { *dst = parse_float(flag, v); };
  o.show = [dst] { return python_float(*dst); };
}

void ArgParser::add_opt_float(const std::string& flag, std::optional<double>* dst, const std::string& help) {
  Option& o = add(flag, help);
  o.metavar = "X";
  o.assign = [flag, dst](const std::string& v) { *dst = parse_float(flag, v); };
  o.show = [dst] { return *dst ? python_float(**dst) : std::string("None"); };
}

void ArgParser::add_string(const std::string& flag, std::string* dst, const std::string& help) {
  Option& o = add(flag, help);
  o.metavar = "S";
  o.assign = [dst](const std::string& v) { *dst = v; };
  o.show = [dst] { return dst->empty() ? std::string("None") : *dst; };
}

void ArgParser::add_strings(const std::string& flag, std::vector<std::string>* dst, const std::string& help) {
  Option& o = add(flag, help);
  o.metavar = "S [S ...]";
  o.multi = true;
  o.assign = [dst](const std::string& v) { dst->push_back(v); };
  o.reset = [dst] { dst->clear(); };
  o.show = [dst] {
    if (dst->empty()) return std::string("None");
    std::string s = "[";
    for (size_t i = 0; i < dst->size(); i++) s += (i ? ", '" : "'") + (*dst)[i] + "'";
    return s + "]";
  };
}

void ArgParser::add_choice(const std::string& flag, std::string* dst, std::vector<std::string> choices,
                           const std::string& help) {
  Option& o = add(flag, help);
  std::string list;
  for (auto& c : choices) list += (list.empty() ? "" : ",") + c;
  o.metavar = "{" + list + "}";
  o.assign = [flag, dst, choices, list](const std::string& v) {
    if (std::find(choices.begin(), choices.end(), v) == choices.end())
      fail("argument " + flag + ": invalid choice: '" + v + "' (choose from " + list + ")");
    *dst = v;
  };
  o.show = [dst] { return *dst; };
}

void ArgParser::add_flag(const std::string& flag, bool* dst, const std::string& help) {
  Option& o = add(flag, help);
  o.takes_value = false;
  o.assign = [dst](const std::string&) { *dst = true; };
  o.show = [dst] { return std::string(*dst ? "True" : "False"); };
}

void ArgParser::add_no_flag(const std::string& flag, bool* dst, const std::string& help, const std::string& dest) {
  Option& o = add(flag, help);
  o.dest = dest;
  o.takes_value = false;
  o.assign = [dst](const std::string&) { *dst = false; };
  o.show = [dst] { return std::string(*dst ? "True" : "False"); };
}

bool ArgParser::parse(int argc, char** argv) {
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (a.rfind("--", 0) != 0) fail("unexpected argument '" + a + "' (see '" + program_ + " --help')");
    std::string value;
    bool inline_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      inline_value = true;
    }
    Option* o = find(a);
    if (!o) fail("unrecognized argument '" + a + "' (see '" + program_ + " --help')");
    o->set = true;
    if (!o->takes_value) {
      if (inline_value) fail("argument " + a + ": takes no value");
      o->assign("");
      continue;
    }
    if (inline_value) {
      o->assign(value);
      continue;
    }
    if (i + 1 >= argc || (std::string(argv[i + 1]).rfind("--", 0) == 0))
      fail("argument " + a + ": expected a value");
    if (o->multi) {
      o->reset();
      while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) o->assign(argv[++i]);
    } else {
      o->assign(argv[++i]);
    }
  }
  return true;
}

bool ArgParser::was_set(const std::string& flag) const {
  const Option* o = find(flag);
  return o && o->set;
}

std::string ArgParser::help() const {
  std::ostringstream s;
  s << "usage: " << program_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
  for (auto& o : options_) {
    if (o.hidden) continue;
    std::string head = "  " + o.flag + (o.takes_value ? " " + o.metavar : "");
    s << head;
    if (head.size() < 40)
      s << std::string(40 - head.size(), ' ');
    else
      s << "\n" << std::string(40, ' ');
    s << o.help;
    if (o.takes_value && o.show) s << " (default: " << o.show() << ")";
    s << "\n";
  }
  if (!examples_.empty()) {
    s << "\nexamples:\n";
    for (auto& e : examples_) s << "  " << e << "\n";
  }
  return s.str();
}

std::vector<std::pair<std::string, std::string>> ArgParser::dump() const {
  // Names and their sort keys first, then a stable sort of indices: moving ~700 (key, name, value)
  // triples around in the sort cost more than the rest of a `loom train` parse.
  std::vector<std::string> names, keys;
  std::vector<const Option*> opts;
  names.reserve(options_.size());
  keys.reserve(options_.size());
  opts.reserve(options_.size());
  std::unordered_set<std::string> seen;
  seen.reserve(options_.size());
  for (auto& o : options_) {
    std::string name = o.dest.empty() ? underscored(o.flag) : o.dest;
    if (!seen.insert(name).second) continue;
    keys.push_back(lower(name));
    names.push_back(std::move(name));
    opts.push_back(&o);
  }
  std::vector<uint32_t> order(names.size());
  for (uint32_t i = 0; i < order.size(); i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(order.size());
  for (uint32_t i : order) out.emplace_back(std::move(names[i]), opts[i]->show());
  return out;
}

std::optional<std::string> ArgParser::shown(const std::string& name) const {
  // The first option dump() names `name` (a flag's own name with '_' for '-', or its dest).
  for (auto& o : options_) {
    bool match;
    if (!o.dest.empty()) {
      match = o.dest == name;
    } else {
      match = o.flag.size() == name.size() + 2;
      for (size_t k = 0; match && k < name.size(); k++) match = (o.flag[k + 2] == '-' ? '_' : o.flag[k + 2]) == name[k];
    }
    if (match) return o.show();
  }
  return std::nullopt;
}

std::string format_arguments(const std::vector<std::pair<std::string, std::string>>& args) {
  std::string s = "------------------------ arguments ------------------------\n";
  for (auto& [name, value] : args) {
    // Megatron: '  {} {} {}'.format(name, '.' * (48 - len(name)), value)
    size_t dots = name.size() < 48 ? 48 - name.size() : 0;
    s += "  " + name + " " + std::string(dots, '.') + " " + value + "\n";
  }
  s += "-------------------- end of arguments ---------------------\n";
  return s;
}

}  // namespace loom
