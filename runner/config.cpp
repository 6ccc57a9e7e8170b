#include "runner/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <tuple>
#include <type_traits>
#include <variant>

#include "runner/canonical.h"
#include "runner/config_impl.h"

namespace pimqat::runner {

using internal::ConfigDraft;
using internal::Origin;
using internal::Range;

// ---------------------------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------------------------

std::string format_problem(const ConfigProblem& problem) {
  std::string out;
  if (!problem.where.empty()) out += problem.where + ": ";
  if (!problem.key.empty()) out += problem.key + ": ";
  out += problem.message;
  return out;
}

namespace {
std::string join_problems(const std::vector<ConfigProblem>& problems) {
  std::string out = problems.size() == 1 ? "1 problem:" : std::to_string(problems.size()) + " problems:";
  for (const auto& p : problems) out += "\n  " + format_problem(p);
  return out;
}
}  // namespace

void sort_problems(std::vector<ConfigProblem>& problems) {
  struct Position {
    std::string source;
    long line = 0, column = 0;
  };
  // "source:line:column" -> its parts; a where without numbers is a source alone (sorts first).
  auto position = [](const std::string& where) {
    Position p{where, 0, 0};
    const auto c2 = where.rfind(':');
    if (c2 == std::string::npos || c2 == 0) return p;
    const auto c1 = where.rfind(':', c2 - 1);
    if (c1 == std::string::npos) return p;
    const std::string line = where.substr(c1 + 1, c2 - c1 - 1), column = where.substr(c2 + 1);
    auto digits = [](const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; };
    if (!digits(line) || !digits(column)) return p;
    return Position{where.substr(0, c1), std::stol(line), std::stol(column)};
  };
  std::vector<std::string> sources;
  for (const auto& problem : problems) {
    const std::string source = position(problem.where).source;
    if (std::find(sources.begin(), sources.end(), source) == sources.end()) sources.push_back(source);
  }
  auto rank = [&](const std::string& source) {
    if (source == "--set") return sources.size();
    return static_cast<std::size_t>(std::find(sources.begin(), sources.end(), source) - sources.begin());
  };
  std::stable_sort(problems.begin(), problems.end(), [&](const ConfigProblem& a, const ConfigProblem& b) {
    const Position pa = position(a.where), pb = position(b.where);
    return std::tuple(rank(pa.source), pa.line, pa.column) < std::tuple(rank(pb.source), pb.line, pb.column);
  });
  std::vector<ConfigProblem> unique;
  std::set<std::string> seen;
  for (auto& problem : problems)
    if (seen.insert(format_problem(problem)).second) unique.push_back(std::move(problem));
  problems = std::move(unique);
}

namespace {
std::vector<ConfigProblem> sorted(std::vector<ConfigProblem> problems) {
  sort_problems(problems);
  return problems;
}
}  // namespace

ConfigError::ConfigError(std::vector<ConfigProblem> problems)
    : Error(join_problems(sorted(problems))), problems_(sorted(std::move(problems))) {}

// ---------------------------------------------------------------------------------------------
// Spelling suggestions
// ---------------------------------------------------------------------------------------------

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), case-insensitive.
std::size_t edit_distance(std::string_view a_in, std::string_view b_in) {
  const std::string a = lower(a_in), b = lower(b_in);
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::string last_component(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}
}  // namespace

