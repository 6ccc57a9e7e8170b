// Reading results.h5: version and column checks (clear errors), grouping of eval rows into
// settings (numbers vs text axis columns, partial settings, replicates, section axes).
#include "analysis/results_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>

#include "analysis_testing.h"
#include "core/error.h"
#include "pimqat/version.h"

namespace pimqat::analysis {
namespace {

using testing::FakeSweep;
using testing::TempDir;

std::string error_of(const std::string& path) {
  try {
    read_results_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

FakeSweep small_sweep() {
  FakeSweep s;
  const std::string a = s.add_train({{"pim.train_bits", "4"}});
  s.add_eval(a, {{"pim.train_bits", "4"}, {"eval.noise_sigma", "0.5"}}, {0.8, 0.9});
  return s;
}

TEST(ResultsFile, UnsupportedVersionNamesFileVersionAndWhatIsRead) {
  TempDir dir("version");
  FakeSweep::WriteOptions options;
  options.format_version = kFileFormatVersion + 41;
  small_sweep().write(dir.file("results.h5"), options);
  const std::string message = error_of(dir.file("results.h5"));
  EXPECT_NE(message.find(dir.file("results.h5")), std::string::npos) << message;
  EXPECT_NE(message.find("format_version " + std::to_string(kFileFormatVersion + 41)), std::string::npos) << message;
  EXPECT_NE(message.find("reads results files of format_version " + std::to_string(kFileFormatVersion)), std::string::npos)
      << message;
  EXPECT_NE(message.find("9.9.9-test"), std::string::npos) << message;  // the writer's version
}

TEST(ResultsFile, MissingVersionAttributeIsNotAResultsFile) {
  TempDir dir("noversion");
  FakeSweep::WriteOptions options;
  options.write_version = false;
  small_sweep().write(dir.file("r.h5"), options);
  const std::string message = error_of(dir.file("r.h5"));
  EXPECT_NE(message.find("not a pimqat results file"), std::string::npos) << message;
  EXPECT_NE(message.find("format_version"), std::string::npos) << message;
}

TEST(ResultsFile, MissingColumnsAndTablesAreAllListed) {
  TempDir dir("columns");
  FakeSweep::WriteOptions options;
  options.drop = {"eval/accuracy", "eval/die", "tasks/status", "curves"};
  small_sweep().write(dir.file("results.h5"), options);
  const std::string message = error_of(dir.file("results.h5"));
  EXPECT_NE(message.find(dir.file("results.h5")), std::string::npos) << message;
  EXPECT_NE(message.find("/eval lacks column(s) die, accuracy"), std::string::npos) << message;
  EXPECT_NE(message.find("/tasks lacks column(s) status"), std::string::npos) << message;
  EXPECT_NE(message.find("table /curves is missing"), std::string::npos) << message;
  EXPECT_NE(message.find("/eval: train_id replicate die accuracy"), std::string::npos) << message;
}

TEST(ResultsFile, MissingFileAndNonHdf5FileAreErrors) {
  TempDir dir("missing");
  EXPECT_NE(error_of(dir.file("results.h5")).find("no results file"), std::string::npos);
  {
    std::ofstream out(dir.file("text.h5"));
    out << "not hdf5\n";
  }
  EXPECT_NE(error_of(dir.file("text.h5")).find("text.h5"), std::string::npos);
}

TEST(ResultsFile, SettingsGroupDiesAndMarkPartialOnes) {
  TempDir dir("settings");
  FakeSweep s;
  const std::string digital = s.add_train({{"pim.train_bits", "-"}});
  const std::string pim = s.add_train({{"pim.train_bits", "4"}});
  const double nan = std::nan("");
  s.add_eval(digital, {{"pim.train_bits", "-"}, {"eval.noise_sigma", "0.5"}}, {0.5, 0.7, 0.6});
  s.add_eval(pim, {{"pim.train_bits", "4"}, {"eval.noise_sigma", "0.5"}}, {0.81, nan, 0.83, 0.85});
  s.add_eval(pim, {{"pim.train_bits", "4"}, {"eval.noise_sigma", "1e-05"}}, {nan, nan}, 0, "failed");
  s.write(dir.file("results.h5"));
  const SweepData data = collect_sweep(read_results_file(dir.file("results.h5")));
  EXPECT_EQ(data.axes, (std::vector<std::string>{"pim.train_bits", "eval.noise_sigma"}));
  ASSERT_EQ(data.settings.size(), 3u);
  // Sorted by TR ("-" is text: after the numbers), then sigma numerically (1e-05 < 0.5).
  const EvalSetting& pending = data.settings[0];
  EXPECT_EQ(pending.axis("pim.train_bits"), "4");
  EXPECT_EQ(pending.axis("eval.noise_sigma"), "1e-05");
  EXPECT_EQ(pending.accuracy.size(), 0u);
  EXPECT_EQ(pending.expected, 2);
  EXPECT_EQ(pending.failed, 2);
  const EvalSetting& partial = data.settings[1];
  EXPECT_EQ(partial.axis("eval.noise_sigma"), "0.5");
  EXPECT_TRUE(partial.partial());
  EXPECT_EQ(partial.expected, 4);
  EXPECT_EQ(partial.dies, (std::vector<std::int64_t>{0, 2, 3}));
  EXPECT_NEAR(partial.stats.mean, 83.0, 1e-12);  // percent
  EXPECT_NEAR(partial.stats.std, 2.0, 1e-12);
  const EvalSetting& full = data.settings[2];
  EXPECT_EQ(full.axis("pim.train_bits"), "-");
  EXPECT_FALSE(full.partial());
  EXPECT_NEAR(full.stats.min, 50.0, 1e-12);
  EXPECT_EQ(data.models.size(), 2u);
  EXPECT_EQ(data.eval_tasks, 9);
  EXPECT_EQ(data.eval_rows, 6);
  EXPECT_EQ(data.varied_axes(), (std::vector<std::string>{"pim.train_bits", "eval.noise_sigma"}));
}

TEST(ResultsFile, ReplicatesArePooledAndAlsoKeptApart) {
  TempDir dir("replicates");
  FakeSweep s;
  const std::string r0 = s.add_train({}, {0.5}, 0), r1 = s.add_train({}, {0.6}, 1);
  s.add_eval(r0, {{"eval.infer_bits", "4"}}, {0.80, 0.82}, 0);
  s.add_eval(r1, {{"eval.infer_bits", "4"}}, {0.70, 0.72}, 1);
  s.write(dir.file("results.h5"));
  const SweepData data = collect_sweep(read_results_file(dir.file("results.h5")));
  EXPECT_EQ(data.replicates, 2);
  ASSERT_EQ(data.settings.size(), 1u);
  EXPECT_EQ(data.settings[0].accuracy.size(), 4u);
  EXPECT_NEAR(data.settings[0].stats.mean, 76.0, 1e-12);
  EXPECT_EQ(data.settings[0].train_ids.size(), 2u);
  ASSERT_EQ(data.per_replicate.size(), 2u);
  EXPECT_EQ(data.per_replicate[0].replicate, 0);
  EXPECT_NEAR(data.per_replicate[0].stats.mean, 81.0, 1e-12);
  EXPECT_NEAR(data.per_replicate[1].stats.mean, 71.0, 1e-12);
}

TEST(ResultsFile, SectionAxesAreExpandedIntoKeys) {
  TempDir dir("sections");
  FakeSweep s;
  const std::string d = s.add_train({{"pim", "null"}}), p = s.add_train({{"pim", "{rows: 9, scheme: native}"}});
  const std::string q = s.add_train({{"pim", "{enabled: false, train_bits: 3}"}});
  s.add_eval(d, {{"pim", "null"}}, {0.5, 0.6});
  s.add_eval(p, {{"pim", "{rows: 9, scheme: native}"}}, {0.7, 0.8});
  s.add_eval(q, {{"pim", "{enabled: false, train_bits: 3}"}}, {0.9, 0.95});
  s.write(dir.file("results.h5"));
  const SweepData data = collect_sweep(read_results_file(dir.file("results.h5")));
  EXPECT_EQ(data.axes, (std::vector<std::string>{"pim.enabled", "pim.scheme", "pim.rows", "pim.train_bits"}));
  ASSERT_EQ(data.settings.size(), 3u);
  const auto with_mean = [&](double mean) -> const EvalSetting* {
    for (const auto& e : data.settings)
      if (std::fabs(e.stats.mean - mean) < 1e-9) return &e;
    return nullptr;
  };
  const EvalSetting* null_section = with_mean(55);
  ASSERT_NE(null_section, nullptr);
  EXPECT_EQ(null_section->axis("pim.enabled"), "false");
  EXPECT_EQ(null_section->axis("pim.scheme"), "-");
  const EvalSetting* native = with_mean(75);
  ASSERT_NE(native, nullptr);
  EXPECT_EQ(native->axis("pim.enabled"), "true");
  EXPECT_EQ(native->axis("pim.scheme"), "native");
  EXPECT_EQ(native->axis("pim.rows"), "9");
  EXPECT_EQ(native->axis("pim.train_bits"), "(base)");
  const EvalSetting* explicit_off = with_mean(92.5);
  ASSERT_NE(explicit_off, nullptr);
  EXPECT_EQ(explicit_off->axis("pim.enabled"), "false");
  EXPECT_EQ(explicit_off->axis("pim.train_bits"), "3");
}

TEST(ResultsFile, ValueOrderAndNumberText) {
  EXPECT_TRUE(value_less("2", "10"));
  EXPECT_TRUE(value_less("1e-05", "0.5"));
  EXPECT_TRUE(value_less("8", "-"));
  EXPECT_TRUE(value_less("false", "true"));
  EXPECT_EQ(number_text(0.1), "0.1");
  EXPECT_EQ(number_text(4.0), "4");
  EXPECT_EQ(order_axes({"zeta", "eval.noise_sigma", "pim.train_bits", "alpha"}),
            (std::vector<std::string>{"pim.train_bits", "eval.noise_sigma", "alpha", "zeta"}));
}

}  // namespace
}  // namespace pimqat::analysis
