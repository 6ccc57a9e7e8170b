#include "core/rng.h"

#include <cmath>
#include <numbers>

namespace pimqat {
namespace {

constexpr std::uint32_t kMul0 = 0xD2511F53u;
constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;
constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;

}  // namespace

PhiloxBlock philox4x32(const std::array<std::uint32_t, 4>& counter, const std::array<std::uint32_t, 2>& key) {
  std::uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  std::uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{kMul0} * c0;
    const std::uint64_t p1 = std::uint64_t{kMul1} * c2;
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return {c0, c1, c2, c3};
}

std::uint64_t mix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

RandomStream::RandomStream(const RngKey& key) {
  const std::uint64_t k = mix64(key.seed ^ mix64(key.task));
  key_ = {static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k >> 32)};
  stream_ = mix64((static_cast<std::uint64_t>(key.purpose) << 56) ^ mix64(key.index));
}

PhiloxBlock RandomStream::block(std::uint64_t block_index) const {
  return philox4x32({static_cast<std::uint32_t>(block_index), static_cast<std::uint32_t>(block_index >> 32),
                     static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)},
                    key_);
}

void RandomStream::refill() {
  buffered_block_ = words_ / 4;
  buffer_ = block(buffered_block_);
}

std::uint32_t RandomStream::next_u32() {
  if (words_ / 4 != buffered_block_) refill();
  return buffer_[words_++ % 4];
}

std::uint64_t RandomStream::next_u64() {
  const std::uint64_t lo = next_u32();
  return lo | (std::uint64_t{next_u32()} << 32);
}

float RandomStream::uniform() { return uniform_from_bits(next_u32()); }

double RandomStream::uniform_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

float RandomStream::normal() {
  const double u1 = (static_cast<double>(next_u32()) + 1.0) * 0x1.0p-32;  // (0, 1]
  const double u2 = static_cast<double>(next_u32()) * 0x1.0p-32;          // [0, 1)
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

std::uint32_t RandomStream::below(std::uint32_t n) {
  // Lemire's multiply-shift with rejection: exact uniformity.
  std::uint64_t m = std::uint64_t{next_u32()} * n;
  auto low = static_cast<std::uint32_t>(m);
  if (low < n) {
    const std::uint32_t threshold = (0u - n) % n;
    while (low < threshold) {
      m = std::uint64_t{next_u32()} * n;
      low = static_cast<std::uint32_t>(m);
    }
  }
  return static_cast<std::uint32_t>(m >> 32);
}

void RandomStream::seek(std::uint64_t word_position) { words_ = word_position; }

void shuffle_indices(std::uint32_t* indices, std::uint32_t n, RandomStream& stream) {
  for (std::uint32_t i = n; i > 1; --i) {
    const std::uint32_t j = stream.below(i);
    const std::uint32_t t = indices[i - 1];
    indices[i - 1] = indices[j];
    indices[j] = t;
  }
}

}  // namespace pimqat
