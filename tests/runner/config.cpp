// Tests of runner/config: the experiment configuration schema, its validation messages (location,
// key, what is valid), --set overrides, the to_yaml round trip and the generated reference table.
#include "runner/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pimqat::runner {
namespace {

// The problems of a text that must not parse (fails the test if it parses).
std::vector<ConfigProblem> problems_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_experiment_text(text, "cfg.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "expected a ConfigError for:\n" << text;
  return {};
}

std::string all_text(const std::vector<ConfigProblem>& problems) {
  std::string out;
  for (const auto& p : problems) out += format_problem(p) + "\n";
  return out;
}

// Every key's canonical value: equality of two configurations over the whole schema.
std::string fingerprint(const ExperimentConfig& c) {
  std::string out;
  for (const auto& k : config_schema()) out += k.key + "=" + config_value_canonical(c, k.key) + "\n";
  return out;
}

TEST(Config, EmptyDocumentGivesTheDefaults) {
  const ExperimentConfig c = parse_experiment_text("", "cfg.yaml");
  EXPECT_EQ(fingerprint(c), fingerprint(ExperimentConfig{}));
  EXPECT_FALSE(c.pim.enabled);
}

TEST(Config, EveryKeyIsParsedIntoItsField) {
  const std::string text = R"(
seed: 18446744073709551615
dataset: {name: cifar10, dir: /data/c10, train_subset: 1e4, test_subset: 500, crop_padding: 2, flip: false}
model: {arch: resnet32, weight_bits: 4, act_bits: 3, first_last_weight_bits: 6, alpha_init: 6.5}
train:
  epochs: 20
  batch_size: 64
  lr: 5e-2
  momentum: 0.8
  nesterov: no
  weight_decay: 0.0005
  schedule: multistep
  milestones: [10, 15]
  gamma: 0.2
  warmup_epochs: 2
  threads: 3
pim: {scheme: differential, rows: 72, train_bits: 5, rescale: backward, adc_clip: 0.75}
eval:
  infer_bits: 6
  dies: 32
  first_die: 4
  noise_sigma: 0.50
  gain_sigma: 0.024
  offset_sigma: 2.04
  curve: smooth
  curve_strength: -1.5
  bn_calibration: 20
  batch_size: 100
)";
  const ExperimentConfig c = parse_experiment_text(text, "cfg.yaml");
  EXPECT_EQ(c.seed, 18446744073709551615ull);
  EXPECT_EQ(c.data.name, "cifar10");
  EXPECT_EQ(c.data.dir, "/data/c10");
  EXPECT_EQ(c.data.train_subset, 10000);
  EXPECT_EQ(c.data.test_subset, 500);
  EXPECT_EQ(c.data.crop_padding, 2);
  EXPECT_EQ(c.data.flip, 0);
  EXPECT_EQ(c.model.arch, "resnet32");
  EXPECT_EQ(c.model.weight_bits, 4);
  EXPECT_EQ(c.model.act_bits, 3);
  EXPECT_EQ(c.model.first_last_weight_bits, 6);
  EXPECT_EQ(c.model.alpha_init, 6.5f);
  EXPECT_EQ(c.train.epochs, 20);
  EXPECT_EQ(c.train.batch_size, 64);
  EXPECT_EQ(c.train.lr, 0.05);
  EXPECT_EQ(c.train.momentum, 0.8);
  EXPECT_FALSE(c.train.nesterov);
  EXPECT_EQ(c.train.weight_decay, 0.0005);
  EXPECT_EQ(c.train.schedule, LrSchedule::Multistep);
  EXPECT_EQ(c.train.milestones, (std::vector<int>{10, 15}));
  EXPECT_EQ(c.train.gamma, 0.2);
  EXPECT_EQ(c.train.warmup_epochs, 2);
  EXPECT_EQ(c.train.threads, 3);
  EXPECT_TRUE(c.pim.enabled);
  EXPECT_EQ(c.pim.scheme, Scheme::Differential);
  EXPECT_EQ(c.pim.rows, 72);
  EXPECT_EQ(c.pim.train_bits, 5);
  EXPECT_EQ(c.pim.rescale, Rescale::Backward);
  EXPECT_EQ(c.pim.adc_clip, 0.75);
  EXPECT_EQ(c.eval.infer_bits, 6);
  EXPECT_EQ(c.eval.dies, 32);
  EXPECT_EQ(c.eval.first_die, 4);
  EXPECT_EQ(c.eval.noise_sigma, 0.5);
  EXPECT_EQ(c.eval.gain_sigma, 0.024);
  EXPECT_EQ(c.eval.offset_sigma, 2.04);
  EXPECT_EQ(c.eval.curve, CurveModel::Smooth);
  EXPECT_EQ(c.eval.curve_strength, -1.5);
  EXPECT_EQ(c.eval.bn_calibration, 20);
  EXPECT_EQ(c.eval.batch_size, 100);
}

