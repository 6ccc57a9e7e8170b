#include "runner/model_builder.h"

#include "nn/qlayers.h"
#include "nn/resnet.h"

namespace pimqat::runner {

int resnet_depth(const std::string& arch) {
  for (const int depth : {20, 32, 44, 56})
    if (arch == "resnet" + std::to_string(depth)) return depth;
  throw Error("unknown model.arch '" + arch + "' (valid: resnet20, resnet32, resnet44, resnet56)");
}

std::unique_ptr<nn::Sequential> build_model(const ExperimentConfig& config, int in_channels, int classes,
                                            const RngKey& init_key) {
  nn::QatLayerFactory factory(config.model);
  return nn::make_resnet(resnet_depth(config.model.arch), in_channels, classes, factory,
                         init_key.with(Purpose::WeightInit, 0));
}

}  // namespace pimqat::runner
