// The portable path: plain C++ over the packed layout (pim/kernels/packed.h), int64 sums, any
// configuration (pim/kernels/generic_gemm.h with scalar popcounts). It is also the fallback of the
// SIMD paths for plans outside their bounds. Bit-identical to pim/kernels/reference.h: the same
// partial sums, the same conversions (AdcBank::level / Adc::code, or tables built from them), the
// same exact-sum rule.
#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "pim/kernels/dispatch.h"
#include "pim/kernels/generic_gemm.h"
#include "pim/kernels/internal.h"

namespace pimqat::pim::detail {
namespace {

constexpr Index kL = kPimBlockPixels;

// p[l] = sum over chunks of popcount(x[chunk][l] & w[pass][chunk][slot]).
struct PortableCounter {
  void operator()(const std::uint16_t* xs, const std::uint16_t* wg, int chunks, int pass, int slot,
                  std::int64_t* p) const {
    for (Index l = 0; l < kL; ++l) p[l] = 0;
    for (int c = 0; c < chunks; ++c) {
      const std::uint16_t wc = wg[(pass * chunks + c) * kPimSlots + slot];
      const std::uint16_t* xc = xs + c * kL;
      for (Index l = 0; l < kL; ++l) p[l] += std::popcount(static_cast<std::uint16_t>(xc[l] & wc));
    }
  }
};

}  // namespace

void gemm_portable(const GemmPlan& plan) {
  set_kernel_route("portable");
  generic_gemm(plan, PortableCounter{});
}

void extract_bits_portable(const std::uint8_t* tile, Index groups, int chunks, int planes, std::uint16_t* out) {
  for (Index g = 0; g < groups; ++g)
    for (int c = 0; c < chunks; ++c) {
      const std::uint8_t* rows = tile + (g * chunks + c) * kPimChunkRows * kL;
      for (int s = 0; s < planes; ++s) {
        std::uint16_t* dst = out + ((g * planes + s) * chunks + c) * kL;
        for (Index l = 0; l < kL; ++l) {
          unsigned bits = 0;
          for (int r = 0; r < kPimChunkRows; ++r) bits |= ((rows[r * kL + l] >> s) & 1u) << r;
          dst[l] = static_cast<std::uint16_t>(bits);
        }
      }
    }
}

bool convert_row_portable(const float* src, Index n, Index step, const RowFormat& format, std::uint8_t* dst) {
  bool all = true;
  for (Index i = 0; i < n; ++i) {
    bool ok = true;
    dst[i] = format.byte(src[i * step], ok);
    all &= ok;
  }
  return all;
}

void pack_block_portable(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out) {
  const Index rows = src.groups * src.chunks * kPimChunkRows;
  thread_local std::vector<std::uint8_t> tile;
  tile.resize(static_cast<std::size_t>(rows * kL));
  for (Index t = 0; t < rows; ++t) {
    const Index offset = src.row_offset[t];
    for (Index l = 0; l < kL; ++l)
      tile[static_cast<std::size_t>(t * kL + l)] = (offset >= 0 && l < valid) ? src.source[base[l] + offset] : 0;
  }
  extract_bits_portable(tile.data(), src.groups, src.chunks, src.planes, out);
}

std::uint64_t thermal_codes_portable(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma,
                                     const Adc& adc, const double* levels, std::int32_t* codes) {
  return generic_thermal_codes(stream, j0, count, sigma, adc, levels, codes);
}

}  // namespace pimqat::pim::detail
