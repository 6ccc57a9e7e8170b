// The crash test: a 3-rank sweep is killed with SIGKILL (mpirun and every rank at once: every
// process of mpirun's session, since mpirun gives each rank a process group of its own) at several
// moments, each time resumed, and finally run to its end. Its results must equal those of an
// uninterrupted run: same rows, no task journaled as done twice, no attempt journaled twice,
// nothing lost.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "core/hdf5.h"
#include "runner/coordinator.h"
#include "runner/journal.h"
#include "runner/results.h"
#include "runner_testing.h"

namespace pimqat::runner {
namespace {

using testing::ChildProcess;
using testing::TempDir;
using testing::comparable_columns;
using testing::same_column;

constexpr int kParents = 8, kDependents = 5, kRetries = 2;
constexpr double kDuration = 0.02, kFailureProbability = 0.2;

std::unique_ptr<ChildProcess> start(const std::string& run_dir, const std::string& log) {
  testing::TreeShape shape;
  shape.parents = kParents;
  shape.dependents = kDependents;
  shape.duration = kDuration;
  shape.p = kFailureProbability;
  shape.retries = kRetries;
  return testing::start_mpi_child(run_dir, 3, shape, log);
}

std::uint64_t journal_records(const std::string& run_dir) {
  try {
    return scan_journal_heads(journal_path(run_dir), [](const JournalRecordHead&) {}).records;
  } catch (const Error&) {
    return 0;  // the header is being created
  }
}

// No task done twice and no (task, attempt) journaled twice; attempts of a task are 1, 2, ... in order.
void expect_clean_journal(const std::string& run_dir, const std::string& when) {
  std::map<std::string, std::vector<int>> attempts;
  std::map<std::string, int> done;
  const JournalScan scan = scan_journal_heads(journal_path(run_dir), [&](const JournalRecordHead& h) {
    attempts[std::string(h.id)].push_back(h.attempt);
    if (h.status == TaskStatus::Done) ++done[std::string(h.id)];
  });
  for (const auto& [id, n] : done) EXPECT_EQ(n, 1) << id << " journaled as done " << n << " times " << when;
  for (const auto& [id, seq] : attempts)
    for (std::size_t k = 0; k < seq.size(); ++k)
      EXPECT_EQ(seq[k], static_cast<int>(k) + 1) << id << ": attempts out of order or repeated " << when;
}

TEST(Crash, KilledSweepsResumeToTheResultsOfAnUninterruptedRun) {
  TempDir dir;
  // The uninterrupted reference (single process; the Mpi tests show that ranks do not matter).
  SweepOptions reference_options;
  reference_options.run_dir = dir.sub("reference");
  reference_options.sweep.path = "synthetic-tree";
  reference_options.sweep.text = "# synthetic tree\n";
  reference_options.sweep_seed = 42;
  reference_options.retries = kRetries;
  const auto tasks = testing::synthetic_tree(kParents, kDependents, 0, kFailureProbability);
  const SweepSummary reference = run_sweep_tasks(tasks, reference_options);
  ASSERT_GT(reference.failed_attempts, 0u);
  const auto expected = comparable_columns(results_path(reference_options.run_dir));

  const std::string run_dir = dir.sub("crashed");
  const std::string log = dir.sub("mpirun.log");
  // Kill points: during start-up, then after the journal gained 1, 4, 9 and 15 records.
  std::vector<std::uint64_t> records_after_kill;
  int kills = 0;
  for (int extra : {-1, 1, 4, 9, 15}) {
    const std::uint64_t before = journal_records(run_dir);
    auto job = start(run_dir, log);
    const auto t0 = std::chrono::steady_clock::now();
    if (extra < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    } else {
      while (journal_records(run_dir) < before + static_cast<std::uint64_t>(extra) &&
             std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20))
        std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    job->kill_session(SIGKILL);  // mpirun and every rank at the same moment
    const int code = job->wait(20);
    if (code == 128 + SIGKILL) ++kills;  // (a run may end on its own before the kill lands)
    ASSERT_TRUE(job->session_gone(10)) << "a rank survived SIGKILL";
    // The journal is readable after every kill (a torn last record at most).
    EXPECT_NO_THROW(records_after_kill.push_back(journal_records(run_dir))) << "after kill " << kills;
    expect_clean_journal(run_dir, "after kill at +" + std::to_string(extra));
  }
  EXPECT_GE(kills, 4) << "the sweep ended before it could be killed: make the tasks longer";
  for (std::size_t k = 1; k < records_after_kill.size(); ++k) EXPECT_GE(records_after_kill[k], records_after_kill[k - 1]);

  auto last = start(run_dir, log);
  ASSERT_EQ(last->wait(60), reference.exit_code()) << "see " << log;
  expect_clean_journal(run_dir, "at the end");
  const auto columns = comparable_columns(results_path(run_dir));
  ASSERT_EQ(columns.size(), expected.size());
  for (const auto& [name, column] : expected) EXPECT_TRUE(same_column(columns.at(name), column)) << name;
  std::printf("[ crash    ] %d kills, journal records after each: ", kills);
  for (auto n : records_after_kill) std::printf("%llu ", static_cast<unsigned long long>(n));
  std::printf("-> identical results\n");
}

}  // namespace
}  // namespace pimqat::runner