std::string closest_spelling(std::string_view word, const std::vector<std::string>& candidates) {
  // A likely typo: at most one edit per three characters (at least one, at most three).
  const std::size_t limit = std::clamp<std::size_t>(word.size() / 3, 1, 3);
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Typed readers of YAML nodes
// ---------------------------------------------------------------------------------------------

namespace internal {

std::string location(const Origin& origin, const YAML::Mark& mark) {
  if (!origin.has_marks || mark.is_null() || mark.line < 0) return origin.source;
  return origin.source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::string value_location(const Origin& origin, const YAML::Node& key, const YAML::Node& value) {
  if (value.IsNull() || value.Mark().is_null()) return location(origin, key.Mark());
  return location(origin, value.Mark());
}

std::string describe_node(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "`" + node.Scalar() + "`";
}

namespace {
// A scalar's text, or nullopt (with `error`) for null, lists and mappings.
std::optional<std::string> scalar_text(const YAML::Node& node, const char* expected, std::string& error) {
  if (!node.IsDefined() || node.IsNull()) {
    error = std::string("no value given; expected ") + expected;
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    error = std::string("expected ") + expected + ", got " + describe_node(node);
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<double> parse_double(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty() || text.front() == '+') return std::nullopt;
  double value = 0;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::general);
  if (result.ec != std::errc() || result.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

std::optional<std::int64_t> read_integer(const YAML::Node& node, std::string& error) {
  const auto text = scalar_text(node, "an integer", error);
  if (!text) return std::nullopt;
  std::string_view number = *text;
  if (!number.empty() && number.front() == '+') number.remove_prefix(1);
  std::string_view digits = number;
  if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
  if (all_digits(digits)) {
    std::int64_t value = 0;
    const auto result = std::from_chars(number.data(), number.data() + number.size(), value);
    if (result.ec == std::errc() && result.ptr == number.data() + number.size()) return value;
    error = "integer `" + *text + "` is out of range";
    return std::nullopt;
  }
  // Other spellings of a whole number (1e4, 4.0) are accepted: number spelling is not meaning.
  if (const auto value = parse_double(*text); value && std::isfinite(*value) && std::trunc(*value) == *value &&
                                             std::fabs(*value) < 9.2e18) {
    return static_cast<std::int64_t>(*value);
  }
  error = "expected an integer, got `" + *text + "`";
  return std::nullopt;
}

std::optional<std::uint64_t> read_unsigned(const YAML::Node& node, std::string& error) {
  const auto text = scalar_text(node, "an integer >= 0", error);
  if (!text) return std::nullopt;
  std::string_view digits = *text;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  if (all_digits(digits)) {
    std::uint64_t value = 0;
    const auto result = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (result.ec == std::errc() && result.ptr == digits.data() + digits.size()) return value;
    error = "integer `" + *text + "` is out of range (at most 18446744073709551615)";
    return std::nullopt;
  }
  if (const auto value = parse_double(*text);
      value && std::isfinite(*value) && std::trunc(*value) == *value && *value >= 0 && *value < 1.8e19) {
    return static_cast<std::uint64_t>(*value);
  }
  error = "expected an integer >= 0, got `" + *text + "`";
  return std::nullopt;
}

std::optional<double> read_float(const YAML::Node& node, std::string& error) {
  const auto text = scalar_text(node, "a number", error);
  if (!text) return std::nullopt;
  const auto value = parse_double(*text);
  if (!value) {
    error = "expected a number, got `" + *text + "`";
    return std::nullopt;
  }
  if (!std::isfinite(*value)) {
    error = "expected a finite number, got `" + *text + "`";
    return std::nullopt;
  }
  return *value == 0.0 ? 0.0 : *value;  // -0 is 0
}

std::optional<bool> read_bool(const YAML::Node& node, std::string& error) {
  const auto text = scalar_text(node, "true or false", error);
  if (!text) return std::nullopt;
  const std::string word = lower(*text);
  if (word == "true" || word == "yes" || word == "on") return true;
  if (word == "false" || word == "no" || word == "off") return false;
  error = "expected true or false, got `" + *text + "`";
  return std::nullopt;
}

std::optional<std::string> read_string(const YAML::Node& node, std::string& error) {
  if (node.IsDefined() && node.IsNull()) return std::string();  // `dir:` with nothing: empty
  return scalar_text(node, "a text value", error);
}

// ---------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------

bool Range::contains(double value) const {
  if (also && value == static_cast<double>(*also)) return true;
  if (lo && (lo_open ? !(value > *lo) : !(value >= *lo))) return false;
  if (hi && (hi_open ? !(value < *hi) : !(value <= *hi))) return false;
  return true;
}

std::string Range::text(bool integer) const {
  auto number = [](double v) { return canonical_float(v); };
  std::string body;
  if (lo && hi) {
    if (integer && !lo_open && !hi_open) {
      body = number(*lo) + ".." + number(*hi);
    } else {
      body = std::string(lo_open ? "(" : "[") + number(*lo) + ", " + number(*hi) + (hi_open ? ")" : "]");
    }
  } else if (lo) {
    body = std::string(lo_open ? "> " : ">= ") + number(*lo);
  } else if (hi) {
    body = std::string(hi_open ? "< " : "<= ") + number(*hi);
  } else {
    body = integer ? "any integer" : "any number";
  }
  if (also) return std::to_string(*also) + " or " + body;
  return body;
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------------

namespace {

using ConfigValue = std::variant<std::int64_t, std::uint64_t, double, bool, std::string, std::vector<std::int64_t>>;

struct KeySpec {
  ConfigKey info;
  Range range;                       // Integer, Float, IntegerList elements
  std::int64_t integer_max = std::numeric_limits<std::int64_t>::max();  // what the field can hold
  std::vector<std::string> choices;  // Choice
  std::function<void(ExperimentConfig&, const ConfigValue&)> set;
  std::function<ConfigValue(const ExperimentConfig&)> get;
};

const char* type_name(ValueType type) {
  switch (type) {
    case ValueType::Integer: return "integer";
    case ValueType::Unsigned: return "integer";
    case ValueType::Float: return "number";
    case ValueType::Boolean: return "boolean";
    case ValueType::AutoBool: return "boolean or auto";
    case ValueType::String: return "text";
    case ValueType::Choice: return "choice";
    case ValueType::IntegerList: return "list of integers";
  }
  return "";
}

// Key builders. `access` is a generic lambda returning a reference to the field: [](auto& c) -> auto& {...}.
template <class Access>
KeySpec integer_key(std::string key, Range range, std::string doc, Access access) {
  using Field = std::remove_cvref_t<decltype(access(std::declval<ExperimentConfig&>()))>;
  KeySpec spec;
  spec.info = {std::move(key), ValueType::Integer, range.text(true), "", std::move(doc), true};
  spec.range = range;
  spec.integer_max = static_cast<std::int64_t>(std::numeric_limits<Field>::max());
  spec.set = [access](ExperimentConfig& c, const ConfigValue& v) { access(c) = static_cast<Field>(std::get<std::int64_t>(v)); };
  spec.get = [access](const ExperimentConfig& c) { return ConfigValue(static_cast<std::int64_t>(access(c))); };
  return spec;
}

template <class Access>
KeySpec float_key(std::string key, Range range, std::string doc, Access access) {
  using Field = std::remove_cvref_t<decltype(access(std::declval<ExperimentConfig&>()))>;
  KeySpec spec;
  spec.info = {std::move(key), ValueType::Float, range.text(false), "", std::move(doc), true};
  spec.range = range;
  spec.set = [access](ExperimentConfig& c, const ConfigValue& v) { access(c) = static_cast<Field>(std::get<double>(v)); };
  spec.get = [access](const ExperimentConfig& c) { return ConfigValue(static_cast<double>(access(c))); };
  return spec;
}

template <class Access>
KeySpec bool_key(std::string key, std::string doc, Access access) {
  KeySpec spec;
  spec.info = {std::move(key), ValueType::Boolean, "true | false", "", std::move(doc), true};
  spec.set = [access](ExperimentConfig& c, const ConfigValue& v) { access(c) = std::get<bool>(v); };
  spec.get = [access](const ExperimentConfig& c) { return ConfigValue(static_cast<bool>(access(c))); };
  return spec;
}

template <class Access>
KeySpec string_key(std::string key, std::string doc, Access access) {
  KeySpec spec;
  spec.info = {std::move(key), ValueType::String, "text", "", std::move(doc), true};
  spec.set = [access](ExperimentConfig& c, const ConfigValue& v) { access(c) = std::get<std::string>(v); };
  spec.get = [access](const ExperimentConfig& c) { return ConfigValue(std::string(access(c))); };
  return spec;
}

std::string choices_text(const std::vector<std::string>& choices) {
  std::string out;
  for (const auto& c : choices) out += (out.empty() ? "" : " | ") + c;
  return out;
}

// A string field restricted to a list of words.
template <class Access>
KeySpec word_key(std::string key, std::vector<std::string> words, std::string doc, Access access) {
  KeySpec spec;
  spec.info = {std::move(key), ValueType::Choice, choices_text(words), "", std::move(doc), true};
  spec.choices = std::move(words);
  spec.set = [access](ExperimentConfig& c, const ConfigValue& v) { access(c) = std::get<std::string>(v); };
  spec.get = [access](const ExperimentConfig& c) { return ConfigValue(std::string(access(c))); };
  return spec;
}

// An enum field; `words[i]` spells `values[i]`.
template <class Enum, class Access>
KeySpec enum_key(std::string key, std::vector<std::pair<std::string, Enum>> table, std::string doc, Access access) {
  KeySpec spec;
  for (const auto& [word, value] : table) spec.choices.push_back(word);
  spec.info = {std::move(key), ValueType::Choice, choices_text(spec.choices), "", std::move(doc), true};
  spec.set = [access, table](ExperimentConfig& c, const ConfigValue& v) {
    for (const auto& [word, value] : table)
      if (word == std::get<std::string>(v)) access(c) = value;
  };
  spec.get = [access, table](const ExperimentConfig& c) {
    for (const auto& [word, value] : table)
      if (value == access(c)) return ConfigValue(word);
    PIMQAT_ASSERT(false && "enum value without a spelling in the schema");
    return ConfigValue(std::string());
  };
  return spec;
}

std::string encode_text(const KeySpec& spec, const ConfigValue& value, bool quote_strings);

// Range factories (designated initializers of a partly-initialized aggregate draw warnings).
Range interval(std::optional<double> lo, std::optional<double> hi, bool lo_open = false, bool hi_open = false) {
  Range r;
  r.lo = lo;
  r.hi = hi;
  r.lo_open = lo_open;
  r.hi_open = hi_open;
  return r;
}
Range at_least(double lo) { return interval(lo, std::nullopt); }

std::vector<KeySpec> build_schema() {
  Range bits_or_off = interval(2, 8);
  bits_or_off.also = 0;
  const Range at_least_0 = at_least(0);
  const Range at_least_1 = at_least(1);
  const Range positive = interval(0, std::nullopt, true);
  const Range resolution = interval(1, 16);
  std::vector<KeySpec> s;

  // seed
  {
    KeySpec spec;
    spec.info = {"seed", ValueType::Unsigned, ">= 0", "", "seed of every random stream (DESIGN.md 2.6); in a sweep, the sweep's `seed`", true};
    spec.set = [](ExperimentConfig& c, const ConfigValue& v) { c.seed = std::get<std::uint64_t>(v); };
    spec.get = [](const ExperimentConfig& c) { return ConfigValue(c.seed); };
    s.push_back(spec);
  }

  // dataset
  s.push_back(word_key("dataset.name", {"fashion-mnist", "mnist", "cifar10", "cifar100"}, "dataset",
                       [](auto& c) -> auto& { return c.data.name; }));
  s.push_back(string_key("dataset.dir",
                         "directory of the dataset files; empty: the default (/usr/share/datasets/fashion-mnist for Fashion-MNIST)",
                         [](auto& c) -> auto& { return c.data.dir; }));
  s.push_back(integer_key("dataset.train_subset", at_least_0, "use only the first N training images (0: all)",
                          [](auto& c) -> auto& { return c.data.train_subset; }));
  s.push_back(integer_key("dataset.test_subset", at_least_0, "use only the first N test images (0: all)",
                          [](auto& c) -> auto& { return c.data.test_subset; }));
  s.push_back(integer_key("dataset.crop_padding", at_least(-1),
                          "random-crop padding in pixels; -1: the dataset's default (4 for CIFAR, 0 otherwise)",
                          [](auto& c) -> auto& { return c.data.crop_padding; }));
  {
    KeySpec spec;
    spec.info = {"dataset.flip", ValueType::AutoBool, "true | false | auto", "", "random horizontal flip; auto: on for CIFAR, off otherwise", true};
    spec.set = [](ExperimentConfig& c, const ConfigValue& v) { c.data.flip = static_cast<int>(std::get<std::int64_t>(v)); };
    spec.get = [](const ExperimentConfig& c) { return ConfigValue(static_cast<std::int64_t>(c.data.flip < 0 ? -1 : c.data.flip != 0)); };
    s.push_back(spec);
  }

  // model
  s.push_back(word_key("model.arch", {"resnet20", "resnet32", "resnet44", "resnet56"}, "CIFAR-style ResNet depth",
                       [](auto& c) -> auto& { return c.model.arch; }));
  s.push_back(integer_key("model.weight_bits", bits_or_off, "weight bits of quantized layers (DESIGN.md 2.1); 0: FP32 weights",
                          [](auto& c) -> auto& { return c.model.weight_bits; }));
  s.push_back(integer_key("model.act_bits", bits_or_off, "activation bits (PACT, DESIGN.md 2.1); 0: FP32 activations",
                          [](auto& c) -> auto& { return c.model.act_bits; }));
  s.push_back(integer_key("model.first_last_weight_bits", bits_or_off,
                          "bits of the first convolution's weights and of the last linear layer's weights and input (kept digital); 0: FP32",
                          [](auto& c) -> auto& { return c.model.first_last_weight_bits; }));
  s.push_back(float_key("model.alpha_init", positive, "initial PACT clipping level alpha",
                        [](auto& c) -> auto& { return c.model.alpha_init; }));

  // train
  s.push_back(integer_key("train.epochs", at_least_1, "training epochs", [](auto& c) -> auto& { return c.train.epochs; }));
  s.push_back(integer_key("train.batch_size", at_least_1, "training mini-batch size",
                          [](auto& c) -> auto& { return c.train.batch_size; }));
  s.push_back(float_key("train.lr", positive, "peak learning rate (SGD)", [](auto& c) -> auto& { return c.train.lr; }));
  s.push_back(float_key("train.momentum", interval(0, 1, false, true), "SGD momentum",
                        [](auto& c) -> auto& { return c.train.momentum; }));
  s.push_back(bool_key("train.nesterov", "Nesterov momentum", [](auto& c) -> auto& { return c.train.nesterov; }));
  s.push_back(float_key("train.weight_decay", at_least_0, "L2 weight decay", [](auto& c) -> auto& { return c.train.weight_decay; }));
  s.push_back(enum_key<LrSchedule>("train.schedule", {{"multistep", LrSchedule::Multistep}, {"cosine", LrSchedule::Cosine}},
                                   "learning-rate schedule", [](auto& c) -> auto& { return c.train.schedule; }));
  {
    KeySpec spec;
    spec.info = {"train.milestones", ValueType::IntegerList, "increasing epochs >= 1", "",
                 "multistep: epochs after which lr is multiplied by gamma (milestones past the last epoch never apply)", true};
    spec.range = at_least_1;
    spec.integer_max = std::numeric_limits<int>::max();
    spec.set = [](ExperimentConfig& c, const ConfigValue& v) {
      c.train.milestones.clear();
      for (const auto m : std::get<std::vector<std::int64_t>>(v)) c.train.milestones.push_back(static_cast<int>(m));
    };
    spec.get = [](const ExperimentConfig& c) {
      return ConfigValue(std::vector<std::int64_t>(c.train.milestones.begin(), c.train.milestones.end()));
    };
    s.push_back(spec);
  }
  s.push_back(float_key("train.gamma", interval(0, 1, true, false), "multistep: learning-rate factor at each milestone",
                        [](auto& c) -> auto& { return c.train.gamma; }));
  s.push_back(integer_key("train.warmup_epochs", at_least_0, "linear learning-rate warm-up epochs (at most `epochs`)",
                          [](auto& c) -> auto& { return c.train.warmup_epochs; }));
  s.push_back(integer_key("train.threads", at_least_0, "OpenMP threads; 0: OMP_NUM_THREADS or all cores",
                          [](auto& c) -> auto& { return c.train.threads; }));

  // pim
  {
    KeySpec spec = bool_key("pim.enabled", "PIM quantizer in training; false: digital QAT (the baseline)",
                            [](auto& c) -> auto& { return c.pim.enabled; });
    s.push_back(spec);
  }
  s.push_back(enum_key<Scheme>("pim.scheme",
                               {{"bit-serial", Scheme::BitSerial}, {"differential", Scheme::Differential}, {"native", Scheme::Native}},
                               "PIM decomposition (DESIGN.md 2.2)", [](auto& c) -> auto& { return c.pim.scheme; }));
  s.push_back(integer_key("pim.rows", at_least_0, "rows N summed per ADC conversion; 0: the scheme's default (144, 144, 9)",
                          [](auto& c) -> auto& { return c.pim.rows; }));
  s.push_back(integer_key("pim.train_bits", resolution, "ADC resolution in training (TR, DESIGN.md 2.5)",
                          [](auto& c) -> auto& { return c.pim.train_bits; }));
  s.push_back(enum_key<Rescale>("pim.rescale", {{"none", Rescale::None}, {"backward", Rescale::Backward}, {"both", Rescale::Both}},
                                "output rescaling mode (DESIGN.md 2.4)", [](auto& c) -> auto& { return c.pim.rescale; }));
  s.push_back(float_key("pim.adc_clip", interval(0, 1, true, false), "fraction of the theoretical ADC range kept (DESIGN.md 2.3)",
                        [](auto& c) -> auto& { return c.pim.adc_clip; }));

  // eval
  s.push_back(integer_key("eval.infer_bits", resolution, "ADC resolution at inference (IR)",
                          [](auto& c) -> auto& { return c.eval.infer_bits; }));
  s.push_back(integer_key("eval.dies", at_least_1, "simulated dies (chips) in the Monte Carlo evaluation",
                          [](auto& c) -> auto& { return c.eval.dies; }));
  s.push_back(integer_key("eval.first_die", at_least_0, "die ids are first_die .. first_die + dies - 1",
                          [](auto& c) -> auto& { return c.eval.first_die; }));
  s.push_back(float_key("eval.noise_sigma", at_least_0, "thermal noise sigma per conversion, LSB",
                        [](auto& c) -> auto& { return c.eval.noise_sigma; }));
  s.push_back(float_key("eval.gain_sigma", at_least_0, "ADC gain spread sigma_gamma per column (paper's chip: 0.024)",
                        [](auto& c) -> auto& { return c.eval.gain_sigma; }));
  s.push_back(float_key("eval.offset_sigma", at_least_0, "ADC offset spread sigma_o per column, LSB (paper's chip: 2.04)",
                        [](auto& c) -> auto& { return c.eval.offset_sigma; }));
  s.push_back(enum_key<CurveModel>("eval.curve",
                                   {{"linear", CurveModel::Linear}, {"smooth", CurveModel::Smooth}, {"measured", CurveModel::Measured}},
                                   "ADC transfer curve", [](auto& c) -> auto& { return c.eval.curve; }));
  s.push_back(float_key("eval.curve_strength", Range{}, "smooth curve: non-linearity amplitude, LSB at mid-range",
                        [](auto& c) -> auto& { return c.eval.curve_strength; }));
  s.push_back(string_key("eval.curve_file", "measured curves (CSV or HDF5); required by curve: measured",
                         [](auto& c) -> auto& { return c.eval.curve_file; }));
  s.push_back(integer_key("eval.bn_calibration", at_least_0, "batches of training images for BN calibration per die (0: off)",
                          [](auto& c) -> auto& { return c.eval.bn_calibration; }));
  s.push_back(integer_key("eval.batch_size", at_least_1, "evaluation and calibration batch size",
                          [](auto& c) -> auto& { return c.eval.batch_size; }));

  const ExperimentConfig defaults;
  for (auto& spec : s) {
    spec.info.affects_training = spec.info.key.rfind("eval.", 0) != 0;
    if (spec.info.key == "pim.enabled") {
      spec.info.default_text = "true if a `pim:` section is present, else false";
    } else {
      spec.info.default_text = encode_text(spec, spec.get(defaults), false);
    }
  }
  return s;
}

const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> specs = build_schema();
  return specs;
}

const KeySpec* find_spec(std::string_view key) {
  for (const auto& spec : schema())
    if (spec.info.key == key) return &spec;
  return nullptr;
}

const std::vector<std::string> kSections = {"dataset", "model", "train", "pim", "eval"};

std::string encode_canonical(const KeySpec& spec, const ConfigValue& value) {
  if (spec.info.type == ValueType::AutoBool) {
    const auto v = std::get<std::int64_t>(value);
    return v < 0 ? canonical_string("auto") : canonical_bool(v != 0);
  }
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::int64_t>) return canonical_integer(v);
        else if constexpr (std::is_same_v<T, std::uint64_t>) return canonical_unsigned(v);
        else if constexpr (std::is_same_v<T, double>) return canonical_float(v);
        else if constexpr (std::is_same_v<T, bool>) return canonical_bool(v);
        else if constexpr (std::is_same_v<T, std::string>) return canonical_string(v);
        else return canonical_integer_list(v);
      },
      value);
}

// A double as people write it: fixed notation for 1e-5 <= |v| < 1e15, else scientific with a
// decimal point in the mantissa (so YAML 1.1 readers such as PyYAML read a float); always the
// shortest digits that read back to the same double.
std::string float_text(double value) {
  if (value == 0.0) return "0";
  char buffer[128];
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e-5 && magnitude < 1e15) {
    const auto r = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed);
    return std::string(buffer, r.ptr);
  }
  const auto r = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  std::string text(buffer, r.ptr);
  const auto e = text.find('e');
  if (text.find('.') == std::string::npos) text.insert(e, ".0");
  return text;
}

// YAML text of a value: numbers in their shortest exact form, strings bare (`quote_strings` puts free text
// in double quotes, as to_yaml does), lists in flow style.
std::string encode_text(const KeySpec& spec, const ConfigValue& value, bool quote_strings) {
  if (spec.info.type == ValueType::AutoBool) {
    const auto v = std::get<std::int64_t>(value);
    return v < 0 ? "auto" : (v != 0 ? "true" : "false");
  }
  if (spec.info.type == ValueType::String) {
    return quote_strings ? canonical_string(std::get<std::string>(value)) : std::get<std::string>(value);
  }
  if (spec.info.type == ValueType::Choice) return std::get<std::string>(value);
  if (spec.info.type == ValueType::Float) return float_text(std::get<double>(value));
  if (spec.info.type == ValueType::IntegerList) {
    std::string out = "[";
    for (const auto m : std::get<std::vector<std::int64_t>>(value)) out += (out.size() > 1 ? ", " : "") + std::to_string(m);
    return out + "]";
  }
  return encode_canonical(spec, value);
}

// Reads and checks one value against its key's type, range and choices.
std::optional<ConfigValue> read_value(const KeySpec& spec, const YAML::Node& node, std::string& error) {
  const std::string& valid = spec.info.valid;
  auto check_integer = [&](std::int64_t v) -> bool {
    if (!spec.range.contains(static_cast<double>(v))) {
      error = "must be " + valid + ", got " + std::to_string(v);
      return false;
    }
    if (v > spec.integer_max) {
      error = "must be at most " + std::to_string(spec.integer_max) + ", got " + std::to_string(v);
      return false;
    }
    return true;
  };
  switch (spec.info.type) {
    case ValueType::Integer: {
      const auto v = internal::read_integer(node, error);
      if (!v || !check_integer(*v)) return std::nullopt;
      return ConfigValue(*v);
    }
    case ValueType::Unsigned: {
      const auto v = internal::read_unsigned(node, error);
      if (!v) return std::nullopt;
      return ConfigValue(*v);
    }
    case ValueType::Float: {
      const auto v = internal::read_float(node, error);
      if (!v) return std::nullopt;
      if (!spec.range.contains(*v)) {
        error = "must be " + valid + ", got " + canonical_float(*v);
        return std::nullopt;
      }
      return ConfigValue(*v);
    }
    case ValueType::Boolean: {
      const auto v = internal::read_bool(node, error);
      if (!v) return std::nullopt;
      return ConfigValue(*v);
    }
    case ValueType::AutoBool: {
      if (node.IsScalar() && lower(node.Scalar()) == "auto") return ConfigValue(std::int64_t{-1});
      const auto v = internal::read_bool(node, error);
      if (!v) {
        error = "expected true, false or auto, got " + internal::describe_node(node);
        return std::nullopt;
      }
      return ConfigValue(std::int64_t{*v ? 1 : 0});
    }
    case ValueType::String: {
      const auto v = internal::read_string(node, error);
      if (!v) return std::nullopt;
      return ConfigValue(*v);
    }
    case ValueType::Choice: {
      std::string text_error;
      const auto v = internal::read_string(node, text_error);
      if (!v || v->empty()) {
        error = "expected one of " + valid + ", got " + internal::describe_node(node);
        return std::nullopt;
      }
      if (std::find(spec.choices.begin(), spec.choices.end(), *v) != spec.choices.end()) return ConfigValue(*v);
      const std::string near = closest_spelling(*v, spec.choices);
      error = "unknown value `" + *v + "`" + (near.empty() ? "" : "; did you mean `" + near + "`?") + " (valid: " + valid + ")";
      return std::nullopt;
    }
    case ValueType::IntegerList: {
      if (node.IsDefined() && node.IsNull()) return ConfigValue(std::vector<std::int64_t>{});
      if (!node.IsSequence()) {
        error = "expected a list of integers such as [30, 60], got " + internal::describe_node(node);
        return std::nullopt;
      }
      std::vector<std::int64_t> values;
      for (const auto& element : node) {
        std::string element_error;
        const auto v = internal::read_integer(element, element_error);
        if (!v) {
          error = "list element: " + element_error;
          return std::nullopt;
        }
        if (!spec.range.contains(static_cast<double>(*v)) || *v > spec.integer_max) {
          error = "list element must be " + spec.range.text(true) + ", got " + std::to_string(*v);
          return std::nullopt;
        }
        if (!values.empty() && *v <= values.back()) {
          error = "must be strictly increasing, got " + std::to_string(values.back()) + " then " + std::to_string(*v);
          return std::nullopt;
        }
        values.push_back(*v);
      }
      return ConfigValue(std::move(values));
    }
  }
  return std::nullopt;
}

std::vector<std::string> section_keys(const std::string& section) {
  std::vector<std::string> keys;
  for (const auto& spec : schema())
    if (spec.info.key.rfind(section + ".", 0) == 0) keys.push_back(spec.info.key);
  return keys;
}

std::vector<std::string> top_level_names() {
  std::vector<std::string> names = {"seed"};
  names.insert(names.end(), kSections.begin(), kSections.end());
  return names;
}

}  // namespace

const std::vector<ConfigKey>& config_schema() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> out;
    for (const auto& spec : schema()) out.push_back(spec.info);
    return out;
  }();
  return keys;
}

