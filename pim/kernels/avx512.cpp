// The AVX-512 path (F, BW, VL, DQ, VPOPCNTDQ, BITALG, VBMI): every function here carries the
// target attribute, so the rest of the program keeps the build's baseline instruction set and this
// code only runs where dispatch.cpp found the CPU able to (pim/kernels/dispatch.h).
//
// Product (pim/kernels/packed.h layouts). A 512-bit register holds 32 uint16 lanes = 8 pixels x 4
// weight-plane slots, lane (pixel, slot): the activation chunk of the pixel (VPERMW from the 16
// bytes of one block's chunk) AND the weight chunks of 4 planes (one uint64 broadcast), VPOPCNTW,
// VPADDW over the chunks: the 32 partial sums cnt(pixel, plane) of one (o, g, s, pass), exact in
// 16 bits (N <= 4096). Then per scheme:
//   bit-serial    v = ADC(cnt) in the same lanes (VPERMI2W table, gathers, or the noise path),
//                 A += VPMADDWD(v, 2^s c_t) (int32 pairs), y += VPMADDWD(cnt, 2^s c_t);
//   differential  slots (+u, +u+1, -u, -u+1): VPMADDWD with 2^u gives p+ and p- per pixel;
//   native        VPMADDWD with 2^s c_t summed over s, t gives p per pixel.
// Sums stay in int32 lanes only when the plan's bounds allow (max_output < 2^31); the entry point
// returns false otherwise, and for anything it does not cover, and the portable path runs.
//
// Thermal noise (pim/gaussian.h): the coarse values of one (g, s) and 32 pixels are made for every
// column at once (Philox4x32-10 on 8 blocks per register, one block per 8 conversions, stored in
// block order = conversion order as uint16), then each column's 8-pixel rows are converted in
// double by the fast decision (convert8: the bucket's bounds from one gather of the edge table,
// the level from a gather or the linear model's fma, two fma, floor, compares, with a margin that
// makes it exact); the few conversions it cannot decide are settled after the batch with their
// fine word and Q (pim/gaussian.cpp), scalar. Every code equals AdcBank::convert's.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "pim/gaussian.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/internal.h"
#include "pim/kernels/philox_avx512.h"
#include "pim/kernels/reference.h"

#define PIMQAT_AVX512                                                                                              \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx512bitalg,avx512vbmi,avx512vnni,avx2," \
                        "fma,bmi2,popcnt")))
#define PIMQAT_AVX512_INLINE PIMQAT_AVX512 inline __attribute__((always_inline))

namespace pimqat::pim::detail {
namespace {

constexpr Index kL = kPimBlockPixels;
constexpr int kTileBlocks = 4;  // noise path: 32 pixels per tile

// 64-byte aligned scratch of vector registers (std::vector drops the alignment of vector types).
class AlignedScratch {
 public:
  explicit AlignedScratch(std::size_t bytes) : storage_(bytes + 64) {
    const auto address = reinterpret_cast<std::uintptr_t>(storage_.data());
    data_ = storage_.data() + ((64 - address % 64) % 64);
  }
  void* data() { return data_; }

 private:
  std::vector<unsigned char> storage_;
  unsigned char* data_;
};

// ---------------------------------------------------------------------------------------------
// Bit extraction: a 16-row x 8-pixel byte tile -> 8 uint16 per plane.

constexpr std::array<std::uint8_t, 64> transpose_index(int first_lane) {
  std::array<std::uint8_t, 64> index{};
  for (int l = 0; l < 4; ++l)
    for (int r = 0; r < 16; ++r)
      index[static_cast<std::size_t>(l * 16 + r)] =
          static_cast<std::uint8_t>(r < 8 ? r * 8 + first_lane + l : 64 + (r - 8) * 8 + first_lane + l);
  return index;
}
alignas(64) constexpr std::array<std::uint8_t, 64> kTransposeLow = transpose_index(0);
alignas(64) constexpr std::array<std::uint8_t, 64> kTransposeHigh = transpose_index(4);

// ---------------------------------------------------------------------------------------------
// Coarse noise words (pim/gaussian.h): Philox4x32-10 itself is in pim/kernels/philox_avx512.h.

// The 4 words of each of 8 blocks (64-bit lanes, words in the low halves) stored block by block:
// out[4 i + k] = word k of block i.
PIMQAT_AVX512_INLINE void store_blocks8(__m512i w0, __m512i w1, __m512i w2, __m512i w3, std::uint32_t* out) {
  const __m512i w01 = _mm512_mask_blend_epi32(0xAAAA, w0, _mm512_slli_epi64(w1, 32));  // words 0, 1 of block i
  const __m512i w23 = _mm512_mask_blend_epi32(0xAAAA, w2, _mm512_slli_epi64(w3, 32));  // words 2, 3
  _mm512_storeu_si512(out, _mm512_permutex2var_epi64(w01, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), w23));
  _mm512_storeu_si512(out + 16, _mm512_permutex2var_epi64(w01, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), w23));
}

// out[4 i + k] = word k of Philox block blocks[i], i < count; out holds 4 * ceil(count / 8) * 8 words.
PIMQAT_AVX512 void philox_blocks(const PhiloxKeys& keys, const std::uint64_t* blocks, Index count, std::uint32_t* out) {
  Index i = 0;
  for (; i + 8 <= count; i += 8) {
    __m512i w0, w1, w2, w3;
    philox8(keys, _mm512_loadu_si512(blocks + i), w0, w1, w2, w3);
    store_blocks8(w0, w1, w2, w3, out + 4 * i);
  }
  if (i < count) {
    const auto live = static_cast<__mmask8>((1u << (count - i)) - 1u);
    __m512i w0, w1, w2, w3;
    philox8(keys, _mm512_maskz_loadu_epi64(live, blocks + i), w0, w1, w2, w3);
    store_blocks8(w0, w1, w2, w3, out + 4 * i);
  }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of the product.

// Lane (pixel, slot) of a chunk register reads pixel `pixel`: index 4 pixel + slot -> pixel.
PIMQAT_AVX512_INLINE __m512i expand_index() {
  return _mm512_set_epi16(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0,
                          0);
}
// (pixel, slot) -> (slot, pixel): lane 8 slot + pixel reads lane 4 pixel + slot.
PIMQAT_AVX512_INLINE __m512i slot_major_index() {
  return _mm512_set_epi16(31, 27, 23, 19, 15, 11, 7, 3, 30, 26, 22, 18, 14, 10, 6, 2, 29, 25, 21, 17, 13, 9, 5, 1, 28,
                          24, 20, 16, 12, 8, 4, 0);
}

PIMQAT_AVX512_INLINE __m512i load_chunk(const std::uint16_t* x, __m512i expand) {
  return _mm512_permutexvar_epi16(expand, _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x))));
}

PIMQAT_AVX512_INLINE __m512i broadcast_weights(const std::uint16_t* w) {
  std::uint64_t word;
  std::memcpy(&word, w, sizeof word);
  return _mm512_set1_epi64(static_cast<long long>(word));
}

// The activation chunks of one (block, g, s) in (pixel, slot) lanes: in registers when the chunk
// count is a compile-time constant, else in a scratch array.
template <int kChunks>
struct Chunks {
  __m512i v[kChunks > 0 ? kChunks : 1];
  __m512i* scratch;
  int n;
  PIMQAT_AVX512_INLINE void load(const std::uint16_t* x, __m512i expand) {
    if constexpr (kChunks > 0) {
#pragma GCC unroll 16
      for (int c = 0; c < kChunks; ++c) v[c] = load_chunk(x + c * kL, expand);
    } else {
      for (int c = 0; c < n; ++c) scratch[c] = load_chunk(x + c * kL, expand);
    }
  }
  // Sum over chunks of popcount(x & w) in (pixel, slot) lanes.
  PIMQAT_AVX512_INLINE __m512i count(const std::uint16_t* w) const {
    if constexpr (kChunks > 0) {
      __m512i total = _mm512_popcnt_epi16(_mm512_and_epi64(v[0], broadcast_weights(w)));
#pragma GCC unroll 16
      for (int c = 1; c < kChunks; ++c)
        total = _mm512_add_epi16(total, _mm512_popcnt_epi16(_mm512_and_epi64(v[c], broadcast_weights(w + c * kPimSlots))));
      return total;
    } else {
      __m512i total = _mm512_popcnt_epi16(_mm512_and_epi64(scratch[0], broadcast_weights(w)));
      for (int c = 1; c < n; ++c)
        total = _mm512_add_epi16(total,
                                 _mm512_popcnt_epi16(_mm512_and_epi64(scratch[c], broadcast_weights(w + c * kPimSlots))));
      return total;
    }
  }
};

// Per-thread moments: 8 int64 lanes, folded into int128 before they could overflow.
struct VectorMoments {
  __m512i pim_sum, pim_square, exact_sum, exact_square;
  std::int64_t pending = 0, flush_every = 1;
  PimMoments total;
};

PIMQAT_AVX512_INLINE void moments_reset(VectorMoments& m, std::int64_t max_output) {
  m.pim_sum = m.pim_square = m.exact_sum = m.exact_square = _mm512_setzero_si512();
  m.pending = 0;
  // |v| <= max_output < 2^31: each lane may take flush_every squares (and sums) safely.
  const long double bound = static_cast<long double>(max_output) * static_cast<long double>(max_output) + 1.0L;
  m.flush_every = std::max<std::int64_t>(1, static_cast<std::int64_t>(4.0e18L / bound));
}

