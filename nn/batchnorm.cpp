#include "nn/batchnorm.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pimqat::nn {

// Passes over fewer elements than this run on one thread (a parallel region costs more).
constexpr Index kParallelMin = Index{1} << 15;

namespace {

// Float lanes for at most kChunk values, then double: exact enough for any plane size.
constexpr Index kChunk = 1024;

// sum (x - shift) and sum (x - shift)^2 over one plane.
inline void plane_moments(const float* x, Index size, float shift, double& s1, double& s2) {
  s1 = 0.0;
  s2 = 0.0;
  for (Index begin = 0; begin < size; begin += kChunk) {
    const Index end = std::min(size, begin + kChunk);
    float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
    for (Index i = begin; i < end; ++i) {
      const float d = x[i] - shift;
      a += d;
      b += d * d;
    }
    s1 += a;
    s2 += b;
  }
}

// sum g and sum g (x - mean) over one plane; g = dy, or with the fused ReLU dy masked by
// fma(scale, x, shift) > 0 (exactly forward's y > 0, recomputed instead of read).
inline void plane_grad_sums(const float* dy, bool relu, float scale, float shift, const float* x, Index size,
                            float mean, double& s1, double& s2) {
  s1 = 0.0;
  s2 = 0.0;
  for (Index begin = 0; begin < size; begin += kChunk) {
    const Index end = std::min(size, begin + kChunk);
    float a = 0.0f, b = 0.0f;
    if (relu) {
#pragma omp simd reduction(+ : a, b)
      for (Index i = begin; i < end; ++i) {
        const float g = std::fma(scale, x[i], shift) > 0.0f ? dy[i] : 0.0f;
        a += g;
        b += g * (x[i] - mean);
      }
    } else {
#pragma omp simd reduction(+ : a, b)
      for (Index i = begin; i < end; ++i) {
        a += dy[i];
        b += dy[i] * (x[i] - mean);
      }
    }
    s1 += a;
    s2 += b;
  }
}

// Blocked layout: chunk k = (n, channel block) holds `positions` x B values, lane l = channel
// cb*B + l. Per-lane sums of (x - shift) and its square, written to plane index n*C + channel.
template <int B>
void blocked_moments(const float* x, Index chunks, Index positions, Index channels, const float* shifts, double* s1,
                     double* s2) {
  const Index blocks = channels / B;
#pragma omp parallel for schedule(static) if (chunks * positions * B >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    const Index n = k / blocks, cb = k % blocks;
    const float* base = x + k * positions * B;
    const float* shift = shifts + cb * B;
    double t1[B] = {}, t2[B] = {};
    for (Index begin = 0; begin < positions; begin += kChunk) {
      const Index end = std::min(positions, begin + kChunk);
      float a[B] = {}, b[B] = {};
      for (Index i = begin; i < end; ++i)
#pragma omp simd
        for (int l = 0; l < B; ++l) {
          const float d = base[i * B + l] - shift[l];
          a[l] += d;
          b[l] += d * d;
        }
      for (int l = 0; l < B; ++l) {
        t1[l] += a[l];
        t2[l] += b[l];
      }
    }
    for (int l = 0; l < B; ++l) {
      s1[n * channels + cb * B + l] = t1[l];
      s2[n * channels + cb * B + l] = t2[l];
    }
  }
}

// Blocked: per-lane sum g and sum g (x - mean), g = dy (masked by fma(scale, x, shift) > 0 with ReLU).
template <int B>
void blocked_grad_sums(const float* dy, bool relu, const float* scales, const float* shifts, const float* x,
                       Index chunks, Index positions, Index channels, const float* means, double* s1, double* s2) {
  const Index blocks = channels / B;
#pragma omp parallel for schedule(static) if (chunks * positions * B >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    const Index n = k / blocks, cb = k % blocks;
    const Index offset = k * positions * B;
    const float* mean = means + cb * B;
    const float* scale = scales + cb * B;
    const float* shift = shifts + cb * B;
    double t1[B] = {}, t2[B] = {};
    for (Index begin = 0; begin < positions; begin += kChunk) {
      const Index end = std::min(positions, begin + kChunk);
      float a[B] = {}, b[B] = {};
      for (Index i = begin; i < end; ++i) {
        const Index o = offset + i * B;
#pragma omp simd
        for (int l = 0; l < B; ++l) {
          const float g = (!relu || std::fma(scale[l], x[o + l], shift[l]) > 0.0f) ? dy[o + l] : 0.0f;
          a[l] += g;
          b[l] += g * (x[o + l] - mean[l]);
        }
      }
      for (int l = 0; l < B; ++l) {
        t1[l] += a[l];
        t2[l] += b[l];
      }
    }
    for (int l = 0; l < B; ++l) {
      s1[n * channels + cb * B + l] = t1[l];
      s2[n * channels + cb * B + l] = t2[l];
    }
  }
}

