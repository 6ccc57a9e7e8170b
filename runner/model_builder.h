#pragma once
// Builds the network an experiment config describes: FP32, digital QAT (DESIGN.md 2.1) or
// PIM-QAT (2.2-2.4), as a CIFAR-style ResNet for the dataset's input shape.
#include <memory>

#include "core/rng.h"
#include "nn/config.h"
#include "nn/sequential.h"

namespace pimqat::runner {

// Weights are initialized from streams keyed by `init_key` (purpose WeightInit).
std::unique_ptr<nn::Sequential> build_model(const ExperimentConfig& config, int in_channels, int classes,
                                            const RngKey& init_key);

}  // namespace pimqat::runner