PIMQAT_AVX512_INLINE void moments_flush(VectorMoments& m) {
  alignas(64) std::int64_t lanes[4][8];
  _mm512_store_si512(lanes[0], m.pim_sum);
  _mm512_store_si512(lanes[1], m.pim_square);
  _mm512_store_si512(lanes[2], m.exact_sum);
  _mm512_store_si512(lanes[3], m.exact_square);
  for (int l = 0; l < 8; ++l) {
    m.total.pim_sum += lanes[0][l];
    m.total.pim_square += lanes[1][l];
    m.total.exact_sum += lanes[2][l];
    m.total.exact_square += lanes[3][l];
  }
  m.pim_sum = m.pim_square = m.exact_sum = m.exact_square = _mm512_setzero_si512();
  m.pending = 0;
}

// Writes A and y of 8 pixels of channel o (int32 lanes) and adds them to the moments.
PIMQAT_AVX512_INLINE void store_outputs(const GemmPlan& plan, VectorMoments& m, Index o, Index pixel0, Index valid,
                                        __m256i a, __m256i y) {
  const __m512i a64 = _mm512_cvtepi32_epi64(a), y64 = _mm512_cvtepi32_epi64(y);
  const auto live = static_cast<__mmask8>((1u << valid) - 1u);
  m.pim_sum = _mm512_mask_add_epi64(m.pim_sum, live, m.pim_sum, a64);
  m.pim_square = _mm512_mask_add_epi64(m.pim_square, live, m.pim_square, _mm512_mul_epi32(a64, a64));
  m.exact_sum = _mm512_mask_add_epi64(m.exact_sum, live, m.exact_sum, y64);
  m.exact_square = _mm512_mask_add_epi64(m.exact_square, live, m.exact_square, _mm512_mul_epi32(y64, y64));
  m.total.count += valid;
  if (++m.pending >= m.flush_every) moments_flush(m);
  const Index in_image = pixel0 % plan.image_pixels;
  if (valid == kL && in_image + kL <= plan.image_pixels) {
    const Index at = plan.out_index(o, pixel0);
    if (plan.pim_sum) _mm512_storeu_si512(plan.pim_sum + at, a64);
    if (plan.exact) _mm512_storeu_si512(plan.exact + at, y64);
    return;
  }
  alignas(64) std::int64_t av[8], yv[8];
  _mm512_store_si512(av, a64);
  _mm512_store_si512(yv, y64);
  for (Index l = 0; l < valid; ++l) {
    const Index at = plan.out_index(o, pixel0 + l);
    if (plan.pim_sum) plan.pim_sum[at] = av[l];
    if (plan.exact) plan.exact[at] = yv[l];
  }
}

// (pixel, pair) int32 lanes -> the 8 per-pixel sums.
PIMQAT_AVX512_INLINE __m256i sum_pairs(__m512i v) {
  return _mm512_cvtepi64_epi32(_mm512_add_epi32(v, _mm512_shuffle_epi32(v, _MM_PERM_CDAB)));
}

// Coefficients 2^s c_t of bit-serial in (pixel, slot) lanes for pass tp (0 for slots past b_w).
PIMQAT_AVX512 __m512i bitserial_coefficients(const GemmPlan& plan, int s, int tp) {
  alignas(64) std::int16_t c[32];
  for (int l = 0; l < 32; ++l) {
    const int t = tp * kPimSlots + l % kPimSlots;
    c[l] = t < plan.weight_bits ? static_cast<std::int16_t>((std::int64_t{1} << s) * plan.weight_coefficient(t)) : 0;
  }
  return _mm512_load_si512(c);
}

// ---------------------------------------------------------------------------------------------
// ADCs of the fixed-table paths, in (pixel, slot) lanes: v = f(cnt) as int16.

struct LosslessAdc {
  PIMQAT_AVX512_INLINE __m512i operator()(__m512i cnt, Index, int) const { return cnt; }
};

// Shared table of up to 64 pairs entries: VPERMI2W over 2 npairs registers.
template <int kPairs>
struct PermuteAdc {
  __m512i t[8];
  PIMQAT_AVX512 explicit PermuteAdc(const std::int16_t* table) {
    for (int k = 0; k < 2 * kPairs; ++k) t[k] = _mm512_loadu_si512(table + 32 * k);
  }
  PIMQAT_AVX512_INLINE __m512i operator()(__m512i cnt, Index, int) const {
    __m512i r = _mm512_permutex2var_epi16(t[0], cnt, t[1]);
    if constexpr (kPairs >= 2) {
      const __mmask32 bit6 = _mm512_test_epi16_mask(cnt, _mm512_set1_epi16(64));
      r = _mm512_mask_blend_epi16(bit6, r, _mm512_permutex2var_epi16(t[2], cnt, t[3]));
      if constexpr (kPairs >= 3) {
        __m512i high = _mm512_permutex2var_epi16(t[4], cnt, t[5]);
        if constexpr (kPairs == 4) high = _mm512_mask_blend_epi16(bit6, high, _mm512_permutex2var_epi16(t[6], cnt, t[7]));
        const __mmask32 bit7 = _mm512_test_epi16_mask(cnt, _mm512_set1_epi16(128));
        r = _mm512_mask_blend_epi16(bit7, r, high);
      }
    }
    return r;
  }
};

// Table gathers: shared (column stride 0) or per column (slot s reads column column0 + 4 tp + s).
struct GatherAdc {
  const std::int32_t* table;  // at p_lo = 0 (bit-serial)
  Index stride;               // entries per column, 0 = shared
  int weight_bits;
  PIMQAT_AVX512_INLINE __m512i operator()(__m512i cnt, Index column0, int tp) const {
    const int first = tp * kPimSlots;
    const __m512i slot = _mm512_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
    const __m512i offset = _mm512_mullo_epi32(slot, _mm512_set1_epi32(static_cast<int>(stride)));
    const __m512i live_slots = _mm512_set1_epi32(weight_bits - first);
    const __mmask16 live = _mm512_cmplt_epi32_mask(slot, live_slots);
    const std::int32_t* base = table + (column0 + first) * stride;
    const __m512i lo = _mm512_add_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(cnt)), offset);
    const __m512i hi = _mm512_add_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(cnt, 1)), offset);
    const __m512i v_lo = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, lo, base, 4);
    const __m512i v_hi = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, hi, base, 4);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(v_lo)), _mm512_cvtepi32_epi16(v_hi), 1);
  }
};

// ---------------------------------------------------------------------------------------------
// Bit-serial, fixed ADC.

template <int kChunks, class Adc>
PIMQAT_AVX512 void bitserial_fixed(const GemmPlan& plan, const Adc& adc) {
  const Index out_channels = plan.out_channels, groups = plan.groups;
  const int a_bits = plan.act_bits, chunks = kChunks > 0 ? kChunks : plan.chunks, passes = plan.passes;
  const int T = plan.column_slices;
  AlignedScratch coefficient_storage(static_cast<std::size_t>(a_bits * passes) * sizeof(__m512i));
  auto* coefficients = static_cast<__m512i*>(coefficient_storage.data());
  for (int s = 0; s < a_bits; ++s)
    for (int tp = 0; tp < passes; ++tp) coefficients[s * passes + tp] = bitserial_coefficients(plan, s, tp);
  PimMoments total;
#pragma omp parallel
  {
    AlignedScratch storage(static_cast<std::size_t>(2 * out_channels + chunks) * sizeof(__m512i));
    auto* acc = static_cast<__m512i*>(storage.data());
    __m512i* exact = acc + out_channels;
    __m512i* x = exact + out_channels;
    VectorMoments moments;
    moments_reset(moments, plan.max_output);
    const __m512i expand = expand_index();
#pragma omp for schedule(dynamic, 16)
    for (Index block = 0; block < plan.blocks; ++block) {
      const Index pixel0 = block * kL, valid = std::min(kL, plan.pixels - pixel0);
      for (Index o = 0; o < out_channels; ++o) acc[o] = exact[o] = _mm512_setzero_si512();
      const std::uint16_t* xb = plan.x + block * plan.x_block_stride;
      for (Index g = 0; g < groups; ++g) {
        for (int s = 0; s < a_bits; ++s) {
          Chunks<kChunks> xc;
          xc.scratch = x;
          xc.n = chunks;
          xc.load(xb + (g * a_bits + s) * chunks * kL, expand);
          for (Index o = 0; o < out_channels; ++o) {
            const std::uint16_t* wg = plan.w + o * plan.w_channel_stride + g * passes * chunks * kPimSlots;
            const Index column0 = (g * out_channels + o) * T;
            __m512i a = acc[o], y = exact[o];
            for (int tp = 0; tp < passes; ++tp) {
              const __m512i cnt = xc.count(wg + tp * chunks * kPimSlots);
              const __m512i coefficient = coefficients[s * passes + tp];
              a = _mm512_add_epi32(a, _mm512_madd_epi16(adc(cnt, column0, tp), coefficient));
              y = _mm512_add_epi32(y, _mm512_madd_epi16(cnt, coefficient));
            }
            acc[o] = a;
            exact[o] = y;
          }
        }
      }
      for (Index o = 0; o < out_channels; ++o)
        store_outputs(plan, moments, o, pixel0, valid, sum_pairs(acc[o]),
                      sum_pairs(exact[o]));
    }
    moments_flush(moments);
#pragma omp critical(pimqat_pim_moments)
    total.merge(moments.total);
  }
  if (plan.moments) plan.moments->merge(total);
}

