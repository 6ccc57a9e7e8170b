#include "core/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>

#include "core/error.h"

namespace pimqat {
namespace {

namespace fs = std::filesystem;

// The whole (decompressed) content of a file. zlib's gz* functions read gzip files and plain
// files alike (a file without the gzip magic is passed through), so the format is detected
// from the content, never from the name.
std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error("cannot read '" + path + "': it is a directory, expected a file");
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) {
    const int err = errno;
    throw Error("cannot open '" + path + "': " + (err ? std::strerror(err) : "out of memory"));
  }
  gzbuffer(file, 1u << 20);
  std::vector<std::uint8_t> bytes;
  // Start from the on-disk size; gzip files grow, so the buffer doubles as needed.
  const auto disk_size = fs::file_size(path, ec);
  bytes.resize(std::max<std::size_t>(ec ? 0 : static_cast<std::size_t>(disk_size) + 1, 1u << 16));
  std::size_t used = 0;
  for (;;) {
    if (used == bytes.size()) bytes.resize(bytes.size() * 2);
    const std::size_t want = std::min<std::size_t>(bytes.size() - used, 1u << 30);
    const int got = gzread(file, bytes.data() + used, static_cast<unsigned>(want));
    if (got < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      throw Error("cannot read '" + path + "': " + message + " (corrupt or truncated gzip data)");
    }
    if (got == 0) break;
    used += static_cast<std::size_t>(got);
  }
  // A gzip stream cut short reads as a clean end of file in gzread; gzclose_r reports it.
  const int close_status = gzclose(file);
  if (close_status == Z_BUF_ERROR)
    throw Error("cannot read '" + path + "': the gzip stream ends early (the file is truncated)");
  if (close_status != Z_OK) throw Error("cannot read '" + path + "': gzip error " + std::to_string(close_status));
  bytes.resize(used);
  return bytes;
}

std::uint32_t big_endian_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

std::string hex32(std::uint32_t v) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "0x%08x", v);
  return buffer;
}

// Parses the header of an IDX file: magic (0x0000 08 <rank>, 0x08 = unsigned bytes) then `rank`
// big-endian uint32 dimensions. Checks that the payload has exactly prod(dims) bytes.
std::vector<std::uint32_t> idx_dims(const std::vector<std::uint8_t>& bytes, const std::string& path,
                                    std::uint32_t expected_magic, const char* what) {
  const auto rank = static_cast<std::size_t>(expected_magic & 0xFFu);
  if (bytes.size() < 4)
    throw Error("'" + path + "' is too short to be an IDX " + what + " file (" + std::to_string(bytes.size()) +
                " bytes; expected a 4-byte magic number " + hex32(expected_magic) + ")");
  const std::uint32_t magic = big_endian_u32(bytes.data());
  if (magic != expected_magic)
    throw Error("'" + path + "' is not an IDX " + what + " file: magic number " + hex32(magic) + ", expected " +
                hex32(expected_magic));
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < header)
    throw Error("'" + path + "' is truncated: the IDX header needs " + std::to_string(header) + " bytes, the file has " +
                std::to_string(bytes.size()));
  std::vector<std::uint32_t> dims(rank);
  std::uint64_t payload = 1;
  bool wraps = false;  // the product of the dimensions does not fit in 64 bits
  for (std::size_t i = 0; i < rank; ++i) {
    dims[i] = big_endian_u32(bytes.data() + 4 + 4 * i);
    wraps = wraps || __builtin_mul_overflow(payload, std::uint64_t{dims[i]}, &payload);
  }
  const std::uint64_t have = bytes.size() - header;
  std::string shape;
  for (std::size_t i = 0; i < rank; ++i) shape += (i ? " x " : "") + std::to_string(dims[i]);
  if (wraps)
    throw Error("'" + path + "' is not a valid IDX " + what + " file: the header's dimensions (" + shape +
                ") multiply past 2^64 data bytes; the file has " + std::to_string(have));
  if (have != payload) {
    throw Error("'" + path + "' is " + (have < payload ? "truncated" : "longer than its header says") + ": the header (" +
                shape + ") promises " + std::to_string(payload) + " data bytes, the file has " + std::to_string(have));
  }
  return dims;
}

