#pragma once
// Statistics over dies (docs/analysis.md, "Statistics"): summaries of one evaluation setting,
// Student t quantiles for confidence intervals, and the two tests the views use (Welch's unequal-
// variance t-test between two models, the paired t-test between two evaluations of the same dies).
//
// Definitions (n values x_1..x_n, sorted x_(1) <= ... <= x_(n)):
//   mean   = (1/n) sum x_i
//   std    = sqrt( sum (x_i - mean)^2 / (n - 1) )           sample standard deviation, NaN for n < 2
//   q-th percentile (0 <= q <= 1), linear interpolation between order statistics (numpy's default,
//          Hyndman & Fan type 7): h = (n - 1) q, j = floor(h): x_(j+1) + (h - j) (x_(j+2) - x_(j+1))
//          (0-based: x[j] + (h - j)(x[j+1] - x[j])); for n = 1 every percentile is x_1
//   95% confidence interval of the mean: mean -/+ t_{0.975, n-1} std / sqrt(n), NaN for n < 2
// NaN inputs are not values: callers drop them before summarizing (summarize() ignores them).
#include <cstddef>
#include <span>
#include <vector>

namespace pimqat::analysis {

struct SampleStats {
  std::size_t n = 0;       // values summarized (NaNs excluded)
  double mean = 0;
  double std = 0;          // sample standard deviation (n - 1); NaN when n < 2
  double min = 0, max = 0;
  double p5 = 0;           // 5th percentile, linear interpolation (see above)
  double ci_low = 0, ci_high = 0;  // 95% confidence interval of the mean (Student t); NaN when n < 2
  double ci_half_width() const { return (ci_high - ci_low) / 2; }
};

// All fields NaN (n = 0) for an empty input.
SampleStats summarize(std::span<const double> values);

// q in [0, 1]; `values` need not be sorted. Throws pimqat::Error for an empty input or q outside [0, 1].
double percentile(std::span<const double> values, double q);

// Regularized incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b) for a, b > 0 and
// x in [0, 1], by the continued fraction of I_x(a, b) (evaluated with the modified Lentz method,
// using the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges slowly).
// Relative accuracy about 1e-14. Throws pimqat::Error for arguments outside the domain.
double regularized_incomplete_beta(double a, double b, double x);

// Student t distribution with `dof` > 0 degrees of freedom (dof may be fractional, as Welch's is):
//   cdf(t) = 1 - I_{dof/(dof+t^2)}(dof/2, 1/2) / 2 for t >= 0, and cdf(-t) = 1 - cdf(t).
double student_t_cdf(double t, double dof);
// The quantile: the t with cdf(t) = p, for p in (0, 1), found by bisection on cdf to a relative
// accuracy of about 1e-12 (t_{0.975,4} = 2.776445, t_{0.975,30} = 2.042272).
double student_t_quantile(double p, double dof);

// A two-sided test of "equal means".
struct TestResult {
  double difference = 0;  // mean(a) - mean(b) (paired: mean of a_i - b_i)
  double t = 0;           // the statistic; +-inf when the standard error is 0 and the means differ
  double dof = 0;         // degrees of freedom; NaN when the standard error is 0
  double p_value = 0;     // two-sided: 2 (1 - cdf(|t|)); 1 when both means are equal and the error is 0
  bool valid = false;     // false (and t, dof, p NaN) when a side has fewer than 2 values
};

// Welch's unequal-variance t-test between two independent samples (two models' accuracies over
// their own dies):  se^2 = s_a^2/n_a + s_b^2/n_b,  t = (mean_a - mean_b) / se,
//   dof = se^4 / ( (s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1) )   (Welch–Satterthwaite).
TestResult welch_t_test(std::span<const double> a, std::span<const double> b);

// Paired t-test on the differences d_i = a_i - b_i (the same dies evaluated two ways):
// t = mean(d) / (std(d)/sqrt(n)), dof = n - 1. `a` and `b` must have equal lengths.
TestResult paired_t_test(std::span<const double> a, std::span<const double> b);

}  // namespace pimqat::analysis
