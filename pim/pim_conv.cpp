#include "pim/pim_conv.h"

#include <chrono>
#include <cmath>
#include <string>

#include "core/error.h"
#include "nn/init.h"
#include "pim/profile.h"

namespace pimqat::pim {
namespace {

Decomposition make_decomposition(const std::string& name, const nn::LayerQuantization& q, const PimLayerSettings& s) {
  Decomposition d{s.scheme, s.rows, q.act_bits, q.weight_bits};
  if (s.scheme == Scheme::BitSerial || s.scheme == Scheme::Differential || s.scheme == Scheme::Native)
    if (d.rows == 0) d.rows = default_rows(s.scheme);
  try {
    d.validate();
    Adc(d.p_lo(), d.p_hi(), s.adc_bits, s.adc_clip);
  } catch (const Error& e) {
    throw Error("PIM layer '" + name + "': " + e.what());
  }
  return d;
}

}  // namespace

const char* rescale_name(Rescale rescale) {
  switch (rescale) {
    case Rescale::None: return "none";
    case Rescale::Backward: return "backward";
    case Rescale::Both: return "both";
  }
  return "unknown";
}

Rescale parse_rescale(const std::string& text) {
  if (text == "none") return Rescale::None;
  if (text == "backward") return Rescale::Backward;
  if (text == "both") return Rescale::Both;
  throw Error("unknown rescale mode '" + text + "' (valid: none, backward, both)");
}

PimLayerSettings PimLayerSettings::from_config(const PimConfig& pim) {
  PimLayerSettings s;
  s.scheme = pim.scheme;
  s.rows = pim.rows;
  s.adc_bits = pim.train_bits;
  s.adc_clip = pim.adc_clip;
  s.rescale = pim.rescale;
  return s;
}

PimConv2d::PimConv2d(std::string name, nn::ConvGeometry g, nn::LayerQuantization quantization,
                     PimLayerSettings settings)
    : nn::QuantConv2d(std::move(name), g, quantization),
      settings_(settings),
      decomposition_(make_decomposition(this->name(), quantization, settings)),
      running_rho_(Shape{1}, 1.0f) {
  settings_.rows = decomposition_.rows;
  if (settings_.rescale != Rescale::None && settings_.rescale != Rescale::Backward && settings_.rescale != Rescale::Both)
    throw Error("PIM layer '" + this->name() + "': unknown rescale mode");
  bank_ = AdcBank(adc());
}

void PimConv2d::collect_state(std::vector<nn::StateTensor>& out) { out.push_back({name() + ".rho", &running_rho_}); }

template <class Pass>
const Tensor& PimConv2d::timed_pass(bool backward, Pass&& pass) {
  if (!pim_profiling()) return pass();
  const auto start = std::chrono::steady_clock::now();
  compute_seconds_ = 0.0;
  const Tensor& out = pass();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  add_pim_phase_time(backward ? PimPhase::BackwardQuantize : PimPhase::Quantize, total - compute_seconds_);
  count_pim_pass(backward);
  return out;
}

const Tensor& PimConv2d::forward(const Tensor& src, nn::Mode mode) {
  return timed_pass(false, [&]() -> const Tensor& { return nn::QuantConv2d::forward(src, mode); });
}

const Tensor& PimConv2d::backward(const Tensor& diff_dst) {
  return timed_pass(true, [&]() -> const Tensor& { return nn::QuantConv2d::backward(diff_dst); });
}

const Tensor& PimConv2d::forward_blocked(const Tensor& src, nn::Mode mode) {
  return timed_pass(false, [&]() -> const Tensor& { return nn::QuantConv2d::forward_blocked(src, mode); });
}

const Tensor& PimConv2d::backward_blocked(const Tensor& diff_dst) {
  return timed_pass(true, [&]() -> const Tensor& { return nn::QuantConv2d::backward_blocked(diff_dst); });
}

Adc PimConv2d::adc() const {
  return Adc(decomposition_.p_lo(), decomposition_.p_hi(), settings_.adc_bits, settings_.adc_clip);
}

void PimConv2d::set_adc_bits(int bits) {
  try {
    Adc(decomposition_.p_lo(), decomposition_.p_hi(), bits, settings_.adc_clip);
  } catch (const Error& e) {
    throw Error("PIM layer '" + name() + "': " + e.what());
  }
  settings_.adc_bits = bits;
  rebuild_bank();
}

void PimConv2d::rebuild_bank() {
  const nn::ConvGeometry& g = geometry();
  const Index reduction = g.in_channels * g.kernel * g.kernel;
  if (die_)
    bank_ = die_->bank(die_layer_, adc(), decomposition_.columns(reduction, g.out_channels));
  else
    bank_ = AdcBank(adc());
}

void PimConv2d::attach_die(std::shared_ptr<const Die> die, std::uint64_t layer) {
  die_ = std::move(die);
  die_layer_ = layer;
  die_calls_ = 0;
  rebuild_bank();
}

void PimConv2d::detach_die() {
  die_.reset();
  die_calls_ = 0;
  rebuild_bank();
}

void PimConv2d::set_calibrating(bool on) {
  calibrating_ = on;
  calibration_sum_ = 0.0;
  calibration_count_ = 0;
}

void PimConv2d::reset_running_rho() {
  running_rho_[0] = 1.0f;
  calibration_sum_ = 0.0;
  calibration_count_ = 0;
}

void PimConv2d::compute(const Tensor& src_q, const Tensor& /*weight_q*/, Tensor& dst, nn::Mode mode) {
  const auto compute_start = std::chrono::steady_clock::now();
  const nn::ConvGeometry& g = geometry();
  const Tensor& w = weight_integers();
  const Shape out_shape = engine().output_shape(src_q.shape());
  const Index reduction = g.in_channels * g.kernel * g.kernel;
  const Im2colGeometry im{src_q.dim(0), src_q.dim(1), src_q.dim(2), src_q.dim(3), static_cast<int>(g.kernel),
                          static_cast<int>(g.kernel), static_cast<int>(g.stride), static_cast<int>(g.padding)};
  const bool blocked = layout() == nn::Layout::Blocked;
  const Index block = blocked ? nn::channel_block() : 0;
  try {
    PimPhaseTimer t_pack_x(PimPhase::PackActivations);
    // X straight from the float input (the quantizer's operations, pim/kernels/packed.h): the
    // layer never writes X as floats.
    pack_activations_quantized(decomposition_, im, raw_input().data(), alpha_used(), packed_x_, block);
    t_pack_x.stop();
    PimPhaseTimer t_pack_w(PimPhase::PackWeights);
    pack_weights(decomposition_, w.data(), reduction, g.out_channels, packed_w_);
  } catch (const Error& e) {
    throw Error("PIM layer '" + name() + "': " + e.what());
  }
  if (die_) die_->set_noise(bank_, die_layer_, die_calls_++);
  const auto count = static_cast<std::size_t>(out_shape.numel());
  image_pixels_ = out_shape[2] * out_shape[3];
  pim_sum_.resize(count);
  pim_ready_ = exact_ready_ = false;
  PimMoments moments;
  PimPhaseTimer t_gemm(PimPhase::PimGemm);
  packed_pim_gemm_integer(decomposition_, bank_, packed_x_, packed_w_, reduction, g.out_channels, image_pixels_,
                          pim_sum_.data(), nullptr, &moments);
  t_gemm.stop();

  // rho = std(y~) / std(y) (DESIGN.md 2.4) from the exact moments: std(y~) = Delta std(A) (Delta = 1
  // with integer read-out), population stds, the 1/n factors cancel.
  PimPhaseTimer t_rho(PimPhase::Rho);
  const Adc& adc = bank_.adc();
  const double pim_variance = moments.pim_scaled_variance(), exact_variance = moments.exact_scaled_variance();
  const double pim_scale = adc.integer_readout() ? 1.0 : adc.delta();
  batch_rho_ = (pim_variance > 0.0 && exact_variance > 0.0) ? pim_scale * std::sqrt(pim_variance / exact_variance) : 1.0;
  t_rho.stop();
  if (calibrating_) {  // exact cumulative average (DESIGN.md 2.5)
    calibration_sum_ += batch_rho_;
    ++calibration_count_;
    running_rho_[0] = static_cast<float>(calibration_sum_ / static_cast<double>(calibration_count_));
  } else if (mode == nn::Mode::Train) {
    running_rho_[0] = static_cast<float>((1.0 - kRhoMomentum) * running_rho_[0] + kRhoMomentum * batch_rho_);
  }
  const double rho_used = (mode == nn::Mode::Train || calibrating_) ? batch_rho_ : static_cast<double>(running_rho_[0]);
  double scale = static_cast<double>(input_scale()) * static_cast<double>(weight_scale());
  if (settings_.rescale == Rescale::Both) scale /= rho_used;  // DESIGN.md 2.4, mode both
  PimPhaseTimer t_out(PimPhase::Output);
  dst.resize(out_shape);
  float* out = dst.data();
  const std::int64_t* sums = pim_sum_.data();
  const std::int64_t c = sum_coefficient(decomposition_, reduction);
  // out = scale y~ (pim/kernels/packed.h: y~ = A, or fma(Delta, A, p_lo C)), NCHW or blocked.
  const bool integer_readout = adc.integer_readout();
  const double delta = adc.delta(), offset = adc.p_lo() * static_cast<double>(c);
  auto value = [=](std::int64_t a) {
    const double y = integer_readout ? static_cast<double>(a) : std::fma(delta, static_cast<double>(a), offset);
    return static_cast<float>(scale * y);
  };
  if (!blocked) {
#pragma omp parallel for schedule(static) if (count > (std::size_t{1} << 16))
    for (std::size_t i = 0; i < count; ++i) out[i] = value(sums[i]);
  } else {
    // Chunk (n, channel block) of the blocked output gathers its B channel rows of the NCHW sums.
    const Index chunks = out_shape[0] * (out_shape[1] / block), plane = image_pixels_;
#pragma omp parallel for schedule(static) if (count > (std::size_t{1} << 16))
    for (Index k = 0; k < chunks; ++k) {
      const std::int64_t* rows = sums + k * block * plane;
      float* chunk = out + k * block * plane;
      for (Index p = 0; p < plane; ++p)
        for (Index l = 0; l < block; ++l) chunk[p * block + l] = value(rows[l * plane + p]);
    }
  }
  t_out.stop();
  if (pim_profiling())
    compute_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - compute_start).count();
}

