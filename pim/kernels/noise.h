#pragma once
// Thermal noise for the fast kernels (pim/gaussian.h, section 2): the Philox words of a noise
// stream, the kernels' fast decision on whole runs of conversions (for tests and benchmarks) and
// the count of conversions that needed the fine word.
#include <cstdint>
#include <optional>

#include "core/rng.h"
#include "core/tensor.h"
#include "pim/kernels/dispatch.h"

namespace pimqat::pim {

class Adc;

// The Philox4x32-10 words of one stream: block b of the stream is
// philox4x32({b_lo, b_hi, counter_high[0], counter_high[1]}, key) (core/rng.h).
struct PhiloxWords {
  std::uint32_t key[2] = {0, 0};
  std::uint32_t counter_high[2] = {0, 0};

  // The words of RandomStream(key), derived as core/rng.cpp derives them and checked against
  // RandomStream::block on a few blocks; std::nullopt if the derivation no longer matches (callers
  // then fall back to RandomStream::block, which is always right).
  static std::optional<PhiloxWords> of(const RngKey& key);
};

// Block b of the stream (scalar).
inline PhiloxBlock philox_block(const PhiloxWords& stream, std::uint64_t b) {
  return philox4x32({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), stream.counter_high[0],
                     stream.counter_high[1]},
                    {stream.key[0], stream.key[1]});
}

// The codes of the conversions [j0, j0 + count) of a noise stream with noise-free levels
// levels[0 .. count) and thermal noise sigma > 0, through the given path's fast decision (the code
// the kernels run): codes[i] = adc.code(fma(sigma, thermal_normal(c(j0 + i), f(j0 + i)), levels[i])),
// AdcBank::convert's code for that level. Returns the number of fine words drawn (on AVX-512 the
// padding lanes of a last partial group of 8 count too). The path must be supported.
std::uint64_t thermal_codes(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma, const Adc& adc,
                            const double* levels, std::int32_t* codes, KernelIsa isa);

// Conversions of the fast PIM products (every path, every thread) whose coarse bucket straddled a
// code threshold so that the fine word was drawn, since the program started (tests, benchmarks).
std::uint64_t thermal_fine_conversions();

namespace detail {
void count_thermal_fine_conversions(std::uint64_t count);
}  // namespace detail

}  // namespace pimqat::pim
