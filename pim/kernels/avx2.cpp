// The AVX2 path (AVX2, FMA, BMI2, POPCNT): the generic product of pim/kernels/generic_gemm.h with
// partial sums counted 8 pixels at a time (16-bit lanes; popcount by the nibble table and VPSHUFB)
// and the thermal-noise normals made 8 Box-Muller pairs at a time (Philox4x32-10 on 4 blocks per
// register), the operations of pim/gaussian.h in their order with explicit FMAs. Everything below
// the target pragma is compiled for AVX2 and has internal linkage except the entry points, which
// dispatch.cpp only calls where the CPU supports AVX2 (pim/kernels/dispatch.h).
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
constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

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

// Philox4x32-10 of 4 blocks (64-bit lanes: block index in, words in the low 32 bits out).
inline void philox4(const PhiloxWords& stream, __m256i blocks, __m256i& w0, __m256i& w1, __m256i& w2, __m256i& w3) {
  __m256i c0 = blocks, c1 = _mm256_shuffle_epi32(blocks, 0xF5);  // dwords (1, 1, 3, 3): the high half down
  __m256i c2 = _mm256_set1_epi64x(stream.counter_high[0]), c3 = _mm256_set1_epi64x(stream.counter_high[1]);
  const __m256i m0 = _mm256_set1_epi64x(kMul0), m1 = _mm256_set1_epi64x(kMul1);
  std::uint32_t k0 = stream.key[0], k1 = stream.key[1];
  for (int round = 0; round < 10; ++round) {
    const __m256i p0 = _mm256_mul_epu32(c0, m0), p1 = _mm256_mul_epu32(c2, m1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_shuffle_epi32(p1, 0xF5), c1), _mm256_set1_epi64x(k0));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_shuffle_epi32(p0, 0xF5), c3), _mm256_set1_epi64x(k1));
    c1 = p1;
    c3 = p0;
    c0 = n0;
    c2 = n2;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  w0 = c0;
  w1 = c1;
  w2 = c2;
  w3 = c3;
}

// The low dwords of two 4-lane registers as 8 lanes (a's then b's).
inline __m256i low_dwords(__m256i a, __m256i b) {
  const __m256i index = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  const __m256i pa = _mm256_permutevar8x32_epi32(a, index), pb = _mm256_permutevar8x32_epi32(b, index);
  return _mm256_permute2x128_si256(pa, pb, 0x20);
}

// gaussian_pair on 8 lanes.
inline void box_muller8(__m256i a, __m256i b, __m256& z0, __m256& z1) {
  using namespace gaussian_detail;
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256i m = _mm256_add_epi32(_mm256_srli_epi32(a, 8), _mm256_set1_epi32(1));
  const __m256i bits = _mm256_castps_si256(_mm256_cvtepi32_ps(m));  // m <= 2^24: exact
  __m256i exponent = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
  __m256 f = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F800000)));
  const __m256 big = _mm256_cmp_ps(f, _mm256_set1_ps(kSqrt2), _CMP_GT_OQ);
  f = _mm256_blendv_ps(f, _mm256_mul_ps(f, _mm256_set1_ps(0.5f)), big);
  exponent = _mm256_sub_epi32(exponent, _mm256_castps_si256(big));  // + 1 where big (mask = -1)
  const __m256 s = _mm256_div_ps(_mm256_sub_ps(f, one), _mm256_add_ps(f, one));
  const __m256 s2 = _mm256_mul_ps(s, s);
  __m256 p = _mm256_fmadd_ps(s2, _mm256_set1_ps(1.0f / 9.0f), _mm256_set1_ps(1.0f / 7.0f));
  p = _mm256_fmadd_ps(s2, p, _mm256_set1_ps(1.0f / 5.0f));
  p = _mm256_fmadd_ps(s2, p, _mm256_set1_ps(1.0f / 3.0f));
  p = _mm256_fmadd_ps(s2, p, one);
  const __m256 ln_f = _mm256_mul_ps(_mm256_add_ps(s, s), p);
  const __m256 ln_u1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(exponent, _mm256_set1_epi32(24))),
                                       _mm256_set1_ps(kLn2), ln_f);
  const __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), ln_u1));

  const __m256i v = _mm256_srli_epi32(b, 8);
  const __m256i quadrant = _mm256_srli_epi32(v, 22);
  const __m256 fq = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(0x003FFFFF))),
                                  _mm256_set1_ps(1.0f / 4194304.0f));
  const __m256 x = _mm256_mul_ps(_mm256_sub_ps(fq, _mm256_set1_ps(0.5f)), _mm256_set1_ps(kHalfPi));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 ps = _mm256_fmadd_ps(x2, _mm256_set1_ps(1.0f / 362880.0f), _mm256_set1_ps(-1.0f / 5040.0f));
  ps = _mm256_fmadd_ps(x2, ps, _mm256_set1_ps(1.0f / 120.0f));
  ps = _mm256_fmadd_ps(x2, ps, _mm256_set1_ps(-1.0f / 6.0f));
  ps = _mm256_fmadd_ps(x2, ps, one);
  __m256 pc = _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.0f / 3628800.0f), _mm256_set1_ps(1.0f / 40320.0f));
  pc = _mm256_fmadd_ps(x2, pc, _mm256_set1_ps(-1.0f / 720.0f));
  pc = _mm256_fmadd_ps(x2, pc, _mm256_set1_ps(1.0f / 24.0f));
  pc = _mm256_fmadd_ps(x2, pc, _mm256_set1_ps(-0.5f));
  const __m256 cos_x = _mm256_fmadd_ps(x2, pc, one);
  const __m256 c45 = _mm256_mul_ps(_mm256_fnmadd_ps(x, ps, cos_x), _mm256_set1_ps(kSqrtHalf));
  const __m256 s45 = _mm256_mul_ps(_mm256_fmadd_ps(x, ps, cos_x), _mm256_set1_ps(kSqrtHalf));
  const __m256 odd = _mm256_castsi256_ps(
      _mm256_cmpeq_epi32(_mm256_and_si256(quadrant, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
  const __m256 negate = _mm256_castsi256_ps(
      _mm256_cmpeq_epi32(_mm256_and_si256(quadrant, _mm256_set1_epi32(2)), _mm256_set1_epi32(2)));
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
  __m256 c = _mm256_blendv_ps(c45, _mm256_xor_ps(s45, sign), odd);
  __m256 sn = _mm256_blendv_ps(s45, c45, odd);
  c = _mm256_xor_ps(c, _mm256_and_ps(negate, sign));
  sn = _mm256_xor_ps(sn, _mm256_and_ps(negate, sign));
  z0 = _mm256_mul_ps(r, c);
  z1 = _mm256_mul_ps(r, sn);
}

// The 32 normals of 8 blocks, in conversion order.
inline void gaussian8(const PhiloxWords& stream, const std::uint64_t* blocks, float* out) {
  __m256i a0, a1, a2, a3, b0, b1, b2, b3;
  philox4(stream, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks)), a0, a1, a2, a3);
  philox4(stream, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks + 4)), b0, b1, b2, b3);
  __m256 z00, z01, z10, z11;
  box_muller8(low_dwords(a0, b0), low_dwords(a1, b1), z00, z01);
  box_muller8(low_dwords(a2, b2), low_dwords(a3, b3), z10, z11);
  const __m256 t0 = _mm256_unpacklo_ps(z00, z01), t1 = _mm256_unpackhi_ps(z00, z01);
  const __m256 t2 = _mm256_unpacklo_ps(z10, z11), t3 = _mm256_unpackhi_ps(z10, z11);
  const __m256 u0 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
  const __m256 u1 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
  const __m256 u2 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
  const __m256 u3 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
  _mm256_storeu_ps(out, _mm256_permute2f128_ps(u0, u1, 0x20));
  _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
  _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
  _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
}

