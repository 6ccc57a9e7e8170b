#include "pim/die.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "pim/gaussian.h"

namespace pimqat::pim {

void NonIdeality::validate() const {
  std::vector<std::string> problems;
  const auto check_sigma = [&](double v, const char* name) {
    if (!std::isfinite(v) || v < 0.0)
      problems.push_back(std::string(name) + " = " + std::to_string(v) + " must be finite and >= 0");
  };
  check_sigma(gain_sigma, "gain_sigma");
  check_sigma(offset_sigma, "offset_sigma");
  check_sigma(noise_sigma, "noise_sigma");
  if (!std::isfinite(curve_strength)) problems.push_back("curve_strength is not finite");
  if (curve != CurveModel::Linear && curve != CurveModel::Smooth && curve != CurveModel::Measured)
    problems.push_back("unknown curve model (valid: linear, smooth, measured)");
  if (curve == CurveModel::Measured && !curves)
    problems.push_back("curve model 'measured' needs a transfer-curve file (curve_file)");
  if (problems.empty()) return;
  std::string message = "invalid non-ideal ADC settings:";
  for (const auto& p : problems) message += "\n  - " + p;
  throw Error(message);
}

NonIdeality NonIdeality::from_config(const EvalConfig& eval) {
  NonIdeality n;
  n.gain_sigma = eval.gain_sigma;
  n.offset_sigma = eval.offset_sigma;
  n.noise_sigma = eval.noise_sigma;
  n.curve = eval.curve;
  n.curve_strength = eval.curve_strength;
  if (eval.curve == CurveModel::Measured) {
    if (eval.curve_file.empty()) throw Error("eval.curve = measured needs eval.curve_file");
    n.curves = std::make_shared<const TransferCurves>(TransferCurves::load(eval.curve_file));
  }
  n.validate();
  return n;
}

Die::Die(std::uint64_t seed, std::uint64_t model, std::uint64_t index, NonIdeality settings)
    : seed_(seed), model_(model), index_(index), settings_(std::move(settings)),
      parameters_(RngKey{seed, model, Purpose::DieParameters, index}) {
  settings_.validate();
}

ColumnParams Die::column(std::uint64_t layer, std::uint64_t column) const {
  PIMQAT_ASSERT(layer < kMaxLayers && column < kMaxColumnsPerLayer);
  const PhiloxBlock block = parameters_.block((layer << 40) | column);
  const GaussianPair z = gaussian_pair(block[0], block[1]);
  ColumnParams p;
  p.gain = std::fma(settings_.gain_sigma, static_cast<double>(z.z0), 1.0);
  p.offset = settings_.offset_sigma * static_cast<double>(z.z1);
  if (settings_.curves)
    p.curve = static_cast<std::int64_t>((std::uint64_t{block[2]} * static_cast<std::uint64_t>(settings_.curves->count())) >> 32);
  return p;
}

AdcBank Die::bank(std::uint64_t layer, const Adc& adc, std::int64_t columns) const {
  if (layer >= kMaxLayers) throw Error("PIM layer number " + std::to_string(layer) + " is too large for die sampling");
  if (columns < 0 || static_cast<std::uint64_t>(columns) > kMaxColumnsPerLayer)
    throw Error("PIM layer " + std::to_string(layer) + " has too many ADC columns (" + std::to_string(columns) + ")");
  AdcBank bank(adc);
  if (!settings_.ideal_columns()) {
    std::vector<ColumnParams> params(static_cast<std::size_t>(columns));
    for (std::int64_t c = 0; c < columns; ++c) params[static_cast<std::size_t>(c)] = column(layer, static_cast<std::uint64_t>(c));
    bank.set_columns(std::move(params), settings_.curve, settings_.curve_strength, settings_.curves);
  }
  return bank;
}

RngKey Die::noise_key(std::uint64_t layer, std::uint64_t forward_call) const {
  return RngKey{seed_, model_, Purpose::ThermalNoise, mix64(index_ ^ mix64(layer ^ mix64(forward_call)))};
}

RandomStream Die::noise_stream(std::uint64_t layer, std::uint64_t forward_call) const {
  return RandomStream(noise_key(layer, forward_call));
}

void Die::set_noise(AdcBank& bank, std::uint64_t layer, std::uint64_t forward_call) const {
  if (settings_.noise_sigma > 0.0)
    bank.set_noise(settings_.noise_sigma, noise_key(layer, forward_call));
  else
    bank.clear_noise();
}

}  // namespace pimqat::pim
