// Tests of pim/pim_conv.h and pim/calibration.h: the PIM layer against an independent
// computation (im2col + reference kernel), rescaling (DESIGN.md 2.4), running rho, dies, the
// factory, and BN calibration (DESIGN.md 2.5) restoring accuracy under a large common ADC offset.
#include "pim/pim_conv.h"

#include <atomic>
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "core/augment.h"
#include "core/error.h"
#include "nn/batchnorm.h"
#include "nn/conv_reference.h"
#include "nn/quantize.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/optimizer.h"
#include "nn/pooling.h"
#include "nn/sequential.h"
#include "pim/calibration.h"
#include "pim/im2col.h"
#include "pim/kernels/reference.h"

namespace pimqat::pim {
namespace {

const nn::ConvGeometry kGeometry{3, 5, 3, 1, 1};  // 3 -> 5 channels, 3x3, stride 1, padding 1

std::unique_ptr<PimConv2d> make_layer(Rescale rescale, int adc_bits, Scheme scheme = Scheme::BitSerial, int rows = 16) {
  PimLayerSettings s;
  s.scheme = scheme;
  s.rows = rows;
  s.adc_bits = adc_bits;
  s.rescale = rescale;
  auto layer = std::make_unique<PimConv2d>("conv", kGeometry, nn::LayerQuantization{4, 4, 2.0f}, s);
  RandomStream init(RngKey{3, 0, Purpose::WeightInit, 0});
  nn::fill_normal(layer->weight().value, 0.0, 0.3, init);
  return layer;
}

Tensor make_input(std::uint64_t seed, Index batch = 2) {
  Tensor x(Shape{batch, 3, 6, 5});
  RandomStream r(RngKey{seed, 0, Purpose::Synthetic, 0});
  for (Index i = 0; i < x.size(); ++i) x[i] = 2.6f * r.uniform() - 0.2f;  // some below 0, some above alpha
  return x;
}

Tensor make_diff(const Shape& shape) {
  Tensor d(shape);
  RandomStream r(RngKey{8, 0, Purpose::Synthetic, 1});
  for (Index i = 0; i < d.size(); ++i) d[i] = r.normal();
  return d;
}

double population_std(const float* v, Index n) {
  double mean = 0;
  for (Index i = 0; i < n; ++i) mean += v[i];
  mean /= static_cast<double>(n);
  double var = 0;
  for (Index i = 0; i < n; ++i) var += (v[i] - mean) * (v[i] - mean);
  return std::sqrt(var / static_cast<double>(n));
}

// y~ and the exact y of the layer's latest forward, recomputed independently: im2col of the integer
// input, reference kernel, NCHW placement. Returns (C_out x P) matrices.
void independent_outputs(PimConv2d& layer, const Tensor& x_integers, std::vector<double>& pim,
                         std::vector<std::int64_t>& exact) {
  const Im2colGeometry g{x_integers.dim(0), x_integers.dim(1), x_integers.dim(2), x_integers.dim(3), 3, 3, 1, 1};
  std::vector<std::int32_t> xi(static_cast<std::size_t>(x_integers.size()));
  for (Index i = 0; i < x_integers.size(); ++i) xi[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(x_integers[i]);
  std::vector<std::int32_t> cols(static_cast<std::size_t>(g.reduction() * g.pixels()));
  im2col(g, xi.data(), cols.data());
  const Tensor& w = layer.weight_integers();
  std::vector<std::int32_t> wi(static_cast<std::size_t>(w.size()));
  for (Index i = 0; i < w.size(); ++i) wi[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(w[i]);
  pim.assign(static_cast<std::size_t>(5 * g.pixels()), 0);
  exact.assign(pim.size(), 0);
  reference_pim_gemm(layer.decomposition(), AdcBank(layer.adc()), cols.data(), wi.data(), g.reduction(), g.pixels(), 5,
                     pim.data());
  reference_exact_gemm(cols.data(), wi.data(), g.reduction(), g.pixels(), 5, exact.data());
}

TEST(PimConv2d, ForwardMatchesIndependentReferenceAndRho) {
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    auto layer = make_layer(Rescale::None, 4, scheme, scheme == Scheme::Native ? 9 : 16);
    const Tensor x = make_input(1);
    const Tensor& y = layer->forward(x, nn::Mode::Train);
    std::vector<double> pim;
    std::vector<std::int64_t> exact;
    independent_outputs(*layer, layer->input_integers(), pim, exact);
    const Index hw = 30, pixels = 60;
    const double scale = static_cast<double>(layer->input_scale()) * layer->weight_scale();
    double m1 = 0, m2 = 0, e1 = 0, e2 = 0;
    for (Index o = 0; o < 5; ++o)
      for (Index p = 0; p < pixels; ++p) {
        const double v = pim[static_cast<std::size_t>(o * pixels + p)];
        const double e = static_cast<double>(exact[static_cast<std::size_t>(o * pixels + p)]);
        const Index at = (p / hw) * 5 * hw + o * hw + p % hw;
        ASSERT_EQ(y[at], static_cast<float>(scale * v)) << scheme_name(scheme) << " o=" << o << " p=" << p;
        m1 += v, m2 += v * v, e1 += e, e2 += e * e;
      }
    const double n = 300;
    const double rho = std::sqrt(m2 / n - (m1 / n) * (m1 / n)) / std::sqrt(e2 / n - (e1 / n) * (e1 / n));
    EXPECT_NEAR(layer->batch_rho(), rho, 1e-12 * rho);
    EXPECT_GT(std::abs(rho - 1.0), 1e-3) << "a 4-bit ADC should change the output scale";
  }
}

TEST(PimConv2d, LosslessAdcEqualsDigitalQat) {
  // Bit-serial, N = 15: a 4-bit ADC is exactly lossless (Delta = 1).
  auto layer = make_layer(Rescale::Both, 4, Scheme::BitSerial, 15);
  ASSERT_TRUE(layer->adc().lossless());
  nn::QuantConv2d digital("conv", kGeometry, nn::LayerQuantization{4, 4, 2.0f});
  digital.weight().value = layer->weight().value;
  const Tensor x = make_input(2);
  const Tensor& y = layer->forward(x, nn::Mode::Train);
  const Tensor& expected = digital.forward(x, nn::Mode::Train);
  EXPECT_EQ(layer->batch_rho(), 1.0);
  for (Index i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], expected[i], 1e-5f * (1.0f + std::abs(expected[i])));
  for (Index i = 0; i < y.size(); ++i)
    ASSERT_EQ(layer->pim_output()[static_cast<std::size_t>(i)], static_cast<double>(layer->exact_output()[static_cast<std::size_t>(i)]));
}

struct Gradients {
  Tensor output, diff_src, diff_weight;
  float diff_alpha = 0;
  double rho = 0;
  double exact_std = 0;
};

Gradients run_mode(Rescale rescale) {
  auto layer = make_layer(rescale, 3);
  const Tensor x = make_input(4, 3);
  Gradients g;
  g.output = layer->forward(x, nn::Mode::Train);
  g.rho = layer->batch_rho();
  const double scale = static_cast<double>(layer->input_scale()) * layer->weight_scale();
  std::vector<float> exact(layer->exact_output().size());
  for (std::size_t i = 0; i < exact.size(); ++i) exact[i] = static_cast<float>(scale * static_cast<double>(layer->exact_output()[i]));
  g.exact_std = population_std(exact.data(), static_cast<Index>(exact.size()));
  g.diff_src = layer->backward(make_diff(g.output.shape()));
  g.diff_weight = layer->weight().grad;
  g.diff_alpha = layer->alpha().grad[0];
  return g;
}

TEST(PimConv2d, RescaleModesDesign24) {
  const Gradients none = run_mode(Rescale::None), backward = run_mode(Rescale::Backward), both = run_mode(Rescale::Both);
  ASSERT_EQ(none.rho, backward.rho);
  ASSERT_EQ(none.rho, both.rho);
  const double rho = none.rho;
  ASSERT_GT(std::abs(rho - 1.0), 0.01) << "a 3-bit ADC should change the output scale";
  // backward: same forward, gradients times rho.
  for (Index i = 0; i < none.output.size(); ++i) ASSERT_EQ(backward.output[i], none.output[i]);
  double max_src = 0, max_w = 0;
  for (Index i = 0; i < none.diff_src.size(); ++i) max_src = std::max(max_src, std::abs(double(none.diff_src[i])));
  for (Index i = 0; i < none.diff_weight.size(); ++i) max_w = std::max(max_w, std::abs(double(none.diff_weight[i])));
  ASSERT_GT(max_src, 0.0);
  ASSERT_GT(max_w, 0.0);
  for (Index i = 0; i < none.diff_src.size(); ++i)
    ASSERT_NEAR(backward.diff_src[i], rho * none.diff_src[i], 1e-6 * rho * max_src) << i;
  for (Index i = 0; i < none.diff_weight.size(); ++i)
    ASSERT_NEAR(backward.diff_weight[i], rho * none.diff_weight[i], 1e-6 * rho * max_w) << i;
  EXPECT_NEAR(backward.diff_alpha, rho * none.diff_alpha, 1e-5 * std::abs(rho * none.diff_alpha) + 1e-7);
  // both: forward y~ / rho, whose std is the exact output's; backward unchanged.
  for (Index i = 0; i < none.output.size(); ++i) ASSERT_NEAR(both.output[i], none.output[i] / rho, 1e-6 * (1 + std::abs(none.output[i] / rho)));
  EXPECT_NEAR(population_std(both.output.data(), both.output.size()), both.exact_std, 1e-5 * both.exact_std);
  EXPECT_GT(std::abs(population_std(none.output.data(), none.output.size()) - none.exact_std), 1e-3 * none.exact_std);
  for (Index i = 0; i < none.diff_src.size(); ++i) ASSERT_EQ(both.diff_src[i], none.diff_src[i]);
  for (Index i = 0; i < none.diff_weight.size(); ++i) ASSERT_EQ(both.diff_weight[i], none.diff_weight[i]);
}

// The backward runs no forward convolution (nn::ConvEngine::prepare_backward); its gradients must
// be the bits of the digital QAT layer's (whose engine ran the forward) for the same operands, and
// match the naive double reference of the exact convolution's gradients chained through the
// quantizers' straight-through rules (checked on the gradient w.r.t. x_q and w_q directly).
TEST(PimConv2d, BackwardWithoutForwardConvolutionMatchesDigitalAndReference) {
  for (Rescale rescale : {Rescale::None, Rescale::Both}) {
    for (Index batch : {Index{3}, Index{1}, Index{3}}) {  // a new batch size, then a cached plan again
      auto layer = make_layer(rescale, 3);
      nn::QuantConv2d digital("conv", kGeometry, nn::LayerQuantization{4, 4, 2.0f});
      digital.weight().value = layer->weight().value;
      const Tensor x = make_input(5 + static_cast<std::uint64_t>(batch), batch);
      const Tensor& y = layer->forward(x, nn::Mode::Train);
      digital.forward(x, nn::Mode::Train);
      const Tensor diff = make_diff(y.shape());
      const Tensor diff_src = layer->backward(diff);
      const Tensor& expected_src = digital.backward(diff);
      ASSERT_EQ(diff_src.shape(), expected_src.shape());
      for (Index i = 0; i < diff_src.size(); ++i) ASSERT_EQ(diff_src[i], expected_src[i]) << "diff_src " << i;
      for (Index i = 0; i < layer->weight().grad.size(); ++i)
        ASSERT_EQ(layer->weight().grad[i], digital.weight().grad[i]) << "weight grad " << i;
      ASSERT_EQ(layer->alpha().grad[0], digital.alpha().grad[0]);

      // The naive double reference of the exact convolution's gradients w.r.t. x_q and w_q,
      // chained through the quantizers' straight-through rules.
      Tensor reference_x_q, reference_w_q, reference_src, reference_weight;
      nn::conv2d_reference_backward_data(diff, x.shape(), layer->quantized_weight(), kGeometry, reference_x_q);
      nn::conv2d_reference_backward_weights(layer->quantized_input(), diff, kGeometry, reference_w_q);
      nn::quantize_weight_backward(layer->weight().value, layer->weight_quantization(), reference_w_q,
                                   reference_weight);
      const float reference_alpha = nn::quantize_activation_backward(
          x, layer->quantized_input(), layer->alpha().value[0], reference_x_q, reference_src);
      const auto tolerance = [](const Tensor& t) {
        float m = 0.0f;
        for (Index i = 0; i < t.size(); ++i) m = std::max(m, std::abs(t[i]));
        return 1e-5f * m;
      };
      for (Index i = 0; i < diff_src.size(); ++i)
        ASSERT_NEAR(diff_src[i], reference_src[i], tolerance(reference_src)) << "diff_src vs reference " << i;
      for (Index i = 0; i < reference_weight.size(); ++i)
        ASSERT_NEAR(layer->weight().grad[i], reference_weight[i], tolerance(reference_weight))
            << "weight grad vs reference " << i;
      EXPECT_NEAR(layer->alpha().grad[0], reference_alpha, 1e-4f * (1.0f + std::abs(reference_alpha)));
    }
  }
}

TEST(PimConv2d, RunningRhoMomentumEvalAndCalibration) {
  auto layer = make_layer(Rescale::Both, 3);
  std::vector<nn::StateTensor> state;
  layer->collect_state(state);
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].name, "conv.rho");
  EXPECT_EQ(layer->running_rho(), 1.0);
  layer->forward(make_input(5), nn::Mode::Train);
  const double rho1 = layer->batch_rho();
  EXPECT_FLOAT_EQ(layer->running_rho(), static_cast<float>(0.9 + 0.1 * rho1));
  // Eval uses the running rho: output = s_a s_w y~ / running.
  const Tensor x = make_input(6);
  const Tensor& y = layer->forward(x, nn::Mode::Eval);
  const double scale = static_cast<double>(layer->input_scale()) * layer->weight_scale() / layer->running_rho();
  EXPECT_EQ(y[7], static_cast<float>(scale * layer->pim_output()[7]));
  EXPECT_FLOAT_EQ(layer->running_rho(), static_cast<float>(0.9 + 0.1 * rho1));  // Eval leaves it alone
  // Calibration: exact cumulative average of batch rhos.
  layer->reset_running_rho();
  layer->set_calibrating(true);
  double sum = 0;
  for (int b = 0; b < 3; ++b) {
    layer->forward(make_input(10 + b), nn::Mode::Eval);
    sum += layer->batch_rho();
    EXPECT_FLOAT_EQ(layer->running_rho(), static_cast<float>(sum / (b + 1)));
  }
  layer->set_calibrating(false);
}

