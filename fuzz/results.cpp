// Fuzz target: a sweep's results file as `pimqat analyze` reads it (analysis/results_file.h
// read_results_file, collect_sweep; analysis/views.h sweep_report; analysis/output.h and
// analysis/plot.h writing the report, its tables and gnuplot scripts).
// Input: h5spec text (fuzz/h5spec.h), or raw HDF5 bytes (see fuzz/hdf5_input.h).
// Property: values from the file never break out of a quoted string of a gnuplot script (a
// newline inside quotes would end the command and let the file's text run as gnuplot commands,
// which include `system` and `!` shell escapes).
#include <cstdint>
#include <string>

#include "analysis/output.h"
#include "analysis/plot.h"
#include "analysis/results_file.h"
#include "analysis/views.h"
#include "fuzz/fuzz_common.h"
#include "fuzz/hdf5_input.h"

using namespace pimqat;

namespace {

// gnuplot strings in the scripts are single-quoted with '' for a quote; comment lines ("# ...")
// are not strings, whatever quotes they hold.
void check_script(const std::string& script, const std::string& plot) {
  bool in_quote = false, in_comment = false, line_start = true;
  for (const char c : script) {
    if (line_start && !in_quote) in_comment = c == '#';
    line_start = c == '\n';
    if (in_comment) continue;
    if (c == '\'') in_quote = !in_quote;  // '' toggles twice: stays inside
    else if (in_quote && (c == '\n' || c == '\r'))
      fuzz::finding("gnuplot script of plot '" + plot + "' has a line break inside a quoted string:\n" + script);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::scratch_path("results.h5");
  if (!fuzz::make_hdf5_input(data, size, path)) return 0;
  fuzz::expect_error_or_success("read_results_file", [&] {
    const analysis::ResultsFile file = analysis::read_results_file(path);
    const analysis::SweepData sweep = analysis::collect_sweep(file);
    const analysis::Report report = analysis::sweep_report(file, sweep);
    (void)analysis::format_markdown(report, {}, "tables", "plots");
    for (const analysis::Section& section : report.sections) {
      for (const analysis::Table& table : section.tables) {
        (void)analysis::format_table_text(table, 50);
        (void)analysis::format_csv(table);
      }
      for (const analysis::Plot& plot : section.plots) {
        (void)analysis::gnuplot_data(plot);
        check_script(analysis::gnuplot_script(plot, plot.name + ".dat", plot.name + ".png", "pngcairo"), plot.name);
      }
    }
  });
  return 0;
}
