#pragma once
// Datasets held in memory as float images in [0, 1] (NCHW) and int labels.
// Readers check magic numbers, sizes and label ranges; any problem is a pimqat::Error that names
// the file and what was expected.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pimqat {

enum class DatasetName { FashionMnist, Mnist, Cifar10, Cifar100 };

struct Dataset {
  std::string name;            // "fashion-mnist", ...
  Tensor images;               // (N, C, H, W), values in [0, 1]
  std::vector<std::int32_t> labels;  // N labels in [0, classes)
  int classes = 0;

  Index size() const { return images.empty() ? 0 : images.dim(0); }
  int channels() const { return static_cast<int>(images.dim(1)); }
  int height() const { return static_cast<int>(images.dim(2)); }
  int width() const { return static_cast<int>(images.dim(3)); }
};

struct DatasetPair {
  Dataset train;
  Dataset test;
};

// Default directory of Debian's dataset-fashion-mnist package.
inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Reads an IDX image file (magic 0x00000803) and label file (magic 0x00000801); each may be
// gzip-compressed (detected from the content, not the name).
Dataset read_idx(const std::string& images_path, const std::string& labels_path, int classes,
                 const std::string& name);

// Fashion-MNIST or MNIST from a directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
DatasetPair load_mnist_like(const std::string& dir, const std::string& name);

// CIFAR-10 (data_batch_1..5.bin, test_batch.bin) or CIFAR-100 (train.bin, test.bin; fine labels)
// binary versions from a directory (or from its sub-directory cifar-10-batches-bin /
// cifar-100-binary, as the archives unpack). Records are label byte(s) then 3x32x32 CHW pixels.
DatasetPair load_cifar(const std::string& dir, int classes);

// The valid dataset names, in the order of DatasetName.
const std::vector<std::string>& dataset_names();
// "fashion-mnist" -> DatasetName::FashionMnist, ...; an unknown name is an Error listing the valid ones.
DatasetName parse_dataset_name(const std::string& name);

// Dispatch by name: "fashion-mnist", "mnist", "cifar10", "cifar100". An empty dir means the
// default location (only Fashion-MNIST has one).
DatasetPair load_dataset(const std::string& name, const std::string& dir);

// Per-channel mean and (population) standard deviation over a dataset's images (for
// normalization); computed in double, independent of the thread count.
struct ChannelStats {
  std::vector<float> mean;
  std::vector<float> stddev;
};
ChannelStats channel_stats(const Dataset& data);

}  // namespace pimqat