// Blocked: y = scale x + shift (+ ReLU) per lane.
template <int B>
void blocked_normalize(const float* x, float* y, Index chunks, Index blocks, Index positions, const float* scale,
                       const float* shift, bool relu) {
#pragma omp parallel for schedule(static) if (chunks * positions * B >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    const float* a = scale + (k % blocks) * B;
    const float* b = shift + (k % blocks) * B;
    const float* xp = x + k * positions * B;
    float* yp = y + k * positions * B;
    for (Index i = 0; i < positions; ++i) {
      if (relu) {
#pragma omp simd
        for (int l = 0; l < B; ++l) yp[i * B + l] = std::max(std::fma(a[l], xp[i * B + l], b[l]), 0.0f);
      } else {
#pragma omp simd
        for (int l = 0; l < B; ++l) yp[i * B + l] = std::fma(a[l], xp[i * B + l], b[l]);
      }
    }
  }
}

// Blocked: dx = a g + b (x - mean) + k per lane, g = dy (masked by fma(scale, x, shift) > 0 with ReLU).
template <int B>
void blocked_backward_apply(const float* dy, bool relu, const float* scales, const float* shifts, const float* x,
                            float* dx, Index chunks, Index blocks, Index positions, const float* ca, const float* cb,
                            const float* ck, const float* means) {
#pragma omp parallel for schedule(static) if (chunks * positions * B >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    const Index c0 = (k % blocks) * B;
    const float* a = ca + c0;
    const float* b = cb + c0;
    const float* kk = ck + c0;
    const float* m = means + c0;
    const float* scale = scales + c0;
    const float* shift = shifts + c0;
    const Index offset = k * positions * B;
    for (Index i = 0; i < positions; ++i) {
      const Index o = offset + i * B;
#pragma omp simd
      for (int l = 0; l < B; ++l) {
        const float g = (!relu || std::fma(scale[l], x[o + l], shift[l]) > 0.0f) ? dy[o + l] : 0.0f;
        dx[o + l] = a[l] * g + b[l] * (x[o + l] - m[l]) + kk[l];
      }
    }
  }
}

void check_src(const std::string& name, const Tensor& src, Index channels) {
  if (src.rank() != 4 || src.dim(1) != channels || src.dim(0) <= 0)
    throw Error("batch norm '" + name + "' expects an (N, " + std::to_string(channels) + ", H, W) tensor; got " +
                src.shape().str());
}

}  // namespace

void reduce_planes(const std::vector<double>& plane, Index batch, Index channels, double* per_channel) {
  for (Index c = 0; c < channels; ++c) per_channel[c] = 0.0;
  for (Index n = 0; n < batch; ++n)
    for (Index c = 0; c < channels; ++c) per_channel[c] += plane[static_cast<std::size_t>(n * channels + c)];
}

BatchNorm2d::BatchNorm2d(std::string name, Index channels, BnActivation activation, double momentum, double epsilon)
    : Layer(std::move(name)), channels_(channels), activation_(activation), momentum_(momentum), epsilon_(epsilon) {
  if (channels <= 0) throw Error("batch norm '" + this->name() + "': channels must be positive");
  if (!(momentum >= 0.0 && momentum <= 1.0)) throw Error("batch norm '" + this->name() + "': momentum must be in [0, 1]");
  if (!(epsilon > 0.0)) throw Error("batch norm '" + this->name() + "': epsilon must be positive");
  gamma_.name = this->name() + ".weight";
  gamma_.value = Tensor(Shape{channels}, 1.0f);
  gamma_.grad = Tensor(Shape{channels});
  gamma_.weight_decay = false;
  beta_.name = this->name() + ".bias";
  beta_.value = Tensor(Shape{channels}, 0.0f);
  beta_.grad = Tensor(Shape{channels});
  beta_.weight_decay = false;
  running_mean_ = Tensor(Shape{channels}, 0.0f);
  running_var_ = Tensor(Shape{channels}, 1.0f);
  const auto c = static_cast<std::size_t>(channels);
  scale_.resize(c);
  shift_.resize(c);
  mean_.resize(c);
  invstd_.resize(c);
  coef_a_.resize(c);
  coef_b_.resize(c);
  coef_k_.resize(c);
  calibration_mean_sum_.assign(c, 0.0);
  calibration_var_sum_.assign(c, 0.0);
}

