#include "loom/train/coca_args.h"

#include <cstring>

#include "loom/core/error.h"
#include "loom/util/cli.h"

namespace loom {

namespace {

// The value of `flag` in argv (either `--flag value` or `--flag=value`), or "".
std::string value_of(int argc, char** argv, const char* flag) {
  const size_t n = std::strlen(flag);
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], flag) && i + 1 < argc) return argv[i + 1];
    if (!std::strncmp(argv[i], flag, n) && argv[i][n] == '=') return argv[i] + n + 1;
  }
  return "";
}

}  // namespace

bool wants_coca(int argc, char** argv) {
  const std::string model = value_of(argc, argv, "--model");
  const std::string preset = value_of(argc, argv, "--model-preset");
  return model == "coca" || model == "CoCa-B-16" || preset == "coca-b16";
}

void CocaArgs::register_flags(ArgParser& p) {
  p.add_string("--model", &model, "coca (EVA-CLIP's CoCa: EVA-02 ViT, CLIP text tower, multimodal decoder)");
  p.add_string("--model-preset", &model_preset, "coca-b16: reference log 000's CoCa-B/16 (the default shape)");
  EvaVisionConfig& v = shape.vision;
  p.add_int("--image-size", &v.image_size, "image side in pixels (default 224)");
  p.add_int("--patch-size", &v.patch_size, "ViT patch side (default 16)");
  p.add_int("--vision-width", &v.width, "ViT width (default 768)");
  p.add_int("--vision-layers", &v.layers, "ViT blocks (default 12)");
  p.add_int("--vision-heads", &v.heads, "ViT attention heads (default 12)");
  p.add_int("--vision-mlp-hidden", &v.mlp_hidden, "ViT SwiGLU hidden size (default 2048)");
  p.add_int("--rope-pt-grid", &v.rope_pt_grid,
            "EVA's pretraining grid for the 2D RoPE position scaling (default: 16 for --model-preset coca-b16, "
            "EVA02-B's psz14to16; otherwise the grid itself, i.e. no scaling)");
  ClipTextConfig& t = shape.text;
  p.add_int("--text-width", &t.width, "text tower and decoder width (default 512)");
  p.add_int("--text-layers", &t.layers, "text tower blocks (default 12)");
  p.add_int("--text-heads", &t.heads, "text tower and decoder heads (default 8)");
  p.add_int("--text-mlp-hidden", &t.mlp_hidden, "text tower and decoder MLP size (default 2048)");
  p.add_int("--text-context-length", &t.context_length, "caption tokens with start and end (default 77)");
  p.add_int("--text-vocab-size", &t.vocab_size, "text vocabulary (default 49408: CLIP's BPE)");
  p.add_int("--decoder-layers", &shape.decoder.layers, "multimodal decoder layers (default 12)");
  p.add_int("--pooler-queries", &shape.pooler.queries, "attentional pooler queries: the decoder's image tokens (default 256)");
  p.add_int("--pooler-heads", &shape.pooler.heads, "attentional pooler heads (default 8)");
  p.add_int("--embed-dim", &shape.embed_dim, "contrastive embedding width = decoder width (default 512)");
  p.add_float("--coca-contrastive-loss-weight", &coca_contrastive_loss_weight, "weight of the CLIP loss (default 1)");
  p.add_float("--coca-caption-loss-weight", &coca_caption_loss_weight, "weight of the caption loss (default 2)");

  p.add_int("--batch-size", &batch_size, "images per rank per step (EVA-CLIP's; global batch = batch x ranks)");
  p.add_int("--epochs", &epochs, "passes over the training index (default 1)");
  p.add_int("--max-steps", &max_steps, "stop after this many steps (default 0: the epochs decide)");
  p.add_int("--warmup", &warmup, "linear warm-up steps of EVA-CLIP's warmup-cosine schedule");
  p.add_float("--lr", &lr, "base learning rate (towers: their own flags)");
  p.add_float("--weight-decay", &wd, "weight decay (default 0.05; EVA-CLIP's --wd)");
  group_flags.register_flags(p);
  p.add_float("--beta1", &beta1, "Adam/LAMB beta1");
  p.add_float("--beta2", &beta2, "Adam/LAMB beta2");
  p.add_float("--eps", &eps, "Adam/LAMB epsilon");
  p.add_float("--grad-clip-norm", &grad_clip_norm, "clip the global gradient norm to this (0: no clipping)");
  p.add_choice("--optimizer", &optimizer, {"adamw", "lamb"}, "optimizer (default adamw)");
  p.add_int("--seed", &seed, "seed of initialisation, data order and augmentation");
  p.add_choice("--precision", &precision, {"fp32", "amp", "fp16", "bf16"},
               "fp32; fp16 / amp (fp16 weights and activations with fp32 main weights and dynamic loss scaling); bf16");
  p.add_flag("--grad-checkpointing", &grad_checkpointing, "recompute each block's activations in the backward");
  p.add_no_flag("--no-local-loss", &local_loss, "contrastive loss over the whole gathered batch on every rank", "local_loss");
  p.add_no_flag("--no-gather-with-grad", &gather_with_grad, "gathered features carry no gradient", "gather_with_grad");
  p.add_string("--train-data", &train_data, "image-text index: JSON lines {\"image\": path, \"caption\": text}, a JSON array, or a CSV");
  p.add_string("--val-data", &val_data, "held-out index for retrieval evaluation");
  data.register_flags(p);
  p.add_choice("--tokenizer-type", &tokenizer_type, {"CLIPTokenizer", "GPT2BPETokenizer"},
               "caption tokenizer (default CLIPTokenizer: open_clip's SimpleTokenizer)");
  p.add_string("--tokenizer-model", &tokenizer_model, "CLIPTokenizer: a bpe_simple_vocab_16e6.txt.gz-format file");
  p.add_string("--vocab-file", &vocab_file, "GPT2BPETokenizer: vocab.json");
  p.add_string("--merge-file", &merge_file, "GPT2BPETokenizer: merges.txt");

  p.add_int("--log-every-n-steps", &log_every_n_steps, "the Global Steps line every N steps (default 100)");
  p.add_int("--val-frequency", &val_frequency, "retrieval evaluation every N epochs (default 1)");
  zeroshot.register_flags(p);
  p.add_int("--save-frequency", &save_frequency, "checkpoint every N epochs (default 1)");
  p.add_string("--logs", &logs, "where runs go: LOGS/NAME/{out.log,checkpoints,tensorboard} (default ./logs/)");
  p.add_string("--name", &name, "the run's name (default: EVA-CLIP's date-model-lr-batch name)");
  p.add_choice("--report-to", &report_to, {"", "tensorboard"},
               "tensorboard: EVA-CLIP's train/* scalars at each Global Steps line, in LOGS/NAME/tensorboard");
  p.add_string("--resume", &resume, "a checkpoint directory, or 'latest' (the newest epoch_N of this run)");
  p.add_flag("--enable-deepspeed", &enable_deepspeed, "DeepSpeed engine semantics (ZeRO by --zero-stage, its log lines)");
  p.add_int("--zero-stage", &zero_stage, "ZeRO stage 0-2 (with --enable-deepspeed)");
  p.add_string("--deepspeed-config", &deepspeed_config, "a DeepSpeed JSON config (fp16, optimizer, zero_optimization, ...)");
  p.add_alias("--deepspeed_config", "--deepspeed-config");
}

