// Images/s of ResNet-20 (batch 128, 1x28x28 by default, 2 threads) for issue 4's closing note, all
// in one process so that the ratios are measured side by side:
//   FP32 training, digital W4A4 QAT training, PIM-QAT training (TR = 4 and 7) and Monte Carlo
//   evaluation (non-ideal die: gain/offset spreads of the paper's chip, thermal noise sigma LSB,
//   IR = 7) next to FP32 inference, for each scheme (bit-serial N = 144, differential N = 144,
//   native N = 9). Two more evaluation rows per scheme split the Monte Carlo row's cost: IR = 7 with
//   the ideal ADC, and with the die's gain/offset spreads but no thermal noise.
// Rounds: every round times `steps` training steps (or evaluation batches) of every row in turn,
// so load changes on a shared machine hit all rows alike. A row's figure is its best round (the
// least disturbed by other processes; the median is printed next to it), and the ratios are of
// best rounds; "rnd ratio" is the median over rounds of the ratio within a round; the per-round
// rates follow. Process CPU time per step gives a second, less
// load-dependent rate (with more than one thread it includes OpenMP's spin-waiting).
// --profile adds the time per phase of the PIM layers (pim/profile.h) for each PIM row, per
// training step or evaluation batch (averaged over all rounds).
//
// usage: pim_speed [--steps S] [--rounds R] [--warmup W] [--threads T] [--batch B] [--size H]
//                  [--channels C] [--noise SIGMA] [--schemes bit-serial,differential,native]
//                  [--only SUBSTRING] [--profile]
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/threads.h"
#include "nn/loss.h"
#include "nn/optimizer.h"
#include "nn/qlayers.h"
#include "nn/resnet.h"
#include "pim/die.h"
#include "pim/kernels/dispatch.h"
#include "pim/pim_conv.h"
#include "pim/profile.h"

