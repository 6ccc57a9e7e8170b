#include "nn/sequential.h"

#include "core/error.h"

namespace pimqat::nn {

Layer& Sequential::add(LayerPtr layer) {
  if (!layer) throw Error("sequential '" + name() + "': cannot add a null layer");
  layers_.push_back(std::move(layer));
  return *layers_.back();
}

const Tensor& Sequential::forward(const Tensor& src, Mode mode) {
  if (layers_.empty()) throw Error("sequential '" + name() + "' has no layers");
  const Tensor* x = &src;
  for (auto& layer : layers_) x = &layer->forward(*x, mode);
  return *x;
}

const Tensor& Sequential::backward(const Tensor& diff_dst) {
  if (layers_.empty()) throw Error("sequential '" + name() + "' has no layers");
  const Tensor* g = &diff_dst;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) g = &(*it)->backward(*g);
  return *g;
}

void Sequential::collect_parameters(std::vector<Parameter*>& out) {
  for (auto& layer : layers_) layer->collect_parameters(out);
}

void Sequential::collect_state(std::vector<StateTensor>& out) {
  for (auto& layer : layers_) layer->collect_state(out);
}

void Sequential::visit(const std::function<void(Layer&)>& f) {
  f(*this);
  for (auto& layer : layers_) layer->visit(f);
}

Layer* Sequential::find(const std::string& layer_name) {
  Layer* found = nullptr;
  visit([&](Layer& layer) {
    if (!found && layer.name() == layer_name) found = &layer;
  });
  return found;
}

std::vector<Parameter*> Sequential::parameters() {
  std::vector<Parameter*> out;
  collect_parameters(out);
  return out;
}

std::vector<StateTensor> Sequential::state() {
  std::vector<StateTensor> out;
  collect_state(out);
  return out;
}

}  // namespace pimqat::nn
