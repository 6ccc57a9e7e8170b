// `pimqat mac-error`: the computing error of one PIM configuration against the exact product
// (the data of the paper's Figs. 3 and A2), over random operands or a trained layer's operands.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/hdf5.h"
#include "core/threads.h"
#include "core/augment.h"
#include "pim/characterize.h"
#include "pim/kernels/packed.h"
#include "pim/pim_conv.h"
#include "runner/cli/args.h"
#include "runner/cli/commands.h"
#include "runner/config.h"
#include "runner/eval_task.h"

namespace pimqat::cli {

namespace {
constexpr const char* kUsage =
    "usage: pimqat mac-error [--scheme S] [--rows N] [--act-bits A] [--weight-bits W] [--adc-bits LIST]\n"
    "                        [--noise LIST] [--gain-sigma G] [--offset-sigma O] [--clip F] [--dies D]\n"
    "                        [--reduction K] [--pixels P] [--out-channels C] [--seed S]\n"
    "                        [--checkpoint FILE --config CONFIG.yaml --layer NAME [--images B]]\n"
    "                        [--out FILE.h5] [--csv FILE.csv] [--threads T]\n"
    "  RMS computing error of the PIM product y~ against the exact y = sum X W, for every ADC resolution\n"
    "  in LIST (default 3,4,5,6,7,8) and noise sigma in LIST (LSB; default 0), over D dies (default 1).\n"
    "  Columns: rms error in output LSB (one unit of sum X W), mean error, rms / std(y), rho = std(y~)/std(y),\n"
    "  and rms(y~/rho - y) / std(y). Operands: uniform random integers (K x P activations, C x K weights;\n"
    "  defaults K = 576, P = 1024, C = 16; seeded), or, with --checkpoint, the integer input and weights of\n"
    "  the PIM layer NAME of the trained model after a forward pass over B test images (default 16);\n"
    "  the scheme, rows and bit widths are then the model's (config pim: and model: sections).\n"
    "  Defaults: bit-serial, N = scheme default, A = W = 4, clip 1, no gain/offset spread, seed 1.\n";

template <class T>
std::vector<T> parse_list(const std::string& text, const char* flag) {
  std::vector<T> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    std::istringstream one(item);
    T v{};
    if (!(one >> v) || !one.eof()) throw Error(std::string("option ") + flag + ": '" + item + "' is not a number");
    values.push_back(v);
  }
  if (values.empty()) throw Error(std::string("option ") + flag + " needs at least one value");
  return values;
}

double parse_double(const Args& args, const char* flag, double fallback) {
  const std::string v = args.get(flag);
  if (v.empty()) return fallback;
  return parse_list<double>(v, flag).front();
}

}  // namespace

