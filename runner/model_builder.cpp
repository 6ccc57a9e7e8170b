#include "runner/model_builder.h"

#include "nn/qlayers.h"
#include "nn/resnet.h"
#include "pim/pim_conv.h"

namespace pimqat::runner {

std::unique_ptr<nn::Sequential> build_model(const ExperimentConfig& config, int in_channels, int classes,
                                            const RngKey& init_key) {
  const int depth = nn::resnet_depth(config.model.arch);
  const RngKey key = init_key.with(Purpose::WeightInit, 0);
  if (config.pim.enabled) {
    // PIM-QAT: the ideal PIM quantizer at the training resolution TR in the loop (DESIGN.md 2.2-2.4).
    pim::PimLayerFactory factory(config.model, pim::PimLayerSettings::from_config(config.pim));
    return nn::make_resnet(depth, in_channels, classes, factory, key);
  }
  nn::QatLayerFactory factory(config.model);  // digital QAT, or FP32 when no bits are set
  return nn::make_resnet(depth, in_channels, classes, factory, key);
}

}  // namespace pimqat::runner
