#include "nn/resnet.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/pooling.h"

namespace pimqat::nn {

// Passes over fewer elements than this run on one thread (a parallel region costs more).
constexpr Index kParallelMin = Index{1} << 15;

LayerPtr LayerFactory::make_conv(const ConvSpec& spec, RandomStream& init) {
  auto conv = std::make_unique<Conv2d>(spec.name, spec.geometry,
                                       spec.role == ConvRole::First ? InputGradient::Skip : InputGradient::Compute);
  kaiming_normal_fan_out(conv->weight().value, init);
  return conv;
}

LayerPtr LayerFactory::make_linear(const LinearSpec& spec, RandomStream& init) {
  auto linear = std::make_unique<Linear>(spec.name, spec.in, spec.out);
  linear_default_init(linear->weight().value, &linear->bias().value, init);
  return linear;
}

// ---------------------------------------------------------------------------------------------

BasicBlock::BasicBlock(std::string name, Index out_channels, LayerPtr conv1, LayerPtr conv2, LayerPtr shortcut_conv)
    : Layer(std::move(name)),
      conv1_(std::move(conv1)),
      bn1_(this->name() + ".bn1", out_channels, BnActivation::Relu),
      conv2_(std::move(conv2)),
      bn2_(this->name() + ".bn2", out_channels),
      shortcut_conv_(std::move(shortcut_conv)) {
  if (!conv1_ || !conv2_) throw Error("basic block '" + this->name() + "' needs two convolutions");
  if (shortcut_conv_) shortcut_bn_ = std::make_unique<BatchNorm2d>(this->name() + ".shortcut.bn", out_channels);
  fast_conv1_ = dynamic_cast<BlockedConv*>(conv1_.get());
  fast_conv2_ = dynamic_cast<BlockedConv*>(conv2_.get());
  fast_shortcut_ = dynamic_cast<BlockedConv*>(shortcut_conv_.get());
  fast_ = fast_conv1_ && fast_conv2_ && (!shortcut_conv_ || fast_shortcut_) && fast_conv1_->supports_blocked() &&
          fast_conv2_->supports_blocked() && (!fast_shortcut_ || fast_shortcut_->supports_blocked()) &&
          out_channels % channel_block() == 0;
}

void BasicBlock::collect_parameters(std::vector<Parameter*>& out) {
  conv1_->collect_parameters(out);
  bn1_.collect_parameters(out);
  conv2_->collect_parameters(out);
  bn2_.collect_parameters(out);
  if (shortcut_conv_) {
    shortcut_conv_->collect_parameters(out);
    shortcut_bn_->collect_parameters(out);
  }
}

void BasicBlock::collect_state(std::vector<StateTensor>& out) {
  conv1_->collect_state(out);
  bn1_.collect_state(out);
  conv2_->collect_state(out);
  bn2_.collect_state(out);
  if (shortcut_conv_) {
    shortcut_conv_->collect_state(out);
    shortcut_bn_->collect_state(out);
  }
}

void BasicBlock::visit(const std::function<void(Layer&)>& f) {
  f(*this);
  conv1_->visit(f);
  bn1_.visit(f);
  conv2_->visit(f);
  bn2_.visit(f);
  if (shortcut_conv_) {
    shortcut_conv_->visit(f);
    shortcut_bn_->visit(f);
  }
}

const Tensor& BasicBlock::forward(const Tensor& src, Mode mode) {
  if (fast_) return forward_fast(src, mode);
  const Tensor& y1 = conv1_->forward(src, mode);
  const Tensor& h1 = bn1_.forward(y1, mode);
  const Tensor& y2 = conv2_->forward(h1, mode);
  bn2_.prepare(y2, mode);
  const Tensor* shortcut_y = nullptr;
  if (shortcut_conv_) {
    shortcut_y = &shortcut_conv_->forward(src, mode);
    shortcut_bn_->prepare(*shortcut_y, mode);
    if (!(shortcut_y->shape() == y2.shape()))
      throw Error("basic block '" + name() + "': shortcut output " + shortcut_y->shape().str() +
                  " does not match the residual branch " + y2.shape().str());
  } else if (!(src.shape() == y2.shape())) {
    throw Error("basic block '" + name() + "': identity shortcut needs the input shape " + src.shape().str() +
                " to equal the residual branch's " + y2.shape().str() + " (use a shortcut conv)");
  }
  // dst = relu(scale2 y2 + shift2 + s), s = src or scale_s ys + shift_s: one pass.
  dst_.resize(y2.shape());
  const Index channels = y2.dim(1);
  const Index plane = y2.dim(2) * y2.dim(3);
  const Index planes = y2.dim(0) * channels;
  const float* a2 = bn2_.scale();
  const float* b2 = bn2_.shift();
  const float* y = y2.data();
  float* out = dst_.data();
  if (shortcut_y) {
    const float* as = shortcut_bn_->scale();
    const float* bs = shortcut_bn_->shift();
    const float* ys = shortcut_y->data();
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
    for (Index p = 0; p < planes; ++p) {
      const Index c = p % channels;
      const float ka = a2[c], kb = b2[c] + bs[c], ksa = as[c];
      const float* yp = y + p * plane;
      const float* sp = ys + p * plane;
      float* op = out + p * plane;
#pragma omp simd
      for (Index i = 0; i < plane; ++i) op[i] = std::max(std::fma(ka, yp[i], std::fma(ksa, sp[i], kb)), 0.0f);
    }
  } else {
    const float* x = src.data();
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
    for (Index p = 0; p < planes; ++p) {
      const Index c = p % channels;
      const float ka = a2[c], kb = b2[c];
      const float* yp = y + p * plane;
      const float* xp = x + p * plane;
      float* op = out + p * plane;
#pragma omp simd
      for (Index i = 0; i < plane; ++i) op[i] = std::max(std::fma(ka, yp[i], kb) + xp[i], 0.0f);
    }
  }
  const bool train = mode == Mode::Train;
  src_ = train ? &src : nullptr;
  y2_ = train ? &y2 : nullptr;
  shortcut_y_ = train ? shortcut_y : nullptr;
  return dst_;
}

namespace {
constexpr Index kChunk = 1024;  // float lanes for at most this many values, then double
}  // namespace

const Tensor& BasicBlock::backward(const Tensor& diff_dst) {
  if (fast_) return backward_fast(diff_dst);
  if (!src_ || !y2_) throw Error("basic block '" + name() + "': backward() needs a forward() in Mode::Train first");
  if (!(diff_dst.shape() == dst_.shape()))
    throw Error("basic block '" + name() + "': diff_dst has shape " + diff_dst.shape().str() + ", forward's output was " +
                dst_.shape().str());
  const Tensor& y2 = *y2_;
  const Index batch = y2.dim(0);
  const Index channels = y2.dim(1);
  const Index plane = y2.dim(2) * y2.dim(3);
  const Index planes = batch * channels;
  const bool shortcut = shortcut_y_ != nullptr;
  for (auto& p : planes_) p.resize(static_cast<std::size_t>(planes));

  // Pass A: g = dout masked by out > 0 (stored: it is also the identity shortcut's gradient);
  // per plane sum g, sum g (y2 - mean2), and sum g (ys - mean_s).
  diff_sum_.resize(y2.shape());
  {
    const float* dy = diff_dst.data();
    const float* out = dst_.data();
    const float* y = y2.data();
    const float* ys = shortcut ? shortcut_y_->data() : nullptr;
    const float* mean2 = bn2_.mean();
    const float* mean_s = shortcut ? shortcut_bn_->mean() : nullptr;
    float* g = diff_sum_.data();
    double* s0 = planes_[0].data();
    double* s1 = planes_[1].data();
    double* s2 = planes_[2].data();
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
    for (Index p = 0; p < planes; ++p) {
      const Index c = p % channels;
      const float m2 = mean2[c];
      const float ms = shortcut ? mean_s[c] : 0.0f;
      double t0 = 0.0, t1 = 0.0, t2 = 0.0;
      for (Index begin = p * plane; begin < (p + 1) * plane; begin += kChunk) {
        const Index end = std::min((p + 1) * plane, begin + kChunk);
        float a = 0.0f, b = 0.0f, d = 0.0f;
        if (ys) {
#pragma omp simd reduction(+ : a, b, d)
          for (Index i = begin; i < end; ++i) {
            const float gi = out[i] > 0.0f ? dy[i] : 0.0f;
            g[i] = gi;
            a += gi;
            b += gi * (y[i] - m2);
            d += gi * (ys[i] - ms);
          }
        } else {
#pragma omp simd reduction(+ : a, b)
          for (Index i = begin; i < end; ++i) {
            const float gi = out[i] > 0.0f ? dy[i] : 0.0f;
            g[i] = gi;
            a += gi;
            b += gi * (y[i] - m2);
          }
        }
        t0 += a;
        t1 += b;
        t2 += d;
      }
      s0[p] = t0;
      s1[p] = t1;
      s2[p] = t2;
    }
  }
  std::vector<double> sum_g(static_cast<std::size_t>(channels)), sum_2(static_cast<std::size_t>(channels)),
      sum_s(static_cast<std::size_t>(channels));
  reduce_planes(planes_[0], batch, channels, sum_g.data());
  reduce_planes(planes_[1], batch, channels, sum_2.data());
  bn2_.finish_backward(sum_g.data(), sum_2.data());
  if (shortcut) {
    reduce_planes(planes_[2], batch, channels, sum_s.data());
    shortcut_bn_->finish_backward(sum_g.data(), sum_s.data());
  }

  // Pass B: dy2 = a2 g + b2 (y2 - mean2) + k2 (and the shortcut BN's alike).
  diff_y2_.resize(y2.shape());
  if (shortcut) diff_shortcut_.resize(y2.shape());
  {
    const float* g = diff_sum_.data();
    const float* y = y2.data();
    const float* ys = shortcut ? shortcut_y_->data() : nullptr;
    float* d2 = diff_y2_.data();
    float* ds = shortcut ? diff_shortcut_.data() : nullptr;
    BatchNorm2d* sbn = shortcut_bn_.get();
    const BatchNorm2d& bn2 = bn2_;
#pragma omp parallel for schedule(static) if (planes * plane >= kParallelMin)
    for (Index p = 0; p < planes; ++p) {
      const Index c = p % channels;
      const float a = bn2.grad_a()[c], b = bn2.grad_b()[c], k = bn2.grad_k()[c], m = bn2.mean()[c];
      const float* gp = g + p * plane;
      const float* yp = y + p * plane;
      float* dp = d2 + p * plane;
#pragma omp simd
      for (Index i = 0; i < plane; ++i) dp[i] = a * gp[i] + b * (yp[i] - m) + k;
      if (ys) {
        const float sa = sbn->grad_a()[c], sb = sbn->grad_b()[c], sk = sbn->grad_k()[c], sm = sbn->mean()[c];
        const float* sp = ys + p * plane;
        float* op = ds + p * plane;
#pragma omp simd
        for (Index i = 0; i < plane; ++i) op[i] = sa * gp[i] + sb * (sp[i] - sm) + sk;
      }
    }
  }

  const Tensor& diff_h1 = conv2_->backward(diff_y2_);
  const Tensor& diff_y1 = bn1_.backward(diff_h1);
  const Tensor& diff_x1 = conv1_->backward(diff_y1);
  const Tensor& diff_x2 = shortcut ? shortcut_conv_->backward(diff_shortcut_) : diff_sum_;
  if (!(diff_x1.shape() == src_->shape()) || !(diff_x2.shape() == src_->shape()))
    throw Error("basic block '" + name() + "': its convolutions must return dL/dsrc of the input shape " +
                src_->shape().str());
  diff_src_.resize(src_->shape());
  const float* u = diff_x1.data();
  const float* v = diff_x2.data();
  float* w = diff_src_.data();
  const Index size = diff_src_.size();
#pragma omp parallel for simd schedule(static) if (size >= kParallelMin)
  for (Index i = 0; i < size; ++i) w[i] = u[i] + v[i];
  return diff_src_;
}

// --- Fast path: blocked activations ----------------------------------------------------------
//
// A blocked chunk k = (n, channel block cb) holds `plane` positions x B lanes (lane l = channel
// cb*B + l); the NCHW values of the same channels occupy the same offset range k*B*plane as
// B planes. Passes that meet NCHW tensors (the block's input, output and their gradients)
// transpose tiles of kTile positions through a small local buffer.

namespace {

constexpr Index kTile = 64;

// tile[j*B + l] = chunk[l*plane + p0 + j] for j < len (NCHW chunk -> blocked tile).
template <int B>
inline void gather_tile(const float* chunk, Index plane, Index p0, Index len, float* tile) {
  transpose(chunk + p0, plane, B, len, tile, B);
}

// chunk[l*plane + p0 + j] = tile[j*B + l] (blocked tile -> NCHW chunk).
template <int B>
inline void scatter_tile(const float* tile, Index plane, Index p0, Index len, float* chunk) {
  transpose(tile, B, len, B, chunk + p0, plane);
}

// dst (NCHW) = relu(a2 y2 + b2 + s), s = x or as ys + bs (y2, x, ys blocked); mask[k*plane + i]
// bit l = (dst > 0) for lane l of position i of chunk k (backward's ReLU mask, 1/32 of dst's bytes).
template <int B>
void fast_output(const float* y2, const float* x, const float* ys, const float* a2, const float* b2, const float* as,
                 const float* bs, Index chunks, Index blocks, Index plane, float* dst, std::uint16_t* mask) {
#pragma omp parallel for schedule(static) if (chunks * B * plane >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    const Index c0 = (k % blocks) * B;
    const Index offset = k * B * plane;
    alignas(64) float tile[kTile * B];
    for (Index p0 = 0; p0 < plane; p0 += kTile) {
      const Index len = std::min(kTile, plane - p0);
      for (Index j = 0; j < len; ++j) {
        const Index o = offset + (p0 + j) * B;
        if (ys) {
#pragma omp simd
          for (int l = 0; l < B; ++l)
            tile[j * B + l] =
                std::max(std::fma(a2[c0 + l], y2[o + l], std::fma(as[c0 + l], ys[o + l], b2[c0 + l] + bs[c0 + l])), 0.0f);
        } else {
#pragma omp simd
          for (int l = 0; l < B; ++l)
            tile[j * B + l] = std::max(std::fma(a2[c0 + l], y2[o + l], b2[c0 + l]) + x[o + l], 0.0f);
        }
        unsigned bits = 0;
        for (int l = 0; l < B; ++l) bits |= static_cast<unsigned>(tile[j * B + l] > 0.0f) << l;
        mask[k * plane + p0 + j] = static_cast<std::uint16_t>(bits);
      }
      scatter_tile<B>(tile, plane, p0, len, dst + offset);
    }
  }
}

// g (blocked) = dout (NCHW) masked by forward's ReLU mask; per (n, c) sums of g, g (y2 - m2), g (ys - ms).
template <int B>
void fast_output_backward(const float* dout, const std::uint16_t* mask, const float* y2, const float* ys,
                          const float* m2, const float* ms, Index chunks, Index blocks, Index plane, Index channels,
                          float* g, double* s0, double* s1, double* s2) {
#pragma omp parallel for schedule(static) if (chunks * B * plane >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    const Index n = k / blocks;
    const Index c0 = (k % blocks) * B;
    const Index offset = k * B * plane;
    alignas(64) float dtile[kTile * B];
    double t0[B] = {}, t1[B] = {}, t2[B] = {};
    for (Index p0 = 0; p0 < plane; p0 += kTile) {
      const Index len = std::min(kTile, plane - p0);
      gather_tile<B>(dout + offset, plane, p0, len, dtile);
      float a[B] = {}, b[B] = {}, d[B] = {};
      for (Index j = 0; j < len; ++j) {
        const Index o = offset + (p0 + j) * B;
        const unsigned bits = mask[k * plane + p0 + j];
#pragma omp simd
        for (int l = 0; l < B; ++l) {
          const float gi = ((bits >> l) & 1u) ? dtile[j * B + l] : 0.0f;
          g[o + l] = gi;
          a[l] += gi;
          b[l] += gi * (y2[o + l] - m2[c0 + l]);
          if (ys) d[l] += gi * (ys[o + l] - ms[c0 + l]);
        }
      }
      for (int l = 0; l < B; ++l) {
        t0[l] += a[l];
        t1[l] += b[l];
        t2[l] += d[l];
      }
    }
    for (int l = 0; l < B; ++l) {
      s0[n * channels + c0 + l] = t0[l];
      s1[n * channels + c0 + l] = t1[l];
      s2[n * channels + c0 + l] = t2[l];
    }
  }
}