const ConfigKey* find_config_key(std::string_view key) {
  const KeySpec* spec = find_spec(key);
  return spec ? &spec->info : nullptr;
}

bool is_config_section(std::string_view name) {
  return std::find(kSections.begin(), kSections.end(), name) != kSections.end();
}

std::string config_value_canonical(const ExperimentConfig& config, std::string_view key) {
  const KeySpec* spec = find_spec(key);
  if (!spec) throw Error("config_value_canonical: `" + std::string(key) + "` is not a configuration key");
  return encode_canonical(*spec, spec->get(config));
}

std::string config_value_text(const ExperimentConfig& config, std::string_view key) {
  const KeySpec* spec = find_spec(key);
  if (!spec) throw Error("config_value_text: `" + std::string(key) + "` is not a configuration key");
  return encode_text(*spec, spec->get(config), false);
}

std::string config_reference_markdown() {
  auto cell = [](std::string text) {
    std::string out;
    for (const char c : text) {
      if (c == '|') out += "\\|";
      else out += c;
    }
    return out;
  };
  std::string out = "| key | type | valid values | default | meaning |\n|---|---|---|---|---|\n";
  for (const auto& spec : schema()) {
    const auto& k = spec.info;
    const std::string default_cell = k.key == "pim.enabled" ? k.default_text
                                     : k.default_text.empty() ? "(empty)"
                                                              : "`" + k.default_text + "`";
    out += "| `" + k.key + "` | " + type_name(k.type) + " | " + cell(k.valid) + " | " + cell(default_cell) + " | " +
           cell(k.doc) + " |\n";
  }
  return out;
}

