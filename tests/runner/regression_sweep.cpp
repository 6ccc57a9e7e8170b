// Regression tests for the sweep and configuration readers (runner/sweep.h, runner/config.h) from
// the hardening work (docs/reliability.md).
//
// Found by fuzz_sweep (fuzz/findings/sweep/include_dev_zero.yaml): `include:` reads the named file
// whole, whatever it is; /dev/zero (or a FIFO, or a huge file) made pimqat allocate until it ran
// out of memory. load_experiment reads its file the same way. A correct reader refuses what is
// not a regular file, and files far larger than any sweep, with a ConfigError.
//
// Fixed in runner/config.cpp internal::read_config_file (used by sweep.cpp read_file and
// load_experiment): only regular files of at most 16 MiB are read; a FIFO is never opened in a way
// that blocks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "runner/config.h"
#include "runner/config_impl.h"
#include "runner/sweep.h"

namespace pimqat::runner {
namespace {

TEST(RegressionSweep, IncludeOfADeviceIsRefused) {
  EXPECT_THROW((void)parse_sweep("include: /dev/zero\n", "dev.yaml", "/"), ConfigError);
}

TEST(RegressionSweep, ConfigurationFromADeviceIsRefused) {
  EXPECT_THROW((void)load_experiment("/dev/zero"), ConfigError);
}

// A directory opens as an ifstream on Linux and reads as empty text: the include was accepted as
// an empty file.
TEST(RegressionSweep, IncludeOfADirectoryIsRefused) {
  EXPECT_THROW((void)parse_sweep("include: /\n", "dir.yaml", "/"), ConfigError);
}

std::filesystem::path scratch_dir() {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("pimqat-regression-sweep-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// The message of the one problem a ConfigError holds (empty when it holds another number).
std::string only_problem(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.problems().size() == 1 ? e.problems()[0].message : "";
  }
  return "";
}

// The refusals say what the file is and what is accepted.
TEST(RegressionSweep, RefusalsSayWhatTheFileIs) {
  EXPECT_NE(only_problem([] { (void)load_experiment("/dev/zero"); }).find("is a character device, expected a regular file"),
            std::string::npos);
  EXPECT_NE(only_problem([] { (void)parse_sweep("include: /\n", "dir.yaml", "/"); }).find("is a directory"),
            std::string::npos);
  EXPECT_NE(only_problem([] { (void)load_experiment("/nonexistent/pimqat.yaml"); }).find("No such file"),
            std::string::npos);
}

// A FIFO with no writer: opening it for reading would block forever; it is refused at once.
TEST(RegressionSweep, IncludeOfAFifoIsRefusedWithoutBlocking) {
  const std::filesystem::path dir = scratch_dir();
  const std::string fifo = (dir / "pipe.yaml").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string message = only_problem([&] { (void)parse_sweep("include: pipe.yaml\n", "main.yaml", dir.string()); });
  EXPECT_NE(message.find("is a FIFO"), std::string::npos) << message;
  EXPECT_THROW((void)load_experiment(fifo), ConfigError);
  std::filesystem::remove_all(dir);
}

// A (sparse) file just above the limit is refused with the limit named; one at the limit is read.
TEST(RegressionSweep, FilesAboveTheSizeLimitAreRefused) {
  const std::filesystem::path dir = scratch_dir();
  const std::filesystem::path huge = dir / "huge.yaml";
  std::ofstream(huge) << "seed: 1\n";
  std::filesystem::resize_file(huge, internal::kMaxConfigFileBytes + 1);
  const std::string message = only_problem([&] { (void)load_experiment(huge.string()); });
  EXPECT_NE(message.find("16777217 bytes, larger than the 16 MiB"), std::string::npos) << message;
  EXPECT_THROW((void)parse_sweep("include: huge.yaml\n", "main.yaml", dir.string()), ConfigError);
  // At the limit: the text is read whole (the NUL padding then fails as YAML, not as a size).
  std::filesystem::resize_file(huge, internal::kMaxConfigFileBytes);
  std::string error;
  const auto text = internal::read_config_file(huge.string(), error);
  ASSERT_TRUE(text.has_value()) << error;
  EXPECT_EQ(text->size(), internal::kMaxConfigFileBytes);
  EXPECT_EQ(text->substr(0, 8), "seed: 1\n");
  std::filesystem::remove_all(dir);
}

// What must keep working: an include of a regular file next to the sweep.
TEST(RegressionSweep, IncludeOfARegularFileWorks) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("pimqat-regression-sweep-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "common.yaml") << "task: synthetic\ngrid:\n  synthetic.result: [1, 2]\n";
  const Sweep sweep = parse_sweep("include: common.yaml\nreplicates: 2\n", "main.yaml", dir.string());
  EXPECT_EQ(sweep.tasks.size(), 4u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pimqat::runner
