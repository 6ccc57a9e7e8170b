#include "nn/qlayers.h"

#include <cmath>
#include <string>
#include <utility>

#include "nn/init.h"
#include "nn/linear.h"

namespace pimqat::nn {
namespace {

// All problems of one quantization, "" when it is valid.
std::string quantization_problems(const LayerQuantization& q) {
  std::string problems;
  if (q.weight_bits != 0 && (q.weight_bits < kMinWeightBits || q.weight_bits > kMaxWeightBits))
    problems += " weight_bits = " + std::to_string(q.weight_bits) + " (valid: 0 or " + std::to_string(kMinWeightBits) +
                ".." + std::to_string(kMaxWeightBits) + ");";
  if (q.act_bits != 0 && (q.act_bits < kMinActivationBits || q.act_bits > kMaxActivationBits))
    problems += " act_bits = " + std::to_string(q.act_bits) + " (valid: 0 or " + std::to_string(kMinActivationBits) +
                ".." + std::to_string(kMaxActivationBits) + ");";
  if (q.act_bits != 0 && (!(q.alpha_init > 0.0f) || !std::isfinite(q.alpha_init)))
    problems += " alpha_init = " + std::to_string(q.alpha_init) + " (must be positive and finite);";
  if (!problems.empty()) problems.pop_back();
  return problems;
}

// The clip as a float, checked: SGD can drive it to 0 or below, which no quantizer accepts.
float current_alpha(const std::string& layer, const Parameter& alpha) {
  const float value = alpha.value[0];
  if (!(value > 0.0f) || !std::isfinite(value))
    throw ReproducibleError("layer '" + layer + "': the PACT clip " + alpha.name + " = " + std::to_string(value) +
                " is not positive and finite (training diverged, or the learning rate is too large for alpha)");
  return value;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// QuantLayer

QuantLayer::QuantLayer(std::string name, const Shape& weight_shape, LayerQuantization quantization,
                       InputGradient input_gradient)
    : Layer(std::move(name)), quantization_(quantization), input_gradient_(input_gradient) {
  const std::string problems = quantization_problems(quantization_);
  if (!problems.empty()) throw Error("layer '" + this->name() + "': invalid quantization:" + problems);
  weight_.name = this->name() + ".weight";
  weight_.value = Tensor(weight_shape);
  weight_.grad = Tensor(weight_shape);
  if (quantization_.act_bits > 0) {
    alpha_.name = this->name() + ".alpha";
    alpha_.value = Tensor(Shape{1}, quantization_.alpha_init);
    alpha_.grad = Tensor(Shape{1});
    alpha_.weight_decay = false;
  }
}

void QuantLayer::collect_parameters(std::vector<Parameter*>& out) {
  out.push_back(&weight_);
  if (quantization_.act_bits > 0) out.push_back(&alpha_);
}

Parameter& QuantLayer::alpha() {
  if (quantization_.act_bits == 0)
    throw Error("layer '" + name() + "': has no clip alpha (its input is not quantized, act_bits = 0)");
  return alpha_;
}

const Tensor& QuantLayer::raw_input() const {
  if (!last_src_) throw Error("layer '" + name() + "': its input is asked for before any forward()");
  return *last_src_;
}

const Tensor& QuantLayer::quantized_input() const {
  if (!last_src_) throw Error("layer '" + name() + "': quantized_input() needs a forward() first");
  if (quantization_.act_bits == 0) return *last_src_;
  if (!dequantized_ready_) {
    quantize_activation(*last_src_, quantization_.act_bits, alpha_used_, nullptr, &input_dequantized_);
    dequantized_ready_ = true;
  }
  return input_dequantized_;
}

const Tensor& QuantLayer::input_integers() const {
  if (quantization_.act_bits > 0 && last_src_ && !integers_ready_) {
    quantize_activation(*last_src_, quantization_.act_bits, alpha_used_, &input_integers_, nullptr);
    integers_ready_ = true;
  }
  return input_integers_;
}

const Tensor& QuantLayer::quantized_weight() const {
  return quantization_.weight_bits > 0 ? weight_dequantized_ : weight_.value;
}

const Tensor& QuantLayer::forward(const Tensor& src, Mode mode) {
  last_src_ = &src;
  integers_ready_ = dequantized_ready_ = false;  // until this forward has written them
  if (quantization_.act_bits > 0) {
    alpha_used_ = current_alpha(name(), alpha_);
    const bool integers = uses_input_integers(), dequantized = uses_quantized_input(mode);
    input_scale_ = quantize_activation(src, quantization_.act_bits, alpha_used_, integers ? &input_integers_ : nullptr,
                                       dequantized ? &input_dequantized_ : nullptr);
    integers_ready_ = integers;
    dequantized_ready_ = dequantized;
    src_q_ = dequantized ? &input_dequantized_ : &src;
  } else {
    src_q_ = &src;
  }
  if (quantization_.weight_bits > 0) {
    try {
      weight_quantization_ = quantize_weight(weight_.value, quantization_.weight_bits,
                                             weight_fan_out(weight_.value.shape()), weight_integers_, weight_dequantized_);
    } catch (const ReproducibleError& e) {
      throw ReproducibleError("layer '" + name() + "': " + e.what());
    } catch (const Error& e) {
      throw Error("layer '" + name() + "': " + e.what());
    }
  }
  compute(*src_q_, quantized_weight(), dst_, mode);
  src_ = mode == Mode::Train ? &src : nullptr;
  return dst_;
}

const Tensor& QuantLayer::backward(const Tensor& diff_dst) {
  if (!src_) throw Error("layer '" + name() + "': backward() needs a forward() in Mode::Train first");
  const bool input_gradient = input_gradient_ == InputGradient::Compute;
  // dL/dalpha needs dL/dx_q even when nothing upstream wants dL/dsrc.
  const bool need_diff_src_q = input_gradient || quantization_.act_bits > 0;
  // Without weight quantization dL/dw_q is dL/dweight: written in place.
  Tensor& diff_weight_q = quantization_.weight_bits > 0 ? diff_weight_q_ : weight_.grad;
  const Tensor& src_q = quantized_input();  // made here if the forward's product did not need it
  compute_backward(src_q, quantized_weight(), diff_dst, need_diff_src_q ? &diff_src_ : nullptr, diff_weight_q);
  if (quantization_.weight_bits > 0)
    quantize_weight_backward(weight_.value, weight_quantization_, diff_weight_q_, weight_.grad);
  if (quantization_.act_bits > 0)  // masks dL/dx_q into dL/dsrc in place
    alpha_.grad[0] = quantize_activation_backward(*src_, input_dequantized_, alpha_used_, diff_src_, diff_src_);
  if (!input_gradient) diff_src_.resize(Shape{});
  return diff_src_;
}

// ---------------------------------------------------------------------------------------------
// QuantConv2d

QuantConv2d::QuantConv2d(std::string name, ConvGeometry g, LayerQuantization quantization, InputGradient input_gradient)
    : QuantLayer(std::move(name), (validate(g), g.weight_shape()), quantization, input_gradient), engine_(g) {}

const Tensor& QuantConv2d::forward_in(Layout layout, const Tensor& src, Mode mode) {
  if (layout == Layout::Blocked && !supports_blocked())
    throw Error("layer '" + name() + "': the blocked layout needs channel counts that are multiples of " +
                std::to_string(channel_block()) + " (" + geometry().str() + ")");
  engine_forward_done_ = false;
  layout_ = layout;
  return QuantLayer::forward(src, mode);
}

const Tensor& QuantConv2d::backward_in(Layout layout, const Tensor& diff_dst) {
  if (layout_ != layout)
    throw Error("layer '" + name() + "': " + (layout == Layout::Blocked ? "backward_blocked()" : "backward()") +
                " after " + (layout_ == Layout::Blocked ? "forward_blocked()" : "forward()") +
                "; the backward must use the forward's layout");
  return QuantLayer::backward(diff_dst);
}

const Tensor& QuantConv2d::forward(const Tensor& src, Mode mode) { return forward_in(Layout::Nchw, src, mode); }
const Tensor& QuantConv2d::backward(const Tensor& diff_dst) { return backward_in(Layout::Nchw, diff_dst); }
const Tensor& QuantConv2d::forward_blocked(const Tensor& src, Mode mode) {
  return forward_in(Layout::Blocked, src, mode);
}
const Tensor& QuantConv2d::backward_blocked(const Tensor& diff_dst) { return backward_in(Layout::Blocked, diff_dst); }

void QuantConv2d::compute(const Tensor& src_q, const Tensor& weight_q, Tensor& dst, Mode /*mode*/) {
  engine_.forward(src_q, weight_q, dst, layout_);
  engine_forward_done_ = true;
}

void QuantConv2d::compute_backward(const Tensor& src_q, const Tensor& weight_q, const Tensor& diff_dst,
                                   Tensor* diff_src_q, Tensor& diff_weight_q) {
  if (!engine_forward_done_) {
    engine_.prepare_backward(src_q.shape(), layout_);
    engine_forward_done_ = true;
  }
  if (diff_src_q) engine_.backward_data(diff_dst, weight_q, *diff_src_q);
  engine_.backward_weights(src_q, diff_dst, diff_weight_q);
}

// ---------------------------------------------------------------------------------------------
// QuantLinear

namespace {
Shape linear_weight_shape(const std::string& name, Index in_features, Index out_features) {
  if (in_features <= 0 || out_features <= 0)
    throw Error("linear '" + name + "': in and out features must be positive; got " + std::to_string(in_features) +
                " and " + std::to_string(out_features));
  return Shape{out_features, in_features};
}
}  // namespace

QuantLinear::QuantLinear(std::string name, Index in_features, Index out_features, LayerQuantization quantization)
    : QuantLayer(name, linear_weight_shape(name, in_features, out_features), quantization, InputGradient::Compute) {
  bias_.name = this->name() + ".bias";
  bias_.value = Tensor(Shape{out_features});
  bias_.grad = Tensor(Shape{out_features});
  bias_.weight_decay = false;
}

void QuantLinear::collect_parameters(std::vector<Parameter*>& out) {
  out.push_back(&weight());
  out.push_back(&bias_);
  if (act_bits() > 0) out.push_back(&alpha());
}

const Tensor& QuantLinear::forward(const Tensor& src, Mode mode) {
  QuantLayer::forward(src, mode);
  Tensor& out = dst();
  const Index n = out.dim(0);
  const Index features = out_features();
  out.mat(n, features).rowwise() += bias_.value.mat(1, features).row(0);
  return out;
}

const Tensor& QuantLinear::backward(const Tensor& diff_dst) {
  const Tensor& diff_src = QuantLayer::backward(diff_dst);  // checks the forward came first
  const Index n = diff_dst.dim(0);
  const Index features = out_features();
  for (Index o = 0; o < features; ++o) {
    double sum = 0.0;
    for (Index r = 0; r < n; ++r) sum += diff_dst[r * features + o];
    bias_.grad[o] = static_cast<float>(sum);
  }
  return diff_src;
}

void QuantLinear::compute(const Tensor& src_q, const Tensor& weight_q, Tensor& dst, Mode /*mode*/) {
  linear_forward(src_q, weight_q, nullptr, dst);
}

void QuantLinear::compute_backward(const Tensor& src_q, const Tensor& weight_q, const Tensor& diff_dst,
                                   Tensor* diff_src_q, Tensor& diff_weight_q) {
  linear_backward_weights(src_q, diff_dst, diff_weight_q, nullptr);
  if (diff_src_q) linear_backward_data(diff_dst, weight_q, src_q.shape(), *diff_src_q);
}

// ---------------------------------------------------------------------------------------------
// Factory

bool is_quantized(const ModelConfig& model) { return model.weight_bits != 0 || model.act_bits != 0; }

LayerQuantization conv_quantization(const ModelConfig& model, ConvRole role) {
  if (!is_quantized(model)) return {0, 0, model.alpha_init};
  if (role == ConvRole::First) return {model.first_last_weight_bits, 0, model.alpha_init};
  return {model.weight_bits, model.act_bits, model.alpha_init};
}

LayerQuantization linear_quantization(const ModelConfig& model) {
  if (!is_quantized(model)) return {0, 0, model.alpha_init};
  return {model.first_last_weight_bits, model.first_last_weight_bits, model.alpha_init};
}

QatLayerFactory::QatLayerFactory(const ModelConfig& model) : model_(model) {
  std::string problems;
  const auto check = [&problems](const char* what, const LayerQuantization& q) {
    const std::string p = quantization_problems(q);
    if (!p.empty()) problems += std::string("\n  ") + what + ":" + p;
  };
  check("body and shortcut convolutions (model.weight_bits, model.act_bits, model.alpha_init)",
        conv_quantization(model, ConvRole::Body));
  check("first convolution and final linear layer (model.first_last_weight_bits)",
        LayerQuantization{is_quantized(model) ? model.first_last_weight_bits : 0, 0, model.alpha_init});
  if (!problems.empty()) throw Error("invalid model quantization:" + problems);
}

LayerPtr QatLayerFactory::make_conv(const ConvSpec& spec, RandomStream& init) {
  if (!is_quantized(model_)) return LayerFactory::make_conv(spec, init);
  auto conv = std::make_unique<QuantConv2d>(spec.name, spec.geometry, conv_quantization(model_, spec.role),
                                            spec.role == ConvRole::First ? InputGradient::Skip : InputGradient::Compute);
  kaiming_normal_fan_out(conv->weight().value, init);
  return conv;
}

LayerPtr QatLayerFactory::make_linear(const LinearSpec& spec, RandomStream& init) {
  if (!is_quantized(model_)) return LayerFactory::make_linear(spec, init);
  auto linear = std::make_unique<QuantLinear>(spec.name, spec.in, spec.out, linear_quantization(model_));
  linear_default_init(linear->weight().value, &linear->bias().value, init);
  return linear;
}

}  // namespace pimqat::nn
