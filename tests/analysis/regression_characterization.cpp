// Regression tests for the characterization readers of `pimqat analyze` (analysis/characterization.h)
// from the hardening work (docs/reliability.md).
// Fixed in analysis/characterization.cpp curves_section (p_hi > p_lo required, the range measured
// in unsigned arithmetic). fuzz_curves_h5 reproduces each from its file in fuzz/findings/curves_h5/.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "analysis/characterization.h"
#include "core/error.h"
#include "core/hdf5.h"

namespace pimqat::analysis {
namespace {

std::string curves_file(const std::string& name, std::int64_t p_lo, std::int64_t p_hi, hsize_t curves, hsize_t points) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("pimqat-regression-characterization-" + std::to_string(::getpid()) + "-" + name))
                               .string();
  write_h5_atomically(path, [&](H5File& f) {
    f.set_attr_string("format", "pimqat-adc-curves");
    f.set_attr_int("version", 1);
    f.set_attr_int("adc_bits", 3);
    f.set_attr_int("p_lo", p_lo);
    f.set_attr_int("p_hi", p_hi);
    const std::vector<double> codes(static_cast<std::size_t>(curves * points), 1.0);
    f.write<double>("codes", codes.data(), {curves, points});
  });
  return path;
}

// p_hi = p_lo - 1 makes p_hi - p_lo + 1 = 0 points, which matched /codes of shape (2, 0); the
// summary table then read codes[m * 0] and codes[-1] of an empty vector (out of bounds; a
// segfault or garbage). A range must hold at least two points (p_hi > p_lo), as for pim/curves.h.
TEST(RegressionCharacterization, CurvesWithAnEmptyRangeAreRefused) {
  const std::string path = curves_file("empty.h5", 5, 4, 2, 0);
  EXPECT_THROW((void)curves_section(path), Error);
  std::filesystem::remove(path);
}

// p_hi - p_lo + 1 overflowed int64 (signed overflow, undefined) for a range of 2^64 points.
TEST(RegressionCharacterization, CurvesRangeThatOverflowsIsRefusedWithoutOverflow) {
  const std::string path = curves_file("overflow.h5", -9223372036854775807, 9223372036854775807, 1, 3);
  EXPECT_THROW((void)curves_section(path), Error);
  std::filesystem::remove(path);
}

// A two-point range is the smallest file every reader accepts: it must keep working.
TEST(RegressionCharacterization, TwoPointRangeIsSummarized) {
  const std::string path = curves_file("two.h5", 4, 5, 2, 2);
  const Section s = curves_section(path);
  ASSERT_EQ(s.tables.size(), 1u);
  EXPECT_EQ(s.tables[0].rows.size(), 2u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace pimqat::analysis
