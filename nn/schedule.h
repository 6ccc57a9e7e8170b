#pragma once
// Learning-rate schedules, evaluated per optimizer step so warm-up and cosine are smooth.
//   warm-up (first warmup_epochs): lr * (step + 1) / warmup_steps, linear from lr/warmup_steps to lr
//   multistep: lr * gamma^(number of milestones <= epoch)
//   cosine: lr * (1 + cos(pi * t)) / 2 with t = (step - warmup_steps) / (total_steps - warmup_steps)
#include "nn/config.h"

namespace pimqat::nn {

class LrScheduler {
 public:
  LrScheduler(const TrainConfig& config, long steps_per_epoch);
  double lr(int epoch, long step_in_epoch) const;

 private:
  TrainConfig config_;
  long steps_per_epoch_;
};

}  // namespace pimqat::nn
