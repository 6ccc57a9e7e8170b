#include "analysis/results_file.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>

#include "core/error.h"
#include "pimqat/version.h"

namespace pimqat::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The columns of /tasks that are not axes (runner/results.cpp); any other column is an axis.
const std::set<std::string> kTaskFixedColumns = {"id",         "kind",    "status",    "attempts", "seconds",
                                                 "host",       "depends_on", "replicate", "die",   "message"};
// Sections of the configuration (docs/config.md); an axis with one of these names sets a whole section.
const std::set<std::string> kSections = {"dataset", "model", "train", "pim", "eval"};
constexpr const char* kBaseValue = "(base)";

bool parse_number(const std::string& text, double* value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text.front()))) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || std::isnan(v)) return false;
  *value = v;
  return true;
}

// The value text of one cell: numbers in their shortest form, NaN (a row without the axis) as "".
std::string cell_text(const H5Table& table, const std::string& column, std::size_t row) {
  const H5Column& c = table.column(column);
  if (const auto* d = std::get_if<std::vector<double>>(&c)) return std::isnan((*d)[row]) ? "" : number_text((*d)[row]);
  if (const auto* i = std::get_if<std::vector<std::int64_t>>(&c)) return std::to_string((*i)[row]);
  const std::string& s = std::get<std::vector<std::string>>(c)[row];
  double v = 0;
  return parse_number(s, &v) ? number_text(v) : s;
}

double cell_number(const H5Table& table, const std::string& column, std::size_t row) {
  const H5Column& c = table.column(column);
  if (const auto* d = std::get_if<std::vector<double>>(&c)) return (*d)[row];
  if (const auto* i = std::get_if<std::vector<std::int64_t>>(&c)) return static_cast<double>((*i)[row]);
  double v = kNaN;
  return parse_number(std::get<std::vector<std::string>>(c)[row], &v) ? v : kNaN;
}

std::int64_t cell_int(const H5Table& table, const std::string& column, std::size_t row) {
  const double v = cell_number(table, column, row);
  return std::isnan(v) ? -1 : static_cast<std::int64_t>(v);
}

// Splits "{a: 1, b: [30, 60]}" into key -> value text; nullopt-like `ok = false` for other text.
std::map<std::string, std::string> parse_section_value(const std::string& text, bool* ok) {
  std::map<std::string, std::string> items;
  *ok = text.size() >= 2 && text.front() == '{' && text.back() == '}';
  if (!*ok) return items;
  const std::string body = text.substr(1, text.size() - 2);
  std::vector<std::string> parts;
  int depth = 0;
  std::string current;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char ch = body[i];
    if (ch == '[' || ch == '{') ++depth;
    if (ch == ']' || ch == '}') --depth;
    if (ch == ',' && depth == 0) {
      parts.push_back(current);
      current.clear();
      continue;
    }
    current += ch;
  }
  if (!current.empty()) parts.push_back(current);
  for (std::string part : parts) {
    const auto first = part.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    part = part.substr(first);
    const auto colon = part.find(": ");
    if (colon == std::string::npos) {
      *ok = false;
      return {};
    }
    double v = 0;
    std::string value = part.substr(colon + 2);
    items[part.substr(0, colon)] = parse_number(value, &v) ? number_text(v) : value;
  }
  return items;
}

// Replaces whole-section axes by one axis per key, over all rows together (so that every row has
// every key: "(base)" where its value does not set it).
void expand_sections(std::vector<AxisValues*>& rows) {
  std::map<std::string, std::set<std::string>> keys;  // section -> keys seen
  for (const AxisValues* row : rows)
    for (const auto& [name, value] : *row) {
      if (!kSections.count(name)) continue;
      bool ok = false;
      for (const auto& [k, v] : parse_section_value(value, &ok)) keys[name].insert(k);
      if (name == "pim") keys[name].insert("enabled");
      else keys[name];
    }
  for (AxisValues* row : rows) {
    for (const auto& [section, section_keys] : keys) {
      const auto it = row->find(section);
      if (it == row->end()) continue;
      const std::string value = it->second;
      row->erase(it);
      bool ok = false;
      const auto items = parse_section_value(value, &ok);
      for (const std::string& k : section_keys) {
        const std::string name = section + "." + k;
        if (value.empty()) (*row)[name] = "";
        else if (value == "null") (*row)[name] = section == "pim" && k == "enabled" ? "false" : "-";
        else if (!ok) (*row)[name] = value;  // "-" (does not apply) or unexpected text: kept as is
        else if (const auto item = items.find(k); item != items.end()) (*row)[name] = item->second;
        else (*row)[name] = section == "pim" && k == "enabled" ? "true" : kBaseValue;
      }
    }
  }
}

