// The sweeps shipped in sweeps/ (the quickstart and the paper's experiments) load, validate and
// expand to the task counts their header comments and sweeps/paper/small/README.md promise.
#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <string>

#include "runner/plan.h"
#include "runner/sweep.h"

namespace pimqat::runner {
namespace {

struct Counts {
  std::size_t train, eval;
};

Counts counts_of(const std::string& relative) {
  const Sweep sweep = load_sweep(std::string(PIMQAT_SOURCE_DIR) + "/sweeps/" + relative);
  const Plan plan = make_plan(sweep);
  return {plan.train_tasks, plan.eval_tasks};
}

void expect_counts(const std::string& relative, std::size_t train, std::size_t eval) {
  SCOPED_TRACE(relative);
  Counts c{};
  ASSERT_NO_THROW(c = counts_of(relative));
  EXPECT_EQ(c.train, train);
  EXPECT_EQ(c.eval, eval);
}

TEST(ShippedSweeps, QuickstartIsValid) {
  const Sweep sweep = load_sweep(std::string(PIMQAT_SOURCE_DIR) + "/sweeps/quickstart.yaml");
  EXPECT_EQ(sweep.name, "quickstart");
  EXPECT_GT(sweep.tasks.size(), 0u);
}

TEST(ShippedSweeps, PaperSweepsHaveTheTasksTheyDocument) {
  // One digital baseline shared by the three schemes + 3 x 6 PIM-QAT; 3 x 6 x 2 ideal evals.
  expect_counts("paper/fig4-schemes.yaml", 19, 36);
  expect_counts("paper/figA4-bitserial.yaml", 6, 36);
  expect_counts("paper/figA5-rescaling.yaml", 6, 6);
  // 2 models x 2 calibration settings x (1 ideal die + 32 non-ideal dies).
  expect_counts("paper/figA6-bn-calibration.yaml", 2, 132);
  expect_counts("paper/fig5-best-tr.yaml", 6, 6 * 4 * 4 * 32);
  expect_counts("paper/depth.yaml", 8, 8);
}

TEST(ShippedSweeps, SmallPaperSweepsHaveTheTasksTheyDocument) {
  expect_counts("paper/small/figA4-bitserial.yaml", 7, 42);
  expect_counts("paper/small/figA6-bn-calibration.yaml", 2, 36);
  expect_counts("paper/small/fig5-best-tr.yaml", 3, 72);
  expect_counts("paper/small/fig5-best-tr-low-noise.yaml", 3, 48);
  expect_counts("paper/small/figA5-rescaling.yaml", 3, 3);
  expect_counts("paper/small/figA5-rescaling-warmup.yaml", 3, 3);
  expect_counts("paper/small/fig4-schemes.yaml", 9, 16);
  expect_counts("paper/small/fig4-schemes-warmup.yaml", 5, 8);
  expect_counts("paper/small/depth.yaml", 8, 8);
}

TEST(ShippedSweeps, EverySweepFileLoads) {
  // Any sweep added later is at least valid (common.yaml is a fragment: it has no axes, but it
  // is a valid sweep too).
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::string(PIMQAT_SOURCE_DIR) + "/sweeps")) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(load_sweep(entry.path().string()));
  }
  EXPECT_GE(files, 14u);
}

}  // namespace
}  // namespace pimqat::runner
