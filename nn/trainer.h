#pragma once
// The training loop: epochs of SGD over a dataset with keyed data order and augmentation
// (DESIGN.md 2.6), per-epoch evaluation, loss/accuracy/learning-rate history.
//
// Randomness: the data order of epoch e is a shuffle by stream (key, DataOrder, e); augmentation of
// the sample at position j of epoch e uses block j of stream (key, Augmentation, e). Nothing else
// is random, so a run resumed at an epoch boundary replays exactly what an uninterrupted run does.
#include <atomic>
#include <cstdio>
#include <functional>
#include <vector>

#include "core/augment.h"
#include "core/dataset.h"
#include "core/progress.h"
#include "core/rng.h"
#include "nn/config.h"
#include "nn/history.h"
#include "nn/layer.h"
#include "nn/optimizer.h"

namespace pimqat::nn {

struct EvalStats {
  double loss = 0;
  double accuracy = 0;
  Index count = 0;
};

// Loss and accuracy of `model` in Mode::Eval over the whole dataset (normalized, no augmentation).
// Throws pimqat::Interrupted before a batch when `stop` is set.
EvalStats evaluate(Layer& model, const Dataset& data, const AugmentOptions& normalization, int batch_size,
                   const std::atomic<bool>* stop = nullptr);

class Trainer {
 public:
  Trainer(Layer& model, const TrainConfig& config, const Dataset& train, const Dataset& test,
          AugmentOptions augmentation, const RngKey& key);

  Sgd& optimizer() { return optimizer_; }

  // Runs epochs first_epoch .. config.epochs-1. After each one, `on_epoch` receives its statistics
  // (the place to checkpoint). Returns false if `stop` became true (checked between batches; the
  // interrupted epoch is discarded and is redone on resume), true when all epochs ran.
  // `progress` (may be null) receives a progress display per epoch.
  bool run(int first_epoch, const std::function<void(const EpochStats&)>& on_epoch,
           const std::atomic<bool>* stop, std::FILE* progress, ProgressStyle style = ProgressStyle::Auto,
           const std::string& label = "");

 private:
  Layer& model_;
  TrainConfig config_;
  const Dataset& train_;
  const Dataset& test_;
  AugmentOptions augmentation_;
  RngKey key_;
  std::vector<Parameter*> parameters_;
  Sgd optimizer_;
};

std::vector<Parameter*> parameters_of(Layer& model);

}  // namespace pimqat::nn
