// ConvEngine and Conv2d against the naive double reference (nn/conv_reference.h) on awkward
// shapes, finite-difference gradients of the layer, plan caching, accumulation and determinism.
#include "nn/conv.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "nn/conv_reference.h"
#include "nn/init.h"
#include "tests/nn/gradcheck.h"

namespace pimqat::nn {
namespace {

using testing::expect_close;
using testing::random_tensor;
using testing::same_bits;
using testing::to_double;

struct Case {
  Index n, c, h, w;
  ConvGeometry g;
};

std::string describe(const Case& k) {
  return "src (" + std::to_string(k.n) + ", " + std::to_string(k.c) + ", " + std::to_string(k.h) + ", " +
         std::to_string(k.w) + "), " + k.g.str();
}

// Odd spatial sizes, channel counts that are not multiples of 16, 1x1 and 3x3, stride 1 and 2,
// padding 0 and 1, batch 1 and 3; plus the multiples of 16 the ResNets use (blocked layouts).
const std::vector<Case> kCases = {
    {1, 3, 7, 5, {3, 5, 3, 1, 1}},     {3, 5, 7, 5, {5, 17, 3, 2, 1}},  {3, 17, 6, 9, {17, 3, 1, 2, 0}},
    {1, 17, 5, 7, {17, 16, 1, 1, 0}},  {3, 16, 8, 8, {16, 32, 3, 2, 1}}, {2, 32, 9, 9, {32, 32, 3, 1, 0}},
    {3, 16, 7, 7, {16, 32, 1, 2, 0}},  {1, 1, 9, 9, {1, 16, 3, 1, 1}},  {3, 5, 5, 7, {5, 3, 3, 2, 0}},
};

TEST(ConvEngine, MatchesReferenceOnAwkwardShapes) {
  RandomStream stream(RngKey{11, 0, Purpose::Operands, 1});
  for (const Case& k : kCases) {
    SCOPED_TRACE(describe(k));
    const Tensor src = random_tensor({k.n, k.c, k.h, k.w}, stream);
    const Tensor weight = random_tensor(k.g.weight_shape(), stream);
    ConvEngine engine(k.g);
    Tensor dst;
    engine.forward(src, weight, dst);
    Tensor expected;
    conv2d_reference_forward(src, weight, k.g, expected);
    ASSERT_EQ(dst.shape(), expected.shape());
    expect_close(dst, to_double(expected), 1e-5, "forward");

    const Tensor diff_dst = random_tensor(dst.shape(), stream);
    Tensor diff_src, diff_weight;
    engine.backward_data(diff_dst, weight, diff_src);
    engine.backward_weights(src, diff_dst, diff_weight);
    Tensor expected_src, expected_weight;
    conv2d_reference_backward_data(diff_dst, src.shape(), weight, k.g, expected_src);
    conv2d_reference_backward_weights(src, diff_dst, k.g, expected_weight);
    ASSERT_EQ(diff_src.shape(), src.shape());
    ASSERT_EQ(diff_weight.shape(), weight.shape());
    expect_close(diff_src, to_double(expected_src), 1e-5, "backward_data");
    expect_close(diff_weight, to_double(expected_weight), 1e-5, "backward_weights");
  }
}

TEST(ConvEngine, BackwardInEitherOrderAndWithAFreshSrc) {
  RandomStream stream(RngKey{12, 0, Purpose::Operands, 1});
  const Case k{3, 16, 9, 7, {16, 16, 3, 1, 1}};
  const Tensor src = random_tensor({k.n, k.c, k.h, k.w}, stream);
  const Tensor weight = random_tensor(k.g.weight_shape(), stream);
  const Tensor diff_dst = random_tensor(ConvEngine(k.g).output_shape(src.shape()), stream);
  Tensor expected_src, expected_weight;
  conv2d_reference_backward_data(diff_dst, src.shape(), weight, k.g, expected_src);
  conv2d_reference_backward_weights(src, diff_dst, k.g, expected_weight);

  ConvEngine engine(k.g);
  Tensor dst, diff_src, diff_weight;
  engine.forward(src, weight, dst);
  engine.backward_weights(src, diff_dst, diff_weight);  // weights first, then data
  engine.backward_data(diff_dst, weight, diff_src);
  expect_close(diff_src, to_double(expected_src), 1e-5, "backward_data after backward_weights");
  expect_close(diff_weight, to_double(expected_weight), 1e-5, "backward_weights first");

  // A copy of src (different storage) must be converted afresh, not taken from forward's cache;
  // likewise a different diff_dst after a cached one.
  const Tensor src_copy = src;
  const Tensor diff_dst_2 = random_tensor(diff_dst.shape(), stream);
  engine.backward_weights(src_copy, diff_dst_2, diff_weight);
  conv2d_reference_backward_weights(src, diff_dst_2, k.g, expected_weight);
  expect_close(diff_weight, to_double(expected_weight), 1e-5, "backward_weights with a fresh diff_dst");
  engine.backward_data(diff_dst_2, weight, diff_src);
  conv2d_reference_backward_data(diff_dst_2, src.shape(), weight, k.g, expected_src);
  expect_close(diff_src, to_double(expected_src), 1e-5, "backward_data with a fresh diff_dst");
}

// prepare_backward sets the backward up without computing the forward: the gradients are the
// bits of forward-then-backward (NCHW and blocked layouts, every case shape), and they match the
// reference. A plan made by an earlier forward of another shape must not leak into it.
TEST(ConvEngine, PrepareBackwardGivesTheBitsOfForwardThenBackward) {
  RandomStream stream(RngKey{18, 0, Purpose::Operands, 1});
  for (const Case& k : kCases) {
    SCOPED_TRACE(describe(k));
    const Tensor src = random_tensor({k.n, k.c, k.h, k.w}, stream);
    const Tensor weight = random_tensor(k.g.weight_shape(), stream);
    ConvEngine with_forward(k.g), prepared(k.g);
    Tensor dst;
    with_forward.forward(src, weight, dst);
    const Tensor diff_dst = random_tensor(dst.shape(), stream);
    // The prepared engine first sees another batch size through a real forward, then other
    // values in the same storage (as a layer's reused x_q buffer), which are then overwritten
    // with src's: its cached internal copy of the forward's src must not be used.
    const Tensor other = random_tensor({k.n + 1, k.c, k.h, k.w}, stream);
    Tensor other_dst, reused = random_tensor(src.shape(), stream);
    prepared.forward(other, weight, other_dst);
    prepared.forward(reused, weight, other_dst);
    std::copy(src.data(), src.data() + src.size(), reused.data());
    prepared.prepare_backward(src.shape());
    Tensor diff_src[2], diff_weight[2];
    with_forward.backward_data(diff_dst, weight, diff_src[0]);
    with_forward.backward_weights(src, diff_dst, diff_weight[0]);
    prepared.backward_data(diff_dst, weight, diff_src[1]);
    prepared.backward_weights(reused, diff_dst, diff_weight[1]);
    EXPECT_TRUE(same_bits(diff_src[0], diff_src[1])) << "backward_data";
    EXPECT_TRUE(same_bits(diff_weight[0], diff_weight[1])) << "backward_weights";
    Tensor expected_src, expected_weight;
    conv2d_reference_backward_data(diff_dst, src.shape(), weight, k.g, expected_src);
    conv2d_reference_backward_weights(src, diff_dst, k.g, expected_weight);
    expect_close(diff_src[1], to_double(expected_src), 1e-5, "prepared backward_data");
    expect_close(diff_weight[1], to_double(expected_weight), 1e-5, "prepared backward_weights");
    // Weights first, then data, on a prepared engine.
    prepared.prepare_backward(src.shape());
    prepared.backward_weights(reused, diff_dst, diff_weight[1]);
    prepared.backward_data(diff_dst, weight, diff_src[1]);
    EXPECT_TRUE(same_bits(diff_src[0], diff_src[1])) << "backward_data after backward_weights";
    EXPECT_TRUE(same_bits(diff_weight[0], diff_weight[1])) << "backward_weights first";

    if (!with_forward.supports_blocked()) continue;
    Tensor src_b, diff_dst_b, dst_b;
    to_blocked(src, src_b);
    to_blocked(diff_dst, diff_dst_b);
    with_forward.forward(src_b, weight, dst_b, Layout::Blocked);
    prepared.prepare_backward(src_b.shape(), Layout::Blocked);
    with_forward.backward_data(diff_dst_b, weight, diff_src[0]);
    with_forward.backward_weights(src_b, diff_dst_b, diff_weight[0]);
    prepared.backward_data(diff_dst_b, weight, diff_src[1]);
    prepared.backward_weights(src_b, diff_dst_b, diff_weight[1]);
    EXPECT_TRUE(same_bits(diff_src[0], diff_src[1])) << "blocked backward_data";
    EXPECT_TRUE(same_bits(diff_weight[0], diff_weight[1])) << "blocked backward_weights";
  }
  ConvEngine engine(kCases[0].g);
  EXPECT_THROW(engine.prepare_backward(Shape{1, kCases[0].g.in_channels + 1, 7, 5}), Error);
}

TEST(ConvEngine, AccumulateAddsToDiffSrc) {
  RandomStream stream(RngKey{13, 0, Purpose::Operands, 1});
  for (const Case& k : {Case{3, 16, 8, 8, {16, 16, 3, 1, 1}}, Case{2, 5, 7, 5, {5, 3, 3, 2, 1}}}) {
    SCOPED_TRACE(describe(k));
    const Tensor src = random_tensor({k.n, k.c, k.h, k.w}, stream);
    const Tensor weight = random_tensor(k.g.weight_shape(), stream);
    ConvEngine engine(k.g);
    Tensor dst;
    engine.forward(src, weight, dst);
    const Tensor diff_dst = random_tensor(dst.shape(), stream);
    const Tensor base = random_tensor(src.shape(), stream);
    Tensor diff_src = base;
    engine.backward_data(diff_dst, weight, diff_src, Accumulate::Add);
    Tensor expected;
    conv2d_reference_backward_data(diff_dst, src.shape(), weight, k.g, expected);
    for (Index i = 0; i < expected.size(); ++i) expected[i] += base[i];
    expect_close(diff_src, to_double(expected), 1e-5, "accumulated backward_data");
    Tensor wrong_shape(Shape{1, 2, 3, 4});
    EXPECT_THROW(engine.backward_data(diff_dst, weight, wrong_shape, Accumulate::Add), Error);
  }
}

TEST(ConvEngine, CachesPlansPerBatchSize) {
  RandomStream stream(RngKey{14, 0, Purpose::Operands, 1});
  const ConvGeometry g{16, 16, 3, 1, 1};
  const Tensor weight = random_tensor(g.weight_shape(), stream);
  ConvEngine engine(g);
  for (Index n : {3, 1, 3, 2}) {
    SCOPED_TRACE("batch " + std::to_string(n));
    const Tensor src = random_tensor({n, 16, 6, 5}, stream);
    Tensor dst, expected;
    engine.forward(src, weight, dst);
    conv2d_reference_forward(src, weight, g, expected);
    expect_close(dst, to_double(expected), 1e-5, "forward");
    const Tensor diff_dst = random_tensor(dst.shape(), stream);
    Tensor diff_src;
    engine.backward_data(diff_dst, weight, diff_src);
    conv2d_reference_backward_data(diff_dst, src.shape(), weight, g, expected);
    expect_close(diff_src, to_double(expected), 1e-5, "backward_data");
  }
}

TEST(ConvEngine, DeterministicBits) {
  RandomStream stream(RngKey{15, 0, Purpose::Operands, 1});
  const ConvGeometry g{16, 32, 3, 2, 1};
  const Tensor src = random_tensor({8, 16, 16, 16}, stream);
  const Tensor weight = random_tensor(g.weight_shape(), stream);
  const Tensor diff_dst = random_tensor({8, 32, 8, 8}, stream);
  Tensor outputs[2][3];
  for (auto& out : outputs) {
    ConvEngine engine(g);
    engine.forward(src, weight, out[0]);
    engine.backward_data(diff_dst, weight, out[1]);
    engine.backward_weights(src, diff_dst, out[2]);
  }
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(same_bits(outputs[0][i], outputs[1][i])) << "output " << i;
}

TEST(ConvEngine, RejectsBadInput) {
  EXPECT_THROW(ConvEngine(ConvGeometry{0, 16, 3, 1, 1}), Error);
  EXPECT_THROW(ConvEngine(ConvGeometry{3, 16, 3, 0, 1}), Error);
  EXPECT_THROW(ConvEngine(ConvGeometry{3, 16, 3, 1, -1}), Error);
  ConvEngine engine(ConvGeometry{3, 16, 3, 1, 0});
  Tensor dst;
  EXPECT_THROW(engine.forward(Tensor(Shape{2, 4, 8, 8}), Tensor(Shape{16, 3, 3, 3}), dst), Error);  // channels
  EXPECT_THROW(engine.forward(Tensor(Shape{2, 3, 2, 8}), Tensor(Shape{16, 3, 3, 3}), dst), Error);  // too small
  EXPECT_THROW(engine.forward(Tensor(Shape{2, 3, 8, 8}), Tensor(Shape{16, 3, 1, 1}), dst), Error);  // weight
  Tensor diff_src;
  EXPECT_THROW(engine.backward_data(Tensor(Shape{2, 16, 6, 6}), Tensor(Shape{16, 3, 3, 3}), diff_src), Error);
  EXPECT_EQ(engine.output_shape(Shape{2, 3, 8, 7}), (Shape{2, 16, 6, 5}));
}

TEST(Layout, TransposeAndBlockedConversions) {
  RandomStream stream(RngKey{18, 0, Purpose::Operands, 0});
  // Sizes around the 16 x 16 register tiles, with padded strides.
  for (auto [rows, cols] : {std::pair<Index, Index>{16, 16}, {37, 45}, {5, 70}, {33, 16}}) {
    const Index src_stride = cols + 3, dst_stride = rows + 5;
    const Tensor src = random_tensor({rows * src_stride}, stream);
    Tensor dst(Shape{cols * dst_stride}, -7.0f);
    transpose(src.data(), src_stride, rows, cols, dst.data(), dst_stride);
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) ASSERT_EQ(dst[j * dst_stride + i], src[i * src_stride + j]) << i << ", " << j;
    for (Index j = 0; j < cols; ++j)
      for (Index i = rows; i < dst_stride; ++i) ASSERT_EQ(dst[j * dst_stride + i], -7.0f);  // padding untouched
  }
  const Index b = channel_block();
  const Tensor nchw = random_tensor({3, 2 * b, 5, 7}, stream);
  Tensor blocked, back;
  to_blocked(nchw, blocked);
  ASSERT_EQ(blocked.shape(), nchw.shape());
  for (Index n = 0; n < 3; ++n)
    for (Index c = 0; c < 2 * b; ++c)
      for (Index h = 0; h < 5; ++h)
        for (Index w = 0; w < 7; ++w)
          ASSERT_EQ(blocked[(((n * 2 + c / b) * 5 + h) * 7 + w) * b + c % b], nchw.at(n, c, h, w));
  to_nchw(blocked, back);
  EXPECT_TRUE(same_bits(back, nchw));
  EXPECT_THROW(to_blocked(Tensor(Shape{2, b + 1, 3, 3}), blocked), Error);
}

TEST(ConvEngine, BlockedLayoutMatchesNchw) {
  RandomStream stream(RngKey{19, 0, Purpose::Operands, 0});
  const Index b = channel_block();
  for (const ConvGeometry& g : {ConvGeometry{b, 2 * b, 3, 2, 1}, ConvGeometry{2 * b, b, 1, 1, 0}}) {
    SCOPED_TRACE(g.str());
    const Tensor src = random_tensor({3, g.in_channels, 9, 7}, stream);
    const Tensor weight = random_tensor(g.weight_shape(), stream);
    ConvEngine engine(g);
    ASSERT_TRUE(engine.supports_blocked());
    Tensor src_b, dst_b, dst, expected;
    to_blocked(src, src_b);
    engine.forward(src_b, weight, dst_b, Layout::Blocked);
    to_nchw(dst_b, dst);
    conv2d_reference_forward(src, weight, g, expected);
    expect_close(dst, to_double(expected), 1e-5, "blocked forward");
    const Tensor diff_dst = random_tensor(dst.shape(), stream);
    Tensor diff_dst_b, diff_src_b, diff_src, diff_weight;
    to_blocked(diff_dst, diff_dst_b);
    engine.backward_data(diff_dst_b, weight, diff_src_b);
    engine.backward_weights(src_b, diff_dst_b, diff_weight);
    to_nchw(diff_src_b, diff_src);
    conv2d_reference_backward_data(diff_dst, src.shape(), weight, g, expected);
    expect_close(diff_src, to_double(expected), 1e-5, "blocked backward_data");
    conv2d_reference_backward_weights(src, diff_dst, g, expected);
    expect_close(diff_weight, to_double(expected), 1e-5, "blocked backward_weights");
    Tensor diff_src_sum = diff_src_b;
    engine.backward_data(diff_dst_b, weight, diff_src_sum, Accumulate::Add);
    for (Index i = 0; i < diff_src_sum.size(); ++i) EXPECT_NEAR(diff_src_sum[i], 2.0f * diff_src_b[i], 1e-5f);
  }
  // Conv2d's blocked interface: same numbers; the NCHW backward refuses a blocked forward.
  {
    const ConvGeometry g{b, b, 3, 1, 1};
    Conv2d conv("conv", g);
    kaiming_normal_fan_out(conv.weight().value, stream);
    ASSERT_TRUE(conv.supports_blocked());
    const Tensor src = random_tensor({2, b, 5, 4}, stream);
    Tensor src_b, dst, expected;
    to_blocked(src, src_b);
    to_nchw(conv.forward_blocked(src_b, Mode::Train), dst);
    conv2d_reference_forward(src, conv.weight().value, g, expected);
    expect_close(dst, to_double(expected), 1e-5, "Conv2d forward_blocked");
    EXPECT_THROW(conv.backward(src_b), Error);
    const Tensor diff_dst = random_tensor(dst.shape(), stream);
    Tensor diff_dst_b, diff_src;
    to_blocked(diff_dst, diff_dst_b);
    to_nchw(conv.backward_blocked(diff_dst_b), diff_src);
    conv2d_reference_backward_data(diff_dst, src.shape(), conv.weight().value, g, expected);
    expect_close(diff_src, to_double(expected), 1e-5, "Conv2d backward_blocked");
    conv2d_reference_backward_weights(src, diff_dst, g, expected);
    expect_close(conv.weight().grad, to_double(expected), 1e-5, "Conv2d weight gradient (blocked)");
  }
  ConvEngine odd(ConvGeometry{3, b, 3, 1, 1});
  EXPECT_FALSE(odd.supports_blocked());
  Tensor dst;
  EXPECT_THROW(odd.forward(Tensor(Shape{1, 3, 4, 4}), Tensor(Shape{b, 3, 3, 3}), dst, Layout::Blocked), Error);
}

TEST(Conv2d, GradientsMatchFiniteDifferences) {
  RandomStream stream(RngKey{16, 0, Purpose::Operands, 1});
  for (const Case& k : {Case{2, 3, 7, 5, {3, 4, 3, 2, 1}}, Case{2, 5, 5, 6, {5, 3, 1, 1, 0}}}) {
    SCOPED_TRACE(describe(k));
    Conv2d conv("conv", k.g);
    RandomStream init(RngKey{16, 0, Purpose::WeightInit, 2});
    kaiming_normal_fan_out(conv.weight().value, init);
    const Tensor src = random_tensor({k.n, k.c, k.h, k.w}, stream);
    const Tensor& dst = conv.forward(src, Mode::Train);
    const Tensor upstream = random_tensor(dst.shape(), stream);
    const Tensor& diff_src = conv.backward(upstream);

    const Shape src_shape = src.shape();
    const ConvGeometry g = k.g;
    const testing::DoubleFunction f = [&](const std::vector<testing::Vector>& in) {
      testing::Vector out;
      conv2d_reference_forward(in[0], src_shape, in[1], g, out);
      return out;
    };
    const std::vector<testing::Vector> inputs = {to_double(src), to_double(conv.weight().value)};
    expect_close(dst, f(inputs), 1e-5, "forward");
    testing::expect_gradient(f, inputs, 0, to_double(upstream), diff_src, 1e-4, "dL/dsrc");
    testing::expect_gradient(f, inputs, 1, to_double(upstream), conv.weight().grad, 1e-4, "dL/dweight");
  }
}

TEST(Conv2d, ParameterNameAndSkippedInputGradient) {
  Conv2d conv("layer1.0.conv1", ConvGeometry{3, 16, 3, 1, 1}, InputGradient::Skip);
  std::vector<Parameter*> params;
  conv.collect_parameters(params);
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0]->name, "layer1.0.conv1.weight");
  EXPECT_EQ(params[0]->value.shape(), (Shape{16, 3, 3, 3}));
  RandomStream stream(RngKey{17, 0, Purpose::Operands, 1});
  kaiming_normal_fan_out(conv.weight().value, stream);
  const Tensor src = random_tensor({2, 3, 5, 5}, stream);
  EXPECT_THROW(conv.backward(Tensor(Shape{2, 16, 5, 5})), Error);  // no Train forward yet
  const Tensor& dst = conv.forward(src, Mode::Train);
  const Tensor diff_dst = random_tensor(dst.shape(), stream);
  EXPECT_TRUE(conv.backward(diff_dst).empty());
  EXPECT_THROW(conv.backward_blocked(diff_dst), Error);  // the latest forward was NCHW
  Tensor expected;
  conv2d_reference_backward_weights(src, diff_dst, conv.geometry(), expected);
  expect_close(conv.weight().grad, to_double(expected), 1e-5, "weight gradient");
}

}  // namespace
}  // namespace pimqat::nn
