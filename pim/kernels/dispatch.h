#pragma once
// Run-time choice of the PIM kernels' instruction set (issue 4). Every path computes the same bits
// as the reference kernels (pim/kernels/reference.h); they differ only in speed.
//
//   avx512    AVX-512 F/BW/VL/DQ + VPOPCNTDQ + BITALG (VPOPCNTB/W) + VBMI (VPERMB) + VNNI (VPDPBUSD): Ice Lake,
//             Sapphire Rapids, Zen 4 and later
//   avx2      AVX2 + FMA + BMI2 + POPCNT (popcount by nibble lookup, VPSHUFB): Haswell, Zen and later
//   portable  plain C++ (the compiler's own vectorization for the build's -march)
//
// The path is chosen once: PIMQAT_KERNEL=avx512|avx2|portable in the environment if set (an
// unsupported choice is an error), else the best the CPU supports (__builtin_cpu_supports).
// force_kernel_isa() overrides both (tests exercise every available path this way).
#include <optional>
#include <string_view>

namespace pimqat::pim {

enum class KernelIsa { Portable, Avx2, Avx512 };

std::string_view kernel_isa_name(KernelIsa isa);
// "avx512" | "avx2" | "portable"; throws pimqat::Error naming the valid values otherwise.
KernelIsa parse_kernel_isa(std::string_view text);
// Whether this CPU can run the path (the code for all three is always compiled in).
bool kernel_isa_supported(KernelIsa isa);
// The best path this CPU supports.
KernelIsa best_kernel_isa();
// The path the kernels use now. Throws pimqat::Error when PIMQAT_KERNEL names an unknown or
// unsupported path.
KernelIsa active_kernel_isa();
// Forces a path (throws pimqat::Error when the CPU does not support it); std::nullopt returns to
// the environment / automatic choice. Not thread-safe with running kernels: call between products.
void force_kernel_isa(std::optional<KernelIsa> isa);

// The route the latest PIM product of the calling thread took, e.g. "avx512 bit-serial bytes" or
// "portable" (a SIMD path hands configurations it does not cover to the portable one), for tests
// and benchmarks. A string literal; "" before any product.
const char* last_kernel_route();

namespace detail {
void set_kernel_route(const char* route);
}  // namespace detail

}  // namespace pimqat::pim
