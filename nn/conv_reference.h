#pragma once
// Naive scalar-loop 2-D convolution: the oracle the fast engine (nn/conv.h) and the PIM kernels are
// tested against. Every sum is accumulated in double in a fixed loop order, so the result depends
// on nothing but the operands.
//
// Layout: src (N, C_in, H, W), weight (C_out, C_in, k, k), dst (N, C_out, OH, OW), all row-major;
// OH = (H + 2 padding - k) / stride + 1 (and OW alike). Zero padding; no bias, no dilation, no groups.
//   dst[n, o, y, x] = sum_{c, i, j} src[n, c, y*stride - padding + i, x*stride - padding + j] * weight[o, c, i, j]
// (terms outside the image are zero).
#include <vector>

#include "core/tensor.h"
#include "nn/conv.h"

namespace pimqat::nn {

// Double-precision operands, row-major as above. The output vectors are resized.
void conv2d_reference_forward(const std::vector<double>& src, const Shape& src_shape,
                              const std::vector<double>& weight, const ConvGeometry& g,
                              std::vector<double>& dst);
// dL/dsrc from dL/ddst (the transpose of forward in src).
void conv2d_reference_backward_data(const std::vector<double>& diff_dst, const Shape& src_shape,
                                    const std::vector<double>& weight, const ConvGeometry& g,
                                    std::vector<double>& diff_src);
// dL/dweight from src and dL/ddst.
void conv2d_reference_backward_weights(const std::vector<double>& src, const Shape& src_shape,
                                       const std::vector<double>& diff_dst, const ConvGeometry& g,
                                       std::vector<double>& diff_weight);

// Float tensors in, float tensors out (computed in double, rounded once at the end).
void conv2d_reference_forward(const Tensor& src, const Tensor& weight, const ConvGeometry& g, Tensor& dst);
void conv2d_reference_backward_data(const Tensor& diff_dst, const Shape& src_shape, const Tensor& weight,
                                    const ConvGeometry& g, Tensor& diff_src);
void conv2d_reference_backward_weights(const Tensor& src, const Tensor& diff_dst, const ConvGeometry& g,
                                       Tensor& diff_weight);

}  // namespace pimqat::nn
