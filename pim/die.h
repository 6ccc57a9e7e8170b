#pragma once
// Simulated dies (DESIGN.md 2.3, 2.6). A die is one chip: every physical ADC column of every PIM
// layer has its own gain and offset, fixed for the die, and every conversion adds fresh thermal
// noise. Everything is a pure function of counter-based random streams, so die d of a model is
// the same chip in every run, on every rank, in any order.
//
// Die parameters: stream key (seed, model, Purpose::DieParameters, index = die). Column c of PIM
// layer l (c numbered as Decomposition::columns(): (g C_out + o) T + t) uses Philox block
// (l << 40) | c of that stream: words 0, 1 -> gaussian_pair (pim/gaussian.h) -> (z0, z1);
//   gain   = fma(sigma_gamma, z0, 1),   offset = sigma_o z1 (LSB)
//   curve  = (word 2 * M) >> 32         (measured model: which of the M measured curves)
// Thermal noise: one stream per (die, layer, forward call): key (seed, model,
// Purpose::ThermalNoise, index = mix64(die ^ mix64(l ^ mix64(call)))); the noise of conversion j
// of that call is sigma thermal_normal_at(stream, j) (pim/gaussian.h; the kernel fixes j).
// `model` is the identity hash of the trained model (its training task), so every evaluation of
// one model sees the same dies; `seed` is the sweep seed.
#include <cstdint>
#include <memory>

#include "core/rng.h"
#include "nn/config.h"
#include "pim/adc.h"

namespace pimqat::pim {

inline constexpr std::uint64_t kMaxLayers = std::uint64_t{1} << 24;
inline constexpr std::uint64_t kMaxColumnsPerLayer = std::uint64_t{1} << 40;

// The non-ideal ADC settings of an evaluation.
struct NonIdeality {
  double gain_sigma = 0.0;    // sigma_gamma (paper's chip: 0.024)
  double offset_sigma = 0.0;  // sigma_o, LSB (paper's chip: 2.04)
  double noise_sigma = 0.0;   // thermal noise sigma, LSB per conversion
  CurveModel curve = CurveModel::Linear;
  double curve_strength = 0.0;  // smooth model: LSB at mid-range
  std::shared_ptr<const TransferCurves> curves;  // measured model

  // Throws pimqat::Error listing every problem.
  void validate() const;
  // True when the columns are all ideal (the noise may still be on).
  bool ideal_columns() const {
    return curve == CurveModel::Linear && gain_sigma == 0.0 && offset_sigma == 0.0;
  }
  // From the evaluation settings; loads eval.curve_file when eval.curve is measured.
  static NonIdeality from_config(const EvalConfig& eval);
};

class Die {
 public:
  Die(std::uint64_t seed, std::uint64_t model, std::uint64_t index, NonIdeality settings);

  std::uint64_t index() const { return index_; }
  const NonIdeality& settings() const { return settings_; }

  // The fixed parameters of one physical column.
  ColumnParams column(std::uint64_t layer, std::uint64_t column) const;
  // The ADC bank of one layer on this die (all `columns` drawn; ideal columns when the settings
  // have none); noise off until set_noise().
  AdcBank bank(std::uint64_t layer, const Adc& adc, std::int64_t columns) const;
  // The noise stream of one forward call of one layer (and its key), and a bank switched to it.
  RngKey noise_key(std::uint64_t layer, std::uint64_t forward_call) const;
  RandomStream noise_stream(std::uint64_t layer, std::uint64_t forward_call) const;
  void set_noise(AdcBank& bank, std::uint64_t layer, std::uint64_t forward_call) const;

 private:
  std::uint64_t seed_, model_, index_;
  NonIdeality settings_;
  RandomStream parameters_;
};

}  // namespace pimqat::pim
