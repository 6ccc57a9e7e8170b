// `pimqat eval --checkpoint FILE --config CONFIG.yaml [--dies D] [--first-die I] [--set key=value]...
//  [--out FILE.h5] [--threads N]`: Monte Carlo evaluation of one trained model on simulated PIM dies
// (DESIGN.md 2.3, 2.5; runner/eval_task.h).
#include <cstdio>
#include <string>

#include "core/threads.h"
#include "pim/scheme.h"
#include "runner/cli/args.h"
#include "runner/cli/commands.h"
#include "runner/config.h"
#include "runner/eval_task.h"
#include "runner/signals.h"

namespace pimqat::cli {

namespace {
constexpr const char* kUsage =
    "usage: pimqat eval --checkpoint FILE --config CONFIG.yaml [--dies D] [--first-die I] [--set key=value]...\n"
    "                   [--out FILE.h5] [--threads N]\n"
    "  Evaluates the trained model of FILE on D simulated PIM dies: every body and shortcut conv runs on\n"
    "  the config's pim scheme/rows at eval.infer_bits with that die's ADC gains, offsets, curve and\n"
    "  thermal noise, after eval.bn_calibration batches of BN calibration (0 = off). Prints per-die\n"
    "  accuracy and a summary (mean, std, min, 5th percentile, 95% confidence interval of the mean) and\n"
    "  writes them to FILE.h5 (default eval.h5; docs/pim.md).\n"
    "  --dies D, --first-die I   same as --set eval.dies=D / eval.first_die=I\n"
    "  --set key=value           override a config key, e.g. --set eval.noise_sigma=0.5 (repeatable)\n";
}

int run_eval(int argc, char** argv) {
  const Args args(argc, argv, {"--checkpoint", "--config", "--dies", "--first-die", "--set", "--out", "--threads"},
                  {"--help"});
  if (args.has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (!args.positional().empty() || args.get("--checkpoint").empty() || args.get("--config").empty()) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  std::vector<std::string> overrides = args.all("--set");
  if (args.has("--dies")) overrides.push_back("eval.dies=" + args.get("--dies"));
  if (args.has("--first-die")) overrides.push_back("eval.first_die=" + args.get("--first-die"));
  if (args.has("--threads")) overrides.push_back("train.threads=" + args.get("--threads"));
  const ExperimentConfig config = runner::load_experiment(args.get("--config"), overrides);
  set_threads(config.train.threads);
  const std::string checkpoint = args.get("--checkpoint");
  const std::string out = args.get("--out", "eval.h5");

  runner::PimEvaluator evaluator(config, checkpoint);
  const auto& stop = runner::install_stop_handlers();
  std::printf("model %s: %s N=%d, IR=%d bits, noise %.3g LSB, gain sigma %.3g, offset sigma %.3g LSB, "
              "BN calibration %d batches\n",
              checkpoint.c_str(), std::string(pim::scheme_name(config.pim.scheme)).c_str(),
              config.pim.rows > 0 ? config.pim.rows : pim::default_rows(config.pim.scheme), config.eval.infer_bits, config.eval.noise_sigma, config.eval.gain_sigma,
              config.eval.offset_sigma, config.eval.bn_calibration);
  std::vector<runner::DieOutcome> dies;
  for (int i = 0; i < config.eval.dies; ++i) {
    if (stop.load()) break;
    const auto die = static_cast<std::uint64_t>(config.eval.first_die) + static_cast<std::uint64_t>(i);
    try {
      dies.push_back(evaluator.evaluate_die(config.eval, config.seed, die, &stop));
    } catch (const Interrupted&) {
      break;  // the dies finished before the signal are written below
    }
    const runner::DieOutcome& d = dies.back();
    std::printf("die %llu: accuracy %.2f%%  loss %.4f  rho %.4f  (%.1f s)\n", static_cast<unsigned long long>(d.die),
                100.0 * d.accuracy, d.loss, d.rho_mean, d.seconds);
    std::fflush(stdout);
  }
  if (dies.empty()) return kExitResumable;
  std::vector<double> accuracy;
  for (const auto& d : dies) accuracy.push_back(d.accuracy);
  const runner::DieSummary s = runner::summarize(accuracy);
  std::printf("accuracy over %zu dies: mean %.2f%%  std %.2f  min %.2f%%  p5 %.2f%%  95%% CI [%.2f%%, %.2f%%]\n",
              s.count, 100 * s.mean, 100 * s.stddev, 100 * s.min, 100 * s.p5, 100 * s.ci95_low, 100 * s.ci95_high);
  runner::write_eval_results(out, dies, checkpoint, runner::to_yaml(config));
  std::printf("results: %s\n", out.c_str());
  return static_cast<int>(dies.size()) < config.eval.dies ? kExitResumable : kExitOk;
}

}  // namespace pimqat::cli
