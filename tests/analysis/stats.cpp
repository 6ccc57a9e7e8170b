// Statistics over dies: summaries against hand-computed values, the incomplete beta function
// against closed forms, t quantiles against published table values, and the t-tests against
// values computed independently (mpmath at 30 digits: sample moments and the two-sided p as a
// numerical integral of the t density; see the comments at each number).
#include "analysis/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"

namespace pimqat::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(Stats, SummaryMatchesHandComputedValues) {
  // Sorted: 1 1 2 3 4 5 6 9. mean = 31/8; sum of squared deviations = 52.875, s^2 = 52.875/7.
  const std::vector<double> x = {3, 1, 4, 1, 5, 9, 2, 6};
  const SampleStats s = summarize(x);
  EXPECT_EQ(s.n, 8u);
  EXPECT_DOUBLE_EQ(s.mean, 3.875);
  EXPECT_NEAR(s.std, std::sqrt(52.875 / 7), 1e-14);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 9);
  // h = 7 * 0.05 = 0.35 between x(0) = 1 and x(1) = 1.
  EXPECT_DOUBLE_EQ(s.p5, 1.0);
  // mean -/+ t_{0.975,7} s / sqrt(8), t_{0.975,7} = 2.36462425 (mpmath: 1.5773000431592447, 6.1726999568407553).
  EXPECT_NEAR(s.ci_low, 1.5773000431592447, 1e-10);
  EXPECT_NEAR(s.ci_high, 6.1726999568407553, 1e-10);
  EXPECT_NEAR(s.ci_half_width(), 2.2976999568407553, 1e-10);
}

TEST(Stats, PercentileInterpolatesLinearlyBetweenOrderStatistics) {
  const std::vector<double> x = {3, 1, 4, 1, 5, 9, 2, 6};
  EXPECT_DOUBLE_EQ(percentile(x, 0.95), 6 + 0.65 * 3);  // h = 6.65 between 6 and 9
  EXPECT_DOUBLE_EQ(percentile(x, 0.5), 3.5);             // h = 3.5 between 3 and 4
  EXPECT_DOUBLE_EQ(percentile(x, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(x, 1.0), 9.0);
  EXPECT_DOUBLE_EQ(percentile(std::vector<double>{7, 2, 4}, 0.05), 2.2);  // h = 0.1: 2 + 0.1 * 2
  EXPECT_DOUBLE_EQ(percentile(std::vector<double>{42}, 0.05), 42);
  EXPECT_THROW(percentile(std::vector<double>{}, 0.5), Error);
  EXPECT_THROW(percentile(x, 1.5), Error);
}

TEST(Stats, SummaryIgnoresNaNAndHandlesTinySamples) {
  const SampleStats one = summarize(std::vector<double>{0.8, kNaN});
  EXPECT_EQ(one.n, 1u);
  EXPECT_EQ(one.mean, 0.8);
  EXPECT_EQ(one.min, 0.8);
  EXPECT_EQ(one.p5, 0.8);
  EXPECT_TRUE(std::isnan(one.std));
  EXPECT_TRUE(std::isnan(one.ci_low));
  const SampleStats none = summarize(std::vector<double>{});
  EXPECT_EQ(none.n, 0u);
  EXPECT_TRUE(std::isnan(none.mean));
  const SampleStats constant = summarize(std::vector<double>{0.25, 0.25, 0.25});
  EXPECT_EQ(constant.std, 0.0);
  EXPECT_EQ(constant.ci_low, 0.25);
  EXPECT_EQ(constant.ci_high, 0.25);
}

TEST(Stats, IncompleteBetaMatchesClosedForms) {
  for (double x : {0.0, 0.013, 0.3, 0.5, 0.77, 0.999, 1.0}) {
    EXPECT_NEAR(regularized_incomplete_beta(1, 1, x), x, 1e-14) << x;
    EXPECT_NEAR(regularized_incomplete_beta(3.5, 1, x), std::pow(x, 3.5), 1e-14) << x;
    EXPECT_NEAR(regularized_incomplete_beta(1, 2.25, x), 1 - std::pow(1 - x, 2.25), 1e-14) << x;
    // I_x(1/2, 1/2) = (2/pi) asin(sqrt(x)).
    EXPECT_NEAR(regularized_incomplete_beta(0.5, 0.5, x), 2 / M_PI * std::asin(std::sqrt(x)), 1e-13) << x;
  }
  for (double a : {0.5, 2.0, 17.5, 300.0}) EXPECT_NEAR(regularized_incomplete_beta(a, a, 0.5), 0.5, 1e-13) << a;
  // mpmath.betainc(..., regularized=True).
  EXPECT_NEAR(regularized_incomplete_beta(2.5, 3.7, 0.3), 0.3190031752843087, 1e-13);
  EXPECT_NEAR(regularized_incomplete_beta(40, 0.5, 0.99), 0.37138602325398446, 1e-12);
  EXPECT_THROW(regularized_incomplete_beta(0, 1, 0.5), Error);
  EXPECT_THROW(regularized_incomplete_beta(1, 1, 1.5), Error);
}

TEST(Stats, StudentTQuantilesMatchTableValues) {
  // Printed t tables (3 decimals) ...
  EXPECT_NEAR(student_t_quantile(0.975, 4), 2.776, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 30), 2.042, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 1), 12.706, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.95, 10), 1.812, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.995, 2), 9.925, 5e-4);
  // ... and to 12 digits (mpmath: root of the integrated density), fractional dof included.
  EXPECT_NEAR(student_t_quantile(0.975, 4), 2.77644510519779, 1e-10);
  EXPECT_NEAR(student_t_quantile(0.975, 30), 2.04227245630124, 1e-10);
  EXPECT_NEAR(student_t_quantile(0.975, 2.5), 3.57465484200368, 1e-10);
  EXPECT_NEAR(student_t_quantile(0.9, 7), 1.41492392765051, 1e-10);
  // Symmetry, the median and the normal limit.
  EXPECT_NEAR(student_t_quantile(0.025, 4), -2.77644510519779, 1e-10);
  EXPECT_EQ(student_t_quantile(0.5, 3), 0.0);
  EXPECT_NEAR(student_t_quantile(0.975, 1e7), 1.959964, 1e-5);
  EXPECT_THROW(student_t_quantile(1.0, 4), Error);
  EXPECT_THROW(student_t_quantile(0.9, 0), Error);
}

