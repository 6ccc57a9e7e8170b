// The scheduler alone, then whole sweeps in single-process mode on hand-built task lists:
// retries and failures, determinism of random failures, resume, refusal of a different sweep,
// the time limit, stop signals, dependencies and the model cache.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.h"
#include "runner/coordinator.h"
#include "runner/execute.h"
#include "runner/journal.h"
#include "runner/results.h"
#include "runner/signals.h"
#include "runner/status.h"
#include "runner/synthetic.h"
#include "runner_testing.h"

namespace pimqat::runner {
namespace {

using testing::synthetic_sweep;
using testing::synthetic_task;
using testing::TempDir;
using testing::train_with_evals;
using State = Scheduler::State;

TaskResult result_of(const TaskSpec& spec, TaskStatus status, int attempt) {
  TaskResult r;
  r.id = spec.id;
  r.status = status;
  r.attempt = attempt;
  return r;
}

// ---- Scheduler ----

TEST(Scheduler, EvalsWaitForTheirTrainTaskAndFollowTheWorkersModel) {
  std::vector<TaskSpec> tasks = train_with_evals(0, 3);
  const auto more = train_with_evals(1, 3);
  tasks.insert(tasks.end(), more.begin(), more.end());
  Scheduler s(tasks, {}, 2, false);
  EXPECT_EQ(s.count(State::Queued), 2u);
  EXPECT_EQ(s.count(State::Blocked), 6u);

  const auto a = s.next(1);
  const auto b = s.next(2);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(tasks[a->task].kind, TaskKind::Train);
  EXPECT_EQ(tasks[b->task].kind, TaskKind::Train);
  EXPECT_FALSE(s.next(3)) << "an eval was handed out before its train task was done";

  EXPECT_EQ(s.complete(a->task, result_of(tasks[a->task], TaskStatus::Done, 1)), Scheduler::Outcome::Done);
  EXPECT_EQ(s.complete(b->task, result_of(tasks[b->task], TaskStatus::Done, 1)), Scheduler::Outcome::Done);
  // Each worker gets the evals of the model it trained while there are any.
  for (int round = 0; round < 3; ++round) {
    const auto ea = s.next(1);
    const auto eb = s.next(2);
    ASSERT_TRUE(ea && eb);
    EXPECT_EQ(tasks[ea->task].depends_on, tasks[a->task].id);
    EXPECT_EQ(tasks[eb->task].depends_on, tasks[b->task].id);
    s.complete(ea->task, result_of(tasks[ea->task], TaskStatus::Done, 1));
    s.complete(eb->task, result_of(tasks[eb->task], TaskStatus::Done, 1));
  }
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.count(State::Done), tasks.size());
}

TEST(Scheduler, FailedAttemptsAreRetriedThenTheTaskFailsAndItsDependentsAreSkipped) {
  const std::vector<TaskSpec> tasks = train_with_evals(0, 4);
  Scheduler s(tasks, {}, 2, false);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const auto a = s.next(1);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->task, 0u);
    EXPECT_EQ(a->attempt, attempt);
    const auto outcome = s.complete(a->task, result_of(tasks[0], TaskStatus::Failed, attempt));
    EXPECT_EQ(outcome, attempt < 3 ? Scheduler::Outcome::Retry : Scheduler::Outcome::Failed);
  }
  EXPECT_FALSE(s.next(1));
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.count(State::Failed), 1u);
  EXPECT_EQ(s.count(State::Skipped), 4u);
}

TEST(Scheduler, ReproducibleFailureFailsTheTaskAtOnce) {
  const std::vector<TaskSpec> tasks = train_with_evals(0, 3);
  Scheduler s(tasks, {}, 2, false);
  const auto a = s.next(1);
  ASSERT_TRUE(a);
  TaskResult failed = result_of(tasks[a->task], TaskStatus::Failed, a->attempt);
  failed.retryable = false;
  EXPECT_EQ(s.complete(a->task, failed), Scheduler::Outcome::Failed);
  EXPECT_FALSE(s.next(1));
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.count(State::Failed), 1u);
  EXPECT_EQ(s.count(State::Skipped), 3u);
}

