// Tests of runner/sweep: expansion counts and dependency structure (grid, zip, ranges,
// replicates, include, synthetic), identity invariances, and the corpus of broken sweep files in
// tests/runner/data/bad_sweeps/ (NAME.yaml + NAME.expected: substrings the error must contain).
#include "runner/sweep.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "pim/gaussian.h"
#include "runner/canonical.h"
#include "runner/rundir.h"
#include "runner_testing.h"

namespace pimqat::runner {
namespace {

namespace fs = std::filesystem;

std::vector<const TaskSpec*> of_kind(const Sweep& s, TaskKind kind) {
  std::vector<const TaskSpec*> out;
  for (const auto& t : s.tasks)
    if (t.kind == kind) out.push_back(&t);
  return out;
}

std::vector<std::string> ids(const Sweep& s) {
  std::vector<std::string> out;
  for (const auto& t : s.tasks) out.push_back(t.id);
  return out;
}

std::set<std::string> id_set(const Sweep& s) {
  const auto v = ids(s);
  return {v.begin(), v.end()};
}

// Structural invariants every expansion must satisfy: unique ids equal to the hash of the
// canonical text; train tasks first; every eval depends on a train task before it.
void check_structure(const Sweep& s) {
  std::map<std::string, std::size_t> position;
  bool seen_eval = false;
  for (std::size_t i = 0; i < s.tasks.size(); ++i) {
    const TaskSpec& t = s.tasks[i];
    EXPECT_EQ(t.id, identity_of(t.canonical));
    EXPECT_TRUE(position.emplace(t.id, i).second) << "duplicate id " << t.id;
    if (t.kind == TaskKind::Eval) seen_eval = true;
    if (t.kind == TaskKind::Train) {
      EXPECT_FALSE(seen_eval) << "train task after an eval task";
      EXPECT_TRUE(t.depends_on.empty());
    }
    if (t.kind == TaskKind::Eval) {
      const auto dep = position.find(t.depends_on);
      ASSERT_NE(dep, position.end()) << "eval task " << i << " depends on a task not before it";
      const TaskSpec& train = s.tasks[dep->second];
      EXPECT_EQ(train.kind, TaskKind::Train);
      EXPECT_EQ(train.replicate, t.replicate);
      EXPECT_EQ(t.config.eval.dies, 1);
      // The eval task's training parameters are its train task's.
      EXPECT_EQ(train_canonical(t.config, t.replicate), train.canonical);
    }
  }
  EXPECT_EQ(s.fingerprint, sweep_fingerprint(s.tasks));
}

const char* kGrid = R"(
name: grid-test
seed: 1995
base:
  dataset: {name: fashion-mnist, train_subset: 1000}
  model: {arch: resnet20, weight_bits: 4, act_bits: 4}
  train: {epochs: 1}
  pim: {scheme: bit-serial, rows: 144}
  eval: {dies: 3, bn_calibration: 2}
grid:
  pim.train_bits: [4, 7]
  eval.infer_bits: [4, 7]
  eval.noise_sigma: {from: 0, to: 1, step: 0.5}
)";

TEST(Sweep, GridExpandsToTrainAndEvalTasks) {
  const Sweep s = parse_sweep(kGrid, "grid.yaml");
  EXPECT_EQ(s.name, "grid-test");
  EXPECT_EQ(s.seed, 1995u);
  EXPECT_EQ(s.grid_points, 12u);
  ASSERT_EQ(s.axes.size(), 3u);
  EXPECT_EQ(s.axes[2].labels, (std::vector<std::string>{"0", "0.5", "1"}));
  EXPECT_TRUE(s.axes[0].affects_training);
  EXPECT_FALSE(s.axes[1].affects_training);
  const auto trains = of_kind(s, TaskKind::Train);
  const auto evals = of_kind(s, TaskKind::Eval);
  ASSERT_EQ(trains.size(), 2u);
  ASSERT_EQ(evals.size(), 2u * 2 * 3 * 3);
  check_structure(s);

  // Every (TR, IR, sigma, die) combination exactly once, from nested loops.
  std::set<std::tuple<int, int, double, int>> expected, got;
  for (int tr : {4, 7})
    for (int ir : {4, 7})
      for (double sigma : {0.0, 0.5, 1.0})
        for (int die = 0; die < 3; ++die) expected.insert({tr, ir, sigma, die});
  for (const TaskSpec* t : evals) {
    got.insert({t->config.pim.train_bits, t->config.eval.infer_bits, t->config.eval.noise_sigma, t->config.eval.first_die});
    EXPECT_EQ(t->config.seed, 1995u);
    EXPECT_EQ(t->config.eval.bn_calibration, 2);
    EXPECT_EQ(t->axes.size(), 3u);
    EXPECT_EQ(t->axes.at("pim.train_bits"), std::to_string(t->config.pim.train_bits));
  }
  EXPECT_EQ(got, expected);
  for (const TaskSpec* t : trains) {
    EXPECT_TRUE(t->config.pim.enabled);
    EXPECT_EQ(t->config.seed, 1995u);
    EXPECT_EQ(t->config.data.train_subset, 1000);
    EXPECT_EQ(t->axes.size(), 1u) << "train tasks carry only the axes that affect training";
    EXPECT_EQ(t->canonical.find("eval."), std::string::npos) << t->canonical;
    const auto dependents = std::count_if(evals.begin(), evals.end(), [&](const TaskSpec* e) { return e->depends_on == t->id; });
    EXPECT_EQ(dependents, 2 * 3 * 3);
  }
  // Evals of one train task come together (a worker's model cache serves them in a row).
  std::vector<std::string> order;
  for (const TaskSpec* t : evals)
    if (order.empty() || order.back() != t->depends_on) order.push_back(t->depends_on);
  EXPECT_EQ(order.size(), 2u);
}

TEST(Sweep, ZipGroupsVaryTogetherAndCrossTheGrid) {
  const Sweep s = parse_sweep(R"(
base: {model: {weight_bits: 4, act_bits: 4}, pim: {}, eval: {dies: 2}}
grid:
  eval.noise_sigma: [0, 1]
zip:
  - {eval.infer_bits: [4, 7], pim.train_bits: [5, 8]}
  - {model.weight_bits: [3, 4], model.act_bits: [3, 4]}
)", "zip.yaml");
  EXPECT_EQ(s.grid_points, 2u * 2 * 2);
  check_structure(s);
  const auto trains = of_kind(s, TaskKind::Train);
  ASSERT_EQ(trains.size(), 4u);  // (TR 5 | 8) x (W3A3 | W4A4)
  std::set<std::pair<int, int>> pairs;
  for (const TaskSpec* t : of_kind(s, TaskKind::Eval)) {
    pairs.insert({t->config.eval.infer_bits, t->config.pim.train_bits});
    EXPECT_EQ(t->config.model.weight_bits, t->config.model.act_bits);
  }
  EXPECT_EQ(pairs, (std::set<std::pair<int, int>>{{4, 5}, {7, 8}}));
  EXPECT_EQ(of_kind(s, TaskKind::Eval).size(), 8u * 2);
  EXPECT_EQ(s.axes[1].zip_group, 0);
  EXPECT_EQ(s.axes[3].zip_group, 1);
}

TEST(Sweep, RangesAreExactAndRounded) {
  const Sweep s = parse_sweep(R"(
grid:
  eval.noise_sigma: {from: 0, to: 0.3, step: 0.1}
  eval.gain_sigma: {from: 1, to: 2, count: 3}
  eval.infer_bits: {from: 3, to: 8, step: 2}
  eval.bn_calibration: {from: 0, to: 30, count: 4}
)", "ranges.yaml");
  EXPECT_EQ(s.axes[0].labels, (std::vector<std::string>{"0", "0.1", "0.2", "0.3"}));
  EXPECT_EQ(s.axes[1].labels, (std::vector<std::string>{"1", "1.5", "2"}));
  EXPECT_EQ(s.axes[2].labels, (std::vector<std::string>{"3", "5", "7"}));
  EXPECT_EQ(s.axes[3].labels, (std::vector<std::string>{"0", "10", "20", "30"}));
  std::set<double> sigmas;
  for (const TaskSpec* t : of_kind(s, TaskKind::Eval)) sigmas.insert(t->config.eval.noise_sigma);
  EXPECT_EQ(sigmas, (std::set<double>{0.0, 0.1, 0.2, 0.3})) << "0 + 3 * 0.1 must be the double 0.3";
}

TEST(Sweep, ReplicatesRepeatEveryTaskWithItsOwnIdentity) {
  const std::string text = std::string(kGrid) + "replicates: 3\n";
  const Sweep s = parse_sweep(text, "rep.yaml");
  check_structure(s);
  EXPECT_EQ(of_kind(s, TaskKind::Train).size(), 6u);
  EXPECT_EQ(of_kind(s, TaskKind::Eval).size(), 3u * 36);
  std::map<int, int> per_replicate;
  for (const auto& t : s.tasks) per_replicate[t.replicate]++;
  EXPECT_EQ(per_replicate, (std::map<int, int>{{0, 38}, {1, 38}, {2, 38}}));
  // Replicate 0 is the same task with or without `replicates`.
  const Sweep one = parse_sweep(kGrid, "one.yaml");
  const auto all = id_set(s);
  for (const auto& id : ids(one)) EXPECT_TRUE(all.count(id));
}

TEST(Sweep, IdentitiesIgnoreKeyOrderNumberSpellingAndLayout) {
  const Sweep a = parse_sweep(kGrid, "a.yaml");
  const Sweep b = parse_sweep(R"(
# the same sweep, written differently
grid:
  eval.noise_sigma: [0.0, 5e-1, 1.00]
  eval.infer_bits: [4, 7]
  pim.train_bits: [4, 7]
base:
  eval:
    bn_calibration: 2
    dies: 3
  pim:
    rows: 1.44e2
    scheme: bit-serial
  train:
    epochs: 1
  model:
    act_bits: 4
    weight_bits: 4
  dataset:
    train_subset: 1e3
seed: 1995
name: another-name
)", "b.yaml");
  EXPECT_EQ(id_set(a), id_set(b));
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_NE(ids(a), ids(b)) << "the axis order changes the task order (not the identities)";
}

TEST(Sweep, ChangedValuesChangeExactlyTheIdentitiesTheyAffect) {
  const Sweep a = parse_sweep(kGrid, "a.yaml");
  auto with = [](std::string text, const std::string& from, const std::string& to) {
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  auto train_ids = [](const Sweep& s) {
    std::set<std::string> out;
    for (const TaskSpec* t : of_kind(s, TaskKind::Train)) out.insert(t->id);
    return out;
  };
  // A training parameter: every task changes.
  const Sweep lr = parse_sweep(with(kGrid, "train: {epochs: 1}", "train: {epochs: 1, lr: 0.05}"), "lr.yaml");
  for (const auto& id : ids(lr)) EXPECT_FALSE(id_set(a).count(id));
  // An evaluation parameter: the train tasks stay, every eval task changes.
  const Sweep gain = parse_sweep(with(kGrid, "bn_calibration: 2", "bn_calibration: 2, gain_sigma: 0.024"), "gain.yaml");
  EXPECT_EQ(train_ids(gain), train_ids(a));
  for (const TaskSpec* t : of_kind(gain, TaskKind::Eval)) EXPECT_FALSE(id_set(a).count(t->id));
  // The thread count is an execution setting: no identity changes.
  const Sweep threads = parse_sweep(with(kGrid, "train: {epochs: 1}", "train: {epochs: 1, threads: 16}"), "threads.yaml");
  EXPECT_EQ(ids(threads), ids(a));
  EXPECT_EQ(threads.tasks[0].config.train.threads, 16) << "but the tasks still carry it";
  // The sweep seed keys everything.
  const Sweep seed = parse_sweep(with(kGrid, "seed: 1995", "seed: 1996"), "seed.yaml");
  for (const auto& id : ids(seed)) EXPECT_FALSE(id_set(a).count(id));
  EXPECT_NE(seed.fingerprint, a.fingerprint);
  // More dies and one more axis value add tasks and keep every existing identity.
  const Sweep grown = parse_sweep(with(with(kGrid, "dies: 3", "dies: 5"), "[4, 7]\n  eval.noise", "[4, 6, 7]\n  eval.noise"),
                                  "grown.yaml");
  EXPECT_EQ(of_kind(grown, TaskKind::Eval).size(), 2u * 3 * 3 * 5);
  const auto grown_ids = id_set(grown);
  for (const auto& id : ids(a)) EXPECT_TRUE(grown_ids.count(id)) << id;
}

TEST(Sweep, DigitalBaselineIsTrainedOnceAndEvaluatedOnThePimModel) {
  const Sweep s = parse_sweep(R"(
base: {model: {weight_bits: 4, act_bits: 4}, pim: {scheme: bit-serial, rows: 144}, eval: {dies: 2}}
grid:
  pim.enabled: [false, true]
  pim.train_bits: [4, 7]
  eval.infer_bits: [4, 7]
)", "baseline.yaml");
  check_structure(s);
  const auto trains = of_kind(s, TaskKind::Train);
  ASSERT_EQ(trains.size(), 3u);  // one digital model, PIM-QAT at TR 4 and 7
  EXPECT_FALSE(trains[0]->config.pim.enabled);
  EXPECT_EQ(trains[0]->axes.at("pim.train_bits"), "-");
  EXPECT_EQ(trains[0]->axes.at("pim.enabled"), "false");
  const auto evals = of_kind(s, TaskKind::Eval);
  EXPECT_EQ(evals.size(), (2u + 2 * 2) * 2);
  for (const TaskSpec* t : evals) {
    if (t->config.pim.enabled) continue;
    EXPECT_EQ(t->depends_on, trains[0]->id);
    EXPECT_EQ(t->config.pim.rows, 144) << "the digital model is deployed on the sweep's PIM hardware";
    EXPECT_EQ(t->axes.at("pim.train_bits"), "-");
  }
}

TEST(Sweep, SectionAxesMergeMappingsAndNullTurnsPimOff) {
  const Sweep s = parse_sweep(R"(
base: {model: {weight_bits: 4, act_bits: 4}, pim: {scheme: bit-serial}}
grid:
  pim: [null, {train_bits: 4}, {scheme: native, rows: 9}]
)", "sections.yaml");
  check_structure(s);
  EXPECT_EQ(s.axes[0].labels, (std::vector<std::string>{"null", "{train_bits: 4}", "{rows: 9, scheme: native}"}));
  const auto trains = of_kind(s, TaskKind::Train);
  ASSERT_EQ(trains.size(), 3u);
  EXPECT_FALSE(trains[0]->config.pim.enabled);
  EXPECT_EQ(trains[1]->config.pim.scheme, Scheme::BitSerial);
  EXPECT_EQ(trains[1]->config.pim.train_bits, 4);
  EXPECT_EQ(trains[2]->config.pim.scheme, Scheme::Native);
  EXPECT_EQ(trains[2]->config.pim.rows, 9);
}

TEST(Sweep, IncludeLayersTheIncludedFileUnderThisOne) {
  const fs::path dir = fs::path(::testing::TempDir()) / "pimqat_sweep_include";
  fs::create_directories(dir / "common");
  std::ofstream(dir / "common" / "base.yaml") << R"(
name: common
seed: 7
base:
  model: {weight_bits: 4, act_bits: 4}
  pim: {scheme: bit-serial, rows: 144}
  train: {epochs: 3, lr: 0.1}
grid:
  pim.train_bits: [4, 5]
  eval.infer_bits: [4, 7]
)";
  const std::string main_text = R"(include: common/base.yaml
name: main
base:
  train: {epochs: 2}
grid:
  pim.train_bits: [6]
  eval.noise_sigma: [0, 1]
)";
  std::ofstream(dir / "main.yaml") << main_text;
  const Sweep s = load_sweep((dir / "main.yaml").string());
  EXPECT_EQ(s.name, "main");
  EXPECT_EQ(s.seed, 7u);
  ASSERT_EQ(s.files.size(), 2u);
  EXPECT_EQ(s.files[0].text, main_text) << "the sweep file is kept verbatim";
  EXPECT_NE(s.files[1].path.find("common/base.yaml"), std::string::npos);
  // Axes: the included grid in its order, pim.train_bits redefined by the main file.
  ASSERT_EQ(s.axes.size(), 3u);
  EXPECT_EQ(s.axes[0].path, "pim.train_bits");
  EXPECT_EQ(s.axes[0].labels, (std::vector<std::string>{"6"}));
  EXPECT_EQ(s.axes[2].path, "eval.noise_sigma");
  for (const auto& t : s.tasks) {
    EXPECT_EQ(t.config.train.epochs, 2);  // the main file wins
    EXPECT_EQ(t.config.train.lr, 0.1);    // the included file's key stays
    EXPECT_EQ(t.config.pim.rows, 144);
  }
  EXPECT_EQ(of_kind(s, TaskKind::Train).size(), 1u);
  EXPECT_EQ(of_kind(s, TaskKind::Eval).size(), 2u * 2);
  fs::remove_all(dir);
}

