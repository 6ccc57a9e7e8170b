#pragma once
// The experiment configuration file (DESIGN.md 4, docs/config.md): YAML parsed into
// pimqat::ExperimentConfig (nn/config.h) against one declarative schema.
//
// Every problem of a file is found before anything runs and reported at once, each with
// `file:line:column`, the dotted key, what is wrong and what would be valid (a misspelled key gets
// the closest valid spelling). The same schema produces the reference table of docs/config.md.
//
// Layering of a configuration (later wins): the file's keys, then `--set key=value` overrides
// (the value is read as YAML, so `--set train.milestones=[30,60]` works). A `pim:` section that is
// present (even `pim: {}`) enables PIM training (pim.enabled = true); an absent section or
// `pim: null` is digital QAT; an explicit `pim.enabled` wins over both.
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "nn/config.h"

namespace YAML {
class Node;
}

namespace pimqat::runner {

// One problem of a configuration or sweep file.
struct ConfigProblem {
  std::string where;    // "file.yaml:12:5" (1-based line and column), "--set", or the file name alone
  std::string key;      // dotted key, e.g. "train.lr" (empty when the problem is not about one key)
  std::string message;  // what is wrong and what would be valid
};

// "where: key: message" (parts that are empty are left out).
std::string format_problem(const ConfigProblem& problem);

// Orders problems by source (in order of first appearance, "--set" last), then line and column,
// and drops exact duplicates. ConfigError does this to the problems it is given.
void sort_problems(std::vector<ConfigProblem>& problems);

// All problems of a configuration (sorted, see sort_problems); what() lists them one per line.
class ConfigError : public Error {
 public:
  explicit ConfigError(std::vector<ConfigProblem> problems);
  const std::vector<ConfigProblem>& problems() const { return problems_; }

 private:
  std::vector<ConfigProblem> problems_;
};

// Reads, parses and validates a configuration file; `overrides` are "key=value" (--set) strings.
// Throws ConfigError (also for an unreadable file or a YAML syntax error).
ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides = {});
// The same for a parsed document; `source_name` names it in problem locations.
ExperimentConfig parse_experiment(const YAML::Node& root, const std::string& source_name,
                                  const std::vector<std::string>& overrides = {});
ExperimentConfig parse_experiment_text(const std::string& text, const std::string& source_name,
                                       const std::vector<std::string>& overrides = {});

// The full resolved configuration as YAML, every key in schema order; parse_experiment_text of the
// result gives back the same configuration (pim.enabled is written explicitly).
std::string to_yaml(const ExperimentConfig& config);

// ---- The schema (one table: parser, validator, canonical encoding and docs/config.md use it) ----

enum class ValueType {
  Integer,      // a whole number (1e4 and 4.0 are accepted when exactly integral)
  Unsigned,     // a whole number >= 0 up to 2^64 - 1 (the seed)
  Float,        // a finite number
  Boolean,      // true | false (yes/no/on/off accepted)
  AutoBool,     // true | false | auto (auto: the dataset's default)
  String,       // any scalar
  Choice,       // one of a fixed list of words
  IntegerList,  // a list of whole numbers
};

struct ConfigKey {
  std::string key;           // dotted: "train.lr"
  ValueType type;
  std::string valid;         // what is accepted, e.g. "> 0", "0 or 2..8", "multistep | cosine"
  std::string default_text;  // the default as YAML text
  std::string doc;           // one line
  bool affects_training;     // false for eval.*: train tasks are keyed only by what affects training
};

// Every key of the schema, in canonical order (seed, dataset, model, train, pim, eval).
const std::vector<ConfigKey>& config_schema();
// nullptr if `key` is not a key of the schema.
const ConfigKey* find_config_key(std::string_view key);
// True for the section names: dataset, model, train, pim, eval.
bool is_config_section(std::string_view name);

// The value of `key` in `config` as canonical text (runner/canonical.h): what task identities
// are made of. Throws pimqat::Error for an unknown key.
std::string config_value_canonical(const ExperimentConfig& config, std::string_view key);
// The value of `key` as it would be written in YAML (strings unquoted): for tables and labels.
std::string config_value_text(const ExperimentConfig& config, std::string_view key);

// The reference table of docs/config.md (Markdown), generated from the schema.
std::string config_reference_markdown();

// Closest candidate to `word` by edit distance, or "" if none is close enough to be a likely typo.
std::string closest_spelling(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace pimqat::runner
