#pragma once
// CoCa checkpoints as EVA-CLIP tags them (DeepSpeed save_checkpoint(tag="epoch_N"), client state
// {epoch}): CHECKPOINTS/epoch_N/ holding
//   model.safetensors      fp32 weights under open_clip's names (the fp32 main weights of a fp16/bf16 run)
//   optimizer.safetensors  exp_avg.<name>, exp_avg_sq.<name> (full tensors, whatever the ZeRO layout)
//   state.json             epoch, step, optimizer steps, loss-scaler state, the loader's position, the
//                          model shape and each file's CRC-32 and size
// plus CHECKPOINTS/latest (the newest tag). Written by rank 0 into epoch_N.tmp and renamed when complete,
// so a killed save never leaves a half checkpoint; loading checks the shape, every tensor's name and size,
// and the CRCs before touching the model, and resumes bit-exactly in any data-parallel layout.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "loom/optim/loss_scaler.h"

namespace loom {

class AdamW;
class CocaModel;
namespace dist {
class Communicator;
}

struct CocaTrainState {
  int64_t epoch = 0;           // epochs completed (the next one to run)
  int64_t step = 0;            // optimizer steps taken (skipped overflow steps included, as EVA-CLIP counts)
  int64_t batch_in_epoch = 0;  // batches of epoch `epoch` already taken (0: at its start)
  int64_t optimizer_steps = 0; // AdamW/LAMB's own count (bias correction)
  bool has_scaler = false;
  GradScalerState scaler;
  nlohmann::json loader;       // the image-text loader's position
};

// Collective over `world` (gathers sharded weights and moments); rank 0 writes. `tag`: "epoch_N".
void save_coca_checkpoint(const std::string& checkpoints_dir, const std::string& tag, CocaModel& model,
                          AdamW& optimizer, const CocaTrainState& state, dist::Communicator& world);

// `path`: a tag directory, or the checkpoints directory (then its `latest`). Every rank reads it. Throws
// UserError naming the file and what does not match (shape, missing tensor, size, CRC).
CocaTrainState load_coca_checkpoint(const std::string& path, CocaModel& model, AdamW* optimizer);

// The tag directory `path` resolves to (for messages), or "" when there is none.
std::string resolve_coca_checkpoint(const std::string& path);

}  // namespace loom
