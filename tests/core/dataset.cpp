// Dataset readers on small generated IDX and CIFAR files (plain and gzip), corrupt files, and
// the real Fashion-MNIST when Debian's package is installed.
#include "core/dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace pimqat {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("pimqat_dataset_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
    ASSERT_EQ(gzclose(f), Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

void put_u32_be(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// An IDX image file of `count` images of rows x cols with pixel (i, y, x) = (7i + 3y + x) mod 256.
std::vector<std::uint8_t> idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  std::vector<std::uint8_t> out;
  put_u32_be(out, 0x00000803u);
  put_u32_be(out, count);
  put_u32_be(out, rows);
  put_u32_be(out, cols);
  for (std::uint32_t i = 0; i < count; ++i)
    for (std::uint32_t y = 0; y < rows; ++y)
      for (std::uint32_t x = 0; x < cols; ++x) out.push_back(static_cast<std::uint8_t>(7 * i + 3 * y + x));
  return out;
}

std::vector<std::uint8_t> idx_labels(std::uint32_t count, std::uint32_t classes) {
  std::vector<std::uint8_t> out;
  put_u32_be(out, 0x00000801u);
  put_u32_be(out, count);
  for (std::uint32_t i = 0; i < count; ++i) out.push_back(static_cast<std::uint8_t>((i * 3) % classes));
  return out;
}

// Runs `f`, expects a pimqat::Error whose message contains every one of `needles`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected a pimqat::Error mentioning '" << needles.front() << "'";
  } catch (const Error& e) {
    for (const auto& needle : needles)
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what() << "\nmissing: " << needle;
  }
}

void check_idx_content(const Dataset& d, std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  ASSERT_EQ(d.size(), count);
  ASSERT_EQ(d.channels(), 1);
  ASSERT_EQ(d.height(), static_cast<int>(rows));
  ASSERT_EQ(d.width(), static_cast<int>(cols));
  ASSERT_EQ(d.labels.size(), count);
  for (std::uint32_t i = 0; i < count; ++i) {
    EXPECT_EQ(d.labels[i], static_cast<std::int32_t>((i * 3) % 10));
    for (std::uint32_t y = 0; y < rows; ++y)
      for (std::uint32_t x = 0; x < cols; ++x)
        ASSERT_EQ(d.images.at(i, 0, y, x), static_cast<float>((7 * i + 3 * y + x) % 256) / 255.0f);
  }
}

TEST(DatasetIdx, ReadsPlainAndGzipFiles) {
  TempDir dir;
  for (bool gzip : {false, true}) {
    const std::string images = dir.file(gzip ? "img.gz" : "img"), labels = dir.file(gzip ? "lab.gz" : "lab");
    write_bytes(images, idx_images(13, 5, 7), gzip);
    write_bytes(labels, idx_labels(13, 10), gzip);
    const Dataset d = read_idx(images, labels, 10, "test");
    EXPECT_EQ(d.name, "test");
    EXPECT_EQ(d.classes, 10);
    check_idx_content(d, 13, 5, 7);
  }
}

TEST(DatasetIdx, GzipDetectedFromContentNotName) {
  TempDir dir;
  write_bytes(dir.file("images.bin"), idx_images(3, 4, 4), true);   // gzip without .gz
  write_bytes(dir.file("labels.gz"), idx_labels(3, 10), false);     // plain with .gz
  check_idx_content(read_idx(dir.file("images.bin"), dir.file("labels.gz"), 10, "t"), 3, 4, 4);
}

TEST(DatasetIdx, DirectoryLoaderPrefersGzip) {
  TempDir dir;
  write_bytes(dir.file("train-images-idx3-ubyte.gz"), idx_images(11, 6, 6), true);
  write_bytes(dir.file("train-labels-idx1-ubyte.gz"), idx_labels(11, 10), true);
  // A plain file next to the .gz one is ignored: make it corrupt to prove it.
  write_bytes(dir.file("train-images-idx3-ubyte"), {1, 2, 3}, false);
  write_bytes(dir.file("t10k-images-idx3-ubyte"), idx_images(4, 6, 6), false);
  write_bytes(dir.file("t10k-labels-idx1-ubyte"), idx_labels(4, 10), false);
  const DatasetPair pair = load_dataset("mnist", dir.path().string());
  check_idx_content(pair.train, 11, 6, 6);
  check_idx_content(pair.test, 4, 6, 6);
  EXPECT_EQ(pair.train.name, "mnist");
}

