#include "nn/pooling.h"

#include "core/error.h"

namespace pimqat::nn {

// Passes over fewer elements than this run on one thread (a parallel region costs more).
constexpr Index kParallelMin = Index{1} << 15;

const Tensor& GlobalAvgPool::forward(const Tensor& src, Mode mode) {
  if (src.rank() != 4 || src.dim(0) <= 0 || src.dim(2) * src.dim(3) <= 0)
    throw Error("global average pool '" + name() + "' expects a non-empty (N, C, H, W) tensor; got " + src.shape().str());
  src_shape_ = src.shape();
  const Index planes = src.dim(0) * src.dim(1);
  const Index plane = src.dim(2) * src.dim(3);
  dst_.resize({src.dim(0), src.dim(1)});
  const float* x = src.data();
  float* y = dst_.data();
  const double inverse = 1.0 / static_cast<double>(plane);
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
  for (Index p = 0; p < planes; ++p) {
    double sum = 0.0;
    for (Index i = 0; i < plane; ++i) sum += x[p * plane + i];
    y[p] = static_cast<float>(sum * inverse);
  }
  train_forward_ = mode == Mode::Train;
  return dst_;
}

const Tensor& GlobalAvgPool::backward(const Tensor& diff_dst) {
  if (!train_forward_) throw Error("global average pool '" + name() + "': backward() needs a forward() in Mode::Train first");
  if (!(diff_dst.shape() == dst_.shape()))
    throw Error("global average pool '" + name() + "': diff_dst has shape " + diff_dst.shape().str() + ", expected " +
                dst_.shape().str());
  diff_src_.resize(src_shape_);
  const Index planes = src_shape_[0] * src_shape_[1];
  const Index plane = src_shape_[2] * src_shape_[3];
  const float inverse = static_cast<float>(1.0 / static_cast<double>(plane));
  const float* dy = diff_dst.data();
  float* dx = diff_src_.data();
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
  for (Index p = 0; p < planes; ++p) {
    const float g = dy[p] * inverse;
    for (Index i = 0; i < plane; ++i) dx[p * plane + i] = g;
  }
  return diff_src_;
}

}  // namespace pimqat::nn
