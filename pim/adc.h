#pragma once
// The ADC model (DESIGN.md 2.3).
//
// Ideal converter over [p_lo, p_hi'] with b bits, where p_hi' = p_lo + clip (p_hi - p_lo) and
// clip in (0, 1] (clip < 1 ranges the ADC below the theoretical maximum):
//   Delta = (p_hi' - p_lo) / (2^b - 1)
//   level(p) = gamma (p - p_lo) / Delta + o            (code units; ideal: gamma = 1, o = 0)
//   code  = clamp(floor(level + eps + 1/2), 0, 2^b - 1) (round half up; after the clamp this equals
//                                                       round-half-away-from-zero)
//   Q(p)  = p_lo + Delta code                          (Delta > 1)
//   Q(p)  = round(p_lo + Delta code)                   (Delta <= 1: integer read-out, see below)
// Non-ideal columns (one die, pim/die.h): gain gamma ~ N(1, sigma_gamma) and offset o ~ N(0,
// sigma_o) in LSB per physical column, thermal noise eps = sigma z_j in LSB per conversion j, z_j the
// standard normal of pim/gaussian.h (Q(U) from the noise stream's words), added as
// fma(sigma, z_j, level).
// Curve models, applied to the noise-free level before eps is added:
//   linear:   level as above
//   smooth:   level' = level + a sin(pi level / (2^b - 1))  -- a bow that is 0 at both ends of the
//             code range and +a LSB at mid-range (a = curve_strength, in LSB, any sign)
//   measured: level = the column's measured mean code at p (pim/curves.h); gamma and o are not
//             applied (a measured curve already contains its column's gain and offset).
//
// Integer read-out and losslessness. Partial sums are integers. When Delta <= 1 (that is
// 2^b - 1 >= p_hi' - p_lo) the converter resolves every integer: for the ideal ADC,
// |p_lo + Delta code(p) - p| <= Delta/2 < 1/2 for every integer p in [p_lo, p_hi'] (Delta < 1) or
// = 0 (Delta = 1 exactly, i.e. 2^b - 1 = p_hi' - p_lo), so rounding the reconstructed value to the
// nearest integer returns p. pimqat's digital back-end does this rounding whenever Delta <= 1 (for
// non-ideal columns too, so Q stays integer-valued and continuous in sigma). Hence: with clip = 1,
// b >= log2(p_hi - p_lo + 1) and an ideal ADC, Q is the identity on every reachable partial sum and
// a PIM layer equals the exact integer GEMM bit for bit (lossless()). When Delta > 1, Q is the
// literal p_lo + Delta code.
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/rng.h"
#include "nn/config.h"
#include "pim/curves.h"
#include "pim/kernels/noise.h"

namespace pimqat::pim {

using ::pimqat::CurveModel;

inline constexpr int kMinAdcBits = 1;
inline constexpr int kMaxAdcBits = 16;

class Adc {
 public:
  Adc() = default;
  // Throws pimqat::Error for bits outside [1, 16], p_hi <= p_lo, or clip outside (0, 1].
  Adc(double p_lo, double p_hi, int bits, double clip = 1.0);

  double p_lo() const { return p_lo_; }
  double p_hi() const { return p_hi_; }            // theoretical full range (before clip)
  double full_scale() const { return full_scale_; }  // p_hi' = p_lo + clip (p_hi - p_lo)
  double clip() const { return clip_; }
  int bits() const { return bits_; }
  int max_code() const { return max_code_; }  // 2^b - 1
  double delta() const { return delta_; }
  bool integer_readout() const { return delta_ <= 1.0; }
  // Ideal and lossless: Q(p) = p for every integer p in [p_lo, p_hi].
  bool lossless() const { return integer_readout() && clip_ == 1.0; }

  // gamma (p - p_lo) / Delta + o, in double, evaluated in exactly this order.
  double level(double p, double gain = 1.0, double offset = 0.0) const { return gain * (p - p_lo_) / delta_ + offset; }
  // clamp(floor(level + 1/2), 0, 2^b - 1).
  int code(double level) const {
    const double c = std::floor(level + 0.5);
    return c <= 0.0 ? 0 : (c >= max_code_ ? max_code_ : static_cast<int>(c));
  }
  // Q for a code (see the header comment); value_integer only when integer_readout().
  double value(int code) const;
  std::int64_t value_integer(int code) const;
  // The ideal converter: Q(p).
  double quantize(double p) const { return value(code(level(p))); }

