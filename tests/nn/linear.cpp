// Linear: forward against a double reference, gradients (src, weight, bias) against central
// differences, 4-D input, PyTorch's default init bound, bad input.
#include "nn/linear.h"

#include <gtest/gtest.h>

#include <cmath>

#include "nn/init.h"
#include "tests/nn/gradcheck.h"

namespace pimqat::nn {
namespace {

testing::Vector linear_reference(const testing::Vector& x, const testing::Vector& w, const testing::Vector& b, Index n,
                                 Index in, Index out) {
  testing::Vector y(static_cast<std::size_t>(n * out));
  for (Index r = 0; r < n; ++r)
    for (Index o = 0; o < out; ++o) {
      double s = b[static_cast<std::size_t>(o)];
      for (Index i = 0; i < in; ++i) s += x[static_cast<std::size_t>(r * in + i)] * w[static_cast<std::size_t>(o * in + i)];
      y[static_cast<std::size_t>(r * out + o)] = s;
    }
  return y;
}

TEST(Linear, GradientsMatchFiniteDifferences) {
  RandomStream stream(RngKey{51, 0, Purpose::Operands, 0});
  for (const Shape& src_shape : {Shape{3, 17}, Shape{5, 7, 1, 1}}) {
    SCOPED_TRACE(src_shape.str());
    const Index n = src_shape[0], in = src_shape.numel() / n, out = 5;
    Linear fc("fc", in, out);
    RandomStream init(RngKey{51, 0, Purpose::WeightInit, 1});
    linear_default_init(fc.weight().value, &fc.bias().value, init);
    const Tensor src = testing::random_tensor(src_shape, stream);
    const Tensor& dst = fc.forward(src, Mode::Train);
    ASSERT_EQ(dst.shape(), (Shape{n, out}));
    const Tensor upstream = testing::random_tensor(dst.shape(), stream);
    const Tensor& diff_src = fc.backward(upstream);
    EXPECT_EQ(diff_src.shape(), src_shape);
    const testing::DoubleFunction f = [&](const std::vector<testing::Vector>& v) {
      return linear_reference(v[0], v[1], v[2], n, in, out);
    };
    const std::vector<testing::Vector> inputs = {testing::to_double(src), testing::to_double(fc.weight().value),
                                                 testing::to_double(fc.bias().value)};
    const testing::Vector r = testing::to_double(upstream);
    testing::expect_close(dst, f(inputs), 1e-6, "forward");
    testing::expect_gradient(f, inputs, 0, r, diff_src, 1e-5, "dL/dsrc");
    testing::expect_gradient(f, inputs, 1, r, fc.weight().grad, 1e-5, "dL/dweight");
    testing::expect_gradient(f, inputs, 2, r, fc.bias().grad, 1e-5, "dL/dbias");
  }
}

TEST(Linear, DefaultInitBoundAndNames) {
  Linear fc("fc", 64, 10);
  RandomStream init(RngKey{52, 0, Purpose::WeightInit, 0});
  linear_default_init(fc.weight().value, &fc.bias().value, init);
  const double bound = 1.0 / std::sqrt(64.0);
  double max_abs = 0.0;
  for (Index i = 0; i < fc.weight().value.size(); ++i) max_abs = std::max(max_abs, std::abs(double{fc.weight().value[i]}));
  EXPECT_LE(max_abs, bound);
  EXPECT_GT(max_abs, 0.9 * bound);  // 640 uniform draws reach close to the bound
  for (Index i = 0; i < 10; ++i) EXPECT_LE(std::abs(fc.bias().value[i]), bound);
  std::vector<Parameter*> params;
  fc.collect_parameters(params);
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0]->name, "fc.weight");
  EXPECT_EQ(params[1]->name, "fc.bias");
  EXPECT_TRUE(params[0]->weight_decay);
  EXPECT_FALSE(params[1]->weight_decay);
}

TEST(Linear, RejectsBadInput) {
  Linear fc("fc", 6, 3);
  EXPECT_THROW(fc.forward(Tensor(Shape{2, 5}), Mode::Train), Error);
  EXPECT_THROW(fc.backward(Tensor(Shape{2, 3})), Error);
  const Tensor src(Shape{2, 6});  // must outlive backward (Layer contract)
  fc.forward(src, Mode::Train);
  EXPECT_THROW(fc.backward(Tensor(Shape{2, 4})), Error);
  EXPECT_THROW(Linear("bad", 0, 3), Error);
}

}  // namespace
}  // namespace pimqat::nn