namespace {

using namespace pimqat;

struct Options {
  int steps = 2, rounds = 5, warmup = 1, threads = 2, batch = 128, size = 28, channels = 1;
  double noise = 1.0;
  std::vector<Scheme> schemes{Scheme::BitSerial, Scheme::Differential, Scheme::Native};
  std::string only;
  bool profile = false;
};

enum class Kind { Train, Eval };

struct Row {
  std::string name;
  std::string group;  // scheme name, or "" for the FP32 / QAT references
  Kind kind = Kind::Train;
  std::unique_ptr<nn::Sequential> model;
  std::unique_ptr<nn::Sgd> sgd;
  std::vector<double> seconds;      // per round: seconds per step
  std::vector<double> cpu_seconds;  // per round: process CPU seconds per step
  pim::PimProfile profile;
};

struct Workload {
  Tensor x;
  std::vector<std::int32_t> labels;
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// CPU time of the whole process (all threads), which a loaded machine disturbs much less than wall
// time (OpenMP threads that spin while waiting count too).
double cpu_now() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::unique_ptr<nn::Sequential> make_model(const Options& o, nn::LayerFactory& factory) {
  return nn::make_resnet(20, o.channels, 10, factory, RngKey{0, 0, Purpose::WeightInit, 0});
}

void run_step(Row& row, const Workload& work, nn::SoftmaxCrossEntropy& loss) {
  if (row.kind == Kind::Train) {
    const Tensor& logits = row.model->forward(work.x, nn::Mode::Train);
    loss.forward_backward(logits, work.labels);
    row.model->backward(loss.diff_logits());
    // Learning rate 0: the update does all its arithmetic, and the model stays the same (random
    // labels would drive PACT clips to 0 over many rounds).
    row.sgd->step(0.0);
  } else {
    row.model->forward(work.x, nn::Mode::Eval);
  }
}

std::vector<Scheme> parse_schemes(const std::string& text) {
  std::vector<Scheme> out;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t end = std::min(text.find(',', begin), text.size());
    out.push_back(pim::parse_scheme(text.substr(begin, end - begin)));
    begin = end + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--steps") o.steps = std::stoi(next());
    else if (a == "--rounds") o.rounds = std::stoi(next());
    else if (a == "--warmup") o.warmup = std::stoi(next());
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--batch") o.batch = std::stoi(next());
    else if (a == "--size") o.size = std::stoi(next());
    else if (a == "--channels") o.channels = std::stoi(next());
    else if (a == "--noise") o.noise = std::stod(next());
    else if (a == "--schemes") o.schemes = parse_schemes(next());
    else if (a == "--only") o.only = next();
    else if (a == "--profile") o.profile = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--steps S] [--rounds R] [--warmup W] [--threads T] [--batch B] [--size H] "
                   "[--channels C] [--noise SIGMA] [--schemes LIST] [--only SUBSTRING] [--profile]\n",
                   argv[0]);
      return 2;
    }
  }
  set_threads(o.threads);

  Workload work;
  work.x = Tensor(Shape{o.batch, o.channels, o.size, o.size});
  RandomStream stream(RngKey{1, 0, Purpose::Operands, 0});
  for (Index i = 0; i < work.x.size(); ++i) work.x[i] = 2.0f * stream.uniform() - 0.5f;
  work.labels.resize(static_cast<std::size_t>(o.batch));
  for (auto& l : work.labels) l = static_cast<std::int32_t>(stream.below(10));

  std::vector<Row> rows;
  const auto add_row = [&](std::string name, std::string group, Kind kind, nn::LayerFactory& factory) {
    if (!o.only.empty() && name.find(o.only) == std::string::npos && name.rfind("fp32", 0) != 0) return;
    Row row;
    row.name = std::move(name);
    row.group = std::move(group);
    row.kind = kind;
    row.model = make_model(o, factory);
    if (kind == Kind::Train) {
      std::vector<nn::Parameter*> parameters;
      row.model->collect_parameters(parameters);
      row.sgd = std::make_unique<nn::Sgd>(parameters, 0.9, true, 1e-4);
    }
    rows.push_back(std::move(row));
  };
  ModelConfig fp32;
  ModelConfig w4a4;
  w4a4.weight_bits = 4;
  w4a4.act_bits = 4;
  nn::QatLayerFactory fp32_factory(fp32), qat_factory(w4a4);
  add_row("fp32 train", "", Kind::Train, fp32_factory);
  add_row("fp32 infer", "", Kind::Eval, fp32_factory);
  add_row("qat-w4a4 train", "", Kind::Train, qat_factory);

  pim::NonIdeality chip;
  chip.gain_sigma = 0.024;
  chip.offset_sigma = 2.04;
  chip.noise_sigma = o.noise;
  for (Scheme scheme : o.schemes) {
    const std::string s(pim::scheme_name(scheme));
    for (int tr : {4, 7}) {
      pim::PimLayerSettings settings;
      settings.scheme = scheme;
      settings.adc_bits = tr;
      pim::PimLayerFactory factory(w4a4, settings);
      add_row(s + " train TR=" + std::to_string(tr), s, Kind::Train, factory);
    }
    pim::PimLayerSettings settings;
    settings.scheme = scheme;
    settings.adc_bits = 7;
    pim::PimLayerFactory factory(w4a4, settings);
    // Evaluation at IR = 7 three ways, to split its cost: the ideal ADC (no die), the die's
    // gain/offset spreads without thermal noise, and the Monte Carlo row of the issue (with noise).
    pim::NonIdeality quiet = chip;
    quiet.noise_sigma = 0.0;
    const struct {
      std::string name;
      const pim::NonIdeality* die;
    } evals[] = {{s + " eval IR=7 ideal", nullptr}, {s + " eval IR=7 die", &quiet}, {s + " mc-eval IR=7", &chip}};
    for (const auto& e : evals) {
      add_row(e.name, s, Kind::Eval, factory);
      if (rows.empty() || rows.back().name != e.name) continue;
      Row& row = rows.back();
      // A trained model has running rho and BN statistics; one training forward gives plausible ones.
      row.model->forward(work.x, nn::Mode::Train);
      if (!e.die) continue;
      const double t0 = now();
      pim::attach_die(*row.model, std::make_shared<const pim::Die>(7, 1234, 0, *e.die));
      std::printf("# %s: attaching the die (drawing every ADC column) took %.3f s\n", row.name.c_str(), now() - t0);
    }
  }

  std::printf("# pim_speed: ResNet-20, batch %d, %dx%dx%d, %d threads, %d rounds x %d steps (+%d warm-up), "
              "noise %.2f LSB, PIM kernel %s\n",
              o.batch, o.channels, o.size, o.size, o.threads, o.rounds, o.steps, o.warmup, o.noise,
              std::string(pim::kernel_isa_name(pim::active_kernel_isa())).c_str());
  std::fflush(stdout);
  nn::SoftmaxCrossEntropy loss;
  for (Row& row : rows)
    for (int i = 0; i < o.warmup; ++i) run_step(row, work, loss);
  for (int round = 0; round < o.rounds; ++round) {
    for (Row& row : rows) {
      const bool profile = o.profile && !row.group.empty();
      if (profile) {
        pim::reset_pim_profile();
        pim::set_pim_profiling(true);
      }
      const double t0 = now(), c0 = cpu_now();
      for (int i = 0; i < o.steps; ++i) run_step(row, work, loss);
      row.seconds.push_back((now() - t0) / o.steps);
      row.cpu_seconds.push_back((cpu_now() - c0) / o.steps);
      if (profile) {
        pim::set_pim_profiling(false);
        const pim::PimProfile p = pim::pim_profile();
        for (int k = 0; k < pim::kPimPhaseCount; ++k) row.profile.seconds[static_cast<std::size_t>(k)] += p.seconds[static_cast<std::size_t>(k)];
      }
    }
    std::printf("# round %d done\n", round + 1);
    std::fflush(stdout);
  }

  const auto best = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
  const auto images_per_second = [&](const Row& row) { return o.batch / best(row.seconds); };
  const auto find = [&](const std::string& name) -> const Row* {
    for (const Row& r : rows)
      if (r.name == name) return &r;
    return nullptr;
  };
  const Row* train_ref = find("fp32 train");
  const Row* infer_ref = find("fp32 infer");
  const auto cpu_rate = [&](const Row& row) { return o.batch / best(row.cpu_seconds); };
  // The median over rounds of the ratio within each round: rows of one round ran minutes apart at
  // most, so this ratio follows a machine whose speed drifts between rounds better than the ratio
  // of best rounds does.
  const auto round_ratio = [&](const Row& row, const Row& ref) {
    std::vector<double> ratios;
    for (std::size_t r = 0; r < row.seconds.size() && r < ref.seconds.size(); ++r)
      ratios.push_back(ref.seconds[r] / row.seconds[r]);
    return median(ratios);
  };
  std::printf("%-24s %10s %8s %10s %12s %9s %9s   %s\n", "row", "images/s", "ratio", "median", "images/cpu-s",
              "cpu ratio", "rnd ratio", "per round (ratio: to fp32 train for training rows, to fp32 infer for eval rows)");
  for (const Row& row : rows) {
    const Row* ref = row.kind == Kind::Train ? train_ref : infer_ref;
    std::printf("%-24s %10.1f %8.3f %10.1f %12.1f %9.3f %9.3f  ", row.name.c_str(), images_per_second(row),
                images_per_second(row) / images_per_second(*ref), o.batch / median(row.seconds), cpu_rate(row),
                cpu_rate(row) / cpu_rate(*ref), round_ratio(row, *ref));
    for (double s : row.seconds) std::printf(" %.1f", o.batch / s);
    std::printf("\n");
  }
  if (o.profile) {
    std::printf("\n# PIM phases, ms per step (all PIM layers together, mean over rounds; best step time for reference)\n%-28s", "row");
    for (int k = 0; k < pim::kPimPhaseCount; ++k)
      std::printf(" %9.9s", std::string(pim::pim_phase_name(static_cast<pim::PimPhase>(k))).c_str());
    std::printf(" %9s\n", "step");
    for (const Row& row : rows) {
      if (row.group.empty()) continue;
      std::printf("%-28s", row.name.c_str());
      for (int k = 0; k < pim::kPimPhaseCount; ++k)
        std::printf(" %9.1f", 1e3 * row.profile.seconds[static_cast<std::size_t>(k)] / (o.rounds * o.steps));
      std::printf(" %9.1f\n", 1e3 * best(row.seconds));
    }
  }
  return 0;
}