std::string axis_name_of_task_column(const std::string& column) {
  return column.rfind("axis.", 0) == 0 ? column.substr(5) : column;
}

struct SettingKey {
  AxisValues axes;
  int replicate;
  bool operator<(const SettingKey& o) const {
    if (replicate != o.replicate) return replicate < o.replicate;
    return axes < o.axes;
  }
};

bool axes_less(const AxisValues& a, const AxisValues& b, const std::vector<std::string>& order) {
  for (const std::string& name : order) {
    const auto ia = a.find(name), ib = b.find(name);
    const std::string va = ia == a.end() ? "" : ia->second, vb = ib == b.end() ? "" : ib->second;
    if (va == vb) continue;
    return value_less(va, vb);
  }
  return false;
}

}  // namespace

const std::vector<RequiredColumns>& required_columns() {
  static const std::vector<RequiredColumns> required = {
      {"tasks", {"id", "kind", "status", "depends_on", "replicate", "die"}},
      {"eval", {"train_id", "replicate", "die", "accuracy"}},
      {"train", {"train_id", "replicate"}},
      {"curves", {"train_id", "epoch", "test_accuracy"}},
  };
  return required;
}

std::string number_text(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

double value_number(const std::string& value) {
  double v = kNaN;
  return parse_number(value, &v) ? v : kNaN;
}

bool value_less(const std::string& a, const std::string& b) {
  const double na = value_number(a), nb = value_number(b);
  const bool a_number = !std::isnan(na), b_number = !std::isnan(nb);
  if (a_number && b_number) return na < nb || (na == nb && a < b);
  if (a_number != b_number) return a_number;
  return a < b;
}

std::vector<std::string> order_axes(std::vector<std::string> axes) {
  static const std::vector<std::string> kPreferred = {
      "model.arch",        "model.weight_bits", "model.act_bits",    "pim.enabled",      "pim.scheme",
      "pim.rows",          "pim.rescale",       "pim.adc_clip",      "pim.train_bits",   "eval.infer_bits",
      "eval.noise_sigma",  "eval.curve",        "eval.curve_strength", "eval.gain_sigma", "eval.offset_sigma",
      "eval.bn_calibration"};
  const auto rank = [](const std::string& name) {
    const auto it = std::find(kPreferred.begin(), kPreferred.end(), name);
    return it == kPreferred.end() ? kPreferred.size() : static_cast<std::size_t>(it - kPreferred.begin());
  };
  std::sort(axes.begin(), axes.end(), [&](const std::string& a, const std::string& b) {
    const std::size_t ra = rank(a), rb = rank(b);
    return ra != rb ? ra < rb : a < b;
  });
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  return axes;
}

ResultsFile read_results_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error("no results file '" + path + "'");
  H5File file = H5File::open(path, H5Access::ReadOnly);
  const std::string reads = "this pimqat (" + std::string(kVersion) + ") reads results files of format_version " +
                            std::to_string(kFileFormatVersion);
  if (!file.has_attr("format_version"))
    throw Error("'" + path + "': not a pimqat results file (no root attribute 'format_version'); " + reads);
  ResultsFile r;
  r.path = path;
  r.format_version = file.attr_int("format_version");
  const auto text_attr = [&](const char* name) { return file.has_attr(name) ? file.attr_string(name) : std::string(); };
  const auto int_attr = [&](const char* name) { return file.has_attr(name) ? file.attr_int(name) : std::int64_t{0}; };
  r.program_version = text_attr("program_version");
  if (r.format_version != kFileFormatVersion)
    throw Error("'" + path + "': results format_version " + std::to_string(r.format_version) +
                " is not supported: " + reads +
                (r.program_version.empty() ? std::string() : " (the file was written by pimqat " + r.program_version + ")") +
                "; analyze it with the pimqat version that wrote it");
  r.git_commit = text_attr("git_commit");
  r.created = text_attr("created");
  r.sweep_text = text_attr("sweep_text");
  r.tasks_total = int_attr("tasks_total");
  r.tasks_done = int_attr("tasks_done");
  r.tasks_failed = int_attr("tasks_failed");

  std::vector<std::string> problems;
  std::string expected;
  for (const RequiredColumns& req : required_columns()) {
    expected += std::string(expected.empty() ? "" : "; ") + "/" + req.table + ":";
    for (const char* c : req.columns) expected += std::string(" ") + c;
    H5Table* target = std::string(req.table) == "tasks"  ? &r.tasks
                      : std::string(req.table) == "eval" ? &r.eval
                      : std::string(req.table) == "train" ? &r.train
                                                          : &r.curves;
    if (!file.has_group(req.table)) {
      problems.push_back("table /" + std::string(req.table) + " is missing");
      continue;
    }
    *target = read_table(file, req.table);
    std::string missing;
    for (const char* c : req.columns)
      if (!target->has(c)) missing += std::string(missing.empty() ? "" : ", ") + c;
    if (!missing.empty()) problems.push_back("/" + std::string(req.table) + " lacks column(s) " + missing);
  }
  if (!problems.empty()) {
    std::string message = "'" + path + "': not a complete results file of format_version " +
                          std::to_string(r.format_version) + ": ";
    for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
    throw Error(message + ". " + reads + " with at least these columns: " + expected);
  }
  return r;
}