// Pixel bytes become floats in [0, 1] as x / 255 (a correctly rounded division, bit-identical to
// torchvision's ToTensor; x * (1/255) would differ in the last bit for some x).
constexpr float kByteMax = 255.0f;

void bytes_to_unit_floats(const std::uint8_t* src, float* dst, std::size_t n) {
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) / kByteMax;
}

// "<dir>/<base>.gz" if it exists, else "<dir>/<base>" if it exists, else an error naming both.
std::string find_idx_file(const std::string& dir, const std::string& base, const std::string& name) {
  const fs::path gz = fs::path(dir) / (base + ".gz");
  const fs::path plain = fs::path(dir) / base;
  std::error_code ec;
  if (fs::is_regular_file(gz, ec)) return gz.string();
  if (fs::is_regular_file(plain, ec)) return plain.string();
  throw Error("missing " + name + " file: neither '" + gz.string() + "' nor '" + plain.string() +
              "' exists (set dataset.dir to a directory holding the IDX files " +
              "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz])");
}

void check_same_geometry(const Dataset& train, const Dataset& test, const std::string& dir) {
  if (train.channels() != test.channels() || train.height() != test.height() || train.width() != test.width())
    throw Error("dataset in '" + dir + "': training images are " + std::to_string(train.channels()) + "x" +
                std::to_string(train.height()) + "x" + std::to_string(train.width()) + " but test images are " +
                std::to_string(test.channels()) + "x" + std::to_string(test.height()) + "x" +
                std::to_string(test.width()) + "; both must have the same size");
}

// CIFAR binary format: records of `label_bytes` label bytes then 3 x 32 x 32 pixel bytes
// (channel-major: 1024 red, 1024 green, 1024 blue, each row-major), i.e. already CHW.
constexpr int kCifarChannels = 3;
constexpr int kCifarSide = 32;
constexpr std::size_t kCifarPixels = std::size_t{kCifarChannels} * kCifarSide * kCifarSide;

Dataset read_cifar_files(const std::vector<std::string>& paths, int classes, const std::string& name) {
  // CIFAR-10: 1 label byte. CIFAR-100: coarse label (20 classes) then fine label (100 classes).
  const std::size_t label_bytes = classes == 100 ? 2 : 1;
  const std::size_t record = label_bytes + kCifarPixels;
  std::vector<std::vector<std::uint8_t>> contents;
  std::size_t total = 0;
  for (const auto& path : paths) {
    contents.push_back(read_file_bytes(path));
    const std::size_t size = contents.back().size();
    if (size == 0 || size % record != 0)
      throw Error("'" + path + "' is not a " + name + " binary batch: its size " + std::to_string(size) +
                  " bytes is not a positive multiple of the " + std::to_string(record) + "-byte record (" +
                  std::to_string(label_bytes) + " label byte" + (label_bytes > 1 ? "s" : "") +
                  " + 3x32x32 pixels); the file may be truncated");
    total += size / record;
  }
  Dataset data;
  data.name = name;
  data.classes = classes;
  data.images.resize({static_cast<Index>(total), kCifarChannels, kCifarSide, kCifarSide});
  data.labels.resize(total);
  std::size_t n = 0;
  for (std::size_t f = 0; f < paths.size(); ++f) {
    const auto& bytes = contents[f];
    const std::size_t count = bytes.size() / record;
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint8_t* rec = bytes.data() + i * record;
      if (label_bytes == 2 && rec[0] >= 20)
        throw Error("'" + paths[f] + "': record " + std::to_string(i) + " has coarse label " + std::to_string(rec[0]) +
                    ", expected 0..19 (is this a CIFAR-100 file?)");
      const int label = rec[label_bytes - 1];
      if (label >= classes)
        throw Error("'" + paths[f] + "': record " + std::to_string(i) + " has label " + std::to_string(label) +
                    ", expected 0.." + std::to_string(classes - 1) + " for " + name);
      data.labels[n + i] = label;
    }
    float* images = data.images.data() + n * kCifarPixels;
#pragma omp parallel for schedule(static)
    for (std::size_t i = 0; i < count; ++i) {
      const std::uint8_t* pixels = bytes.data() + i * record + label_bytes;
      for (std::size_t k = 0; k < kCifarPixels; ++k) images[i * kCifarPixels + k] = static_cast<float>(pixels[k]) / kByteMax;
    }
    n += count;
  }
  return data;
}