TEST(Stats, StudentTCdfInvertsTheQuantile) {
  for (double dof : {1.0, 2.0, 3.7, 12.0, 100.0})
    for (double p : {0.01, 0.2, 0.5, 0.8, 0.975, 0.999})
      EXPECT_NEAR(student_t_cdf(student_t_quantile(p, dof), dof), p, 1e-11) << p << " " << dof;
  EXPECT_EQ(student_t_cdf(0, 5), 0.5);
  // dof = 1 is the Cauchy distribution: cdf(t) = 1/2 + atan(t)/pi.
  for (double t : {-3.0, -0.4, 0.9, 25.0}) EXPECT_NEAR(student_t_cdf(t, 1), 0.5 + std::atan(t) / M_PI, 1e-13) << t;
}

TEST(Stats, WelchTestMatchesIndependentComputation) {
  const std::vector<double> a = {91.2, 90.5, 92.0, 89.9, 91.7};
  const std::vector<double> b = {90.1, 89.0, 90.8, 88.7, 89.9, 90.3};
  const TestResult r = welch_t_test(a, b);
  ASSERT_TRUE(r.valid);
  EXPECT_NEAR(r.difference, 1.26, 1e-12);
  EXPECT_NEAR(r.t, 2.4938681656791695, 1e-10);
  EXPECT_NEAR(r.dof, 8.3582209271053465, 1e-10);
  EXPECT_NEAR(r.p_value, 0.036096249503796986, 1e-10);
  // Swapping the samples flips t and keeps p.
  const TestResult s = welch_t_test(b, a);
  EXPECT_NEAR(s.t, -r.t, 1e-12);
  EXPECT_NEAR(s.p_value, r.p_value, 1e-12);
}

TEST(Stats, WelchTestEdgeCases) {
  EXPECT_FALSE(welch_t_test(std::vector<double>{1.0}, std::vector<double>{1.0, 2.0}).valid);
  const TestResult same = welch_t_test(std::vector<double>{2, 2, 2}, std::vector<double>{2, 2});
  EXPECT_TRUE(same.valid);
  EXPECT_EQ(same.p_value, 1.0);
  const TestResult apart = welch_t_test(std::vector<double>{3, 3, 3}, std::vector<double>{2, 2});
  EXPECT_EQ(apart.p_value, 0.0);
  EXPECT_TRUE(std::isinf(apart.t));
}

TEST(Stats, PairedTestMatchesIndependentComputation) {
  const std::vector<double> a = {91.2, 90.5, 92.0, 89.9, 91.7};
  const std::vector<double> c = {91.0, 90.0, 92.5, 89.5, 91.5};
  const TestResult r = paired_t_test(a, c);
  ASSERT_TRUE(r.valid);
  EXPECT_NEAR(r.difference, 0.16, 1e-12);
  EXPECT_NEAR(r.t, 0.91465912076005775, 1e-10);
  EXPECT_EQ(r.dof, 4);
  EXPECT_NEAR(r.p_value, 0.412119452782808, 1e-10);
  EXPECT_THROW(paired_t_test(a, std::vector<double>{1, 2}), Error);
}

}  // namespace
}  // namespace pimqat::analysis