TEST(DatasetIdx, MissingFileNamesBothCandidates) {
  TempDir dir;
  write_bytes(dir.file("train-images-idx3-ubyte.gz"), idx_images(2, 3, 3), true);
  expect_error([&] { load_mnist_like(dir.path().string(), "mnist"); },
               {"train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte'", "dataset.dir"});
  expect_error([&] { load_mnist_like(dir.file("nowhere"), "mnist"); }, {"nowhere", "does not exist"});
}

TEST(DatasetIdx, BadMagic) {
  TempDir dir;
  auto images = idx_images(3, 4, 4);
  images[3] = 0x01;  // 0x801: a label file given as images
  write_bytes(dir.file("img"), images, false);
  write_bytes(dir.file("lab"), idx_labels(3, 10), false);
  expect_error([&] { read_idx(dir.file("img"), dir.file("lab"), 10, "t"); }, {dir.file("img"), "magic", "0x00000803"});
  // Swapped files.
  write_bytes(dir.file("img"), idx_images(3, 4, 4), false);
  expect_error([&] { read_idx(dir.file("lab"), dir.file("img"), 10, "t"); }, {dir.file("lab"), "0x00000801"});
}

TEST(DatasetIdx, Truncated) {
  TempDir dir;
  auto images = idx_images(5, 4, 4);
  images.resize(images.size() - 1);
  write_bytes(dir.file("img"), images, false);
  write_bytes(dir.file("lab"), idx_labels(5, 10), false);
  expect_error([&] { read_idx(dir.file("img"), dir.file("lab"), 10, "t"); }, {dir.file("img"), "truncated", "80"});
  // Truncated header.
  write_bytes(dir.file("img"), {0, 0, 8, 3, 0, 0}, false);
  expect_error([&] { read_idx(dir.file("img"), dir.file("lab"), 10, "t"); }, {dir.file("img"), "truncated"});
  // A gzip stream cut in the middle.
  write_bytes(dir.file("full.gz"), idx_images(50, 8, 8), true);
  std::ifstream in(dir.file("full.gz"), std::ios::binary);
  std::vector<std::uint8_t> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  write_bytes(dir.file("cut.gz"), gz, false);
  expect_error([&] { read_idx(dir.file("cut.gz"), dir.file("lab"), 10, "t"); }, {dir.file("cut.gz")});
  // Too long.
  images = idx_images(5, 4, 4);
  images.push_back(0);
  write_bytes(dir.file("img"), images, false);
  expect_error([&] { read_idx(dir.file("img"), dir.file("lab"), 10, "t"); }, {dir.file("img"), "81"});
}

TEST(DatasetIdx, LabelOutOfRange) {
  TempDir dir;
  write_bytes(dir.file("img"), idx_images(5, 2, 2), false);
  auto labels = idx_labels(5, 10);
  labels[8 + 3] = 10;
  write_bytes(dir.file("lab"), labels, false);
  expect_error([&] { read_idx(dir.file("img"), dir.file("lab"), 10, "t"); }, {dir.file("lab"), "label 3 is 10", "0..9"});
}

TEST(DatasetIdx, CountMismatch) {
  TempDir dir;
  write_bytes(dir.file("img"), idx_images(5, 2, 2), false);
  write_bytes(dir.file("lab"), idx_labels(6, 10), false);
  expect_error([&] { read_idx(dir.file("img"), dir.file("lab"), 10, "t"); },
               {dir.file("img"), dir.file("lab"), "6 labels", "5 images"});
}

TEST(DatasetIdx, MissingFile) {
  TempDir dir;
  write_bytes(dir.file("lab"), idx_labels(6, 10), false);
  expect_error([&] { read_idx(dir.file("absent"), dir.file("lab"), 10, "t"); }, {dir.file("absent"), "cannot open"});
}

