#pragma once
// EVA-CLIP's evaluation log lines (training/train.py evaluate()), byte for byte:
//   Eval Epoch: {epoch} {k1}: {round(v1, 4):.4f}\t{k2}: ...
// for the metrics dict in insertion order, and the progress line every 100 validation batches
//   Eval Epoch: {epoch} [{num_samples} / {samples_per_val}]\tLoss: {loss:.6f}\t
//
// round(v, 4) depends on v's Python type, so each metric carries it: a Python float or int rounds
// correctly (the decimal nearest to the exact binary value, ties to even), which is what printf's %.4f
// does; a numpy float64 (the retrieval metrics, from numpy's mean/median/floor) rounds as numpy does,
// rint(v * 10^4) / 10^4, which can differ in the last digit when v * 10^4 lands on a half after rounding.
//
// The dict EVA-CLIP prints is built by zero_shot_eval() then updated with the validation metrics:
//   {"epoch", "imagenet-zeroshot-val-top1", "imagenet-zeroshot-val-top5"}  (zero-shot, when it runs)
//   then image_to_text_{mean_rank, median_rank, R@1, R@5, R@10}, text_to_image_..., "val_loss",
//   "epoch", "num_samples"  (a key already present keeps its place: set_metric()).
#include <string>
#include <vector>

namespace loom::eval {

enum class MetricKind { PyFloat, PyInt, NumpyFloat64 };

struct EvalMetric {
  std::string name;
  double value = 0;
  MetricKind kind = MetricKind::PyFloat;
};

// dict[name] = value: replaces the value of an existing key in place, else appends.
void set_metric(std::vector<EvalMetric>& metrics, const std::string& name, double value, MetricKind kind);

// f"{round(v, 4):.4f}" for a value of the given Python type.
std::string format_metric_value(double v, MetricKind kind);

// "Eval Epoch: {epoch} " + "\t".join(f"{k}: {round(v, 4):.4f}" ...): the message after the logging
// prefix (`YYYY-MM-DD,HH:MM:SS | INFO | `).
std::string eval_epoch_line(int epoch, const std::vector<EvalMetric>& metrics);

// json.dumps(metrics): the line EVA-CLIP appends to <checkpoint_path>/results.jsonl (without the newline).
// Floats as Python's repr (shortest round trip; exponent form below 1e-4 and from 1e16: 1e-05, 1e+16),
// ints as integers, NaN / Infinity / -Infinity as json.dumps writes them.
std::string results_json_line(const std::vector<EvalMetric>& metrics);

// Python's repr of a float (float.__repr__).
std::string python_float_repr(double v);

// f"Eval Epoch: {epoch} [{num_samples} / {samples_per_val}]\t" f"Loss: {loss:.6f}\t"
std::string eval_progress_line(int epoch, long num_samples, long samples_per_val, double loss);

}  // namespace loom::eval