TEST(PimConv2d, DieIsReproducibleAndChangesTheOutput) {
  auto layer = make_layer(Rescale::Both, 5);
  const Tensor x = make_input(3);
  const Tensor ideal_output = layer->forward(x, nn::Mode::Eval);
  const std::vector<float> ideal(ideal_output.data(), ideal_output.data() + ideal_output.size());
  NonIdeality chip;
  chip.gain_sigma = 0.024;
  chip.offset_sigma = 2.04;
  chip.noise_sigma = 0.5;
  const auto die = std::make_shared<const Die>(1, 2, 17, chip);
  layer->attach_die(die, 4);
  const Tensor first = layer->forward(x, nn::Mode::Eval);
  const Tensor second_call = layer->forward(x, nn::Mode::Eval);
  layer->attach_die(die, 4);  // resets the call counter: same chip, same noise sequence
  const Tensor again = layer->forward(x, nn::Mode::Eval);
  int differ_ideal = 0, differ_call = 0;
  for (Index i = 0; i < first.size(); ++i) {
    EXPECT_EQ(again[i], first[i]);
    differ_ideal += first[i] != ideal[static_cast<std::size_t>(i)];
    differ_call += second_call[i] != first[i];
  }
  EXPECT_GT(differ_ideal, 0);
  EXPECT_GT(differ_call, 0);
  layer->detach_die();
  const Tensor& back = layer->forward(x, nn::Mode::Eval);
  for (Index i = 0; i < back.size(); ++i) EXPECT_EQ(back[i], ideal[static_cast<std::size_t>(i)]);
}

