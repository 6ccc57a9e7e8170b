// Tests of pim/adc.h: hand-computed ideal conversions, clipping, the lossless conditions, the
// non-ideal level (gain, offset, smooth curve) and thermal-noise statistics.
#include "pim/adc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace pimqat::pim {
namespace {

TEST(Adc, IdealHandComputed) {
  const Adc adc(0, 144, 4);  // Delta = 144/15 = 9.6
  EXPECT_DOUBLE_EQ(adc.delta(), 9.6);
  EXPECT_FALSE(adc.integer_readout());
  EXPECT_EQ(adc.code(adc.level(4)), 0);    // 0.4167 -> 0
  EXPECT_EQ(adc.code(adc.level(5)), 1);    // 0.5208 -> 1
  EXPECT_EQ(adc.code(adc.level(139)), 14); // 14.479 -> 14
  EXPECT_EQ(adc.code(adc.level(140)), 15); // 14.583 -> 15
  EXPECT_DOUBLE_EQ(adc.quantize(5), 9.6);
  EXPECT_DOUBLE_EQ(adc.quantize(144), 144.0);
  // Ties round up: [0, 6] with 2 bits has Delta = 2; p = 1, 3, 5 sit exactly between levels.
  const Adc tie(0, 6, 2);
  EXPECT_EQ(tie.quantize(1), 2.0);
  EXPECT_EQ(tie.quantize(3), 4.0);
  EXPECT_EQ(tie.quantize(5), 6.0);
  EXPECT_EQ(tie.quantize(2), 2.0);
  // Out-of-range levels clamp.
  EXPECT_EQ(tie.code(-3.7), 0);
  EXPECT_EQ(tie.code(99.0), 3);
  // A signed range: [-12, 12], 3 bits, Delta = 24/7; p = -4 -> code 2 -> -12 + 48/7.
  const Adc signed_adc(-12, 12, 3);
  EXPECT_DOUBLE_EQ(signed_adc.quantize(-4), -12.0 + 2.0 * 24.0 / 7.0);
  EXPECT_DOUBLE_EQ(signed_adc.quantize(1), -12.0 + 4.0 * 24.0 / 7.0);
}

TEST(Adc, ClipRangesBelowTheTheoreticalMaximum) {
  const Adc adc(0, 144, 3, 0.5);  // full scale 72, Delta = 72/7
  EXPECT_DOUBLE_EQ(adc.full_scale(), 72.0);
  EXPECT_DOUBLE_EQ(adc.delta(), 72.0 / 7.0);
  EXPECT_DOUBLE_EQ(adc.quantize(100), 72.0);  // saturates
  EXPECT_DOUBLE_EQ(adc.quantize(40), 4 * 72.0 / 7.0);  // 40 / Delta = 3.89 -> code 4
  const Adc many_bits(0, 144, 12, 0.25);
  EXPECT_TRUE(many_bits.integer_readout());
  EXPECT_FALSE(many_bits.lossless());
  EXPECT_EQ(many_bits.quantize(144), 36.0);
}

TEST(Adc, LosslessWhenDeltaIsAtMostOne) {
  // Delta = 1 exactly: 2^b - 1 = p_hi - p_lo.
  const Adc exact(0, 15, 4);
  EXPECT_EQ(exact.delta(), 1.0);
  EXPECT_TRUE(exact.lossless());
  for (int p = 0; p <= 15; ++p) EXPECT_EQ(exact.quantize(p), p);
  // Delta < 1: p_lo + Delta code is not p, but within Delta/2 < 1/2; the integer read-out gives p.
  const Adc finer(0, 144, 8);
  EXPECT_TRUE(finer.lossless());
  int not_identity_before_rounding = 0;
  for (int p = 0; p <= 144; ++p) {
    const int code = finer.code(finer.level(p));
    const double raw = finer.delta() * code;
    EXPECT_LE(std::abs(raw - p), finer.delta() / 2 + 1e-12);
    not_identity_before_rounding += raw != p;
    EXPECT_EQ(finer.quantize(p), p);
  }
  EXPECT_GT(not_identity_before_rounding, 0);
  // Signed range, Delta < 1.
  const Adc native(-1080, 1080, 12);
  EXPECT_TRUE(native.lossless());
  for (int p = -1080; p <= 1080; ++p) ASSERT_EQ(native.quantize(p), p);
  // One bit short: Delta > 1, lossy.
  const Adc short_adc(0, 144, 7);
  EXPECT_FALSE(short_adc.lossless());
  EXPECT_NE(short_adc.quantize(1), 1.0);
}

TEST(Adc, BadSettingsAreRejected) {
  EXPECT_THROW(Adc(0, 144, 0), Error);
  EXPECT_THROW(Adc(0, 144, 17), Error);
  EXPECT_THROW(Adc(0, 144, 4, 0.0), Error);
  EXPECT_THROW(Adc(0, 144, 4, 1.5), Error);
  EXPECT_THROW(Adc(5, 5, 4), Error);
  EXPECT_NO_THROW(Adc(0, 144, 1));
  EXPECT_NO_THROW(Adc(0, 144, 16));
  try {
    Adc(0, 144, 17);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 16]"), std::string::npos);
  }
}

