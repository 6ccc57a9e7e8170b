#include "nn/linear.h"

#include "core/error.h"

namespace pimqat::nn {

// Passes over fewer elements than this run on one thread (a parallel region costs more).
constexpr Index kParallelMin = Index{1} << 15;

namespace {
void check_operands(const Tensor& src, const Tensor& weight, const char* where) {
  if (weight.rank() != 2) throw Error(std::string(where) + ": weight must be (out, in); got " + weight.shape().str());
  if (src.rank() < 1 || src.dim(0) <= 0 || src.size() != src.dim(0) * weight.dim(1))
    throw Error(std::string(where) + ": src " + src.shape().str() + " does not hold N rows of in_features = " +
                std::to_string(weight.dim(1)));
}
}  // namespace

void linear_forward(const Tensor& src, const Tensor& weight, const Tensor* bias, Tensor& dst) {
  check_operands(src, weight, "linear forward");
  const Index n = src.dim(0), in = weight.dim(1), out = weight.dim(0);
  if (bias && bias->size() != out)
    throw Error("linear forward: bias has " + std::to_string(bias->size()) + " values, expected " + std::to_string(out));
  dst.resize({n, out});
  const float* x = src.data();
  const float* w = weight.data();
  const float* b = bias ? bias->data() : nullptr;
  float* y = dst.data();
#pragma omp parallel for schedule(static) if (n * in * out >= kParallelMin)
  for (Index r = 0; r < n; ++r)
    for (Index o = 0; o < out; ++o) {
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (Index i = 0; i < in; ++i) sum += x[r * in + i] * w[o * in + i];
      y[r * out + o] = b ? sum + b[o] : sum;
    }
}

void linear_backward_data(const Tensor& diff_dst, const Tensor& weight, const Shape& src_shape, Tensor& diff_src) {
  const Index n = diff_dst.dim(0), in = weight.dim(1), out = weight.dim(0);
  if (diff_dst.rank() != 2 || diff_dst.dim(1) != out || src_shape.numel() != n * in)
    throw Error("linear backward: diff_dst " + diff_dst.shape().str() + " does not match weight " +
                weight.shape().str() + " and src " + src_shape.str());
  diff_src.resize(src_shape);
  const float* dy = diff_dst.data();
  const float* w = weight.data();
  float* dx = diff_src.data();
#pragma omp parallel for schedule(static) if (n * in * out >= kParallelMin)
  for (Index r = 0; r < n; ++r) {
    float* row = dx + r * in;
    for (Index i = 0; i < in; ++i) row[i] = 0.0f;
    for (Index o = 0; o < out; ++o) {
      const float g = dy[r * out + o];
#pragma omp simd
      for (Index i = 0; i < in; ++i) row[i] += g * w[o * in + i];
    }
  }
}

void linear_backward_weights(const Tensor& src, const Tensor& diff_dst, Tensor& diff_weight, Tensor* diff_bias) {
  const Index n = diff_dst.dim(0), out = diff_dst.dim(1);
  if (diff_dst.rank() != 2 || src.dim(0) != n || src.size() % n != 0)
    throw Error("linear backward: src " + src.shape().str() + " and diff_dst " + diff_dst.shape().str() +
                " disagree on the batch");
  const Index in = src.size() / n;
  diff_weight.resize({out, in});
  const float* dy = diff_dst.data();
  const float* x = src.data();
  float* dw = diff_weight.data();
#pragma omp parallel for schedule(static) if (n * in * out >= kParallelMin)
  for (Index o = 0; o < out; ++o) {
    float* row = dw + o * in;
    for (Index i = 0; i < in; ++i) row[i] = 0.0f;
    for (Index r = 0; r < n; ++r) {
      const float g = dy[r * out + o];
#pragma omp simd
      for (Index i = 0; i < in; ++i) row[i] += g * x[r * in + i];
    }
  }
  if (diff_bias) {
    diff_bias->resize(Shape{out});
    for (Index o = 0; o < out; ++o) {
      double sum = 0.0;
      for (Index r = 0; r < n; ++r) sum += diff_dst[r * out + o];
      (*diff_bias)[o] = static_cast<float>(sum);
    }
  }
}

Linear::Linear(std::string name, Index in_features, Index out_features) : Layer(std::move(name)) {
  if (in_features <= 0 || out_features <= 0)
    throw Error("linear '" + this->name() + "': in and out features must be positive; got " +
                std::to_string(in_features) + " and " + std::to_string(out_features));
  weight_.name = this->name() + ".weight";
  weight_.value = Tensor(Shape{out_features, in_features});
  weight_.grad = Tensor(Shape{out_features, in_features});
  bias_.name = this->name() + ".bias";
  bias_.value = Tensor(Shape{out_features});
  bias_.grad = Tensor(Shape{out_features});
  bias_.weight_decay = false;
}

void Linear::collect_parameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  out.push_back(&bias_);
}

const Tensor& Linear::forward(const Tensor& src, Mode mode) {
  linear_forward(src, weight_.value, &bias_.value, dst_);
  src_ = mode == Mode::Train ? &src : nullptr;
  return dst_;
}

const Tensor& Linear::backward(const Tensor& diff_dst) {
  if (!src_) throw Error("linear '" + name() + "': backward() needs a forward() in Mode::Train first");
  linear_backward_weights(*src_, diff_dst, weight_.grad, &bias_.grad);
  linear_backward_data(diff_dst, weight_.value, src_->shape(), diff_src_);
  return diff_src_;
}

}  // namespace pimqat::nn