// The blocked layout (nn/conv.h, what a basic block's fast path uses) computes the same layer:
// forward outputs, rho, dL/dsrc and dL/dweight bit for bit, dL/dalpha up to the summation order
// of its sums; for digital QAT and every PIM scheme, training and a noisy die, 3x3 stride 1 and 2
// and a 1x1 shortcut.
TEST(PimConv2d, BlockedLayoutMatchesNchw) {
  const nn::ConvGeometry geometries[] = {{16, 16, 3, 1, 1}, {16, 32, 3, 2, 1}, {32, 16, 1, 2, 0}};
  NonIdeality chip;
  chip.gain_sigma = 0.02;
  chip.offset_sigma = 0.5;
  chip.noise_sigma = 0.5;
  const auto die = std::make_shared<const Die>(3, 1, 2, chip);
  for (const nn::ConvGeometry& g : geometries) {
    for (int kind = 0; kind < 4; ++kind) {  // digital QAT, then bit-serial, differential, native
      SCOPED_TRACE(g.str() + ", kind " + std::to_string(kind));
      std::unique_ptr<nn::QuantConv2d> layers[2];
      for (auto& layer : layers) {
        if (kind == 0) {
          layer = std::make_unique<nn::QuantConv2d>("conv", g, nn::LayerQuantization{4, 4, 2.0f});
        } else {
          PimLayerSettings s;
          s.scheme = kind == 1 ? Scheme::BitSerial : kind == 2 ? Scheme::Differential : Scheme::Native;
          s.rows = kind == 3 ? 9 : 0;
          s.adc_bits = 5;
          s.rescale = kind == 2 ? Rescale::Backward : Rescale::Both;
          layer = std::make_unique<PimConv2d>("conv", g, nn::LayerQuantization{4, 4, 2.0f}, s);
        }
        RandomStream init(RngKey{9, 0, Purpose::WeightInit, 0});
        nn::fill_normal(layer->weight().value, 0.0, 0.3, init);
      }
      ASSERT_TRUE(layers[1]->supports_blocked());
      Tensor x(Shape{3, g.in_channels, 9, 7});
      RandomStream r(RngKey{10, 0, Purpose::Synthetic, 0});
      for (Index i = 0; i < x.size(); ++i) x[i] = 2.6f * r.uniform() - 0.2f;
      Tensor x_blocked, y_blocked_nchw, d_blocked, dsrc_nchw;
      nn::to_blocked(x, x_blocked);
      const Tensor& y = layers[0]->forward(x, nn::Mode::Train);
      const Tensor& yb = layers[1]->forward_blocked(x_blocked, nn::Mode::Train);
      EXPECT_EQ(layers[1]->layout(), nn::Layout::Blocked);
      nn::to_nchw(yb, y_blocked_nchw);
      ASSERT_EQ(y.shape(), y_blocked_nchw.shape());
      for (Index i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], y_blocked_nchw[i]) << "forward " << i;
      if (kind > 0)
        EXPECT_EQ(static_cast<PimConv2d&>(*layers[0]).batch_rho(), static_cast<PimConv2d&>(*layers[1]).batch_rho());
      const Tensor diff = make_diff(y.shape());
      nn::to_blocked(diff, d_blocked);
      const Tensor dsrc = layers[0]->backward(diff);
      EXPECT_THROW(layers[1]->backward(d_blocked), Error);  // the layout of the forward is kept
      nn::to_nchw(layers[1]->backward_blocked(d_blocked), dsrc_nchw);
      for (Index i = 0; i < dsrc.size(); ++i) ASSERT_EQ(dsrc[i], dsrc_nchw[i]) << "dL/dsrc " << i;
      for (Index i = 0; i < layers[0]->weight().grad.size(); ++i)
        ASSERT_EQ(layers[0]->weight().grad[i], layers[1]->weight().grad[i]) << "dL/dweight " << i;
      const float alpha_grad = layers[0]->alpha().grad[0];
      EXPECT_NEAR(layers[1]->alpha().grad[0], alpha_grad, 1e-5f * (1.0f + std::abs(alpha_grad)));
      if (kind == 0) continue;
      // A noisy die: the same conversions in the same order, so the same noise.
      for (auto& layer : layers) static_cast<PimConv2d&>(*layer).attach_die(die, 1);
      const Tensor& ye = layers[0]->forward(x, nn::Mode::Eval);
      nn::to_nchw(layers[1]->forward_blocked(x_blocked, nn::Mode::Eval), y_blocked_nchw);
      for (Index i = 0; i < ye.size(); ++i) ASSERT_EQ(ye[i], y_blocked_nchw[i]) << "die forward " << i;
      EXPECT_EQ(static_cast<PimConv2d&>(*layers[0]).pim_output(), static_cast<PimConv2d&>(*layers[1]).pim_output());
    }
  }
}

