#pragma once
// Tasks: what a sweep expands into (DESIGN.md section 5) and what a worker runs.
// A task is fully described by its resolved parameters; its identity is a hash of their
// canonical encoding, so the same task has the same id on every machine and in every run.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/config.h"

namespace pimqat::runner {

enum class TaskKind { Train, Eval, Synthetic };

// The built-in synthetic task kind: lets the runner be tested and benchmarked without training.
struct SyntheticSpec {
  double duration_seconds = 0.0;     // sleeps this long
  double failure_probability = 0.0;  // per attempt, drawn from the keyed RNG (task id, attempt)
  double result = 0.0;               // reported as metric "value"
  bool always_fail = false;          // throws on every attempt (for failure tests)
};

struct TaskSpec {
  std::string id;         // 16 lowercase hex digits: hash of `canonical`
  TaskKind kind = TaskKind::Train;
  std::string canonical;  // canonical encoding of the resolved parameters (sorted keys, exact numbers)
  std::string depends_on; // id of the train task an eval task needs; empty if none
  ExperimentConfig config;  // resolved configuration (eval tasks: eval.first_die = die, eval.dies = 1)
  SyntheticSpec synthetic;
  std::map<std::string, std::string> axes;  // axis path -> value text, for the results tables
  int replicate = 0;
};

// One per-epoch row of a training curve.
struct EpochRecord {
  int epoch = 0;
  double lr = 0, train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0, seconds = 0;
};

// Stopped: interrupted by a stop request after saving what it could; not journaled, runs again on resume.
enum class TaskStatus { Done = 0, Failed = 1, Stopped = 2 };

struct TaskResult {
  std::string id;
  TaskStatus status = TaskStatus::Done;
  int attempt = 1;
  std::string message;  // error message of a failed attempt
  // False for a failure the same inputs reproduce (pimqat::ReproducibleError, e.g. a diverged
  // training): the task fails at once instead of using its remaining attempts.
  bool retryable = true;
  std::map<std::string, double> metrics;  // e.g. "accuracy", "loss", "rho_mean"
  std::vector<EpochRecord> curve;         // training tasks
  std::string host;
  double start_time = 0;  // seconds since the epoch (wall clock)
  double seconds = 0;     // duration
};

}  // namespace pimqat::runner
