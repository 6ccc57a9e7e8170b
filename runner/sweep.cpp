#include "runner/sweep.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unordered_set>

#include "pim/gaussian.h"
#include "runner/canonical.h"
#include "runner/config_impl.h"

namespace pimqat::runner {

namespace fs = std::filesystem;
using internal::ConfigDraft;
using internal::Origin;
using internal::location;

namespace {

// Limits that catch a runaway grid before it eats the machine.
constexpr std::size_t kMaxGridPoints = 1000000;
constexpr std::size_t kMaxTasks = 10000000;
constexpr std::size_t kMaxRangeValues = 100000;
constexpr int kMaxIncludeDepth = 16;

const std::vector<std::string> kTopLevelKeys = {"name", "description", "seed",      "task", "include",
                                                "replicates", "base", "synthetic", "grid", "zip"};

// ---- The synthetic task block: {duration, failure_probability, result, always_fail, dependents} ----

struct SyntheticKey {
  const char* name;
  const char* valid;
  const char* doc;
};
const std::vector<SyntheticKey> kSyntheticKeys = {
    {"duration", ">= 0", "seconds the task sleeps"},
    {"failure_probability", "[0, 1]", "probability that an attempt throws (keyed RNG: task id, attempt)"},
    {"result", "any number", "reported as the metric `value`"},
    {"always_fail", "true | false", "every attempt throws"},
    {"dependents", "0..1000", "tasks that depend on this one (to test ordering)"},
};

std::vector<std::string> synthetic_paths() {
  std::vector<std::string> out;
  for (const auto& k : kSyntheticKeys) out.push_back(std::string("synthetic.") + k.name);
  return out;
}

// Reads one synthetic key into `spec`/`dependents`; returns its canonical text or nullopt + error.
std::optional<std::string> read_synthetic(const std::string& name, const YAML::Node& node, SyntheticSpec& spec,
                                          int& dependents, std::string& error) {
  if (name == "always_fail") {
    const auto v = internal::read_bool(node, error);
    if (!v) return std::nullopt;
    spec.always_fail = *v;
    return canonical_bool(*v);
  }
  if (name == "dependents") {
    const auto v = internal::read_integer(node, error);
    if (!v) return std::nullopt;
    if (*v < 0 || *v > 1000) {
      error = "must be 0..1000, got " + std::to_string(*v);
      return std::nullopt;
    }
    dependents = static_cast<int>(*v);
    return canonical_integer(*v);
  }
  const auto v = internal::read_float(node, error);
  if (!v) return std::nullopt;
  if (name == "duration") {
    if (*v < 0) {
      error = "must be >= 0, got " + canonical_float(*v);
      return std::nullopt;
    }
    spec.duration_seconds = *v;
  } else if (name == "failure_probability") {
    if (*v < 0 || *v > 1) {
      error = "must be [0, 1], got " + canonical_float(*v);
      return std::nullopt;
    }
    spec.failure_probability = *v;
  } else {
    spec.result = *v;
  }
  return canonical_float(*v);
}

// The thread count is an execution setting (it may change between restarts of a sweep, e.g. on
// another cluster), not an experiment parameter: no identity includes it.
bool execution_setting(const std::string& key) { return key == "train.threads"; }

// ---- Drafts: what the files say, before checking and expansion ----

struct Located {
  YAML::Node node;
  Origin origin;
  std::string where;  // location of the value
};

struct AxisDraft {
  std::string path;
  YAML::Node spec;  // a list of values or a range mapping
  Origin origin;
  std::string where;        // location of the axis key
  std::string value_where;  // location of the spec
};

struct ZipDraft {
  std::vector<AxisDraft> axes;
  std::string where;
};

struct Draft {
  std::map<std::string, Located> scalars;  // name, description, seed, task, replicates
  std::vector<Located> base_layers;        // included files' first
  std::vector<Located> synthetic_layers;
  std::vector<AxisDraft> grid;             // merged by path, in order of first appearance
  std::optional<std::vector<ZipDraft>> zip;  // the last file's zip list wins
  std::vector<SweepFile> files;
  std::vector<std::string> include_stack;    // absolute paths being read (cycle detection)
  std::vector<std::string> include_names;    // the same files as named in messages
  std::vector<ConfigProblem> problems;

