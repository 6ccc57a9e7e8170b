#include "analysis/analyze.h"

#include <filesystem>

#include "analysis/characterization.h"
#include "analysis/output.h"
#include "analysis/results_file.h"
#include "analysis/views.h"
#include "core/error.h"

namespace pimqat::analysis {
namespace {

namespace fs = std::filesystem;

void make_directory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw Error("cannot create the output directory '" + dir.string() + "': " + ec.message());
}

}  // namespace

std::string results_file_of(const std::string& run_dir) {
  std::error_code ec;
  if (fs::is_regular_file(run_dir, ec)) return run_dir;
  return (fs::path(run_dir) / "results.h5").string();
}

AnalyzeResult analyze(const AnalyzeOptions& options) {
  AnalyzeResult result;
  if (options.run_dir.empty() && options.mac_error_files.empty() && options.curves_files.empty())
    throw Error("nothing to analyze: give a run directory, a mac-error file or a curves file");
  if (options.run_dir.empty() && options.out_dir.empty())
    throw Error("without a run directory, the output directory must be given (--out DIR)");

  Report& report = result.report;
  report.title = "pimqat analysis";
  if (!options.run_dir.empty()) {
    result.results_file = results_file_of(options.run_dir);
    const ResultsFile file = read_results_file(result.results_file);
    const SweepData data = collect_sweep(file);
    report = sweep_report(file, data);
  }
  for (std::size_t i = 0; i < options.mac_error_files.size(); ++i) {
    report.sections.push_back(mac_error_section(options.mac_error_files[i], i ? std::to_string(i + 1) : ""));
    report.summary.push_back("mac-error: " + options.mac_error_files[i]);
  }
  for (std::size_t i = 0; i < options.curves_files.size(); ++i) {
    report.sections.push_back(curves_section(options.curves_files[i], i ? std::to_string(i + 1) : ""));
    report.summary.push_back("transfer curves: " + options.curves_files[i]);
  }

  std::error_code ec;
  const fs::path results_dir = fs::is_regular_file(options.run_dir, ec) ? fs::path(options.run_dir).parent_path()
                                                                         : fs::path(options.run_dir);
  const fs::path out = options.out_dir.empty() ? results_dir / "analysis" : fs::path(options.out_dir);
  result.out_dir = out.string();
  make_directory(out / "tables");

  for (const Section& s : report.sections)
    for (const Table& t : s.tables) {
      const std::string path = (out / "tables" / (t.name + ".csv")).string();
      write_text_file(path, format_csv(t));
      result.csv_files.push_back(path);
    }

  std::vector<std::string> rendered;
  if (options.plots) {
    std::vector<const Plot*> plots;
    for (const Section& s : report.sections)
      for (const Plot& p : s.plots) plots.push_back(&p);
    result.gnuplot = find_gnuplot(options.gnuplot);
    if (!plots.empty()) {
      // Without gnuplot the .gp and .dat files are still written, to be rendered elsewhere.
      make_directory(out / "plots");
      result.plots = render_plots(plots, (out / "plots").string(), result.gnuplot);
      for (const PlotOutcome& o : result.plots) {
        if (o.ok) rendered.push_back(o.name + ".png");
        else if (result.gnuplot.found) report.warnings.push_back("plot " + o.name + " failed: " + o.error);
      }
    }
    if (!result.gnuplot.found)
      report.warnings.push_back("no plots: " + result.gnuplot.problem +
                                " (tables, the report and the plots' .gp/.dat files are written)");
  }
  result.report_path = (out / "report.md").string();
  write_text_file(result.report_path, format_markdown(report, rendered, "tables", "plots"));
  return result;
}

}  // namespace pimqat::analysis
