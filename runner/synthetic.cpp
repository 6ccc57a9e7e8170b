#include "runner/synthetic.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "core/error.h"
#include "core/rng.h"

namespace pimqat::runner {

double synthetic_failure_draw(std::uint64_t sweep_seed, const std::string& task_id, int attempt) {
  RandomStream stream(RngKey{sweep_seed, task_id_hash(task_id), Purpose::Synthetic,
                             static_cast<std::uint64_t>(attempt)});
  return stream.uniform_double();
}

TaskResult run_synthetic_task(const TaskSpec& spec, const TaskContext& ctx) {
  const SyntheticSpec& s = spec.synthetic;
  TaskResult result;
  if (s.duration_seconds > 0) {
    // Sleep in slices so that a stop request is noticed within 20 ms.
    const auto end = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(s.duration_seconds));
    while (true) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= end) break;
      if (ctx.stop_requested()) {
        result.status = kTaskStopped;
        result.message = "stopped before the end of its duration";
        return result;
      }
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          end - now, std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::milliseconds(20))));
    }
  }
  if (s.always_fail) throw Error("synthetic task " + spec.id + ": always_fail is set");
  if (s.failure_probability > 0) {
    const double draw = synthetic_failure_draw(ctx.sweep_seed, spec.id, ctx.attempt);
    if (draw < s.failure_probability) {
      char text[160];
      std::snprintf(text, sizeof text, "synthetic task %s: random failure of attempt %d (draw %.6f < p = %g)",
                    spec.id.c_str(), ctx.attempt, draw, s.failure_probability);
      throw Error(text);
    }
  }
  result.status = TaskStatus::Done;
  result.metrics["value"] = s.result;
  return result;
}

}  // namespace pimqat::runner
