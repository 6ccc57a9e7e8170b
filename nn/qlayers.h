#pragma once
// Digital-QAT layers (DESIGN.md 2.1): QuantConv2d and QuantLinear quantize their input with the
// PACT quantizer and their latent float weight with the tanh quantizer (nn/quantize.h), then run
// the exact product of the dequantized tensors. docs/quantization.md describes the choices.
//
// Forward (Train and Eval alike):
//   x_q = act_quantize(src; alpha)     (skipped when act_bits == 0: x_q = src)
//   w_q = weight_quantize(weight)       (skipped when weight_bits == 0: w_q = weight)
//   dst = compute(x_q, w_q)             default: the exact convolution / matrix product
//   (QuantLinear then adds its float bias.)
// Backward: compute_backward gives dL/dx_q and dL/dw_q, then the quantizers' straight-through
// backward gives dL/dsrc, dL/dalpha and dL/dweight (all overwritten, per nn/layer.h).
//
// PIM layers (pim/) derive from QuantConv2d and override compute() / compute_backward(): the
// integer operands X and W and their scales s_a, s_w of the latest forward are available through
// the accessors, with x_q = s_a X and w_q = s_w W exactly (each element is one float product), so
// a PIM product can return s_a s_w * PIM(X, W) and differentiate the exact product
// straight-through (DESIGN.md 2.2) by calling the base compute_backward.
//
// QatLayerFactory builds a ResNet's convolutions and final linear layer from ModelConfig.
#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/conv.h"
#include "nn/layer.h"
#include "nn/quantize.h"
#include "nn/resnet.h"

namespace pimqat::nn {

// Quantization of one layer: bits of its weights and of its input (0 = not quantized), and the
// initial PACT clip (DESIGN.md 2.1: 8).
struct LayerQuantization {
  int weight_bits = 0;
  int act_bits = 0;
  float alpha_init = 8.0f;
};

// What QuantConv2d and QuantLinear share: the latent weight, the clip, both quantizers and the
// backward chain. Parameters: "<name>.weight" (zero until initialized) and, when act_bits > 0,
// "<name>.alpha" of shape (1), initialized to alpha_init, weight_decay = false (a clip is a range,
// not a weight; nn/layer.h: clipping levels are not decayed).
class QuantLayer : public Layer {
 public:
  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  void collect_parameters(std::vector<Parameter*>& out) override;

  Parameter& weight() { return weight_; }
  const Parameter& weight() const { return weight_; }
  // The clip alpha; throws pimqat::Error when act_bits() == 0 (there is none).
  Parameter& alpha();
  const LayerQuantization& quantization() const { return quantization_; }
  int weight_bits() const { return quantization_.weight_bits; }
  int act_bits() const { return quantization_.act_bits; }
  InputGradient input_gradient() const { return input_gradient_; }

  // Operands of the latest forward (valid until the next forward; the src given to it must still
  // be alive: X and x_q are made from it on first request when the layer's product did not need
  // them, see uses_input_integers()).
  // X (integers as floats, src's shape) and s_a = alpha / (2^act_bits - 1); empty / 0 when act_bits == 0.
  const Tensor& input_integers() const;
  float input_scale() const { return input_scale_; }
  // W (integers as floats, the weight's shape) and s_w; empty / 0 when weight_bits == 0.
  const Tensor& weight_integers() const { return weight_integers_; }
  float weight_scale() const { return weight_quantization_.scale; }
  const WeightQuantization& weight_quantization() const { return weight_quantization_; }
  // x_q = s_a X (src itself when act_bits == 0) and w_q = s_w W (the latent weight when weight_bits == 0).
  const Tensor& quantized_input() const;
  const Tensor& quantized_weight() const;

 protected:
  // Throws pimqat::Error for bits outside the quantizers' ranges (0 allowed) or a non-positive alpha_init.
  QuantLayer(std::string name, const Shape& weight_shape, LayerQuantization quantization, InputGradient input_gradient);

  // Which quantizer outputs the product reads in a forward of `mode` (default: both). What it does
  // not read is not written (the accessors above still make it on request). A PIM layer packs its
  // bits straight from the float input (activation_integer's operations), so it needs X never and
  // x_q only for the backward.
  virtual bool uses_input_integers() const { return true; }
  virtual bool uses_quantized_input(Mode /*mode*/) const { return true; }
  // The unquantized input of the latest forward and the clip it was quantized with.
  const Tensor& raw_input() const;
  float alpha_used() const { return alpha_used_; }

  // dst = the layer's product of x_q and w_q (dst is resized). src_q is x_q, or the unquantized
  // src (same shape) when uses_quantized_input(mode) is false.
  virtual void compute(const Tensor& src_q, const Tensor& weight_q, Tensor& dst, Mode mode) = 0;
  // Gradients of compute's output with respect to x_q (skipped when diff_src_q is null) and w_q,
  // both overwritten and resized.
  virtual void compute_backward(const Tensor& src_q, const Tensor& weight_q, const Tensor& diff_dst,
                                Tensor* diff_src_q, Tensor& diff_weight_q) = 0;

  // The output of the latest forward (derived layers may finish it in place).
  Tensor& dst() { return dst_; }

