#pragma once
// Runs one rank's share of a pipeline-parallel iteration: the forward and backward passes of its model
// chunks in the order of a schedule (loom/parallel/pipeline_schedule.h), receiving activations from the
// previous stage and gradients from the next, sending them on with non-blocking sends. Every message
// carries a tag naming its micro-batch and chunk. The dynamic schedule (loom/parallel/dynamic_schedule.h)
// instead posts its receives ahead and runs whatever has arrived (pipeline_runner_dynamic.cpp). The
// zero-bubble schedule runs each backward as B (input gradient, sent upstream at once) and, later, W
// (weight gradients, pipeline_runner_zero_bubble.cpp) on chunks built with StageSpec::defer_weight_grads.
// Optionally records a Chrome trace of every pass and transfer, and measures each stage's idle time.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/dist/communicator.h"
#include "loom/models/decoder_model.h"
#include "loom/parallel/dynamic_schedule.h"
#include "loom/parallel/pipeline_schedule.h"
#include "loom/train/batch.h"
#include "loom/train/pipeline_delay.h"
#include "loom/train/timers.h"

namespace loom {

struct PipelineLayout {
  std::shared_ptr<dist::Communicator> pp;  // the pipeline group (rank = stage)
  int rank = 0, size = 1;
  int virtual_size = 1;                   // model chunks per rank
  PipelineSchedule schedule = PipelineSchedule::OneFOneB;
  int max_in_flight = 0;  // dynamic: micro-batches in flight on this stage (0: what 1F1B / interleaved hold)
};

class PipelineRunner {
 public:
  // chunks[c] is this rank's model chunk c; every chunk must have slots >= slots_needed.
  PipelineRunner(std::vector<DecoderModel*> chunks, PipelineLayout layout, int micro_batch, int seq, int num_micro,
                 Timers& timers, PipelineDelay delay = PipelineDelay::from_environment());

  // Runs the schedule. load(m, buffer) fills micro-batch m's samples; rng(m) its dropout stream.
  // Returns the sum of micro-batch losses (last stage only; 0 elsewhere). A training run may have fewer
  // micro-batches than the constructor's (a batch-size ramp-up): `num_micro` (-1: the constructor's), one
  // of the counts given to set_micro_batch_counts. Evaluation always runs the constructor's count.
  double run(bool training, const std::function<void(int, BatchBuffer&)>& load,
             const std::function<uint64_t(int)>& rng, float loss_grad_scale, int num_micro = -1);
  // The micro-batch counts training iterations will run (each at most the constructor's): their schedules
  // are built here, so run() allocates nothing.
  void set_micro_batch_counts(const std::vector<int>& counts);

  // Chrome trace events recorded so far on this rank (JSON objects without brackets), and whether to record.
  void set_tracing(bool on) { tracing_ = on; }
  const std::vector<std::string>& trace_events() const { return events_; }
  static int slots_needed(const PipelineLayout& layout, int num_micro, int chunk);
  // Whether the schedule runs the weight gradients apart (its chunks need StageSpec::defer_weight_grads).
  static bool splits_backward(const PipelineLayout& layout) { return layout.schedule == PipelineSchedule::ZeroBubble; }
  // The dynamic schedule's cap on micro-batches in flight on this stage.
  static int in_flight_cap(const PipelineLayout& layout, int num_micro);
  // Collective over the pipeline group: stage 0 writes every stage's events as one Chrome trace
  // (chrome://tracing, Perfetto): one row (pid) per stage.
  void write_trace(const std::string& path) const;

  // Measured over the training iterations so far: the most micro-batches in flight on this stage and the
  // most live activations of chunk c (slots in use) at once.
  int peak_in_flight() const { return peak_in_flight_; }
  int peak_live(int chunk) const { return peak_live_[size_t(chunk)]; }
  // Collective over the pipeline group: every stage's fraction of the training steps (after the first) not
  // spent computing (injected delays count as compute: they model a slow device). The steps' time is the
  // longest stage's schedule span: a stage done early waits for the slowest at the optimizer step, and that
  // wait is idle too (1F1B's last stage, done while the first runs its last backward).
  std::vector<double> idle_fractions() const;
  // Training iterations whose passes ran in another order than the fixed schedule of the same shape's
  // (the dynamic schedule adapting to what arrived).
  int reordered_iterations() const { return reordered_; }

