// What thermal noise costs per ADC conversion (docs/pim.md "Thermal noise"), CPU time of one thread
// (CLOCK_THREAD_CPUTIME_ID), best of --repeat runs, AVX-512 only (prints a note and exits 0
// elsewhere):
//   philox words      Philox4x32-10 alone, 8 blocks per register (pim/kernels/philox_avx512.h, the
//                     kernels' own code), per 32-bit word
//   old normal        the definition before the quantile noise: one Box-Muller normal per conversion
//                     (two Philox words per pair, log/sqrt/sin/cos in float polynomials; a copy of
//                     the old kernel code, kept here only as this baseline), per normal
//   old conversion    that normal and the conversion in double (level gather, fma(sigma, z, level),
//                     +1/2, floor, clamp) on 8 lanes, per conversion
//   new conversion    pim/gaussian.h's quantile noise through the AVX-512 kernels' code
//                     (thermal_codes: the coarse values, 1/8 Philox block per conversion, the bucket
//                     decision with its two conversions, the fine-word fallback where a bucket
//                     straddles a code threshold), per conversion, with the fallback's share
// Both conversions: sigma = 1 LSB, a 7-bit ADC, levels uniform over the code range. The old
// conversion is that design's inner work alone (no tile bookkeeping, no reordering of the normals
// into conversion order), a lower bound for it; the new one is the kernels' whole noise path on
// runs of 512 conversions. End to end, bench/pim_kernels (noisy die) compares the two kernels.
// usage: noise_floor [--repeat R] [--blocks B]
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/thread_time.h"
#include "core/rng.h"
#include "pim/adc.h"
#include "pim/gaussian.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/noise.h"
#include "pim/kernels/philox_avx512.h"

#define NOISE_FLOOR_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))
#define NOISE_FLOOR_INLINE NOISE_FLOOR_AVX512 inline __attribute__((always_inline))

