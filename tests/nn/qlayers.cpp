// QuantConv2d / QuantLinear / QatLayerFactory (nn/qlayers.h): forward against a naive double
// convolution of operands quantized by an independent double implementation of DESIGN.md 2.1;
// gradients against central differences of the straight-through surrogate of the whole chain;
// the PIM hooks; the factory's per-role quantization; determinism.
#include "nn/qlayers.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <map>

#include "nn/conv_reference.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "tests/nn/gradcheck.h"

namespace pimqat::nn {
namespace {

using testing::expect_close;
using testing::random_tensor;
using testing::same_bits;
using testing::to_double;
using testing::Vector;

// --- independent double reference of the quantizers (DESIGN.md 2.1) ---

struct QuantizedRef {
  Vector integers;
  double scale = 0.0;
};

// W = clamp(floor((u+1)/2 2^b), 0, 2^b - 1) - 2^(b-1), u = tanh(w)/max|tanh(w)|; s_w = 1/(std(W) sqrt(fan_out)).
QuantizedRef weight_reference(const Vector& w, int bits, Index fan_out) {
  double max_abs = 0.0;
  for (double wi : w) max_abs = std::max(max_abs, std::fabs(std::tanh(wi)));
  QuantizedRef r;
  double mean = 0.0;
  for (double wi : w) {
    const double u = std::tanh(wi) / max_abs;
    const double m = std::clamp(std::floor((u + 1.0) / 2.0 * std::ldexp(1.0, bits)), 0.0, std::ldexp(1.0, bits) - 1.0);
    r.integers.push_back(m - std::ldexp(1.0, bits - 1));
    mean += r.integers.back();
  }
  mean /= static_cast<double>(w.size());
  double var = 0.0;
  for (double v : r.integers) var += (v - mean) * (v - mean);
  r.scale = 1.0 / (std::sqrt(var / static_cast<double>(w.size())) * std::sqrt(static_cast<double>(fan_out)));
  return r;
}

// X = round(clamp(x, 0, alpha)/alpha (2^b - 1)) (no ties in random data), s_a = alpha/(2^b - 1).
QuantizedRef activation_reference(const Vector& x, int bits, double alpha) {
  const double levels = std::ldexp(1.0, bits) - 1.0;
  QuantizedRef r;
  for (double xi : x) r.integers.push_back(std::nearbyint(std::clamp(xi, 0.0, alpha) / alpha * levels));
  r.scale = alpha / levels;
  return r;
}

Vector scaled(const Vector& v, double s) {
  Vector out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[i] * s;
  return out;
}

// --- straight-through surrogates (rounding replaced by the identity plus the forward's frozen
// residual, so value = the forward's, slope = the STE's; s_w frozen; clamp of u inactive) ---

struct Surrogate {
  int weight_bits = 0;
  int act_bits = 0;
  double weight_scale = 0.0;
  Vector weight_residual;      // W - 2^(b-1) u at the base point
  Vector activation_residual;  // X - clamp(x, 0, alpha) L / alpha at the base point

