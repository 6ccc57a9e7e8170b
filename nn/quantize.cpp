#include "nn/quantize.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace pimqat::nn {
namespace {

// Elements per block of the deterministic sums: each block is summed by one thread in a fixed
// order (fixed SIMD lanes, then the lanes in double), then the blocks are added in index order in
// double. The result therefore does not depend on the number of threads.
constexpr Index kSumBlock = 4096;
// Independent partial sums inside a block (one AVX-512 register of floats).
constexpr int kLanes = 16;
// Below this many elements a loop runs on one thread (a weight tensor is usually this small).
constexpr Index kParallelThreshold = 32768;

Index block_count(Index n) { return (n + kSumBlock - 1) / kSumBlock; }

double add_in_order(const std::vector<double>& partial) {
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

void check_weight_bits(int bits) {
  if (bits < kMinWeightBits || bits > kMaxWeightBits)
    throw Error("weight quantizer: weight_bits = " + std::to_string(bits) + " is not supported (valid: " +
                std::to_string(kMinWeightBits) + ".." + std::to_string(kMaxWeightBits) + ")");
}

void check_activation(int bits, float alpha) {
  if (bits < kMinActivationBits || bits > kMaxActivationBits)
    throw Error("activation quantizer: act_bits = " + std::to_string(bits) + " is not supported (valid: " +
                std::to_string(kMinActivationBits) + ".." + std::to_string(kMaxActivationBits) + ")");
  if (!(alpha > 0.0f) || !std::isfinite(alpha))
    throw Error("activation quantizer: the clip alpha must be positive and finite, got " + std::to_string(alpha));
}

// std of integers from their exact sums: var = (n * sum(W^2) - sum(W)^2) / n^2.
double integer_std(Index n, std::int64_t sum, std::int64_t sum_squares) {
  std::int64_t n_sum_squares = 0;
  std::int64_t sum_sum = 0;
  double numerator = 0.0;
  if (!__builtin_mul_overflow(static_cast<std::int64_t>(n), sum_squares, &n_sum_squares) &&
      !__builtin_mul_overflow(sum, sum, &sum_sum)) {
    numerator = static_cast<double>(n_sum_squares - sum_sum);  // exact integer, one rounding
  } else {
    const long double ln = static_cast<long double>(n);
    const long double ls = static_cast<long double>(sum);
    numerator = static_cast<double>(ln * static_cast<long double>(sum_squares) - ls * ls);
  }
  const double nn = static_cast<double>(n);
  return std::sqrt(std::max(numerator, 0.0) / (nn * nn));
}

// v when keep, else +0.0f: a select written as a bit mask, which GCC vectorizes (a ?: on floats
// is a branch to it under -ftrapping-math).
inline float keep_if(bool keep, float v) {
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) & (0u - static_cast<std::uint32_t>(keep)));
}

// One lane step of quantize_activation_backward: the masked gradient and the lane's two alpha sums.
inline void activation_backward_step(float xi, float xqi, float gi, float alpha, float& dxi, float& inside,
                                     float& clipped) {
  const bool below = xi < alpha;  // bitwise & below: no short-circuit branches
  dxi = keep_if((xi > 0.0f) & below, gi);
  inside += keep_if((xi >= 0.0f) & below, gi * (xqi - xi));
  clipped += keep_if(!below, gi);
}

// One block of quantize_activation_backward: the masked gradient and the two alpha sums
// (sum_{0 <= x < alpha} g (x_q - x) and sum_{x >= alpha} g), each over kLanes float lanes added
// in double at the end.
void activation_backward_block(const float* x, const float* xq, const float* g, float* dx, Index count, float alpha,
                               double& inside_sum, double& clipped_sum) {
  float inside[kLanes] = {};
  float clipped[kLanes] = {};
  Index i = 0;
  for (; i + kLanes <= count; i += kLanes) {
#pragma omp simd
    for (int lane = 0; lane < kLanes; ++lane)
      activation_backward_step(x[i + lane], xq[i + lane], g[i + lane], alpha, dx[i + lane], inside[lane], clipped[lane]);
  }
  for (int lane = 0; i < count; ++i, ++lane)
    activation_backward_step(x[i], xq[i], g[i], alpha, dx[i], inside[lane], clipped[lane]);
  inside_sum = 0.0;
  clipped_sum = 0.0;
  for (int lane = 0; lane < kLanes; ++lane) {
    inside_sum += inside[lane];
    clipped_sum += clipped[lane];
  }
}

}  // namespace

