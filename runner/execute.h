#pragma once
// Running one task attempt on whichever rank holds it (DESIGN.md section 3). Synthetic tasks are
// built in; train and eval tasks are provided by other parts of pimqat, which register a runner
// function at start-up so that the runner never includes the training or evaluation code.
#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "runner/task.h"

namespace pimqat::runner {

// An attempt interrupted by the stop flag (SIGINT/SIGTERM, time limit) after it saved what it could
// (a train task: its epoch checkpoint). It is not a finished attempt: it is not journaled, does not
// count against the retry budget, and the task runs again on resume.
inline constexpr TaskStatus kTaskStopped = TaskStatus::Stopped;

// Alternative to returning kTaskStopped: a task runner may throw this after checkpointing.
struct TaskStopped : std::exception {
  const char* what() const noexcept override { return "task stopped by request; resumable"; }
};

// Loaded models kept by one worker between tasks, so that consecutive evaluations of one trained
// model load it once. Least-recently-used eviction; values are shared_ptr<T> of any T.
class ModelCache {
 public:
  explicit ModelCache(std::size_t capacity = 2) : capacity_(capacity) {}

  // The model stored under `key` as shared_ptr<T>, or nullptr when absent (or stored as another type).
  template <class T>
  std::shared_ptr<T> find(const std::string& key) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first != key) continue;
      entries_.splice(entries_.begin(), entries_, it);  // most recently used first
      if (const auto* p = std::any_cast<std::shared_ptr<T>>(&entries_.front().second)) return *p;
      return nullptr;
    }
    return nullptr;
  }
  template <class T>
  void insert(const std::string& key, std::shared_ptr<T> model) {
    erase(key);
    entries_.emplace_front(key, std::any(std::move(model)));
    while (entries_.size() > capacity_) entries_.pop_back();
  }
  void erase(const std::string& key) {
    entries_.remove_if([&](const auto& e) { return e.first == key; });
  }
  void clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  std::size_t capacity_;
  std::list<std::pair<std::string, std::any>> entries_;
};

// Everything a task attempt may use besides its spec.
struct TaskContext {
  std::string run_dir;              // the sweep's run directory
  int attempt = 1;                  // 1-based attempt number of this task
  std::uint64_t sweep_seed = 0;     // the sweep seed (DESIGN.md 2.6)
  ModelCache* models = nullptr;     // this worker's model cache (may be null)
  const std::atomic<bool>* stop = nullptr;  // set on SIGINT/SIGTERM or at the time limit
  std::string host;                 // host name of the executing rank
  int rank = 0;                     // MPI rank of the executing process (0 in single-process mode)
  // Time budget of one attempt (`pimqat sweep --task-timeout`, docs/runner.md), 0: none. When it
  // passes, execute_task sets the stop flag the task sees; an attempt that then returns anything
  // but Done is a failed attempt whose message names the budget. An attempt still running
  // hang_grace_seconds after that ignores its stop flag: on_hung (if set) is called once, from
  // another thread, while the task is still inside its runner function; execute_task does not
  // return while on_hung runs (on_hung may end the process).
  double time_budget_seconds = 0;
  double hang_grace_seconds = 0;
  std::function<void(double elapsed_seconds)> on_hung;

  bool stop_requested() const { return stop && stop->load(std::memory_order_relaxed); }
  // RUN_DIR/checkpoints/<train_id> (not created here).
  std::string checkpoint_dir(const std::string& train_id) const;
  // RUN_DIR/logs (not created here).
  std::string log_dir() const;
};

// A train or eval task implementation. It returns its metrics (and curve), throws on failure (any
// std::exception becomes a failed attempt with its message), and when ctx.stop_requested() it
// checkpoints and returns status kTaskStopped (or throws TaskStopped).
using TaskRunnerFn = TaskResult (*)(const TaskSpec& spec, const TaskContext& ctx);

// Registers the implementation of a kind (Train or Eval) for this process; call at start-up on
// every rank, before running a sweep. Registering Synthetic replaces the built-in runner.
void register_task_runner(TaskKind kind, TaskRunnerFn fn);
bool has_task_runner(TaskKind kind);

// Runs one attempt of `spec`. Never throws for a failure of the task itself: an exception from the
// task becomes a result with status Failed and the exception's message. id, attempt, host,
// start_time and seconds of the result are filled here. Throws pimqat::Error if no runner is
// registered for the task's kind (a program set-up error, not a task failure).
TaskResult execute_task(const TaskSpec& spec, const TaskContext& ctx);

// The grace after a time budget before an attempt that has not returned counts as hung: a quarter
// of the budget, at least 60 s (an evaluation polls its stop flag once per die).
double default_hang_grace(double budget_seconds);

// The message of an attempt failed by its time budget: "... time budget of 30 s (--task-timeout) ...".
std::string time_budget_message(double budget_seconds, double elapsed_seconds, bool stopped);

// The 64-bit task identity used as an RNG key: the id's 16 hex digits, or (for ids that are not
// 16 hex digits) a 64-bit hash of the id text.
std::uint64_t task_id_hash(const std::string& id);

// This machine's host name.
std::string host_name();

}  // namespace pimqat::runner