void BatchNorm2d::collect_parameters(std::vector<Parameter*>& out) {
  out.push_back(&gamma_);
  out.push_back(&beta_);
}

void BatchNorm2d::collect_state(std::vector<StateTensor>& out) {
  out.push_back({name() + ".running_mean", &running_mean_});
  out.push_back({name() + ".running_var", &running_var_});
}

void BatchNorm2d::reset_running_stats() {
  running_mean_.fill(0.0f);
  running_var_.fill(1.0f);
  calibration_count_ = 0;
  std::fill(calibration_mean_sum_.begin(), calibration_mean_sum_.end(), 0.0);
  std::fill(calibration_var_sum_.begin(), calibration_var_sum_.end(), 0.0);
}

void BatchNorm2d::set_calibrating(bool on) {
  if (on && !calibrating_) {
    calibration_count_ = 0;
    std::fill(calibration_mean_sum_.begin(), calibration_mean_sum_.end(), 0.0);
    std::fill(calibration_var_sum_.begin(), calibration_var_sum_.end(), 0.0);
  }
  calibrating_ = on;
}

void BatchNorm2d::prepare(const Tensor& src, Mode mode, Layout layout) {
  check_src(name(), src, channels_);
  if (layout == Layout::Blocked && channels_ % channel_block() != 0)
    throw Error("batch norm '" + name() + "': the blocked layout needs channels to be a multiple of " +
                std::to_string(channel_block()));
  const Index batch = src.dim(0);
  const Index plane = src.dim(2) * src.dim(3);
  const Index count = batch * plane;
  const Index channels = channels_;
  const bool batch_statistics = mode == Mode::Train || calibrating_;
  if (batch_statistics) {
    if (count < 2)
      throw Error("batch norm '" + name() + "': batch statistics need more than one value per channel; got src " +
                  src.shape().str());
    // Shifted sums (shift = the channel's first value) keep E[x^2] - E[x]^2 accurate when |mean| >> std.
    const Index block = channel_block();
    for (Index c = 0; c < channels; ++c)
      mean_[static_cast<std::size_t>(c)] =
          layout == Layout::Blocked ? src.data()[(c / block) * plane * block + c % block] : src.data()[c * plane];
    plane_sums_.resize(static_cast<std::size_t>(batch * channels));
    plane_sums2_.resize(static_cast<std::size_t>(batch * channels));
    const float* x = src.data();
    const float* shifts = mean_.data();
    double* s1 = plane_sums_.data();
    double* s2 = plane_sums2_.data();
    if (layout == Layout::Blocked) {
      const Index chunks = batch * (channels / block);
      if (block == 16)
        blocked_moments<16>(x, chunks, plane, channels, shifts, s1, s2);
      else
        blocked_moments<8>(x, chunks, plane, channels, shifts, s1, s2);
    } else {
#pragma omp parallel for schedule(static) if (batch * channels * plane >= kParallelMin)
      for (Index p = 0; p < batch * channels; ++p)
        plane_moments(x + p * plane, plane, shifts[p % channels], s1[p], s2[p]);
    }
    std::vector<double> sum(static_cast<std::size_t>(channels)), sum2(static_cast<std::size_t>(channels));
    reduce_planes(plane_sums_, batch, channels, sum.data());
    reduce_planes(plane_sums2_, batch, channels, sum2.data());
    const double m = static_cast<double>(count);
    if (calibrating_) ++calibration_count_;
    for (Index c = 0; c < channels; ++c) {
      const auto i = static_cast<std::size_t>(c);
      const double d = sum[i] / m;
      const double var = std::max(0.0, sum2[i] / m - d * d);
      const double mean = static_cast<double>(mean_[i]) + d;
      const double unbiased = var * m / (m - 1.0);
      mean_[i] = static_cast<float>(mean);
      invstd_[i] = static_cast<float>(1.0 / std::sqrt(var + epsilon_));
      if (calibrating_) {
        calibration_mean_sum_[i] += mean;
        calibration_var_sum_[i] += unbiased;
        running_mean_[c] = static_cast<float>(calibration_mean_sum_[i] / static_cast<double>(calibration_count_));
        running_var_[c] = static_cast<float>(calibration_var_sum_[i] / static_cast<double>(calibration_count_));
      } else {
        running_mean_[c] = static_cast<float>((1.0 - momentum_) * running_mean_[c] + momentum_ * mean);
        running_var_[c] = static_cast<float>((1.0 - momentum_) * running_var_[c] + momentum_ * unbiased);
      }
    }
  } else {
    for (Index c = 0; c < channels; ++c) {
      const auto i = static_cast<std::size_t>(c);
      mean_[i] = running_mean_[c];
      invstd_[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var_[c]) + epsilon_));
    }
  }
  for (Index c = 0; c < channels; ++c) {
    const auto i = static_cast<std::size_t>(c);
    scale_[i] = gamma_.value[c] * invstd_[i];
    shift_[i] = beta_.value[c] - mean_[i] * scale_[i];
  }
  count_ = count;
  train_forward_ = mode == Mode::Train;
}