// dy = a g + b (y - m) + k per lane (blocked); for the bn2 branch and the shortcut BN.
template <int B>
void fast_bn_backward_apply(const float* g, const float* y, const BatchNorm2d& bn, Index chunks, Index blocks,
                            Index plane, float* dy) {
  const float* ca = bn.grad_a();
  const float* cb = bn.grad_b();
  const float* ck = bn.grad_k();
  const float* cm = bn.mean();
#pragma omp parallel for schedule(static) if (chunks * B * plane >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    const Index c0 = (k % blocks) * B;
    const Index offset = k * B * plane;
    for (Index i = 0; i < plane; ++i) {
      const Index o = offset + i * B;
#pragma omp simd
      for (int l = 0; l < B; ++l) dy[o + l] = ca[c0 + l] * g[o + l] + cb[c0 + l] * (y[o + l] - cm[c0 + l]) + ck[c0 + l];
    }
  }
}

// dst (NCHW) = u + v (blocked; v may be null).
template <int B>
void fast_sum_to_nchw(const float* u, const float* v, Index chunks, Index plane, float* dst) {
#pragma omp parallel for schedule(static) if (chunks * B * plane >= kParallelMin)
  for (Index k = 0; k < chunks; ++k) {
    const Index offset = k * B * plane;
    alignas(64) float tile[kTile * B];
    for (Index p0 = 0; p0 < plane; p0 += kTile) {
      const Index len = std::min(kTile, plane - p0);
      const Index o = offset + p0 * B;
      if (v) {
#pragma omp simd
        for (Index i = 0; i < len * B; ++i) tile[i] = u[o + i] + v[o + i];
        scatter_tile<B>(tile, plane, p0, len, dst + offset);
      } else {
        scatter_tile<B>(u + o, plane, p0, len, dst + offset);
      }
    }
  }
}

