#include "nn/conv_reference.h"

#include "core/error.h"

namespace pimqat::nn {

namespace {

struct Dims {
  Index n, c, h, w, o, oh, ow, k, stride, pad;
};

Dims dims_of(const Shape& src_shape, const ConvGeometry& g) {
  validate(g);
  if (src_shape.rank() != 4 || src_shape[1] != g.in_channels)
    throw Error("reference convolution (" + g.str() + "): src shape " + src_shape.str() + " is not (N, " +
                std::to_string(g.in_channels) + ", H, W)");
  const Index oh = g.output_size(src_shape[2]);
  const Index ow = g.output_size(src_shape[3]);
  if (src_shape[2] + 2 * g.padding < g.kernel || src_shape[3] + 2 * g.padding < g.kernel || oh <= 0 || ow <= 0)
    throw Error("reference convolution (" + g.str() + "): src " + src_shape.str() + " is smaller than the kernel");
  return {src_shape[0], g.in_channels, src_shape[2], src_shape[3], g.out_channels, oh, ow, g.kernel, g.stride,
          g.padding};
}

std::vector<double> to_double(const Tensor& t) {
  std::vector<double> v(static_cast<std::size_t>(t.size()));
  for (Index i = 0; i < t.size(); ++i) v[static_cast<std::size_t>(i)] = t[i];
  return v;
}

void to_float(const std::vector<double>& v, const Shape& shape, Tensor& t) {
  t.resize(shape);
  for (Index i = 0; i < t.size(); ++i) t[i] = static_cast<float>(v[static_cast<std::size_t>(i)]);
}

}  // namespace

void conv2d_reference_forward(const std::vector<double>& src, const Shape& src_shape, const std::vector<double>& weight,
                              const ConvGeometry& g, std::vector<double>& dst) {
  const Dims d = dims_of(src_shape, g);
  PIMQAT_ASSERT(static_cast<Index>(src.size()) == src_shape.numel());
  PIMQAT_ASSERT(static_cast<Index>(weight.size()) == g.weight_count());
  dst.assign(static_cast<std::size_t>(d.n * d.o * d.oh * d.ow), 0.0);
  for (Index n = 0; n < d.n; ++n)
    for (Index o = 0; o < d.o; ++o)
      for (Index y = 0; y < d.oh; ++y)
        for (Index x = 0; x < d.ow; ++x) {
          double sum = 0.0;
          for (Index c = 0; c < d.c; ++c)
            for (Index i = 0; i < d.k; ++i)
              for (Index j = 0; j < d.k; ++j) {
                const Index iy = y * d.stride - d.pad + i;
                const Index ix = x * d.stride - d.pad + j;
                if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
                sum += src[static_cast<std::size_t>(((n * d.c + c) * d.h + iy) * d.w + ix)] *
                       weight[static_cast<std::size_t>(((o * d.c + c) * d.k + i) * d.k + j)];
              }
          dst[static_cast<std::size_t>(((n * d.o + o) * d.oh + y) * d.ow + x)] = sum;
        }
}

void conv2d_reference_backward_data(const std::vector<double>& diff_dst, const Shape& src_shape,
                                    const std::vector<double>& weight, const ConvGeometry& g,
                                    std::vector<double>& diff_src) {
  const Dims d = dims_of(src_shape, g);
  PIMQAT_ASSERT(static_cast<Index>(diff_dst.size()) == d.n * d.o * d.oh * d.ow);
  diff_src.assign(static_cast<std::size_t>(src_shape.numel()), 0.0);
  // diff_src[n, c, iy, ix] = sum over (o, y, x, i, j) with y*stride - pad + i = iy (and x alike).
  for (Index n = 0; n < d.n; ++n)
    for (Index c = 0; c < d.c; ++c)
      for (Index iy = 0; iy < d.h; ++iy)
        for (Index ix = 0; ix < d.w; ++ix) {
          double sum = 0.0;
          for (Index o = 0; o < d.o; ++o)
            for (Index i = 0; i < d.k; ++i)
              for (Index j = 0; j < d.k; ++j) {
                const Index ty = iy + d.pad - i;
                const Index tx = ix + d.pad - j;
                if (ty < 0 || tx < 0 || ty % d.stride != 0 || tx % d.stride != 0) continue;
                const Index y = ty / d.stride;
                const Index x = tx / d.stride;
                if (y >= d.oh || x >= d.ow) continue;
                sum += diff_dst[static_cast<std::size_t>(((n * d.o + o) * d.oh + y) * d.ow + x)] *
                       weight[static_cast<std::size_t>(((o * d.c + c) * d.k + i) * d.k + j)];
              }
          diff_src[static_cast<std::size_t>(((n * d.c + c) * d.h + iy) * d.w + ix)] = sum;
        }
}

void conv2d_reference_backward_weights(const std::vector<double>& src, const Shape& src_shape,
                                       const std::vector<double>& diff_dst, const ConvGeometry& g,
                                       std::vector<double>& diff_weight) {
  const Dims d = dims_of(src_shape, g);
  PIMQAT_ASSERT(static_cast<Index>(diff_dst.size()) == d.n * d.o * d.oh * d.ow);
  diff_weight.assign(static_cast<std::size_t>(g.weight_count()), 0.0);
  for (Index o = 0; o < d.o; ++o)
    for (Index c = 0; c < d.c; ++c)
      for (Index i = 0; i < d.k; ++i)
        for (Index j = 0; j < d.k; ++j) {
          double sum = 0.0;
          for (Index n = 0; n < d.n; ++n)
            for (Index y = 0; y < d.oh; ++y)
              for (Index x = 0; x < d.ow; ++x) {
                const Index iy = y * d.stride - d.pad + i;
                const Index ix = x * d.stride - d.pad + j;
                if (iy < 0 || iy >= d.h || ix < 0 || ix >= d.w) continue;
                sum += src[static_cast<std::size_t>(((n * d.c + c) * d.h + iy) * d.w + ix)] *
                       diff_dst[static_cast<std::size_t>(((n * d.o + o) * d.oh + y) * d.ow + x)];
              }
          diff_weight[static_cast<std::size_t>(((o * d.c + c) * d.k + i) * d.k + j)] = sum;
        }
}

void conv2d_reference_forward(const Tensor& src, const Tensor& weight, const ConvGeometry& g, Tensor& dst) {
  std::vector<double> out;
  conv2d_reference_forward(to_double(src), src.shape(), to_double(weight), g, out);
  to_float(out, {src.dim(0), g.out_channels, g.output_size(src.dim(2)), g.output_size(src.dim(3))}, dst);
}

void conv2d_reference_backward_data(const Tensor& diff_dst, const Shape& src_shape, const Tensor& weight,
                                    const ConvGeometry& g, Tensor& diff_src) {
  std::vector<double> out;
  conv2d_reference_backward_data(to_double(diff_dst), src_shape, to_double(weight), g, out);
  to_float(out, src_shape, diff_src);
}

void conv2d_reference_backward_weights(const Tensor& src, const Tensor& diff_dst, const ConvGeometry& g,
                                       Tensor& diff_weight) {
  std::vector<double> out;
  conv2d_reference_backward_weights(to_double(src), src.shape(), to_double(diff_dst), g, out);
  to_float(out, g.weight_shape(), diff_weight);
}

}  // namespace pimqat::nn
