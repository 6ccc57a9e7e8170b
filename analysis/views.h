#pragma once
// Views of a sweep (docs/analysis.md): each recognizes from the axes a sweep varied whether it
// applies and turns the settings into tables and plots. The generic table of every setting is
// always made, so any sweep gets its statistics.
//
// Roles of axes (docs/sweeps.md paths):
//   training mode   pim.enabled (true: PIM-QAT; false: digital QAT deployed on PIM = the baseline);
//                   without that axis, pim.train_bits = "-" marks a digitally trained model
//   TR, IR          pim.train_bits, eval.infer_bits (ADC bits in training / at inference)
//   noise           eval.noise_sigma (LSB)
//   BN calibration  eval.bn_calibration (batches; 0 = off)
// Every other varied axis (pim.scheme, eval.curve, model.arch, ...) is a facet: views are made
// per combination of facet values.
#include <optional>
#include <string>
#include <vector>

#include "analysis/report.h"
#include "analysis/results_file.h"
#include "analysis/stats.h"

namespace pimqat::analysis {

inline constexpr const char* kTrainBitsAxis = "pim.train_bits";
inline constexpr const char* kInferBitsAxis = "eval.infer_bits";
inline constexpr const char* kNoiseAxis = "eval.noise_sigma";
inline constexpr const char* kEnabledAxis = "pim.enabled";
inline constexpr const char* kCalibrationAxis = "eval.bn_calibration";
inline constexpr const char* kRescaleAxis = "pim.rescale";
inline constexpr double kSignificanceLevel = 0.05;  // two-sided p below this: "significant"
inline constexpr std::size_t kMaxPlotsPerView = 12;
inline constexpr std::size_t kMaxSeriesPerPlot = 8;

enum class TrainingMode { Digital, Pim, Unknown };
TrainingMode training_mode(const AxisValues& axes);

// Short display name of an axis: TR, IR, sigma, scheme, rows, rescale, bn_calibration, else
// the last component of the path.
std::string short_axis_name(const std::string& axis);
// "IR=4, sigma=0.5" for the given axes of `values` (empty text for no axes).
std::string facet_label(const AxisValues& values, const std::vector<std::string>& axes);

// The best training resolution of one (IR, noise, other facets) group (DESIGN.md 2.5, Fig. 5):
// the TR whose settings have the highest mean accuracy over dies (ties: the smaller TR), the
// runner-up, the margin between their means, and Welch's t-test of the two over their dies.
struct BestTrainBits {
  AxisValues facets;            // every axis but pim.train_bits / pim.enabled, with its value
  std::size_t candidates = 0;   // TR values with at least one die
  std::string best, runner_up;  // TR values; runner_up empty with one candidate
  SampleStats best_stats, runner_up_stats;
  double margin = 0;            // best mean - runner-up mean, percentage points (NaN without runner-up)
  TestResult test;              // Welch: best vs runner-up (valid = false with < 2 dies on a side)
  bool significant() const { return test.valid && test.p_value < kSignificanceLevel; }
};
// One entry per group that has PIM-QAT settings with a numeric pim.train_bits; empty when
// pim.train_bits does not vary.
std::vector<BestTrainBits> best_train_bits(const SweepData& data);

// The views; nullopt when the sweep does not vary what a view needs.
Section overview_section(const ResultsFile& file, const SweepData& data);
Section settings_section(const SweepData& data);
std::optional<Section> scheme_resolution_view(const SweepData& data);
std::optional<Section> best_train_bits_view(const SweepData& data);
std::optional<Section> bn_calibration_view(const SweepData& data);
std::optional<Section> learning_curves_view(const SweepData& data);

// Overview, every view that applies, then the generic table; warnings for partial sweeps.
Report sweep_report(const ResultsFile& file, const SweepData& data);

}  // namespace pimqat::analysis
