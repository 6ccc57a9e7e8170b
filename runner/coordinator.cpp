#include "runner/coordinator.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "runner/execute.h"
#include "runner/messages.h"
#include "runner/results.h"
#include "runner/signals.h"
#include "runner/status.h"
#include "runner/worker.h"

namespace pimqat::runner {

// ============================================================================================
// Scheduler
// ============================================================================================

Scheduler::Scheduler(const std::vector<TaskSpec>& tasks, const std::vector<JournalRecord>& journal, int retries,
                     bool retry_failed)
    : tasks_(tasks),
      state_(tasks.size(), State::Blocked),
      attempts_(tasks.size(), 0),
      max_attempts_(tasks.size(), 1 + std::max(0, retries)) {
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    index_.emplace(tasks[i].id, i);
    if (!tasks[i].depends_on.empty()) dependents_[tasks[i].depends_on].push_back(i);
  }
  counts_[static_cast<std::size_t>(State::Blocked)] = tasks.size();
  std::vector<bool> done(tasks.size(), false);
  for (const JournalRecord& r : journal) {
    const auto it = index_.find(r.id);
    if (it == index_.end()) continue;  // not a task of this sweep (cannot happen with a checked run dir)
    attempts_[it->second] = std::max(attempts_[it->second], r.attempt);
    if (r.status == TaskStatus::Done) done[it->second] = true;
    // A reproducible failure used up the task's attempts when it happened.
    if (r.status == TaskStatus::Failed && !r.retryable)
      max_attempts_[it->second] = std::min(max_attempts_[it->second], r.attempt);
  }
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (retry_failed && !done[i] && attempts_[i] >= max_attempts_[i]) max_attempts_[i] = attempts_[i] + 1 + std::max(0, retries);
    if (done[i]) set_state(i, State::Done);
    else if (attempts_[i] >= max_attempts_[i]) set_state(i, State::Failed);
  }
  // Tasks whose dependency is done (or that have none) are ready; those of failed ones are skipped.
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (state_[i] == State::Failed) skip_dependents(tasks[i].id);
  }
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (state_[i] != State::Blocked) continue;
    const std::string& dep = tasks[i].depends_on;
    if (dep.empty()) enqueue(i, false);
    else if (const auto it = index_.find(dep); it == index_.end() || state_[it->second] == State::Done) enqueue(i, false);
  }
}

void Scheduler::set_state(std::size_t task, State s) {
  --counts_[static_cast<std::size_t>(state_[task])];
  state_[task] = s;
  ++counts_[static_cast<std::size_t>(s)];
}

void Scheduler::enqueue(std::size_t task, bool front) {
  set_state(task, State::Queued);
  const std::string& dep = tasks_[task].depends_on;
  if (dep.empty()) {
    front ? independent_.push_front(task) : independent_.push_back(task);
    return;
  }
  auto& group = groups_[dep];
  front ? group.push_front(task) : group.push_back(task);
  if (!group_listed_[dep]) {
    group_listed_[dep] = true;
    group_order_.push_back(dep);
  }
}

void Scheduler::release_dependents(const std::string& id) {
  const auto it = dependents_.find(id);
  if (it == dependents_.end()) return;
  for (std::size_t d : it->second)
    if (state_[d] == State::Blocked) enqueue(d, false);
}

void Scheduler::skip_dependents(const std::string& id) {
  std::vector<std::string> stack{id};
  while (!stack.empty()) {
    const std::string cur = stack.back();
    stack.pop_back();
    const auto it = dependents_.find(cur);
    if (it == dependents_.end()) continue;
    for (std::size_t d : it->second) {
      if (state_[d] == State::Done || state_[d] == State::Skipped) continue;
      PIMQAT_ASSERT(state_[d] != State::Running);
      if (state_[d] == State::Queued) {  // drop it from its group
        auto& group = groups_[cur];
        group.erase(std::remove(group.begin(), group.end(), d), group.end());
      }
      set_state(d, State::Skipped);
      stack.push_back(tasks_[d].id);
    }
  }
}

std::optional<std::size_t> Scheduler::pop_group(const std::string& key,
                                                const std::function<bool(const TaskSpec&)>& fits) {
  const auto it = groups_.find(key);
  if (it == groups_.end() || it->second.empty()) return std::nullopt;
  const std::size_t task = it->second.front();
  if (fits && !fits(tasks_[task])) return std::nullopt;
  it->second.pop_front();
  return task;
}

