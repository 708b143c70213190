#include "loom/train/pipeline_runner.h"

#include <chrono>
#include <cstring>

#include "loom/ckpt/safetensors.h"

namespace loom {

namespace {
enum { kActivation = 0, kGradient = 1 };
}

int PipelineRunner::slots_needed(const PipelineLayout& l, int num_micro, int chunk) {
  return std::max(1, max_in_flight(pipeline_ops(l.schedule, l.size, l.rank, num_micro, l.virtual_size), chunk));
}

PipelineRunner::PipelineRunner(std::vector<GptModel*> chunks, PipelineLayout layout, int micro_batch, int seq,
                               int num_micro, Timers& timers)
    : chunks_(std::move(chunks)), l_(std::move(layout)), micro_batch_(micro_batch), seq_(seq), num_micro_(num_micro),
      timers_(timers) {
  for (int m = 0; m < num_micro; m++) batches_.emplace_back(micro_batch, seq);
  const int V = int(chunks_.size());
  grad_in_.resize(size_t(V));
  grad_out_.resize(size_t(V));
  act_sends_.resize(size_t(V));
  grad_sends_.resize(size_t(V));
  for (int c = 0; c < V; c++) {
    GptModel& model = *chunks_[size_t(c)];
    const int64_t rows = model.tensor_parallel().local_rows(micro_batch * seq), h = model.config().hidden_size;
    for (int s = 0; s < model.slots(); s++) {
      grad_in_[size_t(c)].push_back(Tensor({rows, h}));
      grad_out_[size_t(c)].push_back(Tensor({rows, h}));
    }
    act_sends_[size_t(c)].resize(size_t(model.slots()));
    grad_sends_[size_t(c)].resize(size_t(model.slots()));
  }
  epoch_us_ = now_us();
}

double PipelineRunner::now_us() const {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void PipelineRunner::trace(const std::string& name, double t0, double t1) {
  if (!tracing_) return;
  char buf[256];
  std::snprintf(buf, sizeof buf, R"({"name": "%s", "ph": "X", "pid": %d, "tid": 0, "ts": %.1f, "dur": %.1f})",
                name.c_str(), l_.rank, t0 - epoch_us_, t1 - t0);
  events_.push_back(buf);
}

double PipelineRunner::run(bool training, const std::function<void(int, BatchBuffer&)>& load,
                           const std::function<uint64_t(int)>& rng, float loss_grad_scale) {
  const int P = l_.size, V = l_.virtual_size;
  const int prev = (l_.rank + P - 1) % P, next = (l_.rank + 1) % P;
  const auto ops = training ? pipeline_ops(l_.schedule, P, l_.rank, num_micro_, V) : pipeline_forward_ops(P, num_micro_, V);
  std::vector<char> loaded(size_t(num_micro_), 0);
  std::vector<StepContext> ctx(size_t(num_micro_) * size_t(V));
  double loss_total = 0;
  std::vector<double> loss_sum(size_t(num_micro_), 0.0), mask_sum(size_t(num_micro_), 0.0);
  TimerScope whole(timers_, "forward-backward");
  const double run_start = now_us();
  for (const PipeOp& op : ops) {
    GptModel& model = *chunks_[size_t(op.chunk)];
    const int slot = op.micro % model.slots();
    const size_t n = size_t(model.tensor_parallel().local_rows(micro_batch_ * seq_)) * size_t(model.config().hidden_size);
    StepContext& c = ctx[size_t(op.micro) * size_t(V) + size_t(op.chunk)];
    if (op.forward) {
      if (!loaded[size_t(op.micro)]) {
        TimerScope t(timers_, "batch-generator");
        load(op.micro, batches_[size_t(op.micro)]);
        loaded[size_t(op.micro)] = 1;
      }
      c = StepContext{};
      c.mb = &batches_[size_t(op.micro)].micro_batch();
      c.slot = slot;
      c.training = training;
      c.rng_key = rng(op.micro);
      c.loss_grad_scale = loss_grad_scale;
      c.loss_sum = &loss_sum[size_t(op.micro)];
      c.mask_sum = &mask_sum[size_t(op.micro)];
      if (!is_first(op.chunk)) {
        TimerScope t(timers_, "forward-recv");
        const double t0 = now_us();
        // The slot's previous activations may still be on their way out.
        if (act_sends_[size_t(op.chunk)][size_t(slot)].active()) act_sends_[size_t(op.chunk)][size_t(slot)].wait();
        l_.pp->recv(model.stage_input(slot).f32(), n, prev, tag(op.micro, op.chunk, kActivation));
        trace("recv F" + std::to_string(op.micro) + "." + std::to_string(op.chunk), t0, now_us());
      } else if (act_sends_[size_t(op.chunk)][size_t(slot)].active()) {
        act_sends_[size_t(op.chunk)][size_t(slot)].wait();
      }
      {
        TimerScope t(timers_, "forward-compute");
        const double t0 = now_us();
        model.forward(c);
        trace("F" + std::to_string(op.micro) + "." + std::to_string(op.chunk), t0, now_us());
      }
      if (!is_last(op.chunk)) {
        TimerScope t(timers_, "forward-send");
        const Tensor& out = model.stage_output(slot);
        const int dst_chunk = l_.rank == P - 1 ? op.chunk + 1 : op.chunk;
        act_sends_[size_t(op.chunk)][size_t(slot)] =
            l_.pp->isend(out.f32(), size_t(out.numel()), dist::DType::F32, next, tag(op.micro, dst_chunk, kActivation));
      } else {
        loss_total += mask_sum[size_t(op.micro)] > 0 ? loss_sum[size_t(op.micro)] / mask_sum[size_t(op.micro)] : 0.0;
      }
    } else {
      const Tensor* dout = nullptr;
      if (!is_last(op.chunk)) {
        TimerScope t(timers_, "backward-recv");
        const double t0 = now_us();
        Tensor& g = grad_in_[size_t(op.chunk)][size_t(slot)];
        l_.pp->recv(g.f32(), size_t(g.numel()), next, tag(op.micro, op.chunk, kGradient));
        trace("recv B" + std::to_string(op.micro) + "." + std::to_string(op.chunk), t0, now_us());
        dout = &g;
      }
      {
        TimerScope t(timers_, "backward-compute");
        const double t0 = now_us();
        model.backward(c, {}, dout);
        trace("B" + std::to_string(op.micro) + "." + std::to_string(op.chunk), t0, now_us());
      }
      if (!is_first(op.chunk)) {
        TimerScope t(timers_, "backward-send");
        dist::Request& pending = grad_sends_[size_t(op.chunk)][size_t(slot)];
        if (pending.active()) pending.wait();
        Tensor& g = grad_out_[size_t(op.chunk)][size_t(slot)];
        std::memcpy(g.f32(), model.stage_input_grad().f32(), sizeof(float) * size_t(g.numel()));
        const int dst_chunk = l_.rank == 0 ? op.chunk - 1 : op.chunk;
        pending = l_.pp->isend(g.f32(), size_t(g.numel()), dist::DType::F32, prev, tag(op.micro, dst_chunk, kGradient));
      }
    }
  }
  for (auto& per_chunk : act_sends_)
    for (auto& r : per_chunk)
      if (r.active()) r.wait();
  for (auto& per_chunk : grad_sends_)
    for (auto& r : per_chunk)
      if (r.active()) r.wait();
  if (tracing_ && training) {  // the span of the whole schedule on a second row, for bubble measurements
    char buf[160];
    std::snprintf(buf, sizeof buf, R"({"name": "iteration", "ph": "X", "pid": %d, "tid": 1, "ts": %.1f, "dur": %.1f})",
                  l_.rank, run_start - epoch_us_, now_us() - run_start);
    events_.push_back(buf);
  }
  return loss_total;
}

}  // namespace loom

namespace loom {

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
