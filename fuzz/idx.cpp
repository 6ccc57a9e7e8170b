// Fuzz target: IDX image and label files (core/dataset.h read_idx, load_mnist_like).
// Input: one flags byte, a 2-byte little-endian length L, L bytes of the image file, then the
// label file. Flags: bit 0 / bit 1 gzip-compress the image / label file before the reader sees
// it (the reader detects gzip from the content); bit 2 reads through load_mnist_like from a
// directory holding both files as train and test set; bits 3-7 (v) pick the class count 1 + v * 17 / 2
// (1..264: counts past 256 must be refused).
#include <zlib.h>

#include <cstdint>
#include <string>

#include "core/dataset.h"
#include "fuzz/fuzz_common.h"

using namespace pimqat;

namespace {

void write_maybe_gzip(const std::string& path, std::string_view bytes, bool gzip) {
  if (!gzip) {
    fuzz::write_file(path, bytes);
    return;
  }
  gzFile f = gzopen(path.c_str(), "wb1");
  if (!f) fuzz::finding("harness: gzopen " + path);
  if (!bytes.empty()) gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const std::uint8_t flags = data[0];
  const std::size_t split = std::min<std::size_t>(data[1] | (std::size_t{data[2]} << 8), size - 3);
  const std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);
  const std::string_view images = rest.substr(0, split), labels = rest.substr(split);
  const int classes = 1 + (flags >> 3) * 17 / 2;
  if (flags & 4) {
    const std::string dir = fuzz::scratch_path("mnist");
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    for (const char* set : {"train", "t10k"}) {
      write_maybe_gzip(dir + "/" + set + "-images-idx3-ubyte" + ((flags & 1) ? ".gz" : ""), images, flags & 1);
      write_maybe_gzip(dir + "/" + set + "-labels-idx1-ubyte" + ((flags & 2) ? ".gz" : ""), labels, flags & 2);
    }
    fuzz::expect_error_or_success("load_mnist_like", [&] {
      const DatasetPair pair = load_mnist_like(dir, "mnist");
      (void)channel_stats(pair.train);
    });
    return 0;
  }
  const std::string image_path = fuzz::scratch_path("images.idx"), label_path = fuzz::scratch_path("labels.idx");
  write_maybe_gzip(image_path, images, flags & 1);
  write_maybe_gzip(label_path, labels, flags & 2);
  fuzz::expect_error_or_success("read_idx", [&] {
    const Dataset d = read_idx(image_path, label_path, classes, "fuzz");
    // Every label in range and one image per label: what the trainer relies on.
    if (static_cast<std::size_t>(d.size()) != d.labels.size()) fuzz::finding("read_idx: images and labels differ in count");
    for (const auto label : d.labels)
      if (label < 0 || label >= classes) fuzz::finding("read_idx accepted label " + std::to_string(label));
    if (d.images.size() != d.size() * d.height() * d.width() * d.channels())
      fuzz::finding("read_idx: the image tensor's size does not match its dimensions");
    (void)channel_stats(d);
  });
  return 0;
}