std::optional<Scheduler::Assignment> Scheduler::next(int worker, const std::function<bool(const TaskSpec&)>& fits) {
  std::optional<std::size_t> pick;
  if (const auto last = worker_model_.find(worker); last != worker_model_.end()) pick = pop_group(last->second, fits);
  if (!pick && !independent_.empty() && (!fits || fits(tasks_[independent_.front()]))) {
    pick = independent_.front();
    independent_.pop_front();
  }
  if (!pick) {
    for (auto it = group_order_.begin(); it != group_order_.end() && !pick;) {
      if (groups_[*it].empty()) {  // exhausted for good unless a retry comes back: re-listed then
        group_listed_[*it] = false;
        it = group_order_.erase(it);
        continue;
      }
      pick = pop_group(*it, fits);
      ++it;
    }
  }
  if (!pick) return std::nullopt;
  const std::size_t task = *pick;
  set_state(task, State::Running);
  const TaskSpec& spec = tasks_[task];
  worker_model_[worker] = spec.depends_on.empty() ? spec.id : spec.depends_on;
  return Assignment{task, attempts_[task] + 1};
}

Scheduler::Outcome Scheduler::complete(std::size_t task, const TaskResult& result) {
  PIMQAT_ASSERT(task < tasks_.size() && state_[task] == State::Running);
  if (result.status == kTaskStopped) {
    enqueue(task, true);
    return Outcome::Stopped;
  }
  attempts_[task] = std::max(attempts_[task], result.attempt);
  if (result.status == TaskStatus::Done) {
    set_state(task, State::Done);
    release_dependents(tasks_[task].id);
    return Outcome::Done;
  }
  if (!result.retryable) max_attempts_[task] = std::min(max_attempts_[task], attempts_[task]);
  if (attempts_[task] < max_attempts_[task]) {
    enqueue(task, false);
    return Outcome::Retry;
  }
  set_state(task, State::Failed);
  skip_dependents(tasks_[task].id);
  return Outcome::Failed;
}

bool Scheduler::finished() const {
  return count(State::Queued) == 0 && count(State::Running) == 0 && count(State::Blocked) == 0;
}

// ============================================================================================
// Coordinator
// ============================================================================================

int SweepSummary::exit_code() const {
  if (worker_exit_code >= 0) return worker_exit_code;
  if (stop != StopReason::None || remaining > 0) return kExitResumable;
  if (failed > 0 || skipped > 0) return kExitTasksFailed;
  return 0;
}

bool mpi_is_parallel() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return false;
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size > 1;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// State shared by the single-process and MPI coordinators: the scheduler, the journal, results,
// heartbeat and progress.
class Coordinator {
 public:
  Coordinator(const std::vector<TaskSpec>& tasks, const SweepOptions& options, int ranks)
      : tasks_(tasks), options_(options), ranks_(ranks), started_(Clock::now()), start_unix_(unix_time_now()) {
    for (const TaskSpec& t : tasks)
      if (!has_task_runner(t.kind))
        throw Error("this program cannot run " + std::string(task_kind_name(t.kind)) + " tasks (task " + t.id +
                    "): no runner is registered for the kind");
    prepare_run_directory(options.run_dir, options.sweep, tasks);
    lock_ = std::make_unique<RunLock>(options.run_dir);
    if (const int n = remove_stale_temporaries(options.run_dir); n > 0)
      log_info("removed " + std::to_string(n) + " temporary file(s) left by a killed run");
    JournalReplay replay = replay_journal(journal_path(options.run_dir));
    summary_.journal_warning = replay.scan.warning;
    if (!replay.scan.warning.empty()) log_warn(replay.scan.warning);
    journal_ = std::make_unique<JournalWriter>(journal_path(options.run_dir), replay.scan, options.durability);
    records_ = std::move(replay.records);
    scheduler_ = std::make_unique<Scheduler>(tasks, records_, options.retries, options.retry_failed);
    for (const JournalRecord& r : records_) {
      if (r.status == TaskStatus::Done) observe_duration(r.kind, r.seconds);
      hosts_.insert(r.host);
    }
    for (const TaskSpec& t : tasks) expanded_.push_back(expanded_task(t));
    summary_.ranks = ranks;
    summary_.total = tasks.size();
    summary_.done_before = scheduler_->count(Scheduler::State::Done);
    to_run_ = tasks.size() - summary_.done_before - scheduler_->count(Scheduler::State::Failed) -
              scheduler_->count(Scheduler::State::Skipped);
    monitor_ = std::make_unique<StopMonitor>(options.stop ? options.stop : &stop_flag(), options.time_limit_seconds,
                                         heartbeat_path(options.run_dir), options.heartbeat_interval_seconds);
    progress_ = std::make_unique<Progress>("sweep", static_cast<std::int64_t>(to_run_), options.progress, "tasks", 30.0);
    log_info("sweep " + options.run_dir + ": " + std::to_string(tasks.size()) + " tasks, " +
             std::to_string(summary_.done_before) + " already done, " + std::to_string(to_run_) + " to run on " +
             std::to_string(std::max(1, ranks - 1)) + (ranks > 1 ? " worker rank(s)" : " process"));
    publish_heartbeat("running");
  }

