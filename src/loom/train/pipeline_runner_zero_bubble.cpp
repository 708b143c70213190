// The zero-bubble schedule's W pass (loom/parallel/pipeline_schedule.h orders it): the weight gradients
// of a micro-batch whose B ran earlier, from what its chunk's layers kept in the micro-batch's slot. Its
// micro-batch stays in flight, holding the slot, until this pass. Between layers it polls the sends in
// flight: a W follows the B whose input gradient it just sent, and MPI moves a large message only while
// the sender is inside the library, so without the polls the gradient would wait upstream for the
// whole W, the bubble it is meant to fill.
#include "loom/train/pipeline_iteration.h"
#include "loom/train/pipeline_runner.h"

namespace loom {

void PipelineRunner::weight_pass(const PipeOp& op, Iteration& it) {
  DecoderModel& model = *chunks_[size_t(op.chunk)];
  const StepContext& c = ctx_[size_t(op.micro) * size_t(l_.virtual_size) + size_t(op.chunk)];
  {
    TimerScope t(timers_, "backward-compute");
    const double t0 = now_us();
    model.backward_weight(c, [this](int) {
      for (auto* sends : {&grad_sends_, &act_sends_})
        for (auto& per_chunk : *sends)
          for (auto& r : per_chunk) r.test();
    });
    end_pass('W', op, t0, it);
  }
  executed_.push_back(op);
  if (op.chunk == 0) in_flight_--;
  live_[size_t(op.chunk)]--;
}

}  // namespace loom