 private:
  struct Iteration;  // one run()'s arguments and per-micro-batch state
  bool is_first(int chunk) const { return l_.rank == 0 && chunk == 0; }
  bool is_last(int chunk) const { return l_.rank == l_.size - 1 && chunk == l_.virtual_size - 1; }
  int tag(int micro, int chunk, int kind) const { return (micro * l_.virtual_size + chunk) * 2 + kind; }
  int slot(const PipeOp& op) const { return op.micro % chunks_[size_t(op.chunk)]->slots(); }
  size_t stage_floats(int chunk) const;
  void trace(const std::string& name, double t0_us, double t1_us);
  double now_us() const;
  // One pass. With `posted`, its input (activation or gradient) came through the posted receive.
  void forward_pass(const PipeOp& op, Iteration& it, bool posted);
  void backward_pass(const PipeOp& op, Iteration& it, bool posted);  // B only under zero-bubble
  void weight_pass(const PipeOp& op, Iteration& it);                  // zero-bubble's W
  // Pass `kind` (F, B or W) of op, begun at t0, has computed: the injected device delay, its busy time and
  // its trace event.
  void end_pass(char kind, const PipeOp& op, double t0, Iteration& it);
  void run_dynamic(Iteration& it);
  void post_activation_recv(int micro, int chunk);
  void post_gradient_recv(int micro, int chunk);
  bool ready(const PipeOp& op);  // its input has arrived and its slot's last send is done (polls)
  // LOOM_PIPELINE_DELAY's slow link (link=1): a received message counts as arrived only its delay after
  // its receive completed. The blocking receive sleeps that delay; the posted one is not ready until then
  // (`at`: when, set at the first test that finds it complete; < 0 before).
  void wait_for_late_message(int micro, int chunk, int kind);
  bool arrived(dist::Request& recv, double& at, int micro, int chunk, int kind);
  PipeOp agree(const PipeOp& op) const;  // tensor-parallel rank 0's choice, on every rank of the stage

  std::vector<DecoderModel*> chunks_;
  PipelineLayout l_;
  int micro_batch_, seq_, num_micro_;
  Timers& timers_;
  PipelineDelay delay_;
  std::vector<BatchBuffer> batches_;            // [micro]
  std::vector<StepContext> ctx_;                // [micro x chunk]
  std::vector<char> loaded_;                    // [micro]
  std::vector<double> loss_sum_, mask_sum_;     // [micro]
  std::vector<std::vector<Tensor>> grad_in_;    // [chunk][slot] received output gradients
  std::vector<std::vector<Tensor>> grad_out_;   // [chunk][slot] input gradients being sent
  std::vector<std::vector<dist::Request>> act_sends_, grad_sends_;  // [chunk][slot]
  std::vector<std::vector<dist::Request>> act_recvs_, grad_recvs_;  // [chunk][slot] (dynamic)
  std::vector<std::vector<double>> act_arrive_us_, grad_arrive_us_;  // [chunk][slot] (dynamic, slow link)
  std::unique_ptr<DynamicSchedule> dynamic_;
  int peak_in_flight_ = 0, in_flight_ = 0;
  std::vector<int> live_, peak_live_;  // [chunk]
  void prepare_count(int num_micro);
  std::vector<std::vector<PipeOp>> fixed_ops_;  // [micro-batch count]: the fixed schedule's order (or empty)
  std::vector<int> in_flight_caps_;             // [micro-batch count]: the dynamic schedule's cap
  std::vector<PipeOp> executed_;                // this iteration's order
  int cur_micro_ = 0;                           // micro-batches of the iteration being run
  int reordered_ = 0;
  int training_runs_ = 0;
  uint64_t runs_ = 0;  // every run(), forward-only too: names a message for the slow link's draws
  double busy_us_ = 0, span_us_ = 0;  // training iterations after the first
  bool tracing_ = false;
  std::vector<std::string> events_;
  double epoch_us_;
};

}  // namespace loom
