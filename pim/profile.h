#pragma once
// Wall-clock time spent in the phases of PimConv2d's forward and backward passes, summed over all
// PIM layers of the process, for benchmarks (bench/pim_speed.cpp). Off by default; when off a
// phase costs one relaxed atomic load. Timing happens on the calling thread, outside OpenMP
// regions (each phase is a whole parallel operation).
#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace pimqat::pim {

enum class PimPhase {
  Quantize,       // nn's quantizers in forward (activation PACT + tanh weights)
  PackActivations,
  PackWeights,
  PimGemm,        // the PIM product y~ and the exact integer product from the same partial sums
  Rho,            // std(y~), std(y)
  Output,         // s_a s_w y~ / rho into the float output
  BackwardConv,   // oneDNN backward_data + backward_weights (+ rho scaling)
  BackwardQuantize,  // nn's quantizers' straight-through backward
  Count
};
inline constexpr int kPimPhaseCount = static_cast<int>(PimPhase::Count);

std::string_view pim_phase_name(PimPhase phase);

struct PimProfile {
  std::array<double, kPimPhaseCount> seconds{};
  std::int64_t forwards = 0;
  std::int64_t backwards = 0;
};

void set_pim_profiling(bool on);
bool pim_profiling();
PimProfile pim_profile();
void reset_pim_profile();
void add_pim_phase_time(PimPhase phase, double seconds);
void count_pim_pass(bool backward);

// Adds the time from construction to stop() (or destruction) to `phase` when profiling is on.
class PimPhaseTimer {
 public:
  explicit PimPhaseTimer(PimPhase phase) : phase_(phase), on_(pim_profiling()) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  ~PimPhaseTimer() { stop(); }
  PimPhaseTimer(const PimPhaseTimer&) = delete;
  PimPhaseTimer& operator=(const PimPhaseTimer&) = delete;
  void stop() {
    if (!on_) return;
    on_ = false;
    add_pim_phase_time(phase_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  PimPhase phase_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace pimqat::pim
