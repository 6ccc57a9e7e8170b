#pragma once
// Monte Carlo evaluation of one trained model on simulated PIM dies (DESIGN.md 2.3, 2.5): the eval
// tasks of a sweep and `pimqat eval` both run through here.
//
// For one model: load the checkpoint into the PIM version of its network (every body and shortcut
// conv a pim::PimConv2d with config.pim's scheme, rows, clip and rescale mode; first conv and fc
// digital; state missing from the checkpoint, e.g. the running rho of a digital-QAT baseline,
// starts at its default 1), then for each die d:
//   1. restore the checkpoint's BN statistics and running rhos;
//   2. set the ADC resolution to eval.infer_bits (IR) and attach die d: gains/offsets drawn with
//      eval.gain_sigma/offset_sigma (or eval.curve = smooth / measured), thermal noise
//      eval.noise_sigma; die keys (config.seed, model id, d) with model id = hash of the training
//      task id stored in the checkpoint (or of the eval task's depends_on; 0 when neither exists);
//   3. if eval.bn_calibration = B > 0: BN calibration over B training batches of eval.batch_size
//      images (pim/calibration.h), with the die on;
//   4. evaluate the test set (loss, top-1 accuracy) with the die on.
// The dataset, the network structure and the normalization come from the config and the
// checkpoint; the trained weights are never changed.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/augment.h"
#include "core/dataset.h"
#include "nn/config.h"
#include "nn/sequential.h"
#include "runner/execute.h"
#include "runner/task.h"

namespace pimqat::runner {

struct DieOutcome {
  std::uint64_t die = 0;
  double accuracy = 0;
  double loss = 0;
  double rho_mean = 1;           // mean running rho over the PIM layers used for the test set
  int calibration_batches = 0;
  double seconds = 0;
};

// Summary over dies: sample standard deviation (n - 1), 5th percentile with linear interpolation
// between order statistics (NumPy's default), and the 95% confidence interval of the mean with
// Student's t (n - 1 degrees of freedom). With one value: std 0 and the interval [x, x].
struct DieSummary {
  std::size_t count = 0;
  double mean = 0, stddev = 0, min = 0, max = 0, p5 = 0, ci95_low = 0, ci95_high = 0;
};
DieSummary summarize(const std::vector<double>& values);
// Two-sided 95% quantile of Student's t with `dof` degrees of freedom (exact table up to 30, then
// the Cornish-Fisher expansion; within 1e-3).
double student_t95(std::size_t dof);

class PimEvaluator {
 public:
  // Loads the data of config.data and the checkpoint into the PIM network of config.model /
  // config.pim. `fallback_model_id` keys the dies when the checkpoint has no task id.
  PimEvaluator(const ExperimentConfig& config, const std::string& checkpoint, std::uint64_t fallback_model_id = 0);

  std::uint64_t model_id() const { return model_id_; }
  const std::string& checkpoint() const { return checkpoint_; }
  nn::Sequential& model() { return *model_; }
  const DatasetPair& data() const { return data_; }
  const AugmentOptions& normalization() const { return normalization_; }  // test-time: normalization only

  // Steps 1-4 above for die `die` with the settings of `eval` and dies keyed by `seed`.
  // Throws pimqat::Interrupted (the model left as it was before) when `stop` becomes true during
  // the calibration or the test pass.
  DieOutcome evaluate_die(const EvalConfig& eval, std::uint64_t seed, std::uint64_t die,
                          const std::atomic<bool>* stop = nullptr);

 private:
  std::string checkpoint_;
  std::uint64_t model_id_ = 0;
  DatasetPair data_;
  AugmentOptions normalization_;
  std::unique_ptr<nn::Sequential> model_;
  std::vector<std::vector<float>> checkpoint_state_;  // state tensors as loaded, in collect_state order
};

// Dies first_die .. first_die + dies - 1 of config.eval; stops early (returning the dies finished)
// when `stop` becomes true, also in the middle of a die (that die is dropped).
std::vector<DieOutcome> evaluate_dies(PimEvaluator& evaluator, const ExperimentConfig& config,
                                      const std::atomic<bool>* stop = nullptr);

// The eval task of a sweep: the checkpoint is ctx.checkpoint_dir(spec.depends_on)/checkpoint.h5;
// the evaluator is kept in ctx.models between tasks of the same model. Metrics: accuracy, loss,
// rho_mean, die, calibration_batches, seconds (one die: spec.config.eval.dies = 1), and with more
// dies accuracy_mean/std/min/p5.
TaskResult run_eval_task(const TaskSpec& spec, const TaskContext& ctx);

// Results of `pimqat eval` as HDF5 (docs/pim.md): table /dies (die, accuracy, loss, rho_mean,
// calibration_batches, seconds), root attributes with the summary of accuracy and the config.
void write_eval_results(const std::string& path, const std::vector<DieOutcome>& dies, const std::string& checkpoint,
                        const std::string& config_yaml);

}  // namespace pimqat::runner