// ---------------------------------------------------------------------------------------------
// Bit-serial, fixed ADC, byte lanes (N <= 255, ADC values in 0..255, table <= 256 entries).
// A register holds 64 bytes = 16 pixels x 4 slots; a 16-row chunk is two 8-row byte chunks. Counts
// are bytes (VPOPCNTB), the ADC is VPERMI2B, and VPDPBUSD adds sum_t c_t v (c_t as int8) of the 4
// slots of a pixel into its int32 lane, one accumulator per input bit s (A = sum_s 2^s acc_s).

// Byte chunk j = 2 c + h of a pair of packed blocks: lane (p, k) reads byte h of pixel p's uint16.
PIMQAT_AVX512_INLINE __m512i byte_expand_index(int h) {
  alignas(64) std::int8_t index[64];
  for (int p = 0; p < 16; ++p)
    for (int k = 0; k < 4; ++k) index[4 * p + k] = static_cast<std::int8_t>(p < 8 ? 2 * p + h : 16 + 2 * (p - 8) + h);
  return _mm512_load_si512(index);
}

// Weights as bytes: w8[o][g][pass][j] = the 4 slots' byte (j % 2) of chunk j / 2, one uint32.
std::vector<std::uint32_t> byte_weights(const GemmPlan& plan) {
  const Index chunks = plan.chunks, passes = plan.passes, groups = plan.groups;
  std::vector<std::uint32_t> w8(static_cast<std::size_t>(plan.out_channels * groups * passes * 2 * chunks));
  for (Index o = 0; o < plan.out_channels; ++o)
    for (Index g = 0; g < groups; ++g)
      for (Index tp = 0; tp < passes; ++tp)
        for (Index c = 0; c < chunks; ++c) {
          const std::uint16_t* w = plan.w + o * plan.w_channel_stride + ((g * passes + tp) * chunks + c) * kPimSlots;
          for (int h = 0; h < 2; ++h) {
            std::uint32_t word = 0;
            for (int k = 0; k < kPimSlots; ++k) word |= static_cast<std::uint32_t>((w[k] >> (8 * h)) & 0xFFu) << (8 * k);
            w8[static_cast<std::size_t>(((o * groups + g) * passes + tp) * 2 * chunks + 2 * c + h)] = word;
          }
        }
  return w8;
}

struct LosslessByteAdc {
  PIMQAT_AVX512_INLINE __m512i operator()(__m512i cnt) const { return cnt; }
};

template <bool kHigh>  // kHigh: entries 128..255 in use
struct PermuteByteAdc {
  __m512i t[4];
  PIMQAT_AVX512 explicit PermuteByteAdc(const std::uint8_t* table) {
    for (int k = 0; k < (kHigh ? 4 : 2); ++k) t[k] = _mm512_loadu_si512(table + 64 * k);
  }
  PIMQAT_AVX512_INLINE __m512i operator()(__m512i cnt) const {
    const __m512i low = _mm512_permutex2var_epi8(t[0], cnt, t[1]);
    if constexpr (!kHigh) return low;
    // Partial sums of 128 and more need most rows of a group set in both planes: rare, so the
    // second half of the table is looked up only when some lane needs it.
    const __mmask64 high = _mm512_movepi8_mask(cnt);
    if (high == 0) return low;
    return _mm512_mask_blend_epi8(high, low, _mm512_permutex2var_epi8(t[2], cnt, t[3]));
  }
};

template <int kChunks>
struct ByteChunks {
  static constexpr int kBytes = kChunks > 0 ? 2 * kChunks : 1;
  __m512i v[kBytes];
  __m512i* scratch;
  int n;  // byte chunks
  PIMQAT_AVX512_INLINE void load(const std::uint16_t* x0, const std::uint16_t* x1, __m512i index0, __m512i index1) {
    const int chunks = kChunks > 0 ? kChunks : n / 2;
    __m512i* out = kChunks > 0 ? v : scratch;
#pragma GCC unroll 16
    for (int c = 0; c < chunks; ++c) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x0 + c * kL));
      const __m128i b = x1 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(x1 + c * kL)) : _mm_setzero_si128();
      const __m512i both = _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
      out[2 * c] = _mm512_permutexvar_epi8(index0, both);
      out[2 * c + 1] = _mm512_permutexvar_epi8(index1, both);
    }
  }
  PIMQAT_AVX512_INLINE __m512i count(const std::uint32_t* w) const {
    const __m512i* x = kChunks > 0 ? v : scratch;
    const int bytes = kChunks > 0 ? 2 * kChunks : n;
    __m512i total = _mm512_popcnt_epi8(_mm512_and_si512(x[0], _mm512_set1_epi32(static_cast<int>(w[0]))));
#pragma GCC unroll 32
    for (int j = 1; j < bytes; ++j)
      total = _mm512_add_epi8(total, _mm512_popcnt_epi8(_mm512_and_si512(x[j], _mm512_set1_epi32(static_cast<int>(w[j])))));
    return total;
  }
};

template <int kChunks, class Adc>
PIMQAT_AVX512 void bitserial_bytes(const GemmPlan& plan, const Adc& adc) {
  const Index out_channels = plan.out_channels, groups = plan.groups;
  const int a_bits = plan.act_bits, chunks = kChunks > 0 ? kChunks : plan.chunks, passes = plan.passes;
  const std::vector<std::uint32_t> w8 = byte_weights(plan);
  const Index w_group = passes * 2 * chunks;
  // Slot coefficients c_t as int8 per pass (0 past b_w).
  AlignedScratch coefficient_storage(static_cast<std::size_t>(passes) * sizeof(__m512i));
  auto* coefficients = static_cast<__m512i*>(coefficient_storage.data());
  for (int tp = 0; tp < passes; ++tp) {
    alignas(64) std::int8_t c[64];
    for (int l = 0; l < 64; ++l) {
      const int t = tp * kPimSlots + l % kPimSlots;
      c[l] = t < plan.weight_bits ? static_cast<std::int8_t>(plan.weight_coefficient(t)) : 0;
    }
    coefficients[tp] = _mm512_load_si512(c);
  }
  const Index pairs = (plan.blocks + 1) / 2;
  PimMoments total;
#pragma omp parallel
  {
    const Index per_channel = static_cast<Index>(a_bits);
    AlignedScratch storage(static_cast<std::size_t>(2 * out_channels * per_channel + 2 * chunks) * sizeof(__m512i));
    auto* acc = static_cast<__m512i*>(storage.data());
    __m512i* exact = acc + out_channels * per_channel;
    __m512i* x = exact + out_channels * per_channel;
    VectorMoments moments;
    moments_reset(moments, plan.max_output);
    const __m512i index0 = byte_expand_index(0), index1 = byte_expand_index(1);
#pragma omp for schedule(dynamic, 8)
    for (Index pair = 0; pair < pairs; ++pair) {
      const Index b0 = 2 * pair, b1 = b0 + 1;
      const bool has_b1 = b1 < plan.blocks;
      for (Index k = 0; k < out_channels * per_channel; ++k) acc[k] = exact[k] = _mm512_setzero_si512();
      for (Index g = 0; g < groups; ++g) {
        for (int s = 0; s < a_bits; ++s) {
          const Index offset = (g * a_bits + s) * chunks * kL;
          ByteChunks<kChunks> xc;
          xc.scratch = x;
          xc.n = 2 * chunks;
          xc.load(plan.x + b0 * plan.x_block_stride + offset, has_b1 ? plan.x + b1 * plan.x_block_stride + offset : nullptr,
                  index0, index1);
          for (Index o = 0; o < out_channels; ++o) {
            const std::uint32_t* wg = w8.data() + (o * groups + g) * w_group;
            __m512i a = acc[o * per_channel + s], y = exact[o * per_channel + s];
            for (int tp = 0; tp < passes; ++tp) {
              const __m512i cnt = xc.count(wg + tp * 2 * chunks);
              a = _mm512_dpbusd_epi32(a, adc(cnt), coefficients[tp]);
              y = _mm512_dpbusd_epi32(y, cnt, coefficients[tp]);
            }
            acc[o * per_channel + s] = a;
            exact[o * per_channel + s] = y;
          }
        }
      }
      for (Index o = 0; o < out_channels; ++o) {
        __m512i a = acc[o * per_channel], y = exact[o * per_channel];
        for (int s = 1; s < a_bits; ++s) {
          a = _mm512_add_epi32(a, _mm512_slli_epi32(acc[o * per_channel + s], static_cast<unsigned>(s)));
          y = _mm512_add_epi32(y, _mm512_slli_epi32(exact[o * per_channel + s], static_cast<unsigned>(s)));
        }
        const Index pixel0 = b0 * kL;
        store_outputs(plan, moments, o, pixel0, std::min(kL, plan.pixels - pixel0), _mm512_castsi512_si256(a),
                      _mm512_castsi512_si256(y));
        if (has_b1)
          store_outputs(plan, moments, o, pixel0 + kL, std::min(kL, plan.pixels - pixel0 - kL),
                        _mm512_extracti64x4_epi64(a, 1), _mm512_extracti64x4_epi64(y, 1));
      }
    }
    moments_flush(moments);
#pragma omp critical(pimqat_pim_moments)
    total.merge(moments.total);
  }
  if (plan.moments) plan.moments->merge(total);
}

