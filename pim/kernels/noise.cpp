#include "pim/kernels/noise.h"

#include <string>

#include "core/error.h"
#include "pim/gaussian.h"
#include "pim/kernels/internal.h"

namespace pimqat::pim {

std::optional<PhiloxWords> PhiloxWords::of(const RngKey& key) {
  // core/rng.cpp: key words from mix64(seed ^ mix64(task)), counter high half from
  // mix64((purpose << 56) ^ mix64(index)). Checked below against the stream itself.
  const std::uint64_t k = mix64(key.seed ^ mix64(key.task));
  const std::uint64_t high = mix64((static_cast<std::uint64_t>(key.purpose) << 56) ^ mix64(key.index));
  PhiloxWords words;
  words.key[0] = static_cast<std::uint32_t>(k);
  words.key[1] = static_cast<std::uint32_t>(k >> 32);
  words.counter_high[0] = static_cast<std::uint32_t>(high);
  words.counter_high[1] = static_cast<std::uint32_t>(high >> 32);
  const RandomStream stream(key);
  for (std::uint64_t b : {std::uint64_t{0}, std::uint64_t{1}, (std::uint64_t{1} << 33) + 5}) {
    const PhiloxBlock expected = stream.block(b);
    const PhiloxBlock actual =
        philox4x32({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), words.counter_high[0],
                    words.counter_high[1]},
                   {words.key[0], words.key[1]});
    if (actual != expected) return std::nullopt;
  }
  return words;
}

void gaussian_blocks(const PhiloxWords& stream, const std::uint64_t* blocks, Index count, float* out, KernelIsa isa) {
  if (!kernel_isa_supported(isa))
    throw Error("gaussian_blocks: kernel path '" + std::string(kernel_isa_name(isa)) + "' is not supported by this CPU");
  switch (isa) {
    case KernelIsa::Avx512: detail::gaussian_blocks_avx512(stream, blocks, count, out); return;
    case KernelIsa::Avx2: detail::gaussian_blocks_avx2(stream, blocks, count, out); return;
    case KernelIsa::Portable: detail::gaussian_blocks_portable(stream, blocks, count, out); return;
  }
}

namespace detail {

void gaussian_blocks_portable(const PhiloxWords& stream, const std::uint64_t* blocks, Index count, float* out) {
  for (Index i = 0; i < count; ++i) {
    const std::uint64_t b = blocks[i];
    const PhiloxBlock words =
        philox4x32({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), stream.counter_high[0],
                    stream.counter_high[1]},
                   {stream.key[0], stream.key[1]});
    const GaussianPair first = gaussian_pair(words[0], words[1]);
    const GaussianPair second = gaussian_pair(words[2], words[3]);
    out[4 * i + 0] = first.z0;
    out[4 * i + 1] = first.z1;
    out[4 * i + 2] = second.z0;
    out[4 * i + 3] = second.z1;
  }
}

}  // namespace detail
}  // namespace pimqat::pim
