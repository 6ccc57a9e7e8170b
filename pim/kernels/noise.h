#pragma once
// Thermal noise in bulk: the normals of pim/gaussian.h for whole runs of conversions, bit for bit
// (gaussian_at(stream, j) for every j), with the Philox blocks computed once per four normals and,
// on the SIMD paths, 8 (AVX-512) or 4 (AVX2) blocks and 16 or 8 Box-Muller pairs at a time with the
// same IEEE operations in the same order as the scalar code (explicit FMAs, correctly rounded
// division and square root; no reassociation).
#include <cstdint>
#include <optional>

#include "core/rng.h"
#include "core/tensor.h"
#include "pim/kernels/dispatch.h"

namespace pimqat::pim {

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

// out[4 i + k] = gaussian_at(stream, 4 blocks[i] + k) for i < count, k < 4 (the four normals of
// each listed Philox block), on the given instruction-set path (which must be supported).
void gaussian_blocks(const PhiloxWords& stream, const std::uint64_t* blocks, Index count, float* out, KernelIsa isa);

}  // namespace pimqat::pim