  void problem(const std::string& where, const std::string& key, const std::string& message) {
    problems.push_back({where, key, message});
  }
};

// Regular files of at most 16 MiB only (config_impl.h read_config_file): `include: /dev/zero` read
// until memory ran out, a directory read as an empty file.
std::optional<std::string> read_file(const std::string& path, std::string& error) {
  return internal::read_config_file(path, error);
}

void duplicate_keys(const YAML::Node& map, const Origin& origin, const std::string& prefix, Draft& draft) {
  std::map<std::string, std::string> seen;
  for (const auto& item : map) {
    if (!item.first.IsScalar()) continue;
    const std::string where = location(origin, item.first.Mark());
    const auto [it, inserted] = seen.emplace(item.first.Scalar(), where);
    if (!inserted) draft.problem(where, prefix + item.first.Scalar(), "key given twice (first at " + it->second + ")");
  }
}

std::vector<AxisDraft> read_axes(const YAML::Node& map, const Origin& origin, const std::string& what, Draft& draft) {
  std::vector<AxisDraft> axes;
  duplicate_keys(map, origin, "", draft);
  for (const auto& item : map) {
    if (!item.first.IsScalar()) {
      draft.problem(location(origin, item.first.Mark()), what, "an axis is named by a dotted parameter path, got " +
                                                                   internal::describe_node(item.first));
      continue;
    }
    axes.push_back({item.first.Scalar(), item.second, origin, location(origin, item.first.Mark()),
                    internal::value_location(origin, item.first, item.second)});
  }
  return axes;
}

void absorb(const std::string& text, const std::string& source, const std::string& directory, Draft& draft);

void absorb_include(const YAML::Node& value, const Origin& origin, const std::string& where, const std::string& directory,
                    Draft& draft) {
  std::vector<std::pair<YAML::Node, std::string>> names;
  if (value.IsScalar()) {
    names.emplace_back(value, where);
  } else if (value.IsSequence()) {
    for (const auto& element : value) names.emplace_back(element, location(origin, element.Mark()));
  } else {
    draft.problem(where, "include", "expected a file name or a list of file names, got " + internal::describe_node(value));
    return;
  }
  for (const auto& [node, node_where] : names) {
    if (!node.IsScalar() || node.Scalar().empty()) {
      draft.problem(node_where, "include", "expected a file name, got " + internal::describe_node(node));
      continue;
    }
    const fs::path given(node.Scalar());
    const std::string path = (given.is_absolute() ? given : fs::path(directory) / given).lexically_normal().string();
    std::error_code ec;
    const fs::path absolute = fs::weakly_canonical(fs::absolute(path, ec), ec);
    const auto cycle = std::find(draft.include_stack.begin(), draft.include_stack.end(), absolute.string());
    if (cycle != draft.include_stack.end()) {
      std::string chain;
      for (auto i = static_cast<std::size_t>(cycle - draft.include_stack.begin()); i < draft.include_names.size(); ++i)
        chain += draft.include_names[i] + " -> ";
      draft.problem(node_where, "include", "include cycle: " + chain + path);
      continue;
    }
    if (draft.include_stack.size() >= static_cast<std::size_t>(kMaxIncludeDepth)) {
      draft.problem(node_where, "include", "includes nested deeper than " + std::to_string(kMaxIncludeDepth) + " files");
      continue;
    }
    std::string error;
    const auto text = read_file(path, error);
    if (!text) {
      draft.problem(node_where, "include", error + " (paths are relative to the including file's directory)");
      continue;
    }
    draft.include_stack.push_back(absolute.string());
    draft.include_names.push_back(path);
    absorb(*text, path, fs::path(path).parent_path().string(), draft);
    draft.include_stack.pop_back();
    draft.include_names.pop_back();
  }
}

void absorb(const std::string& text, const std::string& source, const std::string& directory, Draft& draft) {
  if (std::none_of(draft.files.begin(), draft.files.end(), [&](const SweepFile& f) { return f.path == source; }))
    draft.files.push_back({source, text});
  const Origin origin{source, true};
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    draft.problem(location(origin, e.mark), "", "YAML syntax error: " + e.msg);
    return;
  }
  if (!root.IsDefined() || root.IsNull()) return;
  if (!root.IsMap()) {
    draft.problem(location(origin, root.Mark()), "", "a sweep is a mapping (name, seed, base, grid, ...), got " +
                                                         internal::describe_node(root));
    return;
  }
  duplicate_keys(root, origin, "", draft);
  // Included files first: this file's keys are layered over theirs, wherever `include:` is written.
  for (const auto& item : root) {
    if (item.first.IsScalar() && item.first.Scalar() == "include")
      absorb_include(item.second, origin, internal::value_location(origin, item.first, item.second), directory, draft);
  }
  for (const auto& item : root) {
    const std::string key = item.first.IsScalar() ? item.first.Scalar() : "";
    const std::string key_where = location(origin, item.first.Mark());
    const std::string where = internal::value_location(origin, item.first, item.second);
    const Located located{item.second, origin, where};
    if (key == "include") continue;
    if (key == "name" || key == "description" || key == "seed" || key == "task" || key == "replicates") {
      draft.scalars[key] = located;
    } else if (key == "base") {
      draft.base_layers.push_back(located);
    } else if (key == "synthetic") {
      draft.synthetic_layers.push_back(located);
    } else if (key == "grid") {
      if (item.second.IsNull()) continue;
      if (!item.second.IsMap()) {
        draft.problem(where, "grid", "expected a mapping of axes (path: [values]), got " + internal::describe_node(item.second));
        continue;
      }
      for (auto& axis : read_axes(item.second, origin, "grid", draft)) {
        const auto same = std::find_if(draft.grid.begin(), draft.grid.end(), [&](const AxisDraft& a) { return a.path == axis.path; });
        if (same != draft.grid.end()) *same = axis;  // a later file redefines the axis
        else draft.grid.push_back(axis);
      }
    } else if (key == "zip") {
      std::vector<ZipDraft> groups;
      if (!item.second.IsNull() && !item.second.IsSequence()) {
        draft.problem(where, "zip", "expected a list of groups, each a mapping of axes that vary together, got " +
                                        internal::describe_node(item.second));
        continue;
      }
      for (const auto& group : item.second) {
        const std::string group_where = location(origin, group.Mark());
        if (!group.IsMap() || group.size() == 0) {
          draft.problem(group_where, "zip", "a zip group is a non-empty mapping of axes (path: [values]) that vary together, got " +
                                                internal::describe_node(group));
          continue;
        }
        groups.push_back({read_axes(group, origin, "zip", draft), group_where});
      }
      draft.zip = std::move(groups);
    } else {
      std::string message = "unknown key `" + key + "`";
      const std::string near = closest_spelling(key, kTopLevelKeys);
      if (is_config_section(key)) {
        message += "; configuration sections go under `base:` (base: {" + key + ": {...}})";
      } else if (!near.empty()) {
        message += "; did you mean `" + near + "`?";
      } else {
        message += "; valid keys: name, description, seed, task, include, replicates, base, synthetic, grid, zip";
      }
      draft.problem(key_where, key, message);
    }
  }
}

// ---- Axes, checked ----

struct AxisValue {
  YAML::Node node;
  Origin origin;
  std::string where;
  std::string label;
};

struct Axis {
  SweepAxis info;
  std::vector<AxisValue> values;
};

// Text of one axis value for tables: normalized numbers; a section value as "{key: value, ...}".
std::string label_of(const std::string& path, const YAML::Node& node) {
  std::string error;
  if (find_config_key(path)) {
    if (const auto text = internal::text_value_of(path, node, error)) return *text;
  } else if (path.rfind("synthetic.", 0) == 0) {
    SyntheticSpec spec;
    int dependents = 0;
    if (const auto text = read_synthetic(path.substr(10), node, spec, dependents, error)) return *text;
  } else if (node.IsMap()) {
    std::map<std::string, std::string> items;
    for (const auto& item : node) {
      const std::string key = item.first.IsScalar() ? item.first.Scalar() : "?";
      std::string item_error;
      const auto text = internal::text_value_of(path + "." + key, item.second, item_error);
      items[key] = text ? *text : (item.second.IsScalar() ? item.second.Scalar() : internal::describe_node(item.second));
    }
    std::string out = "{";
    for (const auto& [key, text] : items) out += (out.size() > 1 ? ", " : "") + key + ": " + text;
    return out + "}";
  }
  if (node.IsNull()) return "null";
  if (node.IsScalar()) return node.Scalar();
  YAML::Emitter emitter;
  emitter << YAML::Flow << node;
  return emitter.c_str();
}

// A number of a range as text: rounded to 12 significant digits, so 0 + 3 * 0.1 reads 0.3.
std::string range_number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.12g", value);
  double rounded = 0;
  std::sscanf(buffer, "%lf", &rounded);
  return internal::float_text(rounded);
}

