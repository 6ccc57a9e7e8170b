#pragma once
// Mini-batch assembly with data augmentation (random crop with zero padding, horizontal flip)
// and per-channel normalization. All randomness comes from the keyed RNG (DESIGN.md 2.6), one
// Philox block per sample, so a batch depends only on (key, positions, indices): never on the
// number of OpenMP threads or on which thread handles which sample.
//
// Order of operations, the same as torchvision's
// `Compose([RandomCrop(H, padding=p), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)])`:
//   1. pad the raw image (values in [0, 1]) with p zeros on every side: (H + 2p) x (W + 2p);
//   2. take the H x W window whose top-left corner is (dy, dx), dy, dx uniform in [0, 2p];
//   3. mirror it left-right with probability 1/2;
//   4. normalize every pixel: (x - mean[c]) / stddev[c].
// So padded pixels are 0 *before* normalization and become -mean[c] / stddev[c] afterwards.
//
// Random draws of sample j (block b = RandomStream(key).block(first_position + j)):
//   dy = floor(b[0] * (2p + 1) / 2^32), dx = floor(b[1] * (2p + 1) / 2^32), flip = b[2] >> 31.
// (Multiply-shift; the bias is below (2p + 1) / 2^32, far under anything measurable.)
// A caller that draws one batch after another advances first_position by the batch size, e.g.
// epoch e uses key.with(Purpose::Augmentation, e) and position = index of the sample in the epoch.
#include <cstdint>
#include <vector>

#include "core/dataset.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace pimqat {

struct AugmentOptions {
  int crop_padding = 0;  // p above; 0 = no random crop
  bool flip = false;     // random horizontal flip with probability 1/2
  // Per-channel normalization; both empty = none, else both of size C with stddev > 0.
  std::vector<float> mean, stddev;
};

// Copies samples indices[0..count) of `data` into `batch` (resized to (count, C, H, W); its
// allocation is reused), normalized per channel, and their labels into `labels` (resized to
// count). If `augment_key` is non-null, sample j is cropped and flipped as above with block
// `first_position + j` of RandomStream(*augment_key); if it is null, or p = 0 and flip is off,
// the images are copied unchanged (then normalized).
// Errors: an index >= data.size(), mean/stddev of the wrong size, stddev <= 0, negative padding.
void make_batch(const Dataset& data, const std::uint32_t* indices, Index count, const AugmentOptions& options,
                const RngKey* augment_key, std::uint64_t first_position, Tensor& batch,
                std::vector<std::int32_t>& labels);

}  // namespace pimqat
