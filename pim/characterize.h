#pragma once
// Characterization of a PIM configuration without a network: the computing error of the PIM
// product against the exact one (the data of the paper's Figs. 3 and A2, `pimqat mac-error`), and
// the transfer curves of simulated dies (Fig. A7, `pimqat curves`).
#include <cstdint>
#include <vector>

#include "pim/adc.h"
#include "pim/curves.h"
#include "pim/die.h"
#include "pim/scheme.h"

namespace pimqat::pim {

// Error of y~ against the exact y over n outputs, in units of the exact integer product (one unit
// of sum X W, "output LSB"):
//   error = y~ - y;  rms_error = sqrt(mean error^2);  mean_error = mean error;
//   rho = std(y~) / std(y);  relative_rms = rms_error / std(y);
//   rescaled_relative_rms = rms(y~ / rho - y) / std(y)   (after the rescaling of DESIGN.md 2.4)
// std is the population standard deviation; rho = 1 and the relative errors are NaN when std(y) = 0.
struct MacErrorStats {
  std::int64_t outputs = 0;
  double exact_std = 0;
  double rms_error = 0;
  double mean_error = 0;
  double relative_rms = 0;
  double rho = 1;
  double rescaled_relative_rms = 0;
};
MacErrorStats mac_error(const std::vector<double>& pim, const std::vector<std::int64_t>& exact);

// Mean output code of an ADC whose noise-free level is `level` under Gaussian thermal noise sigma
// (LSB): E[clamp(floor(level + eps + 1/2), 0, 2^b - 1)] = sum_{k=1}^{2^b-1} Phi((level + 1/2 - k) / sigma);
// with sigma = 0 it is adc.code(level).
double mean_code(const Adc& adc, double level, double sigma);

// Transfer curves of simulated dies: curve (die d, column c), for d = first_die .. first_die +
// dies - 1 and c = 0 .. columns - 1 of PIM layer `layer`, is the mean code (under
// settings.noise_sigma) at every integer p in [p_lo, p_hi] of the decomposition's range, with
// that column's gain/offset/curve (pim/die.h). Curves are named "die<d>_col<c>"; die_of and
// column_of (if given) receive each curve's die and column. Throws pimqat::Error for the measured
// curve model, or when a curve comes out decreasing (a smooth non-linearity stronger than
// (2^b - 1)/pi LSB, or a negative gain).
TransferCurves die_transfer_curves(const Decomposition& decomposition, const Adc& adc, const NonIdeality& settings,
                                   std::uint64_t seed, std::uint64_t model, std::uint64_t first_die, int dies,
                                   std::int64_t columns, std::uint64_t layer, std::vector<std::int64_t>* die_of = nullptr,
                                   std::vector<std::int64_t>* column_of = nullptr);

}  // namespace pimqat::pim
