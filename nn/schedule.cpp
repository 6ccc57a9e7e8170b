#include "nn/schedule.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace pimqat::nn {

LrScheduler::LrScheduler(const TrainConfig& config, long steps_per_epoch)
    : config_(config), steps_per_epoch_(steps_per_epoch) {
  PIMQAT_ASSERT(steps_per_epoch > 0);
}

double LrScheduler::lr(int epoch, long step_in_epoch) const {
  const long step = static_cast<long>(epoch) * steps_per_epoch_ + step_in_epoch;
  const long warmup_steps = static_cast<long>(config_.warmup_epochs) * steps_per_epoch_;
  if (step < warmup_steps) return config_.lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  switch (config_.schedule) {
    case LrSchedule::Multistep: {
      double lr = config_.lr;
      for (int milestone : config_.milestones)
        if (epoch >= milestone) lr *= config_.gamma;
      return lr;
    }
    case LrSchedule::Cosine: {
      const long total = static_cast<long>(config_.epochs) * steps_per_epoch_ - warmup_steps;
      if (total <= 0) return config_.lr;
      const double t = static_cast<double>(step - warmup_steps) / static_cast<double>(total);
      return config_.lr * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
    }
  }
  return config_.lr;
}

}  // namespace pimqat::nn
