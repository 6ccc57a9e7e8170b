#include "runner/train_task.h"

#include "core/log.h"
#include "runner/eval_task.h"
#include "runner/training.h"

namespace pimqat::runner {

TaskResult run_train_task(const TaskSpec& spec, const TaskContext& ctx) {
  TrainOptions options;
  options.stop = ctx.stop;
  options.task_id = spec.id;
  // Plain progress lines (every 30 s and per epoch) beside the coordinator's own display.
  options.progress = stderr;
  options.progress_style = ProgressStyle::Plain;
  options.progress_label = "train " + spec.id.substr(0, 8) + " ";
  const TrainOutcome outcome = train_experiment(spec.config, ctx.checkpoint_dir(spec.id), options);
  TaskResult result;
  result.id = spec.id;
  if (!outcome.finished) {
    result.status = TaskStatus::Stopped;
    result.message = "stopped after " + std::to_string(outcome.epochs_done) + " epochs; resumes from the checkpoint";
    return result;
  }
  double seconds = 0;
  for (const nn::EpochStats& e : outcome.history) {
    result.curve.push_back({e.epoch, e.lr, e.train_loss, e.train_accuracy, e.test_loss, e.test_accuracy, e.seconds});
    seconds += e.seconds;
  }
  if (!outcome.history.empty()) {
    const nn::EpochStats& last = outcome.history.back();
    result.metrics["test_accuracy"] = last.test_accuracy;
    result.metrics["test_loss"] = last.test_loss;
    result.metrics["train_accuracy"] = last.train_accuracy;
    result.metrics["train_loss"] = last.train_loss;
    result.metrics["seconds_per_epoch"] = seconds / static_cast<double>(outcome.history.size());
  }
  result.metrics["epochs"] = outcome.epochs_done;
  return result;
}

void register_pimqat_tasks() {
  register_task_runner(TaskKind::Train, run_train_task);
  register_task_runner(TaskKind::Eval, run_eval_task);
}

}  // namespace pimqat::runner
