#pragma once
// Finite-difference gradient checks for nn layers, in double precision.
//
// Method (used by every layer test): the layer under test runs in float; the test supplies an
// independent naive forward of the same function written in double. For a fixed random upstream
// gradient r, the scalar L(inputs) = sum_i r_i f(inputs)_i is differentiated numerically with
// central differences of the *double* reference, step h = 1e-5 (truncation error O(h^2) relative,
// rounding error ~1e-16 / h ~ 1e-11), and compared with what the float layer's backward(r) returns:
//   max_j |analytic_j - numeric_j| <= tolerance * max(max_j |numeric_j|, floor).
// The reference is independent of the float code, so a wrong backward (or a forward that does not
// match the reference, which the tests check first) fails; the tolerance only has to cover the
// float rounding of the layer (1e-4 relative is ample for the sizes used here). Functions with
// kinks (ReLU) are evaluated away from them: the tests draw inputs with |x| well above h.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace pimqat::nn::testing {

using Vector = std::vector<double>;
// A double-precision forward: inputs (each a flat row-major vector) -> flat output.
using DoubleFunction = std::function<Vector(const std::vector<Vector>& inputs)>;

inline Vector to_double(const Tensor& t) {
  Vector v(static_cast<std::size_t>(t.size()));
  for (Index i = 0; i < t.size(); ++i) v[static_cast<std::size_t>(i)] = t[i];
  return v;
}

inline Tensor to_tensor(const Vector& v, const Shape& shape) {
  Tensor t(shape);
  EXPECT_EQ(t.size(), static_cast<Index>(v.size())) << "shape " << shape.str();
  for (Index i = 0; i < t.size() && i < static_cast<Index>(v.size()); ++i) t[i] = static_cast<float>(v[static_cast<std::size_t>(i)]);
  return t;
}

// Uniform in [low, high).
inline Tensor random_tensor(const Shape& shape, RandomStream& stream, double low = -1.0, double high = 1.0) {
  Tensor t(shape);
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(low + (high - low) * stream.uniform_double());
  return t;
}

// Uniform magnitude in [min_abs, max_abs) with a random sign: keeps values away from 0 (ReLU kinks).
inline Tensor random_away_from_zero(const Shape& shape, RandomStream& stream, double min_abs, double max_abs) {
  Tensor t(shape);
  for (Index i = 0; i < t.size(); ++i) {
    const double m = min_abs + (max_abs - min_abs) * stream.uniform_double();
    t[i] = static_cast<float>(stream.uniform_double() < 0.5 ? -m : m);
  }
  return t;
}

inline double dot(const Vector& a, const Vector& b) {
  EXPECT_EQ(a.size(), b.size());
  double s = 0.0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) s += a[i] * b[i];
  return s;
}

// d/d inputs[which] of sum_i upstream_i f(inputs)_i by central differences.
inline Vector numeric_gradient(const DoubleFunction& f, std::vector<Vector> inputs, std::size_t which,
                               const Vector& upstream, double step = 1e-5) {
  Vector grad(inputs[which].size());
  for (std::size_t j = 0; j < inputs[which].size(); ++j) {
    const double saved = inputs[which][j];
    inputs[which][j] = saved + step;
    const double plus = dot(upstream, f(inputs));
    inputs[which][j] = saved - step;
    const double minus = dot(upstream, f(inputs));
    inputs[which][j] = saved;
    grad[j] = (plus - minus) / (2.0 * step);
  }
  return grad;
}

// max |actual - expected| / max(max |expected|, floor).
inline double relative_max_error(const Vector& actual, const Vector& expected, double floor = 1e-6) {
  EXPECT_EQ(actual.size(), expected.size());
  double scale = floor;
  double worst = 0.0;
  for (std::size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    scale = std::max(scale, std::abs(expected[i]));
    worst = std::max(worst, std::abs(actual[i] - expected[i]));
  }
  return worst / scale;
}

inline void expect_close(const Tensor& actual, const Vector& expected, double tolerance, const std::string& what) {
  const double error = relative_max_error(to_double(actual), expected);
  EXPECT_LE(error, tolerance) << what << ": relative max error " << error << " above " << tolerance;
}

