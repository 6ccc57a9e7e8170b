// Views on constructed results files whose answers are known by construction: the best training
// resolution per (IR, sigma), baseline vs PIM-QAT by resolution, BN calibration, learning curves,
// and the generic table for a sweep no view recognizes.
#include "analysis/views.h"

#include <gtest/gtest.h>

#include <cmath>

#include "analysis_testing.h"

namespace pimqat::analysis {
namespace {

using testing::Axes;
using testing::FakeSweep;
using testing::TempDir;

// Zero-mean die offsets (fractions): two shapes so that models differ in spread.
const std::vector<double> kOffsetsA = {-0.010, 0.004, 0.006, -0.002, 0.008, -0.006};
const std::vector<double> kOffsetsB = {0.003, -0.004, 0.001, 0.002, -0.003, 0.001};

std::vector<double> dies(double base, const std::vector<double>& offsets) {
  std::vector<double> v;
  for (double o : offsets) v.push_back(base + o);
  return v;
}

std::vector<double> percent(std::vector<double> v) {
  for (double& x : v) x *= 100;
  return v;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

// TR in {3,4,5,6} x IR in {4,6} x sigma in {0, 0.5}, plus a digital baseline that must never be a
// candidate. Base accuracies per (IR, sigma) and TR:
//   IR 4, sigma 0:   TR 4 best (0.88) over TR 5 (0.85): clear.
//   IR 4, sigma 0.5: TR 5 (0.781) vs TR 6 (0.780): 0.1 pp, not significant.
//   IR 6, sigma 0:   TR 6 (0.91) over TR 5 (0.86).
//   IR 6, sigma 0.5: TR 4 and TR 5 tie exactly (same dies): the smaller TR wins, p = 1; TR 3 is
//                    partial (2 of 6 dies pending).
struct BestTrSweep {
  FakeSweep sweep;
  std::map<std::string, std::vector<double>> accuracy;  // "IR/sigma/TR" -> dies (fractions)
};

BestTrSweep best_tr_sweep() {
  BestTrSweep b;
  const std::map<std::pair<std::string, std::string>, std::map<std::string, double>> base = {
      {{"4", "0"}, {{"3", 0.80}, {"4", 0.88}, {"5", 0.85}, {"6", 0.84}}},
      {{"4", "0.5"}, {{"3", 0.70}, {"4", 0.74}, {"5", 0.781}, {"6", 0.780}}},
      {{"6", "0"}, {{"3", 0.75}, {"4", 0.80}, {"5", 0.86}, {"6", 0.91}}},
      {{"6", "0.5"}, {{"3", 0.60}, {"4", 0.83}, {"5", 0.83}, {"6", 0.70}}},
  };
  const std::string digital = b.sweep.add_train({{"pim.enabled", "false"}, {"pim.train_bits", "-"}}, {0.9, 0.96});
  std::map<std::string, std::string> model;
  for (const char* tr : {"3", "4", "5", "6"})
    model[tr] = b.sweep.add_train({{"pim.enabled", "true"}, {"pim.train_bits", tr}});
  for (const auto& [key, by_tr] : base) {
    const auto& [ir, sigma] = key;
    b.sweep.add_eval(digital, {{"pim.enabled", "false"}, {"pim.train_bits", "-"}, {"eval.infer_bits", ir}, {"eval.noise_sigma", sigma}},
                     dies(0.97, kOffsetsA));
    for (const auto& [tr, accuracy] : by_tr) {
      const bool tie = ir == "6" && sigma == "0.5";
      std::vector<double> values = dies(accuracy, tie || tr == "5" ? kOffsetsA : kOffsetsB);
      if (ir == "6" && sigma == "0.5" && tr == "3") values[1] = values[4] = std::nan("");
      b.accuracy[ir + "/" + sigma + "/" + tr] = values;
      b.sweep.add_eval(model[tr], {{"pim.enabled", "true"}, {"pim.train_bits", tr}, {"eval.infer_bits", ir}, {"eval.noise_sigma", sigma}},
                       values);
    }
  }
  return b;
}

SweepData load(const FakeSweep& sweep, const TempDir& dir) {
  sweep.write(dir.file("results.h5"));
  return collect_sweep(read_results_file(dir.file("results.h5")));
}

const Table& table_named(const Section& s, const std::string& name) {
  for (const Table& t : s.tables)
    if (t.name == name) return t;
  throw std::runtime_error("no table " + name);
}

std::size_t column_index(const Table& t, const std::string& name) {
  for (std::size_t i = 0; i < t.columns.size(); ++i)
    if (t.columns[i].name == name) return i;
  throw std::runtime_error("no column " + name + " in " + t.name);
}

double number(const Cell& c) { return std::holds_alternative<double>(c) ? std::get<double>(c) : std::nan(""); }
std::string text(const Cell& c) { return std::holds_alternative<std::string>(c) ? std::get<std::string>(c) : ""; }

TEST(Views, BestTrainingResolutionIsTheKnownAnswer) {
  TempDir dir("best-tr");
  const BestTrSweep b = best_tr_sweep();
  const SweepData data = load(b.sweep, dir);
  const std::vector<BestTrainBits> best = best_train_bits(data);
  ASSERT_EQ(best.size(), 4u);
  struct Expected {
    std::string ir, sigma, best, runner_up;
    bool significant;
  };
  const std::vector<Expected> expected = {
      {"4", "0", "4", "5", true}, {"4", "0.5", "5", "6", false}, {"6", "0", "6", "5", true}, {"6", "0.5", "4", "5", false}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Expected& e = expected[i];
    const BestTrainBits& r = best[i];
    SCOPED_TRACE("IR " + e.ir + ", sigma " + e.sigma);
    EXPECT_EQ(r.facets.at("eval.infer_bits"), e.ir);
    EXPECT_EQ(r.facets.at("eval.noise_sigma"), e.sigma);
    EXPECT_EQ(r.facets.count("pim.train_bits"), 0u);
    EXPECT_EQ(r.candidates, 4u);  // the digital model (0.97) is never a candidate
    EXPECT_EQ(r.best, e.best);
    EXPECT_EQ(r.runner_up, e.runner_up);
    const std::vector<double> best_dies = percent(b.accuracy.at(e.ir + "/" + e.sigma + "/" + e.best));
    const std::vector<double> runner_dies = percent(b.accuracy.at(e.ir + "/" + e.sigma + "/" + e.runner_up));
    EXPECT_NEAR(r.margin, mean(best_dies) - mean(runner_dies), 1e-9);
    EXPECT_NEAR(r.best_stats.mean, mean(best_dies), 1e-9);
    EXPECT_EQ(r.best_stats.n, 6u);
    const TestResult welch = welch_t_test(best_dies, runner_dies);
    EXPECT_NEAR(r.test.p_value, welch.p_value, 1e-12);
    EXPECT_EQ(r.significant(), e.significant) << "p = " << r.test.p_value;
  }
  EXPECT_NEAR(best[0].margin, 3.0, 1e-9);
  EXPECT_NEAR(best[1].margin, 0.1, 1e-9);
  EXPECT_EQ(best[3].margin, 0.0);     // exact tie: the smaller TR is reported first
  EXPECT_EQ(best[3].test.p_value, 1.0);
  EXPECT_LT(best[0].test.p_value, 1e-4);

  // The table and plots of the view.
  const auto section = best_train_bits_view(data);
  ASSERT_TRUE(section.has_value());
  const Table& t = table_named(*section, "best_train_bits");
  ASSERT_EQ(t.rows.size(), 4u);
  EXPECT_EQ(text(t.rows[0][column_index(t, "best_TR")]), "4");
  EXPECT_EQ(text(t.rows[0][column_index(t, "significant")]), "yes");
  EXPECT_EQ(text(t.rows[1][column_index(t, "significant")]), "no");
  EXPECT_NEAR(number(t.rows[2][column_index(t, "margin_pp")]), 5.0, 1e-9);
  ASSERT_GE(section->plots.size(), 2u);
  const Plot& best_plot = section->plots[0];
  EXPECT_EQ(best_plot.name, "best_train_bits");
  ASSERT_EQ(best_plot.series.size(), 2u);  // one line per sigma
  EXPECT_EQ(best_plot.series[0].x, (std::vector<double>{4, 6}));
  EXPECT_EQ(best_plot.series[0].y, (std::vector<double>{4, 6}));  // sigma 0
  EXPECT_EQ(best_plot.series[1].y, (std::vector<double>{5, 4}));  // sigma 0.5
}

TEST(Views, PartialSettingsAreFlaggedInTheGenericTableAndReport) {
  TempDir dir("partial");
  const SweepData data = load(best_tr_sweep().sweep, dir);
  const Section s = settings_section(data);
  const Table& t = table_named(s, "eval_stats");
  EXPECT_EQ(t.rows.size(), 4u * 5u);  // 4 (IR, sigma) x (4 TR + digital)
  std::size_t partial_rows = 0;
  for (const auto& row : t.rows)
    if (text(row.back()).rfind("partial", 0) == 0) {
      ++partial_rows;
      EXPECT_EQ(std::get<std::int64_t>(row[column_index(t, "n")]), 4);
      EXPECT_EQ(std::get<std::int64_t>(row[column_index(t, "of")]), 6);
    }
  EXPECT_EQ(partial_rows, 1u);
  // Written as a "partial sweep" warning in the report.
  const Report r = sweep_report(read_results_file(dir.file("results.h5")), data);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("partial sweep: 1 setting"), std::string::npos) << r.warnings[0];
}

TEST(Views, SchemeResolutionComparesBaselineAndPimQatAtTrEqualsIr) {
  TempDir dir("scheme");
  FakeSweep s;
  // Digital model (final test accuracy 0.92) and PIM-QAT models at TR = IR, for two schemes.
  for (const char* scheme : {"bit-serial", "native"}) {
    const std::string digital =
        s.add_train({{"pim.enabled", "false"}, {"pim.scheme", scheme}, {"pim.train_bits", "-"}}, {0.5, 0.92});
    for (const char* bits : {"3", "5", "8"}) {
      const std::string pim = s.add_train({{"pim.enabled", "true"}, {"pim.scheme", scheme}, {"pim.train_bits", bits}});
      const double b = std::atof(bits);
      const Axes base = {{"pim.scheme", scheme}, {"eval.infer_bits", bits}};
      Axes baseline = base, pimqat = base;
      baseline["pim.enabled"] = "false";
      baseline["pim.train_bits"] = "-";
      pimqat["pim.enabled"] = "true";
      pimqat["pim.train_bits"] = bits;
      s.add_eval(digital, baseline, dies(0.10 * b, kOffsetsB));  // collapses at low resolution
      s.add_eval(pim, pimqat, dies(0.85 + 0.005 * b, kOffsetsA));
    }
  }
  const SweepData data = load(s, dir);
  const auto section = scheme_resolution_view(data);
  ASSERT_TRUE(section.has_value());
  const Table& t = table_named(*section, "scheme_resolution");
  ASSERT_EQ(t.rows.size(), 6u);  // 2 schemes x 3 resolutions
  EXPECT_EQ(t.columns[0].name, "pim.scheme");
  EXPECT_EQ(text(t.rows[0][0]), "bit-serial");
  EXPECT_EQ(text(t.rows[0][column_index(t, "IR")]), "3");
  EXPECT_NEAR(number(t.rows[0][column_index(t, "digital_qat")]), 92.0, 1e-9);
  EXPECT_NEAR(number(t.rows[0][column_index(t, "baseline_mean")]), 30.0, 1e-9);
  EXPECT_NEAR(number(t.rows[0][column_index(t, "pim_qat_mean")]), 86.5, 1e-9);
  EXPECT_NEAR(number(t.rows[2][column_index(t, "pim_qat_mean")]), 89.0, 1e-9);
  EXPECT_NEAR(number(t.rows[0][column_index(t, "pim_qat_min")]), 85.5, 1e-9);
  EXPECT_EQ(std::get<std::int64_t>(t.rows[0][column_index(t, "pim_qat_n")]), 6);
  const SampleStats st = summarize(percent(dies(0.865, kOffsetsA)));
  EXPECT_NEAR(number(t.rows[0][column_index(t, "pim_qat_ci95")]), st.ci_half_width(), 1e-9);
  // One plot per scheme: digital QAT, baseline and PIM-QAT lines.
  ASSERT_EQ(section->plots.size(), 2u);
  EXPECT_EQ(section->plots[0].name, "accuracy_vs_resolution_scheme_bit-serial");
  ASSERT_EQ(section->plots[0].series.size(), 3u);
  EXPECT_EQ(section->plots[0].series[1].x, (std::vector<double>{3, 5, 8}));
  // TR is zipped with IR here (no TR x IR grid): no best-TR choice to make.
  EXPECT_FALSE(best_train_bits_view(data).has_value());
  EXPECT_FALSE(bn_calibration_view(data).has_value());
}

TEST(Views, BnCalibrationGainIsPairedOverDies) {
  TempDir dir("bn");
  FakeSweep s;
  const std::string model = s.add_train({});
  const std::vector<double> off = dies(0.60, kOffsetsA);
  std::vector<double> on = dies(0.80, kOffsetsB);
  for (const char* curve : {"linear", "smooth"}) {
    s.add_eval(model, {{"eval.curve", curve}, {"eval.bn_calibration", "0"}}, off);
    s.add_eval(model, {{"eval.curve", curve}, {"eval.bn_calibration", "20"}}, on);
  }
  const SweepData data = load(s, dir);
  const auto section = bn_calibration_view(data);
  ASSERT_TRUE(section.has_value());
  const Table& t = table_named(*section, "bn_calibration");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(text(t.rows[1][0]), "smooth");
  EXPECT_NEAR(number(t.rows[0][column_index(t, "without_mean")]), 60.0, 1e-9);
  EXPECT_NEAR(number(t.rows[0][column_index(t, "with_mean")]), 80.0, 1e-9);
  EXPECT_NEAR(number(t.rows[0][column_index(t, "gain_pp")]), 20.0, 1e-9);
  const TestResult paired = paired_t_test(percent(on), percent(off));
  EXPECT_NEAR(number(t.rows[0][column_index(t, "p")]), paired.p_value, 1e-12);
  EXPECT_EQ(text(t.rows[0][column_index(t, "significant")]), "yes");
  ASSERT_EQ(section->plots.size(), 1u);
  EXPECT_EQ(section->plots[0].x_categories, (std::vector<std::string>{"curve=linear", "curve=smooth"}));
  EXPECT_EQ(section->plots[0].series.size(), 2u);
}

TEST(Views, LearningCurvesListEveryTrainedModel) {
  TempDir dir("curves");
  FakeSweep s;
  s.add_train({{"pim.rescale", "none"}}, {0.3, 0.5, 0.45});
  s.add_train({{"pim.rescale", "both"}}, {0.4, 0.6, 0.7});
  s.add_train({{"pim.rescale", "backward"}}, {}, 0, "failed");
  const SweepData data = load(s, dir);
  const auto section = learning_curves_view(data);
  ASSERT_TRUE(section.has_value());
  const Table& t = table_named(*section, "learning_curves");
  ASSERT_EQ(t.rows.size(), 2u);  // the failed model has no curve
  EXPECT_EQ(text(t.rows[0][0]), "both");
  EXPECT_NEAR(number(t.rows[0][column_index(t, "final_test_accuracy")]), 70.0, 1e-9);
  EXPECT_NEAR(number(t.rows[1][column_index(t, "best_test_accuracy")]), 50.0, 1e-9);
  EXPECT_EQ(std::get<std::int64_t>(t.rows[1][column_index(t, "best_epoch")]), 1);
  ASSERT_EQ(section->plots.size(), 2u);
  EXPECT_EQ(section->plots[0].series[0].label, "rescale=both");
  EXPECT_EQ(section->plots[0].series[1].y, (std::vector<double>{30, 50, 45}));
  EXPECT_TRUE(table_named(*section, "learning_curves_epochs").detail);
}

TEST(Views, AnySweepGetsTheGenericTable) {
  TempDir dir("generic");
  FakeSweep s;
  for (const char* arch : {"resnet20", "resnet32"}) {
    const std::string m = s.add_train({{"model.arch", arch}, {"train.lr", "0.05"}});
    s.add_eval(m, {{"model.arch", arch}, {"train.lr", "0.05"}}, dies(std::string(arch) == "resnet20" ? 0.9 : 0.91, kOffsetsA));
  }
  const SweepData data = load(s, dir);
  const Report r = sweep_report(read_results_file(dir.file("results.h5")), data);
  // Overview, learning curves, generic table; no paper view.
  ASSERT_EQ(r.sections.size(), 3u);
  const Table& t = table_named(r.sections.back(), "eval_stats");
  EXPECT_EQ(t.columns[0].name, "model.arch");  // only the varied axis is a column ...
  ASSERT_EQ(t.notes.size(), 1u);
  EXPECT_NE(t.notes[0].find("train.lr = 0.05"), std::string::npos);  // ... the constant one a note
  EXPECT_NEAR(number(t.rows[1][column_index(t, "mean")]), 91.0, 1e-9);
  EXPECT_NEAR(number(t.rows[1][column_index(t, "p5")]), percentile(percent(dies(0.91, kOffsetsA)), 0.05), 1e-9);
  EXPECT_NEAR(number(t.rows[1][column_index(t, "ci95_high")]), summarize(percent(dies(0.91, kOffsetsA))).ci_high, 1e-9);
  EXPECT_TRUE(r.warnings.empty());
}

TEST(Views, ASweepWithNothingFinishedYetIsReportedAsPending) {
  TempDir dir("nothing");
  FakeSweep s;
  const std::string m = s.add_train({{"pim.train_bits", "4"}}, {}, 0, "pending");
  s.add_eval(m, {{"pim.train_bits", "4"}, {"eval.infer_bits", "4"}}, {std::nan(""), std::nan("")});
  s.add_eval(m, {{"pim.train_bits", "4"}, {"eval.infer_bits", "6"}}, {std::nan(""), std::nan("")});
  const SweepData data = load(s, dir);
  EXPECT_EQ(data.eval_rows, 0);
  ASSERT_EQ(data.settings.size(), 2u);
  EXPECT_EQ(data.settings[0].expected, 2);
  EXPECT_TRUE(data.settings[0].accuracy.empty());
  const Report r = sweep_report(read_results_file(dir.file("results.h5")), data);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings[0].find("2 settings with none yet"), std::string::npos) << r.warnings[0];
  const Table& t = table_named(r.sections.back(), "eval_stats");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(text(t.rows[0].back()), "pending");
  EXPECT_FALSE(learning_curves_view(data).has_value());
  EXPECT_FALSE(best_train_bits_view(data).has_value());
}

}  // namespace
}  // namespace pimqat::analysis
