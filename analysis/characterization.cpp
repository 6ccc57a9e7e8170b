#include "analysis/characterization.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "analysis/results_file.h"
#include "analysis/stats.h"
#include "core/error.h"
#include "core/hdf5.h"

namespace pimqat::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<std::string> kResolutionNames = {"adc_bits", "infer_bits", "bits", "resolution"};
const std::vector<std::string> kNoiseNames = {"noise_sigma", "sigma", "noise"};
const std::vector<std::string> kMetricNames = {"relative_rms", "rms_error_lsb", "rms_error",  "rescaled_relative_rms",
                                               "rho",          "mean_error_lsb", "mean_error", "exact_std", "outputs"};

std::string first_present(const H5Table& t, const std::vector<std::string>& names) {
  for (const auto& n : names)
    if (t.has(n)) return n;
  return "";
}

std::string text_of(const H5Table& t, const std::string& column, std::size_t row) {
  const H5Column& c = t.column(column);
  if (const auto* d = std::get_if<std::vector<double>>(&c)) return std::isnan((*d)[row]) ? "" : number_text((*d)[row]);
  if (const auto* i = std::get_if<std::vector<std::int64_t>>(&c)) return std::to_string((*i)[row]);
  return std::get<std::vector<std::string>>(c)[row];
}

double number_of(const H5Table& t, const std::string& column, std::size_t row) {
  const H5Column& c = t.column(column);
  if (const auto* d = std::get_if<std::vector<double>>(&c)) return (*d)[row];
  if (const auto* i = std::get_if<std::vector<std::int64_t>>(&c)) return static_cast<double>((*i)[row]);
  return value_number(std::get<std::vector<std::string>>(c)[row]);
}

// The table of a mac-error file (see the header for where it is looked for).
H5Table read_mac_error_table(const H5File& file, std::string* where) {
  if (file.has_group("mac_error") && file.open_group("mac_error").has_attr("columns")) {
    *where = "/mac_error";
    return read_table(file, "mac_error");
  }
  for (const std::string& child : file.children())
    if (file.has_group(child) && file.open_group(child).has_attr("columns")) {
      *where = "/" + child;
      return read_table(file, child);
    }
  // Root datasets as columns.
  H5Table table;
  std::size_t length = 0;
  for (const std::string& child : file.children()) {
    if (!file.has_dataset(child)) continue;
    const H5DatasetInfo info = file.dataset_info(child);
    if (info.shape.size() != 1) continue;
    if (table.column_count() && info.shape[0] != length) continue;
    length = info.shape[0];
    if (info.type_class == H5Class::Float) table.add(child, file.read<double>(child));
    else if (info.type_class == H5Class::Integer) table.add(child, file.read<std::int64_t>(child));
    else if (info.type_class == H5Class::String) table.add(child, file.read_strings(child));
  }
  *where = "/";
  return table;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string metric_label(const std::string& metric) {
  if (metric == "relative_rms") return "RMS computing error / std(y) (%)";
  if (metric == "rescaled_relative_rms") return "RMS error after rescaling / std(y) (%)";
  if (metric == "rms_error" || metric == "rms_error_lsb") return "RMS computing error (output LSB)";
  if (metric == "rho") return "rho = std(y~) / std(y)";
  if (metric == "mean_error" || metric == "mean_error_lsb") return "mean computing error (output LSB)";
  return metric;
}

double metric_scale(const std::string& metric) {
  return metric == "relative_rms" || metric == "rescaled_relative_rms" ? 100.0 : 1.0;
}

std::string suffix(const std::string& tag) { return tag.empty() ? "" : "_" + tag; }

}  // namespace

