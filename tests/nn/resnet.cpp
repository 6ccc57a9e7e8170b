// BasicBlock (with and without the shortcut conv) and a small network against double references
// with central differences; ResNet shapes, parameter count, names, initialization, factory
// plumbing and bit-for-bit determinism.
#include "nn/resnet.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "nn/conv_reference.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/pooling.h"
#include "tests/nn/gradcheck.h"

namespace pimqat::nn {
namespace {

using testing::to_double;
using testing::Vector;

Vector conv_ref(const Vector& x, const Shape& s, const Vector& w, const ConvGeometry& g, Shape& out_shape) {
  Vector y;
  conv2d_reference_forward(x, s, w, g, y);
  out_shape = Shape{s[0], g.out_channels, g.output_size(s[2]), g.output_size(s[3])};
  return y;
}

void randomize_affine(BatchNorm2d& bn, RandomStream& stream) {
  for (Index c = 0; c < bn.channels(); ++c) {
    bn.weight().value[c] = static_cast<float>(0.6 + 0.8 * stream.uniform_double());
    bn.bias().value[c] = static_cast<float>(0.6 * stream.uniform_double() - 0.3);
  }
}

// The block in double. inputs: x, w1, g1, b1, w2, g2, b2 [, ws, gs, bs]. Also reports the
// smallest |pre-activation| of both ReLUs (to keep central differences off the kinks).
Vector block_reference(const std::vector<Vector>& in, const Shape& x_shape, const ConvGeometry& g1,
                       const ConvGeometry& g2, const ConvGeometry* gs, double* min_pre = nullptr) {
  Shape s1, s2, ss;
  const Vector y1 = conv_ref(in[0], x_shape, in[1], g1, s1);
  const Vector pre1 = testing::batchnorm_train_reference(y1, s1, in[2], in[3], false);
  const Vector h1 = testing::relu_reference(pre1);
  const Vector y2 = conv_ref(h1, s1, in[4], g2, s2);
  Vector sum = testing::batchnorm_train_reference(y2, s2, in[5], in[6], false);
  if (gs) {
    const Vector ys = conv_ref(in[0], x_shape, in[7], *gs, ss);
    const Vector zs = testing::batchnorm_train_reference(ys, ss, in[8], in[9], false);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += zs[i];
  } else {
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += in[0][i];
  }
  if (min_pre) *min_pre = std::min(testing::min_abs(pre1), testing::min_abs(sum));
  return testing::relu_reference(sum);
}

struct BlockCase {
  Shape x_shape;
  Index out_channels;
  Index stride;
  bool shortcut;
};

TEST(BasicBlock, GradientsMatchFiniteDifferences) {
  for (const BlockCase& k : {BlockCase{{2, 4, 5, 5}, 4, 1, false}, BlockCase{{2, 3, 7, 6}, 4, 2, true}}) {
    SCOPED_TRACE(k.shortcut ? "1x1 conv shortcut, stride 2" : "identity shortcut");
    const Index cin = k.x_shape[1], cout = k.out_channels;
    const ConvGeometry g1{cin, cout, 3, k.stride, 1}, g2{cout, cout, 3, 1, 1}, gs{cin, cout, 1, k.stride, 0};
    // Draw until no ReLU input lies within 2e-4 of its kink (deterministic: the first such seed).
    for (std::uint64_t seed = 0;; ++seed) {
      ASSERT_LT(seed, 50u) << "no usable seed";
      RandomStream stream(RngKey{71, seed, Purpose::Operands, k.shortcut ? 1u : 0u});
      auto make_conv = [&](const std::string& name, const ConvGeometry& g) {
        auto conv = std::make_unique<Conv2d>(name, g);
        kaiming_normal_fan_out(conv->weight().value, stream);
        return conv;
      };
      BasicBlock block("blk", cout, make_conv("blk.conv1", g1), make_conv("blk.conv2", g2),
                       k.shortcut ? make_conv("blk.shortcut.conv", gs) : nullptr);
      randomize_affine(block.bn1(), stream);
      randomize_affine(block.bn2(), stream);
      if (k.shortcut) randomize_affine(*block.shortcut_bn(), stream);
      const Tensor src = testing::random_tensor(k.x_shape, stream, -1.0, 1.5);

      std::vector<Parameter*> params;
      block.collect_parameters(params);
      std::vector<Vector> inputs = {to_double(src)};
      for (Parameter* p : params) inputs.push_back(to_double(p->value));
      const ConvGeometry* gsp = k.shortcut ? &gs : nullptr;
      double min_pre = 0.0;
      const Vector expected = block_reference(inputs, k.x_shape, g1, g2, gsp, &min_pre);
      if (min_pre < 2e-4) continue;

      const Tensor& dst = block.forward(src, Mode::Train);
      testing::expect_close(dst, expected, 1e-5, "forward");
      const Tensor upstream = testing::random_tensor(dst.shape(), stream);
      const Tensor& diff_src = block.backward(upstream);
      const testing::DoubleFunction f = [&](const std::vector<Vector>& in) {
        return block_reference(in, k.x_shape, g1, g2, gsp);
      };
      const Vector r = to_double(upstream);
      testing::expect_gradient(f, inputs, 0, r, diff_src, 2e-4, "dL/dsrc");
      for (std::size_t i = 0; i < params.size(); ++i)
        testing::expect_gradient(f, inputs, i + 1, r, params[i]->grad, 2e-4, "dL/d" + params[i]->name);
      break;
    }
  }
}

// A convolution layer that is not a Conv2d (so BasicBlock takes its generic path): delegates.
class OpaqueConv : public Layer {
 public:
  explicit OpaqueConv(std::unique_ptr<Conv2d> conv) : Layer(conv->name()), conv_(std::move(conv)) {}
  const Tensor& forward(const Tensor& src, Mode mode) override { return conv_->forward(src, mode); }
  const Tensor& backward(const Tensor& diff_dst) override { return conv_->backward(diff_dst); }
  void collect_parameters(std::vector<Parameter*>& out) override { conv_->collect_parameters(out); }

