#pragma once
// Runs one rank's share of a pipeline-parallel iteration: the forward and backward passes of its model
// chunks in the order of a schedule (loom/parallel/pipeline_schedule.h), receiving activations from the
// previous stage and gradients from the next, sending them on with non-blocking sends. Every message
// carries a tag naming its micro-batch and chunk. Optionally records a Chrome trace of every pass and
// transfer.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/dist/communicator.h"
#include "loom/models/gpt.h"
#include "loom/parallel/pipeline_schedule.h"
#include "loom/train/batch.h"
#include "loom/train/timers.h"

namespace loom {

struct PipelineLayout {
  std::shared_ptr<dist::Communicator> pp;  // the pipeline group (rank = stage)
  int rank = 0, size = 1;
  int virtual_size = 1;                   // model chunks per rank
  PipelineSchedule schedule = PipelineSchedule::OneFOneB;
};

class PipelineRunner {
 public:
  // chunks[c] is this rank's model chunk c; every chunk must have slots >= max_in_flight of its ops.
  PipelineRunner(std::vector<GptModel*> chunks, PipelineLayout layout, int micro_batch, int seq, int num_micro,
                 Timers& timers);

  // Runs the schedule. load(m, buffer) fills micro-batch m's samples; rng(m) its dropout stream.
  // Returns the sum of micro-batch losses (last stage only; 0 elsewhere).
  double run(bool training, const std::function<void(int, BatchBuffer&)>& load,
             const std::function<uint64_t(int)>& rng, float loss_grad_scale);

  // Chrome trace events recorded so far on this rank (JSON objects without brackets), and whether to record.
  void set_tracing(bool on) { tracing_ = on; }
  const std::vector<std::string>& trace_events() const { return events_; }
  static int slots_needed(const PipelineLayout& layout, int num_micro, int chunk);
  // Collective over the pipeline group: stage 0 writes every stage's events as one Chrome trace
  // (chrome://tracing, Perfetto): one row (pid) per stage.
  void write_trace(const std::string& path) const;

 private:
  bool is_first(int chunk) const { return l_.rank == 0 && chunk == 0; }
  bool is_last(int chunk) const { return l_.rank == l_.size - 1 && chunk == l_.virtual_size - 1; }
  int tag(int micro, int chunk, int kind) const { return (micro * l_.virtual_size + chunk) * 2 + kind; }
  void trace(const std::string& name, double t0_us, double t1_us);
  double now_us() const;

  std::vector<GptModel*> chunks_;
  PipelineLayout l_;
  int micro_batch_, seq_, num_micro_;
  Timers& timers_;
  std::vector<BatchBuffer> batches_;            // [micro]
  std::vector<std::vector<Tensor>> grad_in_;    // [chunk][slot] received output gradients
  std::vector<std::vector<Tensor>> grad_out_;   // [chunk][slot] input gradients being sent
  std::vector<std::vector<dist::Request>> act_sends_, grad_sends_;  // [chunk][slot]
  bool tracing_ = false;
  std::vector<std::string> events_;
  double epoch_us_;
};

}  // namespace loom