TEST(Config, PimSectionPresenceEnablesPim) {
  EXPECT_TRUE(parse_experiment_text("model: {weight_bits: 4, act_bits: 4}\npim: {}\n", "c").pim.enabled);
  EXPECT_FALSE(parse_experiment_text("pim: null\n", "c").pim.enabled);
  EXPECT_FALSE(parse_experiment_text("pim:\n", "c").pim.enabled);
  const ExperimentConfig off = parse_experiment_text("pim: {enabled: false, scheme: native}\n", "c");
  EXPECT_FALSE(off.pim.enabled);
  EXPECT_EQ(off.pim.scheme, Scheme::Native);  // the deployed PIM model of a digital baseline
  EXPECT_EQ(parse_experiment_text("dataset: {flip: auto}\n", "c").data.flip, -1);
  EXPECT_EQ(parse_experiment_text("dataset: {flip: true}\n", "c").data.flip, 1);
}

TEST(Config, UnknownKeyGetsLocationAndClosestSpelling) {
  const auto p = problems_of("train:\n  epochs: 3\n  lrr: 0.1\n");
  ASSERT_EQ(p.size(), 1u) << all_text(p);
  EXPECT_EQ(p[0].where, "cfg.yaml:3:3");
  EXPECT_EQ(p[0].key, "train.lrr");
  EXPECT_NE(p[0].message.find("did you mean `train.lr`?"), std::string::npos) << p[0].message;

  const auto top = problems_of("seed: 3\ntrian: {epochs: 2}\n");
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].where, "cfg.yaml:2:1");
  EXPECT_NE(top[0].message.find("did you mean `train`?"), std::string::npos) << top[0].message;

  // A key in the wrong section: the same word where it belongs.
  const auto moved = problems_of("train: {dies: 4}\n");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_NE(moved[0].message.find("did you mean `eval.dies`?"), std::string::npos) << moved[0].message;
  const auto flat = problems_of("lr: 0.1\n");
  ASSERT_EQ(flat.size(), 1u);
  EXPECT_NE(flat[0].message.find("did you mean `train.lr`?"), std::string::npos) << flat[0].message;

  // Nothing close: the list of valid keys of the section.
  const auto far = problems_of("model: {weight_bits: 4, act_bits: 4}\npim: {xyzzy_frobnicate: 1}\n");
  ASSERT_EQ(far.size(), 1u);
  EXPECT_NE(far[0].message.find("valid keys here: pim.enabled, pim.scheme, pim.rows"), std::string::npos) << far[0].message;
}

TEST(Config, WrongTypeSaysWhatWasExpected) {
  const auto p = problems_of("train:\n  epochs: ten\n  nesterov: maybe\n  milestones: 30\n  lr: [1]\n");
  ASSERT_EQ(p.size(), 4u) << all_text(p);
  // Sorted by position in the file.
  EXPECT_EQ(format_problem(p[0]), "cfg.yaml:2:11: train.epochs: expected an integer, got `ten`");
  EXPECT_EQ(format_problem(p[1]), "cfg.yaml:3:13: train.nesterov: expected true or false, got `maybe`");
  EXPECT_EQ(p[2].where, "cfg.yaml:4:15");
  EXPECT_NE(p[2].message.find("expected a list of integers"), std::string::npos);
  EXPECT_EQ(format_problem(p[3]), "cfg.yaml:5:7: train.lr: expected a number, got a list");
}

TEST(Config, OutOfRangeValuesNameTheValidRange) {
  const auto p = problems_of(R"(model: {weight_bits: 1, act_bits: 9, alpha_init: 0}
train: {lr: -0.1, momentum: 1, epochs: 0, batch_size: 0, gamma: 1.5, milestones: [5, 3]}
pim: {train_bits: 17, adc_clip: 1.5, rows: -1}
eval: {infer_bits: 0, dies: 0, noise_sigma: -1, first_die: -2}
dataset: {crop_padding: -2, train_subset: 3000000000000000000000}
)");
  const std::string text = all_text(p);
  for (const char* expected : {
           "cfg.yaml:1:22: model.weight_bits: must be 0 or 2..8, got 1",
           "model.act_bits: must be 0 or 2..8, got 9",
           "model.alpha_init: must be > 0, got 0",
           "cfg.yaml:2:13: train.lr: must be > 0, got -0.1",
           "train.momentum: must be [0, 1), got 1",
           "train.epochs: must be >= 1, got 0",
           "train.batch_size: must be >= 1, got 0",
           "train.gamma: must be (0, 1], got 1.5",
           "train.milestones: must be strictly increasing, got 5 then 3",
           "pim.train_bits: must be 1..16, got 17",
           "pim.adc_clip: must be (0, 1], got 1.5",
           "pim.rows: must be >= 0, got -1",
           "eval.infer_bits: must be 1..16, got 0",
           "eval.dies: must be >= 1, got 0",
           "eval.noise_sigma: must be >= 0, got -1",
           "eval.first_die: must be >= 0, got -2",
           "dataset.crop_padding: must be >= -1, got -2",
           "dataset.train_subset: integer `3000000000000000000000` is out of range",
       }) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << text;
  }
  EXPECT_EQ(p.size(), 18u) << text;
}

