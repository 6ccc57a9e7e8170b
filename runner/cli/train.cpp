// `pimqat train CONFIG.yaml --out DIR [--set key=value]... [--threads N]`: one training run.
#include <cstdio>
#include <filesystem>

#include "core/progress.h"
#include "runner/cli/args.h"
#include "runner/cli/commands.h"
#include "runner/config.h"
#include "runner/signals.h"
#include "runner/training.h"

namespace pimqat::cli {

namespace {
constexpr const char* kUsage =
    "usage: pimqat train CONFIG.yaml --out DIR [--set key=value]... [--threads N]\n"
    "  Trains the model of CONFIG.yaml (docs/config.md), writing DIR/checkpoint.h5 after every epoch.\n"
    "  Running the same command again resumes from the last finished epoch.\n"
    "  --set key=value   override a config key, e.g. --set train.epochs=2 (repeatable)\n"
    "  --threads N       OpenMP threads (same as --set train.threads=N)\n";
}

int run_train(int argc, char** argv) {
  const Args args(argc, argv, {"--out", "--set", "--threads"}, {"--help"});
  if (args.has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (args.positional().size() != 1 || args.get("--out").empty()) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  std::vector<std::string> overrides = args.all("--set");
  if (args.has("--threads")) overrides.push_back("train.threads=" + args.get("--threads"));
  const ExperimentConfig config = runner::load_experiment(args.positional()[0], overrides);
  const std::string out = args.get("--out");

  runner::TrainOptions options;
  options.stop = &runner::install_stop_handlers();
  options.progress = stderr;
  const runner::TrainOutcome outcome = runner::train_experiment(config, out, options);
  const std::string checkpoint = (std::filesystem::path(out) / runner::kCheckpointFile).string();
  if (!outcome.finished) {
    std::fprintf(stderr, "stopped after %d of %d epochs; checkpoint %s\nrun the same command again to resume\n",
                 outcome.epochs_done, config.train.epochs, checkpoint.c_str());
    return kExitResumable;
  }
  if (outcome.history.empty()) {
    std::printf("nothing to train: %s is complete\n", checkpoint.c_str());
    return kExitOk;
  }
  const nn::EpochStats& last = outcome.history.back();
  double seconds = 0;
  for (const nn::EpochStats& e : outcome.history) seconds += e.seconds;
  std::printf("trained %d epochs (%s per epoch)%s\n", outcome.epochs_done,
              Progress::format_duration(seconds / static_cast<double>(outcome.history.size())).c_str(),
              outcome.resumed ? ", resumed" : "");
  std::printf("test accuracy: %.2f%% (loss %.4f)\ncheckpoint: %s\n", 100.0 * last.test_accuracy, last.test_loss,
              checkpoint.c_str());
  return kExitOk;
}

}  // namespace pimqat::cli