// The CIFAR archives unpack into a sub-directory; accept the directory above it as well.
std::string cifar_data_dir(const std::string& dir, const std::string& first_file, const std::string& subdir) {
  std::error_code ec;
  if (fs::is_regular_file(fs::path(dir) / first_file, ec)) return dir;
  if (fs::is_regular_file(fs::path(dir) / subdir / first_file, ec)) return (fs::path(dir) / subdir).string();
  return dir;
}

}  // namespace

Dataset read_idx(const std::string& images_path, const std::string& labels_path, int classes,
                 const std::string& name) {
  if (classes <= 0 || classes > 256) throw Error("read_idx: classes must be in 1..256, got " + std::to_string(classes));
  const std::vector<std::uint8_t> image_bytes = read_file_bytes(images_path);
  const std::vector<std::uint32_t> image_dims = idx_dims(image_bytes, images_path, 0x00000803u, "image");
  const std::vector<std::uint8_t> label_bytes = read_file_bytes(labels_path);
  const std::vector<std::uint32_t> label_dims = idx_dims(label_bytes, labels_path, 0x00000801u, "label");
  const std::uint32_t count = image_dims[0], rows = image_dims[1], cols = image_dims[2];
  if (count == 0 || rows == 0 || cols == 0)
    throw Error("'" + images_path + "' holds " + std::to_string(count) + " images of " + std::to_string(rows) + "x" +
                std::to_string(cols) + " pixels; expected at least one non-empty image");
  if (label_dims[0] != count)
    throw Error("'" + labels_path + "' holds " + std::to_string(label_dims[0]) + " labels but '" + images_path +
                "' holds " + std::to_string(count) + " images; the counts must match");
  Dataset data;
  data.name = name;
  data.classes = classes;
  data.labels.resize(count);
  const std::uint8_t* labels = label_bytes.data() + 8;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (labels[i] >= classes)
      throw Error("'" + labels_path + "': label " + std::to_string(i) + " is " + std::to_string(labels[i]) +
                  ", expected 0.." + std::to_string(classes - 1));
    data.labels[i] = labels[i];
  }
  data.images.resize({static_cast<Index>(count), 1, static_cast<Index>(rows), static_cast<Index>(cols)});
  bytes_to_unit_floats(image_bytes.data() + 16, data.images.data(), static_cast<std::size_t>(data.images.size()));
  return data;
}

DatasetPair load_mnist_like(const std::string& dir, const std::string& name) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(name + ": dataset directory '" + dir + "' does not exist (set dataset.dir to the directory holding " +
                "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz])");
  DatasetPair pair;
  pair.train = read_idx(find_idx_file(dir, "train-images-idx3-ubyte", name),
                        find_idx_file(dir, "train-labels-idx1-ubyte", name), 10, name);
  pair.test = read_idx(find_idx_file(dir, "t10k-images-idx3-ubyte", name),
                       find_idx_file(dir, "t10k-labels-idx1-ubyte", name), 10, name);
  check_same_geometry(pair.train, pair.test, dir);
  return pair;
}

