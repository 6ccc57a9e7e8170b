#pragma once
// What an analysis produces, independent of how it is shown: sections of tables and plot
// specifications. analysis/output.h writes them as terminal text, CSV and Markdown;
// analysis/plot.h renders the plots with gnuplot.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace pimqat::analysis {

// A cell: empty, text, a number (shown with its column's decimals; NaN is shown empty), an integer.
using Cell = std::variant<std::monostate, std::string, double, std::int64_t>;

struct TableColumn {
  std::string name;     // header (also the CSV header)
  int decimals = 2;     // for double cells in text and Markdown (CSV keeps full precision)
};

struct Table {
  std::string name;     // file stem of the CSV ("eval_stats" -> eval_stats.csv)
  std::string title;
  std::vector<TableColumn> columns;
  std::vector<std::vector<Cell>> rows;  // each row has columns.size() cells
  std::vector<std::string> notes;       // shown under the table (footnotes, legends of marks)
  bool detail = false;  // long raw listings: written as CSV only (the report links them, the terminal omits them)
};

// One line (or set of points) of a plot. y_low/y_high (both empty or both of x's size) draw
// error bars; NaN y values are left out.
struct Series {
  std::string label;
  std::vector<double> x, y, y_low, y_high;
};

enum class PlotStyle { LinesPoints, Points, Lines, Steps };

struct Plot {
  std::string name;     // file stem: name.png, name.gp, name.dat
  std::string title;
  std::string x_label, y_label;  // with units, e.g. "inference ADC resolution IR (bits)", "test accuracy (%)"
  std::vector<Series> series;
  std::vector<std::string> x_categories;  // non-empty: categorical x, series x values are indices
  PlotStyle style = PlotStyle::LinesPoints;
  std::string key_position = "bottom right";  // gnuplot `set key` position words (more than 4 series: outside, right of the plot)
  bool integer_x = false;  // x values are whole numbers (bits, epochs): one tic per integer when they span <= 20
};

struct Section {
  std::string title;
  std::string text;     // Markdown paragraph(s): what the view shows and how to read it
  std::vector<Table> tables;
  std::vector<Plot> plots;
};

struct Report {
  std::string title;
  std::vector<std::string> summary;  // short lines about the input (file, version, progress)
  std::vector<Section> sections;
  std::vector<std::string> warnings;  // partial sweeps, unreadable optional inputs, skipped views
};

// Lower-case letters, digits, '_' and '-' only (for file names derived from labels).
std::string file_stem(const std::string& text);

}  // namespace pimqat::analysis