// The layer packs X straight from its float input and writes x_q only in training; X and x_q are
// made on request, equal to the quantizer's, in either mode.
TEST(PimConv2d, OperandsOnRequestEqualTheQuantizers) {
  for (nn::Mode mode : {nn::Mode::Eval, nn::Mode::Train}) {
    auto layer = make_layer(Rescale::Both, 4);
    const Tensor x = make_input(11);
    const Tensor y = layer->forward(x, mode);
    Tensor integers, dequantized;
    const float scale = nn::quantize_activation(x, 4, layer->alpha().value[0], integers, dequantized);
    EXPECT_EQ(layer->input_scale(), scale);
    ASSERT_EQ(layer->input_integers().shape(), x.shape());
    ASSERT_EQ(layer->quantized_input().shape(), x.shape());
    for (Index i = 0; i < x.size(); ++i) {
      ASSERT_EQ(layer->input_integers()[i], integers[i]) << i;
      ASSERT_EQ(layer->quantized_input()[i], dequantized[i]) << i;
    }
    // The output is the PIM product of those integers (the independent reference).
    std::vector<double> pim;
    std::vector<std::int64_t> exact;
    independent_outputs(*layer, integers, pim, exact);
    const Index hw = 30, pixels = 60;  // (C_out x P) -> NCHW
    for (Index o = 0; o < 5; ++o)
      for (Index p = 0; p < pixels; ++p)
        ASSERT_EQ(layer->pim_output()[static_cast<std::size_t>((p / hw) * 5 * hw + o * hw + p % hw)],
                  pim[static_cast<std::size_t>(o * pixels + p)]);
  }
}

