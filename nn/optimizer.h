#pragma once
// SGD with momentum, Nesterov momentum and decoupled-from-nothing (L2) weight decay, with
// PyTorch's update rule so that results can be compared side by side:
//   g = grad + weight_decay * w            (only for parameters with weight_decay = true)
//   v = momentum * v + g                    (v starts at 0)
//   step = nesterov ? g + momentum * v : v
//   w -= lr * step
#include <vector>

#include "nn/layer.h"

namespace pimqat::nn {

class Sgd {
 public:
  Sgd(std::vector<Parameter*> parameters, double momentum, bool nesterov, double weight_decay);

  void step(double lr);

  // Momentum buffers, named "<parameter name>.momentum", for checkpoints.
  std::vector<StateTensor> state();

 private:
  std::vector<Parameter*> parameters_;
  std::vector<Tensor> velocity_;
  std::vector<std::string> velocity_names_;
  float momentum_;
  bool nesterov_;
  float weight_decay_;
};

}  // namespace pimqat::nn
