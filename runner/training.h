#pragma once
// One training run of an experiment config, with a checkpoint per epoch and resume
// (`pimqat train` and the sweep's train tasks both run through here).
//
// DIR/checkpoint.h5 is replaced atomically after every epoch. Starting again on the same DIR
// continues from the last finished epoch and ends with the same weights, bit for bit, as an
// uninterrupted run (all randomness is keyed by epoch: nn/trainer.h). A DIR holding a checkpoint
// of a different config is refused.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/augment.h"
#include "core/dataset.h"
#include "nn/config.h"
#include "nn/trainer.h"

namespace pimqat::runner {

struct TrainOptions {
  const std::atomic<bool>* stop = nullptr;  // set asynchronously to stop at the next batch
  std::FILE* progress = nullptr;            // progress display (null: none)
  ProgressStyle progress_style = ProgressStyle::Auto;
  std::string progress_label;               // prefix of progress lines, e.g. "train 3f2a9c01: "
  std::string task_id;                      // sweep task identity (empty for `pimqat train`); stored in the
                                            // checkpoint, it keys the RNG here and the dies of evaluations
};

struct TrainOutcome {
  bool finished = false;  // false: stopped early; rerun to resume
  int epochs_done = 0;
  std::vector<nn::EpochStats> history;
  bool resumed = false;
};

// Loads the dataset named by the config, applying train/test subsets.
DatasetPair load_experiment_data(const DataConfig& data);

// Per-channel normalization and augmentation settings for a dataset (DataConfig defaults resolved).
AugmentOptions augmentation_for(const DataConfig& data, const Dataset& train);

TrainOutcome train_experiment(const ExperimentConfig& config, const std::string& out_dir, const TrainOptions& options);

inline constexpr const char* kCheckpointFile = "checkpoint.h5";

}  // namespace pimqat::runner
