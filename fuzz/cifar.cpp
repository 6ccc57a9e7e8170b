// Fuzz target: CIFAR-10 / CIFAR-100 binary batches (core/dataset.h load_cifar).
// Input: one flags byte, then the content written to every batch file of the directory
// (CIFAR-10: data_batch_1..5.bin and test_batch.bin; CIFAR-100: train.bin and test.bin).
// Flags: bit 0 CIFAR-100; bit 1 gzip the files (read_file_bytes takes gzip too); bit 2 put them
// in the archive's sub-directory (cifar-10-batches-bin / cifar-100-binary); bit 3 leave the test
// file out (a missing file must be an Error).
#include <zlib.h>

#include <cstdint>
#include <string>

#include "core/dataset.h"
#include "fuzz/fuzz_common.h"

using namespace pimqat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  const std::string_view content(reinterpret_cast<const char*>(data) + 1, size - 1);
  const bool cifar100 = flags & 1;
  const std::string root = fuzz::scratch_path("cifar");
  std::filesystem::remove_all(root);
  const std::string dir = (flags & 4) ? root + (cifar100 ? "/cifar-100-binary" : "/cifar-10-batches-bin") : root;
  std::filesystem::create_directories(dir);
  std::vector<std::string> files = cifar100 ? std::vector<std::string>{"train.bin"}
                                            : std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin",
                                                                       "data_batch_3.bin", "data_batch_4.bin",
                                                                       "data_batch_5.bin"};
  if (!(flags & 8)) files.push_back(cifar100 ? "test.bin" : "test_batch.bin");
  for (const auto& name : files) {
    const std::string path = dir + "/" + name;
    if (flags & 2) {
      gzFile f = gzopen(path.c_str(), "wb1");
      if (!f) fuzz::finding("harness: gzopen " + path);
      if (!content.empty()) gzwrite(f, content.data(), static_cast<unsigned>(content.size()));
      gzclose(f);
    } else {
      fuzz::write_file(path, content);
    }
  }
  fuzz::expect_error_or_success("load_cifar", [&] {
    const DatasetPair pair = load_cifar(root, cifar100 ? 100 : 10);
    for (const Dataset* d : {&pair.train, &pair.test}) {
      if (static_cast<std::size_t>(d->size()) != d->labels.size()) fuzz::finding("load_cifar: images and labels differ in count");
      for (const auto label : d->labels)
        if (label < 0 || label >= d->classes) fuzz::finding("load_cifar accepted label " + std::to_string(label));
    }
  });
  return 0;
}
