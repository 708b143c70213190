// `loom convert`: checkpoints into other formats (Hugging Face GPT-2 and Llama, full weights, one shard),
// and Hugging Face Llama models into Loom's weights.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "loom/ckpt/checkpoint.h"
#include "loom/ckpt/convert_args.h"
#include "loom/ckpt/hf_export.h"
#include "loom/ckpt/hf_llama.h"
#include "loom/ckpt/model_weights.h"
#include "loom/core/error.h"
#include "loom/dist/communicator.h"
#include "loom/parallel/process_grid.h"
#include "loom/util/progress.h"
#include "loom/util/output_path.h"

namespace loom::cmd {

namespace {

// The Hugging Face architecture of a Loom model: Llama, GPT-2, or a UserError.
void export_hf(const DecoderModel& model, const std::string& dir) {
  const ModelConfig& c = model.config();
  if (c.apply_residual_connection_post_layernorm)
    fail("this model takes its residuals after the norms (--apply-residual-connection-post-layernorm): no Hugging "
         "Face form; use --to safetensors");
  if (is_llama_config(c)) return export_hf_llama(model, dir);
  const bool gpt2 = c.normalization == NormKind::LayerNorm && c.activation == ActivationKind::Gelu &&
                    c.position_embedding == PositionKind::Learned && c.add_bias_linear && c.add_qkv_bias &&
                    c.tie_embeddings && c.query_groups() == c.num_attention_heads &&
                    c.head_dim() * c.num_attention_heads == c.hidden_size;
  if (!gpt2)
    fail("this model is neither a GPT-2 (LayerNorm, GELU, learned positions, biases, tied) nor a Llama (RMSNorm, "
         "SwiGLU, RoPE): no Hugging Face form; use --to safetensors");
  export_hf_gpt2(model, dir);
}

// What --output may be: a file (safetensors, --from hf) or a directory (hf, loom) that does not exist yet
// or, for a directory, is empty. Anything else is refused unless --overwrite, so a typo cannot replace an
// unrelated file or another export; the wrong kind (a directory where a file goes) is refused always.
void check_output(const std::string& output, bool is_dir, bool overwrite) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(output, ec);
  if (!fs::exists(st) || overwrite) return;  // the kind of place was checked with the output path
  if (!is_dir) fail("--output " + output + " already exists; add --overwrite to replace it");
  if (!fs::is_empty(output, ec))
    fail("--output " + output + " is a directory that is not empty; add --overwrite to write into it anyway");
}

}  // namespace

int convert(int argc, char** argv) {
  ConvertArgs a;
  if (!parse_convert_args(argc, argv, a)) return 0;
  set_report_file_writes(true);  // large files read and written show their progress (util/progress.h)
  {  // before reading the model: the right kind of place, writable
    const std::string why = a.output_is_file() ? output_file_problem(a.output) : output_dir_problem(a.output);
    require(why.empty(), "--output " + a.output + ": " + why);
  }
  const std::string& output = a.output;
  if (!a.from.empty()) {
    check_output(output, /*is_dir=*/false, a.overwrite);
    const ModelConfig c = import_hf_llama(a.hf_dir, output, a.divisible_by);
    std::printf("wrote %s (Llama: %d layers, hidden %d, %d heads, %d query groups, vocabulary %d padded to %d, %s) "
                "from %s\n",
                output.c_str(), c.num_layers, c.hidden_size, c.num_attention_heads, c.query_groups(), c.vocab_size,
                c.padded_vocab_size, c.tie_embeddings ? "tied" : "untied", a.hf_dir.c_str());
    return 0;
  }
  const std::string& to = a.to;
  check_output(output, /*is_dir=*/!a.output_is_file(), a.overwrite);
  const std::string it = checkpoint_iteration_dir(a.load);
  const ModelConfig cfg = model_config_from_metadata(checkpoint_info(it), it + "/metadata.json");
  DecoderModel model(cfg, 1, 1);  // activations for one token: only the weights matter here
  if (to == "loom") {
    // Offline resharding: read every slice into one full model and optimizer, write one shard.
    const auto info = checkpoint_info(it);
    nlohmann::json meta = nlohmann::json::parse(std::ifstream(it + "/metadata.json"));
    AdamWOptions ao;  // the state it holds: Adam's/LAMB's two moments or SGD's momentum buffer
    if (meta.value("optimizer", "") == "sgd") ao.kind = OptimizerKind::Sgd;
    AdamW optimizer(model.params(), ao);
    const bool with_optim = meta.value("has_optimizer", false);
    TrainState state = load_checkpoint(it, model, with_optim ? &optimizer : nullptr, {with_optim, false});
    optimizer.set_steps(state.optimizer_steps);
    parallel::ProcessGrid grid(dist::Communicator::world(), 1);
    CheckpointSaver saver(output, grid);
    SaveOptions so;
    so.save_optim = with_optim;
    so.info = info;
    saver.save(state, {&model}, {&optimizer}, so);
  } else {
    load_checkpoint(it, model, nullptr, {/*load_optim=*/false, /*finetune=*/true});
  }
  if (to == "hf") {
    export_hf(model, output);
  } else if (to == "safetensors") {
    save_weights(output, model.params(), checkpoint_info(it));
  }
  std::printf("wrote %s (%s) from %s\n", output.c_str(), to.c_str(), it.c_str());
  return 0;
}

}  // namespace loom::cmd