 private:
  double p_lo_ = 0, p_hi_ = 1, full_scale_ = 1, clip_ = 1, delta_ = 1;
  int bits_ = 1, max_code_ = 1;
};

// Noise-free levels and codes of every column at every integer partial sum p in [p_lo, p_hi]:
// levels[column * points + p - p_lo] = AdcBank::level(column, p), codes[...] = adc().code(level);
// one column (columns = 1) when the bank's columns are ideal. Used by the fast kernels.
struct AdcTables {
  std::int64_t columns = 0, points = 0, p_lo = 0;
  std::vector<double> levels;
  std::vector<std::int32_t> codes;
};

// One physical ADC column's fixed parameters on one die.
struct ColumnParams {
  double gain = 1.0;        // gamma
  double offset = 0.0;      // o, LSB
  std::int64_t curve = 0;   // measured curve assigned to this column (CurveModel::Measured)
};

// The ADCs of one PIM layer (ideal, or the columns of one die) and the thermal-noise stream of one
// forward call. Column numbering as Decomposition::columns(); conversion numbering is chosen by the
// kernel (pim/kernels/reference.h) and only has to be a fixed function of the conversion.
class AdcBank {
 public:
  AdcBank() = default;
  explicit AdcBank(const Adc& adc) : adc_(adc) {}  // ideal columns, no noise

  const Adc& adc() const { return adc_; }
  // Non-ideal columns: params.size() must equal the layer's column count. Measured curves must
  // match the ADC (bits and range); throws pimqat::Error otherwise.
  void set_columns(std::vector<ColumnParams> params, CurveModel curve, double curve_strength,
                   std::shared_ptr<const TransferCurves> curves);
  void set_noise(double sigma, const RandomStream& stream);  // sigma in LSB; 0 = off
  // The same with the stream's key, which also lets the fast kernels generate the noise in bulk
  // (noise_words()).
  void set_noise(double sigma, const RngKey& key);
  void clear_noise() { noise_sigma_ = 0.0; }

  bool ideal_columns() const { return params_.empty(); }
  bool noisy() const { return noise_sigma_ > 0.0; }
  bool ideal() const { return ideal_columns() && !noisy(); }
  std::int64_t column_count() const { return static_cast<std::int64_t>(params_.size()); }
  const ColumnParams& column(std::int64_t c) const { return params_[static_cast<std::size_t>(c)]; }
  CurveModel curve() const { return curve_; }
  double curve_strength() const { return curve_strength_; }
  double noise_sigma() const { return noise_sigma_; }
  const RandomStream& noise_stream() const { return noise_; }
  // The Philox words of the noise stream when it was set from a key (and they check out).
  const std::optional<PhiloxWords>& noise_words() const { return noise_words_; }

  // The tables of AdcTables, built on first use (thread-safe) and shared by copies of this bank
  // until set_columns(); nullptr when they would hold more than `max_entries` entries or the
  // partial-sum range is not integral.
  std::shared_ptr<const AdcTables> tables(std::int64_t max_entries) const;

  // Noise-free level of column c at partial sum p (code units; DESIGN.md 2.3 and the curve model).
  double level(std::int64_t column, std::int64_t p) const;
  // Thermal noise of conversion j in LSB: sigma * thermal_normal_at(stream, j) (0 when noise is off).
  double noise(std::uint64_t conversion) const;
  // The code of one conversion: adc().code(fma(sigma, z_j, level(column, p))), z_j =
  // thermal_normal_at(noise stream, j) (pim/gaussian.h; the fused multiply-add is part of the
  // definition). Always the definition itself (both Philox words and Q): the kernels' fast
  // decision is checked against it.
  int convert(std::int64_t column, std::int64_t p, std::uint64_t conversion) const;

 private:
  Adc adc_;
  std::vector<ColumnParams> params_;
  CurveModel curve_ = CurveModel::Linear;
  double curve_strength_ = 0.0;
  std::shared_ptr<const TransferCurves> curves_;
  double noise_sigma_ = 0.0;
  RandomStream noise_;
  std::optional<PhiloxWords> noise_words_;
  struct TableCache;
  std::shared_ptr<TableCache> cache_ = make_cache();
  static std::shared_ptr<TableCache> make_cache();
};

}  // namespace pimqat::pim