TEST(PimConv2d, BadSettingsAreRejected) {
  PimLayerSettings s;
  s.adc_bits = 17;
  EXPECT_THROW(PimConv2d("c", kGeometry, nn::LayerQuantization{4, 4, 2.0f}, s), Error);
  s.adc_bits = 7;
  s.rows = -1;
  EXPECT_THROW(PimConv2d("c", kGeometry, nn::LayerQuantization{4, 4, 2.0f}, s), Error);
  s.rows = 0;
  EXPECT_THROW(PimConv2d("c", kGeometry, nn::LayerQuantization{4, 0, 2.0f}, s), Error);  // activations not quantized
  s.scheme = static_cast<Scheme>(9);
  EXPECT_THROW(PimConv2d("c", kGeometry, nn::LayerQuantization{4, 4, 2.0f}, s), Error);
  auto layer = make_layer(Rescale::Both, 4);
  EXPECT_THROW(layer->set_adc_bits(0), Error);
  EXPECT_EQ(layer->adc_bits(), 4);
  EXPECT_EQ(parse_rescale("backward"), Rescale::Backward);
  EXPECT_THROW(parse_rescale("forward"), Error);
  ModelConfig fp32;
  EXPECT_THROW(PimLayerFactory(fp32, PimLayerSettings{}), Error);
}