bool integer_text(const YAML::Node& node) {
  if (!node.IsScalar()) return false;
  std::string text = node.Scalar();
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) text.erase(0, 1);
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

// The values of a `{from, to, step}` or `{from, to, count}` range.
std::optional<std::vector<std::string>> expand_range(const AxisDraft& axis, Draft& draft) {
  static const std::vector<std::string> kRangeKeys = {"from", "to", "step", "count"};
  const YAML::Node& spec = axis.spec;
  bool ok = true;
  for (const auto& item : spec) {
    const std::string key = item.first.IsScalar() ? item.first.Scalar() : "";
    if (std::find(kRangeKeys.begin(), kRangeKeys.end(), key) == kRangeKeys.end()) {
      const std::string near = closest_spelling(key, kRangeKeys);
      draft.problem(location(axis.origin, item.first.Mark()), axis.path,
                    "unknown range key `" + key + "`" + (near.empty() ? "" : "; did you mean `" + near + "`?") +
                        " (a range is {from: A, to: B, step: S} or {from: A, to: B, count: N})");
      ok = false;
    }
  }
  auto number = [&](const char* key) -> std::optional<double> {
    const YAML::Node node = spec[key];
    if (!node.IsDefined()) return std::nullopt;
    std::string error;
    const auto v = internal::read_float(node, error);
    if (!v) {
      draft.problem(location(axis.origin, node.Mark()), axis.path, std::string("range `") + key + "`: " + error);
      ok = false;
    }
    return v;
  };
  const auto from = number("from"), to = number("to"), step = number("step");
  std::optional<std::int64_t> count;
  if (spec["count"].IsDefined()) {
    std::string error;
    count = internal::read_integer(spec["count"], error);
    if (!count || *count < 1) {
      draft.problem(location(axis.origin, spec["count"].Mark()), axis.path,
                    "range `count` must be an integer >= 1" + (count ? ", got " + std::to_string(*count) : ": " + error));
      ok = false;
    }
  }
  if (!spec["from"].IsDefined() || !spec["to"].IsDefined()) {
    draft.problem(axis.value_where, axis.path, "a range needs `from` and `to` ({from: A, to: B, step: S} or {from: A, to: B, count: N})");
    return std::nullopt;
  }
  if (spec["step"].IsDefined() == spec["count"].IsDefined()) {
    draft.problem(axis.value_where, axis.path, "a range needs exactly one of `step` and `count`");
    return std::nullopt;
  }
  if (!ok || !from || !to) return std::nullopt;
  if (*to < *from) {
    draft.problem(axis.value_where, axis.path, "range `to` (" + range_number(*to) + ") is below `from` (" + range_number(*from) + ")");
    return std::nullopt;
  }
  std::vector<std::string> values;
  if (step) {
    if (!(*step > 0)) {
      draft.problem(location(axis.origin, spec["step"].Mark()), axis.path, "range `step` must be > 0, got " + range_number(*step));
      return std::nullopt;
    }
    const double n_real = std::floor((*to - *from) / *step * (1 + 1e-12) + 1e-9) + 1;
    if (n_real > static_cast<double>(kMaxRangeValues)) {
      draft.problem(axis.value_where, axis.path, "the range has " + range_number(n_real) + " values; at most " +
                                                     std::to_string(kMaxRangeValues));
      return std::nullopt;
    }
    const auto n = static_cast<std::int64_t>(n_real);
    const bool integers = integer_text(spec["from"]) && integer_text(spec["to"]) && integer_text(spec["step"]);
    for (std::int64_t i = 0; i < n; ++i) {
      if (integers) values.push_back(std::to_string(static_cast<std::int64_t>(*from) + i * static_cast<std::int64_t>(*step)));
      else values.push_back(range_number(*from + static_cast<double>(i) * *step));
    }
  } else {
    if (static_cast<std::size_t>(*count) > kMaxRangeValues) {
      draft.problem(axis.value_where, axis.path, "the range has " + std::to_string(*count) + " values; at most " +
                                                     std::to_string(kMaxRangeValues));
      return std::nullopt;
    }
    if (*count == 1 && *from != *to) {
      draft.problem(axis.value_where, axis.path, "a range with count 1 needs from == to");
      return std::nullopt;
    }
    const bool integers = integer_text(spec["from"]) && integer_text(spec["to"]) &&
                          (*count == 1 || static_cast<std::int64_t>(*to - *from) % (*count - 1) == 0);
    for (std::int64_t i = 0; i < *count; ++i) {
      if (*count == 1) {
        values.push_back(integers ? std::to_string(static_cast<std::int64_t>(*from)) : range_number(*from));
      } else if (integers) {
        values.push_back(std::to_string(static_cast<std::int64_t>(*from) + i * static_cast<std::int64_t>(*to - *from) / (*count - 1)));
      } else {
        values.push_back(range_number(*from + (*to - *from) * static_cast<double>(i) / static_cast<double>(*count - 1)));
      }
    }
  }
  return values;
}