  Scheduler& scheduler() { return *scheduler_; }
  StopMonitor& monitor() { return *monitor_; }
  const std::atomic<bool>* task_stop() const { return monitor_->task_stop(); }
  bool stopping() const { return monitor_->signalled() || monitor_->deadline_passed(); }

  // Whether a task can end before the deadline. Its expected duration: a synthetic task's own
  // duration; otherwise the mean observed duration of its kind (this run and earlier ones), else
  // options.cost_estimate, else 0. A train task may start even if it cannot end when nothing has
  // started yet in this run: it checkpoints every epoch, so the run still makes progress (a job
  // with a time limit shorter than one task must not be requeued forever without advancing).
  bool fits(const TaskSpec& spec) const {
    if (!monitor_->has_deadline()) return true;
    double estimate = 0;
    if (spec.kind == TaskKind::Synthetic)
      estimate = spec.synthetic.duration_seconds;
    else if (const auto it = durations_.find(spec.kind); it != durations_.end() && it->second.second > 0)
      estimate = it->second.first / static_cast<double>(it->second.second);
    else if (options_.cost_estimate)
      estimate = std::max(0.0, options_.cost_estimate(spec));
    if (estimate <= monitor_->seconds_left()) return true;
    return spec.kind == TaskKind::Train && attempts_started_ == 0 && monitor_->seconds_left() > 0;
  }

  std::optional<Scheduler::Assignment> next(int worker) {
    if (stopping()) return std::nullopt;
    auto a = scheduler_->next(worker, [this](const TaskSpec& s) { return fits(s); });
    if (a) ++attempts_started_;
    if (a) running_[a->task] = RunningTask{tasks_[a->task].id, std::string(task_kind_name(tasks_[a->task].kind)),
                                           worker, worker_host(worker), unix_time_now(), a->attempt};
    return a;
  }

  // Journals the finished attempts of a batch (one write, one sync), then updates the schedule.
  void complete(const std::vector<std::pair<std::size_t, TaskResult>>& batch) {
    std::vector<JournalRecord> records;
    for (const auto& [task, result] : batch)
      if (result.status != kTaskStopped) records.push_back(make_journal_record(tasks_[task], result));
    journal_->append(records);  // a task counts as done only after this returns
    for (const auto& [task, result] : batch) {
      running_.erase(task);
      hosts_.insert(result.host);
      const Scheduler::Outcome outcome = scheduler_->complete(task, result);
      if (outcome == Scheduler::Outcome::Stopped) continue;
      ++summary_.attempts;
      if (result.status == TaskStatus::Done) observe_duration(tasks_[task].kind, result.seconds);
      else {
        ++summary_.failed_attempts;
        log_warn("task " + tasks_[task].id + " (" + std::string(task_kind_name(tasks_[task].kind)) + ") attempt " +
                 std::to_string(result.attempt) + " failed on " + result.host + ": " + result.message +
                 (outcome == Scheduler::Outcome::Retry ? " (will retry)"
                  : !result.retryable                  ? " (not retried: the same inputs reproduce this failure)"
                                                       : " (no attempts left)"));
      }
    }
    records_.insert(records_.end(), std::make_move_iterator(records.begin()), std::make_move_iterator(records.end()));
    records_since_results_ += records.size();
  }

