#pragma once
// All trainable parameters of a model live in one flat buffer, and their gradients in another of the
// same layout. Layers register named parameters, then finalize() allocates both buffers and hands out
// fp32 views. One buffer makes the optimizer a single vectorised pass, the gradient norm a single
// reduction, and data-parallel buckets plain ranges of it. With half-precision storage or ZeRO-2/3
// (ParamStorage) the stored buffers are not fp32 or not whole: the layers still see fp32 views, of a
// working buffer that holds one layer at a time (acquire/release around each forward and backward).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

namespace dist {
class Communicator;
}

// How a parameter held by this process relates to the full tensor of the model: a slice along one
// dimension (tensor parallelism), or the whole tensor. Checkpoints, initialisation and resharding work
// in terms of the full tensor, so every layout builds the same model.
struct ParamSplit {
  std::vector<int64_t> global_shape;  // empty: same as the local shape
  int dim = -1;                       // the split dimension, -1 when not split
  int64_t offset = 0;                 // start of this slice along `dim`
  // A replicated parameter whose gradient is only partial on each tensor-parallel rank (sequence
  // parallelism: LayerNorms and row-parallel biases see a slice of the tokens): summed over the group.
  bool tp_partial_grad = false;
  // A copy of another parameter held by a different pipeline stage (the output layer's word embedding on
  // the last stage): initialised, loaded and saved as that one, its gradient summed with it over the
  // embedding group, and left out of the gradient norm so it is counted once.
  std::string tied_to;
};

struct Param {
  std::string name;              // Megatron-core state-dict name, e.g. decoder.layers.0.mlp.linear_fc1.weight
  std::vector<int64_t> shape;    // local shape
  ParamSplit split;
  bool weight_decay = true;      // Megatron: no decay on biases and norm parameters
  int64_t offset = 0;            // element offset into the flat buffers
  Tensor value, grad;            // views, valid after finalize()
  // The stored weight itself when it is held whole in bf16 (--bf16 without ZeRO-3), else null: bf16 GEMMs
  // read it directly instead of rounding the fp32 view (widened from these bits) back to the same bits.
  const uint16_t* stored_bf16 = nullptr;
  // Read in the training passes only through stored_bf16 (a bf16 GEMM's weight, see ParamStore::Widen).
  bool read_as_bf16_only = false;
  int64_t numel() const { return shape_numel(shape); }
  const std::vector<int64_t>& global_shape() const { return split.global_shape.empty() ? shape : split.global_shape; }
  // Replicated on every tensor-parallel rank (counted once in norms and parameter counts).
  bool tp_replicated() const { return split.dim < 0; }
  // The name the full model knows this parameter by (checkpoints, initialisation streams).
  const std::string& canonical_name() const { return split.tied_to.empty() ? name : split.tied_to; }
};

// How the flat buffers are held: mixed precision and ZeRO.
//  - weights: the storage type of the model weights (--fp16 / --bf16: half; the optimizer keeps fp32 main
//    weights of the parameters it owns).
//  - grads: the gradient accumulation type (half, or fp32 with --accumulate-allreduce-grads-in-fp32).
//  - zero_group: the data-parallel group the optimizer state is sharded over (ZeRO stage >= 1), null for
//    none. Every parameter is then padded to a multiple of 16 x its size, and rank r owns the r-th slice of
//    each parameter (as DeepSpeed partitions parameters), so slices of the same parameter on different
//    pipeline stages or tensor-parallel ranks line up and can be reduced slice by slice.
//  - shard_grads (ZeRO-2): this rank keeps only the gradients of its slices; each layer's gradients are
//    reduce-scattered as soon as its backward ends.  shard_weights (ZeRO-3): the weights as well; each
//    layer's weights are all-gathered before its forward and backward and dropped after.
struct ParamStorage {
  DType weights = DType::F32;
  DType grads = DType::F32;
  std::shared_ptr<dist::Communicator> zero_group;
  bool shard_grads = false;
  bool shard_weights = false;
};

// A piece of one parameter: elements [begin, begin + count) of parameter `param`, at element `pos` of the
// buffer that holds it (the rank's shard buffers for slices; the flat buffers for whole parameters).
struct Segment {
  int param = 0;
  int64_t begin = 0, count = 0, pos = 0;
};

class ParamStore {
 public:
  // Before any add().
  void configure(ParamStorage storage);
  const ParamStorage& storage() const { return storage_; }
  // Every parameter's bits are in bf16 in the store (Param::stored_bf16 set for all).
  bool weights_stored_bf16() const { return storage_.weights == DType::BF16 && !storage_.shard_weights; }
  // Returns a stable index; the Param's tensors are usable after finalize() (see acquire()).
  int add(std::string name, std::vector<int64_t> shape, bool weight_decay, ParamSplit split = {});
  // multiple: the flat length is padded to a multiple of this. units: the parameters each layer uses
  // (a parameter may be used by two layers: the tied word embedding); acquire() works per unit.
  void finalize(int64_t multiple = 16, std::vector<std::vector<int>> units = {});