// Checks one axis: its path and its values. Returns nullopt (with problems) if it cannot be used.
std::optional<Axis> check_axis(const AxisDraft& axis, SweepKind kind, int zip_group, Draft& draft) {
  const std::string& path = axis.path;
  // Which paths are valid depends on the task kind.
  std::vector<std::string> valid;
  bool path_ok = false;
  if (kind == SweepKind::Synthetic) {
    valid = synthetic_paths();
    path_ok = std::find(valid.begin(), valid.end(), path) != valid.end();
  } else {
    for (const auto& k : config_schema()) valid.push_back(k.key);
    for (const char* section : {"dataset", "model", "train", "pim", "eval"}) valid.push_back(section);
    path_ok = path != "seed" && !execution_setting(path) && (find_config_key(path) || is_config_section(path));
  }
  if (!path_ok) {
    std::string message;
    if (path == "seed") {
      message = "the seed is not an axis: the sweep's `seed:` seeds every task; use `replicates: N` for repeated runs";
    } else if (path == "train.threads") {
      message = "the thread count is an execution setting, not an experiment parameter: set it in `base:` or with "
                "`pimqat sweep --threads N`, not as an axis";
    } else if (kind == SweepKind::TrainEval && path.rfind("synthetic.", 0) == 0) {
      message = "`" + path + "` is an axis of synthetic sweeps only (task: synthetic)";
    } else if (kind == SweepKind::Synthetic && (find_config_key(path) || is_config_section(path))) {
      message = "a synthetic sweep (task: synthetic) has only synthetic.* axes: " + [&] {
        std::string list;
        for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
        return list;
      }();
    } else {
      message = internal::unknown_key_message(path, valid);
      message.replace(0, 11, "unknown parameter path");  // "unknown key" -> "unknown parameter path"
    }
    draft.problem(axis.where, path, message);
    return std::nullopt;
  }
  Axis out;
  out.info.path = path;
  out.info.where = axis.where;
  out.info.zip_group = zip_group;
  out.info.affects_training = !(path == "eval" || path.rfind("eval.", 0) == 0);
  if (axis.spec.IsSequence()) {
    if (axis.spec.size() == 0) {
      draft.problem(axis.value_where, path, "empty axis: give at least one value");
      return std::nullopt;
    }
    for (const auto& element : axis.spec) {
      const bool has_mark = element.IsDefined() && !element.IsNull() && !element.Mark().is_null();
      out.values.push_back({element, axis.origin, has_mark ? location(axis.origin, element.Mark()) : axis.value_where,
                            label_of(path, element)});
    }
  } else if (axis.spec.IsMap()) {
    const auto values = expand_range(axis, draft);
    if (!values) return std::nullopt;
    for (const auto& text : *values) out.values.push_back({YAML::Node(text), axis.origin, axis.value_where, ""});
    for (auto& v : out.values) v.label = label_of(path, v.node);
  } else {
    draft.problem(axis.value_where, path,
                  "an axis needs a list of values such as [4, 7] or a range {from: A, to: B, step: S}, got " +
                      internal::describe_node(axis.spec) + " (a single value belongs in `base:`)");
    return std::nullopt;
  }
  // The same value twice would make the same tasks twice.
  std::map<std::string, std::string> seen;
  for (const auto& value : out.values) {
    std::string error, canonical;
    SyntheticSpec spec;
    int dependents = 0;
    if (find_config_key(path)) {
      const auto c = internal::canonical_value_of(path, value.node, error);
      if (!c) continue;  // reported when the grid point is resolved
      canonical = *c;
    } else if (path.rfind("synthetic.", 0) == 0) {
      const auto c = read_synthetic(path.substr(10), value.node, spec, dependents, error);
      if (!c) continue;
      canonical = *c;
    } else {
      continue;  // section values: duplicates merge in the expansion
    }
    const auto [it, inserted] = seen.emplace(canonical, value.where);
    if (!inserted) {
      draft.problem(value.where, path, "value " + value.label + " appears twice in this axis (first at " + it->second + ")");
    }
  }
  for (const auto& value : out.values) out.info.labels.push_back(value.label);
  return out;
}

