#include "core/augment.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace pimqat {
namespace {

// floor(bits * n / 2^32): uniform in [0, n) up to a bias below n / 2^32.
std::uint32_t scale_to(std::uint32_t bits, std::uint32_t n) {
  return static_cast<std::uint32_t>((std::uint64_t{bits} * n) >> 32);
}

void check_options(const Dataset& data, const std::uint32_t* indices, Index count, const AugmentOptions& options) {
  const auto channels = static_cast<std::size_t>(data.channels());
  if (options.crop_padding < 0)
    throw Error("augmentation: crop_padding must be >= 0, got " + std::to_string(options.crop_padding));
  if (options.mean.size() != options.stddev.size() || (!options.mean.empty() && options.mean.size() != channels))
    throw Error("augmentation: normalization needs one mean and one stddev per channel (" + std::to_string(channels) +
                " for " + data.name + "), got " + std::to_string(options.mean.size()) + " means and " +
                std::to_string(options.stddev.size()) + " stddevs");
  for (std::size_t c = 0; c < options.stddev.size(); ++c)
    if (!(options.stddev[c] > 0.0f))
      throw Error("augmentation: stddev[" + std::to_string(c) + "] = " + std::to_string(options.stddev[c]) +
                  " must be > 0");
  const Index n = data.size();
  for (Index j = 0; j < count; ++j)
    if (static_cast<Index>(indices[j]) >= n)
      throw Error("make_batch: sample index " + std::to_string(indices[j]) + " is out of range for dataset '" +
                  data.name + "' of " + std::to_string(n) + " images");
}

}  // namespace

void make_batch(const Dataset& data, const std::uint32_t* indices, Index count, const AugmentOptions& options,
                const RngKey* augment_key, std::uint64_t first_position, Tensor& batch,
                std::vector<std::int32_t>& labels) {
  PIMQAT_ASSERT(count >= 0);
  check_options(data, indices, count, options);
  const Index channels = data.channels(), height = data.height(), width = data.width();
  const Index plane = height * width, image = channels * plane;
  batch.resize({count, channels, height, width});
  labels.resize(static_cast<std::size_t>(count));
  for (Index j = 0; j < count; ++j) labels[static_cast<std::size_t>(j)] = data.labels[indices[j]];

  const int pad = options.crop_padding;
  const bool random = augment_key != nullptr && (pad > 0 || options.flip);
  const RandomStream stream = augment_key ? RandomStream(*augment_key) : RandomStream();
  const bool normalize = !options.mean.empty();
  // Scale and shift per channel: (x - mean) / stddev computed as a division, so that the result is
  // bit-identical to torchvision's Normalize ((x - mean) / std in float).
  const float* mean = options.mean.data();
  const float* stddev = options.stddev.data();

#pragma omp parallel for schedule(static)
  for (Index j = 0; j < count; ++j) {
    const float* src = data.images.data() + static_cast<Index>(indices[j]) * image;
    float* dst = batch.data() + j * image;
    Index dy = pad, dx = pad;  // window offsets into the padded image; pad = centred (no crop)
    bool flip = false;
    if (random) {
      const PhiloxBlock block = stream.block(first_position + static_cast<std::uint64_t>(j));
      const auto choices = static_cast<std::uint32_t>(2 * pad + 1);
      dy = scale_to(block[0], choices);
      dx = scale_to(block[1], choices);
      flip = options.flip && (block[2] >> 31) != 0;
    }
    // Output (y, x) reads source row y + dy - pad and column (flip ? W-1-x : x) + dx - pad,
    // or zero outside the image.
    for (Index c = 0; c < channels; ++c) {
      const float m = normalize ? mean[c] : 0.0f;
      const float s = normalize ? stddev[c] : 1.0f;
      for (Index y = 0; y < height; ++y) {
        float* out = dst + c * plane + y * width;
        const Index sy = y + dy - pad;
        if (sy < 0 || sy >= height) {
          std::fill(out, out + width, normalize ? (0.0f - m) / s : 0.0f);
          continue;
        }
        const float* row = src + c * plane + sy * width;
        for (Index x = 0; x < width; ++x) {
          const Index sx = (flip ? width - 1 - x : x) + dx - pad;
          const float v = (sx >= 0 && sx < width) ? row[sx] : 0.0f;
          out[x] = normalize ? (v - m) / s : v;
        }
      }
    }
  }
}

}  // namespace pimqat
