// Tests of the base quantizers (nn/quantize.h, DESIGN.md 2.1): levels against hand-computed
// values, the scale against a two-pass std in double, and the straight-through backward passes
// against central differences in double of the smooth surrogates.
#include "nn/quantize.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.h"

namespace pimqat::nn {
namespace {

Tensor make_tensor(const Shape& shape, const std::vector<float>& values) {
  Tensor t(shape);
  EXPECT_EQ(static_cast<std::size_t>(t.size()), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) t[static_cast<Index>(i)] = values[i];
  return t;
}

Tensor random_tensor(const Shape& shape, std::uint64_t index, float stddev, float mean = 0.0f) {
  RandomStream stream(RngKey{42, 0, Purpose::Operands, index});
  Tensor t(shape);
  for (Index i = 0; i < t.size(); ++i) t[i] = mean + stddev * stream.normal();
  return t;
}

// Population std of a tensor, two passes in double (independent of the implementation's sums).
double population_std(const Tensor& t) {
  double mean = 0.0;
  for (Index i = 0; i < t.size(); ++i) mean += t[i];
  mean /= static_cast<double>(t.size());
  double var = 0.0;
  for (Index i = 0; i < t.size(); ++i) var += (t[i] - mean) * (t[i] - mean);
  return std::sqrt(var / static_cast<double>(t.size()));
}

// A float w whose normalized value is exactly `target`: float(tanhf(w) / max_abs) == target,
// the expression the quantizer evaluates (searched over the floats around atanh(target * M)).
// Returns false when there is none near (tanhf skips floats, so some M have no exact preimage).
bool weight_with_exact_ratio(float target, float max_abs, float& w_out) {
  const float start = static_cast<float>(std::atanh(static_cast<double>(target) * max_abs));
  for (float direction : {100.0f, -100.0f}) {
    float w = start;
    for (int step = 0; step < 256; ++step, w = std::nextafter(w, direction))
      if (std::tanh(w) / max_abs == target) {
        w_out = w;
        return true;
      }
  }
  return false;
}

TEST(WeightFanOut, ConvAndLinear) {
  EXPECT_EQ(weight_fan_out(Shape{16, 8, 3, 3}), 16 * 9);
  EXPECT_EQ(weight_fan_out(Shape{32, 16, 1, 1}), 32);
  EXPECT_EQ(weight_fan_out(Shape{10, 64}), 10);
  EXPECT_THROW(weight_fan_out(Shape{10}), Error);
  EXPECT_THROW(weight_fan_out(Shape{2, 3, 4}), Error);
}

// u = c for the listed c (tanh(w_0) = M is the maximum, w_1 = -w_0), levels by hand:
// m = clamp(floor((c + 1) 2^(b-1)), 0, 2^b - 1), W = m - 2^(b-1).
TEST(WeightQuantizer, HandComputedLevels) {
  const std::vector<double> c = {1.0, -1.0, 0.0, 0.3, -0.3, 0.7, -0.62};
  struct Case {
    int bits;
    std::vector<float> expected;
  };
  const std::vector<Case> cases = {
      // b = 2: (c+1)*2 = 4, 0, 2, 2.6, 1.4, 3.4, 0.76 -> m = 3(clamped), 0, 2, 2, 1, 3, 0
      {2, {1, -2, 0, 0, -1, 1, -2}},
      // b = 3: (c+1)*4 = 8, 0, 4, 5.2, 2.8, 6.8, 1.52 -> m = 7, 0, 4, 5, 2, 6, 1
      {3, {3, -4, 0, 1, -2, 2, -3}},
      // b = 4: (c+1)*8 = 16, 0, 8, 10.4, 5.6, 13.6, 3.04 -> m = 15, 0, 8, 10, 5, 13, 3
      {4, {7, -8, 0, 2, -3, 5, -5}},
      // b = 8: (c+1)*128 = 256, 0, 128, 166.4, 89.6, 217.6, 48.64 -> m = 255, 0, 128, 166, 89, 217, 48
      {8, {127, -128, 0, 38, -39, 89, -80}},
  };
  const double big = 1.3;  // M = tanh(1.3)
  const double m_value = std::tanh(big);
  std::vector<float> w;
  for (double ci : c) w.push_back(static_cast<float>(std::atanh(ci * m_value)));
  const Tensor weight = make_tensor(Shape{7, 1}, w);  // linear (out = 7, in = 1): fan_out = 7
  for (const Case& cs : cases) {
    Tensor integers, dequantized;
    const WeightQuantization q = quantize_weight(weight, cs.bits, weight_fan_out(weight.shape()), integers, dequantized);
    for (Index i = 0; i < 7; ++i) EXPECT_EQ(integers[i], cs.expected[static_cast<std::size_t>(i)]) << "bits " << cs.bits << " i " << i;
    EXPECT_EQ(q.max_index, 0);
    EXPECT_FLOAT_EQ(q.max_abs_tanh, std::tanh(static_cast<float>(big)));
    const double expected_scale = 1.0 / (population_std(integers) * std::sqrt(7.0));
    EXPECT_NEAR(q.scale, expected_scale, 1e-6 * expected_scale) << "bits " << cs.bits;
    for (Index i = 0; i < 7; ++i) EXPECT_EQ(dequantized[i], q.scale * integers[i]);
  }
  // b = 2 in closed form: W = {1,-2,0,0,-1,1,-2}, sum -3, sum of squares 11, var = 68/49,
  // s_w = 1 / (sqrt(68)/7 * sqrt(7)) = sqrt(7/68).
  Tensor integers, dequantized;
  const WeightQuantization q = quantize_weight(weight, 2, 7, integers, dequantized);
  EXPECT_NEAR(q.integer_std, std::sqrt(68.0) / 7.0, 1e-12);
  EXPECT_FLOAT_EQ(q.scale, static_cast<float>(std::sqrt(7.0 / 68.0)));
}

// Exact boundaries: u = t / M is exactly 0.5, 0.25, ... for the chosen weights. floor puts a
// boundary value in the upper level; just below it stays in the lower one. The extremes map to
// -2^(b-1) (u = -1) and 2^(b-1) - 1 (u = +1, clamped from 2^b).
TEST(WeightQuantizer, LevelBoundariesAndExtremes) {
  // 0.5 - 2^-23: u + 1 = 1.5 - 2^-23 is still exact in float (0.5's float predecessor would not be).
  const float below_half = 0.5f - std::ldexp(1.0f, -23);
  const std::vector<float> u = {0.5f, -0.5f, 0.25f, -0.25f, below_half, -below_half, 0.75f, -0.75f};
  // The largest |w| (both signs, so |t| = M twice: the first, negative, one is the arg-max); the
  // first w0 from 1.5 up for which every u has an exact preimage.
  float w0 = 1.5f;
  float max_abs = 0.0f;
  std::vector<float> w;
  for (int attempt = 0; attempt < 1000; ++attempt, w0 = std::nextafter(w0, 10.0f)) {
    max_abs = std::tanh(w0);
    w = {-w0, w0};
    for (float ui : u) {
      float wi = 0.0f;
      if (!weight_with_exact_ratio(ui, max_abs, wi)) break;
      w.push_back(wi);
    }
    if (w.size() == 10) break;
  }
  ASSERT_EQ(w.size(), 10u) << "no weights with exact normalized values found";
  const Tensor weight = make_tensor(Shape{10, 1}, w);
  Tensor integers, dequantized;
  // b = 2, (u + 1) * 2: -1 -> 0, 1 -> 4 -> clamp 3; 0.5 -> 3; -0.5 -> 1; 0.25 -> 2.5; -0.25 -> 1.5;
  // 0.5- -> 3 - 2^-22 -> 2; -0.5+ -> 1 + 2^-22 -> 1; 0.75 -> 3.5; -0.75 -> 0.5.
  WeightQuantization q = quantize_weight(weight, 2, 10, integers, dequantized);
  EXPECT_EQ(q.max_index, 0);
  EXPECT_EQ(q.max_abs_tanh, max_abs);
  std::vector<float> expected2 = {-2, 1, 1, -1, 0, -1, 0, -1, 1, -2};
  for (Index i = 0; i < 10; ++i) EXPECT_EQ(integers[i], expected2[static_cast<std::size_t>(i)]) << i;
  // b = 3, (u + 1) * 4: -1 -> 0, 1 -> 8 -> 7, 0.5 -> 6, -0.5 -> 2, 0.25 -> 5, -0.25 -> 3,
  // 0.5- -> 6 - 2^-21 -> 5, -0.5+ -> 2 + 2^-21 -> 2, 0.75 -> 7, -0.75 -> 1.
  q = quantize_weight(weight, 3, 10, integers, dequantized);
  std::vector<float> expected3 = {-4, 3, 2, -2, 1, -1, 1, -2, 3, -3};
  for (Index i = 0; i < 10; ++i) EXPECT_EQ(integers[i], expected3[static_cast<std::size_t>(i)]) << i;
}

TEST(WeightQuantizer, Guards) {
  Tensor integers, dequantized;
  // All zero: W = 0, std = 0 -> s_w = 1 / sqrt(fan_out); the gradient is zero.
  const Tensor zeros(Shape{4, 3, 3, 3});
  WeightQuantization q = quantize_weight(zeros, 4, weight_fan_out(zeros.shape()), integers, dequantized);
  for (Index i = 0; i < zeros.size(); ++i) EXPECT_EQ(integers[i], 0.0f);
  EXPECT_EQ(q.integer_std, 0.0);
  EXPECT_FLOAT_EQ(q.scale, 1.0f / 6.0f);  // fan_out = 4 * 9 = 36
  Tensor grad;
  quantize_weight_backward(zeros, q, Tensor(zeros.shape(), 1.0f), grad);
  for (Index i = 0; i < grad.size(); ++i) EXPECT_EQ(grad[i], 0.0f);
  // All equal and positive: u = 1 everywhere -> W = 2^(b-1) - 1, std = 0.
  const Tensor equal(Shape{5, 2}, 0.3f);
  q = quantize_weight(equal, 3, 5, integers, dequantized);
  for (Index i = 0; i < equal.size(); ++i) EXPECT_EQ(integers[i], 3.0f);
  EXPECT_FLOAT_EQ(q.scale, static_cast<float>(1.0 / std::sqrt(5.0)));
  // Bad input.
  const Tensor weight = random_tensor(Shape{3, 2}, 1, 0.5f);
  EXPECT_THROW(quantize_weight(weight, 1, 3, integers, dequantized), Error);
  EXPECT_THROW(quantize_weight(weight, 17, 3, integers, dequantized), Error);
  EXPECT_THROW(quantize_weight(weight, 4, 0, integers, dequantized), Error);
  Tensor with_nan = weight;
  with_nan[4] = std::nanf("");
  EXPECT_THROW(quantize_weight(with_nan, 4, 3, integers, dequantized), Error);
}

// Surrogate of the weight path (floor -> identity, clamp inactive, s_w frozen):
//   L(w) = sum_i r_i s_w 2^(b-1) tanh(w_i) / max_j |tanh(w_j)|
double weight_surrogate(const std::vector<double>& w, const Tensor& upstream, double scale, int bits) {
  double max_abs = 0.0;
  for (double wi : w) max_abs = std::max(max_abs, std::fabs(std::tanh(wi)));
  double loss = 0.0;
  for (std::size_t i = 0; i < w.size(); ++i)
    loss += upstream[static_cast<Index>(i)] * scale * std::ldexp(1.0, bits - 1) * std::tanh(w[i]) / max_abs;
  return loss;
}

void check_weight_gradient(const Tensor& weight, int bits, const std::vector<Index>& coordinates) {
  Tensor integers, dequantized, grad;
  const WeightQuantization q = quantize_weight(weight, bits, weight_fan_out(weight.shape()), integers, dequantized);
  const Tensor upstream = random_tensor(weight.shape(), 99, 1.0f);
  quantize_weight_backward(weight, q, upstream, grad);
  std::vector<double> w(static_cast<std::size_t>(weight.size()));
  for (Index i = 0; i < weight.size(); ++i) w[static_cast<std::size_t>(i)] = weight[i];
  const double h = 1e-6;
  double max_grad = 0.0;
  for (Index i = 0; i < grad.size(); ++i) max_grad = std::max(max_grad, std::fabs(static_cast<double>(grad[i])));
  for (Index i : coordinates) {
    std::vector<double> plus = w, minus = w;
    plus[static_cast<std::size_t>(i)] += h;
    minus[static_cast<std::size_t>(i)] -= h;
    const double fd = (weight_surrogate(plus, upstream, q.scale, bits) - weight_surrogate(minus, upstream, q.scale, bits)) / (2 * h);
    EXPECT_NEAR(grad[i], fd, 1e-4 * max_grad + 1e-4 * std::fabs(fd)) << "bits " << bits << " coordinate " << i
                                                                        << (i == q.max_index ? " (arg-max)" : "");
  }
}

TEST(WeightQuantizer, GradientMatchesSurrogateFiniteDifferences) {
  for (int bits : {2, 4, 8}) {
    // Awkward conv shape; the arg-max is unique by a wide margin (a planted large weight).
    Tensor weight = random_tensor(Shape{5, 3, 3, 3}, 2, 0.4f);
    weight[17] = 1.7f;
    std::vector<Index> all;
    for (Index i = 0; i < weight.size(); ++i) all.push_back(i);
    check_weight_gradient(weight, bits, all);
    // Negative maximum: the sign(t_k) term.
    weight[17] = -1.9f;
    check_weight_gradient(weight, bits, all);
  }
}

TEST(WeightQuantizer, GradientOnParallelSize) {
  // Above the single-thread threshold; checks a sample of coordinates and the arg-max.
  Tensor weight = random_tensor(Shape{50, 89, 3, 3}, 3, 0.3f);
  weight[31337] = -2.5f;
  std::vector<Index> coordinates = {0, 1, 4095, 4096, 31337, 40049};
  RandomStream pick(RngKey{7, 0, Purpose::Operands, 0});
  for (int i = 0; i < 6; ++i) coordinates.push_back(pick.below(static_cast<std::uint32_t>(weight.size())));
  check_weight_gradient(weight, 4, coordinates);
}

// --- activations ---

struct ActivationCase {
  int bits;
  float alpha;
  std::vector<float> x;
  std::vector<float> expected;  // X by hand
};

TEST(ActivationQuantizer, HandComputedLevelsAndTies) {
  // alpha = L / 2^j makes L / alpha = 2^j exact, so x = (k + 0.5) / 2^j lands exactly on a tie.
  const std::vector<ActivationCase> cases = {
      // b = 2, alpha = 3: X = round_half_even(clamp(x, 0, 3))
      {2, 3.0f, {-1.0f, 0.0f, 0.5f, 1.5f, 2.5f, 0.49f, 1.2f, 3.0f, 4.7f, 2.51f}, {0, 0, 0, 2, 2, 0, 1, 3, 3, 3}},
      // b = 3, alpha = 3.5: X = round_half_even(2 clamp(x, 0, 3.5))
      {3, 3.5f, {0.25f, 0.75f, 1.25f, 1.75f, 3.25f, 3.4f, 9.0f, -0.1f}, {0, 2, 2, 4, 6, 7, 7, 0}},
      // b = 4, alpha = 3.75: X = round_half_even(4 clamp(x, 0, 3.75))
      {4, 3.75f, {0.125f, 0.375f, 0.625f, 3.625f, 3.75f, 5.0f, 1.0f, 0.13f}, {0, 2, 2, 14, 15, 15, 4, 1}},
      // b = 8, alpha = 31.875: X = round_half_even(8 clamp(x, 0, 31.875))
      {8, 31.875f, {0.0625f, 0.1875f, 31.8125f, 31.6875f, 100.0f, 10.0f}, {0, 2, 254, 254, 255, 80}},
  };
  for (const ActivationCase& cs : cases) {
    const Index n = static_cast<Index>(cs.x.size());
    const Tensor src = make_tensor(Shape{n}, cs.x);
    Tensor integers, dequantized;
    const float scale = quantize_activation(src, cs.bits, cs.alpha, integers, dequantized);
    EXPECT_EQ(scale, cs.alpha / static_cast<float>((1 << cs.bits) - 1));
    for (Index i = 0; i < n; ++i) {
      EXPECT_EQ(integers[i], cs.expected[static_cast<std::size_t>(i)]) << "bits " << cs.bits << " x " << cs.x[static_cast<std::size_t>(i)];
      EXPECT_EQ(dequantized[i], integers[i] * scale);
    }
  }
}

TEST(ActivationQuantizer, DefaultClipAgainstDoubleReference) {
  // alpha = 8 (the default), b = 4; values away from ties agree with a double computation.
  const Tensor src = random_tensor(Shape{3, 5, 7, 11}, 4, 4.0f, 2.0f);
  Tensor integers, dequantized;
  const float scale = quantize_activation(src, 4, 8.0f, integers, dequantized);
  EXPECT_FLOAT_EQ(scale, 8.0f / 15.0f);
  int checked = 0;
  for (Index i = 0; i < src.size(); ++i) {
    const double z = std::clamp(static_cast<double>(src[i]), 0.0, 8.0) / 8.0 * 15.0;
    if (std::fabs(z - std::floor(z) - 0.5) < 1e-4) continue;
    ++checked;
    EXPECT_EQ(integers[i], static_cast<float>(std::round(z))) << "x = " << src[i];
  }
  EXPECT_GT(checked, 1000);
}

TEST(ActivationQuantizer, BadInput) {
  const Tensor src(Shape{4}, 1.0f);
  Tensor integers, dequantized, grad;
  EXPECT_THROW(quantize_activation(src, 0, 8.0f, integers, dequantized), Error);
  EXPECT_THROW(quantize_activation(src, 17, 8.0f, integers, dequantized), Error);
  EXPECT_THROW(quantize_activation(src, 4, 0.0f, integers, dequantized), Error);
  EXPECT_THROW(quantize_activation(src, 4, -1.0f, integers, dequantized), Error);
  EXPECT_THROW(quantize_activation(src, 4, std::nanf(""), integers, dequantized), Error);
  EXPECT_THROW(quantize_activation_backward(src, src, 8.0f, Tensor(Shape{5}), grad), Error);
}

// Surrogate of the activation path: x_q = (alpha/L) R(clamp(x, 0, alpha) L / alpha) where R(z) =
// z + (X - z0) is the identity with the rounding residual of the forward frozen: its value is the
// forward's, its slope is the straight-through 1. Derivatives in x and alpha by central differences.
double activation_surrogate(const std::vector<double>& x, double alpha, const std::vector<double>& residual, const Tensor& upstream, int bits) {
  const double levels = std::ldexp(1.0, bits) - 1.0;
  double loss = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double z = std::clamp(x[i], 0.0, alpha) * levels / alpha;
    loss += upstream[static_cast<Index>(i)] * alpha / levels * (z + residual[i]);
  }
  return loss;
}

void check_activation_gradient(const Tensor& src, int bits, float alpha) {
  Tensor integers, dequantized, grad;
  quantize_activation(src, bits, alpha, integers, dequantized);
  const Tensor upstream = random_tensor(src.shape(), 98, 1.0f);
  const float dalpha = quantize_activation_backward(src, dequantized, alpha, upstream, grad);
  const double levels = std::ldexp(1.0, bits) - 1.0;
  std::vector<double> x(static_cast<std::size_t>(src.size())), residual(x.size());
  for (Index i = 0; i < src.size(); ++i) {
    x[static_cast<std::size_t>(i)] = src[i];
    residual[static_cast<std::size_t>(i)] =
        integers[i] - std::clamp(static_cast<double>(src[i]), 0.0, static_cast<double>(alpha)) * levels / alpha;
  }
  const double h = 1e-5;
  // d/dx: elements are at least 1e-3 away from 0 and alpha (the callers make sure).
  for (Index i = 0; i < src.size(); ++i) {
    std::vector<double> plus = x, minus = x;
    plus[static_cast<std::size_t>(i)] += h;
    minus[static_cast<std::size_t>(i)] -= h;
    const double fd = (activation_surrogate(plus, alpha, residual, upstream, bits) -
                       activation_surrogate(minus, alpha, residual, upstream, bits)) / (2 * h);
    EXPECT_NEAR(grad[i], fd, 1e-5 + 1e-5 * std::fabs(fd)) << "x = " << src[i];
  }
  // d/dalpha (alpha stays away from every |x| by more than h).
  const double fd_alpha = (activation_surrogate(x, alpha + h, residual, upstream, bits) -
                           activation_surrogate(x, alpha - h, residual, upstream, bits)) / (2 * h);
  EXPECT_NEAR(dalpha, fd_alpha, 1e-4 * (1.0 + std::fabs(fd_alpha))) << "bits " << bits << " alpha " << alpha;
  // And the closed form of DESIGN.md 2.1 in double.
  double closed = 0.0;
  for (Index i = 0; i < src.size(); ++i) {
    const double xi = src[i];
    if (xi >= alpha) closed += upstream[i];
    else if (xi >= 0.0) closed += upstream[i] * (static_cast<double>(dequantized[i]) - xi) / alpha;
  }
  EXPECT_NEAR(dalpha, closed, 1e-5 * (1.0 + std::fabs(closed)));
}

Tensor keep_away_from(Tensor t, float alpha) {
  for (Index i = 0; i < t.size(); ++i) {
    if (std::fabs(t[i]) < 1e-3f) t[i] = 0.01f;
    if (std::fabs(t[i] - alpha) < 1e-3f) t[i] = alpha + 0.01f;
  }
  return t;
}

TEST(ActivationQuantizer, GradientMatchesSurrogateFiniteDifferences) {
  // Inputs below 0, inside (0, alpha) and above alpha.
  for (int bits : {2, 4, 8}) {
    const float alpha = 2.5f;
    const Tensor src = keep_away_from(random_tensor(Shape{2, 3, 5, 7}, 5 + static_cast<std::uint64_t>(bits), 1.5f, 1.0f), alpha);
    check_activation_gradient(src, bits, alpha);
  }
}

TEST(ActivationQuantizer, GradientOnParallelSizeAndThreadIndependence) {
  const float alpha = 3.0f;
  const Tensor src = keep_away_from(random_tensor(Shape{4, 16, 29, 31}, 6, 2.0f, 1.0f), alpha);  // 57536
  const Tensor upstream = random_tensor(src.shape(), 97, 1.0f);
  Tensor integers, dequantized, grad;
  quantize_activation(src, 4, alpha, integers, dequantized);
  // alpha gradient against the closed form in double, all elements.
  const float dalpha = quantize_activation_backward(src, dequantized, alpha, upstream, grad);
  double closed = 0.0;
  for (Index i = 0; i < src.size(); ++i) {
    const double xi = src[i];
    if (xi >= alpha) closed += upstream[i];
    else if (xi >= 0.0) closed += upstream[i] * (static_cast<double>(dequantized[i]) - xi) / alpha;
    EXPECT_EQ(grad[i], (xi > 0.0 && xi < alpha) ? upstream[i] : 0.0f);
  }
  EXPECT_NEAR(dalpha, closed, 1e-6 * (1.0 + std::fabs(closed)));
  // Same bits with 1 and 2 threads, for both quantizers.
  const int threads = omp_get_max_threads();
  Tensor weight = random_tensor(Shape{64, 64, 3, 3}, 8, 0.2f);
  auto run = [&](int t, Tensor& xi, Tensor& dx, float& da, Tensor& wi, Tensor& dw, float& scale) {
    omp_set_num_threads(t);
    Tensor xq, wq;
    quantize_activation(src, 4, alpha, xi, xq);
    da = quantize_activation_backward(src, xq, alpha, upstream, dx);
    const WeightQuantization q = quantize_weight(weight, 4, weight_fan_out(weight.shape()), wi, wq);
    scale = q.scale;
    quantize_weight_backward(weight, q, random_tensor(weight.shape(), 96, 1.0f), dw);
  };
  Tensor xi1, dx1, wi1, dw1, xi2, dx2, wi2, dw2;
  float da1 = 0, da2 = 0, s1 = 0, s2 = 0;
  run(1, xi1, dx1, da1, wi1, dw1, s1);
  run(2, xi2, dx2, da2, wi2, dw2, s2);
  omp_set_num_threads(threads);
  EXPECT_EQ(std::memcmp(&da1, &da2, sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(&s1, &s2, sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(xi1.data(), xi2.data(), sizeof(float) * static_cast<std::size_t>(xi1.size())), 0);
  EXPECT_EQ(std::memcmp(dx1.data(), dx2.data(), sizeof(float) * static_cast<std::size_t>(dx1.size())), 0);
  EXPECT_EQ(std::memcmp(wi1.data(), wi2.data(), sizeof(float) * static_cast<std::size_t>(wi1.size())), 0);
  EXPECT_EQ(std::memcmp(dw1.data(), dw2.data(), sizeof(float) * static_cast<std::size_t>(dw1.size())), 0);
}

}  // namespace
}  // namespace pimqat::nn