void CocaArgs::validate(int world_size) {
  if (model != "coca" && model != "CoCa-B-16") fail("--model " + model + " is not an image-text model");
  if (!model_preset.empty() && model_preset != "coca-b16")
    fail("unknown --model-preset '" + model_preset + "' for --model coca (one of: coca-b16)");
  // The decoder reads the text tower's tokens: it shares the text tower's width, heads, MLP and vocabulary.
  shape.decoder.width = shape.text.width;
  shape.decoder.heads = shape.text.heads;
  shape.decoder.mlp_hidden = shape.text.mlp_hidden;
  shape.decoder.vocab_size = shape.text.vocab_size;
  shape.contrastive_loss_weight = float(coca_contrastive_loss_weight);
  shape.caption_loss_weight = float(coca_caption_loss_weight);
  validate_coca_config(shape);
  // After the shape's checks: the grid divides by --patch-size.
  if (shape.vision.rope_pt_grid <= 0) shape.vision.rope_pt_grid = model_preset == "coca-b16" ? 16 : shape.vision.grid();
  group_flags.validate();
  if (batch_size <= 0) fail("--batch-size must be positive (got " + std::to_string(batch_size) + ")");
  if (epochs <= 0) fail("--epochs must be positive");
  if (max_steps < 0 || warmup < 0) fail("--max-steps and --warmup must not be negative");
  if (!data.image_text()) fail("--model coca reads an image-caption index: --dataset-type json or csv");
  if (log_every_n_steps <= 0) fail("--log-every-n-steps must be positive");
  zeroshot.validate(val_data);
  if (zero_stage < 0 || zero_stage > 2) fail("--zero-stage " + std::to_string(zero_stage) + " is not 0, 1 or 2");
  if (world_size <= 0) fail("no processes");
}

}  // namespace loom
