#pragma once
// im2col for NCHW tensors (DESIGN.md 2.2: the reduction index runs over K = C_in k_h k_w in the
// order (c, kh, kw)).
//
// Layout: src is (N, C, H, W) row-major; dst is a (K x P) row-major matrix with
//   row    i = (c * k_h + kh) * k_w + kw
//   column j = (n * OH + oh) * OW + ow
//   dst[i][j] = src[n][c][oh*stride - pad + kh][ow*stride - pad + kw], or 0 outside the image,
// so the convolution is the matrix product (C_out x K) weights times dst, with a weight tensor
// (C_out, C_in, k_h, k_w) read as a row-major (C_out x K) matrix.
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace pimqat::pim {

struct Im2colGeometry {
  Index batch = 1, channels = 1, height = 1, width = 1;
  int kernel_h = 3, kernel_w = 3, stride = 1, padding = 1;

  Index out_height() const { return (height + 2 * padding - kernel_h) / stride + 1; }
  Index out_width() const { return (width + 2 * padding - kernel_w) / stride + 1; }
  Index reduction() const { return channels * kernel_h * kernel_w; }      // K
  Index pixels() const { return batch * out_height() * out_width(); }     // P
  // Throws pimqat::Error for non-positive sizes or an empty output.
  void validate() const;
  std::string str() const;
};

// dst must hold reduction() * pixels() elements. Instantiated for float, std::int32_t,
// std::int16_t, std::int8_t and std::uint8_t.
template <typename T>
void im2col(const Im2colGeometry& geometry, const T* src, T* dst);

}  // namespace pimqat::pim
