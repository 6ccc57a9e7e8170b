// results.h5: the tables built from a hand-written journal (statuses, sorting, column types,
// missing values), and the file written and read back with its provenance attributes.
#include "runner/results.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "pimqat/version.h"
#include "runner_testing.h"

namespace pimqat::runner {
namespace {

using testing::TempDir;

ExpandedTask task(const std::string& id, TaskKind kind, const std::string& dep, int die,
                  std::map<std::string, std::string> axes) {
  ExpandedTask t;
  t.id = id;
  t.kind = kind;
  t.depends_on = dep;
  t.die = die;
  t.axes = std::move(axes);
  return t;
}

JournalRecord record(const ExpandedTask& t, TaskStatus status, int attempt, std::map<std::string, double> metrics) {
  JournalRecord r;
  r.id = t.id;
  r.kind = t.kind;
  r.status = status;
  r.attempt = attempt;
  r.depends_on = t.depends_on;
  r.die = t.die;
  r.axes = t.axes;
  r.metrics = std::move(metrics);
  r.host = "h" + std::to_string(attempt);
  r.seconds = 1.5 * attempt;
  if (status == TaskStatus::Failed) r.message = "diverged at attempt " + std::to_string(attempt);
  return r;
}

// Two trained models (b fails), evals of both, and a pending synthetic task.
ResultsInput sample_input() {
  ResultsInput in;
  const auto a = task("a000000000000000", TaskKind::Train, "", -1, {{"pim.train_bits", "3"}});
  const auto b = task("b000000000000000", TaskKind::Train, "", -1, {{"pim.train_bits", "4"}});
  // Eval ids deliberately out of the (axes, die) order.
  const auto e1 = task("e100000000000000", TaskKind::Eval, a.id, 1, {{"pim.train_bits", "3"}, {"eval.noise_sigma", "10"}});
  const auto e2 = task("e200000000000000", TaskKind::Eval, a.id, 0, {{"pim.train_bits", "3"}, {"eval.noise_sigma", "10"}});
  const auto e3 = task("e300000000000000", TaskKind::Eval, a.id, 0, {{"pim.train_bits", "3"}, {"eval.noise_sigma", "2"}});
  const auto e4 = task("e400000000000000", TaskKind::Eval, b.id, 0, {{"pim.train_bits", "4"}, {"eval.noise_sigma", "2"}});
  const auto s1 = task("5000000000000000", TaskKind::Synthetic, "", -1, {{"x", "auto"}});
  in.tasks = {e4, e3, e2, e1, b, a, s1};
  JournalRecord ta = record(a, TaskStatus::Done, 1, {{"accuracy", 0.91}});
  ta.curve = {{0, 0.1, 2.0, 0.3, 1.9, 0.35, 1.0}, {1, 0.05, 1.0, 0.6, 1.1, 0.62, 1.0}};
  in.records = {record(b, TaskStatus::Failed, 1, {}), ta, record(b, TaskStatus::Failed, 2, {}),
                record(e1, TaskStatus::Failed, 1, {}), record(e1, TaskStatus::Done, 2, {{"accuracy", 0.8}, {"loss", 0.5}}),
                record(e2, TaskStatus::Done, 1, {{"accuracy", 0.7}, {"loss", 0.6}, {"rho_mean", 1.25}}),
                record(b, TaskStatus::Failed, 3, {}),
                record(e3, TaskStatus::Done, 1, {{"accuracy", 0.9}, {"loss", 0.2}})};
  in.max_attempts = 3;
  in.sweep_text = "name: sample\n";
  in.hosts = {"h1", "h2"};
  return in;
}

TEST(Results, TasksTableHasEveryTaskSortedByIdWithItsStatus) {
  const ResultsTables t = build_results_tables(sample_input());
  EXPECT_EQ(t.tasks.strings("id"), (std::vector<std::string>{"5000000000000000", "a000000000000000", "b000000000000000",
                                                             "e100000000000000", "e200000000000000", "e300000000000000",
                                                             "e400000000000000"}));
  EXPECT_EQ(t.tasks.strings("status"),
            (std::vector<std::string>{"pending", "done", "failed", "done", "done", "done", "skipped"}));
  EXPECT_EQ(t.tasks.ints("attempts"), (std::vector<std::int64_t>{0, 1, 3, 2, 1, 1, 0}));
  EXPECT_EQ(t.tasks.strings("message")[2], "diverged at attempt 3");
  EXPECT_EQ(t.tasks.strings("kind")[0], "synthetic");
  EXPECT_EQ(t.tasks.doubles("seconds")[3], 3.0);  // the successful (second) attempt
  EXPECT_TRUE(std::isnan(t.tasks.doubles("seconds")[0]));
  // Axis columns of /tasks are strings, even when numeric.
  EXPECT_EQ(t.tasks.strings("pim.train_bits")[1], "3");
  EXPECT_EQ(t.tasks.strings("x")[0], "auto");
  EXPECT_EQ(t.tasks.strings("x")[1], "");
}

TEST(Results, EvalTableIsTidySortedAndTyped) {
  const ResultsTables t = build_results_tables(sample_input());
  ASSERT_EQ(t.eval.rows(), 3u);
  // Sorted by train id, then axes numerically (2 < 10), then die.
  EXPECT_EQ(t.eval.strings("eval_id"),
            (std::vector<std::string>{"e300000000000000", "e200000000000000", "e100000000000000"}));
  EXPECT_EQ(t.eval.strings("train_id"), std::vector<std::string>(3, "a000000000000000"));
  EXPECT_EQ(t.eval.ints("die"), (std::vector<std::int64_t>{0, 0, 1}));
  EXPECT_EQ(t.eval.doubles("eval.noise_sigma"), (std::vector<double>{2, 10, 10}));
  EXPECT_EQ(t.eval.doubles("pim.train_bits"), (std::vector<double>{3, 3, 3}));
  EXPECT_EQ(t.eval.doubles("accuracy"), (std::vector<double>{0.9, 0.7, 0.8}));
  EXPECT_EQ(t.eval.doubles("loss"), (std::vector<double>{0.2, 0.6, 0.5}));
  const auto& rho = t.eval.doubles("rho_mean");
  EXPECT_TRUE(std::isnan(rho[0]) && rho[1] == 1.25 && std::isnan(rho[2]));
  const auto& names = t.eval.names();
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 4),
            (std::vector<std::string>{"train_id", "eval_id", "replicate", "die"}));
}