// Gradient buffers of a block's backward, shared by every block of a thread (they live only
// inside one backward call).
struct FastScratch {
  Tensor g, dy2, dshortcut, dy1;
};
FastScratch& fast_scratch() {
  static thread_local FastScratch s;
  return s;
}

}  // namespace

const Tensor& BasicBlock::forward_fast(const Tensor& src, Mode mode) {
  if (src.rank() != 4 || src.dim(1) % channel_block() != 0)
    throw Error("basic block '" + name() + "' expects an (N, C, H, W) input; got " + src.shape().str());
  to_blocked(src, x_blocked_);
  const Tensor& y1 = fast_conv1_->forward_blocked(x_blocked_, mode);
  bn1_.forward_blocked(y1, mode, h1_blocked_);
  const Tensor& y2 = fast_conv2_->forward_blocked(h1_blocked_, mode);
  bn2_.prepare(y2, mode, Layout::Blocked);
  const Tensor* ys = nullptr;
  if (fast_shortcut_) {
    ys = &fast_shortcut_->forward_blocked(x_blocked_, mode);
    shortcut_bn_->prepare(*ys, mode, Layout::Blocked);
    if (!(ys->shape() == y2.shape()))
      throw Error("basic block '" + name() + "': shortcut output " + ys->shape().str() +
                  " does not match the residual branch " + y2.shape().str());
  } else if (!(src.shape() == y2.shape())) {
    throw Error("basic block '" + name() + "': identity shortcut needs the input shape " + src.shape().str() +
                " to equal the residual branch's " + y2.shape().str() + " (use a shortcut conv)");
  }
  const Shape& shape = y2.shape();
  dst_.resize(shape);
  const Index block = channel_block();
  const Index blocks = shape[1] / block;
  const Index chunks = shape[0] * blocks;
  const Index plane = shape[2] * shape[3];
  const float* ysd = ys ? ys->data() : nullptr;
  const float* as = ys ? shortcut_bn_->scale() : nullptr;
  const float* bs = ys ? shortcut_bn_->shift() : nullptr;
  relu_mask_.resize(static_cast<std::size_t>(chunks * plane));
  if (block == 16)
    fast_output<16>(y2.data(), x_blocked_.data(), ysd, bn2_.scale(), bn2_.shift(), as, bs, chunks, blocks, plane,
                    dst_.data(), relu_mask_.data());
  else
    fast_output<8>(y2.data(), x_blocked_.data(), ysd, bn2_.scale(), bn2_.shift(), as, bs, chunks, blocks, plane,
                   dst_.data(), relu_mask_.data());
  const bool train = mode == Mode::Train;
  src_ = train ? &src : nullptr;
  y1_blocked_ = train ? &y1 : nullptr;
  y2_blocked_ = train ? &y2 : nullptr;
  shortcut_blocked_ = train ? ys : nullptr;
  return dst_;
}

