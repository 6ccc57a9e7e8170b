// Regression tests for the transfer-curve readers (pim/curves.h) from the hardening work
// (docs/reliability.md): each input made a reader compute with undefined behaviour or accept a
// file it should refuse. A correct reader throws pimqat::Error for every one of them.
// Fixed in pim/curves.cpp (check_header takes the file's 64-bit adc_bits and measures the range in
// unsigned arithmetic; load_csv counts rows instead of stepping p past p_hi). The fuzz targets
// fuzz_curves_csv / fuzz_curves_h5 (UBSan) reproduce each from the file in fuzz/findings/.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/hdf5.h"
#include "pim/curves.h"

namespace pimqat::pim {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pimqat-regression-curves-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

std::string write_text(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}

// adc_bits = 2^32 + 8 became 8 through static_cast<int> (pim/curves.cpp load_csv), passed the
// 1..16 check, and `1 << adc_bits` shifted an int by 4294967304 (undefined; x86 happens to give
// 256). The file must be refused: its adc_bits is outside 1..16.
TEST(RegressionCurves, CsvAdcBitsPast32BitsIsRefused) {
  const std::string path = write_text("bits.csv", "adc_bits,4294967304\np_lo,0\np_hi,2\np,a\n0,0\n1,0.5\n2,1\n");
  EXPECT_THROW((void)TransferCurves::load(path), Error);
  std::filesystem::remove(path);
}

// p_hi - p_lo overflowed int64 in check_header (and p_hi + 1 at the end of load_csv): signed
// overflow, undefined. A range of 2^64 - 1 points must be refused (at most 2^26 + 1) without overflow.
TEST(RegressionCurves, CsvRangeThatOverflowsIsRefusedWithoutOverflow) {
  const std::string path =
      write_text("range.csv", "adc_bits,3\np_lo,-9223372036854775807\np_hi,9223372036854775807\np,a\n0,0\n");
  EXPECT_THROW((void)TransferCurves::load(path), Error);
  std::filesystem::remove(path);
}

// The HDF5 reader has the same truncation: attribute adc_bits = 2^32 + 8 was read as an 8-bit
// ADC, and the file loaded.
TEST(RegressionCurves, Hdf5AdcBitsPast32BitsIsRefused) {
  const std::string path = temp_path("bits.h5");
  write_h5_atomically(path, [](H5File& f) {
    f.set_attr_string("format", "pimqat-adc-curves");
    f.set_attr_int("version", 1);
    f.set_attr_int("adc_bits", (std::int64_t{1} << 32) + 8);
    f.set_attr_int("p_lo", 0);
    f.set_attr_int("p_hi", 2);
    f.write<double>("codes", std::vector<double>{0, 1, 2}.data(), {1, 3});
  });
  EXPECT_THROW((void)TransferCurves::load(path), Error);
  std::filesystem::remove(path);
}

// What must keep loading: valid headers at the edges of the checks the fixes touch (16 bits,
// 2 points at either end of int64).
TEST(RegressionCurves, EdgesOfTheHeaderChecks) {
  const std::string ok = write_text("ok.csv", "adc_bits,16\np_lo,-9223372036854775807\np_hi,-9223372036854775806\n"
                                              "p,a\n-9223372036854775807,0\n-9223372036854775806,65535\n");
  const TransferCurves c = TransferCurves::load(ok);
  EXPECT_EQ(c.adc_bits(), 16);
  EXPECT_EQ(c.points(), 2);
  EXPECT_EQ(c.code(0, c.p_hi()), 65535.0);
  // At the top of int64: the last row's p is INT64_MAX (load_csv stepped p to p_hi + 1, an overflow).
  const std::string top = write_text("top.csv", "adc_bits,16\np_lo,9223372036854775806\np_hi,9223372036854775807\n"
                                                "p,a\n9223372036854775806,0\n9223372036854775807,65535\n");
  const TransferCurves t = TransferCurves::load(top);
  EXPECT_EQ(t.points(), 2);
  EXPECT_EQ(t.code(0, t.p_hi()), 65535.0);
  std::filesystem::remove(top);
  const std::string bits17 = write_text("17.csv", "adc_bits,17\np_lo,0\np_hi,1\np,a\n0,0\n1,1\n");
  EXPECT_THROW((void)TransferCurves::load(bits17), Error);
  for (const auto& p : {ok, bits17}) std::filesystem::remove(p);
}

}  // namespace
}  // namespace pimqat::pim