  // Progress, heartbeat, periodic results.
  void tick() {
    const auto now = Clock::now();
    if (now - last_tick_ < std::chrono::milliseconds(100)) return;
    last_tick_ = now;
    const std::size_t finished_now = scheduler_->count(Scheduler::State::Done) +
                                     scheduler_->count(Scheduler::State::Failed) +
                                     scheduler_->count(Scheduler::State::Skipped) - finished_at_start();
    progress_->update(static_cast<std::int64_t>(finished_now), counts_text());
    if (now - last_heartbeat_ >= std::chrono::duration<double>(std::min(1.0, options_.heartbeat_interval_seconds))) {
      publish_heartbeat(stopping() ? "stopping" : "running");
      last_heartbeat_ = now;
    }
    // Rebuilds never take more than a tenth of the time (they grow with the journal).
    const double since = seconds_since(last_results_);
    if (records_since_results_ > 0 && since >= 10 * last_rebuild_seconds_ &&
        (since >= options_.results_interval_seconds || records_since_results_ >= options_.results_interval_records))
      write_results_now();
  }

  // The summary as of now; `time_limited`: the time limit refused the tasks still queued.
  SweepSummary summary(bool time_limited) const {
    SweepSummary s = summary_;
    s.done = scheduler_->count(Scheduler::State::Done);
    s.failed = scheduler_->count(Scheduler::State::Failed);
    s.skipped = scheduler_->count(Scheduler::State::Skipped);
    s.remaining = s.total - s.done - s.failed - s.skipped;
    if (monitor_->signalled()) s.stop = StopReason::Signal;
    else if (s.remaining > 0 && (time_limited || monitor_->deadline_passed())) s.stop = StopReason::TimeLimit;
    s.seconds = seconds_since(started_);
    return s;
  }

  SweepSummary finish(bool time_limited) {
    summary_ = summary(time_limited);
    write_results_now();
    const char* state = summary_.remaining > 0 ? "stopped" : "finished";
    if (summary_.remaining == 0) progress_->finish(counts_text());
    Heartbeat hb = heartbeat(state);
    monitor_->write_heartbeat_now(hb);
    return summary_;
  }

  // An attempt that did not return within its time budget and grace (`where`: "in this process" or
  // "on rank 3 (host)"): journaled as a failed attempt naming the budget, then retried or failed
  // like any other. The caller must not complete it again.
  void abandon(std::size_t task, int attempt, double elapsed_seconds, const std::string& where) {
    TaskResult result;
    result.id = tasks_[task].id;
    result.status = TaskStatus::Failed;
    result.attempt = attempt;
    const auto it = running_.find(task);
    result.host = it != running_.end() ? it->second.host : host_name();
    result.start_time = it != running_.end() ? it->second.since : unix_time_now() - elapsed_seconds;
    result.seconds = elapsed_seconds;
    result.message = time_budget_message(options_.task_timeout_seconds, elapsed_seconds, false) + " " + where;
    log(LogLevel::Error, "task " + result.id + " attempt " + std::to_string(attempt) + " " + result.message);
    complete({{task, std::move(result)}});
  }

  // Ends a single-process run whose task hangs: results and heartbeat as of now (the hung
  // attempt already journaled by abandon), then options.exit_process(kExitResumable).
  void stop_after_hang() {
    write_results_now();
    monitor_->write_heartbeat_now(heartbeat("stopped"));
    log(LogLevel::Error, "the hung task holds this process: it ends now (exit status " +
                             std::to_string(kExitResumable) + "); run the same command to resume");
    if (options_.exit_process) options_.exit_process(kExitResumable);
  }

  void set_lost_ranks(int n) { summary_.lost_ranks = n; }

  void set_worker_host(int rank, const std::string& host) {
    worker_hosts_[rank] = host;
    hosts_.insert(host);
  }