// ---- Canonical records of tasks ----

bool ignored_for_training(const ExperimentConfig& config, const std::string& key) {
  // DESIGN.md 5: train tasks are keyed only by what affects training. Evaluation keys never do;
  // with PIM off, the PIM hardware keys only matter to the evaluations of the model.
  if (execution_setting(key)) return true;
  if (key == "eval" || key.rfind("eval.", 0) == 0) return true;
  return !config.pim.enabled && key.rfind("pim.", 0) == 0 && key != "pim.enabled";
}

bool ignored_for_eval(const ExperimentConfig& config, const std::string& key) {
  // pim.train_bits is a training resolution: with PIM off it exists nowhere.
  return execution_setting(key) || (!config.pim.enabled && key == "pim.train_bits");
}

// The configuration a train task runs: evaluation keys at their defaults, and with PIM off the
// PIM keys too, so that a train task's config is a function of its identity.
ExperimentConfig training_config(const ExperimentConfig& config) {
  ExperimentConfig out = config;
  out.eval = EvalConfig{};
  if (!out.pim.enabled) out.pim = PimConfig{};
  return out;
}

std::string task_kind_word(TaskKind kind) {
  switch (kind) {
    case TaskKind::Train: return "train";
    case TaskKind::Eval: return "eval";
    case TaskKind::Synthetic: return "synthetic";
  }
  return "";
}

}  // namespace

std::string train_canonical(const ExperimentConfig& config, int replicate) {
  CanonicalRecord record;
  for (const auto& k : config_schema())
    if (!ignored_for_training(config, k.key)) record.set_encoded(k.key, config_value_canonical(config, k.key));
  record.set_string("task.kind", task_kind_word(TaskKind::Train));
  record.set_integer("task.replicate", replicate);
  return record.encode();
}

std::string eval_canonical(const ExperimentConfig& config, int replicate) {
  CanonicalRecord record;
  for (const auto& k : config_schema())
    if (!ignored_for_eval(config, k.key)) record.set_encoded(k.key, config_value_canonical(config, k.key));
  record.set_string("task.kind", task_kind_word(TaskKind::Eval));
  record.set_integer("task.replicate", replicate);
  // Thermal noise's definition (pim/gaussian.h) decides the results of noisy evaluations: a new
  // definition gives them new identities (and their sweeps a new fingerprint), so a run directory
  // made with another one is refused rather than resumed. Noiseless tasks keep theirs.
  if (config.eval.noise_sigma > 0.0) record.set_integer(std::string(kNoiseModelKey), pim::kThermalNoiseModel);
  return record.encode();
}

std::string identity_without_noise_model(const std::string& canonical) {
  // Keys are sorted bytewise, so the field is never the first ("task.kind" precedes it): it goes
  // with the comma before it.
  const std::string key = "\"" + std::string(kNoiseModelKey) + "\":";
  const auto at = canonical.find(key);
  if (at == std::string::npos || at == 0 || canonical[at - 1] != ',') return {};
  auto end = at + key.size();
  while (end < canonical.size() && canonical[end] >= '0' && canonical[end] <= '9') ++end;
  return identity_of(canonical.substr(0, at - 1) + canonical.substr(end));
}

std::string sweep_fingerprint(const std::vector<TaskSpec>& tasks) {
  std::vector<std::string> ids;
  ids.reserve(tasks.size());
  for (const auto& t : tasks) ids.push_back(t.id);
  std::sort(ids.begin(), ids.end());
  std::string joined;
  for (const auto& id : ids) joined += id + "\n";
  return identity_of(joined);
}

