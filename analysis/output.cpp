#include "analysis/output.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>

#include "analysis/results_file.h"
#include "core/error.h"

namespace pimqat::analysis {
namespace {

bool is_numeric(const Cell& cell) {
  return std::holds_alternative<double>(cell) || std::holds_alternative<std::int64_t>(cell);
}

// Display width in characters (UTF-8 continuation bytes do not count).
std::size_t text_width(const std::string& text) {
  std::size_t width = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++width;
  return width;
}

std::string pad(const std::string& text, std::size_t width, bool right) {
  const std::size_t w = text_width(text);
  if (w >= width) return text;
  const std::string fill(width - w, ' ');
  return right ? fill + text : text + fill;
}

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string file_stem(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c)) out += static_cast<char>(std::tolower(c));
    else if (c == '.' || c == '-') out += c == '.' ? 'p' : '-';
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "all" : out;
}

std::string cell_display(const Cell& cell, int decimals) {
  if (const auto* d = std::get_if<double>(&cell)) {
    if (std::isnan(*d)) return "";
    if (std::isinf(*d)) return *d > 0 ? "inf" : "-inf";
    char buffer[64];
    if (decimals >= 0 && std::fabs(*d) < 1e15) {
      // Small p-values would print as 0.0000: show them in scientific notation.
      if (*d != 0 && std::fabs(*d) < std::pow(10.0, -decimals)) std::snprintf(buffer, sizeof buffer, "%.1e", *d);
      else std::snprintf(buffer, sizeof buffer, "%.*f", decimals, *d);
    } else {
      std::snprintf(buffer, sizeof buffer, "%.6g", *d);
    }
    return buffer;
  }
  if (const auto* i = std::get_if<std::int64_t>(&cell)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&cell)) return *s;
  return "";
}

std::string cell_csv(const Cell& cell) {
  if (const auto* d = std::get_if<double>(&cell)) return std::isnan(*d) ? "" : number_text(*d);
  if (const auto* i = std::get_if<std::int64_t>(&cell)) return std::to_string(*i);
  if (const auto* s = std::get_if<std::string>(&cell)) {
    if (s->find_first_of(",\"\n\r") == std::string::npos) return *s;
    std::string out = "\"";
    for (char c : *s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  }
  return "";
}

std::string format_table_text(const Table& table, std::size_t max_rows) {
  const std::size_t shown = std::min(max_rows, table.rows.size());
  std::vector<std::size_t> width(table.columns.size());
  // Right-aligned: columns whose non-empty cells are all numbers.
  std::vector<bool> right(table.columns.size(), false), text_seen(table.columns.size(), false);
  for (std::size_t c = 0; c < table.columns.size(); ++c) width[c] = text_width(table.columns[c].name);
  std::vector<std::vector<std::string>> cells(shown);
  for (std::size_t r = 0; r < shown; ++r)
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      const Cell& cell = c < table.rows[r].size() ? table.rows[r][c] : Cell{};
      cells[r].push_back(cell_display(cell, table.columns[c].decimals));
      width[c] = std::max(width[c], text_width(cells[r].back()));
      if (is_numeric(cell)) right[c] = true;
      else if (!cells[r].back().empty()) text_seen[c] = true;
    }
  for (std::size_t c = 0; c < right.size(); ++c) right[c] = right[c] && !text_seen[c];
  std::string out = table.title + "\n";
  std::string header, rule;
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    header += (c ? "  " : "") + pad(table.columns[c].name, width[c], right[c]);
    if (c) rule += "  ";
    rule.append(width[c], '-');
  }
  while (!header.empty() && header.back() == ' ') header.pop_back();
  out += header + "\n" + rule + "\n";
  for (const auto& row : cells) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) line += (c ? "  " : "") + pad(row[c], width[c], right[c]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  if (shown < table.rows.size())
    out += "... " + std::to_string(table.rows.size() - shown) + " more rows (all of them in " + table.name + ".csv)\n";
  if (table.rows.empty()) out += "(no rows)\n";
  for (const std::string& note : table.notes) out += note + "\n";
  return out;
}

std::string format_csv(const Table& table) {
  std::string out;
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    if (c) out += ',';
    out += cell_csv(Cell{table.columns[c].name});
  }
  out += "\n";
  for (const auto& row : table.rows) {
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      if (c) out += ',';
      out += cell_csv(c < row.size() ? row[c] : Cell{});
    }
    out += "\n";
  }
  return out;
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot write '" + path + "': the directory is missing or not writable");
  out << text;
  out.close();
  if (!out) throw Error("writing '" + path + "' failed (disk full?)");
}

std::string format_markdown(const Report& report, const std::vector<std::string>& rendered_pngs,
                            const std::string& csv_dir, const std::string& plot_dir) {
  const std::set<std::string> rendered(rendered_pngs.begin(), rendered_pngs.end());
  std::string md = "# " + report.title + "\n\n";
  for (const std::string& line : report.summary) md += "- " + markdown_escape(line) + "\n";
  md += "\n";
  if (!report.warnings.empty()) {
    for (const std::string& w : report.warnings) md += "> **Note:** " + markdown_escape(w) + "\n>\n";
    md += "\n";
  }
  for (const Section& s : report.sections) {
    md += "## " + s.title + "\n\n";
    if (!s.text.empty()) md += s.text + "\n\n";
    for (const Table& t : s.tables) {
      md += "**" + markdown_escape(t.title) + "** ([" + t.name + ".csv](" + csv_dir + "/" + t.name + ".csv))\n\n";
      if (t.rows.empty() || t.detail) {
        md += t.rows.empty() ? "(no rows)\n\n" : std::to_string(t.rows.size()) + " rows, in the CSV file only.\n\n";
        continue;
      }
      md += "|";
      for (const auto& c : t.columns) md.append(" ").append(markdown_escape(c.name)).append(" |");
      md += "\n|";
      for (std::size_t c = 0; c < t.columns.size(); ++c) {
        bool numeric = false, text = false;
        for (const auto& row : t.rows) {
          if (c >= row.size()) continue;
          if (is_numeric(row[c])) numeric = true;
          else if (!cell_display(row[c], 0).empty()) text = true;
        }
        md += numeric && !text ? " ---: |" : " --- |";
      }
      md += "\n";
      for (const auto& row : t.rows) {
        md += "|";
        for (std::size_t c = 0; c < t.columns.size(); ++c)
          md.append(" ")
              .append(markdown_escape(cell_display(c < row.size() ? row[c] : Cell{}, t.columns[c].decimals)))
              .append(" |");
        md += "\n";
      }
      md += "\n";
      for (const std::string& note : t.notes) md.append("Note: ").append(markdown_escape(note)).append("\n\n");
    }
    for (const Plot& p : s.plots) {
      const std::string png = p.name + ".png";
      if (rendered.count(png)) md += "![" + markdown_escape(p.title) + "](" + plot_dir + "/" + png + ")\n\n";
    }
  }
  return md;
}

}  // namespace pimqat::analysis
