// The AVX2 path (AVX2, FMA, BMI2, POPCNT): the generic product of pim/kernels/generic_gemm.h with
// partial sums counted 8 pixels at a time (16-bit lanes; popcount by the nibble table and VPSHUFB);
// thermal noise by the generic scalar fast decision (pim/gaussian.h). Everything below the target
// pragma is compiled for AVX2 and has internal linkage except the entry points, which dispatch.cpp
// only calls where the CPU supports AVX2 (pim/kernels/dispatch.h).
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "pim/gaussian.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/internal.h"
#include "pim/kernels/reference.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,popcnt")

#include "pim/kernels/generic_gemm.h"

namespace pimqat::pim::detail {
namespace {

constexpr Index kL = kPimBlockPixels;

// p[l] = sum over chunks of popcount(x[chunk][l] & w), 8 lanes of 16 bits: byte counts from the
// nibble table, summed in bytes (at most 8 per chunk: flushed every 31 chunks), then the two bytes
// of each lane added.
struct Avx2Counter {
  void operator()(const std::uint16_t* xs, const std::uint16_t* wg, int chunks, int pass, int slot,
                  std::int64_t* p) const {
    const __m128i table = _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m128i nibble = _mm_set1_epi8(0x0F), low_byte = _mm_set1_epi16(0x00FF);
    __m128i total = _mm_setzero_si128(), bytes = _mm_setzero_si128();
    for (int c = 0; c < chunks; ++c) {
      const auto w = static_cast<short>(wg[(pass * chunks + c) * kPimSlots + slot]);
      const __m128i v = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xs + c * kL)), _mm_set1_epi16(w));
      const __m128i low = _mm_shuffle_epi8(table, _mm_and_si128(v, nibble));
      const __m128i high = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(v, 4), nibble));
      bytes = _mm_add_epi8(bytes, _mm_add_epi8(low, high));
      if (c % 31 == 30 || c == chunks - 1) {
        total = _mm_add_epi16(total, _mm_add_epi16(_mm_and_si128(bytes, low_byte), _mm_srli_epi16(bytes, 8)));
        bytes = _mm_setzero_si128();
      }
    }
    alignas(16) std::uint16_t lanes[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(lanes), total);
    for (Index l = 0; l < kL; ++l) p[l] = lanes[l];
  }
};

}  // namespace

bool gemm_avx2(const GemmPlan& plan) {
  set_kernel_route("avx2 generic");
  generic_gemm(plan, Avx2Counter{});
  return true;
}

void extract_bits_avx2(const std::uint8_t* tile, Index groups, int chunks, int planes, std::uint16_t* out) {
  extract_bits_portable(tile, groups, chunks, planes, out);
}

bool convert_row_avx2(const float* src, Index n, Index step, const RowFormat& format, std::uint8_t* dst) {
  if (step != 1) return convert_row_portable(src, n, step, format, dst);
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(format.max_value);
  const __m256 alpha = _mm256_set1_ps(format.alpha), to_integer = _mm256_set1_ps(format.to_integer);
  __m256 bad = _mm256_setzero_ps();
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    __m256i ints;
    if (format.quantize) {
      // nn::activation_integer: nearbyint(min(max(x, 0), alpha) * to_integer); only NaN is bad.
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      const __m256 clipped = _mm256_min_ps(_mm256_max_ps(v, zero), alpha);
      ints = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(clipped, to_integer),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else {
      // not (v >= 0 and v <= max and v == floor(v)); NaN compares unordered: bad.
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, zero, _CMP_NGE_UQ));
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, top, _CMP_NLE_UQ));
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, _mm256_floor_ps(v), _CMP_NEQ_UQ));
      ints = _mm256_cvttps_epi32(_mm256_max_ps(_mm256_min_ps(v, top), zero));
    }
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(ints), _mm256_extracti128_si256(ints, 1));
    const __m128i bytes = _mm_packus_epi16(words, words);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), bytes);
  }
  const bool ok = _mm256_movemask_ps(bad) == 0;
  return convert_row_portable(src + i, n - i, 1, format, dst + i) && ok;
}

void pack_block_avx2(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out) {
  pack_block_portable(src, base, valid, out);
}

std::uint64_t thermal_codes_avx2(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma, const Adc& adc,
                                 const double* levels, std::int32_t* codes) {
  return generic_thermal_codes(stream, j0, count, sigma, adc, levels, codes);
}

}  // namespace pimqat::pim::detail

#pragma GCC pop_options