TEST(Config, IntFieldsRefuseValuesTheyCannotHold) {
  const auto p = problems_of("train: {epochs: 3000000000}\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].message, "must be at most 2147483647, got 3000000000");
}

TEST(Config, BadChoiceListsTheChoicesAndTheClosest) {
  const auto p = problems_of("pim:\n  scheme: bitserial\ntrain: {schedule: Cosin}\nmodel: {arch: resnet18, weight_bits: 4, act_bits: 4}\n");
  ASSERT_EQ(p.size(), 3u) << all_text(p);
  EXPECT_EQ(format_problem(p[0]), "cfg.yaml:2:11: pim.scheme: unknown value `bitserial`; did you mean `bit-serial`? "
                                  "(valid: bit-serial | differential | native)");
  EXPECT_EQ(format_problem(p[1]), "cfg.yaml:3:19: train.schedule: unknown value `Cosin`; did you mean `cosine`? "
                                  "(valid: multistep | cosine)");
  EXPECT_EQ(format_problem(p[2]), "cfg.yaml:4:15: model.arch: unknown value `resnet18`; did you mean `resnet20`? "
                                  "(valid: resnet20 | resnet32 | resnet44 | resnet56)");
}

TEST(Config, CrossFieldRules) {
  {
    const auto p = problems_of("train:\n  schedule: multistep\n");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].where, "cfg.yaml:2:13");
    EXPECT_EQ(p[0].key, "train.milestones");
    EXPECT_NE(p[0].message.find("needs milestones"), std::string::npos);
  }
  {
    const auto p = problems_of("train:\n  milestones: [3]\n");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].where, "cfg.yaml:2:15");
    EXPECT_NE(p[0].message.find("set train.schedule: multistep"), std::string::npos);
  }
  {
    const auto p = problems_of("eval: {curve: measured}\n");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].key, "eval.curve_file");
    EXPECT_EQ(p[0].where, "cfg.yaml:1:15");
  }
  EXPECT_EQ(problems_of("eval: {curve_file: c.csv}\n").size(), 1u);
  EXPECT_EQ(problems_of("eval: {curve_strength: 1}\n").size(), 1u);
  EXPECT_NO_THROW(parse_experiment_text("eval: {curve: measured, curve_file: c.csv}\n", "c"));
  EXPECT_NO_THROW(parse_experiment_text("eval: {curve: smooth, curve_strength: 0.5}\n", "c"));
  {
    const auto p = problems_of("train: {epochs: 3, warmup_epochs: 4}\n");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_NE(p[0].message.find("longer than the run"), std::string::npos);
  }
  {
    // PIM needs integer weights and activations; digital activation-only QAT is allowed.
    const auto p = problems_of("model: {weight_bits: 0, act_bits: 4}\npim: {scheme: native}\n");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].key, "model.weight_bits");
    EXPECT_EQ(p[0].where, "cfg.yaml:1:22");
    EXPECT_NO_THROW(parse_experiment_text("model: {weight_bits: 0, act_bits: 4}\n", "c"));
    EXPECT_EQ(problems_of("pim: {}\n").size(), 1u);  // the defaults are FP32
  }
  // A wrong value does not also trigger the rules that read it.
  EXPECT_EQ(problems_of("train: {schedule: multstep}\n").size(), 1u);
}

