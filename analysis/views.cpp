#include "analysis/views.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

namespace pimqat::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::string kAccuracyLabel = "test accuracy (%)";

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::vector<std::string> without(std::vector<std::string> axes, const std::vector<std::string>& drop) {
  axes.erase(std::remove_if(axes.begin(), axes.end(), [&](const std::string& a) { return contains(drop, a); }), axes.end());
  return axes;
}

AxisValues restrict_to(const AxisValues& values, const std::vector<std::string>& axes) {
  AxisValues out;
  for (const std::string& a : axes)
    if (const auto it = values.find(a); it != values.end()) out[a] = it->second;
  return out;
}

// Orders restricted axis maps by `order` with value_less.
struct FacetLess {
  const std::vector<std::string>* order;
  bool operator()(const AxisValues& a, const AxisValues& b) const {
    for (const std::string& name : *order) {
      const auto ia = a.find(name), ib = b.find(name);
      const std::string va = ia == a.end() ? "" : ia->second, vb = ib == b.end() ? "" : ib->second;
      if (va != vb) return value_less(va, vb);
    }
    return false;
  }
};

template <class T>
using FacetMap = std::map<AxisValues, T, FacetLess>;

Cell number_cell(double v) { return std::isnan(v) ? Cell{} : Cell{v}; }
Cell count_cell(std::size_t n) { return Cell{static_cast<std::int64_t>(n)}; }
// Axis values stay text (their spelling is the sweep's normalized one).
Cell value_cell(const std::string& v) { return Cell{v}; }

// Error bars of a mean: its 95% CI, or the mean itself when n < 2 (no interval).
void push_point(Series& s, double x, const SampleStats& stats) {
  s.x.push_back(x);
  s.y.push_back(stats.n ? stats.mean : kNaN);
  s.y_low.push_back(std::isnan(stats.ci_low) ? s.y.back() : stats.ci_low);
  s.y_high.push_back(std::isnan(stats.ci_high) ? s.y.back() : stats.ci_high);
}

std::string format_value_list(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ", ") + v;
  return out;
}

std::string plural(std::size_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

std::string title_suffix(const AxisValues& facets, const std::vector<std::string>& axes) {
  const std::string label = facet_label(facets, axes);
  return label.empty() ? "" : " (" + label + ")";
}

std::string status_text(const EvalSetting& s) {
  const std::size_t n = s.accuracy.size();
  std::string text = n == 0 ? "pending" : s.partial() ? "partial" : "complete";
  if (s.failed) text += ", " + std::to_string(s.failed) + " failed";
  return text;
}

void add_plot_capped(Section& section, Plot plot, std::size_t* skipped) {
  if (section.plots.size() >= kMaxPlotsPerView) {
    ++*skipped;
    return;
  }
  section.plots.push_back(std::move(plot));
}

void note_skipped_plots(Section& section, std::size_t skipped) {
  if (skipped)
    section.text += "\n\n" + plural(skipped, "further plot") + " of this view were not drawn (at most " +
                    std::to_string(kMaxPlotsPerView) + " per view); the CSV tables hold every value.";
}

// Pooled dies of several settings (e.g. one TR value's settings when another facet is merged).
std::vector<double> pooled_accuracy(const std::vector<const EvalSetting*>& settings) {
  std::vector<double> all;
  for (const auto* s : settings) all.insert(all.end(), s->accuracy.begin(), s->accuracy.end());
  return all;
}

}  // namespace

TrainingMode training_mode(const AxisValues& axes) {
  if (const auto it = axes.find(kEnabledAxis); it != axes.end()) {
    if (it->second == "false") return TrainingMode::Digital;
    if (it->second == "true") return TrainingMode::Pim;
  }
  if (const auto it = axes.find(kTrainBitsAxis); it != axes.end()) {
    if (it->second == "-") return TrainingMode::Digital;
    if (!std::isnan(value_number(it->second))) return TrainingMode::Pim;
  }
  return TrainingMode::Unknown;
}

std::string short_axis_name(const std::string& axis) {
  if (axis == kTrainBitsAxis) return "TR";
  if (axis == kInferBitsAxis) return "IR";
  if (axis == kNoiseAxis) return "sigma";
  if (axis == kEnabledAxis) return "pim_training";
  const auto dot = axis.rfind('.');
  return dot == std::string::npos ? axis : axis.substr(dot + 1);
}