 private:
  std::size_t finished_at_start() const { return summary_.total - to_run_; }
  std::string worker_host(int rank) const {
    const auto it = worker_hosts_.find(rank);
    return it == worker_hosts_.end() ? host_name() : it->second;
  }
  void observe_duration(TaskKind kind, double seconds) {
    auto& d = durations_[kind];
    d.first += seconds;
    ++d.second;
  }
  std::string counts_text() const {
    return "done " + std::to_string(scheduler_->count(Scheduler::State::Done)) + "/" + std::to_string(tasks_.size()) +
           ", failed " + std::to_string(scheduler_->count(Scheduler::State::Failed)) + ", running " +
           std::to_string(scheduler_->count(Scheduler::State::Running));
  }
  Heartbeat heartbeat(const std::string& state) const {
    Heartbeat h;
    h.pid = ::getpid();
    h.host = host_name();
    h.ranks = ranks_;
    h.started = start_unix_;
    h.interval = options_.heartbeat_interval_seconds;
    h.state = state;
    h.max_attempts = 1 + options_.retries;
    h.total = static_cast<std::int64_t>(tasks_.size());
    h.done = static_cast<std::int64_t>(scheduler_->count(Scheduler::State::Done));
    h.failed = static_cast<std::int64_t>(scheduler_->count(Scheduler::State::Failed));
    h.skipped = static_cast<std::int64_t>(scheduler_->count(Scheduler::State::Skipped));
    h.running = static_cast<std::int64_t>(running_.size());
    h.done_at_start = static_cast<std::int64_t>(summary_.done_before);
    h.task_timeout = options_.task_timeout_seconds;
    for (const auto& [task, r] : running_) h.tasks.push_back(r);
    return h;
  }
  void publish_heartbeat(const std::string& state) { monitor_->set_heartbeat(heartbeat(state)); }

  void write_results_now() {
    const auto t0 = Clock::now();
    ResultsInput input;
    // The task list and the records are lent to the writer (moved, not copied) and taken back.
    input.tasks = std::move(expanded_);
    input.records = std::move(records_);
    input.max_attempts = 1 + options_.retries;
    input.status.resize(tasks_.size());
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      switch (scheduler_->state(i)) {
        case Scheduler::State::Done: input.status[i] = "done"; break;
        case Scheduler::State::Failed: input.status[i] = "failed"; break;
        case Scheduler::State::Skipped: input.status[i] = "skipped"; break;
        case Scheduler::State::Running: input.status[i] = "running"; break;
        default: input.status[i] = "pending"; break;
      }
    }
    input.sweep_text = options_.sweep.text;
    input.hosts.assign(hosts_.begin(), hosts_.end());
    input.hosts.erase(std::remove(input.hosts.begin(), input.hosts.end(), std::string()), input.hosts.end());
    try {
      write_results(results_path(options_.run_dir), input);
    } catch (const std::exception& e) {
      // The journal holds every result; a failed rebuild is retried at the next interval.
      log_warn(std::string("results.h5 not rebuilt: ") + e.what());
    }
    expanded_ = std::move(input.tasks);
    records_ = std::move(input.records);
    records_since_results_ = 0;
    last_results_ = Clock::now();
    last_rebuild_seconds_ = seconds_since(t0);
  }

  const std::vector<TaskSpec>& tasks_;
  const SweepOptions& options_;
  int ranks_;
  Clock::time_point started_;
  double start_unix_;
  std::unique_ptr<RunLock> lock_;
  std::unique_ptr<JournalWriter> journal_;
  std::vector<JournalRecord> records_;
  std::vector<ExpandedTask> expanded_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<StopMonitor> monitor_;
  std::unique_ptr<Progress> progress_;
  std::map<TaskKind, std::pair<double, std::size_t>> durations_;  // sum of seconds, count
  std::map<std::size_t, RunningTask> running_;
  std::map<int, std::string> worker_hosts_;
  std::set<std::string> hosts_;
  SweepSummary summary_;
  std::size_t to_run_ = 0;
  std::size_t attempts_started_ = 0;  // in this run
  std::size_t records_since_results_ = 0;
  double last_rebuild_seconds_ = 0;
  Clock::time_point last_tick_{};
  Clock::time_point last_heartbeat_ = Clock::now();
  Clock::time_point last_results_ = Clock::now();
};

double hang_grace(const SweepOptions& options) {
  return options.task_hang_grace_seconds >= 0 ? options.task_hang_grace_seconds
                                             : default_hang_grace(options.task_timeout_seconds);
}