Section mac_error_section(const std::string& path, const std::string& tag) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error("no mac-error file '" + path + "'");
  const H5File file = H5File::open(path, H5Access::ReadOnly);
  std::string where;
  const H5Table t = read_mac_error_table(file, &where);
  const std::string resolution = first_present(t, kResolutionNames);
  const std::string noise = first_present(t, kNoiseNames);
  std::vector<std::string> metrics;
  for (const auto& m : kMetricNames)
    if (t.has(m)) metrics.push_back(m);
  if ((resolution.empty() && noise.empty()) || metrics.empty())
    throw Error("'" + path + "': not a mac-error table (read " + where + ", columns: " +
                (t.column_count() ? joined(t.names()) : std::string("none")) +
                "); `pimqat analyze --mac-error` expects a resolution column (" + joined(kResolutionNames) +
                ") or a noise column (" + joined(kNoiseNames) + ") and at least one of " + joined(kMetricNames));

  // Parameters: every non-metric column; those that vary (other than the x of a plot) split series.
  std::vector<std::string> parameters;
  for (const auto& name : t.names())
    if (std::find(metrics.begin(), metrics.end(), name) == metrics.end()) parameters.push_back(name);
  const auto varying = [&](const std::string& column) {
    std::set<std::string> values;
    for (std::size_t r = 0; r < t.rows(); ++r) values.insert(text_of(t, column, r));
    return values.size() >= 2;
  };

  if (file.has_attr("kind") && file.attr_string("kind") != "pimqat-mac-error")
    throw Error("'" + path + "': kind is '" + file.attr_string("kind") + "', not a `pimqat mac-error` file (kind pimqat-mac-error)");
  // The configuration `pimqat mac-error` records as root attributes: all of it in the text, a
  // short form ("bit-serial, N=144, W4A4") in the plot titles.
  std::string configuration, short_configuration;
  for (const char* attr : {"scheme", "rows", "act_bits", "weight_bits", "adc_clip", "gain_sigma", "offset_sigma"}) {
    if (!file.has_attr(attr)) continue;
    const std::string value = std::string(attr) == "scheme" ? file.attr_string(attr) : number_text(file.attr_double(attr));
    configuration += (configuration.empty() ? "" : ", ") + std::string(attr) + " " + value;
  }
  if (file.has_attr("scheme")) short_configuration = file.attr_string("scheme");
  if (file.has_attr("rows")) short_configuration += ", N=" + number_text(file.attr_double("rows"));
  if (file.has_attr("weight_bits") && file.has_attr("act_bits"))
    short_configuration += ", W" + number_text(file.attr_double("weight_bits")) + "A" + number_text(file.attr_double("act_bits"));
  for (const char* attr : {"gain_sigma", "offset_sigma"})
    if (file.has_attr(attr) && file.attr_double(attr) != 0)
      short_configuration += std::string(", ") + attr + "=" + number_text(file.attr_double(attr));
  if (file.has_attr("adc_clip") && file.attr_double("adc_clip") != 1)
    short_configuration += ", clip " + number_text(file.attr_double("adc_clip"));
  if (!short_configuration.empty() && short_configuration.rfind(", ", 0) == 0) short_configuration.erase(0, 2);
  const std::string config_suffix = short_configuration.empty() ? "" : " (" + short_configuration + ")";

  Section s;
  s.title = "Computing error of the PIM product (Fig. 3 / A2): " + std::filesystem::path(path).filename().string();
  s.text = "From `" + path +
           "` (`pimqat mac-error`): the error of the PIM result y~ against the exact integer product y. "
           "relative_rms = RMS(y~ - y) / std(y); rho = std(y~) / std(y), the output-scale change that rescaling "
           "(DESIGN.md 2.4) divides out; rescaled_relative_rms is the error left after that rescaling." +
           (configuration.empty() ? std::string() : " Configuration: " + configuration + ".");
  Table table;
  table.name = "mac_error" + suffix(tag);
  table.title = "mac-error rows (" + std::filesystem::path(path).filename().string() + ")";
  for (const auto& name : t.names()) {
    const bool is_metric = std::find(metrics.begin(), metrics.end(), name) != metrics.end();
    table.columns.push_back({name, is_metric ? 4 : -1});
  }
  for (std::size_t r = 0; r < t.rows(); ++r) {
    std::vector<Cell> row;
    for (const auto& name : t.names()) {
      const H5Column& c = t.column(name);
      if (const auto* d = std::get_if<std::vector<double>>(&c)) row.push_back(std::isnan((*d)[r]) ? Cell{} : Cell{(*d)[r]});
      else if (const auto* i = std::get_if<std::vector<std::int64_t>>(&c)) row.push_back((*i)[r]);
      else row.push_back(std::get<std::vector<std::string>>(c)[r]);
    }
    table.rows.push_back(std::move(row));
  }
  table.notes.push_back("relative_rms and rescaled_relative_rms are fractions of std(y) here (the plots show percent).");
  s.tables.push_back(std::move(table));

  // One plot per (x column, metric): series by the other varying parameters; repeated rows averaged.
  // One plot per (x column, metric): series by the other varying parameters (repeated rows
  // averaged); with more than 8 series, one plot per value of the first of those parameters.
  const auto make_plot = [&](const std::string& x, const std::string& metric, const std::string& name,
                             const std::string& title, const std::string& x_label) {
    std::vector<std::string> keys;
    for (const auto& p : parameters)
      if (p != x && varying(p)) keys.push_back(p);
    const auto label_of = [&](std::size_t row, std::size_t first_key) {
      std::string label;
      for (std::size_t k = first_key; k < keys.size(); ++k)
        label += (label.empty() ? "" : ", ") + keys[k] + "=" + text_of(t, keys[k], row);
      return label.empty() ? metric_label(metric) : label;
    };
    std::set<std::string> all_labels;
    for (std::size_t r = 0; r < t.rows(); ++r) all_labels.insert(label_of(r, 0));
    const bool split = all_labels.size() > 8 && keys.size() >= 2;
    // plot key (value of the split parameter) -> series label -> x -> values
    std::map<std::string, std::map<std::string, std::map<double, std::vector<double>>>> plots;
    std::map<std::string, std::vector<std::string>> label_order;
    for (std::size_t r = 0; r < t.rows(); ++r) {
      const double xv = number_of(t, x, r), yv = number_of(t, metric, r);
      if (std::isnan(xv) || std::isnan(yv)) continue;
      const std::string plot_key = split ? text_of(t, keys[0], r) : "";
      const std::string label = label_of(r, split ? 1 : 0);
      auto& series = plots[plot_key];
      if (!series.count(label)) label_order[plot_key].push_back(label);  // series in the file's row order
      series[label][xv].push_back(yv * metric_scale(metric));
    }
    for (const auto& [plot_key, series] : plots) {
      Plot p;
      p.name = name + (split ? "_" + file_stem(keys[0] + "_" + plot_key) : "");
      p.title = title + config_suffix + (split ? ", " + keys[0] + " = " + plot_key : "");
      p.x_label = x_label;
      p.y_label = metric_label(metric);
      p.integer_x = x == resolution;
      p.key_position = "outside right top vertical";
      for (const std::string& label : label_order[plot_key]) {
        Series sr;
        sr.label = label;
        for (const auto& [xv, ys] : series.at(label)) {
          sr.x.push_back(xv);
          sr.y.push_back(summarize(ys).mean);
        }
        p.series.push_back(std::move(sr));
      }
      if (!p.series.empty()) s.plots.push_back(std::move(p));
    }
  };
  const std::string error_metric = first_present(t, {"relative_rms", "rms_error_lsb", "rms_error"});
  if (!noise.empty() && varying(noise) && !error_metric.empty())
    make_plot(noise, error_metric, "mac_error_vs_noise" + suffix(tag), "PIM computing error vs thermal noise",
              "thermal noise sigma (LSB)");
  if (!resolution.empty() && varying(resolution)) {
    if (t.has("rho"))
      make_plot(resolution, "rho", "rho_vs_resolution" + suffix(tag), "Output scale change rho vs ADC resolution",
                "ADC resolution (bits)");
    if (!error_metric.empty())
      make_plot(resolution, error_metric, "mac_error_vs_resolution" + suffix(tag),
                "PIM computing error vs ADC resolution", "ADC resolution (bits)");
  }
  return s;
}