const Tensor& BatchNorm2d::forward(const Tensor& src, Mode mode) {
  prepare(src, mode);
  src_ = train_forward_ ? &src : nullptr;
  dst_.resize(src.shape());
  const Index channels = channels_;
  const Index plane = src.dim(2) * src.dim(3);
  const Index planes = src.dim(0) * channels;
  const float* x = src.data();
  float* y = dst_.data();
  const float* scale = scale_.data();
  const float* shift = shift_.data();
  const bool relu = activation_ == BnActivation::Relu;
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
  for (Index p = 0; p < planes; ++p) {
    const float a = scale[p % channels];
    const float b = shift[p % channels];
    const float* xp = x + p * plane;
    float* yp = y + p * plane;
    if (relu) {
#pragma omp simd
      for (Index i = 0; i < plane; ++i) yp[i] = std::max(std::fma(a, xp[i], b), 0.0f);
    } else {
#pragma omp simd
      for (Index i = 0; i < plane; ++i) yp[i] = std::fma(a, xp[i], b);
    }
  }
  return dst_;
}

void BatchNorm2d::forward_blocked(const Tensor& src, Mode mode, Tensor& dst) {
  prepare(src, mode, Layout::Blocked);
  dst.resize(src.shape());
  const Index block = channel_block();
  const Index chunks = src.dim(0) * (channels_ / block);
  const Index blocks = channels_ / block;
  const Index values = src.dim(2) * src.dim(3) * block;  // per chunk
  const bool relu = activation_ == BnActivation::Relu;
  if (block == 16)
    blocked_normalize<16>(src.data(), dst.data(), chunks, blocks, values / 16, scale_.data(), shift_.data(), relu);
  else
    blocked_normalize<8>(src.data(), dst.data(), chunks, blocks, values / 8, scale_.data(), shift_.data(), relu);
}

void BatchNorm2d::backward_blocked(const Tensor& diff_dst, const Tensor& src, Tensor& diff_src) {
  if (!train_forward_) throw Error("batch norm '" + name() + "': backward needs a forward in Mode::Train first");
  if (!(diff_dst.shape() == src.shape()))
    throw Error("batch norm '" + name() + "': backward_blocked got diff_dst " + diff_dst.shape().str() + " for src " +
                src.shape().str());
  const Index block = channel_block();
  const Index batch = src.dim(0);
  const Index channels = channels_;
  const Index positions = src.dim(2) * src.dim(3);
  const Index chunks = batch * (channels / block);
  const bool relu = activation_ == BnActivation::Relu;
  plane_sums_.resize(static_cast<std::size_t>(batch * channels));
  plane_sums2_.resize(static_cast<std::size_t>(batch * channels));
  if (block == 16)
    blocked_grad_sums<16>(diff_dst.data(), relu, scale_.data(), shift_.data(), src.data(), chunks, positions, channels,
                          mean_.data(), plane_sums_.data(), plane_sums2_.data());
  else
    blocked_grad_sums<8>(diff_dst.data(), relu, scale_.data(), shift_.data(), src.data(), chunks, positions, channels,
                         mean_.data(), plane_sums_.data(), plane_sums2_.data());
  std::vector<double> sum(static_cast<std::size_t>(channels)), sum_centered(static_cast<std::size_t>(channels));
  reduce_planes(plane_sums_, batch, channels, sum.data());
  reduce_planes(plane_sums2_, batch, channels, sum_centered.data());
  finish_backward(sum.data(), sum_centered.data());

  diff_src.resize(src.shape());
  if (block == 16)
    blocked_backward_apply<16>(diff_dst.data(), relu, scale_.data(), shift_.data(), src.data(), diff_src.data(), chunks,
                               channels / 16, positions, coef_a_.data(), coef_b_.data(), coef_k_.data(), mean_.data());
  else
    blocked_backward_apply<8>(diff_dst.data(), relu, scale_.data(), shift_.data(), src.data(), diff_src.data(), chunks,
                              channels / 8, positions, coef_a_.data(), coef_b_.data(), coef_k_.data(), mean_.data());
}

