#pragma once
// The layer interface every network piece implements (DESIGN.md section 3, `nn/`).
//
// Contract:
// - forward(src, mode) computes the output into a tensor the layer owns and returns it. `src` must
//   stay alive and unchanged until backward() has run (layers may keep a pointer to it).
// - backward(diff_dst) takes dL/d(output) and returns dL/d(src) (owned by the layer). It
//   *overwrites* (does not accumulate) the gradients of the layer's parameters. It may only be
//   called after a forward() in Mode::Train.
// - A layer may be run on any batch size; buffers are resized on demand and reused.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pimqat::nn {

enum class Mode { Train, Eval };

// A trained tensor and its gradient.
struct Parameter {
  std::string name;  // full dotted name, e.g. "layer2.0.conv1.weight"
  Tensor value;
  Tensor grad;
  bool weight_decay = true;  // false for BN affine parameters and clipping levels
};

// A non-trained tensor that is part of the model's state (BN running statistics, running rho).
struct StateTensor {
  std::string name;
  Tensor* value;
};

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual const Tensor& forward(const Tensor& src, Mode mode) = 0;
  virtual const Tensor& backward(const Tensor& diff_dst) = 0;

  // Appends pointers to the layer's parameters / state (children included, in a fixed order).
  virtual void collect_parameters(std::vector<Parameter*>& /*out*/) {}
  virtual void collect_state(std::vector<StateTensor>& /*out*/) {}
  // Visits this layer and its children depth-first (used to find e.g. all BN layers).
  virtual void visit(const std::function<void(Layer&)>& f) { f(*this); }

  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

using LayerPtr = std::unique_ptr<Layer>;

}  // namespace pimqat::nn