namespace {

using namespace pimqat;
using namespace pimqat::pim;

using bench::thread_seconds;

using detail::philox8;
using Keys = detail::PhiloxKeys;
const auto keys_of = detail::philox_keys;

NOISE_FLOOR_AVX512 void philox_only(const Keys& keys, const std::uint64_t* blocks, Index count, std::uint32_t* sink) {
  __m512i acc = _mm512_setzero_si512();
  for (Index i = 0; i + 8 <= count; i += 8) {
    __m512i a, b, c, d;
    philox8(keys, _mm512_loadu_si512(blocks + i), a, b, c, d);
    acc = _mm512_ternarylogic_epi64(acc, _mm512_xor_si512(a, b), _mm512_xor_si512(c, d), 0x96);
  }
  _mm512_storeu_si512(sink, acc);
}

// The old definition (before the quantile noise): gaussian_pair of pim/gaussian.h on 16 lanes,
// as pim/kernels/avx512.cpp ran it (kept here only as the benchmark's baseline).
NOISE_FLOOR_INLINE void box_muller16(__m512i a, __m512i b, __m512& z0, __m512& z1) {
  using namespace gaussian_detail;
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512i m = _mm512_add_epi32(_mm512_srli_epi32(a, 8), _mm512_set1_epi32(1));
  const __m512i bits = _mm512_castps_si512(_mm512_cvtepu32_ps(m));
  __m512i exponent = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127));
  __m512 f = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x007FFFFF)), _mm512_set1_epi32(0x3F800000)));
  const __mmask16 big = _mm512_cmp_ps_mask(f, _mm512_set1_ps(kSqrt2), _CMP_GT_OQ);
  f = _mm512_mask_mul_ps(f, big, f, _mm512_set1_ps(0.5f));
  exponent = _mm512_mask_add_epi32(exponent, big, exponent, _mm512_set1_epi32(1));
  const __m512 s = _mm512_div_ps(_mm512_sub_ps(f, one), _mm512_add_ps(f, one));
  const __m512 s2 = _mm512_mul_ps(s, s);
  __m512 p = _mm512_fmadd_ps(s2, _mm512_set1_ps(1.0f / 9.0f), _mm512_set1_ps(1.0f / 7.0f));
  p = _mm512_fmadd_ps(s2, p, _mm512_set1_ps(1.0f / 5.0f));
  p = _mm512_fmadd_ps(s2, p, _mm512_set1_ps(1.0f / 3.0f));
  p = _mm512_fmadd_ps(s2, p, one);
  const __m512 ln_f = _mm512_mul_ps(_mm512_add_ps(s, s), p);
  const __m512 ln_u1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(exponent, _mm512_set1_epi32(24))),
                                       _mm512_set1_ps(kLn2), ln_f);
  const __m512 r = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), ln_u1));

  const __m512i v = _mm512_srli_epi32(b, 8);
  const __m512i quadrant = _mm512_srli_epi32(v, 22);
  const __m512 fq = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v, _mm512_set1_epi32(0x003FFFFF))),
                                  _mm512_set1_ps(1.0f / 4194304.0f));
  const __m512 x = _mm512_mul_ps(_mm512_sub_ps(fq, _mm512_set1_ps(0.5f)), _mm512_set1_ps(kHalfPi));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 ps = _mm512_fmadd_ps(x2, _mm512_set1_ps(1.0f / 362880.0f), _mm512_set1_ps(-1.0f / 5040.0f));
  ps = _mm512_fmadd_ps(x2, ps, _mm512_set1_ps(1.0f / 120.0f));
  ps = _mm512_fmadd_ps(x2, ps, _mm512_set1_ps(-1.0f / 6.0f));
  ps = _mm512_fmadd_ps(x2, ps, one);
  __m512 pc = _mm512_fmadd_ps(x2, _mm512_set1_ps(-1.0f / 3628800.0f), _mm512_set1_ps(1.0f / 40320.0f));
  pc = _mm512_fmadd_ps(x2, pc, _mm512_set1_ps(-1.0f / 720.0f));
  pc = _mm512_fmadd_ps(x2, pc, _mm512_set1_ps(1.0f / 24.0f));
  pc = _mm512_fmadd_ps(x2, pc, _mm512_set1_ps(-0.5f));
  const __m512 cos_x = _mm512_fmadd_ps(x2, pc, one);
  const __m512 c45 = _mm512_mul_ps(_mm512_fnmadd_ps(x, ps, cos_x), _mm512_set1_ps(kSqrtHalf));
  const __m512 s45 = _mm512_mul_ps(_mm512_fmadd_ps(x, ps, cos_x), _mm512_set1_ps(kSqrtHalf));
  const __mmask16 odd = _mm512_test_epi32_mask(quadrant, _mm512_set1_epi32(1));
  const __mmask16 negate = _mm512_test_epi32_mask(quadrant, _mm512_set1_epi32(2));
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512 minus_s45 = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s45), sign));
  __m512i c = _mm512_castps_si512(_mm512_mask_blend_ps(odd, c45, minus_s45));
  __m512i sn = _mm512_castps_si512(_mm512_mask_blend_ps(odd, s45, c45));
  c = _mm512_mask_xor_epi32(c, negate, c, sign);
  sn = _mm512_mask_xor_epi32(sn, negate, sn, sign);
  z0 = _mm512_mul_ps(r, _mm512_castsi512_ps(c));
  z1 = _mm512_mul_ps(r, _mm512_castsi512_ps(sn));
}

// The 64 old normals of 16 blocks (indices at `blocks`), in lane order.
NOISE_FLOOR_INLINE void old_normals16(const Keys& keys, const std::uint64_t* blocks, float* out) {
  __m512i a0, a1, a2, a3, b0, b1, b2, b3;
  philox8(keys, _mm512_loadu_si512(blocks), a0, a1, a2, a3);
  philox8(keys, _mm512_loadu_si512(blocks + 8), b0, b1, b2, b3);
  const __m512i low = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512 z00, z01, z10, z11;
  box_muller16(_mm512_permutex2var_epi32(a0, low, b0), _mm512_permutex2var_epi32(a1, low, b1), z00, z01);
  box_muller16(_mm512_permutex2var_epi32(a2, low, b2), _mm512_permutex2var_epi32(a3, low, b3), z10, z11);
  // (conversion order does not matter for the timing)
  _mm512_storeu_ps(out, z00);
  _mm512_storeu_ps(out + 16, z01);
  _mm512_storeu_ps(out + 32, z10);
  _mm512_storeu_ps(out + 48, z11);
}

NOISE_FLOOR_AVX512 void old_normals(const Keys& keys, const std::uint64_t* blocks, Index count, float* out) {
  for (Index i = 0; i + 16 <= count; i += 16) old_normals16(keys, blocks + i, out + 4 * i);
}

