#pragma once
// The PIM convolution layer (DESIGN.md 2.2-2.5) and the factory that puts it into a ResNet.
//
// PimConv2d is a QuantConv2d (nn/qlayers.h: PACT activations X, tanh weights W, scales s_a, s_w)
// whose product is computed the PIM way:
//   forward   y~ = PIM(X, W) with the layer's scheme, rows N and ADC (pim/kernels/packed.h; ideal
//             ADC of `adc_bits` bits, or the columns and noise of an attached die);
//             exact y = sum X W (same partial sums, exact integers);
//             rho = std(y~) / std(y) over all elements of the batch output (population std; rho = 1
//             when either std is 0), from the exact integer moments of A and y (pim/kernels/packed.h:
//             y~ = A or fma(Delta, A, p_lo C), so std(y~) = Delta std(A) up to the rounding of y~);
//             output s_a s_w y~ (rescale none | backward) or s_a s_w y~ / rho_used (both).
//   backward  straight-through to the exact product y = s_a s_w sum X W: the gradient of the exact
//             convolution of x_q and w_q (oneDNN), times rho in mode backward (DESIGN.md 2.4);
//             rho is a constant. No FP32 convolution runs in either pass: the base class sets
//             oneDNN's backward up from the forward's primitive descriptor without executing it
//             (nn::ConvEngine::prepare_backward).
// rho_used: the batch rho in Mode::Train and while calibrating; the running rho in Mode::Eval.
// Running rho (state "<name>.rho", shape (1), initial 1): after each Train forward
// running <- 0.9 running + 0.1 rho (BN's momentum 0.1); while calibrating it is the exact
// cumulative average of the batch rhos since calibration was switched on (DESIGN.md 2.5).
// Dies: attach_die() switches the layer to that die's non-ideal columns and thermal noise; the
// noise stream of the k-th forward after attaching is Die::noise_stream(layer, k).
#include <cstdint>
#include <memory>
#include <vector>

#include "nn/config.h"
#include "nn/qlayers.h"
#include "nn/resnet.h"
#include "pim/adc.h"
#include "pim/die.h"
#include "pim/kernels/packed.h"
#include "pim/scheme.h"

namespace pimqat::pim {

using ::pimqat::Rescale;

// "none" | "backward" | "both", and back (throws pimqat::Error naming the valid values).
const char* rescale_name(Rescale rescale);
Rescale parse_rescale(const std::string& text);

struct PimLayerSettings {
  Scheme scheme = Scheme::BitSerial;
  int rows = 0;       // N; 0 = the scheme's default
  int adc_bits = 7;   // TR in training; set_adc_bits(IR) for evaluation
  double adc_clip = 1.0;
  Rescale rescale = Rescale::Both;

  // From the pim: section (adc_bits = pim.train_bits).
  static PimLayerSettings from_config(const PimConfig& pim);
};

class PimConv2d : public nn::QuantConv2d {
 public:
  inline static constexpr double kRhoMomentum = 0.1;

  // Throws pimqat::Error unless weight and activation bits are in [2, 8] and the settings are valid.
  PimConv2d(std::string name, nn::ConvGeometry g, nn::LayerQuantization quantization, PimLayerSettings settings);

  void collect_state(std::vector<nn::StateTensor>& out) override;
  // QuantConv2d's passes (NCHW and blocked layouts), timed by phase when profiling is on (pim/profile.h).
  const Tensor& forward(const Tensor& src, nn::Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  const Tensor& forward_blocked(const Tensor& src, nn::Mode mode) override;
  const Tensor& backward_blocked(const Tensor& diff_dst) override;

  const Decomposition& decomposition() const { return decomposition_; }
  const PimLayerSettings& settings() const { return settings_; }
  int adc_bits() const { return settings_.adc_bits; }
  void set_adc_bits(int bits);
  void set_rescale(Rescale rescale) { settings_.rescale = rescale; }
  // The ideal ADC at the current resolution.
  Adc adc() const;

  // Evaluation on a die: `layer` is this layer's number among the model's PIM layers (attach_die
  // over a model numbers them in visit order). Resets the forward-call counter.
  void attach_die(std::shared_ptr<const Die> die, std::uint64_t layer);
  void detach_die();
  bool has_die() const { return die_ != nullptr; }

  void set_calibrating(bool on);
  bool calibrating() const { return calibrating_; }
  void reset_running_rho();
  double running_rho() const { return running_rho_[0]; }
  double batch_rho() const { return batch_rho_; }  // of the latest forward

  // The latest forward's y~ and exact y (NCHW, integer domain, before the scales s_a s_w); made
  // on first request after a forward (the forward itself keeps only the PIM sums and the moments).
  const std::vector<double>& pim_output() const;
  const std::vector<std::int64_t>& exact_output() const;

 protected:
  // The packer quantizes the float input itself; x_q is written only for the backward.
  bool uses_input_integers() const override { return false; }
  bool uses_quantized_input(nn::Mode mode) const override { return mode == nn::Mode::Train; }
  void compute(const Tensor& src_q, const Tensor& weight_q, Tensor& dst, nn::Mode mode) override;
  void compute_backward(const Tensor& src_q, const Tensor& weight_q, const Tensor& diff_dst, Tensor* diff_src_q,
                        Tensor& diff_weight_q) override;

 private:
  void rebuild_bank();
  // Runs one pass of the base class; when profiling, books its time outside compute() /
  // compute_backward() to the quantizers' phase of that direction.
  template <class Pass>
  const Tensor& timed_pass(bool backward, Pass&& pass);

  PimLayerSettings settings_;
  Decomposition decomposition_;
  Tensor running_rho_;
  double batch_rho_ = 1.0;
  bool calibrating_ = false;
  double calibration_sum_ = 0.0;
  std::int64_t calibration_count_ = 0;
  std::shared_ptr<const Die> die_;
  std::uint64_t die_layer_ = 0;
  std::uint64_t die_calls_ = 0;
  AdcBank bank_;
  PackedActivations packed_x_;
  PackedWeights packed_w_;
  std::vector<std::int64_t> pim_sum_;  // A of pim/kernels/packed.h, NCHW
  Index image_pixels_ = 1;
  mutable std::vector<double> pim_;
  mutable std::vector<std::int64_t> exact_;
  mutable bool pim_ready_ = false, exact_ready_ = false;
  double compute_seconds_ = 0.0;  // profiling: time inside compute / compute_backward of the latest pass
};

// ResNet layers for PIM-QAT (DESIGN.md 2.1): body and 1x1 shortcut convolutions become PimConv2d;
// the first convolution and the final linear layer stay digital QAT (nn::QatLayerFactory), with
// the same initialization as the digital model of the same seed.
class PimLayerFactory : public nn::QatLayerFactory {
 public:
  // Throws pimqat::Error when the model is not quantized (PIM needs model.weight_bits and
  // model.act_bits in [2, 8]) or the settings are invalid.
  PimLayerFactory(const ModelConfig& model, PimLayerSettings settings);

  nn::LayerPtr make_conv(const nn::ConvSpec& spec, RandomStream& init) override;

 private:
  PimLayerSettings settings_;
};

// Model-wide helpers (layers found through Layer::visit, in visit order).
std::vector<PimConv2d*> pim_layers(nn::Layer& model);
void set_adc_bits(nn::Layer& model, int bits);
void set_rescale(nn::Layer& model, Rescale rescale);
// Attaches `die` to every PIM layer, numbering them 0, 1, ... in visit order (the die's layer index).
void attach_die(nn::Layer& model, const std::shared_ptr<const Die>& die);
void detach_die(nn::Layer& model);

}  // namespace pimqat::pim