TEST(Sweep, SyntheticSweepsMakeSyntheticTasksAndDependents) {
  const Sweep s = parse_sweep(R"(
task: synthetic
seed: 5
replicates: 2
synthetic: {duration: 0.01, failure_probability: 0.25, dependents: 2}
grid:
  synthetic.result: [1, 2, 3]
)", "synthetic.yaml");
  EXPECT_EQ(s.kind, SweepKind::Synthetic);
  ASSERT_EQ(s.tasks.size(), 3u * 2 * (1 + 2));
  std::map<std::string, const TaskSpec*> by_id;
  for (const auto& t : s.tasks) {
    EXPECT_EQ(t.kind, TaskKind::Synthetic);
    EXPECT_EQ(t.id, identity_of(t.canonical));
    EXPECT_EQ(t.synthetic.duration_seconds, 0.01);
    EXPECT_EQ(t.synthetic.failure_probability, 0.25);
    EXPECT_EQ(t.config.seed, 5u);
    EXPECT_TRUE(by_id.emplace(t.id, &t).second);
  }
  std::size_t parents = 0;
  for (std::size_t i = 0; i < s.tasks.size(); ++i) {
    const TaskSpec& t = s.tasks[i];
    if (t.depends_on.empty()) {
      ++parents;
      EXPECT_LT(i, 6u) << "parents come first";
      continue;
    }
    const TaskSpec* parent = by_id.at(t.depends_on);
    EXPECT_TRUE(parent->depends_on.empty());
    EXPECT_EQ(parent->synthetic.result, t.synthetic.result);
    EXPECT_EQ(parent->replicate, t.replicate);
  }
  EXPECT_EQ(parents, 6u);
  std::set<double> results;
  for (const auto& t : s.tasks) results.insert(t.synthetic.result);
  EXPECT_EQ(results, (std::set<double>{1, 2, 3}));
  EXPECT_EQ(s.tasks[0].axes.at("synthetic.result"), "1");
}