DatasetPair load_cifar(const std::string& given_dir, int classes) {
  if (classes != 10 && classes != 100)
    throw Error("load_cifar: classes must be 10 (CIFAR-10) or 100 (CIFAR-100), got " + std::to_string(classes));
  const std::string name = classes == 10 ? "cifar10" : "cifar100";
  if (given_dir.empty())
    throw Error(name + " has no default location: set dataset.dir to the directory of the binary version (" +
                (classes == 10 ? "data_batch_1.bin .. data_batch_5.bin, test_batch.bin" : "train.bin, test.bin") + ")");
  std::error_code ec;
  if (!fs::is_directory(given_dir, ec))
    throw Error(name + ": dataset directory '" + given_dir + "' does not exist (set dataset.dir)");
  std::vector<std::string> train_files, test_files;
  std::string dir;
  if (classes == 10) {
    dir = cifar_data_dir(given_dir, "data_batch_1.bin", "cifar-10-batches-bin");
    for (int b = 1; b <= 5; ++b) train_files.push_back((fs::path(dir) / ("data_batch_" + std::to_string(b) + ".bin")).string());
    test_files.push_back((fs::path(dir) / "test_batch.bin").string());
  } else {
    dir = cifar_data_dir(given_dir, "train.bin", "cifar-100-binary");
    train_files.push_back((fs::path(dir) / "train.bin").string());
    test_files.push_back((fs::path(dir) / "test.bin").string());
  }
  for (const auto* list : {&train_files, &test_files})
    for (const auto& path : *list)
      if (!fs::is_regular_file(path, ec))
        throw Error("missing " + name + " file '" + path + "' (dataset.dir must hold the binary version: " +
                    (classes == 10 ? "data_batch_1.bin .. data_batch_5.bin, test_batch.bin" : "train.bin, test.bin") +
                    ")");
  DatasetPair pair;
  pair.train = read_cifar_files(train_files, classes, name);
  pair.test = read_cifar_files(test_files, classes, name);
  return pair;
}

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10", "cifar100"};
  return names;
}

DatasetName parse_dataset_name(const std::string& name) {
  if (name == "fashion-mnist") return DatasetName::FashionMnist;
  if (name == "mnist") return DatasetName::Mnist;
  if (name == "cifar10") return DatasetName::Cifar10;
  if (name == "cifar100") return DatasetName::Cifar100;
  std::string valid;
  for (const auto& n : dataset_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw Error("unknown dataset '" + name + "'; valid names: " + valid);
}

DatasetPair load_dataset(const std::string& name, const std::string& dir) {
  switch (parse_dataset_name(name)) {
    case DatasetName::FashionMnist:
      return load_mnist_like(dir.empty() ? std::string(kDefaultFashionMnistDir) : dir, name);
    case DatasetName::Mnist:
      if (dir.empty())
        throw Error("mnist has no default location: set dataset.dir to the directory holding "
                    "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]");
      return load_mnist_like(dir, name);
    case DatasetName::Cifar10:
      return load_cifar(dir, 10);
    case DatasetName::Cifar100:
      return load_cifar(dir, 100);
  }
  throw Error("unknown dataset '" + name + "'");
}

ChannelStats channel_stats(const Dataset& data) {
  const Index n = data.size();
  if (n == 0) throw Error("channel_stats: dataset '" + data.name + "' is empty");
  const Index channels = data.channels();
  const Index plane = static_cast<Index>(data.height()) * data.width();
  // Per-(image, channel) sums in double, then summed in image order: the result does not depend
  // on the thread count. Variance is E[x^2] - E[x]^2 in double (values lie in [0, 1]).
  std::vector<double> sums(static_cast<std::size_t>(n * channels)), squares(sums.size());
#pragma omp parallel for schedule(static)
  for (Index i = 0; i < n * channels; ++i) {
    const float* p = data.images.data() + i * plane;
    double s = 0.0, q = 0.0;
    for (Index k = 0; k < plane; ++k) {
      s += p[k];
      q += static_cast<double>(p[k]) * p[k];
    }
    sums[static_cast<std::size_t>(i)] = s;
    squares[static_cast<std::size_t>(i)] = q;
  }
  ChannelStats stats;
  const double count = static_cast<double>(n) * static_cast<double>(plane);
  for (Index c = 0; c < channels; ++c) {
    double s = 0.0, q = 0.0;
    for (Index i = 0; i < n; ++i) {
      s += sums[static_cast<std::size_t>(i * channels + c)];
      q += squares[static_cast<std::size_t>(i * channels + c)];
    }
    const double mean = s / count;
    const double variance = std::max(0.0, q / count - mean * mean);
    stats.mean.push_back(static_cast<float>(mean));
    stats.stddev.push_back(static_cast<float>(std::sqrt(variance)));
  }
  return stats;
}

}  // namespace pimqat
