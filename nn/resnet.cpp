#include "nn/resnet.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "nn/init.h"
#include "nn/linear.h"
#include "nn/pooling.h"

namespace pimqat::nn {

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
#pragma omp parallel for schedule(static)
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
#pragma omp parallel for schedule(static)
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
#pragma omp parallel for schedule(static)
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
#pragma omp parallel for schedule(static)
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
#pragma omp parallel for simd schedule(static)
  for (Index i = 0; i < size; ++i) w[i] = u[i] + v[i];
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
