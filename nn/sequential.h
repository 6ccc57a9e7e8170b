#pragma once
// A chain of layers: forward runs them in order, backward in reverse. Parameters, state and
// visits go through the children in order.
#include <vector>

#include "nn/layer.h"

namespace pimqat::nn {

class Sequential : public Layer {
 public:
  explicit Sequential(std::string name) : Layer(std::move(name)) {}

  // Appends a layer; returns a reference to it for further set-up.
  Layer& add(LayerPtr layer);
  template <class T>
  T& emplace(std::unique_ptr<T> layer) {
    T& ref = *layer;
    add(std::move(layer));
    return ref;
  }

  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  void collect_parameters(std::vector<Parameter*>& out) override;
  void collect_state(std::vector<StateTensor>& out) override;
  // This layer first, then every child's visit, in order.
  void visit(const std::function<void(Layer&)>& f) override;

  std::size_t size() const { return layers_.size(); }
  Layer& operator[](std::size_t i) { return *layers_[i]; }
  // The first layer (searching children of nested Sequentials too) with this name, or nullptr.
  Layer* find(const std::string& layer_name);

  std::vector<Parameter*> parameters();
  std::vector<StateTensor> state();

 private:
  std::vector<LayerPtr> layers_;
};

}  // namespace pimqat::nn
