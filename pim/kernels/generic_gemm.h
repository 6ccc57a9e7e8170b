#pragma once
// Module-private: the generic PIM product over the packed layout (pim/kernels/packed.h), int64
// sums, any configuration and ADC path, parameterized by how partial sums are counted and how
// normals are made. Everything has internal linkage: the portable path (portable.cpp) and the AVX2
// path (avx2.cpp, compiled for AVX2 under a target pragma) each get their own copy, so no
// instruction-set-specific code can leak into the other through the linker.
//
// Counter: void operator()(const uint16_t* xs /*[chunk][8 lanes]*/, const uint16_t* wg, int chunks,
//                          int pass, int slot, int64_t* p) const   -- p[l] = sum_chunks popcount
// Normals: void operator()(const PhiloxWords&, const uint64_t* blocks, Index count, float* out) const
//          -- as gaussian_blocks
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "pim/gaussian.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/internal.h"
#include "pim/kernels/reference.h"

namespace pimqat::pim::detail {
namespace {

constexpr Index kGenericLanes = kPimBlockPixels;

// The normals of conversions [j0, j0 + n), n <= 8.
template <class Normals>
void generic_normals(const GemmPlan& plan, const Normals& make, std::uint64_t j0, Index n, float* out) {
  if (plan.sigma == 0.0) {  // a die without noise on the level formula: fma(0, 0, level) = level
    std::fill(out, out + n, 0.0f);
    return;
  }
  if (!plan.noise_words) {
    for (Index l = 0; l < n; ++l) out[l] = gaussian_at(plan.bank->noise_stream(), j0 + static_cast<std::uint64_t>(l));
    return;
  }
  std::uint64_t blocks[4];
  float z[16];
  const std::uint64_t first = j0 >> 2, last = (j0 + static_cast<std::uint64_t>(n) - 1) >> 2;
  const Index count = static_cast<Index>(last - first) + 1;
  for (Index b = 0; b < count; ++b) blocks[b] = first + static_cast<std::uint64_t>(b);
  make(plan.noise, blocks, count, z);
  const auto skip = static_cast<Index>(j0 & 3u);
  for (Index l = 0; l < n; ++l) out[l] = z[skip + l];
}

// acc[l] += coefficient * v(column, s, p[l]) for the block's valid lanes (the padded ones are
// never written out).
template <class Normals>
void generic_convert(const GemmPlan& plan, const Normals& make, Index column, int s, Index pixel0, Index valid,
                     const std::int64_t* p, std::int64_t coefficient, std::int64_t* acc) {
  switch (plan.path) {
    case AdcPath::Lossless:
      for (Index l = 0; l < valid; ++l) acc[l] += coefficient * p[l];
      return;
    case AdcPath::SharedTable:
      for (Index l = 0; l < valid; ++l) acc[l] += coefficient * plan.table[p[l] - plan.p_lo];
      return;
    case AdcPath::ColumnTable: {
      const std::int32_t* t = plan.table + column * plan.points - plan.p_lo;
      for (Index l = 0; l < valid; ++l) acc[l] += coefficient * t[p[l]];
      return;
    }
    case AdcPath::Noisy: {
      float z[kGenericLanes];
      generic_normals(plan, make, conversion_index(column, s, plan.slices, pixel0, plan.pixels), valid, z);
      const Adc& adc = plan.bank->adc();
      for (Index l = 0; l < valid; ++l) {
        double level;
        if (plan.levels) {
          level = plan.levels[column * plan.level_stride + p[l] - plan.p_lo];
        } else {
          const double gain = plan.gains ? plan.gains[column] : 1.0, offset = plan.offsets ? plan.offsets[column] : 0.0;
          level = gain * (static_cast<double>(p[l]) - plan.adc_p_lo) / plan.delta + offset;
        }
        const int code = adc.code(std::fma(plan.sigma, static_cast<double>(z[l]), level));
        acc[l] += coefficient * (plan.code_value ? plan.code_value[code] : code);
      }
      return;
    }
    case AdcPath::Direct: {
      const Adc& adc = plan.bank->adc();
      for (Index l = 0; l < valid; ++l) {
        const int code =
            plan.bank->convert(column, p[l], conversion_index(column, s, plan.slices, pixel0 + l, plan.pixels));
        acc[l] += coefficient * (adc.integer_readout() ? adc.value_integer(code) : code);
      }
      return;
    }
  }
}

template <class Counter, class Normals>
void generic_gemm(const GemmPlan& plan, const Counter& count_plane, const Normals& make) {
  constexpr Index kL = kGenericLanes;
  const Index out_channels = plan.out_channels, groups = plan.groups;
  const int a_bits = plan.act_bits, w_bits = plan.weight_bits, chunks = plan.chunks, T = plan.column_slices;
  PimMoments total;
#pragma omp parallel if (plan.pixels * out_channels * groups * a_bits * w_bits > (Index{1} << 15))
  {
    MomentAccumulator moments;
#pragma omp for schedule(dynamic, 4)
    for (Index block = 0; block < plan.blocks; ++block) {
      std::int64_t acc[kL], exact[kL], p[kL], q[kL], cnt[kL];
      const Index pixel0 = block * kL, valid = std::min(kL, plan.pixels - pixel0);
      const std::uint16_t* xb = plan.x + block * plan.x_block_stride;
      for (Index o = 0; o < out_channels; ++o) {
        const std::uint16_t* w_channel = plan.w + o * plan.w_channel_stride;
        std::fill(acc, acc + kL, 0);
        std::fill(exact, exact + kL, 0);
        for (Index g = 0; g < groups; ++g) {
          const std::uint16_t* xg = xb + g * a_bits * chunks * kL;
          const std::uint16_t* wg = w_channel + g * plan.passes * chunks * kPimSlots;
          const Index column0 = (g * out_channels + o) * T;
          switch (plan.scheme) {
            case Scheme::BitSerial:
              for (int s = 0; s < a_bits; ++s)
                for (int t = 0; t < w_bits; ++t) {
                  count_plane(xg + s * chunks * kL, wg, chunks, t / kPimSlots, t % kPimSlots, p);
                  const std::int64_t coefficient = (std::int64_t{1} << s) * plan.weight_coefficient(t);
                  generic_convert(plan, make, column0 + t, s, pixel0, valid, p, coefficient, acc);
                  for (Index l = 0; l < kL; ++l) exact[l] += coefficient * p[l];
                }
              break;
            case Scheme::Differential:
              for (int s = 0; s < a_bits; ++s) {
                std::fill(p, p + kL, 0);
                std::fill(q, q + kL, 0);
                for (int u = 0; u < w_bits; ++u) {
                  count_plane(xg + s * chunks * kL, wg, chunks, differential_pass(u), differential_slot(u, 0), cnt);
                  for (Index l = 0; l < kL; ++l) p[l] += cnt[l] << u;
                  count_plane(xg + s * chunks * kL, wg, chunks, differential_pass(u), differential_slot(u, 1), cnt);
                  for (Index l = 0; l < kL; ++l) q[l] += cnt[l] << u;
                }
                const std::int64_t weight = std::int64_t{1} << s;
                generic_convert(plan, make, column0, s, pixel0, valid, p, weight, acc);
                generic_convert(plan, make, column0 + 1, s, pixel0, valid, q, -weight, acc);
                for (Index l = 0; l < kL; ++l) exact[l] += weight * (p[l] - q[l]);
              }
              break;
            case Scheme::Native:
              std::fill(p, p + kL, 0);
              for (int s = 0; s < a_bits; ++s)
                for (int t = 0; t < w_bits; ++t) {
                  count_plane(xg + s * chunks * kL, wg, chunks, t / kPimSlots, t % kPimSlots, cnt);
                  const std::int64_t coefficient = (std::int64_t{1} << s) * plan.weight_coefficient(t);
                  for (Index l = 0; l < kL; ++l) p[l] += coefficient * cnt[l];
                }
              generic_convert(plan, make, column0, 0, pixel0, valid, p, 1, acc);
              for (Index l = 0; l < kL; ++l) exact[l] += p[l];
              break;
          }
        }
        for (Index l = 0; l < valid; ++l) {
          const Index at = plan.out_index(o, pixel0 + l);
          if (plan.pim_sum) plan.pim_sum[at] = acc[l];
          if (plan.exact) plan.exact[at] = exact[l];
          moments.add(acc[l], exact[l]);
        }
      }
    }
#pragma omp critical(pimqat_pim_moments)
    total.merge(moments.m);
  }
  if (plan.moments) plan.moments->merge(total);
}

}  // namespace
}  // namespace pimqat::pim::detail