template <class Adc>
PIMQAT_AVX512 void bitserial_bytes_chunks(const GemmPlan& plan, const Adc& adc) {
  switch (plan.chunks) {
    case 1: bitserial_bytes<1>(plan, adc); return;
    case 2: bitserial_bytes<2>(plan, adc); return;
    case 3: bitserial_bytes<3>(plan, adc); return;
    case 5: bitserial_bytes<5>(plan, adc); return;
    case 9: bitserial_bytes<9>(plan, adc); return;
    default: bitserial_bytes<0>(plan, adc); return;
  }
}

// The byte path when the plan fits it.
PIMQAT_AVX512 bool bitserial_bytes_if_possible(const GemmPlan& plan) {
  if (plan.rows > 255 || plan.max_value > 255 || plan.weight_bits > 8) return false;
  if (plan.path == AdcPath::Lossless) {
    set_kernel_route("avx512 bit-serial bytes, lossless");
    bitserial_bytes_chunks(plan, LosslessByteAdc{});
    return true;
  }
  if (plan.path != AdcPath::SharedTable || plan.points > 256 || plan.p_lo != 0) return false;
  alignas(64) std::uint8_t table[256] = {};
  for (std::int64_t k = 0; k < plan.points; ++k) {
    if (plan.table[k] < 0) return false;
    table[k] = static_cast<std::uint8_t>(plan.table[k]);
  }
  set_kernel_route("avx512 bit-serial bytes, table");
  if (plan.points > 128)
    bitserial_bytes_chunks(plan, PermuteByteAdc<true>(table));
  else
    bitserial_bytes_chunks(plan, PermuteByteAdc<false>(table));
  return true;
}

// ---------------------------------------------------------------------------------------------
// Noisy conversions: 8 pixels of one column.
//
// The noise of one batch of conversions (bit-serial: every column of one (g, s) over a tile of 32
// pixels; differential and native: every column of one (g, round) over 16 pixels) is made by
// tile_coarse(): Philox over the batch's coarse blocks (one per 8 conversions). convert8 then
// gathers the bucket bounds (E[b], E[b+1]) of its 8 conversions (one 8-byte gather element each)
// and decides. It stores, branch-free, the straddle mask of every group of 8 conversions in a
// StraddleLog; after the batch the kernel walks the non-zero masks and settles each straddling
// conversion (settle_lane): its lane first accumulated the value of the lower bound's code
// (lower_code repeats that lane's operations), and settling adds coefficient (v(exact) - v(lower))
// to it, exact integers, so the final sum is the same; every partial sum is a sum of values in
// range and stays within the plan's bounds. (Measured on the development machine: a branch with a
// queue in the hot loop cost more than the whole decision, storing the lower codes cost more than
// recomputing the few that are needed, and bounds computed ahead for a few columns at a time more
// than gathering them in place.)

// The edge table E of pim/gaussian.h (4097 floats): the 8 bytes at E + 4 b are (E[b], E[b+1]).
const std::uint64_t* bucket_edge_pairs() { return reinterpret_cast<const std::uint64_t*>(thermal_bucket_edges()); }

// The straddle masks of the groups of 8 conversions of one batch, indexed by the kernel's group
// numbering.
struct StraddleLog {
  std::vector<std::uint8_t> masks;
  std::uint64_t drawn = 0;
  void resize(Index groups) { masks.resize(static_cast<std::size_t>(groups)); }
  std::uint8_t* mask(Index group) { return masks.data() + group; }
};

// The constants of convert8's decision (see there).
struct Decision {
  double below, above;
  explicit Decision(const GemmPlan& plan)
      : below(0.5 - (plan.decision_margin + plan.sigma * kThermalBucketMargin)),
        above(0.5 + (plan.decision_margin + plan.sigma * kThermalBucketMargin)) {}
};

// The level convert8 decides with (exact, or the linear model's fma).
inline double decision_level(const GemmPlan& plan, Index column, std::int32_t p) {
  if (!plan.fast_levels) return plan.levels[column * plan.level_stride + p - plan.p_lo];
  const double slope = plan.slopes ? plan.slopes[column] : plan.slope;
  return std::fma(slope, static_cast<double>(p) - plan.adc_p_lo, plan.offsets ? plan.offsets[column] : 0.0);
}

// The lower-bound code convert8 gave a straddling conversion (its lane's value until settled):
// the same operations on one lane.
inline int lower_code(const GemmPlan& plan, Index column, std::int32_t p, std::uint32_t coarse) {
  const double edge = static_cast<double>(thermal_bucket_edges()[coarse >> kThermalCoarseShift]);
  const double k = std::floor(std::fma(plan.sigma, edge, decision_level(plan, column, p)) + Decision(plan).below);
  return static_cast<int>(std::min(std::max(k, 0.0), static_cast<double>(plan.max_code)));
}

// One straddling conversion (layer column `column`, partial sum p, conversion j, coarse value):
// its exact code from the fine word and the exact level (AdcBank::level, or the plan's level
// table when it has one), and the correction coefficient (v(exact) - v(lower code)) of its lane.
void settle_lane(const GemmPlan& plan, Index column, std::int32_t p, std::uint64_t j, std::uint32_t coarse,
                 std::int32_t* target, std::int32_t coefficient) {
  const int code_lo = lower_code(plan, column, p, coarse);
  const double level =
      plan.levels ? plan.levels[column * plan.level_stride + p - plan.p_lo] : plan.bank->level(column, p);
  const int code = thermal_fine_code(plan, plan.bank->adc(), level, j, coarse);
  const std::int64_t v = plan.code_value ? plan.code_value[code] : code;
  const std::int64_t v_lo = plan.code_value ? plan.code_value[code_lo] : code_lo;
  *target = static_cast<std::int32_t>(*target + coefficient * (v - v_lo));
}

// The noise of one batch (above).
struct NoiseScratch {
  std::vector<std::uint64_t> blocks;
  std::vector<std::uint16_t> coarse;  // Philox words of the batch's blocks as uint16, block order
  std::vector<Index> start;           // column c's coarse values start at coarse[start[c]]
  std::vector<std::uint64_t> j0;      // and its first conversion is j0[c]

  // The coarse values of batch column c from pixel `offset`.
  const std::uint16_t* coarse8(Index c, Index offset) const {
    return coarse.data() + start[static_cast<std::size_t>(c)] + offset;
  }
  // Settles lanes `lanes` of the group of batch column c at pixel offset `offset` (layer column
  // `column`, partial sums p[l], lane l accumulating in target[l]).
  void settle(const GemmPlan& plan, std::uint8_t lanes, Index c, Index offset, Index column, const std::int32_t* p,
              std::int32_t* target, std::int32_t coefficient, StraddleLog& log) const {
    const auto k = static_cast<std::size_t>(c);
    for (unsigned rest = lanes; rest != 0; rest &= rest - 1) {
      const int l = __builtin_ctz(rest);
      settle_lane(plan, column, p[l], j0[k] + static_cast<std::uint64_t>(offset + l),
                  coarse[static_cast<std::size_t>(start[k] + offset + l)], target + l, coefficient);
      ++log.drawn;
    }
  }
};

// v of 8 conversions of one column with partial sums p.
// Without noise (kNoise false): the code of the exact level (table gather, or the linear formula
// in AdcBank::level's operations), as AdcBank::convert.
// With noise: the fast decision for the coarse values at `coarse`: the bounds lo = E[b] - m and
// hi = E[b+1] + m of their buckets (pim/gaussian.h), the margin m folded into the constants. The
// level is the exact one (table gather) or, on the linear model (plan.fast_levels), l' = fma(slope,
// p - p_lo, offset), within a few ulp of it. With e = plan.decision_margin (>= 256 ulp of every
// magnitude involved, make_plan) and the computed
//   c_lo = fma(sigma, E[b], l') + (1/2 - e - sigma m),
//   c_hi = fma(sigma, E[b+1], l') + (1/2 + e + sigma m),
// every real x in [sigma lo + l, sigma hi + l] (l the exact level) has x + 1/2 in
// (c_lo + e/2, c_hi - e/2); so when k = floor(c_lo) and c_hi < k + 1, the reference's
// floor(fl(fl(sigma z + l) + 1/2)) is k for every z of the bucket, and its code is clamp(k). The
// clamps also decide when k >= max_code (all codes max_code) or c_hi < 1 (all codes 0). Infinite
// bounds give infinite c (never NaN) and decide only through the clamps. The undecided lanes
// (a mask) are stored to *straddle_out unconditionally; their code here is clamp(k) (lower_code).
template <bool kNoise>
PIMQAT_AVX512_INLINE __m256i convert8(const GemmPlan& plan, Index column, __m256i p, const std::uint16_t* coarse,
                                      const std::uint64_t* edge_pairs, std::uint8_t* straddle_out) {
  const __m512d max_code = _mm512_set1_pd(static_cast<double>(plan.max_code)), half = _mm512_set1_pd(0.5);
  __m512d code;
  if constexpr (!kNoise) {
    __m512d level;
    if (plan.levels) {
      level = _mm512_i32gather_pd(_mm256_sub_epi32(p, _mm256_set1_epi32(static_cast<int>(plan.p_lo))),
                                  plan.levels + column * plan.level_stride, 8);
    } else {
      const __m512d gain = _mm512_set1_pd(plan.gains ? plan.gains[column] : 1.0);
      const __m512d offset = _mm512_set1_pd(plan.offsets ? plan.offsets[column] : 0.0);
      const __m512d shifted = _mm512_sub_pd(_mm512_cvtepi32_pd(p), _mm512_set1_pd(plan.adc_p_lo));
      level = _mm512_add_pd(_mm512_div_pd(_mm512_mul_pd(gain, shifted), _mm512_set1_pd(plan.delta)), offset);
    }
    code = _mm512_roundscale_pd(_mm512_add_pd(level, half), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    code = _mm512_min_pd(_mm512_max_pd(code, _mm512_setzero_pd()), max_code);
  } else {
    __m512d level;
    if (plan.fast_levels) {
      const __m512d slope = _mm512_set1_pd(plan.slopes ? plan.slopes[column] : plan.slope);
      const __m512d offset = _mm512_set1_pd(plan.offsets ? plan.offsets[column] : 0.0);
      level = _mm512_fmadd_pd(slope, _mm512_sub_pd(_mm512_cvtepi32_pd(p), _mm512_set1_pd(plan.adc_p_lo)), offset);
    } else {
      level = _mm512_i32gather_pd(_mm256_sub_epi32(p, _mm256_set1_epi32(static_cast<int>(plan.p_lo))),
                                  plan.levels + column * plan.level_stride, 8);
    }
    const __m256i bucket = _mm256_srli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(coarse))), kThermalCoarseShift);
    const __m512i pair =
        _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15),
                                 _mm512_i32gather_epi64(bucket, edge_pairs, 4));
    const __m512d lower_edge = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_castsi512_ps(pair)));
    const __m512d upper_edge = _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(pair, 1)));
    const Decision decision(plan);
    const __m512d sigma = _mm512_set1_pd(plan.sigma), one = _mm512_set1_pd(1.0);
    const __m512d below = _mm512_set1_pd(decision.below), above = _mm512_set1_pd(decision.above);
    const __m512d k = _mm512_roundscale_pd(_mm512_add_pd(_mm512_fmadd_pd(sigma, lower_edge, level), below),
                                           _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512d c_hi = _mm512_add_pd(_mm512_fmadd_pd(sigma, upper_edge, level), above);
    __mmask8 straddle = _mm512_cmp_pd_mask(k, max_code, _CMP_LT_OQ);
    straddle = _mm512_mask_cmp_pd_mask(straddle, c_hi, one, _CMP_GE_OQ);
    straddle = _mm512_mask_cmp_pd_mask(straddle, c_hi, _mm512_add_pd(k, one), _CMP_GE_OQ);
    code = _mm512_min_pd(_mm512_max_pd(k, _mm512_setzero_pd()), max_code);
    *straddle_out = straddle;
  }
  const __m256i codes = _mm512_cvttpd_epi32(code);
  if (plan.code_value) return _mm256_i32gather_epi32(plan.code_value, codes, 4);
  return codes;
}