TEST(Sweep, EachDistinctProblemIsReportedOnce) {
  try {
    parse_sweep(R"(
base:
  train: {epochs: 0}
grid:
  eval.noise_sigma: [0, 1, 2, 3]
  eval.infer_bits: [4, 5, 6, 20]
)", "once.yaml");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 2u) << e.what();
    EXPECT_EQ(format_problem(e.problems()[0]), "once.yaml:3:19: train.epochs: must be >= 1, got 0");
    EXPECT_EQ(format_problem(e.problems()[1]), "once.yaml:6:30: eval.infer_bits: must be 1..16, got 20");
  }
}

TEST(Sweep, CanonicalRecordsOfTasks) {
  ExperimentConfig c;
  c.seed = 3;
  const std::string train = train_canonical(c, 1);
  EXPECT_NE(train.find("\"task.kind\":\"train\""), std::string::npos);
  EXPECT_NE(train.find("\"task.replicate\":1"), std::string::npos);
  EXPECT_NE(train.find("\"seed\":3"), std::string::npos);
  EXPECT_NE(train.find("\"pim.enabled\":false"), std::string::npos);
  EXPECT_EQ(train.find("\"pim.train_bits\""), std::string::npos) << "PIM keys do not key a digital model";
  EXPECT_EQ(train.find("\"eval."), std::string::npos);
  EXPECT_EQ(train.find("\"train.threads\""), std::string::npos);
  EXPECT_NE(train.find("\"train.epochs\":10"), std::string::npos);
  const std::string eval = eval_canonical(c, 1);
  EXPECT_NE(eval.find("\"eval.noise_sigma\":0"), std::string::npos);
  EXPECT_NE(eval.find("\"pim.scheme\":\"bit-serial\""), std::string::npos);
  c.pim.enabled = true;
  EXPECT_NE(train_canonical(c, 1).find("\"pim.train_bits\":7"), std::string::npos);
}