void gaussian_blocks_impl(const PhiloxWords& stream, const std::uint64_t* blocks, Index count, float* out) {
  Index i = 0;
  for (; i + 8 <= count; i += 8) gaussian8(stream, blocks + i, out + 4 * i);
  if (i < count) {
    std::uint64_t tail[8];
    alignas(32) float z[32];
    for (Index k = 0; k < 8; ++k) tail[k] = blocks[std::min(i + k, count - 1)];
    gaussian8(stream, tail, z);
    std::memcpy(out + 4 * i, z, static_cast<std::size_t>(4 * (count - i)) * sizeof(float));
  }
}

struct Avx2Normals {
  void operator()(const PhiloxWords& stream, const std::uint64_t* blocks, Index count, float* out) const {
    gaussian_blocks_impl(stream, blocks, count, out);
  }
};

}  // namespace

bool gemm_avx2(const GemmPlan& plan) {
  set_kernel_route("avx2 generic");
  generic_gemm(plan, Avx2Counter{}, Avx2Normals{});
  return true;
}

void extract_bits_avx2(const std::uint8_t* tile, Index groups, int chunks, int planes, std::uint16_t* out) {
  extract_bits_portable(tile, groups, chunks, planes, out);
}

bool convert_row_avx2(const float* src, Index n, float max_value, std::uint8_t* dst) {
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(max_value);
  __m256 bad = _mm256_setzero_ps();
  Index i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    // not (v >= 0 and v <= max and v == floor(v)); NaN compares unordered: bad.
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, zero, _CMP_NGE_UQ));
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, top, _CMP_NLE_UQ));
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, _mm256_floor_ps(v), _CMP_NEQ_UQ));
    const __m256i ints = _mm256_cvttps_epi32(_mm256_max_ps(_mm256_min_ps(v, top), zero));
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(ints), _mm256_extracti128_si256(ints, 1));
    const __m128i bytes = _mm_packus_epi16(words, words);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), bytes);
  }
  const bool ok = _mm256_movemask_ps(bad) == 0;
  return convert_row_portable(src + i, n - i, max_value, dst + i) && ok;
}

void pack_block_avx2(const BlockSource& src, const Index* base, Index valid, std::uint16_t* out) {
  pack_block_portable(src, base, valid, out);
}

void gaussian_blocks_avx2(const PhiloxWords& stream, const std::uint64_t* blocks, Index count, float* out) {
  gaussian_blocks_impl(stream, blocks, count, out);
}

}  // namespace pimqat::pim::detail

#pragma GCC pop_options
