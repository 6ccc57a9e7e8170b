// BatchNorm2d: forward against a double two-pass reference, gradients against central
// differences, running statistics and calibration (cumulative average) against hand computation,
// Eval mode, precision with a large mean, thread-count independence, bad input.
#include "nn/batchnorm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "tests/nn/gradcheck.h"

namespace pimqat::nn {
namespace {

using testing::random_tensor;
using testing::to_double;
using testing::Vector;

void set_affine(BatchNorm2d& bn, RandomStream& stream) {
  for (Index c = 0; c < bn.channels(); ++c) {
    bn.weight().value[c] = static_cast<float>(0.5 + stream.uniform_double());
    bn.bias().value[c] = static_cast<float>(stream.uniform_double() - 0.5);
  }
}

// Per-channel batch mean and unbiased variance in double.
void batch_moments(const Tensor& x, Vector& mean, Vector& unbiased) {
  const Index n = x.dim(0), c = x.dim(1), plane = x.dim(2) * x.dim(3);
  mean.assign(static_cast<std::size_t>(c), 0.0);
  unbiased.assign(static_cast<std::size_t>(c), 0.0);
  for (Index ch = 0; ch < c; ++ch) {
    double s = 0.0;
    for (Index b = 0; b < n; ++b)
      for (Index i = 0; i < plane; ++i) s += x[(b * c + ch) * plane + i];
    const double m = s / static_cast<double>(n * plane);
    double q = 0.0;
    for (Index b = 0; b < n; ++b)
      for (Index i = 0; i < plane; ++i) q += (x[(b * c + ch) * plane + i] - m) * (x[(b * c + ch) * plane + i] - m);
    mean[static_cast<std::size_t>(ch)] = m;
    unbiased[static_cast<std::size_t>(ch)] = q / static_cast<double>(n * plane - 1);
  }
}

TEST(BatchNorm2d, TrainGradientsMatchFiniteDifferences) {
  for (BnActivation act : {BnActivation::None, BnActivation::Relu}) {
    const bool relu = act == BnActivation::Relu;
    SCOPED_TRACE(relu ? "with ReLU" : "without ReLU");
    RandomStream stream(RngKey{21, 0, Purpose::Operands, relu ? 1u : 0u});
    const Shape shape{3, 5, 3, 7};  // odd sizes, 5 channels
    BatchNorm2d bn("bn", 5, act);
    set_affine(bn, stream);
    const Tensor src = random_tensor(shape, stream, -2.0, 3.0);
    const Tensor& dst = bn.forward(src, Mode::Train);
    const Tensor upstream = random_tensor(shape, stream);
    const Tensor& diff_src = bn.backward(upstream);

    const testing::DoubleFunction f = [&](const std::vector<Vector>& in) {
      return testing::batchnorm_train_reference(in[0], shape, in[1], in[2], relu);
    };
    const std::vector<Vector> inputs = {to_double(src), to_double(bn.weight().value), to_double(bn.bias().value)};
    if (relu) {  // keep clear of the kink for the central differences
      const Vector pre = testing::batchnorm_train_reference(inputs[0], shape, inputs[1], inputs[2], false);
      ASSERT_GT(testing::min_abs(pre), 1e-3) << "seed puts a value on the ReLU kink";
    }
    testing::expect_close(dst, f(inputs), 2e-6, "forward");
    const Vector r = to_double(upstream);
    testing::expect_gradient(f, inputs, 0, r, diff_src, 1e-4, "dL/dsrc");
    testing::expect_gradient(f, inputs, 1, r, bn.weight().grad, 1e-4, "dL/dgamma");
    testing::expect_gradient(f, inputs, 2, r, bn.bias().grad, 1e-4, "dL/dbeta");
  }
}

TEST(BatchNorm2d, RunningStatisticsFollowMomentum) {
  RandomStream stream(RngKey{22, 0, Purpose::Operands, 0});
  BatchNorm2d bn("bn", 3);
  Vector expected_mean(3, 0.0), expected_var(3, 1.0);
  for (int step = 0; step < 3; ++step) {
    const Tensor src = random_tensor({4, 3, 5, 3}, stream, -1.0 + step, 2.0 + 2 * step);
    bn.forward(src, Mode::Train);
    Vector mean, unbiased;
    batch_moments(src, mean, unbiased);
    for (std::size_t c = 0; c < 3; ++c) {
      expected_mean[c] = 0.9 * expected_mean[c] + 0.1 * mean[c];
      expected_var[c] = 0.9 * expected_var[c] + 0.1 * unbiased[c];
    }
  }
  testing::expect_close(bn.running_mean(), expected_mean, 1e-6, "running_mean");
  testing::expect_close(bn.running_var(), expected_var, 1e-6, "running_var");
  std::vector<StateTensor> state;
  bn.collect_state(state);
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].name, "bn.running_mean");
  EXPECT_EQ(state[1].name, "bn.running_var");
  EXPECT_EQ(state[0].value, &bn.running_mean());
  std::vector<Parameter*> params;
  bn.collect_parameters(params);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0]->name, "bn.weight");
  EXPECT_EQ(params[1]->name, "bn.bias");
  EXPECT_FALSE(params[0]->weight_decay);
  EXPECT_FALSE(params[1]->weight_decay);
}