std::string to_yaml(const ExperimentConfig& config) {
  std::string out = "# pimqat configuration, every key resolved (docs/config.md)\n";
  std::string current_section;
  for (const auto& spec : schema()) {
    const std::string& key = spec.info.key;
    const auto dot = key.find('.');
    const std::string text = encode_text(spec, spec.get(config), true);
    if (dot == std::string::npos) {
      out += key + ": " + text + "\n";
      continue;
    }
    const std::string section = key.substr(0, dot);
    if (section != current_section) {
      out += section + ":\n";
      current_section = section;
    }
    out += "  " + key.substr(dot + 1) + ": " + text + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The draft: layers of settings, resolved once
// ---------------------------------------------------------------------------------------------

namespace internal {

std::string unknown_key_message(const std::string& path, const std::vector<std::string>& candidates) {
  std::string message = "unknown key `" + path + "`";
  // First a close spelling at the same place, then the same last word in another section
  // (`train.dies` -> `eval.dies`), then the list of what is valid here.
  std::string near = closest_spelling(path, candidates);
  if (near.empty()) {
    const std::string word = last_component(path);
    std::vector<std::string> everywhere = top_level_names();
    for (const auto& spec : schema()) everywhere.push_back(spec.info.key);
    for (const auto& c : everywhere) {
      if (last_component(c) == word && c != path) {
        near = c;
        break;
      }
    }
  }
  if (!near.empty()) return message + "; did you mean `" + near + "`?";
  // List what is valid in the path's section if it names one (`model.depth`: the model keys).
  const auto dot = path.find('.');
  const std::string prefix = dot == std::string::npos ? "" : path.substr(0, dot + 1);
  const bool section_known = !prefix.empty() && std::any_of(candidates.begin(), candidates.end(), [&](const std::string& c) {
    return c.rfind(prefix, 0) == 0;
  });
  std::string list;
  for (const auto& c : candidates)
    if (!section_known || c.rfind(prefix, 0) == 0) list += (list.empty() ? "" : ", ") + c;
  return message + "; valid keys here: " + list;
}

namespace {
// Duplicated keys in a mapping are an error (yaml-cpp keeps both and reads the first).
void check_duplicates(const YAML::Node& map, const Origin& origin, const std::string& prefix,
                      std::vector<ConfigProblem>& problems) {
  std::map<std::string, std::string> seen;
  for (const auto& item : map) {
    const std::string key = item.first.IsScalar() ? item.first.Scalar() : "";
    const std::string where = location(origin, item.first.Mark());
    const auto [it, inserted] = seen.emplace(key, where);
    if (!inserted) problems.push_back({where, prefix + key, "key given twice (first at " + it->second + ")"});
  }
}
}  // namespace

void ConfigDraft::add_document(const YAML::Node& root, const Origin& origin) {
  if (!root.IsDefined() || root.IsNull()) return;  // an empty document: all defaults
  if (!root.IsMap()) {
    add_problem(location(origin, root.Mark()), "",
                "a configuration is a mapping of keys (seed, dataset, model, train, pim, eval), got " + describe_node(root));
    return;
  }
  check_duplicates(root, origin, "", problems_);
  for (const auto& item : root) {
    if (!item.first.IsScalar()) {
      add_problem(location(origin, item.first.Mark()), "", "a key must be a word, got " + describe_node(item.first));
      continue;
    }
    const std::string key = item.first.Scalar();
    if (key != "seed" && !is_config_section(key)) {
      add_problem(location(origin, item.first.Mark()), key, unknown_key_message(key, top_level_names()));
      continue;
    }
    assign(key, item.second, origin, value_location(origin, item.first, item.second));
  }
}

void ConfigDraft::assign_section(const std::string& section, const YAML::Node& value, const Origin& origin,
                                 const std::string& where) {
  if (value.IsNull()) {
    // null clears the section (back to the defaults); for pim it also means "no PIM training".
    for (auto it = values_.begin(); it != values_.end();) {
      it = it->first.rfind(section + ".", 0) == 0 ? values_.erase(it) : std::next(it);
    }
    if (section == "pim") {
      pim_present_ = false;
      pim_where_ = where;
    }
    return;
  }
  if (!value.IsMap()) {
    add_problem(where, section, "`" + section + "` is a section: expected a mapping of its keys, got " + describe_node(value));
    return;
  }
  if (section == "pim") {
    pim_present_ = true;
    pim_where_ = where;
  }
  check_duplicates(value, origin, section + ".", problems_);
  const std::vector<std::string> candidates = section_keys(section);
  for (const auto& item : value) {
    if (!item.first.IsScalar()) {
      add_problem(location(origin, item.first.Mark()), section, "a key must be a word, got " + describe_node(item.first));
      continue;
    }
    const std::string path = section + "." + item.first.Scalar();
    if (!find_spec(path)) {
      add_problem(location(origin, item.first.Mark()), path, unknown_key_message(path, candidates));
      continue;
    }
    assign(path, item.second, origin, value_location(origin, item.first, item.second));
  }
}

void ConfigDraft::assign(const std::string& path, const YAML::Node& value, const Origin& origin, const std::string& where) {
  if (const auto f = forbidden_.find(path); f != forbidden_.end()) {
    add_problem(where, path, f->second);
    return;
  }
  if (is_config_section(path)) {
    assign_section(path, value, origin, where);
    return;
  }
  if (!find_spec(path)) {
    std::vector<std::string> candidates = top_level_names();
    for (const auto& spec : schema()) candidates.push_back(spec.info.key);
    add_problem(where, path, unknown_key_message(path, candidates));
    return;
  }
  values_[path] = {value, where};
  if (path.rfind("pim.", 0) == 0 && !pim_present_.value_or(false)) {
    // Setting one pim key is writing a `pim:` section.
    pim_present_ = true;
    pim_where_ = where;
  }
}

void ConfigDraft::add_override(const std::string& assignment) {
  const Origin origin{"--set", false};
  const auto equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    add_problem("--set", "", "`" + assignment + "` is not of the form key=value (e.g. --set train.lr=0.05)");
    return;
  }
  const std::string key = assignment.substr(0, equals);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(equals + 1));
  } catch (const YAML::Exception& e) {
    add_problem("--set", key, "the value is not valid YAML: " + e.msg);
    return;
  }
  assign(key, value, origin, "--set");
}

