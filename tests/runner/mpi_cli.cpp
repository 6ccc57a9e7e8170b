// The real program: `mpirun -np 3 pimqat sweep` on a synthetic sweep file, compared with the same
// sweep run by one plain process; `pimqat status`; a different sweep refused with exit status 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "core/hdf5.h"
#include "runner/journal.h"
#include "runner/rundir.h"
#include "runner/signals.h"
#include "runner_testing.h"

namespace pimqat::runner {
namespace {

using testing::ChildProcess;
using testing::TempDir;
using testing::read_all;
using testing::same_column;

constexpr const char* kSweep =
    "name: cli-synthetic\n"
    "seed: 11\n"
    "task: synthetic\n"
    "synthetic: {duration: 0.005, failure_probability: 0.25, result: 1, dependents: 2}\n"
    "grid:\n"
    "  synthetic.result: [1, 2, 3, 4, 5, 6, 7, 8]\n";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

int run(const std::vector<std::string>& argv, const std::string& log, double timeout = 60) {
  ChildProcess child(argv, testing::mpirun_env(), log);
  return child.wait(timeout);
}

class PimqatBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(PIMQAT_BINARY)) GTEST_SKIP() << PIMQAT_BINARY << " is not built";
  }
};

TEST_F(PimqatBinary, MpirunSweepMatchesASingleProcessRun) {
  TempDir dir;
  const std::string sweep = dir.sub("sweep.yaml");
  write_text(sweep, kSweep);
  const std::string single = dir.sub("single"), parallel = dir.sub("mpi");
  const int single_code = run({PIMQAT_BINARY, "sweep", sweep, "--out", single, "--quiet"}, dir.sub("single.log"));
  ASSERT_TRUE(single_code == 0 || single_code == kExitTasksFailed) << read_all(dir.sub("single.log"));
  const int mpi_code = run(testing::mpirun_argv(3, {PIMQAT_BINARY, "sweep", sweep, "--out", parallel}),
                           dir.sub("mpi.log"));
  ASSERT_EQ(mpi_code, single_code) << read_all(dir.sub("mpi.log"));
  EXPECT_NE(read_all(dir.sub("mpi.log")).find("on 3 ranks"), std::string::npos) << read_all(dir.sub("mpi.log"));

  EXPECT_EQ(read_text_file(run_file(parallel, kSweepFileName)), kSweep);
  EXPECT_EQ(finished_task_ids(parallel), finished_task_ids(single));
  EXPECT_EQ(read_expanded_tasks(parallel).size(), 24u);  // 8 parents, 2 dependents each
  if (single_code == 0) EXPECT_EQ(finished_task_ids(parallel).size(), 24u);
  const H5File a = H5File::open(results_path(single)), b = H5File::open(results_path(parallel));
  for (const char* table : {"tasks", "synthetic"}) {
    const H5Table ta = read_table(a, table), tb = read_table(b, table);
    ASSERT_EQ(ta.names(), tb.names()) << table;
    for (const std::string& c : ta.names())
      if (c != "seconds" && c != "host") EXPECT_TRUE(same_column(ta.column(c), tb.column(c))) << table << "/" << c;
  }

  // Status from the files, and a rerun that has nothing left to do.
  ASSERT_EQ(run({PIMQAT_BINARY, "status", parallel}, dir.sub("status.log")), 0);
  const std::string status = read_all(dir.sub("status.log"));
  EXPECT_NE(status.find("finished"), std::string::npos) << status;
  EXPECT_NE(status.find(std::to_string(finished_task_ids(parallel).size()) + " done"), std::string::npos) << status;
  ASSERT_EQ(run({PIMQAT_BINARY, "sweep", sweep, "--out", parallel, "--quiet"}, dir.sub("rerun.log")), single_code);
  EXPECT_NE(read_all(dir.sub("rerun.log")).find("0 attempts"), std::string::npos) << read_all(dir.sub("rerun.log"));
}

TEST_F(PimqatBinary, DifferentSweepInTheDirectoryIsRefused) {
  TempDir dir;
  const std::string sweep = dir.sub("sweep.yaml"), other = dir.sub("other.yaml");
  write_text(sweep, kSweep);
  std::string changed = kSweep;
  changed.replace(changed.find("7, 8]"), 5, "7, 8, 9]");
  write_text(other, changed);
  const std::string out = dir.sub("run");
  const int code = run({PIMQAT_BINARY, "sweep", sweep, "--out", out, "--quiet"}, dir.sub("first.log"));
  ASSERT_TRUE(code == 0 || code == kExitTasksFailed) << read_all(dir.sub("first.log"));
  const std::size_t done = finished_task_ids(out).size();
  EXPECT_EQ(run({PIMQAT_BINARY, "sweep", other, "--out", out}, dir.sub("second.log")), 1);
  const std::string log = read_all(dir.sub("second.log"));
  EXPECT_NE(log.find("different sweep"), std::string::npos) << log;
  EXPECT_NE(log.find("3 tasks are new"), std::string::npos) << log;  // one parent and its 2 dependents
  EXPECT_EQ(finished_task_ids(out).size(), done);  // nothing was run or rewritten
}

}  // namespace
}  // namespace pimqat::runner
