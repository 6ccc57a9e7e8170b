#include "pim/characterize.h"

#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"

namespace pimqat::pim {

MacErrorStats mac_error(const std::vector<double>& pim, const std::vector<std::int64_t>& exact) {
  if (pim.size() != exact.size()) throw Error("mac_error: " + std::to_string(pim.size()) + " PIM outputs for " +
                                              std::to_string(exact.size()) + " exact ones");
  MacErrorStats s;
  s.outputs = static_cast<std::int64_t>(pim.size());
  if (pim.empty()) return s;
  const auto n = static_cast<double>(pim.size());
  double pim_mean = 0, exact_mean = 0;
  for (std::size_t i = 0; i < pim.size(); ++i) {
    pim_mean += pim[i];
    exact_mean += static_cast<double>(exact[i]);
  }
  pim_mean /= n;
  exact_mean /= n;
  double pim_var = 0, exact_var = 0, squared = 0, sum = 0;
  for (std::size_t i = 0; i < pim.size(); ++i) {
    const double e = static_cast<double>(exact[i]);
    pim_var += (pim[i] - pim_mean) * (pim[i] - pim_mean);
    exact_var += (e - exact_mean) * (e - exact_mean);
    squared += (pim[i] - e) * (pim[i] - e);
    sum += pim[i] - e;
  }
  s.exact_std = std::sqrt(exact_var / n);
  s.rms_error = std::sqrt(squared / n);
  s.mean_error = sum / n;
  const double pim_std = std::sqrt(pim_var / n);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.rho = (s.exact_std > 0 && pim_std > 0) ? pim_std / s.exact_std : 1.0;
  s.relative_rms = s.exact_std > 0 ? s.rms_error / s.exact_std : nan;
  double rescaled = 0;
  for (std::size_t i = 0; i < pim.size(); ++i) {
    const double d = pim[i] / s.rho - static_cast<double>(exact[i]);
    rescaled += d * d;
  }
  s.rescaled_relative_rms = s.exact_std > 0 ? std::sqrt(rescaled / n) / s.exact_std : nan;
  return s;
}

double mean_code(const Adc& adc, double level, double sigma) {
  if (!(sigma > 0.0)) return adc.code(level);
  double sum = 0;
  const double scale = 1.0 / (sigma * std::sqrt(2.0));
  for (int k = 1; k <= adc.max_code(); ++k) sum += 0.5 * std::erfc(-(level + 0.5 - k) * scale);
  return sum;
}

TransferCurves die_transfer_curves(const Decomposition& decomposition, const Adc& adc, const NonIdeality& settings,
                                   std::uint64_t seed, std::uint64_t model, std::uint64_t first_die, int dies,
                                   std::int64_t columns, std::uint64_t layer, std::vector<std::int64_t>* die_of,
                                   std::vector<std::int64_t>* column_of) {
  decomposition.validate();
  if (settings.curve == CurveModel::Measured)
    throw Error("transfer curves of simulated dies need curve model linear or smooth (measured curves are the input, not the output)");
  if (dies < 1 || columns < 1)
    throw Error("transfer curves need at least one die and one column (got " + std::to_string(dies) + " and " +
                std::to_string(columns) + ")");
  const auto p_lo = static_cast<std::int64_t>(decomposition.p_lo()), p_hi = static_cast<std::int64_t>(decomposition.p_hi());
  std::vector<std::string> names;
  std::vector<std::vector<double>> codes;
  if (die_of) die_of->clear();
  if (column_of) column_of->clear();
  NonIdeality columns_only = settings;
  columns_only.noise_sigma = 0.0;
  for (int i = 0; i < dies; ++i) {
    const std::uint64_t d = first_die + static_cast<std::uint64_t>(i);
    const Die die(seed, model, d, columns_only);
    AdcBank bank(adc);
    if (!settings.ideal_columns()) bank = die.bank(layer, adc, columns);
    for (std::int64_t c = 0; c < columns; ++c) {
      std::vector<double> curve(static_cast<std::size_t>(p_hi - p_lo + 1));
      for (std::int64_t p = p_lo; p <= p_hi; ++p)
        curve[static_cast<std::size_t>(p - p_lo)] = mean_code(adc, bank.level(c, p), settings.noise_sigma);
      names.push_back("die" + std::to_string(d) + "_col" + std::to_string(c));
      codes.push_back(std::move(curve));
      if (die_of) die_of->push_back(static_cast<std::int64_t>(d));
      if (column_of) column_of->push_back(c);
    }
  }
  return TransferCurves(adc.bits(), p_lo, p_hi, std::move(names), std::move(codes), "simulated transfer curves");
}

}  // namespace pimqat::pim