ExperimentConfig ConfigDraft::resolve(std::vector<ConfigProblem>& problems) const {
  problems.insert(problems.end(), problems_.begin(), problems_.end());
  const std::size_t first_new = problems.size();
  ExperimentConfig config;
  std::set<std::string> valid_keys;
  for (const auto& spec : schema()) {
    const auto it = values_.find(spec.info.key);
    if (it == values_.end()) continue;
    std::string error;
    const auto value = read_value(spec, it->second.value, error);
    if (!value) {
      problems.push_back({it->second.where, spec.info.key, error});
      continue;
    }
    spec.set(config, *value);
    valid_keys.insert(spec.info.key);
  }
  if (!values_.count("pim.enabled")) config.pim.enabled = pim_present_.value_or(false);

  // Cross-field rules (docs/config.md, "Rules between keys"). A rule is checked only when the
  // keys it reads are valid, so one wrong value does not produce a second, derived problem.
  auto ok = [&](const std::string& key) { return !values_.count(key) || valid_keys.count(key); };
  auto where = [&](const std::string& key) {
    const auto it = values_.find(key);
    return it != values_.end() ? it->second.where : std::string();
  };
  auto first_where = [&](std::initializer_list<const char*> keys) {
    for (const char* key : keys)
      if (values_.count(key)) return where(key);
    return std::string();
  };
  if (ok("train.schedule") && ok("train.milestones")) {
    if (config.train.schedule == LrSchedule::Multistep && config.train.milestones.empty()) {
      problems.push_back({first_where({"train.schedule", "train.milestones"}), "train.milestones",
                          "schedule `multistep` needs milestones (epochs at which lr *= gamma), e.g. milestones: [30, 60]"});
    }
    if (config.train.schedule == LrSchedule::Cosine && !config.train.milestones.empty()) {
      problems.push_back({where("train.milestones"), "train.milestones",
                          "milestones are used only by schedule `multistep`, but the schedule is `cosine`; "
                          "set train.schedule: multistep or remove the milestones"});
    }
  }
  if (ok("train.warmup_epochs") && ok("train.epochs") && config.train.warmup_epochs > config.train.epochs) {
    problems.push_back({first_where({"train.warmup_epochs", "train.epochs"}), "train.warmup_epochs",
                        "warm-up of " + std::to_string(config.train.warmup_epochs) + " epochs is longer than the run (epochs = " +
                            std::to_string(config.train.epochs) + "); use at most " + std::to_string(config.train.epochs)});
  }
  if (ok("eval.curve") && ok("eval.curve_file")) {
    if (config.eval.curve == CurveModel::Measured && config.eval.curve_file.empty()) {
      problems.push_back({first_where({"eval.curve", "eval.curve_file"}), "eval.curve_file",
                          "curve `measured` needs curve_file (the measured p -> code table, CSV or HDF5)"});
    }
    if (config.eval.curve != CurveModel::Measured && !config.eval.curve_file.empty()) {
      problems.push_back({where("eval.curve_file"), "eval.curve_file",
                          "curve_file is read only with curve `measured`, but the curve is `" +
                              config_value_text(config, "eval.curve") + "`; set eval.curve: measured or remove curve_file"});
    }
  }
  if (ok("eval.curve") && ok("eval.curve_strength") && config.eval.curve != CurveModel::Smooth &&
      config.eval.curve_strength != 0.0) {
    problems.push_back({where("eval.curve_strength"), "eval.curve_strength",
                        "curve_strength applies only to curve `smooth`, but the curve is `" +
                            config_value_text(config, "eval.curve") + "`; set eval.curve: smooth or remove curve_strength"});
  }
  if (config.pim.enabled && ok("pim.enabled") && ok("model.weight_bits") && ok("model.act_bits") &&
      (config.model.weight_bits == 0 || config.model.act_bits == 0)) {
    std::string where_text = first_where({"model.weight_bits", "model.act_bits"});
    if (where_text.empty()) where_text = values_.count("pim.enabled") ? where("pim.enabled") : pim_where_;
    problems.push_back({where_text, config.model.weight_bits == 0 ? "model.weight_bits" : "model.act_bits",
                        "PIM training needs integer weights and activations: set model.weight_bits and model.act_bits "
                        "to 2..8 (now " + std::to_string(config.model.weight_bits) + " and " +
                            std::to_string(config.model.act_bits) + "), or turn PIM off (pim: null)"});
  }
  // A problem without a location still names the file.
  for (std::size_t i = first_new; i < problems.size(); ++i)
    if (problems[i].where.empty()) problems[i].where = default_where_;
  return config;
}