int run_mac_error(int argc, char** argv) {
  const Args args(argc, argv,
                  {"--scheme", "--rows", "--act-bits", "--weight-bits", "--adc-bits", "--noise", "--gain-sigma",
                   "--offset-sigma", "--clip", "--dies", "--reduction", "--pixels", "--out-channels", "--seed",
                   "--checkpoint", "--config", "--layer", "--images", "--out", "--csv", "--threads"},
                  {"--help"});
  if (args.has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (!args.positional().empty()) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  set_threads(args.get_int("--threads", 0));
  const std::vector<int> adc_bits = parse_list<int>(args.get("--adc-bits", "3,4,5,6,7,8"), "--adc-bits");
  const std::vector<double> noises = parse_list<double>(args.get("--noise", "0"), "--noise");
  const double clip = parse_double(args, "--clip", 1.0);
  const int dies = args.get_int("--dies", 1);
  if (dies < 1) throw Error("--dies must be at least 1");
  const auto seed = static_cast<std::uint64_t>(args.get_int("--seed", 1));
  pim::NonIdeality base;
  base.gain_sigma = parse_double(args, "--gain-sigma", 0.0);
  base.offset_sigma = parse_double(args, "--offset-sigma", 0.0);

  pim::Decomposition d;
  pim::PackedActivations x;
  pim::PackedWeights w;
  Index reduction = 0, out_channels = 0, image_pixels = 0;
  std::string source;
  if (args.has("--checkpoint")) {
    if (args.get("--config").empty() || args.get("--layer").empty())
      throw Error("--checkpoint needs --config CONFIG.yaml and --layer NAME");
    const ExperimentConfig config = runner::load_experiment(args.get("--config"));
    runner::PimEvaluator evaluator(config, args.get("--checkpoint"));
    pim::PimConv2d* layer = nullptr;
    std::string names;
    for (pim::PimConv2d* l : pim::pim_layers(evaluator.model())) {
      names += (names.empty() ? "" : ", ") + l->name();
      if (l->name() == args.get("--layer")) layer = l;
    }
    if (!layer) throw Error("no PIM layer '" + args.get("--layer") + "' in the model (PIM layers: " + names + ")");
    const int images = args.get_int("--images", 16);
    const Dataset& test = evaluator.data().test;
    if (images < 1 || images > test.size()) throw Error("--images must be in 1.." + std::to_string(test.size()));
    // One forward pass (ideal ADCs at eval.infer_bits) leaves the layer's integer operands in place.
    std::vector<std::uint32_t> indices(static_cast<std::size_t>(images));
    for (int i = 0; i < images; ++i) indices[static_cast<std::size_t>(i)] = static_cast<std::uint32_t>(i);
    Tensor batch;
    std::vector<std::int32_t> labels;
    make_batch(test, indices.data(), images, evaluator.normalization(), nullptr, 0, batch, labels);
    evaluator.model().forward(batch, nn::Mode::Eval);
    d = layer->decomposition();
    // X in NCHW (a layer inside a basic block ran on the blocked layout).
    Tensor xi_nchw;
    if (layer->layout() == nn::Layout::Blocked) nn::to_nchw(layer->input_integers(), xi_nchw);
    const Tensor& xi = layer->layout() == nn::Layout::Blocked ? xi_nchw : layer->input_integers();
    const Tensor& wi = layer->weight_integers();
    const nn::ConvGeometry& g = layer->geometry();
    const pim::Im2colGeometry im{xi.dim(0), xi.dim(1), xi.dim(2), xi.dim(3), static_cast<int>(g.kernel),
                                 static_cast<int>(g.kernel), static_cast<int>(g.stride), static_cast<int>(g.padding)};
    reduction = im.reduction();
    out_channels = g.out_channels;
    image_pixels = im.out_height() * im.out_width();
    pim::pack_activations(d, im, xi.data(), x);
    pim::pack_weights(d, wi.data(), reduction, out_channels, w);
    source = "checkpoint " + args.get("--checkpoint") + " layer " + layer->name();
  } else {
    d.scheme = pim::parse_scheme(args.get("--scheme", "bit-serial"));
    d.rows = args.get_int("--rows", pim::default_rows(d.scheme));
    d.act_bits = args.get_int("--act-bits", 4);
    d.weight_bits = args.get_int("--weight-bits", 4);
    d.validate();
    reduction = args.get_int("--reduction", 576);
    const Index pixels = args.get_int("--pixels", 1024);
    out_channels = args.get_int("--out-channels", 16);
    if (reduction < 1 || pixels < 1 || out_channels < 1)
      throw Error("--reduction, --pixels and --out-channels must be positive");
    RandomStream r(RngKey{seed, 0, Purpose::Operands, 0});
    std::vector<std::int32_t> xs(static_cast<std::size_t>(reduction * pixels)), ws(static_cast<std::size_t>(out_channels * reduction));
    for (auto& v : xs) v = static_cast<std::int32_t>(r.below(static_cast<std::uint32_t>(d.max_activation() + 1)));
    for (auto& v : ws)
      v = d.min_weight() + static_cast<std::int32_t>(r.below(static_cast<std::uint32_t>(d.max_weight() - d.min_weight() + 1)));
    pim::pack_activations(d, xs.data(), reduction, pixels, x);
    pim::pack_weights(d, ws.data(), reduction, out_channels, w);
    image_pixels = pixels;
    source = "uniform random integers, seed " + std::to_string(seed);
  }

  const auto outputs = static_cast<std::size_t>(x.pixels * out_channels);
  std::vector<double> pim_out(outputs);
  std::vector<std::int64_t> exact(outputs);
  std::printf("%s, K = %lld, C_out = %lld, %lld outputs; operands: %s\n", d.str().c_str(),
              static_cast<long long>(reduction), static_cast<long long>(out_channels),
              static_cast<long long>(outputs), source.c_str());
  std::printf("%8s %8s %5s %14s %12s %12s %8s %14s\n", "adc_bits", "noise", "dies", "rms_error_lsb", "mean_error",
              "rms/std(y)", "rho", "rescaled_rms");
  H5Table table;
  std::vector<std::int64_t> col_bits, col_dies;
  std::vector<double> col_noise, col_rms, col_mean, col_rel, col_rho, col_rescaled, col_std;
  for (int bits : adc_bits) {
    const pim::Adc adc(d.p_lo(), d.p_hi(), bits, clip);
    for (double noise : noises) {
      pim::NonIdeality settings = base;
      settings.noise_sigma = noise;
      std::vector<double> all_pim;
      std::vector<std::int64_t> all_exact;
      for (int die_index = 0; die_index < dies; ++die_index) {
        const pim::Die die(seed, 0, static_cast<std::uint64_t>(die_index), settings);
        pim::AdcBank bank = die.bank(0, adc, d.columns(reduction, out_channels));
        die.set_noise(bank, 0, 0);
        pim::packed_pim_gemm(d, bank, x, w, reduction, out_channels, image_pixels, pim_out.data(), exact.data());
        all_pim.insert(all_pim.end(), pim_out.begin(), pim_out.end());
        all_exact.insert(all_exact.end(), exact.begin(), exact.end());
      }
      const pim::MacErrorStats s = pim::mac_error(all_pim, all_exact);
      std::printf("%8d %8.3g %5d %14.4g %12.4g %12.4g %8.4f %14.4g\n", bits, noise, dies, s.rms_error, s.mean_error,
                  s.relative_rms, s.rho, s.rescaled_relative_rms);
      col_bits.push_back(bits);
      col_dies.push_back(dies);
      col_noise.push_back(noise);
      col_rms.push_back(s.rms_error);
      col_mean.push_back(s.mean_error);
      col_rel.push_back(s.relative_rms);
      col_rho.push_back(s.rho);
      col_rescaled.push_back(s.rescaled_relative_rms);
      col_std.push_back(s.exact_std);
    }
  }
  table.add("adc_bits", col_bits);
  table.add("noise_sigma", col_noise);
  table.add("dies", col_dies);
  table.add("rms_error_lsb", col_rms);
  table.add("mean_error_lsb", col_mean);
  table.add("relative_rms", col_rel);
  table.add("rho", col_rho);
  table.add("rescaled_relative_rms", col_rescaled);
  table.add("exact_std", col_std);
  if (args.has("--out")) {
    write_h5_atomically(args.get("--out"), [&](H5File& file) {
      file.set_attr_string("kind", "pimqat-mac-error");
      file.set_attr_string("scheme", std::string(pim::scheme_name(d.scheme)));
      file.set_attr_int("rows", d.rows);
      file.set_attr_int("act_bits", d.act_bits);
      file.set_attr_int("weight_bits", d.weight_bits);
      file.set_attr_int("reduction", reduction);
      file.set_attr_int("out_channels", out_channels);
      file.set_attr_int("outputs", static_cast<std::int64_t>(outputs));
      file.set_attr_double("adc_clip", clip);
      file.set_attr_double("gain_sigma", base.gain_sigma);
      file.set_attr_double("offset_sigma", base.offset_sigma);
      file.set_attr_string("operands", source);
      write_table(file, "mac_error", table);
    });
    std::printf("results: %s\n", args.get("--out").c_str());
  }
  if (args.has("--csv")) {
    std::ofstream csv(args.get("--csv"));
    if (!csv) throw Error("cannot create '" + args.get("--csv") + "'");
    csv.precision(10);
    csv << "scheme,rows,act_bits,weight_bits,adc_bits,noise_sigma,dies,rms_error_lsb,mean_error_lsb,relative_rms,rho,"
           "rescaled_relative_rms,exact_std\n";
    for (std::size_t i = 0; i < col_bits.size(); ++i)
      csv << pim::scheme_name(d.scheme) << ',' << d.rows << ',' << d.act_bits << ',' << d.weight_bits << ','
          << col_bits[i] << ',' << col_noise[i] << ',' << col_dies[i] << ',' << col_rms[i] << ',' << col_mean[i] << ','
          << col_rel[i] << ',' << col_rho[i] << ',' << col_rescaled[i] << ',' << col_std[i] << '\n';
    if (!csv) throw Error("write to '" + args.get("--csv") + "' failed");
  }
  return kExitOk;
}

}  // namespace pimqat::cli
