#pragma once
// Predicted GPU memory of one rank of a CoCa run as EVA-CLIP trains it on PyTorch and DeepSpeed (reference
// log 000: fp16 weights under autocast, ZeRO-1, gradient checkpointing per block), in the terms DeepSpeed's
// throughput line prints: MemAllocated after a step (steady) and MaxMemAllocated (peak).
//
//  steady = model states + the step's batch + what the training loop still holds from its forward
//           (open_clip's model_out dict: the caption logits [B, ctx-1, vocab] at the activation width, the
//           features and labels) until the next step replaces them.
//  peak   = the larger of
//    (a) the start of the backward: steady + every tensor the forward saved + the caption cross-entropy's
//        three fp32 [B, ctx-1, vocab] tensors at its log_softmax backward (autocast runs the loss in fp32:
//        the saved log_softmax output, nll_loss's gradient, the gradient it makes), no gradients yet;
//    (b) the end of the backward with checkpointing: steady + every block input + the half gradients of
//        every parameter + one vision block's activations, recomputed.
// Saved tensors, at the activation width e: with checkpointing each block's input (vision, text,
// decoder: self-attention and cross-attention blocks); without, each block's Korthikanti terms
// (activation_model.h, no dropout, SwiGLU for EVA's MLP, no score term for EVA's memory-efficient
// attention; the text and decoder blocks' nn.MultiheadAttention keeps its softmax). Also the patch
// embedding's input (autocast's half copy of the fp32 images), the towers' final norms, the attentional
// poolers (ln_k's output, K, V, the query projection, the softmax weights, the output and its projection's
// input), ln_post and the contrastive logits (fp32, both directions).
#include "loom/plan/coca_time_model.h"

namespace loom {

struct CocaMemoryTerms {
  double model_states = 0;  // half (or fp32) weights, fp32 main weights and moments (ZeRO >= 1: 1/dp)
  double batch = 0;         // fp32 images and int64 token ids
  double held_outputs = 0;  // caption logits, features, labels kept by the training loop
  double saved = 0;         // what the forward saved for the backward (checkpoints or whole blocks, poolers)
  double caption_loss = 0;  // the cross-entropy's fp32 tensors at the start of the backward
  double gradients = 0;     // half gradients of every parameter (the end of the backward)
  double recompute = 0;     // one vision block's activations while checkpointing reruns it
  double steady() const { return model_states + batch + held_outputs; }
  double start_of_backward() const { return steady() + saved + caption_loss; }
  double end_of_backward() const;
  double peak() const;
};

CocaMemoryTerms predict_coca_memory(const CocaConfig& c, const CocaLayout& l);

}  // namespace loom
