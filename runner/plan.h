#pragma once
// What a sweep will do and cost, before it runs (`pimqat plan`, docs/sweeps.md "pimqat plan").
//
// Cost model, in multiply-accumulates (MACs) of the model's forward pass per image, F
// (convolutions and the final linear layer of the CIFAR-style ResNet at the dataset's input size):
//   train task: epochs * (3 * train images + test images) * F   (backward ~ 2x forward; per-epoch test pass)
//   eval task (one die): (test images + bn_calibration * eval.batch_size) * F
// The PIM simulation's extra work per MAC (bit-serial: one partial sum per input-bit x weight-bit
// pair) is not weighed. Core-hours assume kAssumedMacsPerCoreSecond: an order of magnitude only.
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "nn/config.h"
#include "runner/sweep.h"

namespace pimqat::runner {

// Sustained MACs per core-second assumed by the core-hour estimate.
inline constexpr double kAssumedMacsPerCoreSecond = 2e10;

struct DatasetShape {
  int channels = 1, height = 28, width = 28, classes = 10;
  std::int64_t train_images = 60000, test_images = 10000;  // after train_subset / test_subset
};

// The input shape, classes and image counts of a dataset configuration (subsets applied).
// Throws pimqat::Error for an unknown dataset name.
DatasetShape dataset_shape(const DataConfig& data);
// Forward-pass MACs per image of the model (convolutions, 1x1 shortcuts, the linear layer).
// Throws pimqat::Error for an unknown architecture.
std::int64_t forward_macs(const ModelConfig& model, const DatasetShape& shape);
double train_task_macs(const ExperimentConfig& config);
double eval_task_macs(const ExperimentConfig& config);  // one die

// Ids of the tasks finished in a run directory; runner/journal.h's finished_task_ids fits.
using FinishedTaskIds = std::function<std::set<std::string>(const std::string& run_dir)>;

struct Plan {
  std::string name;
  std::string source;  // the sweep file
  std::string fingerprint;
  SweepKind kind = SweepKind::TrainEval;
  std::uint64_t seed = 0;
  int replicates = 1;
  std::size_t grid_points = 0;
  std::vector<SweepAxis> axes;

  std::size_t train_tasks = 0, eval_tasks = 0, synthetic_tasks = 0;
  double train_macs = 0, eval_macs = 0;  // all tasks
  double synthetic_seconds = 0;          // sum of the synthetic durations

  // A run directory (make_plan's run_dir), if one was named.
  std::string run_dir;
  bool run_dir_exists = false;
  bool done_known = false;  // false: no way to read the journal was given
  std::size_t done_train = 0, done_eval = 0, done_synthetic = 0;
  std::size_t done_foreign = 0;  // finished ids that are not tasks of this sweep
  double remaining_macs = 0;     // of the tasks not done

  std::size_t total_tasks() const { return train_tasks + eval_tasks + synthetic_tasks; }
  std::size_t done_tasks() const { return done_train + done_eval + done_synthetic; }
};

// `run_dir` empty: no run directory. `finished` may be null: the done counts stay unknown.
Plan make_plan(const Sweep& sweep, const std::string& run_dir = {}, const FinishedTaskIds& finished = nullptr);

// The plan as the terminal shows it (several lines, ending in a newline).
std::string format_plan(const Plan& plan);
// One line per task: id, kind, replicate, die, depends_on, axes (`pimqat plan --list`).
std::string format_task_list(const Sweep& sweep);
// 1234567 -> "1.23 M", with SI prefixes up to E; for MAC and task counts.
std::string si_number(double value);

}  // namespace pimqat::runner