inline void expect_close(const Vector& actual, const Vector& expected, double tolerance, const std::string& what) {
  const double error = relative_max_error(actual, expected);
  EXPECT_LE(error, tolerance) << what << ": relative max error " << error << " above " << tolerance;
}

// The whole check for one input or parameter: analytic (from the float layer's backward) against
// central differences of the double reference.
inline void expect_gradient(const DoubleFunction& f, const std::vector<Vector>& inputs, std::size_t which,
                            const Vector& upstream, const Tensor& analytic, double tolerance, const std::string& what) {
  const Vector numeric = numeric_gradient(f, inputs, which, upstream);
  expect_close(analytic, numeric, tolerance, what + " (vs central differences)");
}

// Like expect_gradient, on `count` entries drawn at random (for tensors too large to perturb
// every entry): the same comparison, scaled by the largest numeric entry drawn.
inline void expect_gradient_sampled(const DoubleFunction& f, std::vector<Vector> inputs, std::size_t which,
                                    const Vector& upstream, const Tensor& analytic, double tolerance,
                                    const std::string& what, std::size_t count, RandomStream& stream,
                                    double step = 1e-5) {
  const std::size_t size = inputs[which].size();
  Vector numeric, picked;
  for (std::size_t t = 0; t < std::min(count, size); ++t) {
    const std::size_t j = count >= size ? t : stream.below(static_cast<std::uint32_t>(size));
    const double saved = inputs[which][j];
    inputs[which][j] = saved + step;
    const double plus = dot(upstream, f(inputs));
    inputs[which][j] = saved - step;
    const double minus = dot(upstream, f(inputs));
    inputs[which][j] = saved;
    numeric.push_back((plus - minus) / (2.0 * step));
    picked.push_back(analytic[static_cast<Index>(j)]);
  }
  expect_close(picked, numeric, tolerance, what + " (vs central differences, sampled)");
}

// --- Independent double-precision forwards shared by the layer tests ---------------------------

// Batch norm with batch statistics (two-pass mean and biased variance), NCHW, optional ReLU.
inline Vector batchnorm_train_reference(const Vector& x, const Shape& shape, const Vector& gamma, const Vector& beta,
                                        bool relu, double epsilon = 1e-5) {
  const Index n = shape[0], c = shape[1], plane = shape[2] * shape[3];
  Vector y(x.size());
  for (Index ch = 0; ch < c; ++ch) {
    double mean = 0.0;
    for (Index b = 0; b < n; ++b)
      for (Index i = 0; i < plane; ++i) mean += x[static_cast<std::size_t>((b * c + ch) * plane + i)];
    mean /= static_cast<double>(n * plane);
    double var = 0.0;
    for (Index b = 0; b < n; ++b)
      for (Index i = 0; i < plane; ++i) {
        const double d = x[static_cast<std::size_t>((b * c + ch) * plane + i)] - mean;
        var += d * d;
      }
    var /= static_cast<double>(n * plane);
    const double inv = 1.0 / std::sqrt(var + epsilon);
    for (Index b = 0; b < n; ++b)
      for (Index i = 0; i < plane; ++i) {
        const auto k = static_cast<std::size_t>((b * c + ch) * plane + i);
        const double v = gamma[static_cast<std::size_t>(ch)] * (x[k] - mean) * inv + beta[static_cast<std::size_t>(ch)];
        y[k] = relu ? std::max(v, 0.0) : v;
      }
  }
  return y;
}

inline Vector relu_reference(Vector x) {
  for (double& v : x) v = std::max(v, 0.0);
  return x;
}

// Smallest |v| (how far a ReLU's input stays from its kink).
inline double min_abs(const Vector& v) {
  double m = 1e300;
  for (double x : v) m = std::min(m, std::abs(x));
  return m;
}

inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape())) return false;
  return std::equal(a.data(), a.data() + a.size(), b.data(), [](float x, float y) {
    return std::bit_cast<std::uint32_t>(x) == std::bit_cast<std::uint32_t>(y);
  });
}

}  // namespace pimqat::nn::testing