TEST(Scheduler, ReproducibleFailureInTheJournalIsNotRetriedOnResumeUnlessAsked) {
  const std::vector<TaskSpec> tasks = synthetic_sweep(3);
  std::vector<JournalRecord> journal;
  TaskResult failed = result_of(tasks[1], TaskStatus::Failed, 1);
  failed.retryable = false;
  journal.push_back(make_journal_record(tasks[1], failed));
  {
    Scheduler s(tasks, journal, 2, false);
    EXPECT_EQ(s.state(1), State::Failed);
    EXPECT_EQ(s.state(0), State::Queued);
  }
  {
    Scheduler s(tasks, journal, 2, /*retry_failed=*/true);
    EXPECT_EQ(s.state(1), State::Queued);
    std::map<std::size_t, int> attempt_of;
    while (const auto a = s.next(1)) {
      attempt_of[a->task] = a->attempt;
      s.complete(a->task, result_of(tasks[a->task], TaskStatus::Failed, a->attempt));
    }
    // Task 1 gets 1 + retries new attempts (2, 3, 4); the others their usual three.
    EXPECT_EQ(attempt_of, (std::map<std::size_t, int>{{0, 3}, {1, 4}, {2, 3}}));
  }
}

TEST(Scheduler, JournalOfEarlierRunsCountsAttemptsAndDoneTasks) {
  const std::vector<TaskSpec> tasks = synthetic_sweep(4);
  std::vector<JournalRecord> journal;
  const auto record = [&](std::size_t i, TaskStatus st, int attempt) {
    journal.push_back(make_journal_record(tasks[i], result_of(tasks[i], st, attempt)));
  };
  record(0, TaskStatus::Done, 1);
  record(1, TaskStatus::Failed, 1);
  record(1, TaskStatus::Failed, 2);
  record(2, TaskStatus::Failed, 1);
  record(2, TaskStatus::Failed, 2);
  record(2, TaskStatus::Failed, 3);
  {
    Scheduler s(tasks, journal, 2, false);
    EXPECT_EQ(s.state(0), State::Done);
    EXPECT_EQ(s.state(1), State::Queued);
    EXPECT_EQ(s.state(2), State::Failed);
    EXPECT_EQ(s.state(3), State::Queued);
    std::map<std::size_t, int> attempt_of;
    while (const auto a = s.next(1)) {
      attempt_of[a->task] = a->attempt;
      s.complete(a->task, result_of(tasks[a->task], TaskStatus::Done, a->attempt));
    }
    EXPECT_EQ(attempt_of, (std::map<std::size_t, int>{{1, 3}, {3, 1}}));
  }
  {
    Scheduler s(tasks, journal, 2, /*retry_failed=*/true);
    EXPECT_EQ(s.state(2), State::Queued);
    std::map<std::size_t, int> attempt_of;
    while (const auto a = s.next(1)) {
      attempt_of[a->task] = a->attempt;
      s.complete(a->task, result_of(tasks[a->task], TaskStatus::Done, a->attempt));
    }
    EXPECT_EQ(attempt_of, (std::map<std::size_t, int>{{1, 3}, {2, 4}, {3, 1}}));
  }
}

TEST(Scheduler, StoppedAttemptIsQueuedAgainWithoutUsingAnAttempt) {
  const std::vector<TaskSpec> tasks = synthetic_sweep(3);
  Scheduler s(tasks, {}, 0, false);
  const auto a = s.next(1);
  ASSERT_TRUE(a);
  EXPECT_EQ(s.complete(a->task, result_of(tasks[a->task], kTaskStopped, a->attempt)), Scheduler::Outcome::Stopped);
  const auto again = s.next(1);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->task, a->task);  // first in line again
  EXPECT_EQ(again->attempt, 1);
}

TEST(Scheduler, FitsRefusesTasksAndTheyStayQueued) {
  const std::vector<TaskSpec> tasks = synthetic_sweep(3);
  Scheduler s(tasks, {}, 0, false);
  EXPECT_FALSE(s.next(1, [](const TaskSpec&) { return false; }));
  EXPECT_EQ(s.count(State::Queued), 3u);
  EXPECT_FALSE(s.finished());
}

// ---- Single-process sweeps ----

