// Fuzz target: the experiment configuration file (runner/config.h parse_experiment_text).
// Input: YAML text, optionally followed by NUL-separated `--set key=value` overrides.
// Properties beyond "Error or success": a parsed configuration written by to_yaml parses again
// and writes the same text (to_yaml is a fixed point), and every schema key has a canonical value
// (what task identities are made of).
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_common.h"
#include "runner/config.h"

using namespace pimqat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = fuzz::split_at_nul(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string text(parts.first);
  std::vector<std::string> overrides;
  std::string_view more = parts.second;
  while (!more.empty() && overrides.size() < 8) {
    const auto [one, after] = fuzz::split_at_nul(more);
    overrides.emplace_back(one);
    more = after;
  }
  fuzz::expect_error_or_success("parse_experiment_text", [&] {
    const ExperimentConfig config = runner::parse_experiment_text(text, "fuzz.yaml", overrides);
    const std::string yaml = runner::to_yaml(config);
    std::string again;
    try {
      again = runner::to_yaml(runner::parse_experiment_text(yaml, "to_yaml.yaml"));
    } catch (const std::exception& e) {
      fuzz::finding("to_yaml wrote a configuration that does not parse again: " + std::string(e.what()) + "\n" + yaml);
    }
    if (again != yaml) fuzz::finding("to_yaml is not a fixed point:\n" + yaml + "\n----\n" + again);
    for (const runner::ConfigKey& key : runner::config_schema()) {
      (void)runner::config_value_canonical(config, key.key);
      (void)runner::config_value_text(config, key.key);
    }
  });
  return 0;
}
