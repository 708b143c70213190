#include "loom/optim/param_groups.h"

#include <cctype>
#include <cmath>
#include <map>

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

namespace {

// The index N of the first "<token>.N." in name, or -1 (Python's re.search(r"token\.([0-9]+)\.")).
int64_t indexed(const std::string& name, const std::string& token) {
  const std::string key = token + ".";
  for (size_t at = name.find(key); at != std::string::npos; at = name.find(key, at + 1)) {
    size_t i = at + key.size(), j = i;
    while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) j++;
    if (j > i && j < name.size() && name[j] == '.') return std::stoll(name.substr(i, j - i));
  }
  return -1;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

std::string quoted(const std::string& s) {
  // json.dumps of a parameter name (ASCII; quotes and backslashes escaped as JSON does).
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string skip_repr(const TowerGroupSpec& t) {
  // Python's str() of a list or set of strings.
  if (t.skip.empty()) return t.skip_printed_as_set ? "set()" : "[]";
  std::string s = t.skip_printed_as_set ? "{" : "[";
  for (size_t i = 0; i < t.skip.size(); i++) s += (i ? ", '" : "'") + t.skip[i] + "'";
  return s + (t.skip_printed_as_set ? "}" : "]");
}

}  // namespace

int evaclip_layer_id(const std::string& name, int num_layers) {
  static const char* const layer_0[] = {"patch_embed",
                                        "pos_embed",
                                        "cls_token",
                                        "mask_token",
                                        "conv1",
                                        "positional_embedding",
                                        "token_embedding",
                                        "transformer.embeddings.word_embeddings",
                                        "transformer.embeddings.position_embeddings",
                                        "transformer.embeddings.token_type_embeddings"};
  for (const char* l : layer_0)
    if (name.find(l) != std::string::npos) return 0;
  // blocks.i (EVA ViT, open_clip resblocks.i), layer.i (Hugging Face encoders), then the fork's decoder
  // cross_attn.i, which log 000 puts in the layer of its resblocks.i.
  for (const char* token : {"blocks", "layer", "cross_attn"}) {
    const int64_t i = indexed(name, token);
    if (i >= 0) return int(i + 1);
  }
  return num_layers + 1;
}

ParamGroupTable build_param_groups(const std::vector<NamedShape>& params, const std::vector<TowerGroupSpec>& towers) {
  ParamGroupTable t;
  t.towers = towers;
  t.group_of_param.assign(params.size(), -1);
  for (const NamedShape& p : params) t.names.push_back(p.name);
  std::map<std::string, int> seen_tower;
  for (const TowerGroupSpec& tw : towers) require(seen_tower[tw.tower]++ == 0, "tower '" + tw.tower + "' given twice");
  // A parameter belongs to the first tower whose prefix it starts with; the tower with no prefix (other)
  // takes the rest.
  std::vector<int> tower_of(params.size(), -1);
  for (size_t i = 0; i < params.size(); i++) {
    for (size_t k = 0; k < towers.size() && tower_of[i] < 0; k++)
      if (!towers[k].prefix.empty() && starts_with(params[i].name, towers[k].prefix)) tower_of[i] = int(k);
    for (size_t k = 0; k < towers.size() && tower_of[i] < 0; k++)
      if (towers[k].prefix.empty()) tower_of[i] = int(k);
    require(tower_of[i] >= 0, "parameter '" + params[i].name + "' belongs to no parameter-group tower");
  }
  for (size_t k = 0; k < towers.size(); k++) {
    const TowerGroupSpec& tw = towers[k];
    // LayerDecayValueAssigner: values[i] = ld ** (num_layers + 1 - i), i = 0 .. num_layers + 1.
    std::vector<double> values;
    const bool layer_decay = tw.layer_decay < 1.0;
    if (layer_decay)
      for (int i = 0; i < tw.num_layers + 2; i++) values.push_back(std::pow(tw.layer_decay, double(tw.num_layers + 1 - i)));
    t.assigned.push_back(values);
    const int first = int(t.groups.size());
    std::map<std::string, int> by_name;  // this tower's groups (names repeat across towers without layer decay)
    for (size_t i = 0; i < params.size(); i++) {
      if (tower_of[i] != int(k)) continue;
      const NamedShape& p = params[i];
      bool skip = false;
      for (const std::string& s : tw.skip) skip = skip || s == p.name;
      const bool no_decay = p.shape.size() <= 1 || ends_with(p.name, ".bias") || skip;
      std::string name = no_decay ? "no_decay" : "decay";
      int layer = -1;
      if (layer_decay) {
        layer = evaclip_layer_id(p.name, tw.num_layers);
        name = tw.tower + "_layer_" + std::to_string(layer) + "_" + name;
      }
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        ParamGroup g;
        g.name = name;
        g.tower = tw.tower;
        g.layer_id = layer;
        g.weight_decay = no_decay ? 0.0 : tw.weight_decay;
        g.lr_scale = layer_decay ? values.at(size_t(layer)) : 1.0;
        g.lr = tw.lr;
        it = by_name.emplace(name, int(t.groups.size())).first;
        t.groups.push_back(std::move(g));
      }
      ParamGroup& g = t.groups[size_t(it->second)];
      g.params.push_back(int(i));
      int64_t n = 1;
      for (int64_t d : p.shape) n *= d;
      g.numel += n;
      t.group_of_param[i] = it->second;
    }
    t.tower_groups.emplace_back(first, int(t.groups.size()));
  }
  return t;
}

