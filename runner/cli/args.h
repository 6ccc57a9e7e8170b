#pragma once
// A small argument scanner shared by the subcommands: positional arguments, `--flag VALUE` and
// `--flag=VALUE`, repeatable options. Unknown flags are errors naming the valid ones.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace pimqat::cli {

class Args {
 public:
  // `options` take a value; `switches` don't. Throws pimqat::Error on unknown flags or missing values.
  Args(int argc, char** argv, const std::set<std::string>& options, const std::set<std::string>& switches = {});

  const std::vector<std::string>& positional() const { return positional_; }
  bool has(const std::string& flag) const { return values_.count(flag) > 0 || switches_.count(flag) > 0; }
  std::string get(const std::string& flag, const std::string& fallback = "") const;
  std::vector<std::string> all(const std::string& flag) const;  // every value of a repeatable option
  int get_int(const std::string& flag, int fallback) const;

 private:
  std::vector<std::string> positional_;
  std::multimap<std::string, std::string> values_;
  std::set<std::string> switches_;
};

}  // namespace pimqat::cli