// ---- The thermal-noise model in the identities of noisy evaluations ----

// What the same sweep expanded to before the noise model entered the identities (the pimqat of
// thermal-noise model 1): the field removed from every canonical text and the ids recomputed.
std::vector<TaskSpec> without_noise_model(std::vector<TaskSpec> tasks) {
  const std::string field = ",\"task.noise_model\":" + std::to_string(pim::kThermalNoiseModel);
  for (auto& t : tasks) {
    const auto at = t.canonical.find(field);
    if (at == std::string::npos) continue;
    t.canonical.erase(at, field.size());
    t.id = identity_of(t.canonical);
  }
  return tasks;
}

TEST(Sweep, OnlyNoisyEvaluationsCarryTheThermalNoiseModel) {
  const Sweep s = parse_sweep(kGrid, "grid.yaml");
  const std::string field = "\"task.noise_model\":" + std::to_string(pim::kThermalNoiseModel);
  int noisy = 0;
  for (const TaskSpec& t : s.tasks) {
    const bool has = t.canonical.find(field) != std::string::npos;
    EXPECT_EQ(has, t.kind == TaskKind::Eval && t.config.eval.noise_sigma > 0.0) << t.canonical;
    noisy += has;
  }
  EXPECT_EQ(noisy, 2 * 2 * 2 * 3);  // train bits x infer bits x noise 0.5, 1 x dies
  // Noiseless tasks keep the identities they had before the field existed; noisy evaluations
  // (and so the sweep's fingerprint) change.
  const std::vector<TaskSpec> before = without_noise_model(s.tasks);
  for (std::size_t i = 0; i < s.tasks.size(); ++i)
    EXPECT_EQ(before[i].id == s.tasks[i].id, s.tasks[i].canonical.find(field) == std::string::npos) << i;
  EXPECT_NE(sweep_fingerprint(before), s.fingerprint);
  const Sweep quiet = parse_sweep(
      std::string(kGrid).replace(std::string(kGrid).find("{from: 0, to: 1, step: 0.5}"), 27, "[0]"), "quiet.yaml");
  EXPECT_EQ(sweep_fingerprint(without_noise_model(quiet.tasks)), quiet.fingerprint);
}

