#pragma once
// Running a sweep (DESIGN.md section 3, docs/runner.md): the coordinator on MPI rank 0 hands tasks
// to workers on ranks 1..P-1 from a dynamic queue (a worker asks for the next task when it is idle),
// journals every finished attempt before it counts as done, retries failed attempts, rebuilds
// results.h5, writes the heartbeat and shows progress. Without MPI (or with one rank) the same
// scheduler runs every task in this process.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runner/journal.h"
#include "runner/rundir.h"
#include "runner/task.h"

namespace pimqat::runner {

// Which task goes to which worker next. Pure bookkeeping (no I/O, no MPI): unit-tested alone.
//
// Order of preference for an idle worker:
//  1. a ready task depending on the model this worker last trained or evaluated (its model cache
//     holds it: consecutive evals of one model are not reloaded);
//  2. the next task without dependencies (train tasks first: they are long and unlock evals);
//  3. ready dependent tasks of other models, oldest group first.
// A task is ready when it has no dependency or its dependency is done. A failed attempt is queued
// again until the task has used its attempts (a reproducible failure, TaskResult::retryable false,
// uses them all at once; --retry-failed still gives it new ones); then the task is failed and every task depending on
// it (directly or not) is skipped. `fits` lets the caller refuse tasks that would not end before
// a deadline; only the first task of each queue is offered to it.
class Scheduler {
 public:
  enum class State { Blocked, Queued, Running, Done, Failed, Skipped };
  enum class Outcome { Done, Retry, Failed, Stopped };
  struct Assignment {
    std::size_t task = 0;  // index into the task list
    int attempt = 1;
  };

  // `journal`: records of earlier runs (attempts are counted from them; Done tasks are not run).
  // Every task gets `1 + retries` attempts in all; with `retry_failed`, tasks that used them up in
  // earlier runs get `1 + retries` more.
  Scheduler(const std::vector<TaskSpec>& tasks, const std::vector<JournalRecord>& journal, int retries,
            bool retry_failed);

  std::optional<Assignment> next(int worker, const std::function<bool(const TaskSpec&)>& fits = {});
  // Records the result of a running task. A kTaskStopped result queues the task again without
  // counting the attempt.
  Outcome complete(std::size_t task, const TaskResult& result);

  const TaskSpec& spec(std::size_t task) const { return tasks_[task]; }
  std::size_t size() const { return tasks_.size(); }
  State state(std::size_t task) const { return state_[task]; }
  int attempts(std::size_t task) const { return attempts_[task]; }
  std::size_t count(State s) const { return counts_[static_cast<std::size_t>(s)]; }
  // True when no task is queued, running or blocked: the sweep is over.
  bool finished() const;

 private:
  void enqueue(std::size_t task, bool front);
  void set_state(std::size_t task, State s);
  void release_dependents(const std::string& id);
  void skip_dependents(const std::string& id);
  std::optional<std::size_t> pop_group(const std::string& key, const std::function<bool(const TaskSpec&)>& fits);

