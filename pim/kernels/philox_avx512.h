#pragma once
// Philox4x32-10 (pim/gaussian.h's generator) on AVX-512, 8 blocks at a time: shared by the AVX-512
// kernels (pim/kernels/avx512.cpp) and the noise benchmark (bench/noise_floor.cpp), so that the
// benchmark times the kernels' own code. Include only from code compiled for, or dispatched to,
// AVX-512 (the functions carry the target attribute; callers need at least avx512f).
#include <immintrin.h>

#include <cstdint>

#include "pim/kernels/noise.h"

#define PIMQAT_PHILOX_AVX512_INLINE __attribute__((target("avx512f"))) inline __attribute__((always_inline))

namespace pimqat::pim::detail {

inline constexpr std::uint32_t kPhiloxMul0 = 0xD2511F53u, kPhiloxMul1 = 0xCD9E8D57u;
inline constexpr std::uint32_t kPhiloxWeyl0 = 0x9E3779B9u, kPhiloxWeyl1 = 0xBB67AE85u;

// The round keys of a stream: key_k + r Weyl_k for rounds r = 0..9 (64-bit lanes, words in the low
// half), so that every round XORs a broadcast from memory.
struct PhiloxKeys {
  alignas(64) std::uint64_t round[10][2];
  std::uint32_t high0, high1;
};

inline PhiloxKeys philox_keys(const PhiloxWords& stream) {
  PhiloxKeys keys{};
  std::uint32_t k0 = stream.key[0], k1 = stream.key[1];
  for (int r = 0; r < 10; ++r) {
    keys.round[r][0] = k0;
    keys.round[r][1] = k1;
    k0 += kPhiloxWeyl0;
    k1 += kPhiloxWeyl1;
  }
  keys.high0 = stream.counter_high[0];
  keys.high1 = stream.counter_high[1];
  return keys;
}

// Philox4x32-10 of 8 blocks (64-bit lanes: block index in, words in the low 32 bits out; the high
// halves are don't-care). hi(p) is moved down with VPSHUFD (port 5) rather than a shift (port 0,
// which the multiplies already load).
PIMQAT_PHILOX_AVX512_INLINE void philox8(const PhiloxKeys& keys, __m512i blocks, __m512i& w0, __m512i& w1,
                                         __m512i& w2, __m512i& w3) {
  __m512i c0 = blocks, c1 = _mm512_shuffle_epi32(blocks, _MM_PERM_DDBB);
  __m512i c2 = _mm512_set1_epi64(keys.high0), c3 = _mm512_set1_epi64(keys.high1);
  const __m512i m0 = _mm512_set1_epi64(kPhiloxMul0), m1 = _mm512_set1_epi64(kPhiloxMul1);
#pragma GCC unroll 10
  for (int round = 0; round < 10; ++round) {
    const __m512i p0 = _mm512_mul_epu32(c0, m0), p1 = _mm512_mul_epu32(c2, m1);
    const __m512i n0 = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p1, _MM_PERM_DDBB), c1,
                                                 _mm512_set1_epi64(static_cast<long long>(keys.round[round][0])), 0x96);
    const __m512i n2 = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p0, _MM_PERM_DDBB), c3,
                                                 _mm512_set1_epi64(static_cast<long long>(keys.round[round][1])), 0x96);
    c1 = p1;
    c3 = p0;
    c0 = n0;
    c2 = n2;
  }
  w0 = c0;
  w1 = c1;
  w2 = c2;
  w3 = c3;
}

}  // namespace pimqat::pim::detail
