#pragma once
// The small model whose checkpoints the checkpoint target reads (and fuzz_seeds writes): a 3x3
// convolution 1 -> 2, batch normalization over 2 channels (running mean/variance: state), and a
// linear layer 2 -> 3; SGD with momentum (one buffer per parameter). Small enough that a whole
// checkpoint is a few hundred bytes of h5spec text, with every kind of tensor a real one has.
#include <memory>

#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/optimizer.h"
#include "nn/sequential.h"

namespace pimqat::fuzz {

struct FuzzModel {
  std::unique_ptr<nn::Sequential> model;
  std::unique_ptr<nn::Sgd> optimizer;
};

inline FuzzModel make_fuzz_model() {
  FuzzModel m;
  m.model = std::make_unique<nn::Sequential>("");
  nn::ConvGeometry g;
  g.in_channels = 1;
  g.out_channels = 2;
  g.kernel = 3;
  g.padding = 1;
  m.model->add(std::make_unique<nn::Conv2d>("conv1", g));
  m.model->add(std::make_unique<nn::BatchNorm2d>("bn1", 2));
  m.model->add(std::make_unique<nn::Linear>("fc", 2, 3));
  m.optimizer = std::make_unique<nn::Sgd>(m.model->parameters(), 0.9, false, 5e-4);
  return m;
}

}  // namespace pimqat::fuzz
