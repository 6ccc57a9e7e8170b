#include "pim/calibration.h"

#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "nn/batchnorm.h"
#include "pim/pim_conv.h"

namespace pimqat::pim {

CalibrationStats calibrate_batch_norm(nn::Layer& model, const Dataset& train, const AugmentOptions& normalization,
                                      int batches, int batch_size, const RngKey& order_key,
                                      const std::atomic<bool>* stop) {
  if (batches < 1) throw Error("BN calibration needs at least one batch (got " + std::to_string(batches) + ")");
  if (batch_size < 2)
    throw Error("BN calibration needs batches of at least 2 images (got " + std::to_string(batch_size) + ")");
  if (train.size() < 2) throw Error("BN calibration needs a training set of at least 2 images");

  std::vector<nn::BatchNorm2d*> norms;
  model.visit([&norms](nn::Layer& layer) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&layer)) norms.push_back(bn);
  });
  const std::vector<PimConv2d*> pims = pim_layers(model);

  struct Guard {  // calibration off again whatever happens
    std::vector<nn::BatchNorm2d*>& norms;
    const std::vector<PimConv2d*>& pims;
    ~Guard() {
      for (auto* bn : norms) bn->set_calibrating(false);
      for (auto* p : pims) p->set_calibrating(false);
    }
  } guard{norms, pims};
  for (auto* bn : norms) {
    bn->reset_running_stats();
    bn->set_calibrating(true);
  }
  for (auto* p : pims) {
    p->reset_running_rho();
    p->set_calibrating(true);
  }

  const auto n = static_cast<std::uint32_t>(train.size());
  std::vector<std::uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  RandomStream stream(order_key);
  shuffle_indices(order.data(), n, stream);
  const Index count = std::min<Index>(batch_size, n);
  std::vector<std::uint32_t> indices(static_cast<std::size_t>(count));
  Tensor batch;
  std::vector<std::int32_t> labels;
  for (int b = 0; b < batches; ++b) {
    if (stop && stop->load(std::memory_order_relaxed)) throw Interrupted();
    for (Index j = 0; j < count; ++j)
      indices[static_cast<std::size_t>(j)] =
          order[static_cast<std::size_t>((static_cast<Index>(b) * count + j) % static_cast<Index>(n))];
    make_batch(train, indices.data(), count, normalization, nullptr, 0, batch, labels);
    model.forward(batch, nn::Mode::Eval);
  }
  CalibrationStats stats;
  stats.batches = batches;
  stats.images = static_cast<Index>(batches) * count;
  stats.batch_norm_layers = static_cast<int>(norms.size());
  stats.pim_layers = static_cast<int>(pims.size());
  return stats;
}

}  // namespace pimqat::pim
