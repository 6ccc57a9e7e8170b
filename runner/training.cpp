#include "runner/training.h"

#include <cstring>
#include <filesystem>

#include "core/threads.h"
#include "nn/checkpoint.h"
#include "runner/config.h"
#include "runner/execute.h"
#include "runner/model_builder.h"

namespace pimqat::runner {
namespace {

// Keeps the first `count` samples of a dataset (the subsets of DataConfig).
void keep_first(Dataset& data, std::int64_t count) {
  if (count <= 0 || count >= data.size()) return;
  const Shape old = data.images.shape();
  Tensor kept(Shape{count, old[1], old[2], old[3]});
  std::memcpy(kept.data(), data.images.data(), static_cast<std::size_t>(kept.size()) * sizeof(float));
  data.images = std::move(kept);
  data.labels.resize(static_cast<std::size_t>(count));
}

bool is_cifar(const std::string& name) { return name.rfind("cifar", 0) == 0; }

// The config text that identifies a training run in its checkpoint: the thread count is left out
// (it changes the bits of a result, never its meaning, and may differ between resumes).
std::string identity_yaml(ExperimentConfig config) {
  config.train.threads = 0;
  return to_yaml(config);
}

}  // namespace

DatasetPair load_experiment_data(const DataConfig& data) {
  DatasetPair pair = load_dataset(data.name, data.dir);
  keep_first(pair.train, data.train_subset);
  keep_first(pair.test, data.test_subset);
  return pair;
}

AugmentOptions augmentation_for(const DataConfig& data, const Dataset& train) {
  AugmentOptions options;
  options.crop_padding = data.crop_padding >= 0 ? data.crop_padding : (is_cifar(data.name) ? 4 : 0);
  options.flip = data.flip >= 0 ? data.flip != 0 : is_cifar(data.name);
  const ChannelStats stats = channel_stats(train);
  options.mean = stats.mean;
  options.stddev = stats.stddev;
  return options;
}

TrainOutcome train_experiment(const ExperimentConfig& config, const std::string& out_dir, const TrainOptions& options) {
  set_threads(config.train.threads);
  const std::string checkpoint = (std::filesystem::path(out_dir) / kCheckpointFile).string();
  const std::string identity = identity_yaml(config);

  // Refuse a directory holding another experiment before any expensive work.
  nn::CheckpointInfo info;
  const bool resume = std::filesystem::exists(checkpoint);
  if (resume) {
    info = nn::read_checkpoint_info(checkpoint);
    if (info.config_yaml != identity)
      throw Error("'" + checkpoint + "' holds a run of a different configuration; use another --out directory "
                  "(or delete it to start over). Stored configuration:\n" + info.config_yaml);
  }

  const DatasetPair data = load_experiment_data(config.data);
  const AugmentOptions augmentation = augmentation_for(config.data, data.train);
  const RngKey key{config.seed, options.task_id.empty() ? 0 : task_id_hash(options.task_id), Purpose::WeightInit, 0};
  auto model = build_model(config, data.train.channels(), data.train.classes, key);
  nn::Trainer trainer(*model, config.train, data.train, data.test, augmentation, key);

  TrainOutcome outcome;
  if (resume) {
    info = nn::load_checkpoint(checkpoint, *model, &trainer.optimizer());
    outcome.resumed = true;
  } else {
    info.config_yaml = identity;
    info.task_id = options.task_id;
    info.mean = augmentation.mean;
    info.stddev = augmentation.stddev;
  }
  outcome.history = info.history;
  outcome.epochs_done = info.epochs_done;
  if (info.complete) {
    outcome.finished = true;
    return outcome;
  }

  const bool finished = trainer.run(
      info.epochs_done,
      [&](const nn::EpochStats& stats) {
        info.history.push_back(stats);
        info.epochs_done = stats.epoch + 1;
        info.complete = info.epochs_done == config.train.epochs;
        nn::save_checkpoint(checkpoint, *model, &trainer.optimizer(), info);
        outcome.history = info.history;
        outcome.epochs_done = info.epochs_done;
      },
      options.stop, options.progress, options.progress_style, options.progress_label);
  outcome.finished = finished;
  return outcome;
}

}  // namespace pimqat::runner