TEST(Adc, NonIdealLevelAndSmoothCurve) {
  const Adc adc(0, 144, 7);  // Delta = 144/127
  AdcBank linear(adc);
  linear.set_columns({{1.1, 2.3, 0}, {0.95, -1.0, 0}}, CurveModel::Linear, 0.0, nullptr);
  EXPECT_DOUBLE_EQ(linear.level(0, 50), 1.1 * 50 / adc.delta() + 2.3);
  EXPECT_DOUBLE_EQ(linear.level(1, 50), 0.95 * 50 / adc.delta() - 1.0);
  EXPECT_EQ(linear.convert(0, 50, 0), static_cast<int>(std::floor(1.1 * 50 / adc.delta() + 2.3 + 0.5)));

  AdcBank smooth(adc);
  const double a = 1.5;
  smooth.set_columns({{1.0, 0.0, 0}}, CurveModel::Smooth, a, nullptr);
  for (int p = 0; p <= 144; ++p) {
    const double ideal = p / adc.delta();
    EXPECT_NEAR(smooth.level(0, p), ideal + a * std::sin(std::numbers::pi * ideal / 127.0), 1e-12);
  }
  EXPECT_NEAR(smooth.level(0, 0), 0.0, 1e-12);           // zero at both ends
  EXPECT_NEAR(smooth.level(0, 144), 127.0, 1e-12);
  EXPECT_NEAR(smooth.level(0, 72) - 72 / adc.delta(), a, 1e-3);  // +a at mid-range
}

TEST(Adc, ThermalNoiseStatistics) {
  const Adc adc(0, 127, 7);  // Delta = 1: level(p) = p
  AdcBank bank(adc);
  const double sigma = 2.0;
  bank.set_noise(sigma, RandomStream(RngKey{3, 1, Purpose::ThermalNoise, 0}));
  const int n = 200000;
  double s1 = 0, s2 = 0, c1 = 0, c2 = 0;
  for (int j = 0; j < n; ++j) {
    const double e = bank.noise(static_cast<std::uint64_t>(j));
    s1 += e;
    s2 += e * e;
    const double c = bank.convert(0, 60, static_cast<std::uint64_t>(j)) - 60.0;
    c1 += c;
    c2 += c * c;
  }
  EXPECT_NEAR(s1 / n, 0.0, 5 * sigma / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(s2 / n), sigma, 0.02);
  // Rounding adds a uniform error of variance 1/12 (sigma is large against one LSB).
  EXPECT_NEAR(c1 / n, 0.0, 0.03);
  EXPECT_NEAR(c2 / n, sigma * sigma + 1.0 / 12.0, 0.06);
  // The same conversion index gives the same code; the stream decides.
  EXPECT_EQ(bank.convert(0, 60, 12345), bank.convert(0, 60, 12345));
  EXPECT_THROW(bank.set_noise(-1.0, RandomStream()), Error);
}

}  // namespace
}  // namespace pimqat::pim