// Coarse values of every column of one batch (column c = column_begin + c of the layer, c <
// columns) over `tile_pixels` pixels from pixel0. The pixels are consecutive and so are their
// conversions: conversion_index is pixel-major, j(pixel + l) = j(pixel) + l (checked on the first
// column; lanes past the last pixel read conversions of the next column and are never stored).
PIMQAT_AVX512 void tile_coarse(const GemmPlan& plan, const PhiloxKeys& keys, Index column_begin, Index columns, int s,
                               Index pixel0, Index tile_pixels, NoiseScratch& scratch) {
  const auto kTile = static_cast<std::uint64_t>(tile_pixels);
  scratch.start.resize(static_cast<std::size_t>(columns));
  scratch.j0.resize(static_cast<std::size_t>(columns));
  scratch.blocks.resize(static_cast<std::size_t>(columns) * (kTile / 8 + 2));
  std::uint64_t* blocks = scratch.blocks.data();
  std::size_t n = 0;
  // Column c + 1's conversions follow column c's by S P (conversion_index).
  const std::uint64_t first_j0 = conversion_index(column_begin, s, plan.slices, pixel0, plan.pixels);
  const std::uint64_t column_stride =
      conversion_index(column_begin + 1, s, plan.slices, pixel0, plan.pixels) - first_j0;
  PIMQAT_ASSERT(conversion_index(column_begin, s, plan.slices, pixel0 + tile_pixels - 1, plan.pixels) ==
                first_j0 + kTile - 1);
  for (Index c = 0; c < columns; ++c) {
    const std::uint64_t j0 = first_j0 + static_cast<std::uint64_t>(c) * column_stride;
    const std::uint64_t first = thermal_coarse_block(j0), last = thermal_coarse_block(j0 + kTile - 1);
    scratch.start[static_cast<std::size_t>(c)] = static_cast<Index>(n * 8 + (j0 & 7u));
    scratch.j0[static_cast<std::size_t>(c)] = j0;
    for (std::uint64_t b = first; b <= last; ++b) blocks[n++] = b;
  }
  scratch.coarse.resize((n + 8) * 8);
  philox_blocks(keys, blocks, static_cast<Index>(n), reinterpret_cast<std::uint32_t*>(scratch.coarse.data()));
}

// ---------------------------------------------------------------------------------------------
// Differential and native (byte lanes, N <= 255): partial sums per pixel in int32 lanes
// (16 pixels), then the ADC on int32 lanes: table gathers or the noise path.

