#include "runner/cli/args.h"

namespace pimqat::cli {
namespace {

std::string list(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::string s;
  for (const auto* set : {&a, &b})
    for (const std::string& f : *set) s += (s.empty() ? "" : ", ") + f;
  return s;
}

}  // namespace

Args::Args(int argc, char** argv, const std::set<std::string>& options, const std::set<std::string>& switches) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg.rfind("--", 0) != 0) {
      positional_.push_back(arg);
      continue;
    }
    std::string value;
    bool has_value = false;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (switches.count(arg)) {
      if (has_value) throw Error("option " + arg + " takes no value");
      switches_.insert(arg);
    } else if (options.count(arg)) {
      if (!has_value) {
        if (i + 1 >= argc) throw Error("option " + arg + " needs a value");
        value = argv[++i];
      }
      values_.emplace(arg, value);
    } else {
      throw Error("unknown option " + arg + " (valid: " + list(options, switches) + ")");
    }
  }
}

std::string Args::get(const std::string& flag, const std::string& fallback) const {
  const auto range = values_.equal_range(flag);
  if (range.first == range.second) return fallback;
  return std::prev(range.second)->second;  // the last one wins
}

std::vector<std::string> Args::all(const std::string& flag) const {
  std::vector<std::string> out;
  const auto range = values_.equal_range(flag);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

int Args::get_int(const std::string& flag, int fallback) const {
  const std::string v = get(flag);
  if (v.empty()) return fallback;
  try {
    std::size_t used = 0;
    const int n = std::stoi(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw Error("option " + flag + " needs an integer, got '" + v + "'");
}

}  // namespace pimqat::cli
