// Sweeps across MPI ranks. The test binary starts itself under `mpirun` (the MpiChild test, which
// is skipped in a normal run) on hand-built synthetic task lists: a 3-rank sweep with a failing
// task, and identical results tables for 1, 2 and 4 ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "core/hdf5.h"
#include "runner/coordinator.h"
#include "runner/journal.h"
#include "runner/results.h"
#include "runner/signals.h"
#include "runner/status.h"
#include "runner/synthetic.h"
#include "runner_testing.h"

namespace pimqat::runner {
namespace {

using testing::ChildProcess;
using testing::TempDir;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

// The task list of a child run, described by environment variables.
std::vector<TaskSpec> child_tasks() {
  return testing::synthetic_tree(std::stoi(env_or("PIMQAT_TEST_PARENTS", "6")),
                                 std::stoi(env_or("PIMQAT_TEST_DEPENDENTS", "3")),
                                 std::stod(env_or("PIMQAT_TEST_DURATION", "0")), std::stod(env_or("PIMQAT_TEST_P", "0")),
                                 std::stoi(env_or("PIMQAT_TEST_ALWAYS_FAIL", "-1")));
}

// PIMQAT_TEST_HANG_INDEX: the first attempt of that task ignores its stop flag and sleeps
// PIMQAT_TEST_HANG_SECONDS in one piece (a hung task); every other attempt is the built-in one.
std::string hang_id;
double hang_seconds = 0;
TaskResult hanging_synthetic(const TaskSpec& spec, const TaskContext& ctx) {
  if (spec.id == hang_id && ctx.attempt == 1) std::this_thread::sleep_for(std::chrono::duration<double>(hang_seconds));
  return run_synthetic_task(spec, ctx);
}

SweepOptions child_options(const std::string& run_dir) {
  SweepOptions o;
  o.task_timeout_seconds = std::stod(env_or("PIMQAT_TEST_TASK_TIMEOUT", "0"));
  o.task_hang_grace_seconds = std::stod(env_or("PIMQAT_TEST_HANG_GRACE", "-1"));
  o.run_dir = run_dir;
  o.sweep.path = "synthetic-tree";
  o.sweep.text = "# synthetic tree\n";
  o.sweep_seed = 42;
  o.retries = std::stoi(env_or("PIMQAT_TEST_RETRIES", "2"));
  o.heartbeat_interval_seconds = 0.2;
  return o;
}

// Runs a sweep as one rank of an mpirun job and exits with the sweep's exit code.
TEST(MpiChild, RunSweep) {
  if (!std::getenv("PIMQAT_TEST_MPI_CHILD")) GTEST_SKIP() << "started by the Mpi tests under mpirun only";
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  SweepOptions options = child_options(env_or("PIMQAT_TEST_RUN_DIR", ""));
  options.stop = &install_stop_handlers();
  const std::vector<TaskSpec> tasks = child_tasks();
  if (const int hang = std::stoi(env_or("PIMQAT_TEST_HANG_INDEX", "-1")); hang >= 0) {
    hang_id = tasks.at(static_cast<std::size_t>(hang)).id;
    hang_seconds = std::stod(env_or("PIMQAT_TEST_HANG_SECONDS", "600"));
    register_task_runner(TaskKind::Synthetic, &hanging_synthetic);
  }
  int code = 1;
  try {
    const SweepSummary summary = run_sweep_tasks(tasks, options);
    code = summary.worker_exit_code >= 0 ? 0 : summary.exit_code();  // as `pimqat sweep`: workers exit 0
    if (summary.lost_ranks > 0) {  // as `pimqat sweep`: a hung rank cannot finalize
      std::fflush(nullptr);
      MPI_Abort(MPI_COMM_WORLD, code);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child error: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  std::fflush(nullptr);
  std::_Exit(code);
}

using testing::TreeShape;

std::unique_ptr<ChildProcess> start_mpi_sweep(const std::string& run_dir, int ranks, const TreeShape& shape,
                                              const std::string& log) {
  return testing::start_mpi_child(run_dir, ranks, shape, log);
}

std::map<std::string, H5Column> comparable_columns(const std::string& results_file) {
  return testing::comparable_columns(results_file, {"tasks", "eval", "train", "curves", "synthetic"});
}

using testing::same_column;

TEST(Mpi, ThreeRanksRunASyntheticSweepWithAFailingTask) {
  TempDir dir;
  TreeShape shape;
  shape.parents = 5;
  shape.dependents = 4;
  shape.duration = 0.01;
  shape.always_fail = 2;  // a parent: its 4 dependents are skipped
  const std::string run_dir = dir.sub("run");
  auto job = start_mpi_sweep(run_dir, 3, shape, dir.sub("mpirun.log"));
  const int code = job->wait(60);
  ASSERT_EQ(code, kExitTasksFailed) << "see " << dir.sub("mpirun.log");

  std::map<std::string, std::vector<JournalRecord>> by_id;
  std::set<std::string> hosts;
  for (auto& r : replay_journal(journal_path(run_dir)).records) by_id[r.id].push_back(r);
  const auto tasks = testing::synthetic_tree(5, 4, 0.01, 0, 2);
  EXPECT_EQ(by_id.size(), tasks.size() - 4);  // the failed parent's dependents never ran
  EXPECT_EQ(by_id.at(tasks[2].id).size(), 3u);
  for (const auto& [id, recs] : by_id) {
    if (id != tasks[2].id) {
      EXPECT_EQ(recs.size(), 1u) << id;
    }
  }
  const Heartbeat hb = parse_heartbeat(read_text_file(heartbeat_path(run_dir)), "heartbeat");
  EXPECT_EQ(hb.ranks, 3);
  EXPECT_EQ(hb.state, "finished");

  const H5File file = H5File::open(results_path(run_dir));
  const H5Table t = read_table(file, "tasks");
  std::map<std::string, int> status_count;
  for (const auto& s : t.strings("status")) ++status_count[s];
  EXPECT_EQ(status_count, (std::map<std::string, int>{{"done", 20}, {"failed", 1}, {"skipped", 4}}));
  EXPECT_EQ(read_table(file, "synthetic").rows(), 20u);
}

// A worker whose task ignores the stop request holds its only MPI thread and cannot answer: the
// coordinator journals the attempt as failed once the budget and grace have passed, hands the task
// to another rank, sends nothing more to the silent one, and at the end ends the job with
// MPI_Abort (the hung rank cannot take part in MPI_Finalize), with the sweep's exit status.
TEST(Mpi, SilentRankPastItsBudgetIsGivenUp) {
  TempDir dir;
  TreeShape shape;
  shape.parents = 6;
  shape.dependents = 0;
  shape.duration = 0.02;
  shape.retries = 1;
  shape.task_timeout = 1.5;
  shape.hang_grace = 0.5;
  shape.hang_index = 0;
  const std::string run_dir = dir.sub("run"), log = dir.sub("mpirun.log");
  const auto t0 = std::chrono::steady_clock::now();
  auto job = start_mpi_sweep(run_dir, 3, shape, log);
  const int code = job->wait(60);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(code, 0) << "see " << log;
  EXPECT_LT(seconds, 40) << "see " << log;
  EXPECT_TRUE(job->session_gone(10)) << "the hung rank outlived the job";
  const auto tasks = testing::synthetic_tree(6, 0, 0.02, 0);
  std::map<std::string, std::vector<JournalRecord>> by_id;
  for (auto& r : replay_journal(journal_path(run_dir)).records) by_id[r.id].push_back(r);
  ASSERT_EQ(by_id.size(), 6u) << "see " << log;
  const auto& hung = by_id.at(tasks[0].id);
  ASSERT_EQ(hung.size(), 2u);
  EXPECT_EQ(hung[0].status, TaskStatus::Failed);
  EXPECT_NE(hung[0].message.find("time budget of 1.5 s"), std::string::npos) << hung[0].message;
  EXPECT_NE(hung[0].message.find("did not answer; it gets no more tasks"), std::string::npos) << hung[0].message;
  EXPECT_GE(hung[0].seconds, 2.0);
  EXPECT_EQ(hung[1].status, TaskStatus::Done);
  EXPECT_EQ(hung[1].attempt, 2);
  EXPECT_NE(hung[1].host, "");
  for (const auto& [id, recs] : by_id)
    if (id != tasks[0].id) {
      ASSERT_EQ(recs.size(), 1u) << id;
      EXPECT_EQ(recs[0].status, TaskStatus::Done);
    }
  const Heartbeat hb = parse_heartbeat(read_text_file(heartbeat_path(run_dir)), "heartbeat");
  EXPECT_EQ(hb.state, "finished");
  EXPECT_EQ(hb.done, 6);
}

TEST(Mpi, ResultsAreIdenticalForOneTwoAndFourRanks) {
  TempDir dir;
  TreeShape shape;
  shape.parents = 6;
  shape.dependents = 4;
  shape.p = 0.3;
  shape.retries = 1;

  // One rank: this process, single-process mode.
  SweepOptions one = child_options(dir.sub("np1"));
  one.retries = shape.retries;
  const auto tasks = testing::synthetic_tree(shape.parents, shape.dependents, 0, shape.p);
  const SweepSummary s1 = run_sweep_tasks(tasks, one);
  ASSERT_GT(s1.failed_attempts, 0u);  // the draws exercise retries
  const auto reference = comparable_columns(results_path(one.run_dir));

  for (int ranks : {2, 4}) {
    const std::string run_dir = dir.sub("np" + std::to_string(ranks));
    auto job = start_mpi_sweep(run_dir, ranks, shape, dir.sub("mpirun.log"));
    ASSERT_EQ(job->wait(60), s1.exit_code()) << "see " << dir.sub("mpirun.log");
    const auto columns = comparable_columns(results_path(run_dir));
    ASSERT_EQ(columns.size(), reference.size());
    for (const auto& [name, column] : reference) EXPECT_TRUE(same_column(columns.at(name), column)) << name << ", " << ranks << " ranks";
  }
}

}  // namespace
}  // namespace pimqat::runner