Index weight_fan_out(const Shape& weight_shape) {
  if (weight_shape.rank() == 4) return weight_shape[0] * weight_shape[2] * weight_shape[3];
  if (weight_shape.rank() == 2) return weight_shape[0];
  throw Error("weight quantizer: fan_out is defined for conv weights (C_out, C_in, kH, kW) and linear weights "
              "(out, in), got shape " + weight_shape.str());
}

WeightQuantization quantize_weight(const Tensor& weight, int bits, Index fan_out, Tensor& integers,
                                   Tensor& dequantized) {
  check_weight_bits(bits);
  const Index n = weight.size();
  if (n == 0) throw Error("weight quantizer: the weight tensor is empty");
  if (fan_out < 1) throw Error("weight quantizer: fan_out must be at least 1, got " + std::to_string(fan_out));
  integers.resize(weight.shape());
  dequantized.resize(weight.shape());
  const float* w = weight.data();
  float* t = dequantized.data();  // holds tanh(w) until the last pass
  float* q = integers.data();

  // Pass 1: t = tanh(w) and M = max |t| (max is exact and order-free).
  float max_abs = 0.0f;
  Index nan_count = 0;
#pragma omp parallel for simd schedule(static) reduction(max : max_abs) reduction(+ : nan_count) \
    if (n >= kParallelThreshold)
  for (Index i = 0; i < n; ++i) {
    t[i] = std::tanh(w[i]);
    max_abs = std::max(max_abs, std::fabs(t[i]));
    nan_count += std::isnan(t[i]) ? 1 : 0;
  }
  if (nan_count > 0)
    throw ReproducibleError("weight quantizer: the weight tensor holds " + std::to_string(nan_count) +
                " NaN values (training diverged?)");
  Index max_index = 0;
  while (std::fabs(t[max_index]) != max_abs) ++max_index;  // M is attained: no NaN, n >= 1

  // Pass 2: u = t / M, m = clamp(floor((u + 1) * 2^(b-1)), 0, 2^b - 1), W = m - 2^(b-1).
  const float half_range = std::ldexp(1.0f, bits - 1);  // 2^(b-1); (u+1)/2 * 2^b = (u+1) * 2^(b-1) exactly
  const float top = std::ldexp(1.0f, bits) - 1.0f;
  std::int64_t sum = 0;
  std::int64_t sum_squares = 0;
  if (max_abs > 0.0f) {
#pragma omp parallel for simd schedule(static) reduction(+ : sum, sum_squares) if (n >= kParallelThreshold)
    for (Index i = 0; i < n; ++i) {
      const float u = t[i] / max_abs;
      const float m = std::min(std::max(std::floor((u + 1.0f) * half_range), 0.0f), top);
      const float integer = m - half_range;
      q[i] = integer;
      const auto k = static_cast<std::int64_t>(integer);
      sum += k;
      sum_squares += k * k;
    }
  } else {
    // Every weight is 0: u = 0 by definition, m = 2^(b-1), W = 0.
    std::fill(q, q + n, 0.0f);
  }

  WeightQuantization result;
  result.bits = bits;
  result.max_abs_tanh = max_abs;
  result.max_index = max_index;
  result.integer_std = integer_std(n, sum, sum_squares);
  const double std_used = result.integer_std > 0.0 ? result.integer_std : 1.0;
  result.scale = static_cast<float>(1.0 / (std_used * std::sqrt(static_cast<double>(fan_out))));

  // Pass 3: w_q = s_w * W.
  const float scale = result.scale;
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (Index i = 0; i < n; ++i) t[i] = scale * q[i];
  return result;
}

void quantize_weight_backward(const Tensor& weight, const WeightQuantization& forward,
                              const Tensor& diff_dequantized, Tensor& diff_weight) {
  check_weight_bits(forward.bits);
  if (!(diff_dequantized.shape() == weight.shape()))
    throw Error("weight quantizer backward: gradient shape " + diff_dequantized.shape().str() +
                " does not match the weight shape " + weight.shape().str());
  const Index n = weight.size();
  PIMQAT_ASSERT(forward.max_index >= 0 && forward.max_index < n);
  diff_weight.resize(weight.shape());
  const float* w = weight.data();
  const float* g = diff_dequantized.data();
  float* dw = diff_weight.data();
  const float max_abs = forward.max_abs_tanh;
  if (!(max_abs > 0.0f)) {
    diff_weight.zero();
    return;
  }
  // gu = dL/du = 2^(b-1) s_w g (straight-through floor and clamp, s_w constant).
  const float du_scale = std::ldexp(1.0f, forward.bits - 1) * forward.scale;
  const float inv_max = 1.0f / max_abs;

  // Direct term gu_j (1 - t_j^2) / M, and the blocks of S = sum_i gu_i t_i (in double).
  const Index blocks = block_count(n);
  std::vector<double> partial(static_cast<std::size_t>(blocks));
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
  for (Index b = 0; b < blocks; ++b) {
    const Index begin = b * kSumBlock;
    const Index end = std::min(n, begin + kSumBlock);
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (Index i = begin; i < end; ++i) {
      const float ti = std::tanh(w[i]);
      const float gu = du_scale * g[i];
      dw[i] = gu * (1.0f - ti * ti) * inv_max;
      s += static_cast<double>(gu) * static_cast<double>(ti);
    }
    partial[static_cast<std::size_t>(b)] = s;
  }
  const double total = add_in_order(partial);
  // Term of M = |t_k|: dM/dw_k = sign(t_k) (1 - t_k^2); du_i/dM = -t_i / M^2.
  const Index k = forward.max_index;
  const double tk = static_cast<double>(std::tanh(w[k]));
  const double sign = tk >= 0.0 ? 1.0 : -1.0;
  const double mk = static_cast<double>(max_abs);
  dw[k] = static_cast<float>(static_cast<double>(dw[k]) - sign * (1.0 - tk * tk) / (mk * mk) * total);
}