TEST(Sweep, ARunDirectoryOfAnotherThermalNoiseModelIsRefusedNotResumed) {
  // A sweep begun by a pimqat of the previous noise model: resuming it with this one must stop with
  // a message that names the changed fingerprint and the reason, and leave the directory alone.
  testing::TempDir dir;
  const Sweep s = parse_sweep(kGrid, "grid.yaml");
  const SweepSource source{"grid.yaml", kGrid, ""};
  const std::vector<TaskSpec> before = without_noise_model(s.tasks);
  ASSERT_EQ(prepare_run_directory(dir.path(), source, before), RunDirState::Created);
  write_file_atomically(journal_path(dir.path()), "results of the old noise model\n");
  const std::string fingerprint = read_text_file(dir.sub(kFingerprintFileName));
  const std::string expanded = read_text_file(dir.sub(kExpandedFileName));
  try {
    prepare_run_directory(dir.path(), source, s.tasks);
    FAIL() << "resumed a directory of another noise model";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("holds a different sweep"), std::string::npos) << m;
    EXPECT_NE(m.find("(fingerprint " + task_list_fingerprint(s.tasks) + ")"), std::string::npos) << m;
    EXPECT_NE(m.find("(fingerprint " + task_list_fingerprint(before) + ")"), std::string::npos) << m;
    EXPECT_NE(m.find("The sweep file is the same"), std::string::npos) << m;
    EXPECT_NE(m.find("24 evaluation tasks with thermal noise differ from the directory's only by the thermal-noise "
                     "model (task.noise_model " +
                     std::to_string(pim::kThermalNoiseModel)),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("new --out directory"), std::string::npos) << m;
  }
  EXPECT_EQ(read_text_file(journal_path(dir.path())), "results of the old noise model\n");
  EXPECT_EQ(read_text_file(dir.sub(kFingerprintFileName)), fingerprint);
  EXPECT_EQ(read_text_file(dir.sub(kExpandedFileName)), expanded);
  // The same pimqat resumes its own directory.
  EXPECT_EQ(prepare_run_directory(dir.path(), source, before), RunDirState::Resumed);
}