SweepSummary run_single_process(const std::vector<TaskSpec>& tasks, const SweepOptions& options) {
  Coordinator coordinator(tasks, options, 1);
  ModelCache cache(options.model_cache_capacity);
  TaskContext ctx;
  ctx.run_dir = options.run_dir;
  ctx.sweep_seed = options.sweep_seed;
  ctx.models = &cache;
  ctx.stop = coordinator.task_stop();
  ctx.host = host_name();
  ctx.rank = 0;
  ctx.time_budget_seconds = std::max(0.0, options.task_timeout_seconds);
  ctx.hang_grace_seconds = hang_grace(options);
  bool time_limited = false;
  while (!coordinator.stopping()) {
    const auto assignment = coordinator.next(0);
    if (!assignment) {
      // Nothing runs in this process between tasks: queued tasks left over were refused by the time limit.
      time_limited = coordinator.scheduler().count(Scheduler::State::Queued) > 0;
      break;
    }
    coordinator.tick();
    ctx.attempt = assignment->attempt;
    bool abandoned = false;  // written by the watch thread while this one is inside execute_task
    if (ctx.time_budget_seconds > 0)
      ctx.on_hung = [&coordinator, &abandoned, task = assignment->task, attempt = assignment->attempt](double elapsed) {
        abandoned = true;
        coordinator.abandon(task, attempt, elapsed, "in this process");
        coordinator.stop_after_hang();
      };
    TaskResult result = execute_task(coordinator.scheduler().spec(assignment->task), ctx);
    if (abandoned) {
      // Without exit_process the hung attempt came back after all: it is journaled as failed already.
      log_warn("task " + result.id + " attempt " + std::to_string(result.attempt) +
               " returned after it was given up; its result is discarded");
    } else {
      coordinator.complete({{assignment->task, std::move(result)}});
    }
    coordinator.tick();
  }
  return coordinator.finish(time_limited);
}

void send_bytes(const std::string& bytes, int rank, int tag) {
  MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, rank, tag, MPI_COMM_WORLD);
}

void drain_and_release(std::map<int, std::size_t>& busy, std::vector<int>& idle, int& active, int exit_code);