float activation_to_integer(int bits, float alpha) { return (std::ldexp(1.0f, bits) - 1.0f) / alpha; }

float quantize_activation(const Tensor& src, int bits, float alpha, Tensor& integers, Tensor& dequantized) {
  return quantize_activation(src, bits, alpha, &integers, &dequantized);
}

float quantize_activation(const Tensor& src, int bits, float alpha, Tensor* integers, Tensor* dequantized) {
  check_activation(bits, alpha);
  const Index n = src.size();
  const float levels = std::ldexp(1.0f, bits) - 1.0f;
  const float to_integer = activation_to_integer(bits, alpha);
  const float scale = alpha / levels;
  const float* x = src.data();
  float* xi = nullptr;
  float* xq = nullptr;
  if (integers) {
    integers->resize(src.shape());
    xi = integers->data();
  }
  if (dequantized) {
    dequantized->resize(src.shape());
    xq = dequantized->data();
  }
  // Round half to even (default rounding mode, activation_integer); the product is at most
  // `levels` up to two roundings, and nearbyint of that is `levels`.
  if (xi && xq) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (Index i = 0; i < n; ++i) {
      const float integer = activation_integer(x[i], alpha, to_integer);
      xi[i] = integer;
      xq[i] = integer * scale;
    }
  } else if (xi) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (Index i = 0; i < n; ++i) xi[i] = activation_integer(x[i], alpha, to_integer);
  } else if (xq) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (Index i = 0; i < n; ++i) xq[i] = activation_integer(x[i], alpha, to_integer) * scale;
  }
  return scale;
}

float quantize_activation_backward(const Tensor& src, const Tensor& dequantized, float alpha,
                                   const Tensor& diff_dequantized, Tensor& diff_src) {
  if (!(alpha > 0.0f) || !std::isfinite(alpha))
    throw Error("activation quantizer backward: the clip alpha must be positive and finite, got " +
                std::to_string(alpha));
  if (!(dequantized.shape() == src.shape()) || !(diff_dequantized.shape() == src.shape()))
    throw Error("activation quantizer backward: shapes differ: src " + src.shape().str() + ", x_q " +
                dequantized.shape().str() + ", gradient " + diff_dequantized.shape().str());
  const Index n = src.size();
  diff_src.resize(src.shape());
  const float* x = src.data();
  const float* xq = dequantized.data();
  const float* g = diff_dequantized.data();
  float* dx = diff_src.data();
  // dL/dalpha = (1/alpha) sum_{0 <= x < alpha} g (x_q - x) + sum_{x >= alpha} g: two sums per block,
  // each over kLanes float partial sums (SIMD lanes, kSumBlock / kLanes terms each) added in double.
  const Index blocks = block_count(n);
  std::vector<double> partial_inside(static_cast<std::size_t>(blocks));
  std::vector<double> partial_clipped(static_cast<std::size_t>(blocks));
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
  for (Index b = 0; b < blocks; ++b) {
    const Index begin = b * kSumBlock;
    const Index end = std::min(n, begin + kSumBlock);
    double inside_sum = 0.0;
    double clipped_sum = 0.0;
    activation_backward_block(x + begin, xq + begin, g + begin, dx + begin, end - begin, alpha, inside_sum, clipped_sum);
    partial_inside[static_cast<std::size_t>(b)] = inside_sum;
    partial_clipped[static_cast<std::size_t>(b)] = clipped_sum;
  }
  const double grad = add_in_order(partial_inside) / static_cast<double>(alpha) + add_in_order(partial_clipped);
  return static_cast<float>(grad);
}

}  // namespace pimqat::nn
