#include "nn/loss.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace pimqat::nn {

double SoftmaxCrossEntropy::forward_backward(const Tensor& logits, std::span<const std::int32_t> labels) {
  return run(logits, labels, true);
}

double SoftmaxCrossEntropy::forward(const Tensor& logits, std::span<const std::int32_t> labels) {
  return run(logits, labels, false);
}

double SoftmaxCrossEntropy::run(const Tensor& logits, std::span<const std::int32_t> labels, bool gradient) {
  if (logits.rank() != 2 || logits.dim(0) <= 0 || logits.dim(1) <= 0)
    throw Error("softmax cross-entropy expects logits (N, K); got " + logits.shape().str());
  const Index n = logits.dim(0), k = logits.dim(1);
  if (static_cast<Index>(labels.size()) != n)
    throw Error("softmax cross-entropy: " + std::to_string(labels.size()) + " labels for " + std::to_string(n) +
                " rows of logits");
  for (Index r = 0; r < n; ++r)
    if (labels[static_cast<std::size_t>(r)] < 0 || labels[static_cast<std::size_t>(r)] >= k)
      throw Error("softmax cross-entropy: label " + std::to_string(labels[static_cast<std::size_t>(r)]) + " of row " +
                  std::to_string(r) + " is outside [0, " + std::to_string(k) + ")");
  if (gradient) diff_logits_.resize(logits.shape());
  double total = 0.0;
  correct_ = 0;
  const double inverse_n = 1.0 / static_cast<double>(n);
  for (Index r = 0; r < n; ++r) {
    const float* z = logits.data() + r * k;
    const Index label = labels[static_cast<std::size_t>(r)];
    Index best = 0;
    for (Index j = 1; j < k; ++j)
      if (z[j] > z[best]) best = j;
    if (best == label) ++correct_;
    const double shift = z[best];
    double sum = 0.0;
    for (Index j = 0; j < k; ++j) sum += std::exp(static_cast<double>(z[j]) - shift);
    const double log_sum = std::log(sum);
    total += log_sum + shift - static_cast<double>(z[label]);
    if (gradient) {
      float* g = diff_logits_.data() + r * k;
      for (Index j = 0; j < k; ++j) {
        const double p = std::exp(static_cast<double>(z[j]) - shift - log_sum);
        g[j] = static_cast<float>((p - (j == label ? 1.0 : 0.0)) * inverse_n);
      }
    }
  }
  return total * inverse_n;
}

}  // namespace pimqat::nn
