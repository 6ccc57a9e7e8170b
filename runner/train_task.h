#pragma once
// The train task of a sweep: train_experiment (runner/training.h) into
// RUN_DIR/checkpoints/<task id>/, keyed by the task identity, resumable at epoch boundaries.
#include "runner/execute.h"
#include "runner/task.h"

namespace pimqat::runner {

// Metrics: test_accuracy, test_loss, train_accuracy, train_loss, epochs, seconds_per_epoch;
// the learning curve goes to TaskResult::curve. Status Stopped when the stop flag interrupted it.
TaskResult run_train_task(const TaskSpec& spec, const TaskContext& ctx);

// Registers the train and eval task runners of this program (call once at start-up, every rank).
void register_pimqat_tasks();

}  // namespace pimqat::runner