std::string facet_label(const AxisValues& values, const std::vector<std::string>& axes) {
  std::string out;
  for (const std::string& a : axes) {
    const auto it = values.find(a);
    if (it == values.end() || it->second == "-") continue;  // "-": the axis does not apply
    if (!out.empty()) out += ", ";
    if (a == kEnabledAxis && (it->second == "true" || it->second == "false"))
      out += it->second == "true" ? "PIM-QAT" : "digital QAT";
    else
      out += short_axis_name(a) + "=" + it->second;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Overview and the generic table.

Section overview_section(const ResultsFile& file, const SweepData& data) {
  Section s;
  s.title = "Run";
  Table t;
  t.name = "overview";
  t.title = "Results file";
  t.columns = {{"item", 0}, {"value", 0}};
  const auto row = [&](const std::string& k, Cell v) { t.rows.push_back({Cell{k}, std::move(v)}); };
  std::size_t complete = 0, partial = 0, pending = 0;
  for (const EvalSetting& e : data.settings) {
    if (e.accuracy.empty()) ++pending;
    else if (e.partial()) ++partial;
    else ++complete;
  }
  row("file", file.path);
  row("format_version", file.format_version);
  row("written by", "pimqat " + file.program_version + " (commit " + file.git_commit + ")");
  row("created", file.created);
  row("tasks done / total", std::to_string(file.tasks_done) + " / " + std::to_string(file.tasks_total) +
                                (file.tasks_failed ? " (" + std::to_string(file.tasks_failed) + " failed)" : ""));
  row("trained models", count_cell(data.models.size()));
  row("evaluation settings", std::to_string(data.settings.size()) + " (" + std::to_string(complete) + " complete, " +
                                 std::to_string(partial) + " partial, " + std::to_string(pending) + " pending)");
  row("die evaluations done / planned", std::to_string(data.eval_rows) + " / " + std::to_string(data.eval_tasks));
  row("replicates", static_cast<std::int64_t>(data.replicates));
  const auto varied = data.varied_axes();
  for (const std::string& a : varied) row("axis " + a, format_value_list(data.values_of(a)));
  for (const std::string& a : data.axes)
    if (!contains(varied, a)) row("constant " + a, format_value_list(data.values_of(a)));
  s.tables.push_back(std::move(t));
  return s;
}

Section settings_section(const SweepData& data) {
  Section s;
  s.title = "Every evaluation setting";
  s.text =
      "Statistics over dies of every evaluation setting (one trained model, one inference configuration): "
      "accuracy in percent; std is the sample standard deviation (n - 1); p5 the 5th percentile (linear "
      "interpolation, numpy's default); the 95% confidence interval of the mean uses Student's t with n - 1 "
      "degrees of freedom. `n` counts the dies finished, `of` the dies the sweep plans; a setting with "
      "n < of is partial (the sweep is still running, or tasks failed).";
  const std::vector<std::string> axes = data.varied_axes().empty() ? data.axes : data.varied_axes();
  const auto make = [&](const std::vector<EvalSetting>& settings, bool with_replicate, const std::string& name,
                        const std::string& title) {
    Table t;
    t.name = name;
    t.title = title;
    for (const std::string& a : axes) t.columns.push_back({a, 0});
    if (with_replicate) t.columns.push_back({"replicate", 0});
    for (const char* c : {"n", "of"}) t.columns.push_back({c, 0});
    for (const char* c : {"mean", "std", "min", "p5", "max", "ci95_low", "ci95_high"}) t.columns.push_back({c, 2});
    t.columns.push_back({"status", 0});
    for (const EvalSetting& e : settings) {
      std::vector<Cell> row;
      for (const std::string& a : axes) row.push_back(value_cell(e.axis(a)));
      if (with_replicate) row.push_back(static_cast<std::int64_t>(e.replicate));
      row.push_back(count_cell(e.accuracy.size()));
      row.push_back(e.expected);
      for (double v : {e.stats.mean, e.stats.std, e.stats.min, e.stats.p5, e.stats.max, e.stats.ci_low, e.stats.ci_high})
        row.push_back(number_cell(v));
      row.push_back(status_text(e));
      t.rows.push_back(std::move(row));
    }
    std::vector<std::string> constant;
    for (const std::string& a : data.axes)
      if (!contains(axes, a)) constant.push_back(a + " = " + format_value_list(data.values_of(a)));
    if (!constant.empty()) t.notes.push_back("Same in every setting: " + format_value_list(constant) + ".");
    return t;
  };
  s.tables.push_back(make(data.settings, false, "eval_stats",
                          data.replicates > 1 ? "Accuracy over dies per setting (replicates pooled)"
                                              : "Accuracy over dies per setting"));
  if (data.replicates > 1)
    s.tables.push_back(make(data.per_replicate, true, "eval_stats_by_replicate", "Accuracy over dies per setting and replicate"));
  if (data.settings.empty()) s.text += "\n\nThis sweep has no evaluation tasks.";
  return s;
}

// ---------------------------------------------------------------------------------------------
// Scheme x resolution (Fig. 4 / A4).

std::optional<Section> scheme_resolution_view(const SweepData& data) {
  const auto varied = data.varied_axes();
  if (!contains(varied, kInferBitsAxis)) return std::nullopt;
  const bool train_bits_numeric_axis = [&] {
    for (const auto& v : data.values_of(kTrainBitsAxis))
      if (!std::isnan(value_number(v))) return true;
    return false;
  }();
  const std::vector<std::string> facets = without(varied, {kEnabledAxis, kTrainBitsAxis, kInferBitsAxis});

  // Method of a setting: baseline, PIM-QAT at TR = IR (TR varied per IR), PIM-QAT, or as configured.
  enum Method { kBaseline, kPimQat, kUnknown, kMethods };
  const char* const method_name[kMethods] = {"baseline (digital QAT on PIM)", "PIM-QAT", "as trained"};
  bool tr_equals_ir_available = false;
  for (const EvalSetting& e : data.settings)
    if (training_mode(e.axes) == TrainingMode::Pim && train_bits_numeric_axis &&
        value_number(e.axis(kTrainBitsAxis)) == value_number(e.axis(kInferBitsAxis)))
      tr_equals_ir_available = true;
  const bool diagonal = train_bits_numeric_axis && tr_equals_ir_available && contains(varied, kTrainBitsAxis);

  struct Cellset {
    std::vector<const EvalSetting*> settings[kMethods];
    std::vector<double> digital;  // final test accuracies of the digital models
  };
  FacetMap<std::map<double, Cellset>> rows(FacetLess{&data.axes});
  FacetMap<std::map<std::string, double>> digital_by_facet(FacetLess{&data.axes});  // facet -> model -> accuracy
  std::set<int> methods_present;
  std::map<std::string, double> model_accuracy;
  for (const TrainedModel& m : data.models) model_accuracy[m.train_id] = m.final_test_accuracy();
  for (const EvalSetting& e : data.settings) {
    const double ir = value_number(e.axis(kInferBitsAxis));
    if (std::isnan(ir)) continue;
    const TrainingMode mode = training_mode(e.axes);
    int method = mode == TrainingMode::Digital ? kBaseline : mode == TrainingMode::Pim ? kPimQat : kUnknown;
    if (method == kPimQat && diagonal && value_number(e.axis(kTrainBitsAxis)) != ir) continue;
    const AxisValues facet = restrict_to(e.axes, facets);
    Cellset& c = rows[facet][ir];
    c.settings[method].push_back(&e);
    methods_present.insert(method);
    if (method == kBaseline)
      for (const std::string& id : e.train_ids)
        if (const auto it = model_accuracy.find(id); it != model_accuracy.end() && !std::isnan(it->second))
          digital_by_facet[facet][id] = it->second;
  }
  // Without a training mode (no pim.enabled or pim.train_bits axis) there is no baseline/PIM-QAT
  // comparison to make: the generic table shows accuracy by IR.
  if (rows.empty() || (methods_present.size() == 1 && methods_present.count(kUnknown))) return std::nullopt;

  Section s;
  s.title = "Accuracy vs ADC resolution: digital QAT, baseline on PIM, PIM-QAT (Fig. 4 / A4)";
  s.text =
      "For every inference ADC resolution IR: the digitally trained model's own test accuracy (digital QAT, "
      "no PIM), the same model deployed on the PIM hardware (the baseline), and models trained with the PIM "
      "quantizer in the loop (PIM-QAT" +
      std::string(diagonal ? ", trained at TR = IR" : "") +
      "). Means over dies with the half width of the 95% confidence interval. The paper's claim: the baseline "
      "collapses at low resolution while PIM-QAT stays close to digital QAT.";
  Table t;
  t.name = "scheme_resolution";
  t.title = "Accuracy (%) by resolution";
  for (const std::string& f : facets) t.columns.push_back({f, 0});
  t.columns.push_back({"IR", 0});
  const bool has_digital = !digital_by_facet.empty();
  if (has_digital) t.columns.push_back({"digital_qat", 2});
  for (int m : methods_present) {
    const std::string base = m == kBaseline ? "baseline" : m == kPimQat ? "pim_qat" : "as_trained";
    t.columns.push_back({base + "_mean", 2});
    t.columns.push_back({base + "_ci95", 2});
    t.columns.push_back({base + "_min", 2});
    t.columns.push_back({base + "_n", 0});
  }
  std::size_t skipped = 0;
  for (const auto& [facet, by_ir] : rows) {
    Plot plot;
    plot.name = "accuracy_vs_resolution" + (facets.empty() ? "" : "_" + file_stem(facet_label(facet, facets)));
    plot.title = "Test accuracy vs inference ADC resolution" + title_suffix(facet, facets);
    plot.x_label = "inference ADC resolution IR (bits)";
    plot.integer_x = true;
    plot.y_label = kAccuracyLabel;
    std::map<int, Series> series;
    Series digital_series;
    const auto digital_it = digital_by_facet.find(facet);
    double digital = kNaN;  // mean over the digital models of this facet (replicates)
    if (digital_it != digital_by_facet.end()) {
      std::vector<double> accuracies;
      for (const auto& [id, accuracy] : digital_it->second) accuracies.push_back(accuracy);
      digital = summarize(accuracies).mean;
    }
    for (const auto& [ir, c] : by_ir) {
      std::vector<Cell> row;
      for (const std::string& f : facets) row.push_back(value_cell(facet.count(f) ? facet.at(f) : ""));
      row.push_back(value_cell(number_text(ir)));
      if (has_digital) row.push_back(number_cell(digital));
      for (int m : methods_present) {
        const SampleStats st = summarize(pooled_accuracy(c.settings[m]));
        row.push_back(number_cell(st.mean));
        row.push_back(number_cell(st.ci_half_width()));
        row.push_back(number_cell(st.min));
        row.push_back(count_cell(st.n));
        if (st.n) {
          Series& sr = series[m];
          sr.label = method_name[m];
          push_point(sr, ir, st);
        }
      }
      if (!std::isnan(digital)) {
        digital_series.x.push_back(ir);
        digital_series.y.push_back(digital);
      }
      t.rows.push_back(std::move(row));
    }
    if (!digital_series.x.empty()) {
      digital_series.label = "digital QAT (no PIM)";
      plot.series.push_back(std::move(digital_series));
    }
    for (auto& [m, sr] : series) plot.series.push_back(std::move(sr));
    if (!plot.series.empty()) add_plot_capped(s, std::move(plot), &skipped);
  }
  t.notes.push_back("_mean: mean over dies; _ci95: half width of the 95% confidence interval of the mean; "
                    "_min: the worst die; _n: dies. digital_qat: the final test accuracy of the digitally trained model.");
  if (diagonal)
    t.notes.push_back("PIM-QAT columns use the models trained at TR = IR; the other training resolutions are in "
                      "the best-training-resolution view and the generic table.");
  s.tables.push_back(std::move(t));
  note_skipped_plots(s, skipped);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Best training resolution (Fig. 5).

std::vector<BestTrainBits> best_train_bits(const SweepData& data) {
  std::vector<BestTrainBits> out;
  const auto varied = data.varied_axes();
  if (!contains(varied, kTrainBitsAxis)) return out;
  const std::vector<std::string> group_axes = without(data.axes, {kTrainBitsAxis, kEnabledAxis});
  FacetMap<std::map<std::string, std::vector<const EvalSetting*>>> groups(FacetLess{&data.axes});
  for (const EvalSetting& e : data.settings) {
    if (training_mode(e.axes) == TrainingMode::Digital) continue;
    const std::string tr = e.axis(kTrainBitsAxis);
    if (std::isnan(value_number(tr))) continue;
    groups[restrict_to(e.axes, group_axes)][tr].push_back(&e);
  }
  for (const auto& [facets, by_tr] : groups) {
    struct Candidate {
      std::string tr;
      std::vector<double> accuracy;
      SampleStats stats;
    };
    std::vector<Candidate> candidates;
    for (const auto& [tr, settings] : by_tr) {
      Candidate c{tr, pooled_accuracy(settings), {}};
      c.stats = summarize(c.accuracy);
      if (c.stats.n) candidates.push_back(std::move(c));
    }
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
      if (a.stats.mean != b.stats.mean) return a.stats.mean > b.stats.mean;
      return value_less(a.tr, b.tr);
    });
    BestTrainBits b;
    b.facets = facets;
    b.candidates = candidates.size();
    b.margin = kNaN;
    b.test = welch_t_test(std::vector<double>{}, std::vector<double>{});
    if (!candidates.empty()) {
      b.best = candidates[0].tr;
      b.best_stats = candidates[0].stats;
    }
    if (candidates.size() >= 2) {
      b.runner_up = candidates[1].tr;
      b.runner_up_stats = candidates[1].stats;
      b.margin = b.best_stats.mean - b.runner_up_stats.mean;
      b.test = welch_t_test(candidates[0].accuracy, candidates[1].accuracy);
    }
    out.push_back(std::move(b));
  }
  return out;
}

std::optional<Section> best_train_bits_view(const SweepData& data) {
  const std::vector<BestTrainBits> best = best_train_bits(data);
  bool any_choice = false;
  for (const auto& b : best) any_choice = any_choice || b.candidates >= 2;
  if (!any_choice) return std::nullopt;
  const auto varied = data.varied_axes();
  const std::vector<std::string> facets = without(varied, {kTrainBitsAxis, kEnabledAxis});

  Section s;
  s.title = "Best training resolution per inference resolution and noise (Fig. 5)";
  s.text =
      "For every inference setting (IR, noise sigma and any other varied axis), the training ADC resolution TR "
      "whose model has the highest mean accuracy over dies, the runner-up, and the margin between them in "
      "percentage points. `p` is the two-sided p-value of Welch's unequal-variance t-test between the best and "
      "the runner-up TR over their dies (the two models are evaluated on independently drawn dies, so the test "
      "is unpaired); `significant` means p < 0.05. With dies of one model as the only source of variation, "
      "the test says whether the ranking would hold on other chips, not whether it would hold for another "
      "training run.";
  Table t;
  t.name = "best_train_bits";
  t.title = "Best TR";
  for (const std::string& f : facets) t.columns.push_back({f, 0});
  t.columns.insert(t.columns.end(), {{"best_TR", 0},
                                     {"best_mean", 2},
                                     {"best_ci95", 2},
                                     {"best_n", 0},
                                     {"runner_up_TR", 0},
                                     {"runner_up_mean", 2},
                                     {"margin_pp", 2},
                                     {"welch_t", 2},
                                     {"welch_dof", 1},
                                     {"p", 4},
                                     {"significant", 0},
                                     {"candidates", 0}});
  for (const BestTrainBits& b : best) {
    std::vector<Cell> row;
    for (const std::string& f : facets) row.push_back(value_cell(b.facets.count(f) ? b.facets.at(f) : ""));
    row.push_back(value_cell(b.best));
    row.push_back(number_cell(b.best_stats.mean));
    row.push_back(number_cell(b.best_stats.ci_half_width()));
    row.push_back(count_cell(b.best_stats.n));
    row.push_back(b.runner_up.empty() ? Cell{} : value_cell(b.runner_up));
    row.push_back(b.runner_up.empty() ? Cell{} : number_cell(b.runner_up_stats.mean));
    row.push_back(number_cell(b.margin));
    row.push_back(b.test.valid ? number_cell(b.test.t) : Cell{});
    row.push_back(b.test.valid ? number_cell(b.test.dof) : Cell{});
    row.push_back(b.test.valid ? number_cell(b.test.p_value) : Cell{});
    row.push_back(b.runner_up.empty() ? Cell{std::string("-")}
                  : !b.test.valid     ? Cell{std::string("n/a (< 2 dies)")}
                                      : Cell{std::string(b.significant() ? "yes" : "no")});
    row.push_back(count_cell(b.candidates));
    t.rows.push_back(std::move(row));
  }
  t.notes.push_back("margin_pp: best mean - runner-up mean (percentage points); p: Welch's t-test, two-sided; "
                    "significant: p < 0.05.");
  s.tables.push_back(std::move(t));

  // Plot 1: best TR vs IR, one line per noise sigma, one plot per other facet combination.
  std::size_t skipped = 0;
  const bool has_ir = contains(facets, kInferBitsAxis);
  const std::vector<std::string> plot_facets = without(facets, {kInferBitsAxis, kNoiseAxis});
  if (has_ir) {
    FacetMap<std::map<std::string, Series>> plots(FacetLess{&data.axes});
    for (const BestTrainBits& b : best) {
      if (b.best.empty()) continue;
      const std::string sigma = b.facets.count(kNoiseAxis) ? b.facets.at(kNoiseAxis) : "";
      Series& sr = plots[restrict_to(b.facets, plot_facets)][sigma];
      sr.label = sigma.empty() ? "best TR" : "noise sigma = " + sigma + " LSB";
      sr.x.push_back(value_number(b.facets.at(kInferBitsAxis)));
      sr.y.push_back(value_number(b.best));
    }
    for (auto& [facet, series] : plots) {
      Plot p;
      p.name = "best_train_bits" + (plot_facets.empty() ? "" : "_" + file_stem(facet_label(facet, plot_facets)));
      p.title = "Best training resolution vs inference resolution" + title_suffix(facet, plot_facets);
      p.x_label = "inference ADC resolution IR (bits)";
      p.integer_x = true;
      p.y_label = "best training ADC resolution TR (bits)";
      p.key_position = "top left";
      std::vector<std::pair<double, Series>> ordered;
      for (auto& [sigma, sr] : series) ordered.emplace_back(value_number(sigma), std::move(sr));
      std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (auto& [sigma, sr] : ordered) p.series.push_back(std::move(sr));
      add_plot_capped(s, std::move(p), &skipped);
    }
  }
  // Plot 2: accuracy vs TR, one line per IR, one plot per (noise, other facets).
  {
    const std::vector<std::string> per_plot = without(facets, {kInferBitsAxis});
    FacetMap<std::map<std::string, std::map<double, std::vector<const EvalSetting*>>>> plots(FacetLess{&data.axes});
    for (const EvalSetting& e : data.settings) {
      if (training_mode(e.axes) == TrainingMode::Digital) continue;
      const double tr = value_number(e.axis(kTrainBitsAxis));
      if (std::isnan(tr)) continue;
      plots[restrict_to(e.axes, per_plot)][e.axis(kInferBitsAxis)][tr].push_back(&e);
    }
    for (auto& [facet, by_ir] : plots) {
      Plot p;
      p.name = "accuracy_vs_train_bits" + (per_plot.empty() ? "" : "_" + file_stem(facet_label(facet, per_plot)));
      p.title = "Test accuracy vs training resolution" + title_suffix(facet, per_plot);
      p.x_label = "training ADC resolution TR (bits)";
      p.integer_x = true;
      p.y_label = kAccuracyLabel + ", mean over dies with 95% CI";
      std::vector<std::string> irs;
      for (const auto& [ir, unused] : by_ir) irs.push_back(ir);
      std::sort(irs.begin(), irs.end(), value_less);
      for (const std::string& ir : irs) {
        Series sr;
        sr.label = ir.empty() ? "PIM-QAT" : "IR = " + ir + " bits";
        for (const auto& [tr, settings] : by_ir.at(ir)) {
          const SampleStats st = summarize(pooled_accuracy(settings));
          if (st.n) push_point(sr, tr, st);
        }
        if (!sr.x.empty()) p.series.push_back(std::move(sr));
      }
      if (!p.series.empty()) add_plot_capped(s, std::move(p), &skipped);
    }
  }
  note_skipped_plots(s, skipped);
  return s;
}

// ---------------------------------------------------------------------------------------------
// BN calibration (Fig. A6).

std::optional<Section> bn_calibration_view(const SweepData& data) {
  const auto varied = data.varied_axes();
  if (!contains(varied, kCalibrationAxis)) return std::nullopt;
  const auto values = data.values_of(kCalibrationAxis);
  if (!contains(values, "0") || values.size() < 2) return std::nullopt;
  const std::vector<std::string> facets = without(varied, {kCalibrationAxis});
  const std::vector<std::string> others = without(data.axes, {kCalibrationAxis});

  // Without-calibration setting of every facet combination (all axes but the calibration one).
  FacetMap<const EvalSetting*> without_calibration(FacetLess{&data.axes});
  for (const EvalSetting& e : data.settings)
    if (e.axis(kCalibrationAxis) == "0") without_calibration[restrict_to(e.axes, others)] = &e;

  Section s;
  s.title = "BN calibration (Fig. A6)";
  s.text =
      "Accuracy without BN calibration (eval.bn_calibration = 0) and with it (B batches of training images per "
      "die), on the same dies of the same model: a die of a model is the same simulated chip in both "
      "evaluations, so the gain is the mean over dies of (with - without), and `p` is the two-sided p-value of "
      "the paired t-test over those dies. Facets such as eval.curve, eval.gain_sigma or eval.offset_sigma "
      "separate ideal from non-ideal hardware.";
  Table t;
  t.name = "bn_calibration";
  t.title = "BN calibration";
  for (const std::string& f : facets) t.columns.push_back({f, 0});
  t.columns.insert(t.columns.end(), {{"batches", 0},
                                     {"without_mean", 2},
                                     {"without_ci95", 2},
                                     {"without_min", 2},
                                     {"with_mean", 2},
                                     {"with_ci95", 2},
                                     {"with_min", 2},
                                     {"gain_pp", 2},
                                     {"paired_dies", 0},
                                     {"p", 4},
                                     {"significant", 0}});
  std::vector<std::string> categories;
  std::map<std::string, Series> with_series;
  Series without_series;
  without_series.label = "without BN calibration";
  std::set<std::string> category_seen;
  std::map<std::string, std::size_t> category_index;
  for (const EvalSetting& e : data.settings) {
    const std::string batches = e.axis(kCalibrationAxis);
    if (batches == "0") continue;
    const auto it = without_calibration.find(restrict_to(e.axes, others));
    if (it == without_calibration.end()) continue;
    const EvalSetting& off = *it->second;
    // Pair dies by (replicate, die).
    std::map<std::pair<std::int64_t, std::int64_t>, double> off_by_die;
    for (std::size_t i = 0; i < off.accuracy.size(); ++i) off_by_die[{off.die_replicates[i], off.dies[i]}] = off.accuracy[i];
    std::vector<double> with_values, without_values;
    for (std::size_t i = 0; i < e.accuracy.size(); ++i)
      if (const auto o = off_by_die.find({e.die_replicates[i], e.dies[i]}); o != off_by_die.end()) {
        with_values.push_back(e.accuracy[i]);
        without_values.push_back(o->second);
      }
    const TestResult test = paired_t_test(with_values, without_values);
    std::vector<Cell> row;
    for (const std::string& f : facets) row.push_back(value_cell(e.axis(f)));
    row.push_back(value_cell(batches));
    for (const SampleStats* st : {&off.stats, &e.stats}) {
      row.push_back(number_cell(st->mean));
      row.push_back(number_cell(st->ci_half_width()));
      row.push_back(number_cell(st->min));
    }
    row.push_back(number_cell(with_values.empty() ? kNaN : test.difference));
    row.push_back(count_cell(with_values.size()));
    row.push_back(test.valid ? number_cell(test.p_value) : Cell{});
    row.push_back(!test.valid ? Cell{std::string("n/a (< 2 dies)")}
                              : Cell{std::string(test.p_value < kSignificanceLevel ? "yes" : "no")});
    t.rows.push_back(std::move(row));

    const std::string category = facet_label(e.axes, facets);
    if (category_seen.insert(category).second) {
      category_index[category] = categories.size();
      categories.push_back(category.empty() ? "all" : category);
      push_point(without_series, static_cast<double>(category_index[category]), off.stats);
    }
    Series& sr = with_series[batches];
    sr.label = "with BN calibration (" + batches + " batches)";
    push_point(sr, static_cast<double>(category_index[category]), e.stats);
  }
  if (t.rows.empty()) return std::nullopt;
  t.notes.push_back("gain_pp: mean over paired dies of (with - without), percentage points; p: paired t-test, "
                    "two-sided; significant: p < 0.05; _ci95: half width of the 95% confidence interval.");
  s.tables.push_back(std::move(t));

  // Categorical plots, at most 16 categories each.
  constexpr std::size_t kPerPlot = 16;
  std::size_t skipped = 0;
  for (std::size_t first = 0; first < categories.size(); first += kPerPlot) {
    const std::size_t last = std::min(categories.size(), first + kPerPlot);
    Plot p;
    p.name = "bn_calibration" + (categories.size() > kPerPlot ? "_" + std::to_string(first / kPerPlot + 1) : "");
    p.title = "Accuracy without and with BN calibration (mean over dies, 95% CI)";
    p.x_label = facets.empty() ? "" : "setting (" + format_value_list([&] {
      std::vector<std::string> names;
      for (const auto& f : facets) names.push_back(short_axis_name(f));
      return names;
    }()) + ")";
    p.y_label = kAccuracyLabel;
    p.style = PlotStyle::Points;
    p.x_categories.assign(categories.begin() + static_cast<std::ptrdiff_t>(first),
                          categories.begin() + static_cast<std::ptrdiff_t>(last));
    const auto slice = [&](const Series& from) {
      Series out;
      out.label = from.label;
      for (std::size_t i = 0; i < from.x.size(); ++i)
        if (from.x[i] >= static_cast<double>(first) && from.x[i] < static_cast<double>(last)) {
          out.x.push_back(from.x[i] - static_cast<double>(first));
          out.y.push_back(from.y[i]);
          out.y_low.push_back(from.y_low[i]);
          out.y_high.push_back(from.y_high[i]);
        }
      return out;
    };
    p.series.push_back(slice(without_series));
    for (const auto& [batches, sr] : with_series) p.series.push_back(slice(sr));
    add_plot_capped(s, std::move(p), &skipped);
  }
  note_skipped_plots(s, skipped);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Learning curves (Fig. A5).

std::optional<Section> learning_curves_view(const SweepData& data) {
  std::vector<const TrainedModel*> models;
  for (const TrainedModel& m : data.models)
    if (!m.curve.empty()) models.push_back(&m);
  if (models.empty()) return std::nullopt;
  // Axes that tell the models apart.
  std::vector<std::string> varied;
  for (const std::string& a : data.train_axes) {
    std::set<std::string> values;
    for (const TrainedModel& m : data.models)
      if (const auto it = m.axes.find(a); it != m.axes.end()) values.insert(it->second);
    if (values.size() >= 2) varied.push_back(a);
  }
  const bool with_replicate = data.replicates > 1;
  const auto label_of = [&](const TrainedModel& m) {
    std::string label = facet_label(m.axes, varied);
    if (with_replicate) label += (label.empty() ? "" : ", ") + std::string("replicate ") + std::to_string(m.replicate);
    return label.empty() ? std::string("model ") + m.train_id.substr(0, 8) : label;
  };

  Section s;
  s.title = "Learning curves (Fig. A5)";
  s.text =
      "Test accuracy and training loss after every epoch of every trained model (the per-epoch test pass of "
      "training, with the model's own training-time forward pass: PIM-QAT models with the ideal PIM "
      "quantizer at TR, digital models digitally). Compare the rescaling modes (pim.rescale) here.";
  Table t;
  t.name = "learning_curves";
  t.title = "Training runs";
  for (const std::string& a : varied) t.columns.push_back({a, 0});
  if (with_replicate) t.columns.push_back({"replicate", 0});
  t.columns.insert(t.columns.end(), {{"train_id", 0},
                                     {"status", 0},
                                     {"epochs", 0},
                                     {"final_test_accuracy", 2},
                                     {"best_test_accuracy", 2},
                                     {"best_epoch", 0},
                                     {"final_train_loss", 4}});
  for (const TrainedModel* m : models) {
    std::vector<Cell> row;
    for (const std::string& a : varied) row.push_back(value_cell(m->axes.count(a) ? m->axes.at(a) : ""));
    if (with_replicate) row.push_back(static_cast<std::int64_t>(m->replicate));
    row.push_back(m->train_id);
    row.push_back(m->status);
    row.push_back(count_cell(m->curve.size()));
    row.push_back(number_cell(m->final_test_accuracy()));
    const auto best = std::max_element(m->curve.begin(), m->curve.end(), [](const EpochPoint& a, const EpochPoint& b) {
      return a.test_accuracy < b.test_accuracy;
    });
    row.push_back(number_cell(best->test_accuracy));
    row.push_back(best->epoch);
    row.push_back(number_cell(m->curve.back().train_loss));
    t.rows.push_back(std::move(row));
  }
  s.tables.push_back(std::move(t));

  // Per-epoch data as a long table too.
  Table long_table;
  long_table.name = "learning_curves_epochs";
  long_table.title = "Per-epoch values";
  long_table.detail = true;
  long_table.columns = {{"train_id", 0}, {"label", 0}, {"epoch", 0}, {"lr", 6}, {"train_loss", 4},
                        {"train_accuracy", 2}, {"test_loss", 4}, {"test_accuracy", 2}};
  for (const TrainedModel* m : models)
    for (const EpochPoint& p : m->curve)
      long_table.rows.push_back({m->train_id, label_of(*m), p.epoch, number_cell(p.lr), number_cell(p.train_loss),
                                 number_cell(p.train_accuracy), number_cell(p.test_loss), number_cell(p.test_accuracy)});
  s.tables.push_back(std::move(long_table));

  std::size_t skipped = 0;
  const std::size_t chunks = (models.size() + kMaxSeriesPerPlot - 1) / kMaxSeriesPerPlot;
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::string suffix = chunks > 1 ? "_" + std::to_string(c + 1) : "";
    const std::string part = chunks > 1 ? " (" + std::to_string(c + 1) + " of " + std::to_string(chunks) + ")" : "";
    Plot acc, loss;
    acc.name = "learning_curves_accuracy" + suffix;
    acc.title = "Test accuracy during training" + part;
    acc.x_label = "epoch";
    acc.integer_x = true;
    acc.y_label = kAccuracyLabel;
    loss.name = "learning_curves_loss" + suffix;
    loss.title = "Training loss during training" + part;
    loss.x_label = "epoch";
    loss.integer_x = true;
    loss.y_label = "training loss (cross-entropy, nats)";
    loss.key_position = "top right";
    for (std::size_t i = c * kMaxSeriesPerPlot; i < std::min(models.size(), (c + 1) * kMaxSeriesPerPlot); ++i) {
      Series a, l;
      a.label = l.label = label_of(*models[i]);
      for (const EpochPoint& p : models[i]->curve) {
        a.x.push_back(static_cast<double>(p.epoch));
        a.y.push_back(p.test_accuracy);
        l.x.push_back(static_cast<double>(p.epoch));
        l.y.push_back(p.train_loss);
      }
      acc.series.push_back(std::move(a));
      loss.series.push_back(std::move(l));
    }
    add_plot_capped(s, std::move(acc), &skipped);
    add_plot_capped(s, std::move(loss), &skipped);
  }
  note_skipped_plots(s, skipped);
  return s;
}

// ---------------------------------------------------------------------------------------------

Report sweep_report(const ResultsFile& file, const SweepData& data) {
  Report r;
  r.title = "pimqat analysis";
  r.summary.push_back("results: " + file.path + " (format_version " + std::to_string(file.format_version) + ")");
  r.summary.push_back("tasks: " + std::to_string(file.tasks_done) + " of " + std::to_string(file.tasks_total) + " done" +
                      (file.tasks_failed ? ", " + std::to_string(file.tasks_failed) + " failed" : ""));
  r.sections.push_back(overview_section(file, data));
  std::vector<std::string> recognized;
  for (auto view : {&scheme_resolution_view, &best_train_bits_view, &bn_calibration_view, &learning_curves_view})
    if (auto section = view(data)) {
      recognized.push_back(section->title);
      r.sections.push_back(std::move(*section));
    }
  r.sections.push_back(settings_section(data));
  r.summary.push_back("views: " + (recognized.empty() ? std::string("generic table only (no paper view applies to the "
                                                                    "axes this sweep varied)")
                                                      : format_value_list(recognized)));
  std::size_t partial = 0, pending = 0, failed = 0;
  for (const EvalSetting& e : data.settings) {
    if (e.accuracy.empty()) ++pending;
    else if (e.partial()) ++partial;
    failed += static_cast<std::size_t>(e.failed);
  }
  if (partial || pending)
    r.warnings.push_back("partial sweep: " + plural(partial, "setting") + " with fewer dies than planned and " +
                         plural(pending, "setting") + " with none yet; statistics use the dies finished so far");
  if (failed) r.warnings.push_back(plural(failed, "die evaluation") + " failed or skipped (see `pimqat status`)");
  if (file.tasks_total == 0) r.warnings.push_back("the results file lists no tasks");
  return r;
}

}  // namespace pimqat::analysis