const Tensor& BasicBlock::backward_fast(const Tensor& diff_dst) {
  if (!src_ || !y1_blocked_ || !y2_blocked_)
    throw Error("basic block '" + name() + "': backward() needs a forward() in Mode::Train first");
  if (!(diff_dst.shape() == dst_.shape()))
    throw Error("basic block '" + name() + "': diff_dst has shape " + diff_dst.shape().str() + ", forward's output was " +
                dst_.shape().str());
  FastScratch& s = fast_scratch();
  const Shape& shape = dst_.shape();
  const Index block = channel_block();
  const Index channels = shape[1];
  const Index blocks = channels / block;
  const Index batch = shape[0];
  const Index chunks = batch * blocks;
  const Index plane = shape[2] * shape[3];
  const bool shortcut = fast_shortcut_ != nullptr;
  for (auto& p : planes_) p.resize(static_cast<std::size_t>(batch * channels));

  // g = dL/d(sum) (blocked) and the sums both BN backward passes need.
  s.g.resize(shape);
  const float* ys = shortcut ? shortcut_blocked_->data() : nullptr;
  const float* ms = shortcut ? shortcut_bn_->mean() : nullptr;
  if (block == 16)
    fast_output_backward<16>(diff_dst.data(), relu_mask_.data(), y2_blocked_->data(), ys, bn2_.mean(), ms, chunks, blocks,
                             plane, channels, s.g.data(), planes_[0].data(), planes_[1].data(), planes_[2].data());
  else
    fast_output_backward<8>(diff_dst.data(), relu_mask_.data(), y2_blocked_->data(), ys, bn2_.mean(), ms, chunks, blocks,
                            plane, channels, s.g.data(), planes_[0].data(), planes_[1].data(), planes_[2].data());
  std::vector<double> sum_g(static_cast<std::size_t>(channels)), sum_2(static_cast<std::size_t>(channels)),
      sum_s(static_cast<std::size_t>(channels));
  reduce_planes(planes_[0], batch, channels, sum_g.data());
  reduce_planes(planes_[1], batch, channels, sum_2.data());
  bn2_.finish_backward(sum_g.data(), sum_2.data());
  s.dy2.resize(shape);
  auto apply = block == 16 ? fast_bn_backward_apply<16> : fast_bn_backward_apply<8>;
  apply(s.g.data(), y2_blocked_->data(), bn2_, chunks, blocks, plane, s.dy2.data());
  if (shortcut) {
    reduce_planes(planes_[2], batch, channels, sum_s.data());
    shortcut_bn_->finish_backward(sum_g.data(), sum_s.data());
    s.dshortcut.resize(shape);
    apply(s.g.data(), shortcut_blocked_->data(), *shortcut_bn_, chunks, blocks, plane, s.dshortcut.data());
  }

  const Tensor& diff_h1 = fast_conv2_->backward_blocked(s.dy2);
  bn1_.backward_blocked(diff_h1, *y1_blocked_, s.dy1);
  const Tensor& diff_x1 = fast_conv1_->backward_blocked(s.dy1);
  const Tensor& diff_x2 = shortcut ? fast_shortcut_->backward_blocked(s.dshortcut) : s.g;
  if (!(diff_x1.shape() == src_->shape()) || !(diff_x2.shape() == src_->shape()))
    throw Error("basic block '" + name() + "': its convolutions must return dL/dsrc of the input shape " +
                src_->shape().str());
  diff_src_.resize(src_->shape());
  const Index in_chunks = src_->dim(0) * (src_->dim(1) / block);
  const Index in_plane = src_->dim(2) * src_->dim(3);
  if (block == 16)
    fast_sum_to_nchw<16>(diff_x1.data(), diff_x2.data(), in_chunks, in_plane, diff_src_.data());
  else
    fast_sum_to_nchw<8>(diff_x1.data(), diff_x2.data(), in_chunks, in_plane, diff_src_.data());
  return diff_src_;
}

