// Where the floor of noisy Monte Carlo evaluation lies (issue 4, docs/pim.md "Noise: the floor"):
// CPU time per 32-bit word of Philox4x32-10 alone (8 blocks per AVX-512 register, the generator
// of DESIGN.md 2.6 as pim/kernels/avx512.cpp runs it), per normal of the current generator
// (gaussian_blocks: Philox + the Box-Muller of pim/gaussian.h), and per normal of the fast path of a
// 256-layer ziggurat (Marsaglia & Tsang 2000) fed by one Philox word per normal (8-bit layer,
// 24-bit signed magnitude, two table gathers) -- a throwaway candidate, not an exact generator:
// its rejected lanes (counted and printed) are not generated, so its time is a lower bound.
// Every exact generator needs at least one Philox word per conversion, so the first line bounds
// the noise cost of any exact redesign. CPU time of one thread (CLOCK_THREAD_CPUTIME_ID), best of
// --repeat runs. AVX-512 only (prints a note and exits 0 elsewhere).
// usage: noise_floor [--repeat R] [--blocks B]
#include <immintrin.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/thread_time.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/noise.h"
#include "pim/kernels/philox_avx512.h"

#define NOISE_FLOOR_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl")))

namespace {

using namespace pimqat;
using namespace pimqat::pim;

using bench::thread_seconds;

using detail::philox8;
using Keys = detail::PhiloxKeys;
const auto keys_of = detail::philox_keys;

// 256-layer ziggurat tables for 24-bit signed magnitudes (|h| < 2^23).
struct Ziggurat {
  alignas(64) std::int32_t k[256];
  alignas(64) float w[256];
  Ziggurat() {
    const double m = 8388608.0;  // 2^23
    double d = 3.6541528853610088, t = d;
    const double v = 4.92867323399e-3;
    const double q = v / std::exp(-0.5 * d * d);
    k[0] = static_cast<std::int32_t>(d / q * m);
    k[1] = 0;
    w[0] = static_cast<float>(q / m);
    w[255] = static_cast<float>(d / m);
    for (int i = 254; i >= 1; --i) {
      d = std::sqrt(-2.0 * std::log(v / d + std::exp(-0.5 * d * d)));
      k[i + 1] = static_cast<std::int32_t>(d / t * m);
      t = d;
      w[i] = static_cast<float>(d / m);
    }
  }
};

NOISE_FLOOR_AVX512 void philox_only(const Keys& keys, const std::uint64_t* blocks, Index count, std::uint32_t* sink) {
  __m512i acc = _mm512_setzero_si512();
  for (Index i = 0; i + 8 <= count; i += 8) {
    __m512i a, b, c, d;
    philox8(keys, _mm512_loadu_si512(blocks + i), a, b, c, d);
    acc = _mm512_ternarylogic_epi64(acc, _mm512_xor_si512(a, b), _mm512_xor_si512(c, d), 0x96);
  }
  _mm512_storeu_si512(sink, acc);
}

NOISE_FLOOR_AVX512 std::int64_t ziggurat_fast_path(const Keys& keys, const Ziggurat& z, const std::uint64_t* blocks,
                                                   Index count, float* out) {
  std::int64_t rejected = 0;
  const __m512i low = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (Index i = 0; i + 16 <= count; i += 16) {
    __m512i a0, a1, a2, a3, b0, b1, b2, b3;
    philox8(keys, _mm512_loadu_si512(blocks + i), a0, a1, a2, a3);
    philox8(keys, _mm512_loadu_si512(blocks + i + 8), b0, b1, b2, b3);
    const __m512i words[4] = {_mm512_permutex2var_epi32(a0, low, b0), _mm512_permutex2var_epi32(a1, low, b1),
                              _mm512_permutex2var_epi32(a2, low, b2), _mm512_permutex2var_epi32(a3, low, b3)};
    for (int k = 0; k < 4; ++k) {
      const __m512i layer = _mm512_and_si512(words[k], _mm512_set1_epi32(255));
      const __m512i h = _mm512_srai_epi32(words[k], 8);
      const __mmask16 fast = _mm512_cmplt_epi32_mask(_mm512_abs_epi32(h), _mm512_i32gather_epi32(layer, z.k, 4));
      rejected += 16 - __builtin_popcount(fast);
      _mm512_storeu_ps(out + 4 * i + 16 * k, _mm512_mul_ps(_mm512_cvtepi32_ps(h), _mm512_i32gather_ps(layer, z.w, 4)));
    }
  }
  return rejected;
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
  std::vector<float> out(static_cast<std::size_t>(4 * count + 64));
  PhiloxWords words;
  words.key[0] = 0x12345678u;
  words.key[1] = 0x9abcdef0u;
  words.counter_high[0] = 7;
  words.counter_high[1] = 9;
  const Keys keys = keys_of(words);
  const Ziggurat table;
  alignas(64) std::uint32_t sink[16];
  const double normals = 4.0 * static_cast<double>(count);
  const double philox = best_ns(repeat, normals, [&] { philox_only(keys, blocks.data(), count, sink); });
  const double box_muller =
      best_ns(repeat, normals, [&] { gaussian_blocks(words, blocks.data(), count, out.data(), KernelIsa::Avx512); });
  std::int64_t rejected = 0;
  const double ziggurat =
      best_ns(repeat, normals, [&] { rejected = ziggurat_fast_path(keys, table, blocks.data(), count, out.data()); });
  std::printf("philox4x32-10 words only          %6.3f ns/word (checksum %08x)\n", philox, sink[0] ^ sink[15]);
  std::printf("philox + box-muller (current)     %6.3f ns/normal\n", box_muller);
  std::printf("philox + ziggurat-256 fast path   %6.3f ns/normal (lower bound: %.2f%% of lanes rejected, not "
              "generated)\n",
              ziggurat, 100.0 * static_cast<double>(rejected) / normals);
  return 0;
}