TEST(Results, TrainAndCurveTables) {
  const ResultsTables t = build_results_tables(sample_input());
  ASSERT_EQ(t.train.rows(), 1u);
  EXPECT_EQ(t.train.strings("train_id")[0], "a000000000000000");
  EXPECT_EQ(t.train.doubles("accuracy")[0], 0.91);
  EXPECT_EQ(t.train.ints("epochs")[0], 2);
  ASSERT_EQ(t.curves.rows(), 2u);
  EXPECT_EQ(t.curves.ints("epoch"), (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(t.curves.doubles("test_accuracy"), (std::vector<double>{0.35, 0.62}));
  EXPECT_EQ(t.synthetic.rows(), 0u);
}

TEST(Results, FileRoundTripWithProvenance) {
  TempDir dir;
  const std::string path = dir.sub("results.h5");
  const ResultsInput input = sample_input();
  write_results(path, input);
  const ResultsTables expected = build_results_tables(input);
  const H5File file = H5File::open(path);
  EXPECT_EQ(file.attr_int("format_version"), kFileFormatVersion);
  EXPECT_EQ(file.attr_string("program_version"), kVersion);
  EXPECT_EQ(file.attr_string("git_commit"), kGitCommit);
  EXPECT_EQ(file.attr_string("sweep_text"), "name: sample\n");
  EXPECT_EQ(file.attr_strings("hosts"), (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(file.attr_int("tasks_total"), 7);
  EXPECT_EQ(file.attr_int("tasks_done"), 4);
  EXPECT_EQ(file.attr_int("tasks_failed"), 1);
  const std::pair<const char*, const H5Table*> tables[] = {
      {"tasks", &expected.tasks}, {"eval", &expected.eval}, {"train", &expected.train}, {"curves", &expected.curves}};
  for (const auto& [name, table] : tables) {
    const H5Table read = read_table(file, name);
    ASSERT_EQ(read.names(), table->names()) << name;
    for (const std::string& c : table->names()) {
      const H5Column& a = read.column(c);
      const H5Column& b = table->column(c);
      if (const auto* x = std::get_if<std::vector<double>>(&a)) {
        const auto& y = std::get<std::vector<double>>(b);
        ASSERT_EQ(x->size(), y.size());
        for (std::size_t i = 0; i < y.size(); ++i)
          EXPECT_TRUE((*x)[i] == y[i] || (std::isnan((*x)[i]) && std::isnan(y[i]))) << name << "/" << c;
      } else {
        EXPECT_TRUE(a == b) << name << "/" << c;
      }
    }
  }
  const H5Table synthetic = read_table(file, "synthetic");
  EXPECT_EQ(synthetic.rows(), 0u);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp-" + std::to_string(::getpid())));
}

TEST(Results, StatusGivenByTheCoordinatorWins) {
  ResultsInput input = sample_input();
  input.status = {"running", "pending", "pending", "pending", "failed", "done", "pending"};
  const ResultsTables t = build_results_tables(input);
  // Task order in the table is by id: 5.., a.., b.., e1.., e2.., e3.., e4..
  EXPECT_EQ(t.tasks.strings("status"),
            (std::vector<std::string>{"pending", "done", "failed", "pending", "pending", "pending", "running"}));
}

}  // namespace
}  // namespace pimqat::runner
