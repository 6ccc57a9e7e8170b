// Regression tests for the IDX reader from the hardening work (docs/reliability.md): inputs that
// crashed or misled a reader become tests of the normal suite. Each file here is the minimal
// input; the test states what a correct reader does with it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/dataset.h"
#include "core/error.h"
#include "core/tensor.h"

namespace pimqat {
namespace {

namespace fs = std::filesystem;

std::string u32_be(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string write(const std::string& name, const std::string& bytes) {
  const fs::path path = fs::temp_directory_path() / ("pimqat-regression-idx-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

// The header's dimensions multiply to 16 * 2^30 * 2^30 = 2^64, which wraps to 0 in 64 bits and so
// "matches" an empty payload. A correct reader refuses the file (the product does not fit, and the
// file holds no pixels for 16 images); the reader instead returned a dataset whose tensor claims
// 16 x 1 x 2^30 x 2^30 with no storage (Shape::numel overflows to 0, undefined behaviour), and
// the first use of the images (channel_stats, training) read far out of bounds. Fixed in
// core/dataset.cpp idx_dims (checked product) and core/tensor.cpp Shape::numel.
TEST(RegressionIdx, DimensionProductThatWrapsIsRefused) {
  const std::string images = write("images", u32_be(0x803) + u32_be(16) + u32_be(1u << 30) + u32_be(1u << 30));
  std::string labels = u32_be(0x801) + u32_be(16);
  labels += std::string(16, '\1');
  const std::string label_path = write("labels", labels);
  EXPECT_THROW((void)read_idx(images, label_path, 10, "wrap"), Error);
  fs::remove(images);
  fs::remove(label_path);
}

// The tensor side on its own: a shape whose element count does not fit in 63 bits is an Error
// (it was a wrapped, undefined size), one that just fits is not.
TEST(RegressionIdx, ShapeWhoseElementCountOverflowsIsAnError) {
  const Index big = Index{1} << 31;
  EXPECT_THROW((void)Shape({big, big, 2}).numel(), Error);  // 2^63
  EXPECT_THROW((void)Shape({16, 1, Index{1} << 30, Index{1} << 30}).numel(), Error);
  EXPECT_EQ(Shape({big, big, 1}).numel(), Index{1} << 62);
  EXPECT_EQ(Shape({3, 5, 7, 11}).numel(), 1155);
}

// The same with a small product that also fits: a header of 2 x 3 x 4 with exactly 24 pixels
// reads as it should (the guard against wrapping must not refuse real files).
TEST(RegressionIdx, SmallFileWithExactPayloadReads) {
  std::string image_bytes = u32_be(0x803) + u32_be(2) + u32_be(3) + u32_be(4);
  for (int i = 0; i < 24; ++i) image_bytes += static_cast<char>(i * 10);
  const std::string images = write("images-ok", image_bytes);
  const std::string labels = write("labels-ok", u32_be(0x801) + u32_be(2) + std::string("\3\7"));
  const Dataset d = read_idx(images, labels, 10, "ok");
  ASSERT_EQ(d.size(), 2);
  EXPECT_EQ(d.height(), 3);
  EXPECT_EQ(d.width(), 4);
  EXPECT_EQ(d.images.size(), 24);
  EXPECT_FLOAT_EQ(d.images.data()[23], 230.0f / 255.0f);
  EXPECT_EQ(d.labels[1], 7);
  fs::remove(images);
  fs::remove(labels);
}

}  // namespace
}  // namespace pimqat