SweepSummary run_mpi_coordinator(const std::function<SweepInput()>& load, const SweepOptions& base, int ranks) {
  SweepInput input;
  SweepOptions options = base;
  std::unique_ptr<Coordinator> owned;  // after `input` and `options`, which it refers to
  try {
    input = load();
    options.sweep = input.sweep;
    options.sweep_seed = input.seed;
    owned = std::make_unique<Coordinator>(input.tasks, options, ranks);
  } catch (...) {
    // The workers are waiting for work: release them before reporting the error.
    const std::string stop = serialize(StopMessage{1});
    for (int r = 1; r < ranks; ++r) send_bytes(stop, r, kTagStop);
    throw;
  }
  Coordinator& coordinator = *owned;
  std::vector<int> idle;
  std::map<int, std::size_t> busy;  // rank -> task index
  // rank -> (start, attempt) of its task; ranks given up for not answering within the time budget
  std::map<int, std::pair<Clock::time_point, int>> busy_since;
  std::set<int> lost;
  const double hung_after = options.task_timeout_seconds > 0 ? options.task_timeout_seconds + hang_grace(options) : 0;
  int active = ranks - 1;
  PollBackoff backoff;
  bool time_limited = false;
  std::vector<std::pair<std::size_t, TaskResult>> batch;
  std::string buffer;

  const auto release_all_idle = [&](int exit_code) {
    const std::string stop = serialize(StopMessage{exit_code});
    for (int r : idle) send_bytes(stop, r, kTagStop);
    active -= static_cast<int>(idle.size());
    idle.clear();
  };

  try {
    while (active > 0) {
      // Receive everything that has arrived.
      batch.clear();
      int flag = 0;
      MPI_Status status;
      while (MPI_Iprobe(MPI_ANY_SOURCE, kTagWorker, MPI_COMM_WORLD, &flag, &status), flag) {
        int bytes = 0;
        MPI_Get_count(&status, MPI_BYTE, &bytes);
        buffer.resize(static_cast<std::size_t>(bytes));
        MPI_Recv(buffer.data(), bytes, MPI_BYTE, status.MPI_SOURCE, kTagWorker, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        const int rank = status.MPI_SOURCE;
        const auto it = busy.find(rank);
        if (lost.count(rank)) {
          // A rank given up comes back: its attempt is journaled as failed already; it works again.
          const WorkerMessage late = deserialize_worker_message(buffer);
          log_warn("rank " + std::to_string(rank) + " answered after it was given up" +
                   (late.type == WorkerMessage::Type::Result
                        ? " (task " + late.result.id + " attempt " + std::to_string(late.result.attempt) +
                              "; the late result is discarded)"
                        : std::string()));
          lost.erase(rank);
          ++active;
        } else if (it != busy.end()) {
          WorkerMessage message = deserialize_worker_message(buffer);
          batch.emplace_back(it->second, std::move(message.result));
          busy.erase(it);
          busy_since.erase(rank);
        } else {
          coordinator.set_worker_host(rank, deserialize_worker_message(buffer).host);  // hello
        }
        idle.push_back(rank);
      }
      if (!batch.empty()) coordinator.complete(batch);

      // Hand out work.
      if (coordinator.stopping()) {
        release_all_idle(coordinator.summary(false).exit_code());
      } else {
        for (auto it = idle.begin(); it != idle.end();) {
          const auto assignment = coordinator.next(*it);
          if (!assignment) break;
          send_bytes(serialize(TaskAssignment{coordinator.scheduler().spec(assignment->task), assignment->attempt,
                                              options.sweep_seed}),
                     *it, kTagTask);
          busy[*it] = assignment->task;
          busy_since[*it] = {Clock::now(), assignment->attempt};
          it = idle.erase(it);
        }
        if (busy.empty() && !idle.empty()) {
          // Nothing running and nothing more handed out: either all is finished, or the time limit
          // refuses what is left. (A worker that has not said hello yet is released when it does.)
          const Scheduler& s = coordinator.scheduler();
          time_limited = s.count(Scheduler::State::Queued) > 0;
          if (s.finished() || time_limited) release_all_idle(coordinator.summary(time_limited).exit_code());
        }
      }
      // A rank silent past its task's budget and grace holds a hung task (it cannot report: the
      // task holds its only MPI thread). Its attempt fails; the rank gets nothing more.
      if (hung_after > 0) {
        for (auto it = busy_since.begin(); it != busy_since.end();) {
          const double elapsed = seconds_since(it->second.first);
          if (elapsed < hung_after) {
            ++it;
            continue;
          }
          const int rank = it->first;
          coordinator.abandon(busy.at(rank), it->second.second, elapsed,
                              "on rank " + std::to_string(rank) + ", which did not answer; it gets no more tasks");
          busy.erase(rank);
          it = busy_since.erase(it);
          lost.insert(rank);
          --active;
        }
      }
      coordinator.tick();

      if (batch.empty()) backoff.wait();
      else backoff.reset();
    }
  } catch (const std::exception& e) {
    // A fatal coordinator error (e.g. the journal cannot be written): let running tasks end,
    // release every worker, then report. Results of those last tasks are not journaled and will
    // run again on resume.
    log(LogLevel::Error, std::string("coordinator error, stopping the workers: ") + e.what());
    drain_and_release(busy, idle, active, 1);
    throw;
  }
  coordinator.set_lost_ranks(static_cast<int>(lost.size()));
  return coordinator.finish(time_limited);
}

void drain_and_release(std::map<int, std::size_t>& busy, std::vector<int>& idle, int& active, int exit_code) {
  const std::string stop = serialize(StopMessage{exit_code});
  std::string buffer;
  while (active > 0) {
    for (int r : idle) send_bytes(stop, r, kTagStop);
    active -= static_cast<int>(idle.size());
    idle.clear();
    if (active == 0) break;
    MPI_Status status;
    MPI_Probe(MPI_ANY_SOURCE, kTagWorker, MPI_COMM_WORLD, &status);
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    buffer.resize(static_cast<std::size_t>(bytes));
    MPI_Recv(buffer.data(), bytes, MPI_BYTE, status.MPI_SOURCE, kTagWorker, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    busy.erase(status.MPI_SOURCE);
    idle.push_back(status.MPI_SOURCE);
  }
}

}  // namespace

SweepSummary run_sweep(const std::function<SweepInput()>& load, const SweepOptions& options) {
  if (!mpi_is_parallel()) {
    const SweepInput input = load();
    SweepOptions local = options;
    local.sweep = input.sweep;
    local.sweep_seed = input.seed;
    return run_single_process(input.tasks, local);
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (rank == 0) return run_mpi_coordinator(load, options, size);
  SweepSummary summary;
  summary.ranks = size;
  summary.worker_exit_code = run_worker(options);
  return summary;
}

SweepSummary run_sweep_tasks(const std::vector<TaskSpec>& tasks, const SweepOptions& options) {
  return run_sweep([&] { return SweepInput{tasks, options.sweep, options.sweep_seed}; }, options);
}

}  // namespace pimqat::runner
