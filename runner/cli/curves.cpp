// `pimqat curves`: transfer curves of simulated dies (the paper's Fig. A7) in the transfer-curve
// file format (docs/curves-format.md), so they can be plotted or fed back as measured curves.
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "core/hdf5.h"
#include "pim/characterize.h"
#include "runner/cli/args.h"
#include "runner/cli/commands.h"

namespace pimqat::cli {

namespace {
constexpr const char* kUsage =
    "usage: pimqat curves --out FILE.(csv|h5) [--scheme S] [--rows N] [--act-bits A] [--weight-bits W]\n"
    "                     [--adc-bits B] [--clip F] [--dies D] [--first-die I] [--columns C]\n"
    "                     [--gain-sigma G] [--offset-sigma O] [--curve linear|smooth] [--curve-strength A]\n"
    "                     [--noise S] [--seed S] [--model ID] [--layer L]\n"
    "  Writes, for each of D simulated dies (ids I .. I+D-1) and each of the first C ADC columns of PIM\n"
    "  layer L, the mean output code at every integer partial sum p of the scheme's range (with thermal\n"
    "  noise S LSB, the exact expectation). Dies are keyed like evaluation dies: (seed, model id, die).\n"
    "  Defaults: bit-serial, N = scheme default, A = W = 4, B = 7, clip 1, D = 4, I = 0, C = 8, the\n"
    "  paper's chip (G = 0.024, O = 2.04 LSB), linear curve, S = 0, seed 1, model 0, layer 0.\n";

double number(const Args& args, const char* flag, double fallback) {
  const std::string v = args.get(flag);
  if (v.empty()) return fallback;
  std::istringstream in(v);
  double x = 0;
  if (!(in >> x) || !in.eof()) throw Error(std::string("option ") + flag + " needs a number, got '" + v + "'");
  return x;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int run_curves(int argc, char** argv) {
  const Args args(argc, argv,
                  {"--out", "--scheme", "--rows", "--act-bits", "--weight-bits", "--adc-bits", "--clip", "--dies",
                   "--first-die", "--columns", "--gain-sigma", "--offset-sigma", "--curve", "--curve-strength",
                   "--noise", "--seed", "--model", "--layer"},
                  {"--help"});
  if (args.has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  const std::string out = args.get("--out");
  if (!args.positional().empty() || out.empty()) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  const bool csv = ends_with(out, ".csv");
  if (!csv && !ends_with(out, ".h5") && !ends_with(out, ".hdf5"))
    throw Error("--out must end in .csv, .h5 or .hdf5 (got '" + out + "')");
  pim::Decomposition d;
  d.scheme = pim::parse_scheme(args.get("--scheme", "bit-serial"));
  d.rows = args.get_int("--rows", pim::default_rows(d.scheme));
  d.act_bits = args.get_int("--act-bits", 4);
  d.weight_bits = args.get_int("--weight-bits", 4);
  d.validate();
  const pim::Adc adc(d.p_lo(), d.p_hi(), args.get_int("--adc-bits", 7), number(args, "--clip", 1.0));
  pim::NonIdeality settings;
  settings.gain_sigma = number(args, "--gain-sigma", 0.024);
  settings.offset_sigma = number(args, "--offset-sigma", 2.04);
  settings.noise_sigma = number(args, "--noise", 0.0);
  const std::string curve = args.get("--curve", "linear");
  if (curve == "smooth") settings.curve = CurveModel::Smooth;
  else if (curve != "linear") throw Error("--curve must be linear or smooth (got '" + curve + "')");
  settings.curve_strength = number(args, "--curve-strength", 0.0);
  settings.validate();
  const int dies = args.get_int("--dies", 4), columns = args.get_int("--columns", 8);
  const int first_die = args.get_int("--first-die", 0), layer = args.get_int("--layer", 0);
  if (first_die < 0 || layer < 0) throw Error("--first-die and --layer must be >= 0");
  const std::string model_text = args.get("--model", "0");
  std::uint64_t model = 0;
  try {
    std::size_t used = 0;
    model = std::stoull(model_text, &used, 0);
    if (used != model_text.size()) throw Error("");
  } catch (const std::exception&) {
    throw Error("--model needs a 64-bit model id (decimal or 0x hex), got '" + model_text + "'");
  }
  const auto seed = static_cast<std::uint64_t>(args.get_int("--seed", 1));

  std::vector<std::int64_t> die_of, column_of;
  const pim::TransferCurves curves = pim::die_transfer_curves(
      d, adc, settings, seed, model, static_cast<std::uint64_t>(first_die), dies, columns,
      static_cast<std::uint64_t>(layer), &die_of, &column_of);
  if (csv) {
    curves.save_csv(out);
  } else {
    curves.save_hdf5(out, [&](H5File& file) {
      file.write("die", die_of);
      file.write("column", column_of);
      file.set_attr_string("scheme", std::string(pim::scheme_name(d.scheme)));
      file.set_attr_int("rows", d.rows);
      file.set_attr_double("adc_clip", adc.clip());
      file.set_attr_double("gain_sigma", settings.gain_sigma);
      file.set_attr_double("offset_sigma", settings.offset_sigma);
      file.set_attr_double("noise_sigma", settings.noise_sigma);
      file.set_attr_string("curve", curve);
      file.set_attr_double("curve_strength", settings.curve_strength);
      file.set_attr_int("seed", static_cast<std::int64_t>(seed));
      file.set_attr_int("layer", layer);
    });
  }
  std::printf("%lld curves (%d dies x %d columns) of %s, %d-bit ADC over p = %lld..%lld: %s\n",
              static_cast<long long>(curves.count()), dies, columns, d.str().c_str(), adc.bits(),
              static_cast<long long>(curves.p_lo()), static_cast<long long>(curves.p_hi()), out.c_str());
  return kExitOk;
}

}  // namespace pimqat::cli
