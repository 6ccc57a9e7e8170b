#pragma once
// Writing a Report: aligned terminal text, CSV files (RFC 4180 quoting, numbers at full
// precision), and Markdown (GitHub tables, plots embedded as images).
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "analysis/report.h"

namespace pimqat::analysis {

// A cell for people: doubles with `decimals` digits after the point (NaN and empty: ""), integers
// and text as they are.
std::string cell_display(const Cell& cell, int decimals);
// A cell for CSV: doubles in their shortest round-trip form, NaN as "", text quoted when needed.
std::string cell_csv(const Cell& cell);

// Title, header, rows (at most `max_rows`, then "... N more rows"), notes; columns aligned,
// numbers right-aligned.
std::string format_table_text(const Table& table, std::size_t max_rows = std::numeric_limits<std::size_t>::max());

// The CSV text of a table: the header line, then one line per row.
std::string format_csv(const Table& table);
void write_text_file(const std::string& path, const std::string& text);  // Error naming the file on failure

// Markdown: title, summary, warnings, then each section with its text, tables (with links to
// their CSV under `csv_dir`) and the plots whose PNG names are in `rendered_pngs` (relative paths
// under `plot_dir`). `csv_dir` and `plot_dir` are relative to the report's own directory.
std::string format_markdown(const Report& report, const std::vector<std::string>& rendered_pngs,
                            const std::string& csv_dir, const std::string& plot_dir);

}  // namespace pimqat::analysis
