#pragma once
// Global average pooling: (N, C, H, W) -> (N, C), dst[n, c] = (1/(H W)) sum_{h, w} src[n, c, h, w];
// dL/dsrc[n, c, h, w] = dL/ddst[n, c] / (H W).
#include "nn/layer.h"

namespace pimqat::nn {

class GlobalAvgPool : public Layer {
 public:
  explicit GlobalAvgPool(std::string name) : Layer(std::move(name)) {}
  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;

 private:
  Shape src_shape_;
  bool train_forward_ = false;
  Tensor dst_;
  Tensor diff_src_;
};

}  // namespace pimqat::nn
