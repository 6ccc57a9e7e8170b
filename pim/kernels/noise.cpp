#include "pim/kernels/noise.h"

#include <atomic>
#include <cmath>
#include <string>

#include "core/error.h"
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
    if (philox_block(words, b) != expected) return std::nullopt;
  }
  return words;
}

std::uint64_t thermal_codes(const PhiloxWords& stream, std::uint64_t j0, Index count, double sigma, const Adc& adc,
                            const double* levels, std::int32_t* codes, KernelIsa isa) {
  if (!kernel_isa_supported(isa))
    throw Error("thermal_codes: kernel path '" + std::string(kernel_isa_name(isa)) + "' is not supported by this CPU");
  if (!(sigma > 0.0) || !std::isfinite(sigma)) throw Error("thermal_codes: sigma must be finite and > 0");
  switch (isa) {
    case KernelIsa::Avx512:
      return detail::thermal_codes_avx512(stream, j0, count, sigma, adc, levels, codes);
    case KernelIsa::Avx2:
      return detail::thermal_codes_avx2(stream, j0, count, sigma, adc, levels, codes);
    case KernelIsa::Portable:
      return detail::thermal_codes_portable(stream, j0, count, sigma, adc, levels, codes);
  }
  return 0;
}

namespace {
std::atomic<std::uint64_t> g_thermal_fine_conversions{0};
}  // namespace

std::uint64_t thermal_fine_conversions() { return g_thermal_fine_conversions.load(std::memory_order_relaxed); }

namespace detail {

void count_thermal_fine_conversions(std::uint64_t count) {
  if (count != 0) g_thermal_fine_conversions.fetch_add(count, std::memory_order_relaxed);
}

}  // namespace detail
}  // namespace pimqat::pim