namespace {

// ---- Expansion ----

// Mixed-radix walk over the dimensions (a grid axis or a zip group each), last dimension fastest.
struct Dimension {
  std::vector<std::size_t> axes;  // indices into the axis list
  std::size_t size = 0;
};

void add_unique(std::vector<ConfigProblem>& into, std::set<std::string>& seen, const std::vector<ConfigProblem>& problems) {
  for (const auto& p : problems)
    if (seen.insert(format_problem(p)).second) into.push_back(p);
}

struct TrainGroup {
  ExperimentConfig config;  // training_config of the first grid point of the group
  std::map<std::string, std::string> axes;
  struct EvalSetting {
    ExperimentConfig config;
    std::map<std::string, std::string> axes;
  };
  std::vector<EvalSetting> evals;
};

TaskSpec make_task(TaskKind kind, std::string canonical, const ExperimentConfig& config,
                   std::map<std::string, std::string> axes, int replicate, std::string depends_on = {}) {
  TaskSpec t;
  t.kind = kind;
  t.id = identity_of(canonical);
  t.canonical = std::move(canonical);
  t.config = config;
  t.axes = std::move(axes);
  t.replicate = replicate;
  t.depends_on = std::move(depends_on);
  return t;
}

void expand_train_eval(Sweep& sweep, const std::vector<Axis>& axes, const std::vector<Dimension>& dims,
                       const ConfigDraft& base, std::vector<ConfigProblem>& problems) {
  std::set<std::string> seen_problems;
  std::vector<TrainGroup> groups;
  std::map<std::string, std::size_t> group_of;  // train canonical (replicate 0) -> group
  std::set<std::string> eval_settings;          // eval canonical (replicate 0, die 0)
  std::vector<std::size_t> index(dims.size(), 0);
  for (std::size_t point = 0; point < sweep.grid_points; ++point) {
    // Mixed-radix digits of `point`, the last dimension fastest.
    std::size_t rest = point;
    for (std::size_t d = dims.size(); d-- > 0;) {
      index[d] = rest % dims[d].size;
      rest /= dims[d].size;
    }
    ConfigDraft draft = base;
    for (std::size_t d = 0; d < dims.size(); ++d) {
      for (const std::size_t a : dims[d].axes) {
        const AxisValue& v = axes[a].values[index[d]];
        draft.assign(axes[a].info.path, v.node, v.origin, v.where);
      }
    }
    std::vector<ConfigProblem> point_problems;
    ExperimentConfig config = draft.resolve(point_problems);
    if (!point_problems.empty()) {
      add_unique(problems, seen_problems, point_problems);
      continue;
    }
    config.seed = sweep.seed;
    std::map<std::string, std::string> train_axes, eval_axes;
    for (std::size_t d = 0; d < dims.size(); ++d) {
      for (const std::size_t a : dims[d].axes) {
        const std::string& path = axes[a].info.path;
        const std::string& label = axes[a].values[index[d]].label;
        eval_axes[path] = ignored_for_eval(config, path) ? "-" : label;
        if (axes[a].info.affects_training) train_axes[path] = ignored_for_training(config, path) ? "-" : label;
      }
    }
    const ExperimentConfig train_config = training_config(config);
    const std::string train_key = train_canonical(train_config, 0);
    auto [it, inserted] = group_of.emplace(train_key, groups.size());
    if (inserted) groups.push_back({train_config, train_axes, {}});
    // The same evaluation again (e.g. pim.train_bits values of a digital model): nothing new.
    if (!eval_settings.insert(eval_canonical(config, 0)).second) continue;
    groups[it->second].evals.push_back({config, eval_axes});
  }
  if (!problems.empty()) return;

  std::size_t eval_count = 0;
  for (const auto& g : groups)
    for (const auto& e : g.evals) eval_count += static_cast<std::size_t>(e.config.eval.dies);
  const std::size_t total = (groups.size() + eval_count) * static_cast<std::size_t>(sweep.replicates);
  if (total > kMaxTasks) {
    problems.push_back({sweep.files.front().path, "", "the sweep expands to " + std::to_string(total) +
                                                          " tasks; more than " + std::to_string(kMaxTasks) + " is surely a mistake"});
    return;
  }
  sweep.tasks.reserve(total);
  std::vector<std::vector<std::string>> train_ids(static_cast<std::size_t>(sweep.replicates));
  for (int r = 0; r < sweep.replicates; ++r) {
    for (const auto& g : groups) {
      sweep.tasks.push_back(make_task(TaskKind::Train, train_canonical(g.config, r), g.config, g.axes, r));
      train_ids[static_cast<std::size_t>(r)].push_back(sweep.tasks.back().id);
    }
  }
  // A die's task does not depend on how many dies its setting has, so settings that differ only
  // in eval.dies share their first dies: each eval task is made once.
  std::unordered_set<std::string> eval_ids;
  for (int r = 0; r < sweep.replicates; ++r) {
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
      for (const auto& setting : groups[gi].evals) {
        for (int die = 0; die < setting.config.eval.dies; ++die) {
          ExperimentConfig c = setting.config;
          c.eval.first_die = setting.config.eval.first_die + die;
          c.eval.dies = 1;
          TaskSpec task = make_task(TaskKind::Eval, eval_canonical(c, r), c, setting.axes, r,
                                    train_ids[static_cast<std::size_t>(r)][gi]);
          if (eval_ids.insert(task.id).second) sweep.tasks.push_back(std::move(task));
        }
      }
    }
  }
}

