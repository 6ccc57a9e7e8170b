#include "runner/model_builder.h"

#include "nn/qlayers.h"
#include "nn/resnet.h"

namespace pimqat::runner {

std::unique_ptr<nn::Sequential> build_model(const ExperimentConfig& config, int in_channels, int classes,
                                            const RngKey& init_key) {
  nn::QatLayerFactory factory(config.model);
  return nn::make_resnet(nn::resnet_depth(config.model.arch), in_channels, classes, factory,
                         init_key.with(Purpose::WeightInit, 0));
}

}  // namespace pimqat::runner