const std::vector<double>& PimConv2d::pim_output() const {
  if (!pim_ready_) {
    const nn::ConvGeometry& g = geometry();
    const std::int64_t c = sum_coefficient(decomposition_, g.in_channels * g.kernel * g.kernel);
    pim_.resize(pim_sum_.size());
    for (std::size_t i = 0; i < pim_sum_.size(); ++i) pim_[i] = pim_value(bank_.adc(), c, pim_sum_[i]);
    pim_ready_ = true;
  }
  return pim_;
}

const std::vector<std::int64_t>& PimConv2d::exact_output() const {
  if (!exact_ready_) {
    const nn::ConvGeometry& g = geometry();
    const Index reduction = g.in_channels * g.kernel * g.kernel;
    exact_.resize(pim_sum_.size());
    if (!exact_.empty()) {
      // The exact product does not depend on the ADC: any bank of the right range will do.
      packed_pim_gemm_integer(decomposition_, AdcBank(adc()), packed_x_, packed_w_, reduction, g.out_channels,
                              image_pixels_, nullptr, exact_.data(), nullptr);
    }
    exact_ready_ = true;
  }
  return exact_;
}

void PimConv2d::compute_backward(const Tensor& src_q, const Tensor& weight_q, const Tensor& diff_dst,
                                 Tensor* diff_src_q, Tensor& diff_weight_q) {
  const auto compute_start = std::chrono::steady_clock::now();
  PimPhaseTimer timer(PimPhase::BackwardConv);
  nn::QuantConv2d::compute_backward(src_q, weight_q, diff_dst, diff_src_q, diff_weight_q);
  if (pim_profiling())
    compute_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - compute_start).count();
  if (settings_.rescale != Rescale::Backward) return;
  // DESIGN.md 2.4, mode backward: dL/dy = rho dL/dy~ (applied to both gradients of the linear product).
  const auto rho = static_cast<float>(batch_rho_);
  if (diff_src_q) diff_src_q->vec() *= rho;
  diff_weight_q.vec() *= rho;
}