// v of 16 pixels of one column (layer column `column`, batch column c; Noisy: the halves are the
// log's groups 2 c and 2 c + 1).
PIMQAT_AVX512_INLINE __m512i adc16(const GemmPlan& plan, __m512i p, Index column, const NoiseScratch& scratch, Index c,
                                   const std::uint64_t* edge_pairs, StraddleLog& log) {
  switch (plan.path) {
    case AdcPath::Lossless: return p;
    case AdcPath::SharedTable: {
      if (plan.linear_codes) {  // GemmPlan::linear_codes: the formula the plan checked point by point
        const __m512 e = _mm512_roundscale_ps(
            _mm512_fmadd_ps(_mm512_set1_ps(plan.code_scale), _mm512_cvtepi32_ps(p), _mm512_set1_ps(plan.code_offset)),
            _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        const __m512 code = _mm512_min_ps(_mm512_max_ps(e, _mm512_setzero_ps()),
                                          _mm512_set1_ps(static_cast<float>(plan.max_code)));
        __m512i v = _mm512_cvttps_epi32(code);
        for (int i = 0; i < plan.code_exceptions; ++i)
          v = _mm512_mask_mov_epi32(v, _mm512_cmpeq_epi32_mask(p, _mm512_set1_epi32(plan.exception_p[i])),
                                    _mm512_set1_epi32(plan.exception_code[i]));
        return v;
      }
      return _mm512_i32gather_epi32(_mm512_sub_epi32(p, _mm512_set1_epi32(static_cast<int>(plan.p_lo))), plan.table, 4);
    }
    case AdcPath::ColumnTable:
      return _mm512_i32gather_epi32(_mm512_sub_epi32(p, _mm512_set1_epi32(static_cast<int>(plan.p_lo))),
                                    plan.table + column * plan.points, 4);
    case AdcPath::Noisy: {
      __m256i half[2];
      for (int h = 0; h < 2; ++h) {
        const __m256i ph = h == 0 ? _mm512_castsi512_si256(p) : _mm512_extracti64x4_epi64(p, 1);
        half[h] = plan.sigma == 0.0
                      ? convert8<false>(plan, column, ph, nullptr, nullptr, nullptr)
                      : convert8<true>(plan, column, ph, scratch.coarse8(c, h * kL), edge_pairs, log.mask(2 * c + h));
      }
      return _mm512_inserti64x4(_mm512_castsi256_si512(half[0]), half[1], 1);
    }
    case AdcPath::Direct: break;
  }
  return p;  // not reached: the entry point rejects Direct
}

// Byte coefficients of one pass: slot k -> values[k] (int8).
PIMQAT_AVX512_INLINE __m512i slot_bytes(std::int8_t v0, std::int8_t v1, std::int8_t v2, std::int8_t v3) {
  const std::uint32_t word = static_cast<std::uint8_t>(v0) | static_cast<std::uint32_t>(static_cast<std::uint8_t>(v1)) << 8 |
                             static_cast<std::uint32_t>(static_cast<std::uint8_t>(v2)) << 16 |
                             static_cast<std::uint32_t>(static_cast<std::uint8_t>(v3)) << 24;
  return _mm512_set1_epi32(static_cast<int>(word));
}

template <Scheme kScheme, int kChunks>
PIMQAT_AVX512 void signed_schemes(const GemmPlan& plan) {
  constexpr bool kDifferential = kScheme == Scheme::Differential;
  constexpr int kColumns = kDifferential ? 2 : 1;  // columns per (g, o): polarities
  const Index out_channels = plan.out_channels, groups = plan.groups;
  const int a_bits = plan.act_bits, chunks = kChunks > 0 ? kChunks : plan.chunks, passes = plan.passes;
  const bool noisy = plan.path == AdcPath::Noisy;
  const std::vector<std::uint32_t> w8 = byte_weights(plan);
  const Index w_group = passes * 2 * chunks;
  // Per pass: differential (2^u0, 2^u1, 0, 0) and (0, 0, 2^u0, 2^u1) for W+ and W-; native c_t.
  AlignedScratch coefficient_storage(static_cast<std::size_t>(2 * passes) * sizeof(__m512i));
  auto* coefficients = static_cast<__m512i*>(coefficient_storage.data());
  for (int tp = 0; tp < passes; ++tp) {
    if constexpr (kDifferential) {
      const int u0 = 2 * tp, u1 = 2 * tp + 1;
      const auto c0 = static_cast<std::int8_t>(u0 < plan.weight_bits ? (1 << u0) : 0);
      const auto c1 = static_cast<std::int8_t>(u1 < plan.weight_bits ? (u1 == 7 ? 0 : (1 << u1)) : 0);
      coefficients[2 * tp] = slot_bytes(c0, c1, 0, 0);
      coefficients[2 * tp + 1] = slot_bytes(0, 0, c0, c1);
    } else {
      std::int8_t c[4];
      for (int k = 0; k < 4; ++k) {
        const int t = tp * kPimSlots + k;
        c[k] = t < plan.weight_bits ? static_cast<std::int8_t>(plan.weight_coefficient(t)) : 0;
      }
      coefficients[2 * tp] = slot_bytes(c[0], c[1], c[2], c[3]);
    }
  }
  // Differential magnitudes use bits u < b_w; bit 7 (weight 128) only for W- = 128 with b_w = 8,
  // which int8 cannot hold: the entry point excludes b_w = 8 for differential.
  const Index pairs = (plan.blocks + 1) / 2;
  const bool noise = noisy && plan.sigma != 0.0;
  const std::uint64_t* edge_pairs = bucket_edge_pairs();
  PimMoments total;
#pragma omp parallel
  {
    const Index sums_per_tile = out_channels * kColumns;
    AlignedScratch storage(static_cast<std::size_t>(2 * out_channels + sums_per_tile + 2 * chunks) * sizeof(__m512i));
    auto* acc = static_cast<__m512i*>(storage.data());
    __m512i* exact = acc + out_channels;
    __m512i* sums = exact + out_channels;  // p per (o, column)
    __m512i* x = sums + sums_per_tile;
    NoiseScratch scratch;
    StraddleLog log;
    if (noise) log.resize(2 * sums_per_tile);
    const PhiloxKeys keys = philox_keys(plan.noise);
    VectorMoments moments;
    moments_reset(moments, plan.max_output);
    const __m512i index0 = byte_expand_index(0), index1 = byte_expand_index(1);
#pragma omp for schedule(dynamic, 8)
    for (Index pair = 0; pair < pairs; ++pair) {
      const Index b0 = 2 * pair, b1 = b0 + 1;
      const bool has_b1 = b1 < plan.blocks;
      const Index pixel0 = b0 * kL;
      for (Index o = 0; o < out_channels; ++o) acc[o] = exact[o] = _mm512_setzero_si512();
      for (Index g = 0; g < groups; ++g) {
        const int rounds = kDifferential ? a_bits : 1;  // conversions per (g, o, column)
        for (int round = 0; round < rounds; ++round) {
          for (Index k = 0; k < sums_per_tile; ++k) sums[k] = _mm512_setzero_si512();
          const int s_begin = kDifferential ? round : 0, s_end = kDifferential ? round + 1 : a_bits;
          for (int s = s_begin; s < s_end; ++s) {
            const Index offset = (g * a_bits + s) * chunks * kL;
            ByteChunks<kChunks> xc;
            xc.scratch = x;
            xc.n = 2 * chunks;
            xc.load(plan.x + b0 * plan.x_block_stride + offset,
                    has_b1 ? plan.x + b1 * plan.x_block_stride + offset : nullptr, index0, index1);
            for (Index o = 0; o < out_channels; ++o) {
              const std::uint32_t* wg = w8.data() + (o * groups + g) * w_group;
              if constexpr (kDifferential) {
                __m512i plus = sums[2 * o], minus = sums[2 * o + 1];
                for (int tp = 0; tp < passes; ++tp) {
                  const __m512i cnt = xc.count(wg + tp * 2 * chunks);
                  plus = _mm512_dpbusd_epi32(plus, cnt, coefficients[2 * tp]);
                  minus = _mm512_dpbusd_epi32(minus, cnt, coefficients[2 * tp + 1]);
                }
                sums[2 * o] = plus;
                sums[2 * o + 1] = minus;
              } else {
                __m512i part = _mm512_setzero_si512();
                for (int tp = 0; tp < passes; ++tp)
                  part = _mm512_dpbusd_epi32(part, xc.count(wg + tp * 2 * chunks), coefficients[2 * tp]);
                sums[o] = _mm512_add_epi32(sums[o], _mm512_slli_epi32(part, static_cast<unsigned>(s)));
              }
            }
          }
          const int s = round;  // differential: the input bit of this round; native: slice 0
          const Index column_begin = g * out_channels * kColumns;
          if (noise) tile_coarse(plan, keys, column_begin, sums_per_tile, s, pixel0, 2 * kL, scratch);
          for (Index o = 0; o < out_channels; ++o) {
            if constexpr (kDifferential) {
              const Index column = column_begin + 2 * o;
              const __m512i v =
                  _mm512_sub_epi32(adc16(plan, sums[2 * o], column, scratch, 2 * o, edge_pairs, log),
                                   adc16(plan, sums[2 * o + 1], column + 1, scratch, 2 * o + 1, edge_pairs, log));
              const __m128i shift = _mm_cvtsi32_si128(s);
              acc[o] = _mm512_add_epi32(acc[o], _mm512_sll_epi32(v, shift));
              exact[o] = _mm512_add_epi32(exact[o], _mm512_sll_epi32(_mm512_sub_epi32(sums[2 * o], sums[2 * o + 1]), shift));
            } else {
              acc[o] = _mm512_add_epi32(acc[o], adc16(plan, sums[o], column_begin + o, scratch, o, edge_pairs, log));
              exact[o] = _mm512_add_epi32(exact[o], sums[o]);
            }
          }
          // The straddling conversions of this (g, round).
          if (noise) {
            for (Index c = 0; c < sums_per_tile; ++c)
              for (int h = 0; h < 2; ++h)
                if (const std::uint8_t lanes = log.masks[static_cast<std::size_t>(2 * c + h)]; lanes != 0) {
                  const Index o = c / kColumns;
                  const std::int32_t coefficient = kDifferential ? (c % 2 == 0 ? 1 : -1) * (1 << s) : 1;
                  scratch.settle(plan, lanes, c, h * kL, column_begin + c,
                                 reinterpret_cast<const std::int32_t*>(sums + c) + h * kL,
                                 reinterpret_cast<std::int32_t*>(acc + o) + h * kL, coefficient, log);
                }
          }
        }
      }
      for (Index o = 0; o < out_channels; ++o) {
        store_outputs(plan, moments, o, pixel0, std::min(kL, plan.pixels - pixel0), _mm512_castsi512_si256(acc[o]),
                      _mm512_castsi512_si256(exact[o]));
        if (has_b1)
          store_outputs(plan, moments, o, pixel0 + kL, std::min(kL, plan.pixels - pixel0 - kL),
                        _mm512_extracti64x4_epi64(acc[o], 1), _mm512_extracti64x4_epi64(exact[o], 1));
      }
    }
    moments_flush(moments);
    count_thermal_fine_conversions(log.drawn);
#pragma omp critical(pimqat_pim_moments)
    total.merge(moments.total);
  }
  if (plan.moments) plan.moments->merge(total);
}

template <Scheme kScheme>
PIMQAT_AVX512 bool signed_scheme_entry(const GemmPlan& plan) {
  if (plan.rows > 255) return false;
  if (kScheme == Scheme::Differential && plan.weight_bits > 7) return false;
  if (plan.path == AdcPath::Direct || (plan.path == AdcPath::Noisy && !plan.bulk_noise())) return false;
  const bool formula = plan.path == AdcPath::SharedTable && plan.linear_codes;
  if constexpr (kScheme == Scheme::Differential)
    set_kernel_route(formula ? "avx512 differential bytes, code formula" : "avx512 differential bytes");
  else
    set_kernel_route(formula ? "avx512 native bytes, code formula" : "avx512 native bytes");
  switch (plan.chunks) {
    case 1: signed_schemes<kScheme, 1>(plan); return true;
    case 5: signed_schemes<kScheme, 5>(plan); return true;
    case 9: signed_schemes<kScheme, 9>(plan); return true;
    default: signed_schemes<kScheme, 0>(plan); return true;
  }
}

// ---------------------------------------------------------------------------------------------
// Bit-serial with thermal noise.

template <int kChunks, bool kNoise>
PIMQAT_AVX512 void bitserial_noisy(const GemmPlan& plan) {
  const Index out_channels = plan.out_channels, groups = plan.groups;
  const int a_bits = plan.act_bits, chunks = kChunks > 0 ? kChunks : plan.chunks, passes = plan.passes;
  const int T = plan.column_slices;
  const Index tiles = (plan.blocks + kTileBlocks - 1) / kTileBlocks;
  AlignedScratch coefficient_storage(static_cast<std::size_t>(a_bits * passes) * sizeof(__m512i));
  auto* coefficients = static_cast<__m512i*>(coefficient_storage.data());
  for (int s = 0; s < a_bits; ++s)
    for (int tp = 0; tp < passes; ++tp) coefficients[s * passes + tp] = bitserial_coefficients(plan, s, tp);
  const std::uint64_t* edge_pairs = bucket_edge_pairs();
  PimMoments total;
#pragma omp parallel
  {
    const Index per_tile = out_channels * kTileBlocks;
    AlignedScratch storage(static_cast<std::size_t>(per_tile * (passes + 1) + chunks) * sizeof(__m512i) +
                           static_cast<std::size_t>(per_tile) * sizeof(__m256i));
    auto* counts = static_cast<__m512i*>(storage.data());
    __m512i* exact = counts + per_tile * passes;
    __m512i* x = exact + per_tile;
    auto* acc = reinterpret_cast<__m256i*>(x + chunks);
    NoiseScratch scratch;
    StraddleLog log;
    if (kNoise) log.resize(out_channels * T * kTileBlocks);
    const PhiloxKeys keys = philox_keys(plan.noise);
    VectorMoments moments;
    moments_reset(moments, plan.max_output);
    const __m512i expand = expand_index(), slot_major = slot_major_index();
#pragma omp for schedule(dynamic, 1)
    for (Index tile = 0; tile < tiles; ++tile) {
      const Index block0 = tile * kTileBlocks, sub_blocks = std::min<Index>(kTileBlocks, plan.blocks - block0);
      const Index pixel0 = block0 * kL;
      for (Index k = 0; k < per_tile; ++k) {
        exact[k] = _mm512_setzero_si512();
        acc[k] = _mm256_setzero_si256();
      }
      for (Index g = 0; g < groups; ++g) {
        for (int s = 0; s < a_bits; ++s) {
          // 1. Partial sums of every (o, pass, block) and their exact products.
          for (Index sub = 0; sub < sub_blocks; ++sub) {
            Chunks<kChunks> xc;
            xc.scratch = x;
            xc.n = chunks;
            xc.load(plan.x + (block0 + sub) * plan.x_block_stride + (g * a_bits + s) * chunks * kL, expand);
            for (Index o = 0; o < out_channels; ++o) {
              const std::uint16_t* wg = plan.w + o * plan.w_channel_stride + g * passes * chunks * kPimSlots;
              __m512i& y = exact[o * kTileBlocks + sub];
              for (int tp = 0; tp < passes; ++tp) {
                const __m512i cnt = xc.count(wg + tp * chunks * kPimSlots);
                counts[(o * passes + tp) * kTileBlocks + sub] = cnt;
                y = _mm512_add_epi32(y, _mm512_madd_epi16(cnt, coefficients[s * passes + tp]));
              }
            }
          }
          // 2. The coarse noise of all columns of (g, s) over the tile.
          if (kNoise)
            tile_coarse(plan, keys, g * out_channels * T, out_channels * T, s, pixel0, kTileBlocks * kL, scratch);
          // 3. Conversions, A += 2^s c_t v.
          for (Index o = 0; o < out_channels; ++o) {
            const Index column0 = (g * out_channels + o) * T;
            for (int tp = 0; tp < passes; ++tp) {
              for (Index sub = 0; sub < sub_blocks; ++sub) {
                const __m512i cnt = _mm512_permutexvar_epi16(
                    slot_major, counts[(o * passes + tp) * kTileBlocks + sub]);
                __m256i& a = acc[o * kTileBlocks + sub];
                for (int k = 0; k < kPimSlots; ++k) {
                  const int t = tp * kPimSlots + k;
                  if (t >= T) break;
                  const __m128i lane = k == 0   ? _mm512_extracti32x4_epi32(cnt, 0)
                                       : k == 1 ? _mm512_extracti32x4_epi32(cnt, 1)
                                       : k == 2 ? _mm512_extracti32x4_epi32(cnt, 2)
                                                : _mm512_extracti32x4_epi32(cnt, 3);
                  const Index group = (o * T + t) * kTileBlocks + sub;  // of the straddle log
                  const __m256i v =
                      kNoise
                          ? convert8<true>(plan, column0 + t, _mm256_cvtepu16_epi32(lane),
                                           scratch.coarse8(o * T + t, sub * kL), edge_pairs, log.mask(group))
                          : convert8<false>(plan, column0 + t, _mm256_cvtepu16_epi32(lane), nullptr, nullptr, nullptr);
                  const __m256i shifted = _mm256_sll_epi32(v, _mm_cvtsi32_si128(s + t));
                  a = t == plan.weight_bits - 1 ? _mm256_sub_epi32(a, shifted) : _mm256_add_epi32(a, shifted);
                }
              }
            }
          }
          // 4. The straddling conversions of (g, s).
          if (kNoise) {
            for (Index c = 0; c < out_channels * T; ++c)
              for (Index sub = 0; sub < sub_blocks; ++sub)
                if (const std::uint8_t lanes = log.masks[static_cast<std::size_t>(c * kTileBlocks + sub)]; lanes != 0) {
                  const Index o = c / T;
                  const int t = static_cast<int>(c % T);
                  // p of pixel l and slot t % 4 is 16-bit lane 4 l + t % 4 of its pass's counts.
                  const auto* count =
                      reinterpret_cast<const std::uint16_t*>(counts + (o * passes + t / kPimSlots) * kTileBlocks + sub);
                  std::int32_t p[kL];
                  for (Index l = 0; l < kL; ++l) p[l] = count[kPimSlots * l + t % kPimSlots];
                  const std::int32_t coefficient = (t == plan.weight_bits - 1 ? -1 : 1) * (1 << (s + t));
                  scratch.settle(plan, lanes, c, sub * kL, (g * out_channels + o) * T + t, p,
                                 reinterpret_cast<std::int32_t*>(acc + o * kTileBlocks + sub), coefficient, log);
                }
          }
        }
      }
      for (Index sub = 0; sub < sub_blocks; ++sub) {
        const Index pixel = pixel0 + sub * kL, valid = std::min(kL, plan.pixels - pixel);
        for (Index o = 0; o < out_channels; ++o)
          store_outputs(plan, moments, o, pixel, valid, acc[o * kTileBlocks + sub],
                        sum_pairs(exact[o * kTileBlocks + sub]));
      }
    }
    moments_flush(moments);
    count_thermal_fine_conversions(log.drawn);
#pragma omp critical(pimqat_pim_moments)
    total.merge(moments.total);
  }
  if (plan.moments) plan.moments->merge(total);
}

// ---------------------------------------------------------------------------------------------
// Dispatch on chunk count and ADC.

template <class Adc>
PIMQAT_AVX512 void bitserial_fixed_chunks(const GemmPlan& plan, const Adc& adc) {
  switch (plan.chunks) {
    case 1: bitserial_fixed<1>(plan, adc); return;
    case 2: bitserial_fixed<2>(plan, adc); return;
    case 3: bitserial_fixed<3>(plan, adc); return;
    case 5: bitserial_fixed<5>(plan, adc); return;
    case 9: bitserial_fixed<9>(plan, adc); return;
    default: bitserial_fixed<0>(plan, adc); return;
  }
}

// bitserial_noisy for the plan's chunk count (kNoise false: a die without noise, sigma = 0).
template <bool kNoise>
PIMQAT_AVX512 void bitserial_noisy_chunks(const GemmPlan& plan) {
  switch (plan.chunks) {
    case 1: bitserial_noisy<1, kNoise>(plan); return;
    case 5: bitserial_noisy<5, kNoise>(plan); return;
    case 9: bitserial_noisy<9, kNoise>(plan); return;
    default: bitserial_noisy<0, kNoise>(plan); return;
  }
}

PIMQAT_AVX512 bool bitserial(const GemmPlan& plan) {
  if (bitserial_bytes_if_possible(plan)) return true;
  if (plan.rows > 4096 || plan.max_value > 32767) return false;
  switch (plan.path) {
    case AdcPath::Lossless:
      set_kernel_route("avx512 bit-serial words, lossless");
      bitserial_fixed_chunks(plan, LosslessAdc{});
      return true;
    case AdcPath::SharedTable: {
      if (plan.points <= 256) {
        set_kernel_route("avx512 bit-serial words, table");
        alignas(64) std::int16_t table[256] = {};
        for (std::int64_t k = 0; k < plan.points; ++k) table[k] = static_cast<std::int16_t>(plan.table[k]);
        switch ((plan.points + 63) / 64) {
          case 1: bitserial_fixed_chunks(plan, PermuteAdc<1>(table)); return true;
          case 2: bitserial_fixed_chunks(plan, PermuteAdc<2>(table)); return true;
          case 3: bitserial_fixed_chunks(plan, PermuteAdc<3>(table)); return true;
          default: bitserial_fixed_chunks(plan, PermuteAdc<4>(table)); return true;
        }
      }
      set_kernel_route("avx512 bit-serial words, table gather");
      bitserial_fixed_chunks(plan, GatherAdc{plan.table, 0, plan.weight_bits});
      return true;
    }
    case AdcPath::ColumnTable:
      set_kernel_route("avx512 bit-serial words, column tables");
      bitserial_fixed_chunks(plan, GatherAdc{plan.table, static_cast<Index>(plan.points), plan.weight_bits});
      return true;
    case AdcPath::Noisy:
      if (!plan.bulk_noise()) return false;
      set_kernel_route(plan.sigma == 0.0 ? "avx512 bit-serial, level formula" : "avx512 bit-serial, noise");
      if (plan.sigma == 0.0) bitserial_noisy_chunks<false>(plan);
      else bitserial_noisy_chunks<true>(plan);
      return true;
    case AdcPath::Direct: return false;
  }
  return false;
}

}  // namespace