TEST(BatchNorm2d, EvalUsesRunningStatistics) {
  RandomStream stream(RngKey{23, 0, Purpose::Operands, 0});
  BatchNorm2d bn("bn", 4, BnActivation::Relu);
  set_affine(bn, stream);
  for (Index c = 0; c < 4; ++c) {
    bn.running_mean()[c] = static_cast<float>(0.3 * static_cast<double>(c) - 0.2);
    bn.running_var()[c] = static_cast<float>(0.5 + static_cast<double>(c));
  }
  const Tensor src = random_tensor({2, 4, 3, 3}, stream, -2.0, 2.0);
  const Tensor before_mean = bn.running_mean();
  const Tensor& dst = bn.forward(src, Mode::Eval);
  for (Index i = 0; i < src.size(); ++i) {
    const Index c = (i / 9) % 4;
    const double v = bn.weight().value[c] * (src[i] - bn.running_mean()[c]) /
                         std::sqrt(static_cast<double>(bn.running_var()[c]) + 1e-5) +
                     bn.bias().value[c];
    EXPECT_NEAR(dst[i], std::max(v, 0.0), 1e-5) << "element " << i;
  }
  EXPECT_TRUE(testing::same_bits(before_mean, bn.running_mean()));  // Eval leaves the statistics alone
  EXPECT_THROW(bn.backward(src), Error);
}

