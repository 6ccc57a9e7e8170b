#pragma once
// Batch normalization over (N, H, W) per channel of an NCHW tensor, with an optional fused ReLU.
//
// Train mode (PyTorch's BatchNorm2d, momentum 0.1, eps 1e-5): with M = N*H*W values per channel,
//   mean_c = (1/M) sum x,  var_c = (1/M) sum (x - mean_c)^2  (biased, used to normalize),
//   y = gamma_c (x - mean_c) / sqrt(var_c + eps) + beta_c,
//   running_mean <- (1 - momentum) running_mean + momentum mean_c,
//   running_var  <- (1 - momentum) running_var  + momentum var_c * M / (M - 1)  (unbiased).
// Eval mode: y = gamma_c (x - running_mean_c) / sqrt(running_var_c + eps) + beta_c.
// With BnActivation::Relu the layer outputs max(y, 0) (one pass instead of two layers); backward
// recomputes the mask y > 0 from src (bit-identical to forward's) instead of reading the output.
//
// Calibration (DESIGN.md 2.5, BN calibration per die): while `set_calibrating(true)` is on, every
// forward, in either mode, normalizes with the batch statistics (as in Train) and sets the running
// statistics to the exact cumulative average over the calibrating forwards made since calibration
// was switched on: after k such calls, running_mean = (1/k) sum_i mean_i and running_var =
// (1/k) sum_i unbiased_var_i (sums kept in double). Switching calibration on starts a new average
// (the running values are left alone until the first calibrating forward replaces them);
// reset_running_stats() sets mean 0 / variance 1 and also restarts the average. A calibrating
// forward in Mode::Eval does not allow backward().
//
// Parameters "<name>.weight" (gamma, init 1) and "<name>.bias" (beta, init 0), both excluded from
// weight decay; state "<name>.running_mean" (init 0) and "<name>.running_var" (init 1), shape (C).
// Statistics are summed per (n, c) plane and then over n in a fixed order, in double, so results
// do not depend on the number of threads.
#include <string>
#include <vector>

#include "nn/conv.h"
#include "nn/layer.h"

namespace pimqat::nn {

enum class BnActivation { None, Relu };

class BatchNorm2d : public Layer {
 public:
  static constexpr double kDefaultMomentum = 0.1;
  static constexpr double kDefaultEpsilon = 1e-5;

  BatchNorm2d(std::string name, Index channels, BnActivation activation = BnActivation::None,
              double momentum = kDefaultMomentum, double epsilon = kDefaultEpsilon);

  const Tensor& forward(const Tensor& src, Mode mode) override;
  const Tensor& backward(const Tensor& diff_dst) override;
  void collect_parameters(std::vector<Parameter*>& out) override;
  void collect_state(std::vector<StateTensor>& out) override;

  Index channels() const { return channels_; }
  BnActivation activation() const { return activation_; }
  Parameter& weight() { return gamma_; }
  Parameter& bias() { return beta_; }
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }

  void reset_running_stats();
  void set_calibrating(bool on);
  bool calibrating() const { return calibrating_; }
  Index calibration_batches() const { return calibration_count_; }

  // --- Fusion interface (nn/resnet.cpp fuses BN with the residual sum and ReLU) -----------------
  // Does everything forward() does except writing the output: computes the statistics of `src`
  // (batch or running, by mode and calibration), updates the running statistics, and leaves
  // per-channel coefficients with bn(x)_c = scale_c x + shift_c.
  // `layout`: the src's activation layout (nn/conv.h).
  void prepare(const Tensor& src, Mode mode, Layout layout = Layout::Nchw);
  const float* scale() const { return scale_.data(); }
  const float* shift() const { return shift_.data(); }
  // The mean used to normalize (batch mean after a Train/calibrating prepare).
  const float* mean() const { return mean_.data(); }
  // Backward from per-channel sums over the batch of the gradient g = dL/dy (y before any fused
  // activation): sum_g_c = sum g, sum_g_centered_c = sum g (x - mean_c). Overwrites the gradients
  // of gamma and beta and leaves coefficients with dL/dx = a_c g + b_c (x - mean_c) + k_c.
  void finish_backward(const double* sum_g, const double* sum_g_centered);
  const float* grad_a() const { return coef_a_.data(); }
  const float* grad_b() const { return coef_b_.data(); }
  const float* grad_k() const { return coef_k_.data(); }
  // forward()/backward() on tensors in the blocked layout (nn/conv.h), into the caller's buffers:
  // dst = bn(src) (+ ReLU); diff_src from diff_dst, given the src of the latest forward_blocked
  // (which must have been in Train mode).
  void forward_blocked(const Tensor& src, Mode mode, Tensor& dst);
  void backward_blocked(const Tensor& diff_dst, const Tensor& src, Tensor& diff_src);
  // Whether the latest prepare/forward allows backward (Train mode).
  bool has_train_forward() const { return train_forward_; }

 private:
  Index channels_;
  BnActivation activation_;
  double momentum_;
  double epsilon_;
  Parameter gamma_;
  Parameter beta_;
  Tensor running_mean_;
  Tensor running_var_;
  bool calibrating_ = false;
  Index calibration_count_ = 0;
  std::vector<double> calibration_mean_sum_;
  std::vector<double> calibration_var_sum_;

  std::vector<float> scale_, shift_, mean_;
  std::vector<float> invstd_;
  std::vector<float> coef_a_, coef_b_, coef_k_;
  std::vector<double> plane_sums_, plane_sums2_;  // (N*C) partial sums
  Index count_ = 0;                               // M of the latest prepare
  bool train_forward_ = false;
  const Tensor* src_ = nullptr;
  Tensor dst_;
  Tensor diff_src_;
};

// Per-channel sums of a plane-wise function over an NCHW tensor, reduced deterministically: the
// (n, c) planes are summed in parallel into `plane` scratch (N*C doubles), then over n in order.
// Helpers shared by the fused kernels of nn/resnet.cpp.
void reduce_planes(const std::vector<double>& plane, Index batch, Index channels, double* per_channel);

}  // namespace pimqat::nn
