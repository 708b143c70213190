#pragma once
// Data-parallel gradient reduction, as Megatron's DistributedDataParallel with --overlap-grad-reduce:
// the flat gradient buffer is cut into buckets of whole parameters in backward order (last layer
// first); a bucket's all-reduce starts as soon as the backward pass has finished every parameter in it,
// and runs while the remaining layers compute. Gradients are averaged over the group (each rank's
// micro-batch losses are already divided by the number of micro-batches), so the result equals one
// process running the whole global batch.
#include <memory>
#include <vector>

#include "loom/dist/communicator.h"
#include "loom/models/decoder_model.h"

namespace loom {

class GradReducer {
 public:
  // bucket_elements: Megatron's --ddp-bucket-size (in parameters). overlap: start reductions during the
  // backward pass instead of after it.
  // Half-precision gradients are reduced in fp32 chunks after the backward (no overlap). Under ZeRO-2/3
  // the store reduce-scatters each layer's gradients itself and this reducer does nothing.
  GradReducer(DecoderModel& model, std::shared_ptr<dist::Communicator> dp, int64_t bucket_elements, bool overlap);

  // Call before the last micro-batch's backward; its layer hook is after_layer().
  void begin_last_backward();
  void after_layer(int layer);
  // Completes every reduction (starting those not yet started) and averages. Safe to call when
  // begin_last_backward() was not called (then everything is reduced here).
  void finish();

  int num_buckets() const { return int(buckets_.size()); }
  bool active() const { return dp_ && dp_->size() > 1 && model_.params().grads_whole(); }

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;  // element range of the flat gradient buffer
    int first_param = 0, last_param = 0;  // [first, last] parameter indices
    int pending_params = 0;
    bool started = false;
    dist::Request request;
  };
  void start(Bucket& b);

  DecoderModel& model_;
  std::shared_ptr<dist::Communicator> dp_;
  bool overlap_;
  bool in_backward_ = false;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_param_;
};

}  // namespace loom