PIMQAT_AVX512 bool gemm_avx512(const GemmPlan& plan) {
  // 32-bit sums everywhere; the word-lane bit-serial path also needs 16-bit counts and values.
  if (plan.max_output >= (std::int64_t{1} << 31) - 1) return false;
  switch (plan.scheme) {
    case Scheme::BitSerial: return bitserial(plan);
    case Scheme::Differential: return signed_scheme_entry<Scheme::Differential>(plan);
    case Scheme::Native: return signed_scheme_entry<Scheme::Native>(plan);
  }
  return false;
}

PIMQAT_AVX512 void extract_bits_avx512(const std::uint8_t* tile, Index groups, int chunks, int planes,
                                       std::uint16_t* out) {
  const __m512i low = _mm512_load_si512(kTransposeLow.data()), high = _mm512_load_si512(kTransposeHigh.data());
  for (Index g = 0; g < groups; ++g)
    for (int c = 0; c < chunks; ++c) {
      const std::uint8_t* rows = tile + (g * chunks + c) * kPimChunkRows * kL;
      const __m512i a = _mm512_loadu_si512(rows), b = _mm512_loadu_si512(rows + 64);
      const __m512i pixels_low = _mm512_permutex2var_epi8(a, low, b);
      const __m512i pixels_high = _mm512_permutex2var_epi8(a, high, b);
      for (int s = 0; s < planes; ++s) {
        const __m512i bit = _mm512_set1_epi8(static_cast<char>(1u << s));
        const std::uint64_t m0 = _mm512_test_epi8_mask(pixels_low, bit), m1 = _mm512_test_epi8_mask(pixels_high, bit);
        std::uint16_t* dst = out + ((g * planes + s) * chunks + c) * kL;
        std::memcpy(dst, &m0, sizeof m0);
        std::memcpy(dst + 4, &m1, sizeof m1);
      }
    }
}