TEST(BatchNorm2d, CalibrationIsAnExactCumulativeAverage) {
  RandomStream stream(RngKey{24, 0, Purpose::Operands, 0});
  BatchNorm2d bn("bn", 3);
  set_affine(bn, stream);
  bn.forward(random_tensor({4, 3, 4, 4}, stream), Mode::Train);  // some non-trivial running stats
  bn.reset_running_stats();
  for (Index c = 0; c < 3; ++c) {
    EXPECT_EQ(bn.running_mean()[c], 0.0f);
    EXPECT_EQ(bn.running_var()[c], 1.0f);
  }
  bn.set_calibrating(true);
  Vector sum_mean(3, 0.0), sum_var(3, 0.0);
  for (int k = 1; k <= 4; ++k) {
    // Batches of different sizes and distributions: an exponential average would not match.
    const Tensor src = random_tensor({static_cast<Index>(k + 1), 3, 3, 5}, stream, -k, 3.0 * k);
    const Tensor& dst = bn.forward(src, Mode::Eval);
    // Normalized with the batch statistics.
    const Vector expected_dst = testing::batchnorm_train_reference(to_double(src), src.shape(),
                                                                   to_double(bn.weight().value),
                                                                   to_double(bn.bias().value), false);
    testing::expect_close(dst, expected_dst, 2e-6, "calibrating forward");
    Vector mean, unbiased;
    batch_moments(src, mean, unbiased);
    Vector expected_mean(3), expected_var(3);
    for (std::size_t c = 0; c < 3; ++c) {
      sum_mean[c] += mean[c];
      sum_var[c] += unbiased[c];
      expected_mean[c] = sum_mean[c] / k;
      expected_var[c] = sum_var[c] / k;
    }
    testing::expect_close(bn.running_mean(), expected_mean, 1e-6, "cumulative running_mean");
    testing::expect_close(bn.running_var(), expected_var, 1e-6, "cumulative running_var");
    EXPECT_EQ(bn.calibration_batches(), k);
  }
  EXPECT_THROW(bn.backward(random_tensor({5, 3, 3, 5}, stream)), Error);  // Eval-mode calibration: no backward

  // Switching calibration off and on again starts a new average.
  bn.set_calibrating(false);
  bn.set_calibrating(true);
  EXPECT_EQ(bn.calibration_batches(), 0);
  const Tensor src = random_tensor({3, 3, 2, 2}, stream, 1.0, 5.0);
  bn.forward(src, Mode::Eval);
  Vector mean, unbiased;
  batch_moments(src, mean, unbiased);
  testing::expect_close(bn.running_mean(), mean, 1e-6, "restarted running_mean");
  testing::expect_close(bn.running_var(), unbiased, 1e-6, "restarted running_var");

  // Off again: Eval uses the calibrated statistics.
  bn.set_calibrating(false);
  const Tensor& dst = bn.forward(src, Mode::Eval);
  for (Index i = 0; i < src.size(); ++i) {
    const Index c = (i / 4) % 3;
    const double v = bn.weight().value[c] * (src[i] - bn.running_mean()[c]) /
                         std::sqrt(static_cast<double>(bn.running_var()[c]) + 1e-5) +
                     bn.bias().value[c];
    EXPECT_NEAR(dst[i], v, 1e-5);
  }
}

TEST(BatchNorm2d, AccurateWithLargeMean) {
  RandomStream stream(RngKey{25, 0, Purpose::Operands, 0});
  BatchNorm2d bn("bn", 2);
  // std / mean ~ 1e-3: E[x^2] - E[x]^2 summed naively in float would lose ~10% of the variance.
  Tensor src = random_tensor({8, 2, 16, 16}, stream, -0.2, 0.2);
  for (Index i = 0; i < src.size(); ++i) src[i] += 100.0f;
  const Tensor& dst = bn.forward(src, Mode::Train);
  const Vector expected =
      testing::batchnorm_train_reference(to_double(src), src.shape(), Vector(2, 1.0), Vector(2, 0.0), false);
  testing::expect_close(dst, expected, 1e-4, "normalized output");
}

TEST(BatchNorm2d, SameBitsForAnyThreadCount) {
  RandomStream stream(RngKey{26, 0, Purpose::Operands, 0});
  const Tensor src = random_tensor({6, 16, 7, 9}, stream, -1.0, 2.0);
  const Tensor upstream = random_tensor(src.shape(), stream);
  Tensor results[2][3];
  const int saved = omp_get_max_threads();
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t == 0 ? 1 : 2);
    BatchNorm2d bn("bn", 16, BnActivation::Relu);
    results[t][0] = bn.forward(src, Mode::Train);
    results[t][1] = bn.backward(upstream);
    results[t][2] = bn.weight().grad;
  }
  omp_set_num_threads(saved);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(testing::same_bits(results[0][i], results[1][i])) << "output " << i;
}

TEST(BatchNorm2d, RejectsBadInput) {
  BatchNorm2d bn("bn", 3);
  EXPECT_THROW(bn.forward(Tensor(Shape{2, 4, 3, 3}), Mode::Train), Error);
  EXPECT_THROW(bn.forward(Tensor(Shape{2, 3, 9}), Mode::Train), Error);
  EXPECT_THROW(bn.forward(Tensor(Shape{1, 3, 1, 1}), Mode::Train), Error);  // one value per channel
  EXPECT_NO_THROW(bn.forward(Tensor(Shape{1, 3, 1, 1}), Mode::Eval));
  EXPECT_THROW(BatchNorm2d("bad", 0), Error);
}

}  // namespace
}  // namespace pimqat::nn