  Param& at(int i) { return params_[i]; }
  const Param& at(int i) const { return params_[i]; }
  Param* find(const std::string& name);
  int index_of(const std::string& name) const;
  std::vector<Param>& all() { return params_; }
  const std::vector<Param>& all() const { return params_; }
  int64_t numel() const { return total_; }

  // Full fp32 weights and gradients are plain flat buffers (no half precision, no sharding): every
  // Param view is valid at all times and values()/grads() are the flat buffers. Otherwise a layer's
  // views are valid between acquire() and release().
  bool values_direct() const { return values_direct_; }
  bool grads_direct() const { return grads_direct_; }
  float* values() const { return values_direct_ ? w_.f32() : nullptr; }
  float* grads() const { return grads_direct_ ? g_.f32() : nullptr; }
  void zero_grads() { g_.zero(); }

  // Makes unit u's Param views valid: weights converted to fp32 (all-gathered under ZeRO-3), gradients
  // (with_grads) ready to accumulate into. release(): gradients written since acquire() are added to the
  // stored ones (reduce-scattered under ZeRO-2/3, averaged over the group). commit(): the fp32 values
  // written into the views become the stored weights (initialisation).
  // skip_grad: a parameter of the unit whose gradient this call does not touch (the output weight in
  // the output layer's backward: its gradient is formed in the forward), left out of the gradient
  // binding and reduction.
  // Widen::Fp32Readers (the training passes' forward and backward) leaves out the parameters marked with
  // read_as_bf16_only() whose weights are stored whole in bf16: their fp32 views are then stale, and what
  // reads them (a bf16 GEMM) takes Param::stored_bf16, the same bits.
  enum class Widen { All, Fp32Readers };
  void acquire(int unit, bool with_grads, int skip_grad = -1, Widen widen = Widen::All);
  void read_as_bf16_only(int param) { params_[size_t(param)].read_as_bf16_only = true; }
  void release(int unit, bool grads_written, int skip_grad = -1);
  void commit(int unit);
  int num_units() const { return int(units_.size()); }
  // Every weight in fp32 at once (checkpoints, export); collective over the ZeRO group when weights are
  // sharded. commit_full() stores values written into the views; release_full() frees the copy.
  void acquire_full();
  void commit_full();
  void release_full();
  bool has_full_values() const { return values_direct_ || full_.defined(); }
  // ZeRO-1/2: after each rank updated its slices of the weights, all-gather everyone's (per unit).
  void all_gather_weights();

  // The slices this rank owns (its optimizer state, and its gradients/weights when sharded): of rank
  // `rank` of the ZeRO group (default: this one); `pos` in the shard buffers. Without a ZeRO group: every
  // parameter whole. shard_numel(): the length of each rank's shard buffers.
  std::vector<Segment> owned_slices(int rank = -1) const;
  int64_t shard_numel() const { return shard_total_; }
  // The stored gradients this rank holds: its slices (ZeRO-2/3) or every parameter whole (pos = offset).
  const std::vector<Segment>& grad_segments() const { return grad_segments_; }
  // Stored bytes of a segment of owned_slices()/grad_segments() (in storage().weights / .grads).
  void* weight_data(const Segment& s) const;
  void* grad_data(const Segment& s) const;
  void* grad_storage() const { return g_.raw(); }  // the whole stored gradient buffer
  // Gradients held as segments of the full parameter (false: its slices under ZeRO-2/3).
  bool grads_whole() const { return !storage_.shard_grads; }

  // Resident bytes of the stored weights, gradients, and of the fp32 per-layer working buffers.
  int64_t weight_bytes() const { return int64_t(w_.nbytes()); }
  int64_t grad_bytes() const { return int64_t(g_.nbytes()); }
  int64_t working_bytes() const;

 private:
  struct Unit {
    std::vector<int> params;
    std::vector<int64_t> at;  // offset of each parameter in the working buffers
    int64_t size = 0;         // padded elements
  };
  int zero_size() const;
  int zero_rank() const;
  int64_t padded(const Param& p) const;  // elements the parameter occupies in the flat layout

  ParamStorage storage_;
  std::vector<Param> params_;
  std::vector<int64_t> shard_pos_;  // per parameter: start of its slice in the shard buffers
  std::vector<Unit> units_;
  std::vector<Segment> grad_segments_;
  int64_t total_ = 0, shard_total_ = 0, max_unit_ = 0;
  bool values_direct_ = true, grads_direct_ = true;
  Tensor w_, g_;                  // stored weights / gradients (flat, or this rank's shard)
  Tensor work_w_, work_g_;        // fp32 views of one unit
  Tensor full_;                   // acquire_full()
  bool finalized_ = false;
};

}  // namespace loom
