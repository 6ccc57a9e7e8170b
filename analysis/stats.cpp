#include "analysis/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"

namespace pimqat::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> finite_sorted(std::span<const double> values) {
  std::vector<double> v;
  v.reserve(values.size());
  for (double x : values)
    if (!std::isnan(x)) v.push_back(x);
  std::sort(v.begin(), v.end());
  return v;
}

double percentile_sorted(const std::vector<double>& sorted, double q) {
  // Type 7: h = (n - 1) q, interpolate between sorted[floor(h)] and the next one.
  const double h = static_cast<double>(sorted.size() - 1) * q;
  const auto j = static_cast<std::size_t>(std::floor(h));
  if (j + 1 >= sorted.size()) return sorted.back();
  return sorted[j] + (h - static_cast<double>(j)) * (sorted[j + 1] - sorted[j]);
}

double mean_of(std::span<const double> v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

// Sample variance with the two-pass formula (exact for constant data).
double variance_of(std::span<const double> v, double mean) {
  double sum = 0;
  for (double x : v) sum += (x - mean) * (x - mean);
  return sum / static_cast<double>(v.size() - 1);
}

// The continued fraction of I_x(a, b) (modified Lentz), valid and fast for x < (a + 1)/(a + b + 2):
//   I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * 1 / (1 + d_1 / (1 + d_2 / (1 + ...)))
//   d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)),  d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-15;
  constexpr int kMaxTerms = 10000;
  double c = 1.0;
  double d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double f = d;
  for (int m = 1; m <= kMaxTerms; ++m) {
    const double dm = static_cast<double>(m);
    // Even term d_{2m}.
    double coefficient = dm * (b - dm) * x / ((a + 2 * dm - 1) * (a + 2 * dm));
    d = 1.0 + coefficient * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + coefficient / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    f *= d * c;
    // Odd term d_{2m+1}.
    coefficient = -(a + dm) * (a + b + dm) * x / ((a + 2 * dm) * (a + 2 * dm + 1));
    d = 1.0 + coefficient * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + coefficient / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    f *= delta;
    if (std::fabs(delta - 1.0) < kEps) return f;
  }
  throw Error("regularized_incomplete_beta(a=" + std::to_string(a) + ", b=" + std::to_string(b) +
              ", x=" + std::to_string(x) + "): the continued fraction did not converge");
}

// One tail of the t distribution: P(T > t) = I_{dof/(dof+t^2)}(dof/2, 1/2) / 2 for t >= 0.
double upper_tail(double t, double dof) {
  if (std::isinf(t)) return 0.0;
  return 0.5 * regularized_incomplete_beta(dof / 2, 0.5, dof / (dof + t * t));
}

}  // namespace

double percentile(std::span<const double> values, double q) {
  if (!(q >= 0.0 && q <= 1.0)) throw Error("percentile: q must be in [0, 1], got " + std::to_string(q));
  const std::vector<double> sorted = finite_sorted(values);
  if (sorted.empty()) throw Error("percentile of an empty set of values (no value that is not NaN)");
  return percentile_sorted(sorted, q);
}

SampleStats summarize(std::span<const double> values) {
  const std::vector<double> v = finite_sorted(values);
  SampleStats s;
  s.n = v.size();
  if (v.empty()) {
    s.mean = s.std = s.min = s.max = s.p5 = s.ci_low = s.ci_high = kNaN;
    return s;
  }
  s.mean = mean_of(v);
  s.min = v.front();
  s.max = v.back();
  s.p5 = percentile_sorted(v, 0.05);
  if (v.size() < 2) {
    s.std = s.ci_low = s.ci_high = kNaN;
    return s;
  }
  s.std = std::sqrt(variance_of(v, s.mean));
  const double half = student_t_quantile(0.975, static_cast<double>(v.size() - 1)) * s.std /
                      std::sqrt(static_cast<double>(v.size()));
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

double regularized_incomplete_beta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || !(x >= 0 && x <= 1))
    throw Error("regularized_incomplete_beta: needs a > 0, b > 0 and 0 <= x <= 1, got a=" + std::to_string(a) +
                ", b=" + std::to_string(b) + ", x=" + std::to_string(x));
  if (x == 0.0) return 0.0;
  if (x == 1.0) return 1.0;
  const double log_front = a * std::log(x) + b * std::log1p(-x) - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
  if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) / a * beta_continued_fraction(a, b, x);
  return 1.0 - std::exp(log_front) / b * beta_continued_fraction(b, a, 1.0 - x);
}