 private:
  std::unique_ptr<Conv2d> conv_;
};

// The blocked fast path (16-channel multiples, Conv2d convs) against central differences of the
// double reference (sampled entries), and against the generic path on the same weights.
TEST(BasicBlock, FastPathMatchesReferenceAndGenericPath) {
  const Index b = channel_block();
  for (const BlockCase& k : {BlockCase{{2, b, 5, 3}, b, 1, false}, BlockCase{{3, b, 7, 6}, 2 * b, 2, true}}) {
    SCOPED_TRACE(k.shortcut ? "1x1 conv shortcut, stride 2" : "identity shortcut");
    const Index cin = k.x_shape[1], cout = k.out_channels;
    const ConvGeometry g1{cin, cout, 3, k.stride, 1}, g2{cout, cout, 3, 1, 1}, gs{cin, cout, 1, k.stride, 0};
    for (std::uint64_t seed = 0;; ++seed) {
      ASSERT_LT(seed, 50u) << "no usable seed";
      RandomStream stream(RngKey{75, seed, Purpose::Operands, k.shortcut ? 1u : 0u});
      std::unique_ptr<BasicBlock> blocks[2];
      for (int generic = 0; generic < 2; ++generic) {
        RandomStream init(RngKey{76, seed, Purpose::WeightInit, 0});  // same weights for both blocks
        auto make_conv = [&](const std::string& name, const ConvGeometry& g) -> LayerPtr {
          auto conv = std::make_unique<Conv2d>(name, g);
          kaiming_normal_fan_out(conv->weight().value, init);
          if (generic) return std::make_unique<OpaqueConv>(std::move(conv));
          return conv;
        };
        blocks[generic] = std::make_unique<BasicBlock>("blk", cout, make_conv("blk.conv1", g1), make_conv("blk.conv2", g2),
                                                       k.shortcut ? make_conv("blk.shortcut.conv", gs) : nullptr);
        RandomStream affine(RngKey{77, seed, Purpose::Operands, 0});
        randomize_affine(blocks[generic]->bn1(), affine);
        randomize_affine(blocks[generic]->bn2(), affine);
        if (k.shortcut) randomize_affine(*blocks[generic]->shortcut_bn(), affine);
      }
      ASSERT_TRUE(blocks[0]->uses_blocked_layout());
      ASSERT_FALSE(blocks[1]->uses_blocked_layout());
      const Tensor src = testing::random_tensor(k.x_shape, stream, -1.0, 1.5);
      std::vector<Parameter*> params[2];
      for (int i = 0; i < 2; ++i) blocks[i]->collect_parameters(params[i]);
      std::vector<Vector> inputs = {to_double(src)};
      for (Parameter* p : params[0]) inputs.push_back(to_double(p->value));
      const ConvGeometry* gsp = k.shortcut ? &gs : nullptr;
      double min_pre = 0.0;
      const Vector expected = block_reference(inputs, k.x_shape, g1, g2, gsp, &min_pre);
      if (min_pre < 2e-4) continue;

      const Tensor fast_out = blocks[0]->forward(src, Mode::Train);
      const Tensor generic_out = blocks[1]->forward(src, Mode::Train);
      const Tensor upstream = testing::random_tensor(fast_out.shape(), stream);
      testing::expect_close(fast_out, expected, 1e-5, "fast forward vs reference");
      testing::expect_close(fast_out, to_double(generic_out), 1e-5, "fast forward vs generic");
      const Tensor fast_diff = blocks[0]->backward(upstream);
      const Tensor generic_diff = blocks[1]->backward(upstream);
      testing::expect_close(fast_diff, to_double(generic_diff), 1e-5, "fast dL/dsrc vs generic");
      for (std::size_t i = 0; i < params[0].size(); ++i)
        testing::expect_close(params[0][i]->grad, to_double(params[1][i]->grad), 1e-5,
                              "fast vs generic dL/d" + params[0][i]->name);
      // Running statistics agree too.
      for (int bn = 0; bn < 2; ++bn) {
        BatchNorm2d& fast_bn = bn == 0 ? blocks[0]->bn1() : blocks[0]->bn2();
        BatchNorm2d& generic_bn = bn == 0 ? blocks[1]->bn1() : blocks[1]->bn2();
        testing::expect_close(fast_bn.running_var(), to_double(generic_bn.running_var()), 1e-6, "running_var");
      }
      const testing::DoubleFunction f = [&](const std::vector<Vector>& in) {
        return block_reference(in, k.x_shape, g1, g2, gsp);
      };
      const Vector r = to_double(upstream);
      RandomStream pick(RngKey{78, seed, Purpose::Operands, 0});
      testing::expect_gradient_sampled(f, inputs, 0, r, fast_diff, 2e-4, "dL/dsrc", 40, pick);
      for (std::size_t i = 0; i < params[0].size(); ++i)
        testing::expect_gradient_sampled(f, inputs, i + 1, r, params[0][i]->grad, 2e-4, "dL/d" + params[0][i]->name, 24,
                                         pick);
      // Eval mode runs too (running statistics), and matches the generic path.
      const Tensor fast_eval = blocks[0]->forward(src, Mode::Eval);
      testing::expect_close(fast_eval, to_double(blocks[1]->forward(src, Mode::Eval)), 1e-5, "eval fast vs generic");
      break;
    }
  }
}

// conv(First) -> bn+relu -> block(shortcut, stride 2) -> avgpool -> fc -> softmax cross-entropy.
TEST(Sequential, SmallNetworkGradientsMatchFiniteDifferences) {
  const Shape x_shape{3, 2, 6, 5};
  const ConvGeometry g0{2, 4, 3, 1, 1}, g1{4, 6, 3, 2, 1}, g2{6, 6, 3, 1, 1}, gs{4, 6, 1, 2, 0};
  const Index classes = 3;
  const std::vector<std::int32_t> labels = {2, 0, 1};
  for (std::uint64_t seed = 0;; ++seed) {
    ASSERT_LT(seed, 50u) << "no usable seed";
    RandomStream stream(RngKey{72, seed, Purpose::Operands, 0});
    LayerFactory factory;
    Sequential net("net");
    auto conv = [&](const std::string& name, const ConvGeometry& g, ConvRole role) {
      return factory.make_conv(ConvSpec{name, g, role}, stream);
    };
    net.add(conv("conv1", g0, ConvRole::First));
    auto& bn1 = net.emplace(std::make_unique<BatchNorm2d>("bn1", 4, BnActivation::Relu));
    randomize_affine(bn1, stream);
    auto& block = net.emplace(std::make_unique<BasicBlock>("layer1.0", 6, conv("layer1.0.conv1", g1, ConvRole::Body),
                                                           conv("layer1.0.conv2", g2, ConvRole::Body),
                                                           conv("layer1.0.shortcut.conv", gs, ConvRole::Shortcut)));
    randomize_affine(block.bn1(), stream);
    randomize_affine(block.bn2(), stream);
    randomize_affine(*block.shortcut_bn(), stream);
    net.add(std::make_unique<GlobalAvgPool>("avgpool"));
    net.add(factory.make_linear(LinearSpec{"fc", 6, classes}, stream));
    const Tensor src = testing::random_tensor(x_shape, stream, -1.0, 1.0);

    std::vector<Parameter*> params = net.parameters();
    ASSERT_EQ(params.size(), 14u);
    EXPECT_EQ(params[0]->name, "conv1.weight");
    EXPECT_EQ(params[13]->name, "fc.bias");
    std::vector<Vector> inputs;
    for (Parameter* p : params) inputs.push_back(to_double(p->value));
    // Reference loss in double; also the smallest |pre-activation| of every ReLU.
    auto reference = [&](const std::vector<Vector>& in, double* min_pre) {
      Shape s0, s1;
      const Vector y0 = conv_ref(to_double(src), x_shape, in[0], g0, s0);
      const Vector pre0 = testing::batchnorm_train_reference(y0, s0, in[1], in[2], false);
      double block_min = 0.0;
      const std::vector<Vector> block_in = {testing::relu_reference(pre0), in[3], in[4], in[5], in[6], in[7],
                                            in[8], in[9], in[10], in[11]};
      const Vector out = block_reference(block_in, s0, g1, g2, &gs, &block_min);
      if (min_pre) *min_pre = std::min(testing::min_abs(pre0), block_min);
      s1 = Shape{x_shape[0], 6, g1.output_size(x_shape[2]), g1.output_size(x_shape[3])};
      const Index plane = s1[2] * s1[3];
      Vector logits(static_cast<std::size_t>(x_shape[0] * classes));
      for (Index n = 0; n < x_shape[0]; ++n)
        for (Index o = 0; o < classes; ++o) {
          double z = in[13][static_cast<std::size_t>(o)];
          for (Index c = 0; c < 6; ++c) {
            double mean = 0.0;
            for (Index i = 0; i < plane; ++i) mean += out[static_cast<std::size_t>((n * 6 + c) * plane + i)];
            z += in[12][static_cast<std::size_t>(o * 6 + c)] * mean / static_cast<double>(plane);
          }
          logits[static_cast<std::size_t>(n * classes + o)] = z;
        }
      double loss = 0.0;
      for (Index n = 0; n < x_shape[0]; ++n) {
        double m = -1e300, s = 0.0;
        for (Index o = 0; o < classes; ++o) m = std::max(m, logits[static_cast<std::size_t>(n * classes + o)]);
        for (Index o = 0; o < classes; ++o) s += std::exp(logits[static_cast<std::size_t>(n * classes + o)] - m);
        loss += std::log(s) + m - logits[static_cast<std::size_t>(n * classes + labels[static_cast<std::size_t>(n)])];
      }
      return Vector{loss / static_cast<double>(x_shape[0])};
    };
    double min_pre = 0.0;
    const double expected_loss = reference(inputs, &min_pre)[0];
    if (min_pre < 2e-4) continue;

    SoftmaxCrossEntropy loss;
    const double value = loss.forward_backward(net.forward(src, Mode::Train), labels);
    EXPECT_NEAR(value, expected_loss, 1e-5 * std::max(1.0, std::abs(expected_loss)));
    EXPECT_TRUE(net.backward(loss.diff_logits()).empty());  // the First conv skips dL/dimage
    const testing::DoubleFunction f = [&](const std::vector<Vector>& in) { return reference(in, nullptr); };
    for (std::size_t i = 0; i < params.size(); ++i)
      testing::expect_gradient(f, inputs, i, {1.0}, params[i]->grad, 3e-4, "dL/d" + params[i]->name);
    break;
  }
}

Index count_parameters(Sequential& net) {
  Index total = 0;
  for (Parameter* p : net.parameters()) total += p->value.size();
  return total;
}

TEST(ResNet, ParameterCountAndNames) {
  // By hand, ResNet-20 with 3 input channels and 10 classes:
  //   conv1 3*16*9 = 432, bn1 32;
  //   layer1: 6 convs 16*16*9 = 13824, 6 BNs 192;
  //   layer2: 16*32*9 + 5 * 32*32*9 = 4608 + 46080, shortcut 16*32 = 512, 7 BNs 448;
  //   layer3: 32*64*9 + 5 * 64*64*9 = 18432 + 184320, shortcut 32*64 = 2048, 7 BNs 896;
  //   fc 64*10 + 10 = 650.  Total 272474 (PyTorch's option-A ResNet-20 without shortcut convs: 269722).
  const RngKey key{1, 0, Purpose::WeightInit, 0};
  auto net = make_resnet(20, 3, 10, key);
  EXPECT_EQ(count_parameters(*net), 272474);
  EXPECT_EQ(count_parameters(*make_resnet(20, 1, 10, key)), 272474 - 2 * 16 * 9);
  // ResNet-32: two more blocks per stage: 2 * (2*(16*16*9 + 32) + 2*(32*32*9 + 64) + 2*(64*64*9 + 128)).
  EXPECT_EQ(count_parameters(*make_resnet(32, 3, 10, key)), 272474 + 2 * (2 * 2336 + 2 * 9280 + 2 * 36992));

  const std::vector<Parameter*> params = net->parameters();
  ASSERT_EQ(params.size(), 21u + 2 * 21u + 2u);  // 19 convs + 2 shortcut convs, 21 BNs x 2, fc x 2
  EXPECT_EQ(params.front()->name, "conv1.weight");
  EXPECT_EQ(params[1]->name, "bn1.weight");
  EXPECT_EQ(params[2]->name, "bn1.bias");
  EXPECT_EQ(params[3]->name, "layer1.0.conv1.weight");
  EXPECT_EQ(params.back()->name, "fc.bias");
  std::map<std::string, Shape> by_name;
  for (Parameter* p : params) {
    EXPECT_EQ(p->grad.shape(), p->value.shape()) << p->name;
    EXPECT_TRUE(by_name.emplace(p->name, p->value.shape()).second) << "duplicate " << p->name;
  }
  EXPECT_EQ(by_name.at("layer2.0.shortcut.conv.weight"), (Shape{32, 16, 1, 1}));
  EXPECT_EQ(by_name.at("layer3.0.shortcut.bn.weight"), (Shape{64}));
  EXPECT_EQ(by_name.at("layer3.2.conv2.weight"), (Shape{64, 64, 3, 3}));
  EXPECT_EQ(by_name.at("fc.weight"), (Shape{10, 64}));
  EXPECT_EQ(by_name.count("layer1.0.shortcut.conv.weight"), 0u);
  const std::vector<StateTensor> state = net->state();
  ASSERT_EQ(state.size(), 42u);
  EXPECT_EQ(state[0].name, "bn1.running_mean");
  EXPECT_EQ(state[1].name, "bn1.running_var");
  int batch_norms = 0, fast_blocks = 0;
  net->visit([&](Layer& layer) {
    batch_norms += dynamic_cast<BatchNorm2d*>(&layer) != nullptr;
    if (auto* block = dynamic_cast<BasicBlock*>(&layer)) fast_blocks += block->uses_blocked_layout();
  });
  EXPECT_EQ(batch_norms, 21);
  EXPECT_EQ(fast_blocks, 9);  // FP32 convs with 16/32/64 channels: every block runs blocked
  EXPECT_NE(net->find("layer2.0.shortcut.bn"), nullptr);
  EXPECT_EQ(net->find("layer4.0"), nullptr);
}

TEST(ResNet, OutputShapesForMnistAndCifarInputs) {
  for (const Shape& input : {Shape{2, 1, 28, 28}, Shape{3, 3, 32, 32}}) {
    SCOPED_TRACE(input.str());
    auto net = make_resnet(20, static_cast<int>(input[1]), 10, RngKey{2, 0, Purpose::WeightInit, 0});
    RandomStream stream(RngKey{73, 0, Purpose::Operands, 0});
    const Tensor src = testing::random_tensor(input, stream);
    const Tensor& logits = net->forward(src, Mode::Train);
    ASSERT_EQ(logits.shape(), (Shape{input[0], 10}));
    for (Index i = 0; i < logits.size(); ++i) ASSERT_TRUE(std::isfinite(logits[i]));
    EXPECT_TRUE(net->backward(Tensor(logits.shape(), 0.1f)).empty());
    for (Parameter* p : net->parameters()) {
      double norm = 0.0;
      for (Index i = 0; i < p->grad.size(); ++i) norm += std::abs(double{p->grad[i]});
      EXPECT_TRUE(std::isfinite(norm)) << p->name;
    }
    const Tensor& eval = net->forward(src, Mode::Eval);
    EXPECT_EQ(eval.shape(), (Shape{input[0], 10}));
  }
}

TEST(ResNet, InitializationIsDeterministicAndKaiming) {
  const RngKey key{3, 9, Purpose::WeightInit, 0};
  auto a = make_resnet(20, 3, 10, key);
  auto b = make_resnet(20, 3, 10, key);
  auto c = make_resnet(20, 3, 10, RngKey{4, 9, Purpose::WeightInit, 0});
  const auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
  bool any_different = false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(testing::same_bits(pa[i]->value, pb[i]->value)) << pa[i]->name;
    any_different = any_different || !testing::same_bits(pa[i]->value, pc[i]->value);
  }
  EXPECT_TRUE(any_different);
  // Each layer's init depends only on its name: fc equals a fresh stream keyed by "fc".
  Tensor w(Shape{10, 64}), bias(Shape{10});
  RandomStream fc_stream = layer_init_stream(key, "fc");
  linear_default_init(w, &bias, fc_stream);
  EXPECT_TRUE(testing::same_bits(pa[pa.size() - 2]->value, w));
  EXPECT_TRUE(testing::same_bits(pa.back()->value, bias));
  // Kaiming normal, fan_out = 64*9: sample std of 36864 values within 2%, mean near 0.
  for (Parameter* p : pa) {
    if (p->name != "layer3.1.conv1.weight") continue;
    double s = 0.0, q = 0.0;
    for (Index i = 0; i < p->value.size(); ++i) {
      s += p->value[i];
      q += double{p->value[i]} * p->value[i];
    }
    const double n = static_cast<double>(p->value.size());
    const double mean = s / n, stddev = std::sqrt(q / n - mean * mean);
    EXPECT_NEAR(stddev, std::sqrt(2.0 / (64 * 9)), 0.02 * std::sqrt(2.0 / (64 * 9)));
    EXPECT_NEAR(mean, 0.0, 4.0 * std::sqrt(2.0 / (64 * 9)) / std::sqrt(n));
  }
  for (Parameter* p : pa) {
    if (p->name == "bn1.weight" || p->name == "bn1.bias") {
      for (Index i = 0; i < p->value.size(); ++i) EXPECT_EQ(p->value[i], p->name == "bn1.weight" ? 1.0f : 0.0f);
    }
  }
}

TEST(ResNet, ForwardBackwardSameBitsTwice) {
  const RngKey key{5, 0, Purpose::WeightInit, 0};
  RandomStream stream(RngKey{74, 0, Purpose::Operands, 0});
  const Tensor src = testing::random_tensor({6, 3, 12, 10}, stream);
  const std::vector<std::int32_t> labels = {0, 1, 2, 3, 4, 9};
  Tensor logits[3];
  std::vector<Tensor> grads[3];
  auto net_a = make_resnet(20, 3, 10, key);
  auto net_b = make_resnet(20, 3, 10, key);
  Sequential* runs[3] = {net_a.get(), net_b.get(), net_a.get()};  // a second model, and a rerun (buffers reused)
  for (int r = 0; r < 3; ++r) {
    SoftmaxCrossEntropy loss;
    logits[r] = runs[r]->forward(src, Mode::Train);
    loss.forward_backward(logits[r], labels);
    runs[r]->backward(loss.diff_logits());
    for (Parameter* p : runs[r]->parameters()) grads[r].push_back(p->grad);
  }
  for (int r = 1; r < 3; ++r) {
    EXPECT_TRUE(testing::same_bits(logits[0], logits[r])) << "run " << r;
    for (std::size_t i = 0; i < grads[0].size(); ++i) EXPECT_TRUE(testing::same_bits(grads[0][i], grads[r][i])) << "run " << r << " param " << i;
  }
}

struct RecordingFactory : LayerFactory {
  std::vector<ConvSpec> convs;
  std::vector<LinearSpec> linears;
  LayerPtr make_conv(const ConvSpec& spec, RandomStream& init) override {
    convs.push_back(spec);
    return LayerFactory::make_conv(spec, init);
  }
  LayerPtr make_linear(const LinearSpec& spec, RandomStream& init) override {
    linears.push_back(spec);
    return LayerFactory::make_linear(spec, init);
  }
};

TEST(ResNet, FactorySeesEveryConvWithItsRole) {
  RecordingFactory factory;
  make_resnet(44, 1, 100, factory, RngKey{});
  ASSERT_EQ(factory.convs.size(), 1u + 6 * 7 + 2);
  int first = 0, body = 0, shortcut = 0;
  for (const ConvSpec& s : factory.convs) {
    first += s.role == ConvRole::First;
    body += s.role == ConvRole::Body;
    shortcut += s.role == ConvRole::Shortcut;
  }
  EXPECT_EQ(first, 1);
  EXPECT_EQ(body, 42);
  EXPECT_EQ(shortcut, 2);
  EXPECT_EQ(factory.convs[0].name, "conv1");
  EXPECT_EQ(factory.convs[0].geometry.in_channels, 1);
  for (const ConvSpec& s : factory.convs)
    if (s.name == "layer3.0.shortcut.conv") {
      EXPECT_EQ(s.geometry.kernel, 1);
      EXPECT_EQ(s.geometry.stride, 2);
      EXPECT_EQ(s.geometry.in_channels, 32);
      EXPECT_EQ(s.geometry.out_channels, 64);
    }
  ASSERT_EQ(factory.linears.size(), 1u);
  EXPECT_EQ(factory.linears[0].name, "fc");
  EXPECT_EQ(factory.linears[0].in, 64);
  EXPECT_EQ(factory.linears[0].out, 100);
}

TEST(ResNet, DepthParsingAndBadArguments) {
  EXPECT_EQ(resnet_depth("resnet20"), 20);
  EXPECT_EQ(resnet_depth("resnet56"), 56);
  EXPECT_THROW(resnet_depth("resnet21"), Error);
  EXPECT_THROW(resnet_depth("resnet"), Error);
  EXPECT_THROW(resnet_depth("vgg16"), Error);
  EXPECT_THROW(make_resnet(21, 3, 10, RngKey{}), Error);
  EXPECT_THROW(make_resnet(20, 0, 10, RngKey{}), Error);
  EXPECT_THROW(make_resnet(20, 3, 1, RngKey{}), Error);
}

}  // namespace
}  // namespace pimqat::nn
