#include "nn/optimizer.h"

namespace pimqat::nn {

Sgd::Sgd(std::vector<Parameter*> parameters, double momentum, bool nesterov, double weight_decay)
    : parameters_(std::move(parameters)),
      momentum_(static_cast<float>(momentum)),
      nesterov_(nesterov),
      weight_decay_(static_cast<float>(weight_decay)) {
  velocity_.reserve(parameters_.size());
  for (const Parameter* p : parameters_) {
    velocity_.emplace_back(p->value.shape());
    velocity_names_.push_back(p->name + ".momentum");
  }
}

void Sgd::step(double lr) {
  const auto rate = static_cast<float>(lr);
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Parameter& p = *parameters_[i];
    PIMQAT_ASSERT(p.grad.size() == p.value.size());
    float* w = p.value.data();
    const float* grad = p.grad.data();
    float* v = velocity_[i].data();
    const float decay = p.weight_decay ? weight_decay_ : 0.0f;
    const Index n = p.value.size();
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (Index j = 0; j < n; ++j) {
      const float g = grad[j] + decay * w[j];
      v[j] = momentum_ * v[j] + g;
      const float update = nesterov_ ? g + momentum_ * v[j] : v[j];
      w[j] -= rate * update;
    }
  }
}

std::vector<StateTensor> Sgd::state() {
  std::vector<StateTensor> out;
  for (std::size_t i = 0; i < velocity_.size(); ++i) out.push_back({velocity_names_[i], &velocity_[i]});
  return out;
}

}  // namespace pimqat::nn