double student_t_cdf(double t, double dof) {
  if (!(dof > 0)) throw Error("student_t_cdf: degrees of freedom must be > 0, got " + std::to_string(dof));
  if (std::isnan(t)) return kNaN;
  const double tail = upper_tail(std::fabs(t), dof);
  return t >= 0 ? 1.0 - tail : tail;
}

double student_t_quantile(double p, double dof) {
  if (!(dof > 0)) throw Error("student_t_quantile: degrees of freedom must be > 0, got " + std::to_string(dof));
  if (!(p > 0 && p < 1)) throw Error("student_t_quantile: p must be in (0, 1), got " + std::to_string(p));
  if (p == 0.5) return 0.0;
  // Solve upper_tail(t) = q for t >= 0 with q = the smaller tail; upper_tail decreases in t.
  const double q = std::min(p, 1.0 - p);
  double lo = 0.0, hi = 1.0;
  while (upper_tail(hi, dof) > q) {
    lo = hi;
    hi *= 2;
    if (hi > 1e300) break;
  }
  for (int i = 0; i < 200 && hi - lo > 1e-13 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (upper_tail(mid, dof) > q ? lo : hi) = mid;
  }
  const double t = 0.5 * (lo + hi);
  return p > 0.5 ? t : -t;
}

namespace {

// The statistic, dof and two-sided p of t = difference / se.
TestResult finish_test(double difference, double se, double dof) {
  TestResult r;
  r.valid = true;
  r.difference = difference;
  if (se == 0.0) {
    r.dof = kNaN;
    r.t = difference == 0.0 ? 0.0 : (difference > 0 ? kInf : -kInf);
    r.p_value = difference == 0.0 ? 1.0 : 0.0;
    return r;
  }
  r.t = difference / se;
  r.dof = dof;
  // Two-sided: P(|T| > |t|) = I_{dof/(dof+t^2)}(dof/2, 1/2).
  r.p_value = regularized_incomplete_beta(dof / 2, 0.5, dof / (dof + r.t * r.t));
  return r;
}

TestResult invalid_test(double difference) {
  TestResult r;
  r.difference = difference;
  r.t = r.dof = r.p_value = kNaN;
  r.valid = false;
  return r;
}

}  // namespace

TestResult welch_t_test(std::span<const double> a, std::span<const double> b) {
  const std::vector<double> va = finite_sorted(a), vb = finite_sorted(b);
  const double difference = va.empty() || vb.empty() ? kNaN : mean_of(va) - mean_of(vb);
  if (va.size() < 2 || vb.size() < 2) return invalid_test(difference);
  const double na = static_cast<double>(va.size()), nb = static_cast<double>(vb.size());
  const double wa = variance_of(va, mean_of(va)) / na, wb = variance_of(vb, mean_of(vb)) / nb;
  const double se2 = wa + wb;
  const double dof = se2 * se2 / (wa * wa / (na - 1) + wb * wb / (nb - 1));
  return finish_test(difference, std::sqrt(se2), dof);
}

TestResult paired_t_test(std::span<const double> a, std::span<const double> b) {
  if (a.size() != b.size())
    throw Error("paired_t_test: the two samples need equal lengths (one value per die each), got " +
                std::to_string(a.size()) + " and " + std::to_string(b.size()));
  std::vector<double> d;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!std::isnan(a[i]) && !std::isnan(b[i])) d.push_back(a[i] - b[i]);
  if (d.size() < 2) return invalid_test(d.empty() ? kNaN : d[0]);
  const double n = static_cast<double>(d.size());
  const double mean = mean_of(d);
  return finish_test(mean, std::sqrt(variance_of(d, mean) / n), n - 1);
}

}  // namespace pimqat::analysis
