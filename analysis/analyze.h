#pragma once
// `pimqat analyze` as a library call: read a sweep's results.h5 (and optional mac-error / curves
// files), build the report (analysis/views.h, analysis/characterization.h) and write it:
//
//   OUT/report.md          the Markdown report (tables, embedded plots)
//   OUT/tables/NAME.csv    every table
//   OUT/plots/NAME.png     plots, with NAME.gp and NAME.dat to restyle them
//
// OUT defaults to RUN_DIR/analysis. Nothing is printed: the caller shows the returned report.
#include <string>
#include <vector>

#include "analysis/plot.h"
#include "analysis/report.h"

namespace pimqat::analysis {

struct AnalyzeOptions {
  std::string run_dir;       // a sweep's run directory, or a results .h5 file; may be empty when
                             // only mac-error / curves files are analyzed (then out_dir is required)
  std::string out_dir;       // default: RUN_DIR/analysis (next to the file for a .h5 path)
  bool plots = true;
  std::vector<std::string> mac_error_files, curves_files;
  std::string gnuplot;       // program; empty: $PIMQAT_GNUPLOT, else gnuplot from PATH
};

struct AnalyzeResult {
  Report report;
  std::string results_file;  // read (empty without a run)
  std::string out_dir, report_path;
  std::vector<std::string> csv_files;
  Gnuplot gnuplot;           // found == false with its problem when plots were asked for and are impossible
  std::vector<PlotOutcome> plots;  // empty with plots = false
};

// The results file of a run directory (RUN_DIR/results.h5), or the path itself when it names a file.
std::string results_file_of(const std::string& run_dir);

// Errors (pimqat::Error): a missing or unreadable results file (unsupported format_version, missing
// columns: see read_results_file), unreadable characterization files, an output directory that
// cannot be created. A missing gnuplot or a failed plot is not an error: see `gnuplot` / `plots`.
AnalyzeResult analyze(const AnalyzeOptions& options);

}  // namespace pimqat::analysis
