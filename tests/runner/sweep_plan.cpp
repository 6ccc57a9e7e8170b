// Tests of runner/plan: the model's MAC count against hand-computed values, the cost model, task
// counts, and the done counts from a run directory.
#include "runner/plan.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace pimqat::runner {
namespace {

TEST(SweepPlan, ForwardMacsMatchHandCounts) {
  ModelConfig model;
  DataConfig cifar;
  cifar.name = "cifar10";
  // ResNet-20 on 3x32x32, layer by layer:
  //   conv1 32*32*16*3*9 = 442368; stage 1: 6 convs of 32*32*16*16*9 = 14155776;
  //   stage 2 (16x16): 256*(32*16*9 + 32*32*9 + 32*16 + 4*32*32*9) = 13107200; stage 3 (8x8): 13107200;
  //   linear 64*10 = 640. Total 40813184 (the 40.8 M usually quoted).
  EXPECT_EQ(forward_macs(model, dataset_shape(cifar)), 40813184);
  // 1x28x28 (stages at 28, 14, 7): 112896 + 10838016 + 196*51200 + 49*204800 + 640.
  EXPECT_EQ(forward_macs(model, dataset_shape(DataConfig{})), 31021952);
  // ResNet-56, CIFAR-100: 442368 + 18*2359296 + 2*(1179648 + 131072 + 17*2359296) + 64*100.
  model.arch = "resnet56";
  cifar.name = "cifar100";
  EXPECT_EQ(forward_macs(model, dataset_shape(cifar)), 442368 + 18 * 2359296 + 2 * (1179648 + 131072 + 17 * 2359296) + 6400);
  model.arch = "resnet18";
  EXPECT_THROW(forward_macs(model, dataset_shape(cifar)), Error);
}

TEST(SweepPlan, CostModelOfOneTask) {
  ExperimentConfig c;
  c.data.train_subset = 1000;
  c.data.test_subset = 200;
  c.train.epochs = 3;
  c.eval.bn_calibration = 5;
  c.eval.batch_size = 100;
  const double f = 31021952.0;
  EXPECT_DOUBLE_EQ(train_task_macs(c), 3 * (3 * 1000.0 + 200) * f);
  EXPECT_DOUBLE_EQ(eval_task_macs(c), (200 + 5 * 100.0) * f);
  c.data.train_subset = 10000000;  // a subset larger than the dataset is the dataset
  EXPECT_EQ(dataset_shape(c.data).train_images, 60000);
}

const char* kSweep = R"(
name: plan-test
seed: 3
base:
  dataset: {train_subset: 1000, test_subset: 100}
  model: {weight_bits: 4, act_bits: 4}
  train: {epochs: 2}
  pim: {}
  eval: {dies: 4}
grid:
  pim.train_bits: [4, 7]
  eval.infer_bits: [4, 5, 7]
)";