 private:
  LayerQuantization quantization_;
  InputGradient input_gradient_;
  Parameter weight_;
  Parameter alpha_;
  const Tensor* src_ = nullptr;    // src of the latest Train-mode forward (backward needs it)
  const Tensor* last_src_ = nullptr;  // src of the latest forward, any mode
  const Tensor* src_q_ = nullptr;  // x_q of the latest forward
  mutable Tensor input_integers_;      // written by forward, or on request (integers_ready_)
  mutable Tensor input_dequantized_;   // likewise (dequantized_ready_)
  mutable bool integers_ready_ = false, dequantized_ready_ = false;
  float input_scale_ = 0.0f;
  float alpha_used_ = 0.0f;  // alpha of the latest forward: the backward differentiates at it
  Tensor weight_integers_;
  Tensor weight_dequantized_;
  WeightQuantization weight_quantization_;
  Tensor dst_;
  Tensor diff_src_;
  Tensor diff_weight_q_;
};

// Quantized 2-D convolution without bias; weight (C_out, C_in, k, k), fan_out = C_out k k.
// It is a BlockedConv (nn/conv.h): forward_blocked / backward_blocked take and return activations
// in the blocked layout. The quantizers are element-wise, so they run on either layout as they
// are; then X, x_q, dst and the gradients of the pass are all in the pass's layout (layout()),
// and compute() / compute_backward() must produce theirs in it too. The weights are OIHW always.
class QuantConv2d : public QuantLayer, public BlockedConv {
 public:
  // Throws pimqat::Error for an invalid geometry or quantization.
  QuantConv2d(std::string name, ConvGeometry g, LayerQuantization quantization,
              InputGradient input_gradient = InputGradient::Compute);

  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  bool supports_blocked() const override { return engine_.supports_blocked(); }
  const Tensor& forward_blocked(const Tensor& src, Mode mode) override;
  const Tensor& backward_blocked(const Tensor& diff_dst) override;

  const ConvGeometry& geometry() const { return engine_.geometry(); }
  ConvEngine& engine() { return engine_; }
  // The activation layout of the latest forward (Nchw after forward(), Blocked after
  // forward_blocked()): input_integers(), quantized_input() and the output are in it.
  Layout layout() const { return layout_; }

 protected:
  // Default: dst = conv(x_q, w_q) on the engine.
  void compute(const Tensor& src_q, const Tensor& weight_q, Tensor& dst, Mode mode) override;
  // Default: the exact convolution's backward_data / backward_weights (the straight-through rule
  // of a PIM product as well). When an override of compute() did not call QuantConv2d::compute(),
  // this sets the engine's backward up for the operands' shape first (ConvEngine::prepare_backward:
  // no forward convolution is computed), so overrides may call it in any case.
  void compute_backward(const Tensor& src_q, const Tensor& weight_q, const Tensor& diff_dst, Tensor* diff_src_q,
                        Tensor& diff_weight_q) override;

 private:
  // The passes of either layout (the backward checks that it follows a forward of its layout).
  const Tensor& forward_in(Layout layout, const Tensor& src, Mode mode);
  const Tensor& backward_in(Layout layout, const Tensor& diff_dst);

  ConvEngine engine_;
  bool engine_forward_done_ = false;  // the engine is set up for the latest forward's operands
  Layout layout_ = Layout::Nchw;
};

// Quantized fully connected layer: dst (N, out) = x_q w_q^T + b with a float bias b (not quantized).
// Parameters "<name>.weight" (out, in), "<name>.bias" (out, no weight decay), "<name>.alpha".
// src may have any rank with N * in elements (an (N, C, 1, 1) pooled tensor is read as (N, C)).
class QuantLinear : public QuantLayer {
 public:
  QuantLinear(std::string name, Index in_features, Index out_features, LayerQuantization quantization);

  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  void collect_parameters(std::vector<Parameter*>& out) override;  // weight, bias, alpha

  Parameter& bias() { return bias_; }
  Index in_features() const { return weight().value.dim(1); }
  Index out_features() const { return weight().value.dim(0); }

 protected:
  // Default: dst = x_q w_q^T (the bias is added by forward()).
  void compute(const Tensor& src_q, const Tensor& weight_q, Tensor& dst, Mode mode) override;
  void compute_backward(const Tensor& src_q, const Tensor& weight_q, const Tensor& diff_dst, Tensor* diff_src_q,
                        Tensor& diff_weight_q) override;

 private:
  Parameter bias_;
};

// The quantization of each role in a ResNet (DESIGN.md 2.1):
// - body and shortcut convs: weight_bits / act_bits of the model;
// - the first conv: first_last_weight_bits weights, input not quantized (it is the normalized
//   image, which can be negative), no input gradient;
// - the final linear: first_last_weight_bits weights, act_bits input (the pooled ReLU output).
// All-zero bits for every layer when the model is FP32 (weight_bits == act_bits == 0).
LayerQuantization conv_quantization(const ModelConfig& model, ConvRole role);
LayerQuantization linear_quantization(const ModelConfig& model);
// Whether ModelConfig asks for quantization at all (weight_bits or act_bits non-zero).
bool is_quantized(const ModelConfig& model);

// Makes QuantConv2d / QuantLinear with the quantization above, initialized exactly as the FP32
// factory initializes Conv2d / Linear (Kaiming-normal fan_out for convs, PyTorch's default for
// the linear layer), so an FP32 and a QAT run of one seed start from the same latent weights.
// For an FP32 model it makes the plain FP32 layers (LayerFactory's defaults).
class QatLayerFactory : public LayerFactory {
 public:
  // Throws pimqat::Error for bits outside the quantizers' ranges (all problems at once).
  explicit QatLayerFactory(const ModelConfig& model);

  LayerPtr make_conv(const ConvSpec& spec, RandomStream& init) override;
  LayerPtr make_linear(const LinearSpec& spec, RandomStream& init) override;

  const ModelConfig& model() const { return model_; }

 private:
  ModelConfig model_;
};

}  // namespace pimqat::nn
