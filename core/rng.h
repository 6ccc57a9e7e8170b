#pragma once
// Counter-based random numbers (DESIGN.md 2.6): Philox4x32-10 (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011). A stream is keyed by (sweep seed, task identity,
// purpose, index); the n-th 128-bit block of a stream is philox(key, counter = {n, stream}).
// Any block can be computed directly, so the same numbers come out whichever thread, rank or
// order asks for them, and a stream's position (a block count) is all a checkpoint must store.
#include <array>
#include <cstdint>

namespace pimqat {

// What a stream is used for; part of its key so that streams of one task never overlap.
enum class Purpose : std::uint32_t {
  WeightInit = 1,
  DataOrder = 2,
  Augmentation = 3,
  DieParameters = 4,
  ThermalNoise = 5,
  Synthetic = 6,
  Operands = 7,  // random operands for mac-error and tests
};

struct RngKey {
  std::uint64_t seed = 0;  // the sweep (or run) seed
  std::uint64_t task = 0;  // task identity hash (0 for a single run)
  Purpose purpose = Purpose::WeightInit;
  std::uint64_t index = 0;  // e.g. layer number, epoch, die index

  RngKey with(Purpose p, std::uint64_t i) const { return {seed, task, p, i}; }
};

using PhiloxBlock = std::array<std::uint32_t, 4>;

// One Philox4x32-10 evaluation.
PhiloxBlock philox4x32(const std::array<std::uint32_t, 4>& counter, const std::array<std::uint32_t, 2>& key);

// 64-bit mixing function (SplitMix64 finalizer); used to fold keys and for hashing.
std::uint64_t mix64(std::uint64_t x);

// Uniform float in (0, 1] from 32 random bits: (bits >> 8) + 1 over 2^24. Never 0, so log() is finite.
inline float uniform_from_bits(std::uint32_t bits) {
  return static_cast<float>((bits >> 8) + 1u) * (1.0f / 16777216.0f);
}

// A stream of random numbers; cheap to create, copyable. `position()` / `seek()` save and
// restore it exactly (in units of 32-bit words).
class RandomStream {
 public:
  RandomStream() : RandomStream(RngKey{}) {}
  explicit RandomStream(const RngKey& key);

  std::uint32_t next_u32();
  std::uint64_t next_u64();
  float uniform();                  // (0, 1]
  double uniform_double();          // [0, 1), 53 bits
  float normal();                   // standard normal (Box-Muller, in double, rounded to float)
  std::uint32_t below(std::uint32_t n);  // uniform integer in [0, n), unbiased

  std::uint64_t position() const { return words_; }
  void seek(std::uint64_t word_position);

  // The raw block at a block index of this stream (no state change): for vectorized callers.
  PhiloxBlock block(std::uint64_t block_index) const;

 private:
  void refill();
  std::array<std::uint32_t, 2> key_{};
  std::uint64_t stream_ = 0;  // upper 64 bits of the counter
  std::uint64_t words_ = 0;   // words consumed
  PhiloxBlock buffer_{};
  std::uint64_t buffered_block_ = ~std::uint64_t{0};
};

// Fisher-Yates shuffle of [0, n) with a stream (the data order of one epoch).
void shuffle_indices(std::uint32_t* indices, std::uint32_t n, RandomStream& stream);

}  // namespace pimqat
