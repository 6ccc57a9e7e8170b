// pimqat: one program, subcommands (DESIGN.md section 4). Each subcommand lives in its own file
// of runner/cli/; this file only dispatches and turns errors into messages and exit codes.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "core/log.h"
#include "pimqat/version.h"
#include "runner/cli/commands.h"
#include "runner/config.h"
#include "runner/train_task.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* synopsis;
};

constexpr Command kCommands[] = {
    {"train", pimqat::cli::run_train, "train CONFIG.yaml --out DIR [--set key=value]...   one training run"},
    {"sweep", pimqat::cli::run_sweep, "sweep SWEEP.yaml --out DIR [...]   run (or resume) a sweep; distributes under mpirun"},
    {"plan", pimqat::cli::run_plan, "plan SWEEP.yaml [--out DIR] [--list]   check a sweep, count its tasks, estimate its cost"},
    {"status", pimqat::cli::run_status, "status DIR   progress of a running or stopped sweep"},
    {"analyze", pimqat::cli::run_analyze, "analyze DIR [--out ANALYSIS_DIR] [--no-plots]   tables, report and plots of a sweep"},
    {"eval", pimqat::cli::run_eval, "eval --checkpoint FILE --config CONFIG.yaml [--dies D] [--set ...]   Monte Carlo over dies"},
    {"mac-error", pimqat::cli::run_mac_error, "mac-error [--scheme S] [--adc-bits LIST] [--noise LIST] ...   PIM computing error"},
    {"curves", pimqat::cli::run_curves, "curves --out FILE.(csv|h5) [--dies D] ...   ADC transfer curves of simulated dies"},
};

void print_usage(std::FILE* out) {
  std::fprintf(out, "pimqat %s: quantization-aware training for processing-in-memory hardware\n\n", pimqat::kVersion);
  std::fprintf(out, "usage: pimqat COMMAND [ARGS]   (pimqat COMMAND --help for details)\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %s\n", c.synopsis);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage(stdout);
    return argc < 2 ? pimqat::cli::kExitBadInput : pimqat::cli::kExitOk;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("pimqat %s (commit %s)\n", pimqat::kVersion, pimqat::kGitCommit);
    return 0;
  }
  pimqat::set_log_sink(pimqat::stderr_log_sink());
  pimqat::runner::register_pimqat_tasks();
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const pimqat::runner::ConfigError& e) {
      std::fprintf(stderr, "pimqat %s: invalid configuration:\n%s\n", c.name, e.what());
      return pimqat::cli::kExitBadInput;
    } catch (const pimqat::Error& e) {
      std::fprintf(stderr, "pimqat %s: error: %s\n", c.name, e.what());
      return pimqat::cli::kExitFailure;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pimqat %s: unexpected error: %s\n", c.name, e.what());
      return pimqat::cli::kExitFailure;
    }
  }
  std::fprintf(stderr, "pimqat: unknown command '%s'\n\n", argv[1]);
  print_usage(stderr);
  return pimqat::cli::kExitBadInput;
}
