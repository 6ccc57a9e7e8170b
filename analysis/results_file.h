#pragma once
// Reading RUN_DIR/results.h5 (written by runner/results.cpp; layout in docs/results-format.md) and
// turning its tidy tables into evaluation settings and trained models.
//
// The file is opened read-only. The runner replaces it atomically (a new file renamed over the
// old one), so a reader of a running sweep sees one complete snapshot.
//
// Checks, all reported in one pimqat::Error naming the file: the root attribute format_version
// must equal kFileFormatVersion (pimqat/version.h); the tables /tasks, /eval, /train and /curves
// must exist and hold the columns listed in kRequiredColumns.
//
// Vocabulary (docs/analysis.md):
// - axis: a sweep parameter path that varies (pim.train_bits, eval.noise_sigma, ...). Its values
//   are kept as text, numbers in their shortest round-trip form ("0.5", "4", "1e-05"), so that
//   /tasks (text columns) and /eval (float64 columns) compare equal. A whole-section axis
//   ("pim" with values like "{scheme: native, rows: 9}" or "null") is expanded into one axis per
//   key (pim.scheme, pim.rows, ...; a null pim section is pim.enabled = false), "(base)" where a
//   value does not set the key.
// - setting: the eval tasks that differ only in their die (one model, one inference
//   configuration); its dies are the samples of the statistics.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "analysis/stats.h"
#include "core/hdf5.h"

namespace pimqat::analysis {

// Columns this pimqat needs, per table (other columns are allowed and ignored or shown).
struct RequiredColumns {
  const char* table;
  std::vector<const char*> columns;
};
const std::vector<RequiredColumns>& required_columns();

struct ResultsFile {
  std::string path;
  std::int64_t format_version = 0;
  std::string program_version, git_commit, created, sweep_text;
  std::int64_t tasks_total = 0, tasks_done = 0, tasks_failed = 0;
  H5Table tasks, eval, train, curves;
};

// Reads and checks a results file. Errors: the file is missing or not HDF5; no format_version
// (not a pimqat results file); another format_version; missing tables or columns (all listed).
ResultsFile read_results_file(const std::string& path);

// Axis path -> value text (see above).
using AxisValues = std::map<std::string, std::string>;

// Orders axis values: numbers numerically, before text; text lexicographically.
bool value_less(const std::string& a, const std::string& b);
// The value as a number, if it is one ("4", "0.5"); NaN otherwise ("-", "true", "(base)").
double value_number(const std::string& value);
// The shortest round-trip text of a number (4 -> "4", 0.1 -> "0.1").
std::string number_text(double value);

struct EvalSetting {
  AxisValues axes;
  int replicate = -1;                // -1: the dies of every replicate pooled together
  std::vector<std::string> train_ids;  // the models evaluated (one per replicate)
  std::vector<std::int64_t> dies;    // dies present, parallel to `accuracy`
  std::vector<std::int64_t> die_replicates;  // replicate of each die row
  std::vector<double> accuracy;      // percent (the file stores fractions)
  std::int64_t expected = 0;         // eval tasks of the sweep in this setting (all statuses)
  std::int64_t failed = 0;           // of which failed, or skipped because their model failed
  SampleStats stats;                 // of `accuracy`
  bool partial() const { return static_cast<std::int64_t>(accuracy.size()) < expected; }
  const std::string& axis(const std::string& name) const;  // "" when the setting lacks it
};

struct EpochPoint {
  std::int64_t epoch = 0;
  double lr = 0, train_loss = 0, train_accuracy = 0, test_loss = 0, test_accuracy = 0;  // accuracies in percent
};

struct TrainedModel {
  std::string train_id;
  int replicate = 0;
  std::string status;        // done / failed / skipped / pending / running
  AxisValues axes;           // the axes that affect training
  std::vector<EpochPoint> curve;  // by epoch (empty until the model is done)
  double final_test_accuracy() const;  // percent; NaN without a curve
};

struct SweepData {
  std::vector<std::string> axes;      // eval axes (sections expanded) in display order
  std::vector<std::string> train_axes;  // the axes that affect training (a subset of `axes`)
  int replicates = 1;                 // distinct replicate numbers among the tasks
  std::vector<EvalSetting> settings;  // pooled over replicates, sorted by axes
  std::vector<EvalSetting> per_replicate;  // one per (setting, replicate); empty when replicates == 1
  std::vector<TrainedModel> models;   // sorted by axes, then replicate
  std::int64_t eval_tasks = 0, eval_rows = 0;
  // Axes with at least two distinct values among `settings`.
  std::vector<std::string> varied_axes() const;
  std::vector<std::string> values_of(const std::string& axis) const;  // distinct, sorted
};

// Groups the file's rows. Settings come from the /tasks rows of kind "eval" (so settings with no
// die finished yet are listed with n = 0) plus any /eval row that matches none of them.
SweepData collect_sweep(const ResultsFile& file);

// The display order of axis paths: the paper's roles first (pim.enabled, pim.scheme, pim.rows,
// pim.rescale, pim.train_bits, eval.infer_bits, eval.noise_sigma, eval.bn_calibration, ...), then
// the others alphabetically.
std::vector<std::string> order_axes(std::vector<std::string> axes);

}  // namespace pimqat::analysis
