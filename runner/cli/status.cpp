// `pimqat status DIR [--watch SECONDS]`: progress of a running or stopped sweep, from its files.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "runner/cli/args.h"
#include "runner/cli/commands.h"
#include "runner/signals.h"
#include "runner/status.h"

namespace pimqat::cli {
namespace {

constexpr const char* kUsage =
    "usage: pimqat status DIR [--watch SECONDS]\n"
    "  Shows the tasks of the sweep in DIR: done, failed, running and total, the rate and the ETA,\n"
    "  from DIR's task list, journal and the heartbeat the running coordinator rewrites.\n"
    "  --watch S   print again every S seconds until the sweep is no longer running (Ctrl-C ends)\n";

}  // namespace

int run_status(int argc, char** argv) {
  const Args args(argc, argv, {"--watch"}, {"--help"});
  if (args.has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (args.positional().size() != 1) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  const std::string dir = args.positional()[0];
  const double watch = args.has("--watch") ? std::stod(args.get("--watch")) : 0.0;
  auto& stop = runner::install_stop_handlers();
  while (true) {
    const runner::SweepStatus status = runner::read_sweep_status(dir, runner::unix_time_now());
    std::fputs(runner::format_sweep_status(status).c_str(), stdout);
    std::fflush(stdout);
    if (watch <= 0 || !status.live) break;
    for (double waited = 0; waited < watch && !stop.load(); waited += 0.1)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (stop.load()) break;
    std::fputs("\n", stdout);
  }
  return kExitOk;
}

}  // namespace pimqat::cli
