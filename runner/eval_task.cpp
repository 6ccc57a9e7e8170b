#include "runner/eval_task.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/hdf5.h"
#include "core/threads.h"
#include "nn/checkpoint.h"
#include "nn/resnet.h"
#include "nn/trainer.h"
#include "pim/calibration.h"
#include "pim/die.h"
#include "pim/pim_conv.h"
#include "runner/config.h"
#include "runner/model_builder.h"
#include "runner/training.h"

namespace pimqat::runner {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string cache_key(const ExperimentConfig& config, const std::string& checkpoint) {
  ExperimentConfig structural = config;
  structural.eval = EvalConfig{};
  structural.train = TrainConfig{};
  return "pim-eval|" + checkpoint + "|" + to_yaml(structural);
}

}  // namespace

double student_t95(std::size_t dof) {
  static constexpr double kTable[] = {0,      12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060,
                                      2.2622, 2.2281,  2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098,
                                      2.1009, 2.0930,  2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
                                      2.0518, 2.0484,  2.0452, 2.0423};
  if (dof == 0) return std::nan("");
  if (dof <= 30) return kTable[dof];
  const double z = 1.959963984540054, v = static_cast<double>(dof);
  const double z3 = z * z * z, z5 = z3 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v);
}

DieSummary summarize(const std::vector<double>& values) {
  DieSummary s;
  s.count = values.size();
  if (values.empty()) return s;
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(s.count);
  double squares = 0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.stddev = s.count > 1 ? std::sqrt(squares / static_cast<double>(s.count - 1)) : 0.0;
  s.min = sorted.front();
  s.max = sorted.back();
  const double position = 0.05 * static_cast<double>(s.count - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, s.count - 1);
  s.p5 = sorted[below] + (position - static_cast<double>(below)) * (sorted[above] - sorted[below]);
  const double half = s.count > 1 ? student_t95(s.count - 1) * s.stddev / std::sqrt(static_cast<double>(s.count)) : 0.0;
  s.ci95_low = s.mean - half;
  s.ci95_high = s.mean + half;
  return s;
}

PimEvaluator::PimEvaluator(const ExperimentConfig& config, const std::string& checkpoint,
                           std::uint64_t fallback_model_id)
    : checkpoint_(checkpoint) {
  if (!std::filesystem::exists(checkpoint)) throw Error("checkpoint '" + checkpoint + "' does not exist");
  const nn::CheckpointInfo info = nn::read_checkpoint_info(checkpoint);
  model_id_ = info.task_id.empty() ? fallback_model_id : task_id_hash(info.task_id);
  data_ = load_experiment_data(config.data);
  normalization_ = AugmentOptions{};
  normalization_.mean = info.mean;
  normalization_.stddev = info.stddev;
  if (normalization_.mean.empty()) normalization_ = augmentation_for(config.data, data_.train);
  normalization_.crop_padding = 0;
  normalization_.flip = false;

  pim::PimLayerSettings settings = pim::PimLayerSettings::from_config(config.pim);
  settings.adc_bits = config.eval.infer_bits;
  pim::PimLayerFactory factory(config.model, settings);
  model_ = nn::make_resnet(nn::resnet_depth(config.model.arch), data_.train.channels(), data_.train.classes, factory,
                           RngKey{config.seed, model_id_, Purpose::WeightInit, 0});
  try {
    nn::load_checkpoint(checkpoint, *model_, nullptr, nn::MissingState::KeepDefault);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + "\n(does the config's model section match the one the checkpoint was trained with?)");
  }
  for (const nn::StateTensor& s : model_->state())
    checkpoint_state_.emplace_back(s.value->data(), s.value->data() + s.value->size());
}

DieOutcome PimEvaluator::evaluate_die(const EvalConfig& eval, std::uint64_t seed, std::uint64_t die,
                                      const std::atomic<bool>* stop) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<nn::StateTensor> state = model_->state();
  PIMQAT_ASSERT(state.size() == checkpoint_state_.size());
  for (std::size_t i = 0; i < state.size(); ++i)
    std::copy(checkpoint_state_[i].begin(), checkpoint_state_[i].end(), state[i].value->data());

  pim::set_adc_bits(*model_, eval.infer_bits);
  const auto chip = std::make_shared<const pim::Die>(seed, model_id_, die, pim::NonIdeality::from_config(eval));
  pim::attach_die(*model_, chip);
  DieOutcome outcome;
  outcome.die = die;
  try {
    if (eval.bn_calibration > 0) {
      pim::calibrate_batch_norm(*model_, data_.train, normalization_, eval.bn_calibration, eval.batch_size,
                                RngKey{seed, model_id_, Purpose::DataOrder, pim::kCalibrationOrderIndex}, stop);
      outcome.calibration_batches = eval.bn_calibration;
    }
    const nn::EvalStats stats = nn::evaluate(*model_, data_.test, normalization_, eval.batch_size, stop);
    outcome.accuracy = stats.accuracy;
    outcome.loss = stats.loss;
  } catch (...) {
    pim::detach_die(*model_);
    throw;
  }
  const auto layers = pim::pim_layers(*model_);
  double rho = 0;
  for (const auto* layer : layers) rho += layer->running_rho();
  outcome.rho_mean = layers.empty() ? 1.0 : rho / static_cast<double>(layers.size());
  pim::detach_die(*model_);
  outcome.seconds = seconds_since(start);
  return outcome;
}

