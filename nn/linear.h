#pragma once
// Fully connected layer: dst (N, out) = src (N, in) W^T + b, W of shape (out, in), b of shape (out).
// src may have any rank with size N * in (an (N, C, 1, 1) tensor is read as (N, C)); diff_src gets
// src's shape. The functional helpers serve quantized linear layers with their own weights.
#include "nn/layer.h"

namespace pimqat::nn {

// dst = src W^T (+ b when bias is given); dst resized to (N, out), N = src.dim(0).
void linear_forward(const Tensor& src, const Tensor& weight, const Tensor* bias, Tensor& dst);
// diff_src = diff_dst W, resized to src_shape.
void linear_backward_data(const Tensor& diff_dst, const Tensor& weight, const Shape& src_shape, Tensor& diff_src);
// diff_weight = diff_dst^T src (overwritten, resized to (out, in)); diff_bias = sum over n of diff_dst.
void linear_backward_weights(const Tensor& src, const Tensor& diff_dst, Tensor& diff_weight, Tensor* diff_bias);

// Parameters "<name>.weight" (out, in) and "<name>.bias" (out) (bias excluded from weight decay),
// zero until initialized (nn/init.h linear_default_init).
class Linear : public Layer {
 public:
  Linear(std::string name, Index in_features, Index out_features);

  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  void collect_parameters(std::vector<Parameter*>& out) override;

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }
  Index in_features() const { return weight_.value.dim(1); }
  Index out_features() const { return weight_.value.dim(0); }

 private:
  Parameter weight_;
  Parameter bias_;
  const Tensor* src_ = nullptr;
  Tensor dst_;
  Tensor diff_src_;
};

}  // namespace pimqat::nn
