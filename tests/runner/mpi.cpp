// Sweeps across MPI ranks. The test binary starts itself under `mpirun` (the MpiChild test, which
// is skipped in a normal run) on hand-built synthetic task lists: a 3-rank sweep with a failing
// task, and identical results tables for 1, 2 and 4 ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "core/hdf5.h"
#include "runner/coordinator.h"
#include "runner/journal.h"
#include "runner/results.h"
#include "runner/signals.h"
#include "runner/status.h"
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

SweepOptions child_options(const std::string& run_dir) {
  SweepOptions o;
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
  int code = 1;
  try {
    const SweepSummary summary = run_sweep_tasks(child_tasks(), options);
    code = summary.worker_exit_code >= 0 ? 0 : summary.exit_code();  // as `pimqat sweep`: workers exit 0
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child error: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  std::fflush(nullptr);
  std::_Exit(code);
}

struct TreeShape {
  int parents = 6, dependents = 3;
  double duration = 0, p = 0;
  int always_fail = -1;
  int retries = 2;
};

std::vector<std::string> child_env(const std::string& run_dir, const TreeShape& shape) {
  std::vector<std::string> env = testing::mpirun_env();
  env.push_back("PIMQAT_TEST_MPI_CHILD=1");
  env.push_back("PIMQAT_TEST_RUN_DIR=" + run_dir);
  env.push_back("PIMQAT_TEST_PARENTS=" + std::to_string(shape.parents));
  env.push_back("PIMQAT_TEST_DEPENDENTS=" + std::to_string(shape.dependents));
  env.push_back("PIMQAT_TEST_DURATION=" + std::to_string(shape.duration));
  env.push_back("PIMQAT_TEST_P=" + std::to_string(shape.p));
  env.push_back("PIMQAT_TEST_ALWAYS_FAIL=" + std::to_string(shape.always_fail));
  env.push_back("PIMQAT_TEST_RETRIES=" + std::to_string(shape.retries));
  return env;
}

std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

// Starts `ranks` ranks of this binary's MpiChild test under mpirun.
std::unique_ptr<ChildProcess> start_mpi_sweep(const std::string& run_dir, int ranks, const TreeShape& shape,
                                              const std::string& log) {
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{"mpirun", "--oversubscribe", "-np", std::to_string(ranks), self_exe(),
                               "--gtest_filter=MpiChild.RunSweep"},
      child_env(run_dir, shape), log);
}

// Every column of every table except those that hold timings and hosts.
std::map<std::string, H5Column> comparable_columns(const std::string& results_file) {
  std::map<std::string, H5Column> columns;
  const H5File file = H5File::open(results_file);
  for (const char* table : {"tasks", "eval", "train", "curves", "synthetic"}) {
    const H5Table t = read_table(file, table);
    for (const std::string& name : t.names())
      if (name != "seconds" && name != "host") columns[std::string(table) + "/" + name] = t.column(name);
  }
  return columns;
}

// Equal columns, NaN equal to NaN (missing values).
bool same_column(const H5Column& a, const H5Column& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<std::vector<double>>(&a)) {
    const auto& y = std::get<std::vector<double>>(b);
    if (x->size() != y.size()) return false;
    for (std::size_t i = 0; i < x->size(); ++i)
      if (!((*x)[i] == y[i] || (std::isnan((*x)[i]) && std::isnan(y[i])))) return false;
    return true;
  }
  return a == b;
}

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