void expand_synthetic(Sweep& sweep, const std::vector<Axis>& axes, const std::vector<Dimension>& dims,
                      const std::map<std::string, Located>& base, std::vector<ConfigProblem>& problems) {
  std::set<std::string> seen_problems;
  struct Point {
    SyntheticSpec spec;
    int dependents = 0;
    CanonicalRecord record;
    std::map<std::string, std::string> axes;
  };
  std::vector<Point> points;
  std::set<std::string> seen_points;
  std::vector<std::size_t> index(dims.size(), 0);
  for (std::size_t point = 0; point < sweep.grid_points; ++point) {
    std::size_t rest = point;
    for (std::size_t d = dims.size(); d-- > 0;) {
      index[d] = rest % dims[d].size;
      rest /= dims[d].size;
    }
    std::map<std::string, Located> values = base;
    Point p;
    for (std::size_t d = 0; d < dims.size(); ++d) {
      for (const std::size_t a : dims[d].axes) {
        const AxisValue& v = axes[a].values[index[d]];
        values[axes[a].info.path.substr(10)] = {v.node, v.origin, v.where};
        p.axes[axes[a].info.path] = v.label;
      }
    }
    std::vector<ConfigProblem> point_problems;
    for (const auto& k : kSyntheticKeys) {
      const auto it = values.find(k.name);
      std::string canonical;
      if (it == values.end()) {
        // Defaults of SyntheticSpec, dependents 0.
        const SyntheticSpec d;
        const std::string name = k.name;
        canonical = name == "duration"              ? canonical_float(d.duration_seconds)
                    : name == "failure_probability" ? canonical_float(d.failure_probability)
                    : name == "result"              ? canonical_float(d.result)
                    : name == "always_fail"         ? canonical_bool(d.always_fail)
                                                    : canonical_integer(0);
      } else {
        std::string error;
        const auto c = read_synthetic(k.name, it->second.node, p.spec, p.dependents, error);
        if (!c) {
          point_problems.push_back({it->second.where, std::string("synthetic.") + k.name, error});
          continue;
        }
        canonical = *c;
      }
      p.record.set_encoded(std::string("synthetic.") + k.name, canonical);
    }
    if (!point_problems.empty()) {
      add_unique(problems, seen_problems, point_problems);
      continue;
    }
    p.record.set_unsigned("seed", sweep.seed);
    p.record.set_string("task.kind", "synthetic");
    if (seen_points.insert(p.record.encode()).second) points.push_back(std::move(p));
  }
  if (!problems.empty()) return;
  std::size_t total = 0;
  for (const auto& p : points) total += static_cast<std::size_t>(1 + p.dependents) * static_cast<std::size_t>(sweep.replicates);
  if (total > kMaxTasks) {
    problems.push_back({sweep.files.front().path, "", "the sweep expands to " + std::to_string(total) +
                                                          " tasks; more than " + std::to_string(kMaxTasks) + " is surely a mistake"});
    return;
  }
  ExperimentConfig config;
  config.seed = sweep.seed;
  std::vector<std::pair<std::size_t, std::size_t>> parents;  // (point, task index)
  for (int r = 0; r < sweep.replicates; ++r) {
    for (std::size_t i = 0; i < points.size(); ++i) {
      CanonicalRecord record = points[i].record;
      record.set_integer("task.replicate", r);
      sweep.tasks.push_back(make_task(TaskKind::Synthetic, record.encode(), config, points[i].axes, r));
      sweep.tasks.back().synthetic = points[i].spec;
      parents.emplace_back(i, sweep.tasks.size() - 1);
    }
  }
  for (const auto& [i, parent] : parents) {
    const int r = sweep.tasks[parent].replicate;
    const std::string parent_id = sweep.tasks[parent].id;
    for (int k = 1; k <= points[i].dependents; ++k) {
      CanonicalRecord record = points[i].record;
      record.set_integer("task.replicate", r);
      record.set_integer("task.dependent", k);
      sweep.tasks.push_back(make_task(TaskKind::Synthetic, record.encode(), config, points[i].axes, r, parent_id));
      sweep.tasks.back().synthetic = points[i].spec;
    }
  }
}