TEST(SweepPlan, CountsTasksAndCost) {
  const Sweep sweep = parse_sweep(kSweep, "plan.yaml");
  const Plan p = make_plan(sweep);
  EXPECT_EQ(p.train_tasks, 2u);
  EXPECT_EQ(p.eval_tasks, 2u * 3 * 4);
  EXPECT_EQ(p.grid_points, 6u);
  const double f = 31021952.0;
  EXPECT_DOUBLE_EQ(p.train_macs, 2 * 2 * (3 * 1000.0 + 100) * f);
  EXPECT_DOUBLE_EQ(p.eval_macs, 24 * 100.0 * f);
  const std::string text = format_plan(p);
  EXPECT_NE(text.find("sweep plan-test (plan.yaml): seed 3, fingerprint " + sweep.fingerprint), std::string::npos) << text;
  EXPECT_NE(text.find("axes (6 grid points):"), std::string::npos) << text;
  EXPECT_NE(text.find("pim.train_bits   2 values: 4, 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("eval.infer_bits  3 values: 4, 5, 7   (evaluation only)"), std::string::npos) << text;
  EXPECT_NE(text.find("tasks: 2 train + 24 eval = 26\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cost estimate: train "), std::string::npos) << text;
  EXPECT_EQ(text.find("run directory"), std::string::npos);
}

// A zip member is indented two more spaces than a grid axis; the value counts still line up,
// with at least two spaces after the longest path (which here is a zip member's).
TEST(SweepPlan, ZipAxesLineUpWithGridAxes) {
  const Sweep sweep = parse_sweep(R"(
base: {model: {weight_bits: 4, act_bits: 4}, pim: {}}
grid:
  pim.rescale: [none, both]
zip:
  - pim.train_bits: [4, 7]
    eval.infer_bits: [4, 7]
)", "zip.yaml");
  const std::string text = format_plan(make_plan(sweep));
  EXPECT_NE(text.find("\n  pim.rescale        2 values: none, both\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n    pim.train_bits   2 values: 4, 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n    eval.infer_bits  2 values: 4, 7   (evaluation only)\n"), std::string::npos) << text;
}

TEST(SweepPlan, DoneCountsFromARunDirectory) {
  const Sweep sweep = parse_sweep(kSweep, "plan.yaml");
  const std::string dir = ::testing::TempDir();
  // A fake journal reader: the first train task, two of its evals, and one id of another sweep.
  const std::string train_id = sweep.tasks[0].id;
  std::vector<std::string> eval_ids;
  for (const auto& t : sweep.tasks)
    if (t.depends_on == train_id && eval_ids.size() < 2) eval_ids.push_back(t.id);
  std::string asked;
  const FinishedTaskIds finished = [&](const std::string& run_dir) {
    asked = run_dir;
    return std::set<std::string>{train_id, eval_ids[0], eval_ids[1], "0123456789abcdef"};
  };
  const Plan p = make_plan(sweep, dir, finished);
  EXPECT_EQ(asked, dir);
  EXPECT_TRUE(p.run_dir_exists);
  EXPECT_TRUE(p.done_known);
  EXPECT_EQ(p.done_train, 1u);
  EXPECT_EQ(p.done_eval, 2u);
  EXPECT_EQ(p.done_foreign, 1u);
  EXPECT_DOUBLE_EQ(p.remaining_macs, p.train_macs / 2 + p.eval_macs * 22 / 24);
  const std::string text = format_plan(p);
  EXPECT_NE(text.find(": 3 of 26 tasks done (1 train, 2 eval); remaining about"), std::string::npos) << text;
  EXPECT_NE(text.find("1 finished tasks in its journal are not tasks of this sweep"), std::string::npos) << text;

  const Plan missing = make_plan(sweep, dir + "/does-not-exist", finished);
  EXPECT_FALSE(missing.run_dir_exists);
  EXPECT_EQ(missing.done_tasks(), 0u);
  EXPECT_NE(format_plan(missing).find("does not exist yet"), std::string::npos);
  const Plan unknown = make_plan(sweep, dir, nullptr);
  EXPECT_NE(format_plan(unknown).find("not available"), std::string::npos);
}

TEST(SweepPlan, TaskListHasOneLinePerTask) {
  const Sweep sweep = parse_sweep(kSweep, "plan.yaml");
  const std::string list = format_task_list(sweep);
  EXPECT_EQ(static_cast<std::size_t>(std::count(list.begin(), list.end(), '\n')), sweep.tasks.size() + 1);
  const TaskSpec& eval = sweep.tasks.back();
  EXPECT_NE(list.find(eval.id + "\teval\t0\t3\t" + eval.depends_on + "\teval.infer_bits=7 pim.train_bits=7\n"),
            std::string::npos) << list;
}

TEST(SweepPlan, SiNumbers) {
  EXPECT_EQ(si_number(0), "0");
  EXPECT_EQ(si_number(999), "999");
  EXPECT_EQ(si_number(1234567), "1.23 M");
  EXPECT_EQ(si_number(2e10), "20 G");
  EXPECT_EQ(si_number(4.5e18), "4.5 E");
}

}  // namespace
}  // namespace pimqat::runner
