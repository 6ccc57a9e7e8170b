#include "nn/activation.h"

#include <algorithm>

#include "core/error.h"

namespace pimqat::nn {

// Passes over fewer elements than this run on one thread (a parallel region costs more).
constexpr Index kParallelMin = Index{1} << 15;

const Tensor& ReLU::forward(const Tensor& src, Mode mode) {
  dst_.resize(src.shape());
  const float* x = src.data();
  float* y = dst_.data();
  const Index n = src.size();
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (Index i = 0; i < n; ++i) y[i] = std::max(x[i], 0.0f);
  train_forward_ = mode == Mode::Train;
  return dst_;
}

const Tensor& ReLU::backward(const Tensor& diff_dst) {
  if (!train_forward_) throw Error("ReLU '" + name() + "': backward() needs a forward() in Mode::Train first");
  if (!(diff_dst.shape() == dst_.shape()))
    throw Error("ReLU '" + name() + "': diff_dst has shape " + diff_dst.shape().str() + ", forward's output was " +
                dst_.shape().str());
  diff_src_.resize(dst_.shape());
  const float* y = dst_.data();
  const float* dy = diff_dst.data();
  float* dx = diff_src_.data();
  const Index n = dst_.size();
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (Index i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  return diff_src_;
}

}  // namespace pimqat::nn
