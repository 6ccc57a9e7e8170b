// Tests of pim/characterize.h: the MAC-error statistics on hand-computed vectors, the exact mean
// code under noise against Monte Carlo conversions, and simulated die curves against the die's
// own conversions (and their round trip through the measured-curve path).
#include "pim/characterize.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

namespace pimqat::pim {
namespace {

TEST(Characterize, MacErrorHandComputed) {
  // y = (0, 2, 4, 6): mean 3, std sqrt(5). y~ = 2 y: error y, rms sqrt(14), mean 3, rho 2, rescaled 0.
  const std::vector<std::int64_t> exact = {0, 2, 4, 6};
  const std::vector<double> doubled = {0, 4, 8, 12};
  const MacErrorStats s = mac_error(doubled, exact);
  EXPECT_EQ(s.outputs, 4);
  EXPECT_DOUBLE_EQ(s.exact_std, std::sqrt(5.0));
  EXPECT_DOUBLE_EQ(s.rms_error, std::sqrt(14.0));
  EXPECT_DOUBLE_EQ(s.mean_error, 3.0);
  EXPECT_DOUBLE_EQ(s.rho, 2.0);
  EXPECT_DOUBLE_EQ(s.relative_rms, std::sqrt(14.0 / 5.0));
  EXPECT_NEAR(s.rescaled_relative_rms, 0.0, 1e-15);
  // y~ = y + 1: rms 1, mean 1, rho 1.
  const MacErrorStats shifted = mac_error({1, 3, 5, 7}, exact);
  EXPECT_DOUBLE_EQ(shifted.rms_error, 1.0);
  EXPECT_DOUBLE_EQ(shifted.rho, 1.0);
  EXPECT_THROW(mac_error({1.0}, exact), Error);
}

TEST(Characterize, MeanCodeMatchesMonteCarlo) {
  const Adc adc(0, 127, 7);
  AdcBank bank(adc);
  const double sigma = 1.3;
  bank.set_noise(sigma, RandomStream(RngKey{2, 0, Purpose::ThermalNoise, 0}));
  for (int p : {0, 1, 60, 126, 127}) {
    double sum = 0;
    const int n = 40000;
    for (int j = 0; j < n; ++j) sum += bank.convert(0, p, static_cast<std::uint64_t>(j) + 100000u * p);
    EXPECT_NEAR(mean_code(adc, adc.level(p), sigma), sum / n, 4 * sigma / std::sqrt(n) + 1e-3) << "p = " << p;
  }
  EXPECT_EQ(mean_code(adc, 3.4, 0.0), 3.0);
  EXPECT_NEAR(mean_code(adc, 60.0, 1e-3), 60.0, 1e-9);
}

TEST(Characterize, DieCurvesAreTheDiesColumns) {
  const Decomposition d{Scheme::BitSerial, 20, 4, 4};
  const Adc adc(d.p_lo(), d.p_hi(), 4);
  NonIdeality chip;
  chip.gain_sigma = 0.05;
  chip.offset_sigma = 1.0;
  std::vector<std::int64_t> die_of, column_of;
  const TransferCurves curves = die_transfer_curves(d, adc, chip, 3, 4, 10, 2, 5, 1, &die_of, &column_of);
  ASSERT_EQ(curves.count(), 10);
  EXPECT_EQ(curves.points(), 21);
  EXPECT_EQ(die_of[7], 11);
  EXPECT_EQ(column_of[7], 2);
  EXPECT_EQ(curves.name(7), "die11_col2");
  const Die die(3, 4, 11, chip);
  const AdcBank bank = die.bank(1, adc, 5);
  for (int p = 0; p <= 20; ++p) EXPECT_EQ(curves.code(7, p), bank.convert(2, p, 0)) << p;
  // Fed back as measured curves, a column assigned curve m converts exactly as that simulated column.
  NonIdeality measured;
  measured.curve = CurveModel::Measured;
  measured.curves = std::make_shared<const TransferCurves>(curves);
  const Die replay(9, 9, 0, measured);
  const AdcBank replay_bank = replay.bank(0, adc, 40);
  for (std::int64_t c = 0; c < 40; ++c) {
    const std::int64_t m = replay_bank.column(c).curve;
    for (int p = 0; p <= 20; ++p) ASSERT_EQ(replay_bank.convert(c, p, 0), curves.code(m, p));
  }
  NonIdeality bad = chip;
  bad.curve = CurveModel::Smooth;
  bad.curve_strength = 20.0;  // > 15 / pi: the curve bends backwards
  EXPECT_THROW(die_transfer_curves(d, adc, bad, 3, 4, 0, 1, 2, 0), Error);
  EXPECT_THROW(die_transfer_curves(d, adc, measured, 3, 4, 0, 1, 2, 0), Error);
}

}  // namespace
}  // namespace pimqat::pim
