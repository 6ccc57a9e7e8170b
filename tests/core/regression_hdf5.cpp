// Regression tests for core/hdf5.h from the hardening work (docs/reliability.md).
//
// Found by the full-disk fault test (tests/runner/fault.cpp): when a results rebuild fails for lack
// of space, `pimqat sweep` printed its clear error and then died of SIGSEGV at exit (status 139
// instead of 1; a successful sweep that hit one failed rebuild on the way would crash the same way).
// The cause: H5Fclose of the temporary file fails while flushing (ENOSPC, or EFBIG past a file size
// limit), write_h5_atomically reports it and removes the file, but libhdf5 keeps the half-closed
// file in its tables, and its atexit handler (H5_term_library -> H5F__close_cb) crashes on it.
// A write limit (RLIMIT_FSIZE) reproduces it without root; the file-size limit and exit happen
// in a death-test child.
//
// Fixed in core/hdf5.cpp: write_h5_atomically builds the file in memory (HDF5 core driver, no
// backing store) and writes its bytes with write(2); libhdf5 never touches the disk there, so a
// full disk is an ordinary write error and leaves nothing in libhdf5's tables.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/hdf5.h"

namespace pimqat {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("pimqat-regression-hdf5-" + std::to_string(::getpid()) + "-" + name)).string();
}

// In the child: files may not grow past 64 KiB (writes past it fail with EFBIG, SIGXFSZ ignored),
// then an 800 KB dataset is written atomically. Returns 0 when the write failed cleanly with an
// Error and left no temporary file, 2 when it did not fail, 3 when a temporary file was left.
int write_past_the_limit(const std::string& path) {
  std::signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{64 * 1024, 64 * 1024};
  if (setrlimit(RLIMIT_FSIZE, &limit) != 0) return 4;
  try {
    write_h5_atomically(path, [](H5File& f) { f.write<double>("x", std::vector<double>(100000, 1.0)); });
    return 2;
  } catch (const Error&) {
  }
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
    if (e.path().filename().string().starts_with(fs::path(path).filename().string() + ".tmp")) return 3;
  return 0;
}

TEST(RegressionHdf5DeathTest, AFailedAtomicWriteLeavesAProcessThatExitsCleanly) {
  const std::string path = temp_path("big.h5");
  // std::exit runs the atexit handlers, libhdf5's included: that is where it crashed.
  EXPECT_EXIT(std::exit(write_past_the_limit(path)), ::testing::ExitedWithCode(0), "");
  fs::remove(path);
}

// The message says what failed, where, and why (the system's reason).
int error_message_of_a_failed_write(const std::string& path) {
  std::signal(SIGXFSZ, SIG_IGN);
  const rlimit limit{64 * 1024, 64 * 1024};
  if (setrlimit(RLIMIT_FSIZE, &limit) != 0) return 4;
  try {
    write_h5_atomically(path, [](H5File& f) { f.write<double>("x", std::vector<double>(100000, 1.0)); });
  } catch (const Error& e) {
    const std::string what = e.what();
    return what.find(path + ".tmp-") != std::string::npos && what.find("File too large") != std::string::npos ? 0 : 5;
  }
  return 2;
}

TEST(RegressionHdf5DeathTest, AFailedAtomicWriteSaysWhereAndWhy) {
  const std::string path = temp_path("big3.h5");
  EXPECT_EXIT(std::exit(error_message_of_a_failed_write(path)), ::testing::ExitedWithCode(0), "");
  EXPECT_FALSE(fs::exists(path));
}

// The part that worked before the fix: the failure itself is an Error and the temporary file is removed.
TEST(RegressionHdf5DeathTest, AFailedAtomicWriteIsAnErrorAndLeavesNoTemporary) {
  const std::string path = temp_path("big2.h5");
  // _exit skips the atexit handlers (the crash above): only the write's own behaviour is checked.
  EXPECT_EXIT(_exit(write_past_the_limit(path)), ::testing::ExitedWithCode(0), "");
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace pimqat
