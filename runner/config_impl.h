#pragma once
// Module-private part of runner/config: the configuration draft that sweeps and `--set` layer
// values onto, and the typed readers of YAML scalars. Not for use outside runner/.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runner/config.h"

namespace pimqat::runner::internal {

// Where a YAML node came from: its file (or "--set") and whether its marks are file positions.
struct Origin {
  std::string source;
  bool has_marks = true;
};

// "source:line:column" (1-based) when the origin has marks and the mark is set, else "source".
std::string location(const Origin& origin, const YAML::Mark& mark);
// A map value's location: a null value carries the mark of the *next* token, so it uses the key's.
std::string value_location(const Origin& origin, const YAML::Node& key, const YAML::Node& value);

// How a node reads in a message: "`ten`", "a list", "a mapping", "nothing".
std::string describe_node(const YAML::Node& node);

// Typed readers of one node. On failure they return nullopt and set `error` to what is wrong.
std::optional<std::int64_t> read_integer(const YAML::Node& node, std::string& error);
std::optional<std::uint64_t> read_unsigned(const YAML::Node& node, std::string& error);
std::optional<double> read_float(const YAML::Node& node, std::string& error);
std::optional<bool> read_bool(const YAML::Node& node, std::string& error);
std::optional<std::string> read_string(const YAML::Node& node, std::string& error);

// A numeric interval with an optional extra accepted value (bit widths: 0 or 2..8).
struct Range {
  std::optional<double> lo, hi;
  bool lo_open = false, hi_open = false;
  std::optional<std::int64_t> also;

  bool contains(double value) const;
  // "0 or 2..8", ">= 1", "(0, 1]", "> 0", "any number"; `integer` selects the lo..hi form.
  std::string text(bool integer) const;
};

// Text for an unknown dotted path: "unknown key `x`; did you mean `y`?" or the list of valid keys.
// `candidates` are the valid spellings at that place (full dotted paths).
std::string unknown_key_message(const std::string& path, const std::vector<std::string>& candidates);

// A configuration assembled from layers (a file, included files, sweep axes, --set), each layer
// overriding the keys it sets, and checked as a whole by resolve().
class ConfigDraft {
 public:
  // A configuration document's top-level mapping (a config file, or a sweep's `base`).
  void add_document(const YAML::Node& root, const Origin& origin);
  // Sets one dotted path. A key stores the value (checked by resolve()); a section takes a mapping
  // (merged key by key) or null (clears the section; for `pim` it also means "PIM off").
  // `where` locates `value` in problems.
  void assign(const std::string& path, const YAML::Node& value, const Origin& origin, const std::string& where);
  // "key=value" from the command line; the value is read as YAML.
  void add_override(const std::string& assignment);
  // Paths refused with a message (a sweep refuses `seed` in its base: the sweep's seed is used).
  void forbid(const std::string& path, const std::string& message) { forbidden_[path] = message; }

  // Where problems without a location of their own point (the file name).
  void set_default_where(const std::string& where) { default_where_ = where; }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  // The problems of the layers so far (unknown keys, wrong shapes, duplicated keys).
  const std::vector<ConfigProblem>& problems() const { return problems_; }
  // The typed, validated configuration; appends every problem (the layer problems included) to
  // `problems`. The returned configuration is meaningful only when no problem was added.
  ExperimentConfig resolve(std::vector<ConfigProblem>& problems) const;

 private:
  struct Setting {
    YAML::Node value;
    std::string where;
  };
  void assign_section(const std::string& section, const YAML::Node& value, const Origin& origin,
                      const std::string& where);
  void add_problem(const std::string& where, const std::string& key, const std::string& message) {
    problems_.push_back({where, key, message});
  }

  std::map<std::string, Setting> values_;
  std::optional<bool> pim_present_;  // a `pim` section seen: true; `pim: null`: false; neither: unset
  std::string pim_where_;
  std::string default_where_;
  std::map<std::string, std::string> forbidden_;
  std::vector<ConfigProblem> problems_;
};

// Reads `node` as a value of schema key `key` and returns its canonical text (runner/canonical.h),
// or nullopt if it is not a valid value (then `error` says why). Used to find duplicated axis values.
std::optional<std::string> canonical_value_of(const std::string& key, const YAML::Node& node, std::string& error);
// The same value as YAML text (config_value_text style: 5e-1 -> 0.5, strings bare).
std::optional<std::string> text_value_of(const std::string& key, const YAML::Node& node, std::string& error);
// A double as text: shortest exact digits, fixed notation for 1e-5 <= |v| < 1e15, else scientific.
std::string float_text(double value);

// Configuration and sweep files (and sweep includes) are at most this large: far above any real
// one, small enough that reading a wrong file cannot exhaust memory.
inline constexpr std::uintmax_t kMaxConfigFileBytes = std::uintmax_t{16} << 20;  // 16 MiB

// The whole text of a configuration or sweep file. Refuses, with nullopt and `error` saying why and
// what is accepted, anything that is not a regular file (a directory, a device such as /dev/zero, a
// FIFO or socket, which would block or never end) and files above kMaxConfigFileBytes. Never
// blocks on a FIFO.
std::optional<std::string> read_config_file(const std::string& path, std::string& error);

}  // namespace pimqat::runner::internal