SweepOptions options_for(const TempDir& dir, const std::vector<TaskSpec>& tasks, const std::string& name = "run") {
  SweepOptions o;
  o.run_dir = dir.sub(name);
  o.sweep.path = "test-sweep.yaml";
  o.sweep.text = "# hand-built task list of " + std::to_string(tasks.size()) + " tasks\n";
  o.sweep_seed = 1995;
  o.heartbeat_interval_seconds = 0.2;
  return o;
}

std::map<std::string, std::vector<JournalRecord>> records_by_id(const std::string& run_dir) {
  std::map<std::string, std::vector<JournalRecord>> by_id;
  for (auto& r : replay_journal(journal_path(run_dir)).records) by_id[r.id].push_back(r);
  return by_id;
}

TEST(SingleProcess, AlwaysFailingTaskIsRetriedThenFailedAndTheSweepGoesOn) {
  TempDir dir;
  std::vector<TaskSpec> tasks = synthetic_sweep(12);
  tasks[5].synthetic.always_fail = true;
  SweepOptions options = options_for(dir, tasks);
  options.retries = 2;
  const SweepSummary summary = run_sweep_tasks(tasks, options);
  EXPECT_EQ(summary.total, 12u);
  EXPECT_EQ(summary.done, 11u);
  EXPECT_EQ(summary.failed, 1u);
  EXPECT_EQ(summary.attempts, 11u + 3u);
  EXPECT_EQ(summary.failed_attempts, 3u);
  EXPECT_EQ(summary.exit_code(), kExitTasksFailed);

  const auto by_id = records_by_id(options.run_dir);
  ASSERT_EQ(by_id.size(), 12u);
  const auto& failing = by_id.at(tasks[5].id);
  ASSERT_EQ(failing.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(failing[k].status, TaskStatus::Failed);
    EXPECT_EQ(failing[k].attempt, k + 1);
    EXPECT_NE(failing[k].message.find("always_fail"), std::string::npos) << failing[k].message;
  }
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (i == 5) continue;
    const auto& recs = by_id.at(tasks[i].id);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].status, TaskStatus::Done);
    EXPECT_EQ(recs[0].metrics.at("value"), 0.5 * static_cast<double>(i));
    EXPECT_EQ(recs[0].axes, tasks[i].axes);
  }
  EXPECT_TRUE(std::filesystem::exists(results_path(options.run_dir)));

  // A rerun does not try the failed task again (its attempts are used up) unless asked to.
  const SweepSummary again = run_sweep_tasks(tasks, options);
  EXPECT_EQ(again.attempts, 0u);
  EXPECT_EQ(again.exit_code(), kExitTasksFailed);
  options.retry_failed = true;
  options.retries = 0;
  const SweepSummary retried = run_sweep_tasks(tasks, options);
  EXPECT_EQ(retried.attempts, 1u);
  EXPECT_EQ(records_by_id(options.run_dir).at(tasks[5].id).back().attempt, 4);
}

TEST(SingleProcess, RandomFailuresFollowTheKeyedStream) {
  TempDir dir;
  const std::vector<TaskSpec> tasks = synthetic_sweep(40, 0.0, 0.45);
  SweepOptions options = options_for(dir, tasks);
  options.retries = 1;
  run_sweep_tasks(tasks, options);
  const auto by_id = records_by_id(options.run_dir);
  int failed_tasks = 0, retried_tasks = 0;
  for (const TaskSpec& t : tasks) {
    // Independent expectation: attempt k fails iff its draw is below p.
    std::vector<TaskStatus> expected;
    for (int attempt = 1; attempt <= 2; ++attempt) {
      const bool fails = synthetic_failure_draw(options.sweep_seed, t.id, attempt) < 0.45;
      expected.push_back(fails ? TaskStatus::Failed : TaskStatus::Done);
      if (!fails) break;
    }
    const auto& recs = by_id.at(t.id);
    ASSERT_EQ(recs.size(), expected.size()) << t.id;
    for (std::size_t k = 0; k < recs.size(); ++k) EXPECT_EQ(recs[k].status, expected[k]) << t.id;
    failed_tasks += expected.back() == TaskStatus::Failed;
    retried_tasks += expected.size() > 1;
  }
  EXPECT_GT(failed_tasks, 0);  // the seed exercises both paths
  EXPECT_GT(retried_tasks, failed_tasks);
}