TEST(PimLayerFactory, BodyAndShortcutConvsArePimFirstAndFcStayDigital) {
  ModelConfig model;
  model.weight_bits = 4;
  model.act_bits = 4;
  PimLayerFactory factory(model, PimLayerSettings{});
  auto net = nn::make_resnet(20, 1, 10, factory, RngKey{1, 2, Purpose::WeightInit, 0});
  const auto pims = pim_layers(*net);
  EXPECT_EQ(pims.size(), 20u);  // 18 body convs + 2 shortcuts
  for (auto* p : pims) EXPECT_EQ(p->decomposition().rows, 144);
  EXPECT_EQ(dynamic_cast<PimConv2d*>(net->find("conv1")), nullptr);
  EXPECT_NE(dynamic_cast<nn::QuantConv2d*>(net->find("conv1")), nullptr);
  EXPECT_NE(dynamic_cast<PimConv2d*>(net->find("layer2.0.shortcut.conv")), nullptr);
  // Same initial weights as the digital-QAT model of the same key.
  nn::QatLayerFactory digital_factory(model);
  auto digital = nn::make_resnet(20, 1, 10, digital_factory, RngKey{1, 2, Purpose::WeightInit, 0});
  auto* a = dynamic_cast<nn::QuantConv2d*>(net->find("layer3.2.conv2"));
  auto* b = dynamic_cast<nn::QuantConv2d*>(digital->find("layer3.2.conv2"));
  ASSERT_TRUE(a && b);
  for (Index i = 0; i < a->weight().value.size(); ++i) ASSERT_EQ(a->weight().value[i], b->weight().value[i]);
  std::vector<nn::StateTensor> state;
  net->collect_state(state);
  int rhos = 0;
  for (const auto& s : state) rhos += s.name.size() > 4 && s.name.substr(s.name.size() - 4) == ".rho";
  EXPECT_EQ(rhos, 20);
  // PIM and digital-QAT blocks take the basic block's blocked-layout path (16/32/64 channels).
  for (nn::Sequential* model : {net.get(), digital.get()}) {
    int fast_blocks = 0;
    model->visit([&](nn::Layer& layer) {
      if (auto* block = dynamic_cast<nn::BasicBlock*>(&layer)) fast_blocks += block->uses_blocked_layout();
    });
    EXPECT_EQ(fast_blocks, 9);
  }
  set_adc_bits(*net, 5);
  for (auto* p : pims) EXPECT_EQ(p->adc_bits(), 5);
}