TEST(Config, ReportsEveryProblemAtOnce) {
  const auto p = problems_of(R"(seed: -3
dataset: {name: fashion_mnist}
model: {weight_bits: 4, act_bits: 4, arhc: resnet20}
train:
  epochs: 0
  lr: 0.1
  lr: 0.2
pim: 7
eval: {dies: 2.5}
)");
  const std::string text = all_text(p);
  ASSERT_EQ(p.size(), 7u) << text;
  EXPECT_NE(text.find("cfg.yaml:1:7: seed: expected an integer >= 0, got `-3`"), std::string::npos) << text;
  EXPECT_NE(text.find("cfg.yaml:2:17: dataset.name: unknown value `fashion_mnist`; did you mean `fashion-mnist`?"),
            std::string::npos) << text;
  EXPECT_NE(text.find("cfg.yaml:3:38: model.arhc: unknown key `model.arhc`; did you mean `model.arch`?"), std::string::npos)
      << text;
  EXPECT_NE(text.find("cfg.yaml:5:11: train.epochs: must be >= 1, got 0"), std::string::npos) << text;
  EXPECT_NE(text.find("cfg.yaml:7:3: train.lr: key given twice (first at cfg.yaml:6:3)"), std::string::npos) << text;
  EXPECT_NE(text.find("cfg.yaml:8:6: pim: `pim` is a section"), std::string::npos) << text;
  EXPECT_NE(text.find("cfg.yaml:9:14: eval.dies: expected an integer, got `2.5`"), std::string::npos) << text;
}

TEST(Config, SyntaxErrorIsAConfigErrorWithTheLine) {
  const auto p = problems_of("train:\n  epochs: [1, 2\n  lr: 0.1\n");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].where.rfind("cfg.yaml:", 0), 0u) << p[0].where;
  EXPECT_NE(p[0].message.find("YAML syntax error"), std::string::npos);
}

TEST(Config, NumberSpellingDoesNotMatter) {
  const auto a = parse_experiment_text("eval: {noise_sigma: 0.5}\ndataset: {train_subset: 10000}\n", "a");
  const auto b = parse_experiment_text("eval: {noise_sigma: 5e-1}\ndataset: {train_subset: 1e4}\n", "b");
  const auto c = parse_experiment_text("eval: {noise_sigma: 0.50}\ndataset: {train_subset: 10000.0}\n", "c");
  EXPECT_EQ(fingerprint(a), fingerprint(b));
  EXPECT_EQ(fingerprint(a), fingerprint(c));
  EXPECT_EQ(config_value_canonical(a, "eval.noise_sigma"), "0.5");
}

TEST(Config, SetOverridesAreAppliedBeforeValidation) {
  const std::string base = "train: {epochs: 0, lr: 0.1}\n";
  const auto c = parse_experiment_text(base, "cfg.yaml",
                                       {"train.epochs=3", "train.schedule=multistep", "train.milestones=[1, 2]",
                                        "eval.noise_sigma=1e-1", "pim.rows=9", "model.weight_bits=4", "model.act_bits=4"});
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.train.schedule, LrSchedule::Multistep);
  EXPECT_EQ(c.train.milestones, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.eval.noise_sigma, 0.1);
  EXPECT_EQ(c.pim.rows, 9);
  EXPECT_TRUE(c.pim.enabled) << "setting a pim key writes a pim section";
  // A mapping merges into the section; null switches PIM off.
  const auto merged = parse_experiment_text("pim: {scheme: native}\n", "c", {"pim={rows: 9}", "model={weight_bits: 4, act_bits: 4}"});
  EXPECT_EQ(merged.pim.scheme, Scheme::Native);
  EXPECT_EQ(merged.pim.rows, 9);
  EXPECT_FALSE(parse_experiment_text("pim: {scheme: native}\n", "c", {"pim=null"}).pim.enabled);
  EXPECT_FALSE(parse_experiment_text("pim: {}\n", "c", {"pim.enabled=false"}).pim.enabled);

  const auto p = problems_of(base, {"train.epoch=3", "noequals", "eval.dies=-1"});
  const std::string text = all_text(p);
  ASSERT_EQ(p.size(), 4u) << text;
  EXPECT_EQ(p[0].where, "cfg.yaml:1:17") << "file problems first, then the command line's";
  EXPECT_NE(text.find("--set: train.epoch: unknown key `train.epoch`; did you mean `train.epochs`?"), std::string::npos) << text;
  EXPECT_NE(text.find("--set: `noequals` is not of the form key=value"), std::string::npos) << text;
  EXPECT_NE(text.find("--set: eval.dies: must be >= 1, got -1"), std::string::npos) << text;
  EXPECT_NE(text.find("cfg.yaml:1:17: train.epochs: must be >= 1, got 0"), std::string::npos) << text;
}

