// `pimqat analyze DIR [--out ANALYSIS_DIR] [--no-plots] [--mac-error FILE]... [--curves FILE]...`:
// tables (terminal, CSV, Markdown) and plots (PNG through gnuplot) of a finished or running sweep
// (docs/analysis.md). The work is analysis::analyze(); this file only parses and prints.
#include <cstdio>
#include <filesystem>
#include <string>

#include "analysis/analyze.h"
#include "analysis/output.h"
#include "runner/cli/args.h"
#include "runner/cli/commands.h"

namespace pimqat::cli {
namespace {

constexpr const char* kUsage =
    "usage: pimqat analyze DIR [--out ANALYSIS_DIR] [--no-plots] [--rows N]\n"
    "                          [--mac-error FILE]... [--curves FILE]...\n"
    "  Statistics over dies of every evaluation setting of the sweep in DIR (its results.h5; a running\n"
    "  sweep is fine: the latest snapshot is read), and the views the sweep's axes call for: accuracy vs\n"
    "  ADC resolution (baseline vs PIM-QAT), the best training resolution per (IR, noise), BN calibration,\n"
    "  learning curves. Writes ANALYSIS_DIR/report.md, tables/*.csv and plots/*.png (gnuplot).\n"
    "  DIR may also be a results .h5 file. docs/analysis.md explains every view and statistic.\n"
    "  --out DIR         where to write (default: DIR/analysis)\n"
    "  --no-plots        tables and report only\n"
    "  --rows N          rows shown per table in the terminal (default 30; the files have all)\n"
    "  --mac-error FILE  add the views of a `pimqat mac-error` output (Fig. 3 / A2); repeatable\n"
    "  --curves FILE     add the views of a `pimqat curves` output (Fig. A7); repeatable\n"
    "  Without DIR, --out is required and only the --mac-error / --curves files are analyzed.\n";

}  // namespace

int run_analyze(int argc, char** argv) {
  const Args args(argc, argv, {"--out", "--rows", "--mac-error", "--curves"}, {"--no-plots", "--help"});
  if (args.has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  analysis::AnalyzeOptions options;
  options.mac_error_files = args.all("--mac-error");
  options.curves_files = args.all("--curves");
  if (args.positional().size() > 1 ||
      (args.positional().empty() && options.mac_error_files.empty() && options.curves_files.empty())) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  if (args.positional().empty() && !args.has("--out")) {
    std::fputs("pimqat analyze: without a run directory, give --out ANALYSIS_DIR\n", stderr);
    return kExitBadInput;
  }
  const int max_rows = args.get_int("--rows", 30);
  if (max_rows < 0) {
    std::fputs("pimqat analyze: --rows must be >= 0\n", stderr);
    return kExitBadInput;
  }
  if (!args.positional().empty()) {
    options.run_dir = args.positional()[0];
    std::error_code ec;
    if (!std::filesystem::exists(options.run_dir, ec)) {
      std::fprintf(stderr, "pimqat analyze: '%s' does not exist (expected a sweep's run directory, the --out of `pimqat sweep`)\n",
                   options.run_dir.c_str());
      return kExitBadInput;
    }
    const std::string results = analysis::results_file_of(options.run_dir);
    if (!std::filesystem::exists(results, ec)) {
      std::fprintf(stderr,
                   "pimqat analyze: no results file '%s' yet: the sweep has not finished a task, or '%s' is not a "
                   "sweep run directory.\n  `pimqat status %s` shows its progress.\n",
                   results.c_str(), options.run_dir.c_str(), options.run_dir.c_str());
      return kExitFailure;
    }
  }
  options.out_dir = args.get("--out");
  options.plots = !args.has("--no-plots");

  const analysis::AnalyzeResult result = analysis::analyze(options);
  const analysis::Report& report = result.report;
  for (const std::string& line : report.summary) std::printf("%s\n", line.c_str());
  for (const analysis::Section& s : report.sections) {
    std::printf("\n== %s ==\n", s.title.c_str());
    for (const analysis::Table& t : s.tables) {
      if (t.detail) continue;
      const bool whole = t.name == "overview";  // a few lines that say what was read
      std::printf("\n%s", analysis::format_table_text(t, whole ? t.rows.size() : static_cast<std::size_t>(max_rows)).c_str());
    }
  }
  std::printf("\n");
  for (const std::string& w : report.warnings) std::printf("note: %s\n", w.c_str());
  std::size_t rendered = 0;
  for (const auto& p : result.plots) rendered += p.ok ? 1 : 0;
  std::printf("wrote %s, %zu CSV tables in %s/tables", result.report_path.c_str(), result.csv_files.size(),
              result.out_dir.c_str());
  if (options.plots && result.gnuplot.found)
    std::printf(", %zu of %zu plots in %s/plots", rendered, result.plots.size(), result.out_dir.c_str());
  std::printf("\n");
  return kExitOk;
}

}  // namespace pimqat::cli
