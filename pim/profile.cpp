#include "pim/profile.h"

#include <atomic>
#include <mutex>

namespace pimqat::pim {
namespace {

std::atomic<bool> g_on{false};
std::mutex g_mutex;
PimProfile g_profile;

}  // namespace

std::string_view pim_phase_name(PimPhase phase) {
  switch (phase) {
    case PimPhase::Quantize: return "quantize";
    case PimPhase::PackActivations: return "pack_activations";
    case PimPhase::PackWeights: return "pack_weights";
    case PimPhase::PimGemm: return "pim_gemm";
    case PimPhase::Rho: return "rho";
    case PimPhase::Output: return "output";
    case PimPhase::BackwardConv: return "backward_conv";
    case PimPhase::BackwardQuantize: return "backward_quantize";
    case PimPhase::Count: break;
  }
  return "unknown";
}

void set_pim_profiling(bool on) { g_on.store(on, std::memory_order_relaxed); }
bool pim_profiling() { return g_on.load(std::memory_order_relaxed); }

PimProfile pim_profile() {
  std::lock_guard lock(g_mutex);
  return g_profile;
}

void reset_pim_profile() {
  std::lock_guard lock(g_mutex);
  g_profile = PimProfile{};
}

void add_pim_phase_time(PimPhase phase, double seconds) {
  std::lock_guard lock(g_mutex);
  g_profile.seconds[static_cast<std::size_t>(phase)] += seconds;
}

void count_pim_pass(bool backward) {
  if (!pim_profiling()) return;
  std::lock_guard lock(g_mutex);
  ++(backward ? g_profile.backwards : g_profile.forwards);
}

}  // namespace pimqat::pim