void BatchNorm2d::finish_backward(const double* sum_g, const double* sum_g_centered) {
  const double m = static_cast<double>(count_);
  for (Index c = 0; c < channels_; ++c) {
    const auto i = static_cast<std::size_t>(c);
    const double invstd = invstd_[i];
    const double dbeta = sum_g[c];
    const double dgamma = invstd * sum_g_centered[c];
    gamma_.grad[c] = static_cast<float>(dgamma);
    beta_.grad[c] = static_cast<float>(dbeta);
    // dx = gamma invstd (g - dbeta/M - xhat dgamma/M), xhat = (x - mean) invstd.
    const double a = static_cast<double>(gamma_.value[c]) * invstd;
    coef_a_[i] = static_cast<float>(a);
    coef_b_[i] = static_cast<float>(-a * invstd * dgamma / m);
    coef_k_[i] = static_cast<float>(-a * dbeta / m);
  }
}

const Tensor& BatchNorm2d::backward(const Tensor& diff_dst) {
  if (!src_ || !train_forward_) throw Error("batch norm '" + name() + "': backward() needs a forward() in Mode::Train first");
  if (!(diff_dst.shape() == src_->shape()))
    throw Error("batch norm '" + name() + "': diff_dst has shape " + diff_dst.shape().str() + ", forward's output was " +
                src_->shape().str());
  const Tensor& src = *src_;
  const Index batch = src.dim(0);
  const Index channels = channels_;
  const Index plane = src.dim(2) * src.dim(3);
  const Index planes = batch * channels;
  const float* x = src.data();
  const float* dy = diff_dst.data();
  const bool relu = activation_ == BnActivation::Relu;
  const float* scale = scale_.data();
  const float* shift = shift_.data();
  const float* mean = mean_.data();
  plane_sums_.resize(static_cast<std::size_t>(planes));
  plane_sums2_.resize(static_cast<std::size_t>(planes));
  double* s1 = plane_sums_.data();
  double* s2 = plane_sums2_.data();
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
  for (Index p = 0; p < planes; ++p)
    plane_grad_sums(dy + p * plane, relu, scale[p % channels], shift[p % channels], x + p * plane, plane,
                    mean[p % channels], s1[p], s2[p]);
  std::vector<double> sum(static_cast<std::size_t>(channels)), sum_centered(static_cast<std::size_t>(channels));
  reduce_planes(plane_sums_, batch, channels, sum.data());
  reduce_planes(plane_sums2_, batch, channels, sum_centered.data());
  finish_backward(sum.data(), sum_centered.data());

  diff_src_.resize(src.shape());
  float* dx = diff_src_.data();
  const float* ca = coef_a_.data();
  const float* cb = coef_b_.data();
  const float* ck = coef_k_.data();
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
  for (Index p = 0; p < planes; ++p) {
    const Index c = p % channels;
    const float a = ca[c], b = cb[c], k = ck[c], mu = mean[c];
    const float* xp = x + p * plane;
    const float* gp = dy + p * plane;
    float* dp = dx + p * plane;
    if (relu) {
      const float sa = scale[c], sb = shift[c];
#pragma omp simd
      for (Index i = 0; i < plane; ++i) {
        const float g = std::fma(sa, xp[i], sb) > 0.0f ? gp[i] : 0.0f;
        dp[i] = a * g + b * (xp[i] - mu) + k;
      }
    } else {
#pragma omp simd
      for (Index i = 0; i < plane; ++i) dp[i] = a * gp[i] + b * (xp[i] - mu) + k;
    }
  }
  return diff_src_;
}

}  // namespace pimqat::nn
