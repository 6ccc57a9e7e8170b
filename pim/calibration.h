#pragma once
// BN calibration for one die (DESIGN.md 2.5): reset every BatchNorm2d's running statistics and
// every PIM layer's running rho, run forward passes only over B batches of training images with
// the model as it is (attach the die first: its non-ideal ADCs and thermal noise are then on),
// and leave exact cumulative averages over those batches (nn/batchnorm.h, pim/pim_conv.h).
// No weight or alpha changes.
//
// Batches: the training set in the order of a shuffle by RandomStream(order_key) (the caller keys
// it, e.g. (seed, model, Purpose::DataOrder, kCalibrationOrderIndex)), normalized, not augmented;
// batch b holds positions [b B_s, (b+1) B_s) of that order, wrapping around the dataset if
// B * B_s exceeds it. Every die of a model sees the same images.
#include <atomic>
#include <cstdint>

#include "core/augment.h"
#include "core/dataset.h"
#include "core/rng.h"
#include "nn/layer.h"

namespace pimqat::pim {

// The DataOrder stream index used for calibration batches (far from any epoch number).
inline constexpr std::uint64_t kCalibrationOrderIndex = std::uint64_t{1} << 40;

struct CalibrationStats {
  int batches = 0;
  Index images = 0;
  int batch_norm_layers = 0;
  int pim_layers = 0;
};

// Throws pimqat::Error for batches < 1, batch_size < 2 or an empty training set, and
// pimqat::Interrupted before a batch when `stop` is set. The model's layers are left with
// calibration switched off, also when an exception escapes.
CalibrationStats calibrate_batch_norm(nn::Layer& model, const Dataset& train, const AugmentOptions& normalization,
                                      int batches, int batch_size, const RngKey& order_key,
                                      const std::atomic<bool>* stop = nullptr);

}  // namespace pimqat::pim