Sweep build(Draft& draft, const std::string& source_name) {
  Sweep sweep;
  std::vector<ConfigProblem>& problems = draft.problems;
  const Origin main_origin{source_name, true};

  // Top-level scalars.
  sweep.name = fs::path(source_name).stem().string();
  auto scalar = [&](const char* key) -> const Located* {
    const auto it = draft.scalars.find(key);
    return it == draft.scalars.end() ? nullptr : &it->second;
  };
  std::string error;
  if (const Located* v = scalar("name")) {
    if (const auto text = internal::read_string(v->node, error); text && !text->empty()) sweep.name = *text;
    else problems.push_back({v->where, "name", "expected a name for the sweep, got " + internal::describe_node(v->node)});
  }
  if (const Located* v = scalar("description")) {
    if (const auto text = internal::read_string(v->node, error)) sweep.description = *text;
    else problems.push_back({v->where, "description", error});
  }
  if (const Located* v = scalar("seed")) {
    if (const auto seed = internal::read_unsigned(v->node, error)) sweep.seed = *seed;
    else problems.push_back({v->where, "seed", error});
  }
  if (const Located* v = scalar("task")) {
    static const std::vector<std::string> kKinds = {"train_eval", "synthetic"};
    const std::string word = v->node.IsScalar() ? v->node.Scalar() : "";
    if (word == "train_eval") sweep.kind = SweepKind::TrainEval;
    else if (word == "synthetic") sweep.kind = SweepKind::Synthetic;
    else {
      const std::string near = closest_spelling(word, kKinds);
      problems.push_back({v->where, "task", "unknown task kind " + internal::describe_node(v->node) +
                                                (near.empty() ? "" : "; did you mean `" + near + "`?") +
                                                " (valid: train_eval | synthetic)"});
    }
  }
  if (const Located* v = scalar("replicates")) {
    const auto n = internal::read_integer(v->node, error);
    if (!n) problems.push_back({v->where, "replicates", error});
    else if (*n < 1 || *n > 100000) problems.push_back({v->where, "replicates", "must be 1..100000, got " + std::to_string(*n)});
    else sweep.replicates = static_cast<int>(*n);
  }

  // The base configuration (or the synthetic block).
  ConfigDraft base;
  base.set_default_where(source_name);
  base.forbid("seed", "the seed of every task is the sweep's top-level `seed:`; use `replicates: N` for repeated runs");
  std::map<std::string, Located> synthetic_base;
  if (sweep.kind == SweepKind::TrainEval) {
    for (const auto& layer : draft.synthetic_layers)
      problems.push_back({layer.where, "synthetic", "a `synthetic:` block needs `task: synthetic`"});
    for (const auto& layer : draft.base_layers) {
      if (layer.node.IsDefined() && !layer.node.IsNull() && !layer.node.IsMap()) {
        problems.push_back({layer.where, "base", "expected the base configuration (a mapping of dataset, model, train, pim, eval), got " +
                                                     internal::describe_node(layer.node)});
        continue;
      }
      base.add_document(layer.node, layer.origin);
    }
  } else {
    for (const auto& layer : draft.base_layers)
      problems.push_back({layer.where, "base", "a synthetic sweep (task: synthetic) has no `base:`; use `synthetic:`"});
    for (const auto& layer : draft.synthetic_layers) {
      if (layer.node.IsNull()) continue;
      if (!layer.node.IsMap()) {
        problems.push_back({layer.where, "synthetic", "expected a mapping (duration, failure_probability, result, always_fail, dependents), got " +
                                                          internal::describe_node(layer.node)});
        continue;
      }
      for (const auto& item : layer.node) {
        const std::string key = item.first.IsScalar() ? item.first.Scalar() : "";
        const std::string path = "synthetic." + key;
        const auto valid = synthetic_paths();
        if (std::find(valid.begin(), valid.end(), path) == valid.end()) {
          problems.push_back({location(layer.origin, item.first.Mark()), path, internal::unknown_key_message(path, valid)});
          continue;
        }
        synthetic_base[key] = {item.second, layer.origin, internal::value_location(layer.origin, item.first, item.second)};
      }
    }
  }

  // Axes: the grid's, then each zip group's.
  std::vector<Axis> axes;
  std::vector<Dimension> dims;
  std::map<std::string, std::string> axis_where;  // path -> where, for "set twice"
  auto admit = [&](const AxisDraft& a, int group) -> std::optional<std::size_t> {
    for (const auto& [path, where] : axis_where) {
      const bool same = path == a.path;
      const bool nested = a.path.rfind(path + ".", 0) == 0 || path.rfind(a.path + ".", 0) == 0;
      if (same || nested) {
        problems.push_back({a.where, a.path, same ? "axis `" + a.path + "` is given twice (also at " + where + ")"
                                                  : "axis `" + a.path + "` overlaps axis `" + path + "` (at " + where +
                                                        "): sweep a section or its keys, not both"});
        return std::nullopt;
      }
    }
    auto axis = check_axis(a, sweep.kind, group, draft);
    if (!axis) return std::nullopt;
    axis_where[a.path] = a.where;
    axes.push_back(std::move(*axis));
    return axes.size() - 1;
  };
  for (const auto& a : draft.grid) {
    if (const auto i = admit(a, -1)) dims.push_back({{*i}, axes[*i].values.size()});
  }
  if (draft.zip) {
    int group_number = 0;
    for (const auto& group : *draft.zip) {
      Dimension dim;
      bool usable = true;
      for (const auto& a : group.axes) {
        if (const auto i = admit(a, group_number)) dim.axes.push_back(*i);
        else usable = false;
      }
      if (usable && !dim.axes.empty()) {
        std::set<std::size_t> lengths;
        for (const auto i : dim.axes) lengths.insert(axes[i].values.size());
        if (lengths.size() > 1) {
          std::string list;
          for (const auto i : dim.axes) list += (list.empty() ? "" : ", ") + axes[i].info.path + " has " + std::to_string(axes[i].values.size());
          problems.push_back({group.where, "zip", "the axes of a zip group vary together and need equal numbers of values: " + list});
          usable = false;
        }
        dim.size = axes[dim.axes.front()].values.size();
      }
      if (usable) dims.push_back(dim);
      ++group_number;
    }
  }
  for (const auto& a : axes) sweep.axes.push_back(a.info);

  // Grid size.
  double points = 1;
  for (const auto& d : dims) points *= static_cast<double>(d.size);
  sweep.files = draft.files;
  if (points > static_cast<double>(kMaxGridPoints)) {
    problems.push_back({source_name, "grid", "the grid has " + range_number(points) + " points; more than " +
                                                 std::to_string(kMaxGridPoints) + " is surely a mistake"});
    if (sweep.kind == SweepKind::TrainEval) base.resolve(problems);  // still report the base's own problems
  } else {
    sweep.grid_points = static_cast<std::size_t>(points);
    // Every grid point's configuration is checked; each distinct problem is reported once.
    if (sweep.kind == SweepKind::TrainEval) expand_train_eval(sweep, axes, dims, base, problems);
    else expand_synthetic(sweep, axes, dims, synthetic_base, problems);
  }
  if (!problems.empty()) throw ConfigError(std::move(problems));

  // Identities are unique by construction unless two encodings collide in 64 bits.
  std::unordered_set<std::string> ids;
  for (const auto& t : sweep.tasks) {
    if (!ids.insert(t.id).second) {
      throw Error("sweep " + source_name + ": two different tasks share the identity " + t.id +
                  " (a 64-bit hash collision); change the sweep seed");
    }
  }
  sweep.fingerprint = sweep_fingerprint(sweep.tasks);
  return sweep;
}

}  // namespace

Sweep parse_sweep(const std::string& text, const std::string& source_name, const std::string& include_dir) {
  Draft draft;
  std::error_code ec;
  draft.include_stack.push_back(fs::weakly_canonical(fs::absolute(fs::path(include_dir) / fs::path(source_name).filename(), ec), ec).string());
  draft.include_names.push_back(source_name);
  absorb(text, source_name, include_dir, draft);
  return build(draft, source_name);
}

Sweep load_sweep(const std::string& path) {
  std::string error;
  const auto text = read_file(path, error);
  if (!text) throw ConfigError({{path, "", error}});
  Draft draft;
  std::error_code ec;
  draft.include_stack.push_back(fs::weakly_canonical(fs::absolute(path, ec), ec).string());
  draft.include_names.push_back(path);
  absorb(*text, path, fs::path(path).parent_path().string(), draft);
  return build(draft, path);
}

}  // namespace pimqat::runner