// ---- The corpus of broken sweep files ----

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(Sweep, BrokenSweepCorpusGivesTheExpectedErrors) {
  const fs::path dir = fs::path(PIMQAT_SOURCE_DIR) / "tests/runner/data/bad_sweeps";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  // Load by relative name, as a user would, so that the messages are short and stable.
  const fs::path previous = fs::current_path();
  fs::current_path(dir);
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const fs::path p = entry.path();
    if (p.extension() != ".yaml") continue;
    const bool helper = p.stem().string().find("_helper") != std::string::npos;
    const bool has_expected = fs::exists(fs::path(p).replace_extension(".expected"));
    EXPECT_TRUE(helper != has_expected) << p.filename() << ": a case needs NAME.expected; included helpers are named *_helper.yaml";
    if (has_expected) cases.push_back(p);
  }
  std::sort(cases.begin(), cases.end());
  EXPECT_GE(cases.size(), 25u);
  for (const fs::path& p : cases) {
    const std::string name = p.filename().string();
    std::string message;
    std::size_t count = 0;
    try {
      load_sweep(name);
      ADD_FAILURE() << name << " loaded without an error";
      continue;
    } catch (const ConfigError& e) {
      message = e.what();
      count = e.problems().size();
    }
    std::istringstream expected(read_text(fs::path(p).replace_extension(".expected")));
    std::string line;
    while (std::getline(expected, line)) {
      if (line.empty() || line[0] == '#') continue;
      if (line.rfind("problems: ", 0) == 0) {
        EXPECT_EQ(count, std::stoul(line.substr(10))) << name << ":\n" << message;
        continue;
      }
      EXPECT_NE(message.find(line), std::string::npos) << name << ": missing\n  " << line << "\nin\n" << message;
    }
  }
  fs::current_path(previous);
}

}  // namespace
}  // namespace pimqat::runner
