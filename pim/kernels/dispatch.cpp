#include "pim/kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace pimqat::pim {
namespace {

constexpr int kUnset = -1;
std::atomic<int> g_forced{kUnset};

KernelIsa from_environment() {
  const char* text = std::getenv("PIMQAT_KERNEL");
  if (!text || !*text) return best_kernel_isa();
  KernelIsa isa;
  try {
    isa = parse_kernel_isa(text);
  } catch (const Error& e) {
    throw Error(std::string("environment variable PIMQAT_KERNEL: ") + e.what());
  }
  if (!kernel_isa_supported(isa))
    throw Error("environment variable PIMQAT_KERNEL=" + std::string(text) +
                ": this CPU does not support that kernel path (best available: " +
                std::string(kernel_isa_name(best_kernel_isa())) + ")");
  return isa;
}

}  // namespace

std::string_view kernel_isa_name(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Portable: return "portable";
    case KernelIsa::Avx2: return "avx2";
    case KernelIsa::Avx512: return "avx512";
  }
  return "unknown";
}

KernelIsa parse_kernel_isa(std::string_view text) {
  if (text == "portable") return KernelIsa::Portable;
  if (text == "avx2") return KernelIsa::Avx2;
  if (text == "avx512") return KernelIsa::Avx512;
  throw Error("unknown PIM kernel path '" + std::string(text) + "' (valid: avx512, avx2, portable)");
}

bool kernel_isa_supported(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Portable: return true;
    case KernelIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2") &&
             __builtin_cpu_supports("popcnt");
    case KernelIsa::Avx512:
      return kernel_isa_supported(KernelIsa::Avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vpopcntdq") &&
             __builtin_cpu_supports("avx512bitalg") && __builtin_cpu_supports("avx512vbmi") &&
             __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

KernelIsa best_kernel_isa() {
  if (kernel_isa_supported(KernelIsa::Avx512)) return KernelIsa::Avx512;
  if (kernel_isa_supported(KernelIsa::Avx2)) return KernelIsa::Avx2;
  return KernelIsa::Portable;
}

KernelIsa active_kernel_isa() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  if (forced != kUnset) return static_cast<KernelIsa>(forced);
  static const KernelIsa chosen = from_environment();
  return chosen;
}

namespace {
thread_local const char* g_route = "";
}  // namespace

const char* last_kernel_route() { return g_route; }

void detail::set_kernel_route(const char* route) { g_route = route; }

void force_kernel_isa(std::optional<KernelIsa> isa) {
  if (isa && !kernel_isa_supported(*isa))
    throw Error("PIM kernel path '" + std::string(kernel_isa_name(*isa)) +
                "' is not supported by this CPU (best available: " + std::string(kernel_isa_name(best_kernel_isa())) +
                ")");
  g_forced.store(isa ? static_cast<int>(*isa) : kUnset, std::memory_order_relaxed);
}

}  // namespace pimqat::pim
