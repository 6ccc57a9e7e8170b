#include "pim/im2col.h"

#include "core/error.h"

namespace pimqat::pim {

void Im2colGeometry::validate() const {
  if (batch < 1 || channels < 1 || height < 1 || width < 1 || kernel_h < 1 || kernel_w < 1 || stride < 1 ||
      padding < 0 || out_height() < 1 || out_width() < 1 || height + 2 * padding < kernel_h ||
      width + 2 * padding < kernel_w)
    throw Error("invalid convolution geometry " + str());
}

std::string Im2colGeometry::str() const {
  return "input (" + std::to_string(batch) + ", " + std::to_string(channels) + ", " + std::to_string(height) + ", " +
         std::to_string(width) + "), kernel " + std::to_string(kernel_h) + "x" + std::to_string(kernel_w) +
         ", stride " + std::to_string(stride) + ", padding " + std::to_string(padding);
}

template <typename T>
void im2col(const Im2colGeometry& g, const T* src, T* dst) {
  const Index oh_count = g.out_height(), ow_count = g.out_width();
  const Index pixels = g.pixels();
  const Index rows = g.reduction();
#pragma omp parallel for schedule(static) if (rows * pixels > (Index{1} << 16))
  for (Index i = 0; i < rows; ++i) {
    const Index kw = i % g.kernel_w;
    const Index kh = (i / g.kernel_w) % g.kernel_h;
    const Index c = i / (static_cast<Index>(g.kernel_w) * g.kernel_h);
    T* row = dst + i * pixels;
    for (Index n = 0; n < g.batch; ++n) {
      const T* plane = src + (n * g.channels + c) * g.height * g.width;
      for (Index oh = 0; oh < oh_count; ++oh) {
        const Index h = oh * g.stride - g.padding + kh;
        T* out = row + (n * oh_count + oh) * ow_count;
        if (h < 0 || h >= g.height) {
          for (Index ow = 0; ow < ow_count; ++ow) out[ow] = T(0);
          continue;
        }
        const T* line = plane + h * g.width;
        for (Index ow = 0; ow < ow_count; ++ow) {
          const Index w = ow * g.stride - g.padding + kw;
          out[ow] = (w >= 0 && w < g.width) ? line[w] : T(0);
        }
      }
    }
  }
}

template void im2col<float>(const Im2colGeometry&, const float*, float*);
template void im2col<std::int32_t>(const Im2colGeometry&, const std::int32_t*, std::int32_t*);
template void im2col<std::int16_t>(const Im2colGeometry&, const std::int16_t*, std::int16_t*);
template void im2col<std::int8_t>(const Im2colGeometry&, const std::int8_t*, std::int8_t*);
template void im2col<std::uint8_t>(const Im2colGeometry&, const std::uint8_t*, std::uint8_t*);

}  // namespace pimqat::pim