std::string python_float_list(const std::vector<double>& values) {
  std::string s = "[";
  for (size_t i = 0; i < values.size(); i++) s += (i ? ", " : "") + python_float(values[i]);
  return s + "]";
}

std::vector<std::string> assigned_values_lines(const ParamGroupTable& t) {
  std::vector<std::string> out;
  for (size_t k = 0; k < t.towers.size(); k++)
    if (!t.assigned[k].empty() && !t.towers[k].assigned_label.empty())
      out.push_back("Assigned " + t.towers[k].assigned_label + " values = " + python_float_list(t.assigned[k]));
  return out;
}

std::vector<std::string> param_group_lines(const ParamGroupTable& t) {
  std::vector<std::string> out;
  for (size_t k = 0; k < t.towers.size(); k++) {
    const TowerGroupSpec& tw = t.towers[k];
    const auto [first, last] = t.tower_groups[k];
    out.push_back("Tower = " + tw.tower);
    out.push_back("Skip weight decay name marked in tower-" + tw.tower + ": " + skip_repr(tw));
    out.push_back("Num of parameters group in tower-" + tw.tower + ": " + std::to_string(last - first));
    // json.dumps(parameter_group_names, indent=2): the group dicts in creation order, keys in insertion
    // order (group, weight_decay, params, lr_scale, lr).
    std::string j = "Param groups = {";
    for (int g = first; g < last; g++) {
      const ParamGroup& pg = t.groups[size_t(g)];
      j += (g > first ? ",\n  " : "\n  ") + quoted(pg.name) + ": {\n";
      j += "    \"group\": " + quoted(pg.tower) + ",\n";
      j += "    \"weight_decay\": " + python_float(pg.weight_decay) + ",\n";
      if (pg.params.empty()) {
        j += "    \"params\": [],\n";
      } else {
        j += "    \"params\": [";
        for (size_t i = 0; i < pg.params.size(); i++)
          j += (i ? ",\n      " : "\n      ") + quoted(t.names[size_t(pg.params[i])]);
        j += "\n    ],\n";
      }
      j += "    \"lr_scale\": " + python_float(pg.lr_scale) + ",\n";
      j += "    \"lr\": " + python_float(pg.lr) + "\n  }";
    }
    j += first < last ? "\n}" : "}";
    out.push_back(j);
  }
  return out;
}

std::string param_group_count_line(const ParamGroupTable& t) {
  return "num of optimizer.param_groups: " + std::to_string(t.groups.size());
}

void log_param_groups(const ParamGroupTable& t, const std::function<void(const std::string&)>& sink) {
  if (!sink) return;
  for (const std::string& l : assigned_values_lines(t)) sink(l);
  for (const std::string& l : param_group_lines(t)) sink(l);
}

}  // namespace loom