// A CIFAR batch of `count` records; record r of batch b has label (r + b) mod classes (fine
// label for CIFAR-100, coarse = fine / 5) and pixel k = (r * 5 + k + b) mod 256.
std::vector<std::uint8_t> cifar_batch(int count, int classes, int b) {
  std::vector<std::uint8_t> out;
  for (int r = 0; r < count; ++r) {
    const int label = (r + b) % classes;
    if (classes == 100) out.push_back(static_cast<std::uint8_t>(label / 5));
    out.push_back(static_cast<std::uint8_t>(label));
    for (int k = 0; k < 3072; ++k) out.push_back(static_cast<std::uint8_t>(r * 5 + k + b));
  }
  return out;
}

void check_cifar(const Dataset& d, const std::vector<int>& counts, int classes, int first_batch) {
  Index n = 0;
  for (std::size_t b = 0; b < counts.size(); ++b) {
    for (int r = 0; r < counts[b]; ++r, ++n) {
      const int batch = first_batch + static_cast<int>(b);
      ASSERT_EQ(d.labels[static_cast<std::size_t>(n)], (r + batch) % classes);
      for (int k = 0; k < 3072; k += 97)
        ASSERT_EQ(d.images[n * 3072 + k], static_cast<float>((r * 5 + k + batch) % 256) / 255.0f);
      // Layout: k = c * 1024 + y * 32 + x.
      ASSERT_EQ(d.images.at(n, 2, 5, 7), static_cast<float>((r * 5 + 2 * 1024 + 5 * 32 + 7 + batch) % 256) / 255.0f);
    }
  }
  ASSERT_EQ(d.size(), n);
}

TEST(DatasetCifar, Cifar10) {
  TempDir dir;
  const std::vector<int> counts = {3, 1, 4, 2, 5};
  for (int b = 1; b <= 5; ++b)
    write_bytes(dir.file("data_batch_" + std::to_string(b) + ".bin"), cifar_batch(counts[b - 1], 10, b), false);
  write_bytes(dir.file("test_batch.bin"), cifar_batch(6, 10, 0), false);
  const DatasetPair pair = load_dataset("cifar10", dir.path().string());
  EXPECT_EQ(pair.train.classes, 10);
  EXPECT_EQ(pair.train.channels(), 3);
  EXPECT_EQ(pair.train.height(), 32);
  EXPECT_EQ(pair.train.width(), 32);
  check_cifar(pair.train, counts, 10, 1);
  check_cifar(pair.test, {6}, 10, 0);
}

TEST(DatasetCifar, Cifar100InArchiveSubdirectory) {
  TempDir dir;
  fs::create_directories(dir.path() / "cifar-100-binary");
  write_bytes(dir.file("cifar-100-binary/train.bin"), cifar_batch(7, 100, 1), false);
  write_bytes(dir.file("cifar-100-binary/test.bin"), cifar_batch(3, 100, 0), false);
  const DatasetPair pair = load_dataset("cifar100", dir.path().string());
  EXPECT_EQ(pair.train.classes, 100);
  EXPECT_EQ(pair.train.name, "cifar100");
  check_cifar(pair.train, {7}, 100, 1);
  check_cifar(pair.test, {3}, 100, 0);
}

TEST(DatasetCifar, CorruptFiles) {
  TempDir dir;
  for (int b = 1; b <= 5; ++b) write_bytes(dir.file("data_batch_" + std::to_string(b) + ".bin"), cifar_batch(2, 10, b), false);
  write_bytes(dir.file("test_batch.bin"), cifar_batch(2, 10, 0), false);
  // Truncated.
  auto bytes = cifar_batch(2, 10, 3);
  bytes.pop_back();
  write_bytes(dir.file("data_batch_3.bin"), bytes, false);
  expect_error([&] { load_cifar(dir.path().string(), 10); }, {dir.file("data_batch_3.bin"), "3073", "truncated"});
  // Label out of range.
  bytes = cifar_batch(2, 10, 3);
  bytes[3073] = 10;
  write_bytes(dir.file("data_batch_3.bin"), bytes, false);
  expect_error([&] { load_cifar(dir.path().string(), 10); }, {dir.file("data_batch_3.bin"), "record 1", "label 10", "0..9"});
  // Missing file.
  fs::remove(dir.file("data_batch_3.bin"));
  expect_error([&] { load_cifar(dir.path().string(), 10); }, {dir.file("data_batch_3.bin"), "missing"});
  // CIFAR-100 with a fine label of 100.
  bytes = cifar_batch(2, 100, 0);
  bytes[1] = 100;
  write_bytes(dir.file("train.bin"), bytes, false);
  write_bytes(dir.file("test.bin"), cifar_batch(2, 100, 0), false);
  expect_error([&] { load_cifar(dir.path().string(), 100); }, {dir.file("train.bin"), "label 100", "0..99"});
  // A CIFAR-10 file read as CIFAR-100: 3073-byte records are not a multiple of 3074.
  write_bytes(dir.file("train.bin"), cifar_batch(5, 10, 0), false);
  expect_error([&] { load_cifar(dir.path().string(), 100); }, {dir.file("train.bin"), "3074"});
}