// A synthetic runner that asks the sweep to stop after a number of tasks.
std::atomic<bool> g_test_stop{false};
std::atomic<int> g_calls{0};
int g_stop_after = 0;
std::mutex g_mutex;
std::multiset<std::string> g_executed;

TaskResult stop_after_n_runner(const TaskSpec& spec, const TaskContext& ctx) {
  {
    std::lock_guard lock(g_mutex);
    g_executed.insert(spec.id);
  }
  if (++g_calls == g_stop_after) g_test_stop.store(true);
  return run_synthetic_task(spec, ctx);
}

class SyntheticRunnerGuard {
 public:
  explicit SyntheticRunnerGuard(TaskRunnerFn fn) { register_task_runner(TaskKind::Synthetic, fn); }
  ~SyntheticRunnerGuard() { register_task_runner(TaskKind::Synthetic, &run_synthetic_task); }
};

TEST(SingleProcess, ResumeSkipsFinishedTasks) {
  TempDir dir;
  const std::vector<TaskSpec> tasks = synthetic_sweep(15);
  SweepOptions options = options_for(dir, tasks);
  options.stop = &g_test_stop;
  SyntheticRunnerGuard guard(&stop_after_n_runner);
  g_executed.clear();
  g_calls = 0;
  g_test_stop = false;
  g_stop_after = 6;

  const SweepSummary first = run_sweep_tasks(tasks, options);
  EXPECT_EQ(first.stop, StopReason::Signal);
  EXPECT_EQ(first.exit_code(), kExitResumable);
  EXPECT_EQ(first.done, 6u);
  EXPECT_EQ(first.remaining, 9u);
  EXPECT_EQ(finished_task_ids(options.run_dir).size(), 6u);

  g_test_stop = false;
  g_stop_after = -1;
  const SweepSummary second = run_sweep_tasks(tasks, options);
  EXPECT_EQ(second.done_before, 6u);
  EXPECT_EQ(second.done, 15u);
  EXPECT_EQ(second.attempts, 9u);
  EXPECT_EQ(second.exit_code(), 0);
  EXPECT_EQ(g_executed.size(), 15u);
  for (const TaskSpec& t : tasks) EXPECT_EQ(g_executed.count(t.id), 1u) << "task run twice or never: " << t.id;
  for (const auto& [id, recs] : records_by_id(options.run_dir)) EXPECT_EQ(recs.size(), 1u) << id;
}

TaskResult diverging_runner(const TaskSpec& spec, const TaskContext&) {
  ++g_calls;
  throw ReproducibleError("synthetic task " + spec.id + ": training diverged: loss is nan");
}

TEST(SingleProcess, ReproducibleFailureIsJournaledOnceAndNotRetried) {
  TempDir dir;
  const std::vector<TaskSpec> tasks = synthetic_sweep(2);
  SweepOptions options = options_for(dir, tasks);
  options.retries = 2;
  SyntheticRunnerGuard guard(&diverging_runner);
  g_calls = 0;
  const SweepSummary summary = run_sweep_tasks(tasks, options);
  EXPECT_EQ(g_calls, 2);  // one attempt per task, not three
  EXPECT_EQ(summary.failed, 2u);
  EXPECT_EQ(summary.exit_code(), kExitTasksFailed);
  for (const auto& [id, recs] : records_by_id(options.run_dir)) {
    ASSERT_EQ(recs.size(), 1u) << id;
    EXPECT_FALSE(recs[0].retryable);
    EXPECT_NE(recs[0].message.find("diverged"), std::string::npos);
  }
  // Resuming runs nothing; --retry-failed runs each task again.
  g_calls = 0;
  run_sweep_tasks(tasks, options);
  EXPECT_EQ(g_calls, 0);
  options.retry_failed = true;
  run_sweep_tasks(tasks, options);
  EXPECT_EQ(g_calls, 2);
}

TEST(SingleProcess, TemporariesOfAKilledRunAreRemoved) {
  TempDir dir;
  const std::vector<TaskSpec> tasks = synthetic_sweep(2);
  SweepOptions options = options_for(dir, tasks);
  run_sweep_tasks(tasks, options);
  const std::string stale = run_file(options.run_dir, "results.h5.tmp-4242");
  const std::string keep = run_file(options.run_dir, "notes.tmp-draft");
  write_file_atomically(stale, "partial");
  write_file_atomically(keep, "user file");
  run_sweep_tasks(tasks, options);
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(keep));
  EXPECT_TRUE(std::filesystem::exists(results_path(options.run_dir)));
}

