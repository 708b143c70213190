// The dynamic schedule's loop (loom/parallel/dynamic_schedule.h decides, this file communicates): every
// receive the stage expects is posted as soon as its slot is free, and each step runs the first backward,
// then the first forward, whose input has arrived. Tensor-parallel rank 0 of the stage chooses and
// broadcasts its choice, so the ranks of a stage run the same passes (their collectives must pair up).
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <chrono>

#include "loom/train/pipeline_iteration.h"
#include "loom/train/pipeline_runner.h"

namespace loom {

void PipelineRunner::post_activation_recv(int micro, int chunk) {
  if (is_first(chunk) || micro >= cur_micro_) return;
  const int P = l_.size, prev = (l_.rank + P - 1) % P, s = micro % chunks_[size_t(chunk)]->slots();
  act_arrive_us_[size_t(chunk)][size_t(s)] = -1;
  act_recvs_[size_t(chunk)][size_t(s)] = l_.pp->irecv(chunks_[size_t(chunk)]->stage_input(s).f32(), stage_floats(chunk),
                                                      dist::DType::F32, prev, tag(micro, chunk, 0));
}

void PipelineRunner::post_gradient_recv(int micro, int chunk) {
  if (is_last(chunk)) return;
  const int next = (l_.rank + 1) % l_.size, s = micro % chunks_[size_t(chunk)]->slots();
  Tensor& g = grad_in_[size_t(chunk)][size_t(s)];
  grad_arrive_us_[size_t(chunk)][size_t(s)] = -1;
  grad_recvs_[size_t(chunk)][size_t(s)] = l_.pp->irecv(g.f32(), size_t(g.numel()), dist::DType::F32, next, tag(micro, chunk, 1));
}

bool PipelineRunner::arrived(dist::Request& recv, double& at, int micro, int chunk, int kind) {
  if (!recv.test()) return false;
  if (!delay_.link()) return true;
  const double now = now_us();
  if (at < 0) at = now + delay_.message_delay_us(l_.rank, runs_, micro, chunk, kind);
  return now >= at;
}

bool PipelineRunner::ready(const PipeOp& op) {
  const size_t c = size_t(op.chunk), s = size_t(slot(op));
  if (op.forward)
    return act_sends_[c][s].test() &&
           (is_first(op.chunk) || arrived(act_recvs_[c][s], act_arrive_us_[c][s], op.micro, op.chunk, 0));
  return grad_sends_[c][s].test() &&
         (is_last(op.chunk) || arrived(grad_recvs_[c][s], grad_arrive_us_[c][s], op.micro, op.chunk, 1));
}

PipeOp PipelineRunner::agree(const PipeOp& op) const {
  const TensorParallel& tp = chunks_.front()->tensor_parallel();
  if (!tp.active()) return op;
  int32_t code[3] = {op.forward ? 1 : 0, op.micro, op.chunk};
  tp.comm->broadcast(code, 3, 0);
  return {code[0] != 0, code[1], code[2]};
}

void PipelineRunner::run_dynamic(Iteration& it) {
  DynamicSchedule& d = *dynamic_;
  d.reset(cur_micro_, in_flight_caps_[size_t(cur_micro_)]);
  for (int c = 0; c < l_.virtual_size; c++)
    for (int m = 0; m < chunks_[size_t(c)]->slots(); m++) post_activation_recv(m, c);
  const bool decides = chunks_.front()->tensor_parallel().rank == 0;
  auto poll = [this](const PipeOp& op) { return ready(op); };
  bool prefer_forward = false;  // a step is one backward, then one forward
  while (!d.finished()) {
    PipeOp op{true, -1, 0};
    if (decides) {
      // Poll as the communicator's waits do: spin, then yield, then sleep with a growing back-off, so
      // an idle stage leaves its core to the others. Past the deadline, block on the first candidate
      // (whose wait then reports the stuck peer).
      const auto t0 = std::chrono::steady_clock::now();
      long sleep_ns = 2000;
      for (int polls = 0;; ++polls) {
        auto pick = d.next(prefer_forward, poll);
        if (!pick) pick = d.next(!prefer_forward, poll);
        if (pick) {
          op = *pick;
          break;
        }
        if (polls < 256) continue;
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (waited < 2e-3) {
          sched_yield();
          continue;
        }
        if (waited > dist::timeout()) {
          for (int c = 0; c < l_.virtual_size && op.micro < 0; c++)
            for (bool f : {false, true})
              if (const PipeOp cand = d.candidate(f, c); cand.micro >= 0 && op.micro < 0) op = cand;
          break;  // the pass's own wait below times out with the usual message
        }
        timespec ts{0, sleep_ns};
        nanosleep(&ts, nullptr);
        sleep_ns = std::min(sleep_ns * 2, 200000L);
      }
    }
    op = agree(op);
    if (op.forward) {
      forward_pass(op, it, true);
      post_gradient_recv(op.micro, op.chunk);
    } else {
      backward_pass(op, it, true);
      post_activation_recv(op.micro + chunks_[size_t(op.chunk)]->slots(), op.chunk);
    }
    d.complete(op);
    prefer_forward = !op.forward;
  }
}

}  // namespace loom