std::optional<std::string> canonical_value_of(const std::string& key, const YAML::Node& node, std::string& error) {
  const KeySpec* spec = find_spec(key);
  if (!spec) {
    error = "unknown key";
    return std::nullopt;
  }
  const auto value = read_value(*spec, node, error);
  if (!value) return std::nullopt;
  return encode_canonical(*spec, *value);
}

std::optional<std::string> text_value_of(const std::string& key, const YAML::Node& node, std::string& error) {
  const KeySpec* spec = find_spec(key);
  if (!spec) {
    error = "unknown key";
    return std::nullopt;
  }
  const auto value = read_value(*spec, node, error);
  if (!value) return std::nullopt;
  return encode_text(*spec, *value, false);
}

std::string float_text(double value) { return pimqat::runner::float_text(value); }

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

ExperimentConfig parse_experiment(const YAML::Node& root, const std::string& source_name,
                                  const std::vector<std::string>& overrides) {
  ConfigDraft draft;
  draft.set_default_where(source_name);
  draft.add_document(root, Origin{source_name, true});
  for (const auto& o : overrides) draft.add_override(o);
  std::vector<ConfigProblem> problems;
  ExperimentConfig config = draft.resolve(problems);
  if (!problems.empty()) throw ConfigError(std::move(problems));
  return config;
}