TEST(SingleProcess, DifferentSweepInAUsedDirectoryIsRefused) {
  TempDir dir;
  const std::vector<TaskSpec> tasks = synthetic_sweep(4);
  SweepOptions options = options_for(dir, tasks);
  options.sweep.text = "name: a\ngrid: {x: [1, 2, 3, 4]}\n";
  run_sweep_tasks(tasks, options);

  std::vector<TaskSpec> other = synthetic_sweep(5);
  SweepOptions changed = options;
  changed.sweep.text = "name: a\ngrid: {x: [1, 2, 3, 4, 5]}\n";
  try {
    run_sweep_tasks(other, changed);
    ADD_FAILURE() << "a different sweep was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("different sweep"), std::string::npos) << m;
    EXPECT_NE(m.find("1 tasks are new"), std::string::npos) << m;
    EXPECT_NE(m.find("line 2"), std::string::npos) << m;
    EXPECT_NE(m.find("new --out directory"), std::string::npos) << m;
  }
  // The same tasks from a reworded file resume (nothing left to do).
  SweepOptions reworded = options;
  reworded.sweep.text = "# a comment\n" + options.sweep.text;
  const SweepSummary s = run_sweep_tasks(tasks, reworded);
  EXPECT_EQ(s.attempts, 0u);
  EXPECT_EQ(s.done, 4u);
}

TEST(SingleProcess, TimeLimitStopsDispatchingWhatCannotFinish) {
  TempDir dir;
  const std::vector<TaskSpec> tasks = synthetic_sweep(10, 0.12);
  SweepOptions options = options_for(dir, tasks);
  options.time_limit_seconds = 0.45;
  const SweepSummary first = run_sweep_tasks(tasks, options);
  EXPECT_EQ(first.stop, StopReason::TimeLimit);
  EXPECT_EQ(first.exit_code(), kExitResumable);
  EXPECT_GE(first.done, 1u);
  EXPECT_LE(first.done, 4u);
  EXPECT_LT(first.seconds, 0.45 + 0.1) << "a task was started that could not end in time";
  options.time_limit_seconds = 0;
  const SweepSummary second = run_sweep_tasks(tasks, options);
  EXPECT_EQ(second.done, 10u);
  EXPECT_EQ(second.exit_code(), 0);
}

