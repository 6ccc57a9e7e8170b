// `pimqat plan SWEEP.yaml [--out DIR] [--list]`: checks a sweep and prints its axes, task counts,
// a cost estimate and, for an existing run directory, how many tasks are done (docs/sweeps.md).
#include <cstdio>
#include <optional>

#include "runner/cli/args.h"
#include "runner/cli/commands.h"
#include "runner/journal.h"
#include "runner/plan.h"
#include "runner/sweep.h"

namespace pimqat::cli {

namespace {
constexpr const char* kUsage =
    "usage: pimqat plan SWEEP.yaml [--out DIR] [--list]\n"
    "  Checks SWEEP.yaml (every problem at once), then prints its axes, the numbers of train and eval\n"
    "  tasks and a cost estimate (docs/sweeps.md).\n"
    "  --out DIR   also say how many tasks are already done in the run directory DIR\n"
    "  --list      print every task: id, kind, replicate, die, dependency, axis values\n";
}

int run_plan(int argc, char** argv) {
  std::optional<Args> parsed;
  try {
    parsed.emplace(argc, argv, std::set<std::string>{"--out"}, std::set<std::string>{"--help", "--list"});
  } catch (const Error& e) {
    std::fprintf(stderr, "pimqat plan: %s\n%s", e.what(), kUsage);
    return kExitBadInput;
  }
  const Args& args = *parsed;
  if (args.has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (args.positional().size() != 1) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  const std::string path = args.positional()[0];
  runner::Sweep sweep;
  try {
    sweep = runner::load_sweep(path);
  } catch (const runner::ConfigError& e) {
    std::fprintf(stderr, "pimqat plan: %s is not a valid sweep: %s\n", path.c_str(), e.what());
    return kExitBadInput;
  }
  const runner::Plan plan = runner::make_plan(sweep, args.get("--out"), runner::finished_task_ids);
  if (args.has("--list")) std::fputs(runner::format_task_list(sweep).c_str(), stdout);
  std::fputs(runner::format_plan(plan).c_str(), stdout);
  return kExitOk;
}

}  // namespace pimqat::cli
