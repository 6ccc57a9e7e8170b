// Batch assembly: crop/flip/normalize against a naive padded-image reference, determinism across
// thread counts, and the plain-copy path.
#include "core/augment.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <set>
#include <vector>

#include "core/error.h"

namespace pimqat {
namespace {

// A dataset of n random images (C x H x W) with labels i mod 10.
Dataset random_dataset(Index n, Index c, Index h, Index w) {
  Dataset d;
  d.name = "synthetic";
  d.classes = 10;
  d.images.resize({n, c, h, w});
  RandomStream s(RngKey{7, 0, Purpose::Synthetic, 0});
  for (Index i = 0; i < d.images.size(); ++i) d.images[i] = s.uniform();
  for (Index i = 0; i < n; ++i) d.labels.push_back(static_cast<std::int32_t>(i % 10));
  return d;
}

// The torchvision pipeline written out literally: build the zero-padded image, cut the window,
// mirror it, normalize. Draws as documented in core/augment.h.
std::vector<float> reference_sample(const Dataset& d, std::uint32_t index, const AugmentOptions& o, const RngKey& key,
                                    std::uint64_t position) {
  const Index C = d.channels(), H = d.height(), W = d.width(), p = o.crop_padding;
  const Index PH = H + 2 * p, PW = W + 2 * p;
  std::vector<float> padded(static_cast<std::size_t>(C * PH * PW), 0.0f);
  for (Index c = 0; c < C; ++c)
    for (Index y = 0; y < H; ++y)
      for (Index x = 0; x < W; ++x)
        padded[static_cast<std::size_t>((c * PH + y + p) * PW + x + p)] = d.images.at(index, c, y, x);
  const PhiloxBlock b = RandomStream(key).block(position);
  const auto n = static_cast<std::uint64_t>(2 * p + 1);
  const auto dy = static_cast<Index>((b[0] * n) >> 32), dx = static_cast<Index>((b[1] * n) >> 32);
  const bool flip = o.flip && b[2] >= 0x80000000u;
  std::vector<float> out(static_cast<std::size_t>(C * H * W));
  for (Index c = 0; c < C; ++c)
    for (Index y = 0; y < H; ++y)
      for (Index x = 0; x < W; ++x) {
        float v = padded[static_cast<std::size_t>((c * PH + y + dy) * PW + x + dx)];
        const Index xo = flip ? W - 1 - x : x;
        if (!o.mean.empty()) v = (v - o.mean[static_cast<std::size_t>(c)]) / o.stddev[static_cast<std::size_t>(c)];
        out[static_cast<std::size_t>((c * H + y) * W + xo)] = v;
      }
  return out;
}

TEST(Augment, CropFlipNormalizeMatchNaiveReference) {
  const Dataset d = random_dataset(23, 3, 7, 5);  // odd, non-square
  const RngKey key = RngKey{99, 5, Purpose::Augmentation, 2};
  for (int pad : {0, 1, 3}) {
    for (bool flip : {false, true}) {
      AugmentOptions o;
      o.crop_padding = pad;
      o.flip = flip;
      o.mean = {0.1f, 0.5f, 0.9f};
      o.stddev = {0.3f, 1.0f, 2.0f};
      const std::vector<std::uint32_t> indices = {22, 0, 5, 5, 17, 3, 9, 11, 1, 20, 14};
      Tensor batch;
      std::vector<std::int32_t> labels;
      make_batch(d, indices.data(), static_cast<Index>(indices.size()), o, &key, 1000, batch, labels);
      ASSERT_EQ(batch.shape(), (Shape{11, 3, 7, 5}));
      ASSERT_EQ(labels.size(), indices.size());
      for (std::size_t j = 0; j < indices.size(); ++j) {
        EXPECT_EQ(labels[j], d.labels[indices[j]]);
        const auto expected = reference_sample(d, indices[j], o, key, 1000 + j);
        for (std::size_t k = 0; k < expected.size(); ++k)
          ASSERT_EQ(batch[static_cast<Index>(j) * 105 + static_cast<Index>(k)], expected[k])
              << "pad " << pad << " flip " << flip << " sample " << j << " element " << k;
      }
    }
  }
}

TEST(Augment, DrawsCoverAllOffsetsAndFlipHalfTheTime) {
  // One bright pixel at (0, 0) of a 4x4 image: where it lands tells the offset and the flip.
  Dataset d;
  d.name = "dot";
  d.images.resize({1, 1, 4, 4});
  d.images.zero();
  d.images[0] = 1.0f;
  d.labels = {0};
  AugmentOptions o;
  o.crop_padding = 2;
  o.flip = true;
  const std::vector<std::uint32_t> indices(4000, 0);
  const RngKey key{1, 2, Purpose::Augmentation, 0};
  Tensor batch;
  std::vector<std::int32_t> labels;
  make_batch(d, indices.data(), 4000, o, &key, 0, batch, labels);
  std::set<std::pair<Index, Index>> positions;
  int visible = 0, column0 = 0, column3 = 0;
  for (Index j = 0; j < 4000; ++j)
    for (Index k = 0; k < 16; ++k)
      if (batch[j * 16 + k] == 1.0f) {
        positions.insert({k / 4, k % 4});
        ++visible;
        column0 += k % 4 == 0;
        column3 += k % 4 == 3;
      }
  // dy, dx uniform in 0..4: the dot is at row 2 - dy, column 2 - dx (or mirrored) when inside,
  // i.e. visible with probability (3/5)^2 = 0.36, at rows 0..2 and all 4 columns thanks to flips.
  EXPECT_NEAR(visible / 4000.0, 0.36, 0.03);
  EXPECT_EQ(positions.size(), 12u);
  // Column 0 only without a flip (dx = 2), column 3 only with one (dx = 2): equally likely.
  EXPECT_NEAR(static_cast<double>(column3) / (column0 + column3), 0.5, 0.08);
}

TEST(Augment, DeterministicAcrossThreadCounts) {
  const Dataset d = random_dataset(300, 3, 12, 12);
  AugmentOptions o;
  o.crop_padding = 4;
  o.flip = true;
  o.mean = {0.4f, 0.5f, 0.6f};
  o.stddev = {0.2f, 0.25f, 0.3f};
  std::vector<std::uint32_t> indices(257);
  for (std::size_t j = 0; j < indices.size(); ++j) indices[j] = static_cast<std::uint32_t>((j * 37) % 300);
  const RngKey key{2024, 77, Purpose::Augmentation, 3};
  const int saved = omp_get_max_threads();
  Tensor one, two;
  std::vector<std::int32_t> labels_one, labels_two;
  omp_set_num_threads(1);
  make_batch(d, indices.data(), 257, o, &key, 512, one, labels_one);
  omp_set_num_threads(2);
  make_batch(d, indices.data(), 257, o, &key, 512, two, labels_two);
  omp_set_num_threads(saved);
  ASSERT_EQ(one.shape(), two.shape());
  for (Index i = 0; i < one.size(); ++i) ASSERT_EQ(one[i], two[i]) << i;
  EXPECT_EQ(labels_one, labels_two);
  // A batch split in two with matching positions gives the same samples.
  Tensor first, second;
  std::vector<std::int32_t> l1, l2;
  make_batch(d, indices.data(), 100, o, &key, 512, first, l1);
  make_batch(d, indices.data() + 100, 157, o, &key, 612, second, l2);
  for (Index i = 0; i < first.size(); ++i) ASSERT_EQ(first[i], one[i]);
  for (Index i = 0; i < second.size(); ++i) ASSERT_EQ(second[i], one[first.size() + i]);
  // Another key gives another batch.
  const RngKey other = key.with(Purpose::Augmentation, 4);
  make_batch(d, indices.data(), 257, o, &other, 512, two, labels_two);
  Index differing = 0;
  for (Index i = 0; i < one.size(); ++i) differing += one[i] != two[i];
  EXPECT_GT(differing, one.size() / 2);
}

TEST(Augment, NoAugmentationIsAPlainCopy) {
  const Dataset d = random_dataset(9, 2, 5, 3);
  const std::vector<std::uint32_t> indices = {8, 2, 2, 0};
  const RngKey key{1, 1, Purpose::Augmentation, 1};
  Tensor batch;
  std::vector<std::int32_t> labels;
  AugmentOptions plain;
  AugmentOptions no_random;  // a key but nothing random to do
  no_random.crop_padding = 0;
  no_random.flip = false;
  for (const RngKey* k : {static_cast<const RngKey*>(nullptr), &key}) {
    AugmentOptions with_crop;
    with_crop.crop_padding = 2;
    with_crop.flip = true;
    for (const AugmentOptions* o : {&plain, &no_random, &with_crop}) {
      if (k == &key && o == &with_crop) continue;  // that one is random
      make_batch(d, indices.data(), 4, *o, k, 0, batch, labels);
      ASSERT_EQ(batch.shape(), (Shape{4, 2, 5, 3}));
      for (Index j = 0; j < 4; ++j)
        for (Index e = 0; e < 30; ++e) ASSERT_EQ(batch[j * 30 + e], d.images[indices[static_cast<std::size_t>(j)] * 30 + e]);
      EXPECT_EQ(labels, (std::vector<std::int32_t>{8, 2, 2, 0}));
    }
  }
  // Normalization alone: (x - mean) / std.
  AugmentOptions norm;
  norm.mean = {0.25f, 0.75f};
  norm.stddev = {0.5f, 0.125f};
  make_batch(d, indices.data(), 4, norm, nullptr, 0, batch, labels);
  for (Index j = 0; j < 4; ++j)
    for (Index c = 0; c < 2; ++c)
      for (Index e = 0; e < 15; ++e)
        ASSERT_EQ(batch[j * 30 + c * 15 + e],
                  (d.images[indices[static_cast<std::size_t>(j)] * 30 + c * 15 + e] - norm.mean[static_cast<std::size_t>(c)]) /
                      norm.stddev[static_cast<std::size_t>(c)]);
  // An empty batch.
  make_batch(d, indices.data(), 0, plain, nullptr, 0, batch, labels);
  EXPECT_EQ(batch.size(), 0);
  EXPECT_TRUE(labels.empty());
}

TEST(Augment, RejectsBadArguments) {
  const Dataset d = random_dataset(4, 2, 3, 3);
  Tensor batch;
  std::vector<std::int32_t> labels;
  const std::uint32_t bad_index[] = {0, 4};
  EXPECT_THROW(make_batch(d, bad_index, 2, {}, nullptr, 0, batch, labels), Error);
  const std::uint32_t ok[] = {0, 3};
  AugmentOptions o;
  o.mean = {0.5f};
  o.stddev = {0.5f};  // one channel short
  EXPECT_THROW(make_batch(d, ok, 2, o, nullptr, 0, batch, labels), Error);
  o.mean = {0.5f, 0.5f};
  o.stddev = {0.5f, 0.0f};
  EXPECT_THROW(make_batch(d, ok, 2, o, nullptr, 0, batch, labels), Error);
  AugmentOptions negative;
  negative.crop_padding = -1;
  EXPECT_THROW(make_batch(d, ok, 2, negative, nullptr, 0, batch, labels), Error);
}

}  // namespace
}  // namespace pimqat
