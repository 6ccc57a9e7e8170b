#include "pim/adc.h"

#include <cmath>
#include <mutex>
#include <numbers>
#include <string>

#include "core/error.h"
#include "pim/gaussian.h"

namespace pimqat::pim {

Adc::Adc(double p_lo, double p_hi, int bits, double clip) {
  if (bits < kMinAdcBits || bits > kMaxAdcBits)
    throw Error("ADC bits = " + std::to_string(bits) + " is outside [" + std::to_string(kMinAdcBits) + ", " +
                std::to_string(kMaxAdcBits) + "]");
  if (!(p_hi > p_lo) || !std::isfinite(p_lo) || !std::isfinite(p_hi))
    throw Error("ADC range [" + std::to_string(p_lo) + ", " + std::to_string(p_hi) + "] is empty or not finite");
  if (!(clip > 0.0 && clip <= 1.0))
    throw Error("ADC clip fraction = " + std::to_string(clip) + " is outside (0, 1]");
  p_lo_ = p_lo;
  p_hi_ = p_hi;
  clip_ = clip;
  full_scale_ = clip == 1.0 ? p_hi : std::fma(clip, p_hi - p_lo, p_lo);
  bits_ = bits;
  max_code_ = (1 << bits) - 1;
  delta_ = (full_scale_ - p_lo_) / static_cast<double>(max_code_);
}

double Adc::value(int code) const {
  const double v = std::fma(delta_, static_cast<double>(code), p_lo_);
  return integer_readout() ? std::round(v) : v;
}

std::int64_t Adc::value_integer(int code) const {
  PIMQAT_ASSERT(integer_readout());
  return static_cast<std::int64_t>(std::round(std::fma(delta_, static_cast<double>(code), p_lo_)));
}

void AdcBank::set_columns(std::vector<ColumnParams> params, CurveModel curve, double curve_strength,
                          std::shared_ptr<const TransferCurves> curves) {
  if (curve == CurveModel::Measured) {
    if (!curves) throw Error("ADC curve model 'measured' needs transfer curves (eval.curve_file)");
    curves->check_matches(adc_.bits(), adc_.p_lo(), adc_.p_hi(), "this PIM layer's ADC");
    for (const auto& p : params)
      if (p.curve < 0 || p.curve >= curves->count())
        throw Error("ADC column assigned to curve " + std::to_string(p.curve) + " of " +
                    std::to_string(curves->count()));
  }
  if (!std::isfinite(curve_strength)) throw Error("ADC curve strength is not finite");
  params_ = std::move(params);
  curve_ = curve;
  curve_strength_ = curve_strength;
  curves_ = std::move(curves);
  cache_ = make_cache();
}

struct AdcBank::TableCache {
  std::mutex mutex;
  bool built = false;
  std::shared_ptr<const AdcTables> tables;
};

std::shared_ptr<AdcBank::TableCache> AdcBank::make_cache() { return std::make_shared<TableCache>(); }

std::shared_ptr<const AdcTables> AdcBank::tables(std::int64_t max_entries) const {
  std::lock_guard lock(cache_->mutex);
  if (cache_->built) {
    const auto& t = cache_->tables;
    return t && t->columns * t->points <= max_entries ? t : nullptr;
  }
  cache_->built = true;
  const double lo = std::floor(adc_.p_lo()), hi = std::floor(adc_.p_hi());
  if (lo != adc_.p_lo() || hi != adc_.p_hi() || hi - lo >= 9.0e15) return nullptr;
  auto t = std::make_shared<AdcTables>();
  t->columns = ideal_columns() ? 1 : column_count();
  t->points = static_cast<std::int64_t>(hi - lo) + 1;
  t->p_lo = static_cast<std::int64_t>(lo);
  if (t->points > max_entries || t->columns > max_entries / t->points) return nullptr;  // too big: never built
  const auto entries = static_cast<std::size_t>(t->columns * t->points);
  t->levels.resize(entries);
  t->codes.resize(entries);
  const std::int64_t columns = t->columns, points = t->points, p_lo = t->p_lo;
  double* levels = t->levels.data();
  std::int32_t* codes = t->codes.data();
#pragma omp parallel for schedule(static) if (columns * points > (std::int64_t{1} << 14))
  for (std::int64_t c = 0; c < columns; ++c)
    for (std::int64_t k = 0; k < points; ++k) {
      const double l = level(c, p_lo + k);
      levels[c * points + k] = l;
      codes[c * points + k] = adc_.code(l);
    }
  cache_->tables = t;
  return t;
}

void AdcBank::set_noise(double sigma, const RandomStream& stream) {
  if (!(sigma >= 0.0) || !std::isfinite(sigma))
    throw Error("thermal noise sigma = " + std::to_string(sigma) + " LSB must be finite and >= 0");
  noise_sigma_ = sigma;
  noise_ = stream;
  noise_words_.reset();
}

void AdcBank::set_noise(double sigma, const RngKey& key) {
  set_noise(sigma, RandomStream(key));
  noise_words_ = PhiloxWords::of(key);
}

double AdcBank::level(std::int64_t column, std::int64_t p) const {
  const auto pd = static_cast<double>(p);
  if (params_.empty()) return adc_.level(pd);
  const ColumnParams& c = params_[static_cast<std::size_t>(column)];
  switch (curve_) {
    case CurveModel::Measured: return curves_->code(c.curve, p);
    case CurveModel::Smooth: {
      const double linear = adc_.level(pd, c.gain, c.offset);
      const double bow = std::sin(std::numbers::pi * linear / static_cast<double>(adc_.max_code()));
      return std::fma(curve_strength_, bow, linear);
    }
    case CurveModel::Linear: break;
  }
  return adc_.level(pd, c.gain, c.offset);
}

double AdcBank::noise(std::uint64_t conversion) const {
  if (!noisy()) return 0.0;
  return noise_sigma_ * thermal_normal_at(noise_, conversion);
}

int AdcBank::convert(std::int64_t column, std::int64_t p, std::uint64_t conversion) const {
  const double noise_free = level(column, p);
  if (!noisy()) return adc_.code(noise_free);
  return adc_.code(std::fma(noise_sigma_, thermal_normal_at(noise_, conversion), noise_free));
}

}  // namespace pimqat::pim