// Old normals and their conversions, 64 at a time, the level gathered by index as in the old
// kernel (and as thermal_codes does).
NOISE_FLOOR_AVX512 void old_conversions(const Keys& keys, const std::uint64_t* blocks, Index count, double sigma,
                                        int max_code, const double* levels, std::int32_t* codes) {
  alignas(64) float z[64];
  const __m512d s = _mm512_set1_pd(sigma), top = _mm512_set1_pd(max_code);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (Index i = 0; i + 16 <= count; i += 16) {
    old_normals16(keys, blocks + i, z);
    for (int k = 0; k < 64; k += 8) {
      const Index at = 4 * i + k;
      const __m512d level =
          _mm512_i32gather_pd(_mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(at)), lanes), levels, 8);
      const __m512d x = _mm512_fmadd_pd(s, _mm512_cvtps_pd(_mm256_load_ps(z + k)), level);
      __m512d c =
          _mm512_roundscale_pd(_mm512_add_pd(x, _mm512_set1_pd(0.5)), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
      c = _mm512_min_pd(_mm512_max_pd(c, _mm512_setzero_pd()), top);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + at), _mm512_cvttpd_epi32(c));
    }
  }
}

template <class F>
double best_ns(int repeat, double per, F&& f) {
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    const double t0 = thread_seconds();
    f();
    best = std::min(best, thread_seconds() - t0);
  }
  return 1e9 * best / per;
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 15;
  Index count = Index{1} << 16;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else if (a == "--blocks" && i + 1 < argc) {
      count = std::atoll(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--repeat R] [--blocks B]\n", argv[0]);
      return 2;
    }
  }
  if (repeat < 1 || count < 16 || count % 16 != 0) {
    std::fprintf(stderr, "--repeat must be >= 1 and --blocks a positive multiple of 16\n");
    return 2;
  }
  if (!kernel_isa_supported(KernelIsa::Avx512)) {
    std::printf("noise_floor: this CPU has no AVX-512 path; nothing measured\n");
    return 0;
  }
  std::vector<std::uint64_t> blocks(static_cast<std::size_t>(count));
  for (Index i = 0; i < count; ++i) blocks[static_cast<std::size_t>(i)] = 1000 + static_cast<std::uint64_t>(i);
  const Index conversions = 4 * count;  // one old normal per Philox word
  std::vector<float> normals(static_cast<std::size_t>(conversions + 64));
  std::vector<double> levels(static_cast<std::size_t>(conversions));
  RandomStream r(RngKey{3, 0, Purpose::Operands, 1});
  for (auto& l : levels) l = 127.0 * r.uniform_double();
  std::vector<std::int32_t> codes(static_cast<std::size_t>(conversions));
  PhiloxWords words;
  words.key[0] = 0x12345678u;
  words.key[1] = 0x9abcdef0u;
  words.counter_high[0] = 7;
  words.counter_high[1] = 9;
  const Keys keys = keys_of(words);
  const Adc adc(0.0, 144.0, 7);
  const double sigma = 1.0;
  alignas(64) std::uint32_t sink[16];
  const auto n = static_cast<double>(conversions);
  const double philox = best_ns(repeat, n, [&] { philox_only(keys, blocks.data(), count, sink); });
  const double old_normal = best_ns(repeat, n, [&] { old_normals(keys, blocks.data(), count, normals.data()); });
  const double old_conversion = best_ns(repeat, n, [&] {
    old_conversions(keys, blocks.data(), count, sigma, adc.max_code(), levels.data(), codes.data());
  });
  std::uint64_t fine = 0;
  const double new_conversion = best_ns(repeat, n, [&] {
    fine = thermal_codes(words, 1000 * 8, conversions, sigma, adc, levels.data(), codes.data(), KernelIsa::Avx512);
  });
  std::printf("philox4x32-10 words only               %6.3f ns/word (checksum %08x)\n", philox, sink[0] ^ sink[15]);
  std::printf("old: box-muller normal                 %6.3f ns/normal\n", old_normal);
  std::printf("old: box-muller normal + conversion    %6.3f ns/conversion\n", old_conversion);
  std::printf(
      "new: quantile noise + conversion       %6.3f ns/conversion (%.3f%% drew the fine word; coarse words "
      "alone: 1/8 block = %.3f ns)\n",
      new_conversion, 100.0 * static_cast<double>(fine) / n, philox / 2.0);
  std::printf("old / new conversion                   %6.2fx\n", old_conversion / new_conversion);
  return 0;
}
