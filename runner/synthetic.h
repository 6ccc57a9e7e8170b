#pragma once
// The built-in synthetic task kind: tests and benchmarks of the runner without training.
// An attempt sleeps spec.synthetic.duration_seconds (waking early when the stop flag is set, which
// makes it a stopped attempt), then fails if always_fail, or with probability failure_probability
// drawn from the keyed stream (sweep seed, task id hash, Purpose::Synthetic, attempt) — so whether
// attempt k of a task fails is the same on every rank and in every run — and otherwise reports
// metric "value" = spec.synthetic.result.
#include "runner/execute.h"

namespace pimqat::runner {

TaskResult run_synthetic_task(const TaskSpec& spec, const TaskContext& ctx);

// The uniform [0, 1) draw that decides whether attempt `attempt` of the task fails (fails iff
// draw < failure_probability).
double synthetic_failure_draw(std::uint64_t sweep_seed, const std::string& task_id, int attempt);

}  // namespace pimqat::runner