// Two classes of 1x6x6 images: dim (mean 0.25) and bright (mean 0.6), with per-pixel noise.
Dataset brightness_dataset(Index n, std::uint64_t seed) {
  Dataset d;
  d.name = "brightness";
  d.classes = 2;
  d.images = Tensor(Shape{n, 1, 6, 6});
  d.labels.resize(static_cast<std::size_t>(n));
  RandomStream r(RngKey{seed, 0, Purpose::Synthetic, 7});
  for (Index i = 0; i < n; ++i) {
    const int label = static_cast<int>(i % 2);
    d.labels[static_cast<std::size_t>(i)] = label;
    for (Index j = 0; j < 36; ++j) d.images[i * 36 + j] = (label ? 0.6f : 0.25f) + 0.3f * (r.uniform() - 0.5f);
  }
  return d;
}

double accuracy(nn::Layer& net, const Dataset& data) {
  nn::SoftmaxCrossEntropy loss;
  std::vector<std::uint32_t> idx(static_cast<std::size_t>(data.size()));
  std::iota(idx.begin(), idx.end(), 0u);
  Tensor batch;
  std::vector<std::int32_t> labels;
  Index correct = 0;
  for (Index s = 0; s < data.size(); s += 64) {
    const Index count = std::min<Index>(64, data.size() - s);
    make_batch(data, idx.data() + s, count, AugmentOptions{}, nullptr, 0, batch, labels);
    loss.forward(net.forward(batch, nn::Mode::Eval), labels);
    correct += loss.correct();
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

TEST(BnCalibration, RestoresAccuracyUnderALargeCommonOffset) {
  // Native scheme, N = 9 (K = 9: one group), 8-bit ADC over [-1080, 1080].
  nn::Sequential net("net");
  PimLayerSettings s;
  s.scheme = Scheme::Native;
  s.rows = 9;
  s.adc_bits = 8;
  auto& conv = net.emplace(std::make_unique<PimConv2d>("conv", nn::ConvGeometry{1, 6, 3, 1, 1}, nn::LayerQuantization{4, 4, 1.0f}, s));
  net.emplace(std::make_unique<nn::BatchNorm2d>("bn", 6, nn::BnActivation::Relu));
  net.emplace(std::make_unique<nn::GlobalAvgPool>("pool"));
  auto& fc = net.emplace(std::make_unique<nn::Linear>("fc", 6, 2));
  RandomStream init(RngKey{4, 0, Purpose::WeightInit, 0});
  nn::kaiming_normal_fan_out(conv.weight().value, init);
  nn::linear_default_init(fc.weight().value, &fc.bias().value, init);
  const Dataset train = brightness_dataset(256, 1), test = brightness_dataset(200, 2);

  nn::Sgd sgd(net.parameters(), 0.9, true, 0.0);
  nn::SoftmaxCrossEntropy loss;
  std::vector<std::uint32_t> order(256);
  Tensor batch;
  std::vector<std::int32_t> labels;
  for (int epoch = 0; epoch < 6; ++epoch) {
    std::iota(order.begin(), order.end(), 0u);
    RandomStream shuffle(RngKey{1, 0, Purpose::DataOrder, static_cast<std::uint64_t>(epoch)});
    shuffle_indices(order.data(), 256, shuffle);
    for (Index s0 = 0; s0 < 256; s0 += 32) {
      make_batch(train, order.data() + s0, 32, AugmentOptions{}, nullptr, 0, batch, labels);
      loss.forward_backward(net.forward(batch, nn::Mode::Train), labels);
      net.backward(loss.diff_logits());
      sgd.step(0.05);
    }
  }
  const double ideal = accuracy(net, test);
  ASSERT_GT(ideal, 0.9) << "the tiny network did not learn the task";

  // A chip whose every ADC column reads 40 codes low: a measured curve = ideal level - 40, clamped.
  const Adc adc = conv.adc();
  std::vector<double> curve;
  for (std::int64_t p = -1080; p <= 1080; ++p)
    curve.push_back(std::clamp(adc.level(static_cast<double>(p)) - 40.0, 0.0, 255.0));
  NonIdeality chip;
  chip.curve = CurveModel::Measured;
  chip.curves = std::make_shared<const TransferCurves>(8, -1080, 1080, std::vector<std::string>{"low"},
                                                       std::vector<std::vector<double>>{curve});
  attach_die(net, std::make_shared<const Die>(1, 2, 0, chip));
  const double uncalibrated = accuracy(net, test);
  const CalibrationStats stats =
      calibrate_batch_norm(net, train, AugmentOptions{}, 4, 64, RngKey{1, 2, Purpose::DataOrder, kCalibrationOrderIndex});
  EXPECT_EQ(stats.batch_norm_layers, 1);
  EXPECT_EQ(stats.pim_layers, 1);
  EXPECT_EQ(stats.images, 256);
  const double calibrated = accuracy(net, test);
  EXPECT_GT(calibrated, uncalibrated + 0.25) << "ideal " << ideal << ", uncalibrated " << uncalibrated;
  EXPECT_GT(calibrated, ideal - 0.05);
  EXPECT_THROW(calibrate_batch_norm(net, train, AugmentOptions{}, 0, 64, RngKey{}), Error);
  std::atomic<bool> stop{true};  // a stop request (signal, time limit) ends it before the next batch
  EXPECT_THROW(calibrate_batch_norm(net, train, AugmentOptions{}, 4, 64,
                                    RngKey{1, 2, Purpose::DataOrder, kCalibrationOrderIndex}, &stop),
               Interrupted);
}

}  // namespace
}  // namespace pimqat::pim