Section curves_section(const std::string& path, const std::string& tag) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error("no transfer-curve file '" + path + "'");
  const H5File file = H5File::open(path, H5Access::ReadOnly);
  const std::string expected =
      "a transfer-curve file (docs/curves-format.md: root attributes format = \"pimqat-adc-curves\", adc_bits, "
      "p_lo, p_hi and a dataset /codes of shape (curves, p_hi - p_lo + 1))";
  for (const char* attr : {"adc_bits", "p_lo", "p_hi"})
    if (!file.has_attr(attr)) throw Error("'" + path + "': no root attribute '" + attr + "'; expected " + expected);
  if (file.has_attr("format") && file.attr_string("format") != "pimqat-adc-curves")
    throw Error("'" + path + "': format is '" + file.attr_string("format") + "'; expected " + expected);
  if (!file.has_dataset("codes")) throw Error("'" + path + "': no dataset /codes; expected " + expected);
  const std::int64_t bits = file.attr_int("adc_bits"), p_lo = file.attr_int("p_lo"), p_hi = file.attr_int("p_hi");
  std::vector<hsize_t> shape;
  const std::vector<double> codes = file.read<double>("codes", &shape);
  if (p_hi <= p_lo)
    throw Error("'" + path + "': p_hi = " + std::to_string(p_hi) + " must be greater than p_lo = " +
                std::to_string(p_lo) + "; expected " + expected);
  // p_hi > p_lo: the span is in [1, 2^64 - 1] and exact in unsigned arithmetic (p_hi - p_lo + 1 in
  // int64 overflows for the widest ranges). Once it matches /codes, the point count fits in memory.
  const std::uint64_t span = static_cast<std::uint64_t>(p_hi) - static_cast<std::uint64_t>(p_lo);
  const std::string point_text = span == UINT64_MAX ? "18446744073709551616" : std::to_string(span + 1);
  if (shape.size() != 2 || span == UINT64_MAX || shape[1] != span + 1 || bits < 1 || bits > 30)
    throw Error("'" + path + "': /codes must have shape (curves, " + point_text + ") for p = " + std::to_string(p_lo) +
                ".." + std::to_string(p_hi) + " and adc_bits in 1..30; expected " + expected);
  const auto points = static_cast<std::int64_t>(shape[1]);
  const std::size_t curves = shape[0];
  std::vector<std::int64_t> die(curves, -1), column(curves, -1);
  if (file.has_dataset("die") && file.dataset_info("die").elements() == curves) die = file.read<std::int64_t>("die");
  if (file.has_dataset("column") && file.dataset_info("column").elements() == curves)
    column = file.read<std::int64_t>("column");

  // Ideal (unclipped) ADC level: (p - p_lo) / Delta with Delta = (p_hi - p_lo) / (2^b - 1).
  const double levels = std::ldexp(1.0, static_cast<int>(bits)) - 1;
  const double delta = static_cast<double>(span) / levels;
  const auto ideal = [&](std::int64_t p) { return delta > 0 ? static_cast<double>(p - p_lo) / delta : 0.0; };

  const std::string filename = std::filesystem::path(path).filename().string();
  Section s;
  s.title = "ADC transfer curves of simulated dies (Fig. A7): " + filename;
  s.text = "From `" + path + "` (`pimqat curves`): for every curve (one die, one ADC column), the mean output code " +
           "at every partial sum p, against the ideal ADC without clipping, code = (p - p_lo) / Delta with " +
           "Delta = (p_hi - p_lo) / (2^b - 1). Deviations are in LSB (codes).";
  Table table;
  table.name = "curves" + suffix(tag);
  table.title = "Transfer curves (" + std::to_string(bits) + "-bit ADC, p = " + std::to_string(p_lo) + ".." +
                std::to_string(p_hi) + ")";
  table.columns = {{"curve", 0}, {"die", 0}, {"column", 0}, {"max_abs_deviation_lsb", 3}, {"rms_deviation_lsb", 3},
                   {"code_at_p_lo", 3}, {"code_at_p_hi", 3}};
  for (std::size_t m = 0; m < curves; ++m) {
    double max_abs = 0, sum2 = 0;
    for (std::int64_t i = 0; i < points; ++i) {
      const double d = codes[m * static_cast<std::size_t>(points) + static_cast<std::size_t>(i)] - ideal(p_lo + i);
      max_abs = std::max(max_abs, std::fabs(d));
      sum2 += d * d;
    }
    table.rows.push_back({static_cast<std::int64_t>(m), die[m], column[m], max_abs,
                          std::sqrt(sum2 / static_cast<double>(points)), codes[m * static_cast<std::size_t>(points)],
                          codes[m * static_cast<std::size_t>(points) + static_cast<std::size_t>(points - 1)]});
  }
  s.tables.push_back(std::move(table));

  // Up to 8 curves: the first column of each die first, then further columns.
  std::vector<std::size_t> chosen;
  std::set<std::int64_t> dies_seen;
  for (std::size_t m = 0; m < curves && chosen.size() < 8; ++m)
    if (dies_seen.insert(die[m]).second) chosen.push_back(m);
  for (std::size_t m = 0; m < curves && chosen.size() < 8; ++m)
    if (std::find(chosen.begin(), chosen.end(), m) == chosen.end()) chosen.push_back(m);
  std::sort(chosen.begin(), chosen.end());
  Plot codes_plot, deviation_plot;
  codes_plot.name = "transfer_curves" + suffix(tag);
  codes_plot.title = "ADC transfer curves (" + std::to_string(bits) + " bits, " + std::to_string(chosen.size()) + " of " +
                     std::to_string(curves) + " curves)";
  codes_plot.x_label = "analog partial sum p";
  codes_plot.y_label = "mean output code (LSB)";
  codes_plot.key_position = "top left";
  codes_plot.style = PlotStyle::Lines;
  deviation_plot = codes_plot;
  deviation_plot.name = "transfer_curve_deviation" + suffix(tag);
  deviation_plot.title = "Deviation from the ideal ADC (" + std::to_string(chosen.size()) + " of " +
                         std::to_string(curves) + " curves)";
  deviation_plot.y_label = "code - ideal code (LSB)";
  Series ideal_series;
  ideal_series.label = "ideal ADC (no clipping)";
  for (std::int64_t i = 0; i < points; ++i) {
    ideal_series.x.push_back(static_cast<double>(p_lo + i));
    ideal_series.y.push_back(ideal(p_lo + i));
  }
  codes_plot.series.push_back(std::move(ideal_series));
  for (std::size_t m : chosen) {
    Series c, d;
    c.label = d.label = die[m] >= 0 ? "die " + std::to_string(die[m]) + ", column " + std::to_string(column[m])
                                    : "curve " + std::to_string(m);
    for (std::int64_t i = 0; i < points; ++i) {
      const double code = codes[m * static_cast<std::size_t>(points) + static_cast<std::size_t>(i)];
      c.x.push_back(static_cast<double>(p_lo + i));
      c.y.push_back(code);
      d.x.push_back(static_cast<double>(p_lo + i));
      d.y.push_back(code - ideal(p_lo + i));
    }
    codes_plot.series.push_back(std::move(c));
    deviation_plot.series.push_back(std::move(d));
  }
  s.plots.push_back(std::move(codes_plot));
  s.plots.push_back(std::move(deviation_plot));
  return s;
}

}  // namespace pimqat::analysis
