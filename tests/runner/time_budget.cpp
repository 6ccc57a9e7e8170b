// The per-attempt time budget (runner/execute.h TaskContext::time_budget_seconds, `pimqat sweep
// --task-timeout`, docs/runner.md "Task time budget"): an attempt past its budget is asked to stop
// and fails with a message naming the budget; one that ignores the request is given up after the
// grace. The command-line behaviour is tested in fault.cpp (HungTask*), the MPI coordinator's in
// mpi.cpp (Mpi.SilentRankPastItsBudgetIsGivenUp).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "runner/coordinator.h"
#include "runner/execute.h"
#include "runner/journal.h"
#include "runner/rundir.h"
#include "runner/signals.h"
#include "runner/status.h"
#include "runner/synthetic.h"
#include "runner_testing.h"

namespace pimqat::runner {
namespace {

using testing::TempDir;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(TimeBudget, AnAttemptPastItsBudgetIsStoppedAndFailsNamingTheBudget) {
  const TaskSpec task = testing::synthetic_task(1, 60.0);  // sleeps a minute, polling its stop flag
  TaskContext ctx;
  ctx.time_budget_seconds = 0.2;
  ctx.hang_grace_seconds = 30;
  const auto t0 = std::chrono::steady_clock::now();
  const TaskResult r = execute_task(task, ctx);
  EXPECT_LT(seconds_since(t0), 5.0);
  EXPECT_GE(r.seconds, 0.2);
  EXPECT_EQ(r.status, TaskStatus::Failed);
  EXPECT_NE(r.message.find("exceeded its time budget of 0.2 s (--task-timeout): asked to stop, it stopped after"),
            std::string::npos)
      << r.message;
  EXPECT_EQ(r.id, task.id);
}

TEST(TimeBudget, AnAttemptWithinItsBudgetIsUnchanged) {
  TaskContext ctx;
  ctx.time_budget_seconds = 30;
  const TaskResult done = execute_task(testing::synthetic_task(2, 0.01), ctx);
  EXPECT_EQ(done.status, TaskStatus::Done);
  EXPECT_EQ(done.metrics.at("value"), 1.0);
  // Its own failure keeps its own message.
  const TaskResult failed = execute_task(testing::synthetic_task(3, 0.0, 0, true), ctx);
  EXPECT_EQ(failed.status, TaskStatus::Failed);
  EXPECT_NE(failed.message.find("always_fail"), std::string::npos) << failed.message;
  EXPECT_EQ(failed.message.find("time budget"), std::string::npos) << failed.message;
}

TEST(TimeBudget, AStopRequestWithinTheBudgetIsAStopNotAFailure) {
  std::atomic<bool> stop{false};
  TaskContext ctx;
  ctx.stop = &stop;
  ctx.time_budget_seconds = 30;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop.store(true);
  });
  const TaskResult r = execute_task(testing::synthetic_task(4, 60.0), ctx);
  stopper.join();
  EXPECT_EQ(r.status, kTaskStopped);
}

// A runner that ignores its stop flag: sleeps `ignoring_seconds` in one piece.
double ignoring_seconds = 0;
TaskResult ignore_stop_runner(const TaskSpec&, const TaskContext&) {
  std::this_thread::sleep_for(std::chrono::duration<double>(ignoring_seconds));
  TaskResult r;
  r.status = TaskStatus::Done;
  r.metrics["value"] = 7;
  return r;
}

struct RestoreSynthetic {
  ~RestoreSynthetic() { register_task_runner(TaskKind::Synthetic, &run_synthetic_task); }
};

TEST(TimeBudget, AnAttemptThatIgnoresTheStopIsReportedAfterTheGrace) {
  const RestoreSynthetic restore;
  register_task_runner(TaskKind::Synthetic, &ignore_stop_runner);
  ignoring_seconds = 1.0;
  std::atomic<int> calls{0};
  std::atomic<double> reported{0};
  TaskContext ctx;
  ctx.time_budget_seconds = 0.2;
  ctx.hang_grace_seconds = 0.2;
  ctx.on_hung = [&](double elapsed) {
    ++calls;
    reported = elapsed;
  };
  const TaskResult r = execute_task(testing::synthetic_task(5), ctx);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_GE(reported.load(), 0.4);
  EXPECT_LT(reported.load(), 1.0);
  // It finished after all (within its own time): a finished result is kept.
  EXPECT_EQ(r.status, TaskStatus::Done);
}