PimLayerFactory::PimLayerFactory(const ModelConfig& model, PimLayerSettings settings)
    : nn::QatLayerFactory(model), settings_(settings) {
  std::string problems;
  if (model.weight_bits < kMinOperandBits || model.weight_bits > kMaxOperandBits)
    problems += "\n  - model.weight_bits = " + std::to_string(model.weight_bits) + " (PIM layers need 2..8)";
  if (model.act_bits < kMinOperandBits || model.act_bits > kMaxOperandBits)
    problems += "\n  - model.act_bits = " + std::to_string(model.act_bits) + " (PIM layers need 2..8)";
  if (problems.empty()) {
    try {
      make_decomposition("(settings)", {model.weight_bits, model.act_bits, model.alpha_init}, settings);
    } catch (const Error& e) {
      problems += std::string("\n  - ") + e.what();
    }
  }
  if (!problems.empty()) throw Error("invalid PIM model:" + problems);
}

nn::LayerPtr PimLayerFactory::make_conv(const nn::ConvSpec& spec, RandomStream& init) {
  if (spec.role == nn::ConvRole::First) return nn::QatLayerFactory::make_conv(spec, init);
  auto conv = std::make_unique<PimConv2d>(spec.name, spec.geometry, nn::conv_quantization(model(), spec.role), settings_);
  nn::kaiming_normal_fan_out(conv->weight().value, init);  // as QatLayerFactory does
  return conv;
}

std::vector<PimConv2d*> pim_layers(nn::Layer& model) {
  std::vector<PimConv2d*> layers;
  model.visit([&layers](nn::Layer& layer) {
    if (auto* pim = dynamic_cast<PimConv2d*>(&layer)) layers.push_back(pim);
  });
  return layers;
}

void set_adc_bits(nn::Layer& model, int bits) {
  for (PimConv2d* layer : pim_layers(model)) layer->set_adc_bits(bits);
}

void set_rescale(nn::Layer& model, Rescale rescale) {
  for (PimConv2d* layer : pim_layers(model)) layer->set_rescale(rescale);
}

void attach_die(nn::Layer& model, const std::shared_ptr<const Die>& die) {
  std::uint64_t index = 0;
  for (PimConv2d* layer : pim_layers(model)) layer->attach_die(die, index++);
}

void detach_die(nn::Layer& model) {
  for (PimConv2d* layer : pim_layers(model)) layer->detach_die();
}

}  // namespace pimqat::pim