PIMQAT_AVX512 bool convert_row_avx512(const float* src, Index n, Index step, const RowFormat& format,
                                      std::uint8_t* dst) {
  const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(format.max_value);
  const __m512 alpha = _mm512_set1_ps(format.alpha), to_integer = _mm512_set1_ps(format.to_integer);
  // Element offsets of a strided row (one gather per 16 elements); rows of blocked activations are
  // short (their width), so the offsets fit in 32 bits.
  const __m512i offsets = _mm512_mullo_epi32(_mm512_set1_epi32(static_cast<int>(step)),
                                             _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  __mmask16 bad = 0;
  Index i = 0;
  for (; i < n; i += 16) {
    const auto live = static_cast<__mmask16>(n - i >= 16 ? 0xFFFF : (1u << (n - i)) - 1u);
    const __m512 v = step == 1 ? _mm512_maskz_loadu_ps(live, src + i)
                               : _mm512_mask_i32gather_ps(zero, live, offsets, src + i * step, 4);
    __m512i ints;
    if (format.quantize) {
      // nn::activation_integer: nearbyint(min(max(x, 0), alpha) * to_integer) (a -0 from max is
      // the same integer 0); only NaN is bad.
      const __mmask16 good = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
      bad = static_cast<__mmask16>(bad | (live & ~good));
      const __m512 clipped = _mm512_min_ps(_mm512_max_ps(v, zero), alpha);
      ints = _mm512_maskz_cvtps_epi32(
          good, _mm512_roundscale_ps(_mm512_mul_ps(clipped, to_integer), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else {
      // not (v >= 0 and v <= max and v == floor(v)); NaN compares unordered: bad.
      const __mmask16 good = _mm512_cmp_ps_mask(v, zero, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, top, _CMP_LE_OQ) &
                             _mm512_cmp_ps_mask(v, _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC),
                                                _CMP_EQ_OQ);
      bad = static_cast<__mmask16>(bad | (live & ~good));
      ints = _mm512_cvttps_epi32(_mm512_maskz_mov_ps(good, v));
    }
    _mm_mask_storeu_epi8(dst + i, live, _mm512_cvtepi32_epi8(ints));
  }
  return bad == 0;
}

// Gathers the 16 rows of a chunk for 8 pixels: for every run of consecutive lanes, one 8-byte load
// per row at the run's base shifted back by its first lane, merged by byte masks.
PIMQAT_AVX512 void pack_block_avx512(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out) {
  Index run_start[kL], run_count = 0;
  for (Index l = 0; l < valid; ++l)
    if (l == 0 || base[l] != base[l - 1] + 1) run_start[run_count++] = l;
  std::uint64_t run_mask[kL];
  long long run_origin[kL];
  for (Index r = 0; r < run_count; ++r) {
    const Index end = r + 1 < run_count ? run_start[r + 1] : valid;
    std::uint64_t lanes = 0;
    for (Index l = run_start[r]; l < end; ++l) lanes |= std::uint64_t{1} << l;
    // Byte mask over the 8 qwords (rows) of a register: lane bits repeated per row.
    run_mask[r] = lanes * 0x0101010101010101ull;
    run_origin[r] = static_cast<long long>(base[run_start[r]] - run_start[r]);
  }
  const __m512i low = _mm512_load_si512(kTransposeLow.data()), high = _mm512_load_si512(kTransposeHigh.data());
  const Index tile_rows = src.groups * src.chunks;
  for (Index gc = 0; gc < tile_rows; ++gc) {
    const Index* offsets = src.row_offset + gc * kPimChunkRows;
    const __m512i off_a = _mm512_loadu_si512(offsets), off_b = _mm512_loadu_si512(offsets + 8);
    const __mmask8 live_a = _mm512_cmpge_epi64_mask(off_a, _mm512_setzero_si512());
    const __mmask8 live_b = _mm512_cmpge_epi64_mask(off_b, _mm512_setzero_si512());
    __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
    for (Index r = 0; r < run_count; ++r) {
      const __m512i origin = _mm512_set1_epi64(run_origin[r]);
      const __m512i ga = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), live_a, _mm512_add_epi64(off_a, origin),
                                                     src.source, 1);
      const __m512i gb = _mm512_mask_i64gather_epi64(_mm512_setzero_si512(), live_b, _mm512_add_epi64(off_b, origin),
                                                     src.source, 1);
      a = _mm512_mask_blend_epi8(run_mask[r], a, ga);
      b = _mm512_mask_blend_epi8(run_mask[r], b, gb);
    }
    const __m512i pixels_low = _mm512_permutex2var_epi8(a, low, b);
    const __m512i pixels_high = _mm512_permutex2var_epi8(a, high, b);
    const Index g = gc / src.chunks, c = gc % src.chunks;
    for (int s = 0; s < src.planes; ++s) {
      const __m512i bit = _mm512_set1_epi8(static_cast<char>(1u << s));
      const std::uint64_t m0 = _mm512_test_epi8_mask(pixels_low, bit), m1 = _mm512_test_epi8_mask(pixels_high, bit);
      std::uint16_t* dst = out + ((g * src.planes + s) * src.chunks + c) * kL;
      std::memcpy(dst, &m0, sizeof m0);
      std::memcpy(dst + 4, &m1, sizeof m1);
    }
  }
}

PIMQAT_AVX512 std::uint64_t thermal_codes_avx512(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma,
                                                 const Adc& adc, const double* levels, std::int32_t* codes) {
  // The kernels' noise path on batches of 512 conversions of one column, whose level table is the
  // batch's levels (p = the index in the batch).
  constexpr Index kBatch = 512;
  const AdcBank bank(adc);
  GemmPlan plan = thermal_plan(stream, sigma, bank);
  const PhiloxKeys keys = philox_keys(stream);
  const std::uint64_t* edge_pairs = bucket_edge_pairs();
  std::vector<double> level_batch(kBatch);
  alignas(64) std::int32_t values[kBatch];
  NoiseScratch scratch;
  StraddleLog log;
  log.resize(kBatch / kL);
  // The decision margin as make_plan sets it, from the largest |level|.
  __m512d largest[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
  Index at = 0;
  for (; at + 4 * kL <= count; at += 4 * kL)
    for (int k = 0; k < 4; ++k)
      largest[k] = _mm512_max_pd(largest[k], _mm512_abs_pd(_mm512_loadu_pd(levels + at + k * kL)));
  double max_level =
      _mm512_reduce_max_pd(_mm512_max_pd(_mm512_max_pd(largest[0], largest[1]), _mm512_max_pd(largest[2], largest[3])));
  for (; at < count; ++at) max_level = std::max(max_level, std::abs(levels[at]));
  plan.decision_margin = std::ldexp(1.0, std::ilogb(max_level + 8.0 * sigma + 2.0) + 1 - 44);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (Index i0 = 0; i0 < count; i0 += kBatch) {
    const Index n = std::min(kBatch, count - i0);  // a last partial batch: lanes past n at level 0, never kept
    if (n == kBatch) {
      plan.levels = levels + i0;
    } else {
      std::fill(std::copy(levels + i0, levels + i0 + n, level_batch.begin()), level_batch.end(), 0.0);
      plan.levels = level_batch.data();
    }

    // One column of `kBatch` pixels whose conversions start at j0 + i0 (conversion_index(0, 0, 1,
    // pixel, pixels) = pixel: pixel = j0 + i0 + l).
    plan.slices = 1;
    plan.pixels = static_cast<Index>(j0 + static_cast<std::uint64_t>(i0)) + kBatch;
    tile_coarse(plan, keys, 0, 1, 0, static_cast<Index>(j0 + static_cast<std::uint64_t>(i0)), kBatch, scratch);
    for (Index i = 0; i < n; i += kL) {
      const __m256i p = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(i)), lanes);
      _mm256_store_si256(reinterpret_cast<__m256i*>(values + i),
                         convert8<true>(plan, 0, p, scratch.coarse8(0, i), edge_pairs, log.mask(i / kL)));
    }
    for (Index i = 0; i < n; i += kL) {
      std::int32_t p[kL];
      for (Index l = 0; l < kL; ++l) p[l] = static_cast<std::int32_t>(i + l);
      if (const std::uint8_t straddle = *log.mask(i / kL); straddle != 0)
        scratch.settle(plan, straddle, 0, i, 0, p, values + i, 1, log);
    }
    std::copy(values, values + n, codes + i0);
  }
  return log.drawn;
}

}  // namespace pimqat::pim::detail