TEST(Dataset, NamesAndDirectories) {
  expect_error([] { load_dataset("imagenet", ""); }, {"imagenet", "fashion-mnist", "mnist", "cifar10", "cifar100"});
  expect_error([] { load_dataset("cifar10", ""); }, {"cifar10", "dataset.dir"});
  expect_error([] { load_dataset("cifar100", ""); }, {"cifar100", "dataset.dir"});
  expect_error([] { load_dataset("mnist", ""); }, {"mnist", "dataset.dir"});
  EXPECT_EQ(parse_dataset_name("cifar100"), DatasetName::Cifar100);
  ASSERT_EQ(dataset_names().size(), 4u);
}

TEST(Dataset, ChannelStatsAgainstNaive) {
  Dataset d;
  d.images.resize({5, 3, 3, 7});
  RandomStream stream(RngKey{42, 0, Purpose::Synthetic, 0});
  for (Index i = 0; i < d.images.size(); ++i) d.images[i] = stream.uniform();
  const ChannelStats stats = channel_stats(d);
  ASSERT_EQ(stats.mean.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    double mean = 0.0;
    for (Index n = 0; n < 5; ++n)
      for (Index y = 0; y < 3; ++y)
        for (Index x = 0; x < 7; ++x) mean += d.images.at(n, c, y, x);
    mean /= 105.0;
    double var = 0.0;
    for (Index n = 0; n < 5; ++n)
      for (Index y = 0; y < 3; ++y)
        for (Index x = 0; x < 7; ++x) var += (d.images.at(n, c, y, x) - mean) * (d.images.at(n, c, y, x) - mean);
    var /= 105.0;
    EXPECT_NEAR(stats.mean[static_cast<std::size_t>(c)], mean, 1e-6);
    EXPECT_NEAR(stats.stddev[static_cast<std::size_t>(c)], std::sqrt(var), 1e-6);
  }
}

TEST(Dataset, RealFashionMnist) {
  if (!fs::is_directory(kDefaultFashionMnistDir)) GTEST_SKIP() << kDefaultFashionMnistDir << " is not installed";
  const DatasetPair pair = load_dataset("fashion-mnist", "");
  EXPECT_EQ(pair.train.size(), 60000);
  EXPECT_EQ(pair.test.size(), 10000);
  for (const Dataset* d : {&pair.train, &pair.test}) {
    EXPECT_EQ(d->channels(), 1);
    EXPECT_EQ(d->height(), 28);
    EXPECT_EQ(d->width(), 28);
    EXPECT_EQ(d->classes, 10);
    std::vector<int> histogram(10, 0);
    for (auto label : d->labels) {
      ASSERT_GE(label, 0);
      ASSERT_LT(label, 10);
      ++histogram[static_cast<std::size_t>(label)];
    }
    for (int count : histogram) EXPECT_EQ(count, d->size() / 10);  // Fashion-MNIST is balanced
    const auto [lowest, highest] = std::minmax_element(d->images.data(), d->images.data() + d->images.size());
    EXPECT_EQ(*lowest, 0.0f);
    EXPECT_EQ(*highest, 1.0f);
  }
  const ChannelStats stats = channel_stats(pair.train);
  EXPECT_NEAR(stats.mean[0], 0.2860, 1e-3);   // the commonly quoted Fashion-MNIST statistics
  EXPECT_NEAR(stats.stddev[0], 0.3530, 1e-3);
}

}  // namespace
}  // namespace pimqat
