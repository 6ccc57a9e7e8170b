// ReLU: forward values, gradient away from the kink against central differences, zero at 0.
#include "nn/activation.h"

#include <gtest/gtest.h>

#include "tests/nn/gradcheck.h"

namespace pimqat::nn {
namespace {

TEST(ReLU, GradientMatchesFiniteDifferences) {
  RandomStream stream(RngKey{31, 0, Purpose::Operands, 0});
  ReLU relu("relu");
  const Tensor src = testing::random_away_from_zero({3, 5, 7, 3}, stream, 1e-2, 2.0);
  const Tensor& dst = relu.forward(src, Mode::Train);
  const Tensor upstream = testing::random_tensor(src.shape(), stream);
  const Tensor& diff_src = relu.backward(upstream);
  const testing::DoubleFunction f = [](const std::vector<testing::Vector>& in) { return testing::relu_reference(in[0]); };
  const std::vector<testing::Vector> inputs = {testing::to_double(src)};
  testing::expect_close(dst, f(inputs), 0.0, "forward");
  testing::expect_gradient(f, inputs, 0, testing::to_double(upstream), diff_src, 1e-6, "dL/dsrc");
}

TEST(ReLU, ZeroGradientAtZeroAndShapes) {
  ReLU relu("relu");
  Tensor src(Shape{2, 3});
  const float values[] = {-1.0f, 0.0f, 2.5f, -0.0f, 1e-30f, -3.0f};
  for (Index i = 0; i < 6; ++i) src[i] = values[i];
  const Tensor& dst = relu.forward(src, Mode::Train);
  EXPECT_EQ(dst.shape(), src.shape());
  const float expected[] = {0.0f, 0.0f, 2.5f, 0.0f, 1e-30f, 0.0f};
  for (Index i = 0; i < 6; ++i) EXPECT_EQ(dst[i], expected[i]);
  const Tensor& diff = relu.backward(Tensor(Shape{2, 3}, 1.0f));
  const float expected_diff[] = {0.0f, 0.0f, 1.0f, 0.0f, 1.0f, 0.0f};
  for (Index i = 0; i < 6; ++i) EXPECT_EQ(diff[i], expected_diff[i]);
  EXPECT_THROW(relu.backward(Tensor(Shape{3, 2}, 1.0f)), Error);
  relu.forward(src, Mode::Eval);
  EXPECT_THROW(relu.backward(Tensor(Shape{2, 3}, 1.0f)), Error);
}

}  // namespace
}  // namespace pimqat::nn
