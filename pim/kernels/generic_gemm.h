#pragma once
// Module-private: the generic PIM product over the packed layout (pim/kernels/packed.h), int64
// sums, any configuration and ADC path, parameterized by how partial sums are counted. Thermal
// noise takes the fast decision of pim/gaussian.h one conversion at a time: one scalar Philox block
// per 8 conversions for the coarse values, a second one only where the bucket straddles a code
// threshold. Everything has internal linkage: the portable path (portable.cpp) and the AVX2 path
// (avx2.cpp, compiled for AVX2 under a target pragma) each get their own copy, so no
// instruction-set-specific code can leak into the other through the linker.
//
// Counter: void operator()(const uint16_t* xs /*[chunk][8 lanes]*/, const uint16_t* wg, int chunks,
//                          int pass, int slot, int64_t* p) const   -- p[l] = sum_chunks popcount
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "pim/gaussian.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/internal.h"
#include "pim/kernels/noise.h"
#include "pim/kernels/reference.h"

namespace pimqat::pim::detail {
namespace {

constexpr Index kGenericLanes = kPimBlockPixels;

// The coarse values of a run of consecutive conversions, one Philox block per 8.
class CoarseNoise {
 public:
  explicit CoarseNoise(const GemmPlan& plan) : plan_(plan) {}
  std::uint32_t operator()(std::uint64_t j) {
    const std::uint64_t b = thermal_coarse_block(j);
    if (b != block_index_) {
      block_ = plan_.noise_block(b);
      block_index_ = b;
    }
    return thermal_coarse(block_, j);
  }

 private:
  const GemmPlan& plan_;
  std::uint64_t block_index_ = ~std::uint64_t{0};
  PhiloxBlock block_{};
};

// The code of conversion j at a noise-free level (sigma > 0), counting fine-word draws.
inline int generic_noisy_code(const GemmPlan& plan, const Adc& adc, const float* edges, CoarseNoise& coarse_noise,
                              std::uint64_t j, double level, std::uint64_t& fine_draws) {
  const std::uint32_t coarse = coarse_noise(j);
  const int code = thermal_bucket_code(adc, plan.sigma, level, edges, coarse);
  if (code >= 0) return code;
  ++fine_draws;
  return thermal_fine_code(plan, adc, level, j, coarse);
}

// acc[l] += coefficient * v(column, s, p[l]) for the block's valid lanes (the padded ones are
// never written out).
inline void generic_convert(const GemmPlan& plan, const float* edges, Index column, int s, Index pixel0, Index valid,
                            const std::int64_t* p, std::int64_t coefficient, std::int64_t* acc,
                            std::uint64_t& fine_draws) {
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
      // The block's conversions are consecutive: j(pixel0 + l) = j(pixel0) + l.
      const std::uint64_t j0 = conversion_index(column, s, plan.slices, pixel0, plan.pixels);
      const Adc& adc = plan.bank->adc();
      CoarseNoise coarse_noise(plan);
      for (Index l = 0; l < valid; ++l) {
        double level;
        if (plan.levels) {
          level = plan.levels[column * plan.level_stride + p[l] - plan.p_lo];
        } else {
          const double gain = plan.gains ? plan.gains[column] : 1.0, offset = plan.offsets ? plan.offsets[column] : 0.0;
          level = gain * (static_cast<double>(p[l]) - plan.adc_p_lo) / plan.delta + offset;
        }
        const int code = plan.sigma == 0.0 ? adc.code(level)
                                           : generic_noisy_code(plan, adc, edges, coarse_noise,
                                                                j0 + static_cast<std::uint64_t>(l), level, fine_draws);
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

template <class Counter>
void generic_gemm(const GemmPlan& plan, const Counter& count_plane) {
  constexpr Index kL = kGenericLanes;
  const Index out_channels = plan.out_channels, groups = plan.groups;
  const int a_bits = plan.act_bits, w_bits = plan.weight_bits, chunks = plan.chunks, T = plan.column_slices;
  const float* edges = thermal_bucket_edges();
  PimMoments total;
#pragma omp parallel if (plan.pixels * out_channels * groups * a_bits * w_bits > (Index{1} << 15))
  {
    MomentAccumulator moments;
    std::uint64_t fine_draws = 0;
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
                  generic_convert(plan, edges, column0 + t, s, pixel0, valid, p, coefficient, acc, fine_draws);
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
                generic_convert(plan, edges, column0, s, pixel0, valid, p, weight, acc, fine_draws);
                generic_convert(plan, edges, column0 + 1, s, pixel0, valid, q, -weight, acc, fine_draws);
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
              generic_convert(plan, edges, column0, 0, pixel0, valid, p, 1, acc, fine_draws);
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
    count_thermal_fine_conversions(fine_draws);
#pragma omp critical(pimqat_pim_moments)
    total.merge(moments.m);
  }
  if (plan.moments) plan.moments->merge(total);
}

// thermal_codes (pim/kernels/noise.h) through generic_noisy_code.
inline std::uint64_t generic_thermal_codes(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma,
                                           const Adc& adc, const double* levels, std::int32_t* codes) {
  const AdcBank bank(adc);
  const GemmPlan plan = thermal_plan(stream, sigma, bank);
  const float* edges = thermal_bucket_edges();
  CoarseNoise coarse_noise(plan);
  std::uint64_t fine_draws = 0;
  for (Index i = 0; i < count; ++i)
    codes[i] =
        generic_noisy_code(plan, adc, edges, coarse_noise, j0 + static_cast<std::uint64_t>(i), levels[i], fine_draws);
  return fine_draws;
}

}  // namespace
}  // namespace pimqat::pim::detail
