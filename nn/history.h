#pragma once
// Per-epoch training statistics (the learning curve), kept in checkpoints and results files.

namespace pimqat::nn {

struct EpochStats {
  int epoch = 0;  // 0-based
  double lr = 0;  // learning rate of the last step of the epoch
  double train_loss = 0, train_accuracy = 0;  // running averages over the epoch (training mode)
  double test_loss = 0, test_accuracy = 0;    // after the epoch, evaluation mode
  double seconds = 0;                         // wall time of the training part of the epoch
};

}  // namespace pimqat::nn
