// SoftmaxCrossEntropy: loss against a double log-sum-exp, gradient against central differences,
// a hand-computed value, large logits, correct-prediction count, bad labels.
#include "nn/loss.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/nn/gradcheck.h"

namespace pimqat::nn {
namespace {

testing::Vector loss_reference(const testing::Vector& z, const std::vector<std::int32_t>& labels, Index k) {
  const auto n = static_cast<Index>(labels.size());
  double total = 0.0;
  for (Index r = 0; r < n; ++r) {
    double m = -1e300;
    for (Index j = 0; j < k; ++j) m = std::max(m, z[static_cast<std::size_t>(r * k + j)]);
    double s = 0.0;
    for (Index j = 0; j < k; ++j) s += std::exp(z[static_cast<std::size_t>(r * k + j)] - m);
    total += std::log(s) + m - z[static_cast<std::size_t>(r * k + labels[static_cast<std::size_t>(r)])];
  }
  return {total / static_cast<double>(n)};
}

TEST(SoftmaxCrossEntropy, LossAndGradientMatchReference) {
  RandomStream stream(RngKey{61, 0, Purpose::Operands, 0});
  const Index n = 7, k = 10;
  const Tensor logits = testing::random_tensor({n, k}, stream, -4.0, 4.0);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  for (auto& l : labels) l = static_cast<std::int32_t>(stream.below(static_cast<std::uint32_t>(k)));
  SoftmaxCrossEntropy loss;
  const double value = loss.forward_backward(logits, labels);
  const testing::DoubleFunction f = [&](const std::vector<testing::Vector>& in) { return loss_reference(in[0], labels, k); };
  const std::vector<testing::Vector> inputs = {testing::to_double(logits)};
  EXPECT_NEAR(value, f(inputs)[0], 1e-12);
  testing::expect_gradient(f, inputs, 0, {1.0}, loss.diff_logits(), 1e-6, "dL/dlogits");
  Index correct = 0;
  for (Index r = 0; r < n; ++r) {
    Index best = 0;
    for (Index j = 1; j < k; ++j)
      if (logits[r * k + j] > logits[r * k + best]) best = j;
    correct += best == labels[static_cast<std::size_t>(r)] ? 1 : 0;
  }
  EXPECT_EQ(loss.correct(), correct);
  SoftmaxCrossEntropy eval;
  EXPECT_EQ(eval.forward(logits, labels), value);
  EXPECT_EQ(eval.correct(), correct);
}

TEST(SoftmaxCrossEntropy, HandComputedValuesAndLargeLogits) {
  // Two classes, logits (0, ln 3): p = (1/4, 3/4). Label 1 -> loss ln(4/3); label 0 -> ln 4.
  Tensor logits(Shape{2, 2});
  logits[1] = static_cast<float>(std::log(3.0));
  logits[3] = static_cast<float>(std::log(3.0));
  const std::vector<std::int32_t> labels = {1, 0};
  SoftmaxCrossEntropy loss;
  const double value = loss.forward_backward(logits, labels);
  EXPECT_NEAR(value, (std::log(4.0 / 3.0) + std::log(4.0)) / 2.0, 1e-7);
  EXPECT_NEAR(loss.diff_logits()[0], 0.25 / 2, 1e-7);
  EXPECT_NEAR(loss.diff_logits()[1], (0.75 - 1.0) / 2, 1e-7);
  EXPECT_NEAR(loss.diff_logits()[2], (0.25 - 1.0) / 2, 1e-7);
  EXPECT_NEAR(loss.diff_logits()[3], 0.75 / 2, 1e-7);
  EXPECT_EQ(loss.correct(), 1);

  Tensor big(Shape{1, 3});
  big[0] = 1000.0f;
  big[1] = -1000.0f;
  big[2] = 999.0f;
  const std::vector<std::int32_t> label = {2};
  const double v = loss.forward_backward(big, label);
  EXPECT_NEAR(v, std::log(1.0 + std::exp(-1.0)) + 1.0, 1e-9);
  EXPECT_TRUE(std::isfinite(loss.diff_logits()[1]));
}

TEST(SoftmaxCrossEntropy, RejectsBadInput) {
  SoftmaxCrossEntropy loss;
  const std::vector<std::int32_t> labels = {0, 3};
  EXPECT_THROW(loss.forward(Tensor(Shape{2, 3}), labels), Error);  // label 3 of 3 classes
  const std::vector<std::int32_t> one = {0};
  EXPECT_THROW(loss.forward(Tensor(Shape{2, 3}), one), Error);  // count
  EXPECT_THROW(loss.forward(Tensor(Shape{2, 3, 1, 1}), labels), Error);
}

}  // namespace
}  // namespace pimqat::nn
