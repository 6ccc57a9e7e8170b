// Tests of pim/die.h: die parameters have the configured mean and spread, are reproducible per
// die id and differ between dies, models and layers; noise streams are keyed per call.
#include "pim/die.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"

namespace pimqat::pim {
namespace {

NonIdeality paper_chip() {
  NonIdeality n;
  n.gain_sigma = 0.024;
  n.offset_sigma = 2.04;
  n.noise_sigma = 0.5;
  return n;
}

TEST(Die, GainAndOffsetHaveTheConfiguredMeanAndSpread) {
  const Die die(7, 0xABCDEF, 17, paper_chip());
  const int n = 100000;
  double g1 = 0, g2 = 0, o1 = 0, o2 = 0, go = 0;
  for (int c = 0; c < n; ++c) {
    const ColumnParams p = die.column(static_cast<std::uint64_t>(c % 5), static_cast<std::uint64_t>(c / 5));
    g1 += p.gain;
    g2 += p.gain * p.gain;
    o1 += p.offset;
    o2 += p.offset * p.offset;
    go += (p.gain - 1) * p.offset;
  }
  const double g_mean = g1 / n, g_std = std::sqrt(g2 / n - g_mean * g_mean);
  const double o_mean = o1 / n, o_std = std::sqrt(o2 / n - o_mean * o_mean);
  EXPECT_NEAR(g_mean, 1.0, 5 * 0.024 / std::sqrt(n));
  EXPECT_NEAR(g_std, 0.024, 0.024 * 5 / std::sqrt(2.0 * n));
  EXPECT_NEAR(o_mean, 0.0, 5 * 2.04 / std::sqrt(n));
  EXPECT_NEAR(o_std, 2.04, 2.04 * 5 / std::sqrt(2.0 * n));
  EXPECT_NEAR(go / n / (0.024 * 2.04), 0.0, 5 / std::sqrt(n));  // gain and offset independent
}

TEST(Die, SameDieIsTheSameChipAndOthersDiffer) {
  const Die a(7, 99, 17, paper_chip()), again(7, 99, 17, paper_chip());
  const Die other_die(7, 99, 18, paper_chip()), other_model(7, 100, 17, paper_chip()),
      other_seed(8, 99, 17, paper_chip());
  int differ_die = 0, differ_model = 0, differ_seed = 0, differ_layer = 0;
  for (std::uint64_t c = 0; c < 1000; ++c) {
    const ColumnParams p = a.column(3, c), q = again.column(3, c);
    EXPECT_EQ(p.gain, q.gain);
    EXPECT_EQ(p.offset, q.offset);
    differ_die += other_die.column(3, c).offset != p.offset;
    differ_model += other_model.column(3, c).offset != p.offset;
    differ_seed += other_seed.column(3, c).offset != p.offset;
    differ_layer += a.column(4, c).offset != p.offset;
  }
  EXPECT_EQ(differ_die, 1000);
  EXPECT_EQ(differ_model, 1000);
  EXPECT_EQ(differ_seed, 1000);
  EXPECT_EQ(differ_layer, 1000);
  // A bank holds exactly the die's columns, in order.
  const AdcBank bank = a.bank(3, Adc(0, 144, 7), 50);
  ASSERT_EQ(bank.column_count(), 50);
  for (int c = 0; c < 50; ++c) EXPECT_EQ(bank.column(c).gain, a.column(3, static_cast<std::uint64_t>(c)).gain);
}

TEST(Die, IdealColumnsStayIdealAndNoiseIsKeyedPerCall) {
  NonIdeality noise_only;
  noise_only.noise_sigma = 1.0;
  const Die die(1, 2, 3, noise_only);
  AdcBank bank = die.bank(0, Adc(0, 144, 7), 100);
  EXPECT_TRUE(bank.ideal_columns());
  EXPECT_FALSE(bank.noisy());
  die.set_noise(bank, 0, 0);
  EXPECT_TRUE(bank.noisy());
  const double first = bank.noise(5);
  die.set_noise(bank, 0, 1);
  const double second_call = bank.noise(5);
  die.set_noise(bank, 1, 0);
  const double other_layer = bank.noise(5);
  die.set_noise(bank, 0, 0);
  EXPECT_EQ(bank.noise(5), first);
  EXPECT_NE(first, second_call);
  EXPECT_NE(first, other_layer);
  const Die other(1, 2, 4, noise_only);
  AdcBank other_bank(Adc(0, 144, 7));
  other.set_noise(other_bank, 0, 0);
  EXPECT_NE(other_bank.noise(5), first);
}

TEST(Die, MeasuredCurvesAreAssignedUniformly) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("pimqat_test_die_" + std::to_string(::getpid()) + ".csv")).string();
  {
    std::ofstream out(path);
    out << "adc_bits,1\np_lo,0\np_hi,1\np,a,b,c\n0,0,0,0\n1,1,1,0.5\n";
  }
  NonIdeality measured;
  measured.curve = CurveModel::Measured;
  measured.curves = std::make_shared<const TransferCurves>(TransferCurves::load(path));
  const Die die(1, 2, 3, measured);
  int counts[3] = {0, 0, 0};
  const int n = 30000;
  for (int c = 0; c < n; ++c) ++counts[die.column(0, static_cast<std::uint64_t>(c)).curve];
  for (int m = 0; m < 3; ++m) EXPECT_NEAR(counts[m], n / 3.0, 5 * std::sqrt(n * 2.0 / 9.0));
}

TEST(Die, BadSettingsAreRejected) {
  NonIdeality bad;
  bad.gain_sigma = -0.1;
  bad.noise_sigma = std::nan("");
  bad.curve = CurveModel::Measured;
  try {
    bad.validate();
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("gain_sigma"), std::string::npos) << m;
    EXPECT_NE(m.find("noise_sigma"), std::string::npos) << m;
    EXPECT_NE(m.find("curve_file"), std::string::npos) << m;
  }
  EvalConfig eval;
  eval.curve = CurveModel::Measured;
  EXPECT_THROW(NonIdeality::from_config(eval), Error);
  eval.curve_file = "/nonexistent/curves.csv";
  EXPECT_THROW(NonIdeality::from_config(eval), Error);
}

}  // namespace
}  // namespace pimqat::pim
