// Tests of pim/curves.h: the CSV and HDF5 formats of docs/curves-format.md (round trips, the
// hand-written example, and every check with its file/line message).
#include "pim/curves.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "pim/adc.h"

namespace pimqat::pim {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("pimqat_test_curves_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string write(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::string& path) {
  try {
    TransferCurves::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kGood =
    "# two measured columns of a 2-bit ADC over p = 0..4\n"
    "adc_bits,2\n"
    "p_lo,0\n"
    "p_hi,4\n"
    "p,colA,colB\n"
    "0,0,0.2\n"
    "1,0.6,1\n"
    "2,1.4,1.1\n"
    "\n"
    "3,2,2.5\n"
    "4,3,3\n";

TEST(Curves, ReadsTheDocumentedCsvExample) {
  const auto c = TransferCurves::load(write("good.csv", kGood));
  EXPECT_EQ(c.adc_bits(), 2);
  EXPECT_EQ(c.p_lo(), 0);
  EXPECT_EQ(c.p_hi(), 4);
  EXPECT_EQ(c.count(), 2);
  EXPECT_EQ(c.name(1), "colB");
  EXPECT_DOUBLE_EQ(c.code(0, 2), 1.4);
  EXPECT_DOUBLE_EQ(c.code(1, 3), 2.5);
  EXPECT_NO_THROW(c.check_matches(2, 0, 4, "test"));
  EXPECT_THROW(c.check_matches(3, 0, 4, "test"), Error);
  EXPECT_THROW(c.check_matches(2, 0, 5, "test"), Error);
}

TEST(Curves, CsvAndHdf5RoundTrip) {
  std::vector<std::vector<double>> codes = {{0, 0.25, 1.0 / 3.0, 2, 7, 7}, {0, 0, 0, 1, 1, 6.5}};
  const TransferCurves c(3, -2, 3, {"a", "b"}, codes);
  const std::string csv = temp_path("rt.csv"), h5 = temp_path("rt.h5");
  c.save_csv(csv);
  c.save_hdf5(h5);
  for (const auto& path : {csv, h5}) {
    const auto back = TransferCurves::load(path);
    EXPECT_EQ(back.adc_bits(), 3);
    EXPECT_EQ(back.p_lo(), -2);
    EXPECT_EQ(back.p_hi(), 3);
    ASSERT_EQ(back.count(), 2);
    for (int m = 0; m < 2; ++m)
      for (int p = -2; p <= 3; ++p) EXPECT_EQ(back.code(m, p), c.code(m, p)) << path;
  }
  EXPECT_EQ(TransferCurves::load(csv).name(1), "b");
}

TEST(Curves, CsvErrorsNameFileLineAndProblem) {
  std::string m = error_of(write("short.csv", "adc_bits,2\np_lo,0\np_hi,4\np,a\n0,0\n1,1\n2,2\n"));
  EXPECT_NE(m.find("short.csv:7: found 3 rows, expected 5"), std::string::npos) << m;
  m = error_of(write("fields.csv", "adc_bits,2\np_lo,0\np_hi,4\np,a,b\n0,0,0\n1,1\n"));
  EXPECT_NE(m.find("fields.csv:6: expected 3 fields"), std::string::npos) << m;
  m = error_of(write("toomany.csv", "adc_bits,1\np_lo,0\np_hi,1\np,a\n0,0\n1,1\n2,1\n"));
  EXPECT_NE(m.find("toomany.csv:7: too many rows"), std::string::npos) << m;
  m = error_of(write("order.csv", "adc_bits,2\np_lo,0\np_hi,2\np,a\n0,0\n2,1\n1,1\n"));
  EXPECT_NE(m.find("order.csv:6: expected p = 1, found 2"), std::string::npos) << m;
  m = error_of(write("mono.csv", "adc_bits,2\np_lo,0\np_hi,2\np,a,b\n0,0,0\n1,1,2\n2,2,1.5\n"));
  EXPECT_NE(m.find("mono.csv:7: curve 'b' decreases"), std::string::npos) << m;
  m = error_of(write("range.csv", "adc_bits,2\np_lo,0\np_hi,2\np,a\n0,0\n1,1\n2,4\n"));
  EXPECT_NE(m.find("range.csv:7: code 4 of curve 'a' at p = 2 is outside the ADC's code range [0, 3]"),
            std::string::npos)
      << m;
  m = error_of(write("nan.csv", "adc_bits,2\np_lo,0\np_hi,1\np,a\n0,zero\n1,1\n"));
  EXPECT_NE(m.find("nan.csv:5: code 'zero'"), std::string::npos) << m;
  m = error_of(write("nohead.csv", "p,a\n0,0\n"));
  EXPECT_NE(m.find("nohead.csv:1:"), std::string::npos) << m;
  m = error_of(write("key.csv", "bits,2\n"));
  EXPECT_NE(m.find("unknown key 'bits'"), std::string::npos) << m;
  m = error_of(temp_path("missing.csv"));
  EXPECT_NE(m.find("cannot open"), std::string::npos) << m;
  m = error_of(write("x.txt", "adc_bits,2\n"));
  EXPECT_NE(m.find("unknown transfer-curve file type"), std::string::npos) << m;
}

TEST(Curves, Hdf5WrongEntryCountIsRejected) {
  const TransferCurves c(2, 0, 3, {"a"}, {{0, 1, 2, 3}});
  const std::string h5 = temp_path("count.h5");
  c.save_hdf5(h5);
  EXPECT_NO_THROW(TransferCurves::load(h5));
  // Hand-build curves with the wrong entry count through the constructor (the HDF5 loader uses it).
  try {
    TransferCurves(2, 0, 3, {"a"}, {{0, 1, 2}}, "made-up.h5 /codes");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("made-up.h5 /codes: curve 'a' has 3 entries, expected 4"), std::string::npos)
        << e.what();
  }
  const std::string not_h5 = write("plain.h5", "not an hdf5 file\n");
  EXPECT_NE(error_of(not_h5).find("cannot open as an HDF5 file"), std::string::npos);
}

TEST(Curves, MeasuredBankUsesTheAssignedCurve) {
  const auto curves = std::make_shared<const TransferCurves>(TransferCurves::load(write("bank.csv", kGood)));
  const Adc adc(0, 4, 2);
  AdcBank bank(adc);
  bank.set_columns({{1, 0, 1}, {1, 0, 0}}, CurveModel::Measured, 0.0, curves);
  EXPECT_EQ(bank.level(0, 3), 2.5);
  EXPECT_EQ(bank.convert(0, 3, 0), 3);  // 2.5 rounds half up
  EXPECT_EQ(bank.level(1, 2), 1.4);
  EXPECT_EQ(bank.convert(1, 2, 0), 1);
  AdcBank wrong(Adc(0, 8, 2));
  EXPECT_THROW(wrong.set_columns({{1, 0, 0}}, CurveModel::Measured, 0.0, curves), Error);
  AdcBank missing(adc);
  EXPECT_THROW(missing.set_columns({{1, 0, 0}}, CurveModel::Measured, 0.0, nullptr), Error);
}

}  // namespace
}  // namespace pimqat::pim