  const std::vector<TaskSpec>& tasks_;
  std::vector<State> state_;
  std::vector<int> attempts_;
  std::vector<int> max_attempts_;
  std::size_t counts_[6] = {};
  std::unordered_map<std::string, std::size_t> index_;
  std::unordered_map<std::string, std::vector<std::size_t>> dependents_;
  std::deque<std::size_t> independent_;
  std::unordered_map<std::string, std::deque<std::size_t>> groups_;  // by depends_on
  std::deque<std::string> group_order_;
  std::unordered_map<std::string, bool> group_listed_;
  std::unordered_map<int, std::string> worker_model_;
};

enum class StopReason { None, Signal, TimeLimit };

struct SweepOptions {
  std::string run_dir;
  SweepSource sweep;                 // rank 0: stored in the run directory
  std::uint64_t sweep_seed = 0;      // DESIGN.md 2.6
  int retries = 2;                   // more attempts after a failed one
  bool retry_failed = false;         // give tasks failed in earlier runs new attempts
  double time_limit_seconds = 0;     // 0: none; otherwise do not start what cannot end in time
  double results_interval_seconds = 60;
  std::size_t results_interval_records = 5000;
  double heartbeat_interval_seconds = 2;
  Durability durability = Durability::Sync;
  std::FILE* progress = nullptr;     // progress lines/bar (the command line passes stderr)
  // Expected seconds of a train or eval task before any task of its kind finished (e.g. the
  // plan's cost model); may be empty. Later estimates use the mean observed duration of the kind.
  std::function<double(const TaskSpec&)> cost_estimate;
  std::size_t model_cache_capacity = 2;
  std::atomic<bool>* stop = nullptr;  // the stop flag to watch; null: signals.h stop_flag()
  // Time budget of one attempt (docs/runner.md "Task time budget"), 0: none. Past it the attempt
  // is asked to stop and, unless it finished, is journaled as a failed attempt naming the budget
  // (then retried or failed like any failed attempt). An attempt still running task_hang_grace
  // seconds later (negative: default_hang_grace, execute.h) is hung: in one process it is
  // journaled as failed and `exit_process(kExitResumable)` is called (the process cannot go on
  // while the task holds it; without exit_process it keeps waiting); under MPI the coordinator
  // journals the attempt as failed, gives the task to another rank and sends nothing more to the
  // silent rank (SweepSummary::lost_ranks).
  double task_timeout_seconds = 0;
  double task_hang_grace_seconds = -1;
  std::function<void(int exit_code)> exit_process;
};

struct SweepSummary {
  int ranks = 1;
  std::size_t total = 0;        // tasks in the sweep
  std::size_t done = 0;         // done, including those of earlier runs
  std::size_t done_before = 0;  // already done when this run started
  std::size_t failed = 0;       // failed after all their attempts
  std::size_t skipped = 0;      // not run because the task they depend on failed
  std::size_t remaining = 0;    // neither done, failed nor skipped (a stopped run)
  std::size_t attempts = 0;     // attempts finished in this run
  std::size_t failed_attempts = 0;
  StopReason stop = StopReason::None;
  double seconds = 0;
  std::string journal_warning;  // a torn last record found at start (and cut away)
  int worker_exit_code = -1;    // workers: the exit code the coordinator sent them; -1 on rank 0
  // Ranks given up because they did not answer within their task's time budget and grace: they
  // cannot take part in MPI_Finalize, so the caller should end the job with MPI_Abort(exit_code()).
  int lost_ranks = 0;
  // 0: all tasks done; kExitTasksFailed: finished with failed tasks; kExitResumable: stopped early.
  // On a worker: the coordinator's code (a worker process should still exit 0: mpirun aborts the
  // job, rank 0 included, when a rank exits non-zero first).
  int exit_code() const;
};

// What rank 0 needs to start: the task list and the sweep it came from.
struct SweepInput {
  std::vector<TaskSpec> tasks;
  SweepSource sweep;
  std::uint64_t seed = 0;  // the sweep seed (DESIGN.md 2.6)
};

// Runs the sweep on every rank: rank 0 (or the only process) calls `load`, prepares the run
// directory, takes its lock and coordinates; other ranks work (worker.h) and return a summary
// holding only `ranks` and the coordinator's exit code. If `load` or the preparation throws on
// rank 0, the workers are released (exit code 1) before the exception propagates. The caller
// initializes MPI (MPI_Init_thread with MPI_THREAD_FUNNELED) when started by mpirun/srun; if MPI
// is not initialized or has one rank, everything runs in this process. Runners for train and eval
// tasks must be registered (execute.h) on every rank. `options.sweep` and `options.sweep_seed`
// are taken from the SweepInput.
SweepSummary run_sweep(const std::function<SweepInput()>& load, const SweepOptions& options);

// The same with a task list in hand (tests, benchmarks): options.sweep and sweep_seed are used as given.
SweepSummary run_sweep_tasks(const std::vector<TaskSpec>& tasks, const SweepOptions& options);

// True when MPI is initialized and has more than one rank.
bool mpi_is_parallel();

}  // namespace pimqat::runner
