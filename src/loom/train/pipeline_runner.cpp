#include "loom/train/pipeline_runner.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "loom/ckpt/safetensors.h"
#include "loom/train/pipeline_iteration.h"

namespace loom {

int PipelineRunner::in_flight_cap(const PipelineLayout& l, int num_micro) {
  if (l.max_in_flight > 0) return std::min(l.max_in_flight, num_micro);
  return std::max(1, max_in_flight(pipeline_ops(l.schedule, l.size, l.rank, num_micro, l.virtual_size), 0));
}

int PipelineRunner::slots_needed(const PipelineLayout& l, int num_micro, int chunk) {
  // The dynamic schedule with an explicit cap may hold that many activations in every chunk; by default
  // it holds what the fixed schedule of its shape holds (pipeline_ops gives that schedule for it).
  if (l.schedule == PipelineSchedule::Dynamic && l.max_in_flight > 0) return in_flight_cap(l, num_micro);
  return std::max(1, max_in_flight(pipeline_ops(l.schedule, l.size, l.rank, num_micro, l.virtual_size), chunk));
}

PipelineRunner::PipelineRunner(std::vector<DecoderModel*> chunks, PipelineLayout layout, int micro_batch, int seq,
                               int num_micro, Timers& timers, PipelineDelay delay)
    : chunks_(std::move(chunks)), l_(std::move(layout)), micro_batch_(micro_batch), seq_(seq), num_micro_(num_micro),
      timers_(timers), delay_(delay) {
  for (int m = 0; m < num_micro; m++) batches_.emplace_back(micro_batch, seq);
  const int V = int(chunks_.size());
  ctx_.resize(size_t(num_micro) * size_t(V));
  loaded_.resize(size_t(num_micro));
  loss_sum_.resize(size_t(num_micro));
  mask_sum_.resize(size_t(num_micro));
  for (auto* v : {&grad_in_, &grad_out_}) v->resize(size_t(V));
  for (auto* v : {&act_sends_, &grad_sends_, &act_recvs_, &grad_recvs_}) v->resize(size_t(V));
  live_.assign(size_t(V), 0);
  peak_live_.assign(size_t(V), 0);
  std::vector<int> slots;
  for (int c = 0; c < V; c++) {
    DecoderModel& model = *chunks_[size_t(c)];
    const int64_t rows = model.tensor_parallel().local_rows(micro_batch * seq), h = model.config().hidden_size;
    for (int s = 0; s < model.slots(); s++) {
      grad_in_[size_t(c)].push_back(Tensor({rows, h}));
      grad_out_[size_t(c)].push_back(Tensor({rows, h}));
    }
    for (auto* v : {&act_sends_, &grad_sends_, &act_recvs_, &grad_recvs_}) (*v)[size_t(c)].resize(size_t(model.slots()));
    act_arrive_us_.emplace_back(size_t(model.slots()), -1.0);
    grad_arrive_us_.emplace_back(size_t(model.slots()), -1.0);
    slots.push_back(model.slots());
  }
  if (l_.schedule == PipelineSchedule::Dynamic)
    dynamic_ = std::make_unique<DynamicSchedule>(num_micro, slots, in_flight_cap(l_, num_micro));
  fixed_ops_.resize(size_t(num_micro) + 1);
  in_flight_caps_.assign(size_t(num_micro) + 1, 0);
  prepare_count(num_micro);
  executed_.reserve(fixed_ops_[size_t(num_micro)].size());
  cur_micro_ = num_micro;
  epoch_us_ = now_us();
}

void PipelineRunner::prepare_count(int num_micro) {
  if (num_micro < 1 || num_micro > num_micro_)
    throw std::logic_error("PipelineRunner: " + std::to_string(num_micro) + " micro-batches, outside 1.." +
                           std::to_string(num_micro_));
  if (!fixed_ops_[size_t(num_micro)].empty()) return;
  fixed_ops_[size_t(num_micro)] = pipeline_ops(l_.schedule, l_.size, l_.rank, num_micro, l_.virtual_size);
  in_flight_caps_[size_t(num_micro)] = in_flight_cap(l_, num_micro);
}

void PipelineRunner::set_micro_batch_counts(const std::vector<int>& counts) {
  for (int m : counts) prepare_count(m);
}

void PipelineRunner::end_pass(char kind, const PipeOp& op, double t0, Iteration& it) {
  delay_.after_pass(l_.rank, now_us() - t0);
  const double t1 = now_us();  // the injected delay counts as compute, as long as it really slept
  it.busy_us += t1 - t0;
  if (tracing_) trace(kind + std::to_string(op.micro) + "." + std::to_string(op.chunk), t0, t1);  // no string otherwise
}

void PipelineRunner::wait_for_late_message(int micro, int chunk, int kind) {
  const double us = delay_.message_delay_us(l_.rank, runs_, micro, chunk, kind);
  if (us > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::micro>(us));
}

double PipelineRunner::now_us() const {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

size_t PipelineRunner::stage_floats(int chunk) const {
  const DecoderModel& model = *chunks_[size_t(chunk)];
  return size_t(model.tensor_parallel().local_rows(micro_batch_ * seq_)) * size_t(model.config().hidden_size);
}

void PipelineRunner::trace(const std::string& name, double t0, double t1) {
  if (!tracing_) return;
  char buf[256];
  std::snprintf(buf, sizeof buf, R"({"name": "%s", "ph": "X", "pid": %d, "tid": 0, "ts": %.1f, "dur": %.1f})",
                name.c_str(), l_.rank, t0 - epoch_us_, t1 - t0);
  events_.push_back(buf);
}

void PipelineRunner::forward_pass(const PipeOp& op, Iteration& it, bool posted) {
  const int P = l_.size, next = (l_.rank + 1) % P, prev = (l_.rank + P - 1) % P;
  DecoderModel& model = *chunks_[size_t(op.chunk)];
  const int s = slot(op);
  StepContext& c = ctx_[size_t(op.micro) * size_t(l_.virtual_size) + size_t(op.chunk)];
  if (!loaded_[size_t(op.micro)]) {
    TimerScope t(timers_, "batch-generator");
    it.load(op.micro, batches_[size_t(op.micro)]);
    loaded_[size_t(op.micro)] = 1;
  }
  c = StepContext{};
  c.mb = &batches_[size_t(op.micro)].micro_batch();
  c.slot = s;
  c.training = it.training;
  c.rng_key = it.rng(op.micro);
  c.loss_grad_scale = it.loss_grad_scale;
  c.loss_sum = &loss_sum_[size_t(op.micro)];
  c.mask_sum = &mask_sum_[size_t(op.micro)];
  dist::Request& out_send = act_sends_[size_t(op.chunk)][size_t(s)];
  if (!is_first(op.chunk)) {
    TimerScope t(timers_, "forward-recv");
    const double t0 = now_us();
    out_send.wait();  // the slot's previous activations may still be on their way out
    if (posted) {
      act_recvs_[size_t(op.chunk)][size_t(s)].wait();
    } else {
      l_.pp->recv(model.stage_input(s).f32(), stage_floats(op.chunk), prev, tag(op.micro, op.chunk, 0));
      wait_for_late_message(op.micro, op.chunk, 0);
      trace("recv F" + std::to_string(op.micro) + "." + std::to_string(op.chunk), t0, now_us());
    }
  } else {
    out_send.wait();
  }
  {
    TimerScope t(timers_, "forward-compute");
    const double t0 = now_us();
    model.forward(c);
    end_pass('F', op, t0, it);
  }
  if (!is_last(op.chunk)) {
    TimerScope t(timers_, "forward-send");
    const Tensor& out = model.stage_output(s);
    const int dst_chunk = l_.rank == P - 1 ? op.chunk + 1 : op.chunk;
    out_send = l_.pp->isend(out.f32(), size_t(out.numel()), dist::DType::F32, next, tag(op.micro, dst_chunk, 0));
  } else {
    const size_t m = size_t(op.micro);
    it.loss_total += mask_sum_[m] > 0 ? loss_sum_[m] / mask_sum_[m] : 0.0;
  }
  if (it.training) executed_.push_back(op);
  if (op.chunk == 0) peak_in_flight_ = std::max(peak_in_flight_, ++in_flight_);
  int& live = live_[size_t(op.chunk)];
  peak_live_[size_t(op.chunk)] = std::max(peak_live_[size_t(op.chunk)], ++live);
}

void PipelineRunner::backward_pass(const PipeOp& op, Iteration& it, bool posted) {
  const int P = l_.size, next = (l_.rank + 1) % P, prev = (l_.rank + P - 1) % P;
  DecoderModel& model = *chunks_[size_t(op.chunk)];
  const int s = slot(op);
  const StepContext& c = ctx_[size_t(op.micro) * size_t(l_.virtual_size) + size_t(op.chunk)];
  const Tensor* dout = nullptr;
  if (!is_last(op.chunk)) {
    TimerScope t(timers_, "backward-recv");
    const double t0 = now_us();
    Tensor& g = grad_in_[size_t(op.chunk)][size_t(s)];
    if (posted) {
      grad_recvs_[size_t(op.chunk)][size_t(s)].wait();
    } else {
      l_.pp->recv(g.f32(), size_t(g.numel()), next, tag(op.micro, op.chunk, 1));
      wait_for_late_message(op.micro, op.chunk, 1);
      trace("recv B" + std::to_string(op.micro) + "." + std::to_string(op.chunk), t0, now_us());
    }
    dout = &g;
  }
  {
    TimerScope t(timers_, "backward-compute");
    const double t0 = now_us();
    if (splits_backward(l_)) model.backward_input(c, dout);
    else model.backward(c, {}, dout);
    end_pass('B', op, t0, it);
  }
  if (!is_first(op.chunk)) {
    TimerScope t(timers_, "backward-send");
    dist::Request& pending = grad_sends_[size_t(op.chunk)][size_t(s)];
    pending.wait();
    Tensor& g = grad_out_[size_t(op.chunk)][size_t(s)];
    std::memcpy(g.f32(), model.stage_input_grad().f32(), sizeof(float) * size_t(g.numel()));
    const int dst_chunk = l_.rank == 0 ? op.chunk - 1 : op.chunk;
    pending = l_.pp->isend(g.f32(), size_t(g.numel()), dist::DType::F32, prev, tag(op.micro, dst_chunk, 1));
  }
  executed_.push_back(op);
  if (splits_backward(l_)) return;  // in flight until its W
  if (op.chunk == 0) in_flight_--;
  live_[size_t(op.chunk)]--;
}

double PipelineRunner::run(bool training, const std::function<void(int, BatchBuffer&)>& load,
                           const std::function<uint64_t(int)>& rng, float loss_grad_scale, int num_micro) {
  cur_micro_ = !training || num_micro < 0 ? num_micro_ : num_micro;
  if (training && (cur_micro_ < 1 || cur_micro_ > num_micro_ || fixed_ops_[size_t(cur_micro_)].empty()))
    throw std::logic_error("PipelineRunner::run: " + std::to_string(cur_micro_) +
                           " micro-batches were not prepared (set_micro_batch_counts)");
  const std::vector<PipeOp>& fixed = fixed_ops_[size_t(cur_micro_)];
  Iteration it{training, load, rng, loss_grad_scale};
  runs_++;
  executed_.clear();
  std::fill(loaded_.begin(), loaded_.end(), 0);
  std::fill(loss_sum_.begin(), loss_sum_.end(), 0.0);
  std::fill(mask_sum_.begin(), mask_sum_.end(), 0.0);
  TimerScope whole(timers_, "forward-backward");
  const double run_start = now_us();
  auto run_ops = [&](const std::vector<PipeOp>& ops) {
    for (const PipeOp& op : ops) {
      if (op.forward) forward_pass(op, it, false);
      else if (op.weight) weight_pass(op, it);
      else backward_pass(op, it, false);
    }
  };
  if (training && dynamic_) run_dynamic(it);
  else if (training) run_ops(fixed);
  else run_ops(pipeline_forward_ops(l_.size, num_micro_, l_.virtual_size));
  for (auto* sends : {&act_sends_, &grad_sends_})
    for (auto& per_chunk : *sends)
      for (auto& r : per_chunk) r.wait();
  if (!training) {  // forward-only: nothing is held after the iteration
    std::fill(live_.begin(), live_.end(), 0);
    in_flight_ = 0;
    return it.loss_total;
  }
  const double span = now_us() - run_start;
  reordered_ += executed_ != fixed;
  if (training_runs_++ > 0) {  // the first iteration warms caches and allocators: not the steady state
    busy_us_ += it.busy_us;
    span_us_ += span;
  }
  if (tracing_) {  // the span of the whole schedule on a second row, for bubble measurements
    char buf[160];
    std::snprintf(buf, sizeof buf, R"({"name": "iteration", "ph": "X", "pid": %d, "tid": 1, "ts": %.1f, "dur": %.1f})",
                  l_.rank, run_start - epoch_us_, span);
    events_.push_back(buf);
  }
  return it.loss_total;
}

std::vector<double> PipelineRunner::idle_fractions() const {
  const double mine[2] = {busy_us_, span_us_};
  std::vector<double> all(2 * size_t(l_.size));
  l_.pp->all_gather(mine, all.data(), 2);
  double step = 0;
  for (int s = 0; s < l_.size; s++) step = std::max(step, all[2 * size_t(s) + 1]);
  std::vector<double> idle(size_t(l_.size), 0.0);
  if (step > 0)
    for (int s = 0; s < l_.size; s++) idle[size_t(s)] = 1.0 - all[2 * size_t(s)] / step;
  return idle;
}

void PipelineRunner::write_trace(const std::string& path) const {
  std::string mine;
  for (const auto& e : events_) mine += (mine.empty() ? "" : ",\n") + e;
  const auto parts = dist::gather_strings(*l_.pp, mine, 0);
  if (l_.rank != 0) return;
  std::string all;
  for (const auto& part : parts)
    if (!part.empty()) all += (all.empty() ? "" : ",\n") + part;
  write_file_atomic(path, "{\"traceEvents\": [\n" + all + "\n], \"displayTimeUnit\": \"ms\"}\n");
}

}  // namespace loom
