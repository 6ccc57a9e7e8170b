#pragma once
// Softmax cross-entropy over a batch of logits (N, K) and labels in [0, K):
//   loss = (1/N) sum_n [ log sum_k exp(z_nk) - z_n,label_n ]   (computed in double, max-shifted),
//   dL/dz_nk = (softmax(z_n)_k - [k == label_n]) / N.
// A prediction is correct when the label's logit is the largest (ties go to the lowest index, as
// argmax in PyTorch/NumPy).
#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace pimqat::nn {

class SoftmaxCrossEntropy {
 public:
  // Mean loss; fills diff_logits() and correct().
  double forward_backward(const Tensor& logits, std::span<const std::int32_t> labels);
  // Mean loss and correct() only (evaluation).
  double forward(const Tensor& logits, std::span<const std::int32_t> labels);

  const Tensor& diff_logits() const { return diff_logits_; }
  Index correct() const { return correct_; }

 private:
  double run(const Tensor& logits, std::span<const std::int32_t> labels, bool gradient);
  Tensor diff_logits_;
  Index correct_ = 0;
};

}  // namespace pimqat::nn