// ---------------------------------------------------------------------------------------------

int resnet_depth(const std::string& arch) {
  const std::string prefix = "resnet";
  if (arch.rfind(prefix, 0) == 0 && arch.size() > prefix.size()) {
    const std::string digits = arch.substr(prefix.size());
    if (digits.size() <= 4 && std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      const int depth = std::stoi(digits);
      if (depth >= 8 && (depth - 2) % 6 == 0) return depth;
    }
  }
  throw Error("unknown architecture '" + arch + "': expected resnet<6n+2> such as resnet20, resnet32, resnet44, resnet56");
}

std::unique_ptr<Sequential> make_resnet(int depth, int in_channels, int classes, LayerFactory& factory,
                                        const RngKey& init_key) {
  std::string problems;
  if (depth < 8 || (depth - 2) % 6 != 0)
    problems += " depth must be 6n+2 with n >= 1 (20, 32, 44, 56), got " + std::to_string(depth) + ";";
  if (in_channels < 1) problems += " in_channels must be >= 1, got " + std::to_string(in_channels) + ";";
  if (classes < 2) problems += " classes must be >= 2, got " + std::to_string(classes) + ";";
  if (!problems.empty()) throw Error("cannot build a ResNet:" + problems);
  const int blocks = (depth - 2) / 6;

  auto net = std::make_unique<Sequential>("resnet" + std::to_string(depth));
  auto conv = [&](const std::string& name, ConvGeometry g, ConvRole role) {
    RandomStream init = layer_init_stream(init_key, name);
    LayerPtr layer = factory.make_conv(ConvSpec{name, g, role}, init);
    if (!layer) throw Error("layer factory returned no layer for '" + name + "'");
    return layer;
  };
  net->add(conv("conv1", ConvGeometry{in_channels, 16, 3, 1, 1}, ConvRole::First));
  net->add(std::make_unique<BatchNorm2d>("bn1", 16, BnActivation::Relu));
  Index channels = 16;
  for (int stage = 1; stage <= 3; ++stage) {
    const Index width = Index{16} << (stage - 1);
    for (int b = 0; b < blocks; ++b) {
      const Index stride = (stage > 1 && b == 0) ? 2 : 1;
      const std::string name = "layer" + std::to_string(stage) + "." + std::to_string(b);
      LayerPtr c1 = conv(name + ".conv1", ConvGeometry{channels, width, 3, stride, 1}, ConvRole::Body);
      LayerPtr c2 = conv(name + ".conv2", ConvGeometry{width, width, 3, 1, 1}, ConvRole::Body);
      LayerPtr shortcut;
      if (stride != 1 || channels != width)
        shortcut = conv(name + ".shortcut.conv", ConvGeometry{channels, width, 1, stride, 0}, ConvRole::Shortcut);
      net->add(std::make_unique<BasicBlock>(name, width, std::move(c1), std::move(c2), std::move(shortcut)));
      channels = width;
    }
  }
  net->add(std::make_unique<GlobalAvgPool>("avgpool"));
  RandomStream fc_init = layer_init_stream(init_key, "fc");
  LayerPtr fc = factory.make_linear(LinearSpec{"fc", channels, classes}, fc_init);
  if (!fc) throw Error("layer factory returned no layer for 'fc'");
  net->add(std::move(fc));
  return net;
}

std::unique_ptr<Sequential> make_resnet(int depth, int in_channels, int classes, const RngKey& init_key) {
  LayerFactory factory;
  return make_resnet(depth, in_channels, classes, factory, init_key);
}

}  // namespace pimqat::nn