namespace {
YAML::Node load_yaml_text(const std::string& text, const std::string& source_name) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError({{internal::location(Origin{source_name, true}, e.mark), "", "YAML syntax error: " + e.msg}});
  }
}
}  // namespace

ExperimentConfig parse_experiment_text(const std::string& text, const std::string& source_name,
                                       const std::vector<std::string>& overrides) {
  return parse_experiment(load_yaml_text(text, source_name), source_name, overrides);
}

namespace internal {

namespace {

std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string size_refusal(const std::string& path, std::uintmax_t size) {
  return "`" + path + "` is " + std::to_string(size) + " bytes, larger than the " +
         std::to_string(kMaxConfigFileBytes >> 20) + " MiB a configuration or sweep file may have";
}

}  // namespace

std::optional<std::string> read_config_file(const std::string& path, std::string& error) {
  // stat first (opening a FIFO for reading would block until a writer comes), then open without
  // blocking and check the opened file again (the path may have changed in between); read at most
  // one byte past the limit (the file may grow while it is read).
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    error = "cannot open `" + path + "` for reading: " + std::strerror(errno);
    return std::nullopt;
  }
  const auto refuse = [&](const struct stat& st) -> bool {
    if (!S_ISREG(st.st_mode)) {
      error = "`" + path + "` is " + file_kind(st.st_mode) + ", expected a regular file";
      return true;
    }
    if (static_cast<std::uintmax_t>(st.st_size) > kMaxConfigFileBytes) {
      error = size_refusal(path, static_cast<std::uintmax_t>(st.st_size));
      return true;
    }
    return false;
  };
  if (refuse(info)) return std::nullopt;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open `" + path + "` for reading: " + std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  const bool refused = ::fstat(fd, &info) != 0 || refuse(info);
  if (!refused) {
    text.resize(static_cast<std::size_t>(kMaxConfigFileBytes) + 1);
    std::size_t have = 0;
    while (have < text.size()) {
      const ssize_t n = ::read(fd, text.data() + have, text.size() - have);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = "cannot read `" + path + "`: " + std::strerror(errno);
        ::close(fd);
        return std::nullopt;
      }
      if (n == 0) break;
      have += static_cast<std::size_t>(n);
    }
    text.resize(have);
  }
  ::close(fd);
  if (refused) {
    if (error.empty()) error = "cannot read `" + path + "`: " + std::strerror(errno);
    return std::nullopt;
  }
  if (text.size() > kMaxConfigFileBytes) {
    error = size_refusal(path, text.size());
    return std::nullopt;
  }
  return text;
}

}  // namespace internal

ExperimentConfig load_experiment(const std::string& path, const std::vector<std::string>& overrides) {
  std::string error;
  const auto text = internal::read_config_file(path, error);
  if (!text) throw ConfigError({{path, "", error}});
  return parse_experiment_text(*text, path, overrides);
}

}  // namespace pimqat::runner