std::vector<DieOutcome> evaluate_dies(PimEvaluator& evaluator, const ExperimentConfig& config,
                                      const std::atomic<bool>* stop) {
  std::vector<DieOutcome> outcomes;
  for (int i = 0; i < config.eval.dies; ++i) {
    if (stop && stop->load(std::memory_order_relaxed)) break;
    try {
      outcomes.push_back(evaluator.evaluate_die(
          config.eval, config.seed, static_cast<std::uint64_t>(config.eval.first_die) + static_cast<std::uint64_t>(i),
          stop));
    } catch (const Interrupted&) {
      break;  // the die is not counted; the task is stopped and runs again on resume
    }
  }
  return outcomes;
}

TaskResult run_eval_task(const TaskSpec& spec, const TaskContext& ctx) {
  if (spec.depends_on.empty()) throw Error("eval task " + spec.id + " names no training task (depends_on is empty)");
  set_threads(spec.config.train.threads);
  const std::string checkpoint =
      (std::filesystem::path(ctx.checkpoint_dir(spec.depends_on)) / kCheckpointFile).string();
  const std::string key = cache_key(spec.config, checkpoint);
  std::shared_ptr<PimEvaluator> evaluator = ctx.models ? ctx.models->find<PimEvaluator>(key) : nullptr;
  if (!evaluator) {
    evaluator = std::make_shared<PimEvaluator>(spec.config, checkpoint, task_id_hash(spec.depends_on));
    if (ctx.models) ctx.models->insert(key, evaluator);
  }
  const std::vector<DieOutcome> dies = evaluate_dies(*evaluator, spec.config, ctx.stop);
  TaskResult result;
  result.id = spec.id;
  if (static_cast<int>(dies.size()) < spec.config.eval.dies) {
    result.status = kTaskStopped;
    return result;
  }
  result.status = TaskStatus::Done;
  const DieOutcome& first = dies.front();
  result.metrics["accuracy"] = first.accuracy;
  result.metrics["loss"] = first.loss;
  result.metrics["rho_mean"] = first.rho_mean;
  result.metrics["die"] = static_cast<double>(first.die);
  result.metrics["calibration_batches"] = first.calibration_batches;
  double seconds = 0;
  std::vector<double> accuracies;
  for (const auto& d : dies) {
    seconds += d.seconds;
    accuracies.push_back(d.accuracy);
  }
  result.metrics["eval_seconds"] = seconds;
  if (dies.size() > 1) {
    const DieSummary s = summarize(accuracies);
    result.metrics["accuracy_mean"] = s.mean;
    result.metrics["accuracy_std"] = s.stddev;
    result.metrics["accuracy_min"] = s.min;
    result.metrics["accuracy_p5"] = s.p5;
  }
  return result;
}

void write_eval_results(const std::string& path, const std::vector<DieOutcome>& dies, const std::string& checkpoint,
                        const std::string& config_yaml) {
  H5Table table;
  std::vector<std::int64_t> die, batches;
  std::vector<double> accuracy, loss, rho, seconds;
  for (const auto& d : dies) {
    die.push_back(static_cast<std::int64_t>(d.die));
    batches.push_back(d.calibration_batches);
    accuracy.push_back(d.accuracy);
    loss.push_back(d.loss);
    rho.push_back(d.rho_mean);
    seconds.push_back(d.seconds);
  }
  const DieSummary s = summarize(accuracy);
  table.add("die", die);
  table.add("accuracy", accuracy);
  table.add("loss", loss);
  table.add("rho_mean", rho);
  table.add("calibration_batches", batches);
  table.add("seconds", seconds);
  write_h5_atomically(path, [&](H5File& file) {
    file.set_attr_string("kind", "pimqat-eval");
    file.set_attr_string("checkpoint", checkpoint);
    file.set_attr_string("config", config_yaml);
    file.set_attr_int("dies", static_cast<std::int64_t>(s.count));
    file.set_attr_double("accuracy_mean", s.mean);
    file.set_attr_double("accuracy_std", s.stddev);
    file.set_attr_double("accuracy_min", s.min);
    file.set_attr_double("accuracy_max", s.max);
    file.set_attr_double("accuracy_p5", s.p5);
    file.set_attr_double("accuracy_ci95_low", s.ci95_low);
    file.set_attr_double("accuracy_ci95_high", s.ci95_high);
    write_table(file, "dies", table);
  });
}

}  // namespace pimqat::runner
