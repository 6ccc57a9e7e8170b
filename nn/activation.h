#pragma once
// ReLU: dst = max(src, 0); dL/dsrc = dL/ddst where dst > 0, else 0 (0 at src = 0, as PyTorch).
// Any shape. (Inside the ResNets ReLU is fused into batch norm and the residual sum; this layer
// serves other networks and tests.)
#include "nn/layer.h"

namespace pimqat::nn {

class ReLU : public Layer {
 public:
  explicit ReLU(std::string name) : Layer(std::move(name)) {}
  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;

 private:
  Tensor dst_;
  Tensor diff_src_;
  bool train_forward_ = false;
};

}  // namespace pimqat::nn
