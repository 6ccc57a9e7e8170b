#pragma once
// Checkpoints: HDF5 files with everything needed to resume training or to evaluate a model.
// Layout (docs/checkpoint-format.md, readable with h5py):
//   /                       attributes: kind = "pimqat-checkpoint", format_version, program_version,
//                           git_commit, epochs_done, complete (0/1), config (resolved YAML), task_id
//   /model/<layer>/<leaf>   float32 parameters and state, e.g. /model/layer1.0.conv1/weight (OIHW),
//                           /model/layer1.0.bn1/running_mean, /model/layer1.0.conv1/alpha
//   /optimizer/<layer>/<leaf>.momentum   SGD momentum buffers
//   /normalization/mean, /normalization/stddev   per-channel input normalization used in training
//   /history                table: epoch, lr, train_loss, train_accuracy, test_loss, test_accuracy, seconds
// Randomness needs no stored stream position: every stream is keyed by the epoch (nn/trainer.h),
// so `epochs_done` is the RNG position.
#include <string>
#include <vector>

#include "nn/history.h"
#include "nn/layer.h"
#include "nn/optimizer.h"

namespace pimqat::nn {

struct CheckpointInfo {
  int epochs_done = 0;
  bool complete = false;
  std::string config_yaml;
  std::string task_id;
  std::vector<float> mean, stddev;  // input normalization
  std::vector<EpochStats> history;
};

enum class MissingState { Error, KeepDefault };

// Writes atomically (temporary file + rename): a crash leaves the previous checkpoint intact.
void save_checkpoint(const std::string& path, Layer& model, Sgd* optimizer, const CheckpointInfo& info);

// Reads the attributes, normalization and history only.
CheckpointInfo read_checkpoint_info(const std::string& path);

// Restores parameters and state of `model` (and `optimizer` when non-null). Every parameter must
// be present with the model's shape; state tensors missing from the file are an error unless
// `missing_state` is KeepDefault (e.g. a digital-QAT checkpoint deployed on a PIM model, whose
// running rho starts at 1).
CheckpointInfo load_checkpoint(const std::string& path, Layer& model, Sgd* optimizer,
                               MissingState missing_state = MissingState::Error);

}  // namespace pimqat::nn
