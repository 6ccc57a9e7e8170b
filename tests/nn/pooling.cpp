// GlobalAvgPool: forward against a double mean, gradient against central differences.
#include "nn/pooling.h"

#include <gtest/gtest.h>

#include "tests/nn/gradcheck.h"

namespace pimqat::nn {
namespace {

testing::Vector pool_reference(const testing::Vector& x, const Shape& s) {
  const Index planes = s[0] * s[1], plane = s[2] * s[3];
  testing::Vector y(static_cast<std::size_t>(planes), 0.0);
  for (Index p = 0; p < planes; ++p) {
    for (Index i = 0; i < plane; ++i) y[static_cast<std::size_t>(p)] += x[static_cast<std::size_t>(p * plane + i)];
    y[static_cast<std::size_t>(p)] /= static_cast<double>(plane);
  }
  return y;
}

TEST(GlobalAvgPool, ForwardAndGradient) {
  RandomStream stream(RngKey{41, 0, Purpose::Operands, 0});
  for (const Shape& shape : {Shape{3, 5, 7, 3}, Shape{2, 17, 1, 1}, Shape{1, 2, 9, 11}}) {
    SCOPED_TRACE(shape.str());
    GlobalAvgPool pool("avgpool");
    const Tensor src = testing::random_tensor(shape, stream, -3.0, 1.0);
    const Tensor& dst = pool.forward(src, Mode::Train);
    ASSERT_EQ(dst.shape(), (Shape{shape[0], shape[1]}));
    const Tensor upstream = testing::random_tensor(dst.shape(), stream);
    const Tensor& diff_src = pool.backward(upstream);
    const testing::DoubleFunction f = [&](const std::vector<testing::Vector>& in) { return pool_reference(in[0], shape); };
    const std::vector<testing::Vector> inputs = {testing::to_double(src)};
    testing::expect_close(dst, f(inputs), 1e-6, "forward");
    testing::expect_gradient(f, inputs, 0, testing::to_double(upstream), diff_src, 1e-5, "dL/dsrc");
  }
}

TEST(GlobalAvgPool, RejectsBadInput) {
  GlobalAvgPool pool("avgpool");
  EXPECT_THROW(pool.forward(Tensor(Shape{2, 3}), Mode::Train), Error);
  EXPECT_THROW(pool.backward(Tensor(Shape{2, 3})), Error);
}

}  // namespace
}  // namespace pimqat::nn