TEST(Config, ToYamlRoundTrips) {
  ExperimentConfig c;
  c.seed = 12345678901234ull;
  c.data = {"cifar100", "/tmp/a b: c", 1234, 77, 4, 1};
  c.model = {"resnet56", 3, 5, 0, 2.25f};
  c.train.epochs = 7;
  c.train.lr = 1e-4;
  c.train.momentum = 0.0;
  c.train.schedule = LrSchedule::Multistep;
  c.train.milestones = {2, 5};
  c.train.gamma = 0.3;
  c.train.warmup_epochs = 1;
  c.pim.enabled = false;
  c.pim.scheme = Scheme::Native;
  c.pim.rows = 9;
  c.pim.rescale = Rescale::None;
  c.pim.adc_clip = 0.1 + 0.2;  // a double with no short decimal form
  c.eval.curve = CurveModel::Measured;
  c.eval.curve_file = "curves \"chip 3\".h5";
  c.eval.noise_sigma = 1.0 / 3.0;
  c.eval.gain_sigma = 3e-7;       // written in scientific notation
  c.eval.offset_sigma = 2.5e17;
  c.eval.dies = 64;
  const std::string yaml = to_yaml(c);
  const ExperimentConfig back = parse_experiment_text(yaml, "round-trip.yaml");
  EXPECT_EQ(fingerprint(back), fingerprint(c)) << yaml;
  EXPECT_EQ(back.pim.adc_clip, 0.1 + 0.2);
  EXPECT_EQ(back.eval.noise_sigma, 1.0 / 3.0);
  EXPECT_NE(yaml.find("gain_sigma: 3.0e-07\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("weight_decay: 0.0001\n"), std::string::npos) << yaml;
  EXPECT_EQ(to_yaml(back), yaml);
  // Every key appears, in schema order.
  std::size_t position = 0;
  for (const auto& k : config_schema()) {
    const std::string leaf = k.key.substr(k.key.find('.') + 1) + ":";
    const auto found = yaml.find(leaf, position);
    ASSERT_NE(found, std::string::npos) << k.key << " missing or out of order in\n" << yaml;
    position = found;
  }
  // The defaults round-trip too (pim.enabled: false written explicitly).
  EXPECT_EQ(fingerprint(parse_experiment_text(to_yaml(ExperimentConfig{}), "d")), fingerprint(ExperimentConfig{}));
}

TEST(Config, LoadExperimentReadsFilesAndNamesMissingOnes) {
  const std::string path = ::testing::TempDir() + "/pimqat_config_test.yaml";
  {
    std::ofstream out(path);
    out << "train:\n  epochs: 2\n  bogus: 1\n";
  }
  try {
    load_experiment(path);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_EQ(e.problems()[0].where, path + ":3:3");
    EXPECT_NE(std::string(e.what()).find(path + ":3:3: train.bogus: unknown key"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_experiment(path, {"train.epochs=3"}), ConfigError) << "an override does not hide a file's problem";
  std::remove(path.c_str());
  try {
    load_experiment(path + ".missing");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
  }
}

TEST(Config, ClosestSpelling) {
  const std::vector<std::string> words = {"grid", "zip", "base", "replicates", "include"};
  EXPECT_EQ(closest_spelling("gird", words), "grid");
  EXPECT_EQ(closest_spelling("replicate", words), "replicates");
  EXPECT_EQ(closest_spelling("INCLUDE", words), "include");
  EXPECT_EQ(closest_spelling("axes", words), "");
  EXPECT_EQ(closest_spelling("zp", words), "zip");
}

// docs/config.md carries the table generated from the schema between two markers. Run the test
// with PIMQAT_UPDATE_DOCS=1 to rewrite it after a schema change.
TEST(Config, ReferenceDocumentListsEveryKey) {
  const std::string path = std::string(PIMQAT_SOURCE_DIR) + "/docs/config.md";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string doc = buffer.str();
  const std::string begin = "<!-- BEGIN GENERATED KEY TABLE -->\n", end = "<!-- END GENERATED KEY TABLE -->";
  const auto b = doc.find(begin), e = doc.find(end);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(e, std::string::npos);
  const std::string table = doc.substr(b + begin.size(), e - b - begin.size());
  const std::string expected = config_reference_markdown();
  if (table != expected && std::getenv("PIMQAT_UPDATE_DOCS")) {
    doc.replace(b + begin.size(), e - b - begin.size(), expected);
    std::ofstream(path) << doc;
    GTEST_SKIP() << "rewrote " << path;
  }
  EXPECT_EQ(table, expected) << "docs/config.md is out of date: rerun with PIMQAT_UPDATE_DOCS=1";
  for (const auto& k : config_schema()) EXPECT_NE(table.find("| `" + k.key + "` |"), std::string::npos) << k.key;
}

}  // namespace
}  // namespace pimqat::runner
