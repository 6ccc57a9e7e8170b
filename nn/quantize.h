#pragma once
// Base quantizers of digital QAT (DESIGN.md 2.1), as functions over whole tensors, forward and
// straight-through backward. docs/quantization.md explains every convention below; the tests in
// tests/nn/quantize.cpp check the levels against hand-computed values and the backward passes
// against central differences (in double) of the smooth surrogates.
//
// Weights, b = bits (2..16), over the whole layer's tensor w (n elements):
//   t = tanh(w),  M = max_i |t_i| (k = the first index attaining it),  u = t / M
//   m = clamp(floor((u + 1) * 2^(b-1)), 0, 2^b - 1)        [(u+1)/2 * 2^b; exact in float]
//   W = m - 2^(b-1)                                         in [-2^(b-1), 2^(b-1) - 1]
//   s_w = 1 / (std(W) * sqrt(fan_out)),  std the population standard deviation (divide by n)
//   w_q = s_w * W
//   fan_out: conv weight (C_out, C_in, kH, kW) -> C_out * kH * kW (PyTorch's convention);
//            linear weight (out, in) -> out.  See weight_fan_out().
// Guards: M = 0 (all weights 0) gives u = 0, hence W = 0 everywhere; std(W) = 0 (all W equal)
// uses std = 1, i.e. s_w = 1 / sqrt(fan_out).
// Backward (g = dL/dw_q): s_w is a constant; rounding is straight-through, dW/du = 2^(b-1), and the
// clamp is passed straight through too (it is active only at u = +1, the maximal element, which it
// moves down by one level; cutting the gradient there would freeze the element that sets the
// range). Then the exact derivative of the normalization, including M's dependence on w_k:
//   gu_i = 2^(b-1) s_w g_i
//   dL/dw_j = gu_j (1 - t_j^2) / M  -  [j == k] sign(t_k) (1 - t_k^2) / M^2 * sum_i gu_i t_i
// With M = 0 the gradient is 0 (the forward output is identically 0).
//
// Activations (PACT with the calibrated clip gradient), b = bits (1..16), clip alpha > 0,
// L = 2^b - 1 levels above 0:
//   X = round(clamp(x, 0, alpha) * (L / alpha))    in [0, L]
//   s_a = alpha / L,  x_q = X * s_a
// `round` is round-half-to-even (std::nearbyint in the default rounding mode; the same as
// torch.round). L / alpha and alpha / L are each rounded to float once, then multiplied, which
// is what `torch.round(torch.clamp(x, 0, alpha) * (L / alpha)) * (alpha / L)` computes.
// Backward (g = dL/dx_q):
//   dL/dx_i = g_i on 0 < x_i < alpha, else 0
//   dL/dalpha = sum_i g_i * { (x_q,i - x_i) / alpha  if 0 <= x_i < alpha;  1 if x_i >= alpha;
//                             0 if x_i < 0 }
// The x < 0 case: DESIGN.md writes (x_q - x)/alpha for every x < alpha, derived for inputs that
// follow a ReLU (the only inputs pimqat quantizes). Below 0 the clamp makes x_q = 0 for every
// alpha, so the straight-through derivative is 0, which is what this implementation uses.
//
// Determinism: every sum (std(W) from exact integer sums, the alpha gradient and the
// normalization term from fixed-size blocks added in a fixed order) gives the same bits for any
// number of OpenMP threads.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/tensor.h"

namespace pimqat::nn {

inline constexpr int kMinWeightBits = 2;
inline constexpr int kMaxWeightBits = 16;
inline constexpr int kMinActivationBits = 1;
inline constexpr int kMaxActivationBits = 16;

// fan_out of a weight tensor: (C_out, C_in, kH, kW) -> C_out * kH * kW; (out, in) -> out.
// Throws pimqat::Error for other ranks.
Index weight_fan_out(const Shape& weight_shape);

// What the weight quantizer's backward needs from its forward (besides the latent weight).
struct WeightQuantization {
  int bits = 0;
  float scale = 0.0f;        // s_w
  float max_abs_tanh = 0.0f; // M
  Index max_index = 0;       // k, the first index with |tanh(w_k)| = M
  double integer_std = 0.0;  // std(W) as computed (before the std = 0 guard)
};

// Forward weight quantizer. Writes the integers W (floats holding integers) and w_q = s_w * W,
// both resized to weight's shape. Throws pimqat::Error for bits outside [2, 16], fan_out < 1 or an
// empty tensor.
WeightQuantization quantize_weight(const Tensor& weight, int bits, Index fan_out, Tensor& integers,
                                   Tensor& dequantized);

// Straight-through backward of quantize_weight: diff_weight = dL/dw given diff_dequantized = dL/dw_q.
// `weight` must be the tensor the forward saw. diff_weight is resized to weight's shape.
void quantize_weight_backward(const Tensor& weight, const WeightQuantization& forward,
                              const Tensor& diff_dequantized, Tensor& diff_weight);

// Forward activation quantizer. Writes X (floats holding integers) and x_q, both resized to src's
// shape, and returns s_a = alpha / (2^bits - 1). Throws pimqat::Error for bits outside [1, 16] or
// alpha not positive and finite.
float quantize_activation(const Tensor& src, int bits, float alpha, Tensor& integers, Tensor& dequantized);
// The same with either output skipped (null): a layer that does not read X or x_q does not pay
// for writing it.
float quantize_activation(const Tensor& src, int bits, float alpha, Tensor* integers, Tensor* dequantized);

// The factor from a clipped activation to its integer, (2^bits - 1) / alpha, as the quantizer
// computes it (float), and the integer of one activation:
//   X = nearbyint(min(max(x, 0), alpha) * to_integer)   (round half to even; NaN stays NaN).
// quantize_activation uses exactly these operations; code that quantizes on its own (the PIM
// packer reads the float input) must repeat them to get the same X.
float activation_to_integer(int bits, float alpha);
inline float activation_integer(float x, float alpha, float to_integer) {
  const float clipped = std::min(std::max(x, 0.0f), alpha);
  return std::nearbyint(clipped * to_integer);
}

// Straight-through backward of quantize_activation: writes diff_src = dL/dx (resized to src's
// shape) and returns dL/dalpha summed over all elements. `dequantized` is the x_q of the forward.
// diff_src may be the same tensor as diff_dequantized (the gradient is then masked in place).
float quantize_activation_backward(const Tensor& src, const Tensor& dequantized, float alpha,
                                   const Tensor& diff_dequantized, Tensor& diff_src);

}  // namespace pimqat::nn