// One process, a task that ignores its stop flag: the hung attempt is journaled as failed, the
// process ends through exit_process(75), and the same sweep run again resumes (here the task
// behaves and the retry finishes).
TEST(TimeBudgetDeathTest, OneProcessJournalsTheHungAttemptAndExitsResumable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir dir;
  // The threadsafe death test re-runs this test in a new process (another pid, another TempDir):
  // the parent's run directory reaches the child through the environment.
  if (!std::getenv("PIMQAT_TEST_BUDGET_RUN_DIR")) ::setenv("PIMQAT_TEST_BUDGET_RUN_DIR", dir.sub("run").c_str(), 1);
  const std::vector<TaskSpec> tasks = testing::synthetic_sweep(3, 0.01);
  SweepOptions options;
  options.run_dir = std::getenv("PIMQAT_TEST_BUDGET_RUN_DIR");
  options.sweep.path = "budget";
  options.sweep.text = "# budget\n";
  options.sweep_seed = 5;
  options.heartbeat_interval_seconds = 0.1;
  options.task_timeout_seconds = 0.3;
  options.task_hang_grace_seconds = 0.3;
  options.exit_process = [](int code) { std::_Exit(code); };
  EXPECT_EXIT(
      {
        register_task_runner(TaskKind::Synthetic, &ignore_stop_runner);
        ignoring_seconds = 600;
        (void)run_sweep_tasks(tasks, options);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(kExitResumable), "");
  const JournalReplay replay = replay_journal(journal_path(options.run_dir));
  ASSERT_EQ(replay.records.size(), 1u);
  EXPECT_EQ(replay.records[0].status, TaskStatus::Failed);
  EXPECT_EQ(replay.records[0].attempt, 1);
  EXPECT_NE(replay.records[0].message.find("time budget of 0.3 s"), std::string::npos) << replay.records[0].message;
  EXPECT_NE(replay.records[0].message.find("ignored the request to stop"), std::string::npos)
      << replay.records[0].message;
  const Heartbeat hb = parse_heartbeat(read_text_file(heartbeat_path(options.run_dir)), "heartbeat");
  EXPECT_EQ(hb.state, "stopped");
  EXPECT_EQ(hb.task_timeout, 0.3);

  ::unsetenv("PIMQAT_TEST_BUDGET_RUN_DIR");
  // The resume: tasks behave now; the hung one is retried (attempt 2) and everything finishes.
  options.exit_process = nullptr;
  const SweepSummary s = run_sweep_tasks(tasks, options);
  EXPECT_EQ(s.exit_code(), 0);
  EXPECT_EQ(s.done, 3u);
  const JournalReplay after = replay_journal(journal_path(options.run_dir));
  ASSERT_EQ(after.records.size(), 4u);
  EXPECT_EQ(after.records[1].id, after.records[0].id);
  EXPECT_EQ(after.records[1].attempt, 2);
  EXPECT_EQ(after.records[1].status, TaskStatus::Done);
}

// The heartbeat carries the budget; `pimqat status` shows a running task's time against it.
TEST(TimeBudget, StatusShowsARunningTaskAgainstItsBudget) {
  Heartbeat h;
  h.pid = 1;
  h.host = "node";
  h.started = 1000;
  h.updated = 1100;
  h.task_timeout = 90;
  h.tasks.push_back(RunningTask{"00000000000000aa", "synthetic", 1, "node", 1070, 1});
  const Heartbeat back = parse_heartbeat(format_heartbeat(h), "hb");
  EXPECT_EQ(back.task_timeout, 90);
  EXPECT_EQ(format_heartbeat(back), format_heartbeat(h));
  h.task_timeout = 0;
  EXPECT_EQ(format_heartbeat(h).find("task_timeout"), std::string::npos);  // unchanged files without it

  TempDir dir;
  std::vector<TaskSpec> tasks = testing::synthetic_sweep(1);
  tasks[0].id = "00000000000000aa";
  prepare_run_directory(dir.path(), SweepSource{"s.yaml", "# s\n", ""}, tasks);
  h.task_timeout = 90;
  write_file_atomically(heartbeat_path(dir.path()), format_heartbeat(h));
  const std::string text = format_sweep_status(read_sweep_status(dir.path(), 1101));
  EXPECT_NE(text.find("for 30s of its 1m30s time budget"), std::string::npos) << text;
}

}  // namespace
}  // namespace pimqat::runner