  Vector weight(const Vector& w) const {
    if (weight_bits == 0) return w;
    double max_abs = 0.0;
    for (double wi : w) max_abs = std::max(max_abs, std::fabs(std::tanh(wi)));
    Vector out(w.size());
    for (std::size_t i = 0; i < w.size(); ++i)
      out[i] = weight_scale * (std::ldexp(1.0, weight_bits - 1) * std::tanh(w[i]) / max_abs + weight_residual[i]);
    return out;
  }
  Vector activation(const Vector& x, double alpha) const {
    if (act_bits == 0) return x;
    const double levels = std::ldexp(1.0, act_bits) - 1.0;
    Vector out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      out[i] = alpha / levels * (std::clamp(x[i], 0.0, alpha) * levels / alpha + activation_residual[i]);
    return out;
  }
};

Surrogate make_surrogate(const QuantLayer& layer, const Vector& x, double alpha, const Vector& w) {
  Surrogate s;
  s.weight_bits = layer.weight_bits();
  s.act_bits = layer.act_bits();
  if (s.weight_bits > 0) {
    s.weight_scale = layer.weight_scale();
    double max_abs = 0.0;
    for (double wi : w) max_abs = std::max(max_abs, std::fabs(std::tanh(wi)));
    for (std::size_t i = 0; i < w.size(); ++i)
      s.weight_residual.push_back(layer.weight_integers()[static_cast<Index>(i)] -
                                  std::ldexp(1.0, s.weight_bits - 1) * std::tanh(w[i]) / max_abs);
  }
  if (s.act_bits > 0) {
    const double levels = std::ldexp(1.0, s.act_bits) - 1.0;
    for (std::size_t i = 0; i < x.size(); ++i)
      s.activation_residual.push_back(layer.input_integers()[static_cast<Index>(i)] -
                                      std::clamp(x[i], 0.0, alpha) * levels / alpha);
  }
  return s;
}

// Inputs of mixed sign, at least 0.01 away from 0 and from alpha (central differences step 1e-5).
Tensor activation_input(const Shape& shape, RandomStream& stream, float alpha) {
  Tensor t = testing::random_away_from_zero(shape, stream, 0.01, 1.4 * alpha);
  for (Index i = 0; i < t.size(); ++i)
    if (std::fabs(t[i] - alpha) < 0.01f) t[i] = alpha + 0.02f;
  return t;
}

// A latent weight with a unique, well separated maximum |w| (the arg-max term is differentiable).
Tensor latent_weight(const Shape& shape, RandomStream& stream, Index planted, float value) {
  Tensor t = random_tensor(shape, stream, -0.8, 0.8);
  t[planted] = value;
  return t;
}

void check_conv(const ConvGeometry& g, const Shape& src_shape, LayerQuantization q, InputGradient input_gradient,
                std::uint64_t seed) {
  SCOPED_TRACE(g.str() + " W" + std::to_string(q.weight_bits) + "A" + std::to_string(q.act_bits));
  RandomStream stream(RngKey{seed, 0, Purpose::Operands, 0});
  QuantConv2d layer("conv", g, q, input_gradient);
  const float alpha = 1.75f;
  if (q.act_bits > 0) layer.alpha().value[0] = alpha;
  layer.weight().value = latent_weight(g.weight_shape(), stream, 7, -1.6f);
  const Tensor src = activation_input(src_shape, stream, alpha);
  const Tensor& dst = layer.forward(src, Mode::Train);

  // Operands against the independent reference, then the product.
  const Vector x = to_double(src), w = to_double(layer.weight().value);
  Vector x_q = x, w_q = w;
  if (q.act_bits > 0) {
    const QuantizedRef ref = activation_reference(x, q.act_bits, alpha);
    expect_close(layer.input_integers(), ref.integers, 0.0, "input integers");
    EXPECT_EQ(layer.input_scale(), alpha / static_cast<float>((1 << q.act_bits) - 1));
    x_q = scaled(ref.integers, ref.scale);
    for (Index i = 0; i < src.size(); ++i)
      ASSERT_EQ(layer.quantized_input()[i], layer.input_integers()[i] * layer.input_scale());
  } else {
    EXPECT_EQ(layer.input_integers().size(), 0);
    EXPECT_EQ(layer.quantized_input().data(), src.data());
  }
  if (q.weight_bits > 0) {
    const QuantizedRef ref = weight_reference(w, q.weight_bits, g.out_channels * g.kernel * g.kernel);
    expect_close(layer.weight_integers(), ref.integers, 0.0, "weight integers");
    EXPECT_NEAR(layer.weight_scale(), ref.scale, 1e-6 * ref.scale);
    w_q = scaled(ref.integers, ref.scale);
    for (Index i = 0; i < layer.weight().value.size(); ++i)
      ASSERT_EQ(layer.quantized_weight()[i], layer.weight_integers()[i] * layer.weight_scale());
  } else {
    EXPECT_EQ(layer.quantized_weight().data(), layer.weight().value.data());
  }
  Vector expected;
  conv2d_reference_forward(x_q, src_shape, w_q, g, expected);
  expect_close(dst, expected, 2e-6, "forward vs naive conv of the dequantized operands");

  // Backward against central differences of the surrogate chain conv(x_q(x, alpha), w_q(w)).
  const Surrogate s = make_surrogate(layer, x, alpha, w);
  const testing::DoubleFunction f = [&](const std::vector<Vector>& in) {
    Vector out;
    conv2d_reference_forward(s.activation(in[0], in[2][0]), src_shape, s.weight(in[1]), g, out);
    return out;
  };
  const std::vector<Vector> inputs = {x, w, Vector{alpha}};
  expect_close(dst, f(inputs), 2e-6, "surrogate value = forward");
  const Tensor upstream = random_tensor(dst.shape(), stream);
  const Vector r = to_double(upstream);
  const Tensor diff_src = layer.backward(upstream);
  if (input_gradient == InputGradient::Compute) {
    ASSERT_EQ(diff_src.shape(), src.shape());
    testing::expect_gradient(f, inputs, 0, r, diff_src, 1e-4, "dL/dsrc");
  } else {
    EXPECT_EQ(diff_src.size(), 0);
  }
  testing::expect_gradient(f, inputs, 1, r, layer.weight().grad, 1e-4, "dL/dweight");
  if (q.act_bits > 0) testing::expect_gradient(f, inputs, 2, r, layer.alpha().grad, 1e-4, "dL/dalpha");
}

TEST(QuantConv2d, W4A4ForwardAndGradients) {
  check_conv({3, 5, 3, 2, 1}, {2, 3, 7, 6}, {4, 4, 8.0f}, InputGradient::Compute, 1);
  check_conv({5, 17, 3, 1, 1}, {1, 5, 5, 7}, {4, 4, 8.0f}, InputGradient::Compute, 2);
}

TEST(QuantConv2d, ShortcutAndOtherBitWidths) {
  check_conv({5, 7, 1, 2, 0}, {2, 5, 7, 5}, {2, 2, 8.0f}, InputGradient::Compute, 3);
  check_conv({4, 6, 3, 1, 0}, {2, 4, 6, 6}, {8, 3, 8.0f}, InputGradient::Compute, 4);
}

TEST(QuantConv2d, FirstConvWithoutActivationQuantization) {
  check_conv({1, 16, 3, 1, 1}, {2, 1, 6, 5}, {8, 0, 8.0f}, InputGradient::Skip, 5);
  QuantConv2d layer("conv1", {1, 4, 3, 1, 1}, {8, 0, 8.0f}, InputGradient::Skip);
  std::vector<Parameter*> parameters;
  layer.collect_parameters(parameters);
  ASSERT_EQ(parameters.size(), 1u);
  EXPECT_EQ(parameters[0]->name, "conv1.weight");
  EXPECT_THROW(layer.alpha(), Error);
}

TEST(QuantConv2d, ActivationOnlyAndInputGradientSkipped) {
  check_conv({3, 5, 3, 1, 1}, {2, 3, 5, 5}, {0, 4, 8.0f}, InputGradient::Compute, 6);
  // A skipped input gradient still trains alpha.
  check_conv({3, 5, 3, 1, 1}, {2, 3, 5, 5}, {4, 4, 8.0f}, InputGradient::Skip, 7);
}

TEST(QuantConv2d, ParametersAndErrors) {
  QuantConv2d layer("layer1.0.conv1", {16, 16, 3, 1, 1}, {4, 4, 6.0f});
  std::vector<Parameter*> parameters;
  layer.collect_parameters(parameters);
  ASSERT_EQ(parameters.size(), 2u);
  EXPECT_EQ(parameters[0]->name, "layer1.0.conv1.weight");
  EXPECT_TRUE(parameters[0]->weight_decay);
  EXPECT_EQ(parameters[1]->name, "layer1.0.conv1.alpha");
  EXPECT_FALSE(parameters[1]->weight_decay);
  EXPECT_EQ(parameters[1]->value.shape(), Shape{1});
  EXPECT_EQ(parameters[1]->value[0], 6.0f);

  EXPECT_THROW(QuantConv2d("c", {3, 5, 3, 1, 1}, {1, 4, 8.0f}), Error);
  EXPECT_THROW(QuantConv2d("c", {3, 5, 3, 1, 1}, {4, 17, 8.0f}), Error);
  EXPECT_THROW(QuantConv2d("c", {3, 5, 3, 1, 1}, {4, 4, 0.0f}), Error);
  EXPECT_THROW(QuantConv2d("c", {0, 5, 3, 1, 1}, {4, 4, 8.0f}), Error);
  try {
    QuantConv2d("bad", {3, 5, 3, 1, 1}, {1, 17, 8.0f});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {  // both problems at once, with the layer's name
    const std::string message = e.what();
    EXPECT_NE(message.find("bad"), std::string::npos) << message;
    EXPECT_NE(message.find("weight_bits = 1"), std::string::npos) << message;
    EXPECT_NE(message.find("act_bits = 17"), std::string::npos) << message;
  }
  // A clip driven to 0 by training is reported with the parameter's name.
  RandomStream stream(RngKey{8, 0, Purpose::Operands, 0});
  const Tensor src = random_tensor({1, 16, 4, 4}, stream);
  layer.weight().value = random_tensor(layer.weight().value.shape(), stream);
  layer.alpha().value[0] = -0.5f;
  try {
    layer.forward(src, Mode::Train);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer1.0.conv1.alpha"), std::string::npos) << e.what();
  }
  QuantConv2d fresh("fresh", {16, 16, 3, 1, 1}, {4, 4, 8.0f});
  EXPECT_THROW(fresh.backward(src), Error);  // backward before forward
}

TEST(QuantConv2d, Deterministic) {
  RandomStream stream(RngKey{9, 0, Purpose::Operands, 0});
  const ConvGeometry g{16, 32, 3, 2, 1};
  const Tensor src = activation_input({4, 16, 15, 13}, stream, 2.0f);
  const Tensor weight = random_tensor(g.weight_shape(), stream);
  Tensor upstream;
  Tensor dst[3], diff_src[3], grad[3];
  float alpha_grad[3];
  QuantConv2d a("a", g, {4, 4, 2.0f}), b("b", g, {4, 4, 2.0f});
  a.weight().value = weight;
  b.weight().value = weight;
  for (int run = 0; run < 3; ++run) {
    QuantConv2d& layer = run == 1 ? b : a;  // a, b, then a again
    dst[run] = layer.forward(src, Mode::Train);
    if (run == 0) upstream = random_tensor(dst[0].shape(), stream);
    diff_src[run] = layer.backward(upstream);
    grad[run] = layer.weight().grad;
    alpha_grad[run] = layer.alpha().grad[0];
  }
  for (int run = 1; run < 3; ++run) {
    EXPECT_TRUE(same_bits(dst[0], dst[run])) << run;
    EXPECT_TRUE(same_bits(diff_src[0], diff_src[run])) << run;
    EXPECT_TRUE(same_bits(grad[0], grad[run])) << run;
    EXPECT_EQ(std::bit_cast<std::uint32_t>(alpha_grad[0]), std::bit_cast<std::uint32_t>(alpha_grad[run])) << run;
  }
}

// A PIM-like subclass: the product from the integer operands, s_a s_w conv(X, W), and a backward
// that scales the incoming gradient (as rescaling would) before the exact straight-through rule.
class IntegerConv : public QuantConv2d {
 public:
  using QuantConv2d::QuantConv2d;
  int computed = 0;

 protected:
  void compute(const Tensor& /*src_q*/, const Tensor& /*weight_q*/, Tensor& dst, Mode /*mode*/) override {
    ++computed;
    Tensor integer_dst;
    conv2d_reference_forward(input_integers(), weight_integers(), geometry(), integer_dst);
    dst.resize(integer_dst.shape());
    for (Index i = 0; i < dst.size(); ++i) dst[i] = input_scale() * weight_scale() * integer_dst[i];
  }
  void compute_backward(const Tensor& src_q, const Tensor& weight_q, const Tensor& diff_dst, Tensor* diff_src_q,
                        Tensor& diff_weight_q) override {
    Tensor doubled = diff_dst;
    doubled.vec() *= 2.0f;
    QuantConv2d::compute_backward(src_q, weight_q, doubled, diff_src_q, diff_weight_q);
  }
};

TEST(QuantConv2d, PimHooksSeeIntegersAndScales) {
  RandomStream stream(RngKey{10, 0, Purpose::Operands, 0});
  const ConvGeometry g{5, 6, 3, 1, 1};
  const Tensor src = activation_input({2, 5, 6, 7}, stream, 8.0f);
  const Tensor weight = random_tensor(g.weight_shape(), stream);
  QuantConv2d plain("plain", g, {4, 4, 8.0f});
  IntegerConv pim("pim", g, {4, 4, 8.0f});
  plain.weight().value = weight;
  pim.weight().value = weight;
  const Tensor dst_plain = plain.forward(src, Mode::Train);
  const Tensor dst_pim = pim.forward(src, Mode::Train);
  EXPECT_EQ(pim.computed, 1);
  expect_close(dst_pim, to_double(dst_plain), 1e-6, "s_a s_w conv(X, W) = conv(x_q, w_q)");
  const Tensor upstream = random_tensor(dst_plain.shape(), stream);
  const Tensor diff_plain = plain.backward(upstream);
  const Tensor grad_plain = plain.weight().grad;
  const float alpha_plain = plain.alpha().grad[0];
  const Tensor diff_pim = pim.backward(upstream);
  expect_close(diff_pim, scaled(to_double(diff_plain), 2.0), 1e-6, "dL/dsrc through the hook");
  expect_close(pim.weight().grad, scaled(to_double(grad_plain), 2.0), 1e-6, "dL/dweight through the hook");
  EXPECT_NEAR(pim.alpha().grad[0], 2.0f * alpha_plain, 1e-5f * std::fabs(alpha_plain));
}

// --- QuantLinear ---

TEST(QuantLinear, ForwardAndGradients) {
  RandomStream stream(RngKey{11, 0, Purpose::Operands, 0});
  const Index n = 5, in = 7, out = 3;
  const float alpha = 1.5f;
  QuantLinear layer("fc", in, out, {8, 4, 8.0f});
  layer.alpha().value[0] = alpha;
  layer.weight().value = latent_weight({out, in}, stream, 4, 1.9f);
  layer.bias().value = random_tensor({out}, stream);
  const Tensor src = activation_input({n, in, 1, 1}, stream, alpha);  // a pooled (N, C, 1, 1) tensor
  const Tensor& dst = layer.forward(src, Mode::Train);
  ASSERT_EQ(dst.shape(), (Shape{n, out}));

  const Vector x = to_double(src), w = to_double(layer.weight().value), bias = to_double(layer.bias().value);
  const QuantizedRef xr = activation_reference(x, 4, alpha);
  const QuantizedRef wr = weight_reference(w, 8, out);
  expect_close(layer.input_integers(), xr.integers, 0.0, "input integers");
  expect_close(layer.weight_integers(), wr.integers, 0.0, "weight integers");
  Vector expected(static_cast<std::size_t>(n * out));
  for (Index r = 0; r < n; ++r)
    for (Index o = 0; o < out; ++o) {
      double sum = bias[static_cast<std::size_t>(o)];
      for (Index i = 0; i < in; ++i)
        sum += xr.integers[static_cast<std::size_t>(r * in + i)] * xr.scale * wr.integers[static_cast<std::size_t>(o * in + i)] * wr.scale;
      expected[static_cast<std::size_t>(r * out + o)] = sum;
    }
  expect_close(dst, expected, 2e-6, "forward");

  const Surrogate s = make_surrogate(layer, x, alpha, w);
  const testing::DoubleFunction f = [&](const std::vector<Vector>& inputs) {
    const Vector xq = s.activation(inputs[0], inputs[2][0]);
    const Vector wq = s.weight(inputs[1]);
    Vector y(static_cast<std::size_t>(n * out));
    for (Index r = 0; r < n; ++r)
      for (Index o = 0; o < out; ++o) {
        double sum = inputs[3][static_cast<std::size_t>(o)];
        for (Index i = 0; i < in; ++i) sum += xq[static_cast<std::size_t>(r * in + i)] * wq[static_cast<std::size_t>(o * in + i)];
        y[static_cast<std::size_t>(r * out + o)] = sum;
      }
    return y;
  };
  const std::vector<Vector> inputs = {x, w, Vector{alpha}, bias};
  const Tensor upstream = random_tensor(dst.shape(), stream);
  const Vector r = to_double(upstream);
  const Tensor diff_src = layer.backward(upstream);
  ASSERT_EQ(diff_src.shape(), src.shape());
  testing::expect_gradient(f, inputs, 0, r, diff_src, 1e-4, "dL/dsrc");
  testing::expect_gradient(f, inputs, 1, r, layer.weight().grad, 1e-4, "dL/dweight");
  testing::expect_gradient(f, inputs, 2, r, layer.alpha().grad, 1e-4, "dL/dalpha");
  testing::expect_gradient(f, inputs, 3, r, layer.bias().grad, 1e-5, "dL/dbias");

  std::vector<Parameter*> parameters;
  layer.collect_parameters(parameters);
  ASSERT_EQ(parameters.size(), 3u);
  EXPECT_EQ(parameters[0]->name, "fc.weight");
  EXPECT_EQ(parameters[1]->name, "fc.bias");
  EXPECT_FALSE(parameters[1]->weight_decay);
  EXPECT_EQ(parameters[2]->name, "fc.alpha");
  EXPECT_FALSE(parameters[2]->weight_decay);
}

TEST(QuantLinear, UnquantizedEqualsLinear) {
  RandomStream stream(RngKey{12, 0, Purpose::Operands, 0});
  QuantLinear q("fc", 9, 4, {0, 0, 8.0f});
  Linear plain("fc", 9, 4);
  q.weight().value = random_tensor({4, 9}, stream);
  q.bias().value = random_tensor({4}, stream);
  plain.weight().value = q.weight().value;
  plain.bias().value = q.bias().value;
  const Tensor src = random_tensor({6, 9}, stream);
  expect_close(q.forward(src, Mode::Train), to_double(plain.forward(src, Mode::Train)), 1e-6, "forward");
  const Tensor upstream = random_tensor({6, 4}, stream);
  expect_close(q.backward(upstream), to_double(plain.backward(upstream)), 1e-6, "dL/dsrc");
  expect_close(q.weight().grad, to_double(plain.weight().grad), 1e-6, "dL/dweight");
  expect_close(q.bias().grad, to_double(plain.bias().grad), 1e-6, "dL/dbias");
}

// --- factory ---

struct Found {
  std::map<std::string, LayerQuantization> quantized;
  std::map<std::string, InputGradient> input_gradient;
  int plain_convs = 0;
  int plain_linears = 0;
};

Found inspect(Layer& net) {
  Found found;
  net.visit([&](Layer& layer) {
    if (auto* q = dynamic_cast<QuantLayer*>(&layer)) {
      found.quantized[layer.name()] = q->quantization();
      found.input_gradient[layer.name()] = q->input_gradient();
    }
    if (dynamic_cast<Conv2d*>(&layer)) ++found.plain_convs;
    if (dynamic_cast<Linear*>(&layer)) ++found.plain_linears;
  });
  return found;
}

TEST(QatLayerFactory, RolesOfResNet20) {
  ModelConfig model;
  model.weight_bits = 4;
  model.act_bits = 3;
  model.first_last_weight_bits = 8;
  model.alpha_init = 6.0f;
  QatLayerFactory factory(model);
  const RngKey key{3, 0, Purpose::WeightInit, 0};
  auto net = make_resnet(20, 1, 10, factory, key);
  const Found found = inspect(*net);
  EXPECT_EQ(found.plain_convs, 0);
  EXPECT_EQ(found.plain_linears, 0);
  ASSERT_EQ(found.quantized.size(), 19u + 2u + 1u);  // 19 convs, 2 shortcut convs, fc
  for (const auto& [name, q] : found.quantized) {
    SCOPED_TRACE(name);
    if (name == "conv1") {
      EXPECT_EQ(q.weight_bits, 8);
      EXPECT_EQ(q.act_bits, 0);
      EXPECT_EQ(found.input_gradient.at(name), InputGradient::Skip);
    } else if (name == "fc") {  // first and last layers stay at 8 bits, its input included
      EXPECT_EQ(q.weight_bits, 8);
      EXPECT_EQ(q.act_bits, 8);
    } else {
      EXPECT_EQ(q.weight_bits, 4);
      EXPECT_EQ(q.act_bits, 3);
      EXPECT_EQ(q.alpha_init, 6.0f);
      EXPECT_EQ(found.input_gradient.at(name), InputGradient::Compute);
    }
  }
  EXPECT_TRUE(found.quantized.count("layer2.0.shortcut.conv"));
  EXPECT_TRUE(found.quantized.count("layer3.0.shortcut.conv"));

  // The same latent weights as the FP32 network of the same key.
  auto fp32 = make_resnet(20, 1, 10, key);
  std::map<std::string, const Parameter*> reference;
  for (Parameter* p : fp32->parameters()) reference[p->name] = p;
  int alphas = 0;
  for (Parameter* p : net->parameters()) {
    if (p->name.ends_with(".alpha")) {
      ++alphas;
      EXPECT_EQ(p->value[0], 6.0f);
      continue;
    }
    ASSERT_TRUE(reference.count(p->name)) << p->name;
    EXPECT_TRUE(same_bits(p->value, reference.at(p->name)->value)) << p->name;
  }
  EXPECT_EQ(alphas, 18 + 2 + 1);  // every conv but the first, and fc
}

TEST(QatLayerFactory, ResNetTrainingStepRuns) {
  ModelConfig model;
  model.weight_bits = 4;
  model.act_bits = 4;
  QatLayerFactory factory(model);
  // ResNet-8 (one block per stage): every role, few oneDNN primitives to create.
  auto net = make_resnet(8, 1, 10, factory, RngKey{3, 0, Purpose::WeightInit, 0});
  // One training step of the whole network runs and gives finite outputs and gradients.
  RandomStream stream(RngKey{13, 0, Purpose::Operands, 0});
  const Tensor images = random_tensor({2, 1, 28, 28}, stream);
  const Tensor& logits = net->forward(images, Mode::Train);
  ASSERT_EQ(logits.shape(), (Shape{2, 10}));
  for (Index i = 0; i < logits.size(); ++i) EXPECT_TRUE(std::isfinite(logits[i]));
  net->backward(random_tensor(logits.shape(), stream));
  for (Parameter* p : net->parameters())
    for (Index i = 0; i < p->grad.size(); ++i) ASSERT_TRUE(std::isfinite(p->grad[i])) << p->name;
}

TEST(QatLayerFactory, Fp32MakesPlainLayers) {
  QatLayerFactory factory(ModelConfig{});
  auto net = make_resnet(20, 3, 10, factory, RngKey{});
  const Found found = inspect(*net);
  EXPECT_TRUE(found.quantized.empty());
  EXPECT_EQ(found.plain_convs, 21);
  EXPECT_EQ(found.plain_linears, 1);
}

TEST(QatLayerFactory, RejectsInvalidBitsAllAtOnce) {
  ModelConfig model;
  model.weight_bits = 1;
  model.act_bits = 4;
  model.first_last_weight_bits = 20;
  try {
    QatLayerFactory factory(model);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("weight_bits = 1"), std::string::npos) << message;
    EXPECT_NE(message.find("weight_bits = 20"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace pimqat::nn