TaskResult raise_sigterm_runner(const TaskSpec& spec, const TaskContext& ctx) {
  if (++g_calls == 3) {
    std::raise(SIGTERM);
    // Like a train task between two batches: notice the flag, checkpoint, return.
    for (int i = 0; i < 400 && !ctx.stop_requested(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (ctx.stop_requested()) throw TaskStopped();
  }
  return run_synthetic_task(spec, ctx);
}

TEST(SingleProcess, SigtermStopsTheSweepResumably) {
  TempDir dir;
  const std::vector<TaskSpec> tasks = synthetic_sweep(8);
  SweepOptions options = options_for(dir, tasks);
  clear_stop();
  install_stop_handlers();
  g_calls = 0;
  SweepSummary summary;
  {
    SyntheticRunnerGuard guard(&raise_sigterm_runner);
    summary = run_sweep_tasks(tasks, options);
  }
  EXPECT_EQ(stop_signal(), SIGTERM);
  restore_default_handlers();
  clear_stop();
  EXPECT_EQ(summary.stop, StopReason::Signal);
  EXPECT_EQ(summary.exit_code(), kExitResumable);
  EXPECT_EQ(summary.done, 2u);  // the third task was stopped: not journaled, not counted
  EXPECT_EQ(replay_journal(journal_path(options.run_dir)).records.size(), 2u);
  const Heartbeat hb = parse_heartbeat(read_text_file(heartbeat_path(options.run_dir)), "heartbeat");
  EXPECT_EQ(hb.state, "stopped");
  EXPECT_EQ(hb.done, 2);

  const SweepSummary resumed = run_sweep_tasks(tasks, options);
  EXPECT_EQ(resumed.done, 8u);
  EXPECT_EQ(resumed.attempts, 6u);
}

// Train and eval runners standing in for the real ones: evals check that their train task is in
// the journal and count model loads through the cache.
std::atomic<int> g_loads{0};
std::atomic<int> g_evals_before_train{0};

TaskResult fake_train(const TaskSpec& spec, const TaskContext& ctx) {
  TaskResult r;
  r.metrics["accuracy"] = 0.9;
  r.curve.push_back({0, 0.1, 1.0, 0.5, 1.1, 0.45, 0.0});
  ctx.models->insert(spec.id, std::make_shared<std::string>("model " + spec.id));
  return r;
}

TaskResult fake_eval(const TaskSpec& spec, const TaskContext& ctx) {
  if (!finished_task_ids(ctx.run_dir).count(spec.depends_on)) ++g_evals_before_train;
  auto model = ctx.models->find<std::string>(spec.depends_on);
  if (!model) {
    ++g_loads;
    model = std::make_shared<std::string>("model " + spec.depends_on);
    ctx.models->insert(spec.depends_on, model);
  }
  TaskResult r;
  r.metrics["accuracy"] = 0.5 + 0.01 * spec.config.eval.first_die;
  r.metrics["loss"] = 1.0;
  return r;
}

TEST(SingleProcess, EvalsRunAfterTheirTrainTaskAndReuseTheCachedModel) {
  TempDir dir;
  std::vector<TaskSpec> tasks;
  for (int m = 0; m < 3; ++m) {
    const auto part = train_with_evals(m, 4);
    tasks.insert(tasks.end(), part.begin(), part.end());
  }
  std::rotate(tasks.begin(), tasks.begin() + 2, tasks.end());  // evals listed before their train task
  register_task_runner(TaskKind::Train, &fake_train);
  register_task_runner(TaskKind::Eval, &fake_eval);
  g_loads = 0;
  g_evals_before_train = 0;
  SweepOptions options = options_for(dir, tasks);
  options.model_cache_capacity = 1;
  const SweepSummary summary = run_sweep_tasks(tasks, options);
  register_task_runner(TaskKind::Train, nullptr);
  register_task_runner(TaskKind::Eval, nullptr);
  EXPECT_EQ(summary.done, 15u);
  EXPECT_EQ(g_evals_before_train.load(), 0);
  EXPECT_EQ(g_loads.load(), 0) << "each model's evals should follow its training in this process";
}

TEST(SingleProcess, UnregisteredTaskKindIsAClearError) {
  TempDir dir;
  const std::vector<TaskSpec> tasks = train_with_evals(0, 1);
  try {
    run_sweep_tasks(tasks, options_for(dir, tasks));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no runner is registered"), std::string::npos) << e.what();
  }
}

TEST(SingleProcess, StatusReadsProgressFromTheFiles) {
  TempDir dir;
  std::vector<TaskSpec> tasks = synthetic_sweep(6);
  tasks[2].synthetic.always_fail = true;
  SweepOptions options = options_for(dir, tasks);
  options.retries = 1;
  run_sweep_tasks(tasks, options);
  const SweepStatus status = read_sweep_status(options.run_dir, unix_time_now());
  EXPECT_EQ(status.total, 6);
  EXPECT_EQ(status.done, 5);
  EXPECT_EQ(status.failed, 1);
  EXPECT_EQ(status.attempts, 7);
  EXPECT_FALSE(status.live);
  EXPECT_EQ(status.eta, 0);
  const std::string text = format_sweep_status(status);
  EXPECT_NE(text.find("5 done, 1 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("finished"), std::string::npos) << text;
}

TEST(ModelCache, KeepsTheMostRecentlyUsedModels) {
  ModelCache cache(2);
  cache.insert("a", std::make_shared<int>(1));
  cache.insert("b", std::make_shared<int>(2));
  ASSERT_TRUE(cache.find<int>("a"));  // a is now the most recent
  cache.insert("c", std::make_shared<int>(3));
  EXPECT_TRUE(cache.find<int>("a"));
  EXPECT_FALSE(cache.find<int>("b"));
  EXPECT_EQ(*cache.find<int>("c"), 3);
  EXPECT_FALSE(cache.find<double>("c")) << "a model stored as another type must not be returned";
}

}  // namespace
}  // namespace pimqat::runner