const std::string& EvalSetting::axis(const std::string& name) const {
  static const std::string kEmpty;
  const auto it = axes.find(name);
  return it == axes.end() ? kEmpty : it->second;
}

double TrainedModel::final_test_accuracy() const { return curve.empty() ? kNaN : curve.back().test_accuracy; }

std::vector<std::string> SweepData::values_of(const std::string& axis) const {
  std::set<std::string> values;
  for (const EvalSetting& s : settings)
    if (const auto it = s.axes.find(axis); it != s.axes.end()) values.insert(it->second);
  std::vector<std::string> out(values.begin(), values.end());
  std::sort(out.begin(), out.end(), value_less);
  return out;
}

std::vector<std::string> SweepData::varied_axes() const {
  std::vector<std::string> out;
  for (const std::string& axis : axes)
    if (values_of(axis).size() >= 2) out.push_back(axis);
  return out;
}

SweepData collect_sweep(const ResultsFile& file) {
  const H5Table& tasks = file.tasks;
  const H5Table& eval = file.eval;
  std::vector<std::string> task_axis_columns, axis_names;
  for (const std::string& c : tasks.names())
    if (!kTaskFixedColumns.count(c)) {
      task_axis_columns.push_back(c);
      axis_names.push_back(axis_name_of_task_column(c));
    }
  // The /eval column of each axis (prefixed "axis." where its name collides with a fixed column).
  std::vector<std::string> eval_axis_columns;
  for (const std::string& name : axis_names)
    eval_axis_columns.push_back(eval.has("axis." + name) ? "axis." + name : eval.has(name) ? name : "");

  const std::size_t task_rows = tasks.rows(), eval_rows = eval.rows();
  std::vector<AxisValues> task_axes(task_rows), eval_axes(eval_rows);
  for (std::size_t r = 0; r < task_rows; ++r)
    for (std::size_t a = 0; a < axis_names.size(); ++a) {
      const std::string v = cell_text(tasks, task_axis_columns[a], r);
      if (!v.empty()) task_axes[r][axis_names[a]] = v;
    }
  for (std::size_t r = 0; r < eval_rows; ++r)
    for (std::size_t a = 0; a < axis_names.size(); ++a) {
      if (eval_axis_columns[a].empty()) continue;
      const std::string v = cell_text(eval, eval_axis_columns[a], r);
      if (!v.empty()) eval_axes[r][axis_names[a]] = v;
    }
  {
    std::vector<AxisValues*> all;
    for (auto& a : task_axes) all.push_back(&a);
    for (auto& a : eval_axes) all.push_back(&a);
    expand_sections(all);
  }

  SweepData data;
  const auto& kind = tasks.strings("kind");
  const auto& status = tasks.strings("status");
  const auto& id = tasks.strings("id");
  const auto& depends_on = tasks.strings("depends_on");
  std::set<std::int64_t> replicate_numbers;
  std::set<std::string> names, train_names;
  for (std::size_t r = 0; r < task_rows; ++r) {
    replicate_numbers.insert(cell_int(tasks, "replicate", r));
    for (const auto& [k, v] : task_axes[r]) {
      names.insert(k);
      if (kind[r] == "train") train_names.insert(k);
    }
  }
  for (std::size_t r = 0; r < eval_rows; ++r)
    for (const auto& [k, v] : eval_axes[r]) names.insert(k);
  data.axes = order_axes({names.begin(), names.end()});
  data.train_axes = order_axes({train_names.begin(), train_names.end()});
  data.replicates = std::max<int>(1, static_cast<int>(replicate_numbers.size()));

  // Settings: pooled (replicate -1) and, with several replicates, per replicate.
  const bool split = data.replicates > 1;
  std::map<SettingKey, EvalSetting> pooled, per_replicate;
  const auto add_task = [&](std::map<SettingKey, EvalSetting>& into, const SettingKey& key, std::size_t r) {
    EvalSetting& s = into[key];
    s.axes = key.axes;
    s.replicate = key.replicate;
    ++s.expected;
    if (status[r] == "failed" || status[r] == "skipped") ++s.failed;
    if (std::find(s.train_ids.begin(), s.train_ids.end(), depends_on[r]) == s.train_ids.end())
      s.train_ids.push_back(depends_on[r]);
  };
  for (std::size_t r = 0; r < task_rows; ++r) {
    if (kind[r] != "eval") continue;
    ++data.eval_tasks;
    add_task(pooled, {task_axes[r], -1}, r);
    if (split) add_task(per_replicate, {task_axes[r], static_cast<int>(cell_int(tasks, "replicate", r))}, r);
  }
  const auto& train_id = eval.strings("train_id");
  const auto add_row = [&](std::map<SettingKey, EvalSetting>& into, const SettingKey& key, std::size_t r) {
    EvalSetting& s = into[key];
    if (s.axes.empty()) {  // a row of no listed task: its own setting
      s.axes = key.axes;
      s.replicate = key.replicate;
    }
    if (std::find(s.train_ids.begin(), s.train_ids.end(), train_id[r]) == s.train_ids.end())
      s.train_ids.push_back(train_id[r]);
    s.dies.push_back(cell_int(eval, "die", r));
    s.die_replicates.push_back(cell_int(eval, "replicate", r));
    s.accuracy.push_back(100.0 * cell_number(eval, "accuracy", r));
  };
  data.eval_rows = static_cast<std::int64_t>(eval_rows);
  for (std::size_t r = 0; r < eval_rows; ++r) {
    add_row(pooled, {eval_axes[r], -1}, r);
    if (split) add_row(per_replicate, {eval_axes[r], static_cast<int>(cell_int(eval, "replicate", r))}, r);
  }
  const auto finish = [&](std::map<SettingKey, EvalSetting>& from, std::vector<EvalSetting>& to) {
    for (auto& [key, s] : from) {
      s.expected = std::max<std::int64_t>(s.expected, static_cast<std::int64_t>(s.accuracy.size()));
      s.stats = summarize(s.accuracy);
      to.push_back(std::move(s));
    }
    std::stable_sort(to.begin(), to.end(), [&](const EvalSetting& a, const EvalSetting& b) {
      if (axes_less(a.axes, b.axes, data.axes)) return true;
      if (axes_less(b.axes, a.axes, data.axes)) return false;
      return a.replicate < b.replicate;
    });
  };
  finish(pooled, data.settings);
  finish(per_replicate, data.per_replicate);

  // Trained models and their curves.
  std::map<std::string, std::size_t> model_index;
  for (std::size_t r = 0; r < task_rows; ++r) {
    if (kind[r] != "train") continue;
    TrainedModel m;
    m.train_id = id[r];
    m.replicate = static_cast<int>(cell_int(tasks, "replicate", r));
    m.status = status[r];
    m.axes = task_axes[r];
    model_index[m.train_id] = data.models.size();
    data.models.push_back(std::move(m));
  }
  const H5Table& curves = file.curves;
  const auto& curve_id = curves.strings("train_id");
  for (std::size_t r = 0; r < curves.rows(); ++r) {
    const auto it = model_index.find(curve_id[r]);
    if (it == model_index.end()) continue;
    EpochPoint p;
    p.epoch = cell_int(curves, "epoch", r);
    const auto optional = [&](const char* column, double scale) {
      return curves.has(column) ? scale * cell_number(curves, column, r) : kNaN;
    };
    p.lr = optional("lr", 1);
    p.train_loss = optional("train_loss", 1);
    p.train_accuracy = optional("train_accuracy", 100);
    p.test_loss = optional("test_loss", 1);
    p.test_accuracy = optional("test_accuracy", 100);
    data.models[it->second].curve.push_back(p);
  }
  for (TrainedModel& m : data.models)
    std::stable_sort(m.curve.begin(), m.curve.end(), [](const EpochPoint& a, const EpochPoint& b) { return a.epoch < b.epoch; });
  std::stable_sort(data.models.begin(), data.models.end(), [&](const TrainedModel& a, const TrainedModel& b) {
    if (axes_less(a.axes, b.axes, data.axes)) return true;
    if (axes_less(b.axes, a.axes, data.axes)) return false;
    return a.replicate < b.replicate;
  });
  return data;
}

}  // namespace pimqat::analysis
