#pragma once
// EVA-CLIP's optimizer parameter groups (EVA-CLIP/rei/training/optim.py get_all_parameters /
// get_parameters, with the text_decoder tower of the fork reference log 000 ran): per tower a learning
// rate, a weight decay and a layer-wise learning-rate decay ld,
//   - tower by name prefix ("visual.", "text.", "text_decoder."; everything else is "other");
//   - layer id (towers with ld < 1 only): 0 for the embeddings (patch_embed, pos_embed, cls_token,
//     token_embedding, positional_embedding, ...), i+1 for blocks.i / layer.i / cross_attn.i, else
//     num_layers+1; lr_scale = ld^(num_layers+1-id) (LayerDecayValueAssigner);
//   - no weight decay for tensors with ndim <= 1, names ending in ".bias" and the tower's skip names
//     (its no_weight_decay(): visual.pos_embed, visual.cls_token, text.positional_embedding, logit_scale);
//   - groups named <tower>_layer_<id>_<decay|no_decay> (plain decay / no_decay without layer decay),
//     created in named_parameters() order, towers in the order given (visual, text, text_decoder, other).
// The table is what the optimizer needs (each parameter's group; each group's weight decay, lr_scale and
// base lr) and what EVA-CLIP prints at start (the log lines below, byte for byte as log 000).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace loom {

struct NamedShape {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch's shape ({} for a scalar)
};

// One tower's settings (EVA-CLIP's --<tower>-lr/-wd/-ld resolved against --lr/--wd/--ld).
struct TowerGroupSpec {
  std::string tower;   // "visual", "text", "text_decoder" or "other"
  std::string prefix;  // names starting with it belong to the tower ("" for other: whatever is left)
  int num_layers = 0;  // the tower's get_num_layers() (its depth)
  double lr = 0, weight_decay = 0, layer_decay = 1.0;
  // The tower's no_weight_decay() names as EVA-CLIP prints them (its set order, prefixed), and whether
  // it prints them as a Python list (['visual.pos_embed', ...]) or a set ({'logit_scale'}).
  std::vector<std::string> skip;
  bool skip_printed_as_set = false;
  // "Assigned <label> values = [...]" is printed for towers with layer decay (empty: none).
  std::string assigned_label;
};

struct ParamGroup {
  std::string name;    // visual_layer_3_decay, no_decay, ...
  std::string tower;
  int layer_id = -1;   // -1 without layer decay
  double weight_decay = 0, lr_scale = 1.0, lr = 0;  // lr: the tower's base lr (the schedule's peak)
  std::vector<int> params;  // indices into the parameter list, in named_parameters() order
  int64_t numel = 0;
};

struct ParamGroupTable {
  std::vector<TowerGroupSpec> towers;
  std::vector<std::vector<double>> assigned;  // per tower: the layer-decay values (empty without)
  std::vector<ParamGroup> groups;             // the optimizer's param_groups, in order
  std::vector<int> group_of_param;            // per parameter
  std::vector<std::string> names;             // per parameter
  // group index range [first, last) of tower t
  std::vector<std::pair<int, int>> tower_groups;
};

// EVA-CLIP's layer id of a parameter for a tower of num_layers blocks (get_num_layer_for_transformer
// with the fork's cross_attn.i).
int evaclip_layer_id(const std::string& name, int num_layers);

// Throws UserError when a parameter has no tower (no "other" tower given) or towers repeat.
ParamGroupTable build_param_groups(const std::vector<NamedShape>& params, const std::vector<TowerGroupSpec>& towers);

// The lines EVA-CLIP logs (one string per logging call; a call's string may hold newlines, as Python's
// logging prints a multi-line message):
//  "Assigned visual values = [0.023757264018058777, ...]" per tower with layer decay (every rank in log 000).
std::vector<std::string> assigned_values_lines(const ParamGroupTable& t);
//  per tower: "Tower = visual", "Skip weight decay name marked in tower-visual: [...]",
//  "Num of parameters group in tower-visual: 28", "Param groups = {json.dumps(indent=2)}" (rank 0).
std::vector<std::string> param_group_lines(const ParamGroupTable& t);
//  "num of optimizer.param_groups: 83" (rank 0, after the engine is built).
std::string param_group_count_line(const ParamGroupTable& t);
// The Assigned lines then the tower blocks through `sink` (the caller's logger; rank 0). Log 000 prints
// the Assigned lines on every rank, before the model; the count line comes after the engine is built.
void log_param_groups(const ParamGroupTable& t, const std::function<void(const std::string&)>& sink);

// The initial lr of every group (its tower's base lr) as DeepSpeed prints it at step 0:
// "[0.0002, 0.0002, ..., 0.0005]" (Python's repr of the list of floats).
std::string python_float_list(const std::vector<double>& values);

}  // namespace loom
