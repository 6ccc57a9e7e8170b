// Tests of pim/scheme.h: the ranges, slice and column counts of DESIGN.md 2.2 and the validation.
#include "pim/scheme.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace pimqat::pim {
namespace {

TEST(Scheme, NamesRoundTripAndUnknownIsRejected) {
  for (Scheme s : {Scheme::BitSerial, Scheme::Differential, Scheme::Native})
    EXPECT_EQ(parse_scheme(scheme_name(s)), s);
  EXPECT_EQ(parse_scheme("bit_serial"), Scheme::BitSerial);
  try {
    parse_scheme("ternary");
    FAIL() << "unknown scheme accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ternary"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("bit-serial, differential, native"), std::string::npos);
  }
}

TEST(Scheme, DefaultRows) {
  EXPECT_EQ(default_rows(Scheme::BitSerial), 144);
  EXPECT_EQ(default_rows(Scheme::Differential), 144);
  EXPECT_EQ(default_rows(Scheme::Native), 9);
}

TEST(Scheme, RangesSlicesAndColumnsFollowDesign) {
  Decomposition bs{Scheme::BitSerial, 144, 4, 5};
  EXPECT_EQ(bs.p_lo(), 0.0);
  EXPECT_EQ(bs.p_hi(), 144.0);
  EXPECT_EQ(bs.input_slices(), 4);
  EXPECT_EQ(bs.column_slices(), 5);
  Decomposition diff{Scheme::Differential, 144, 4, 5};
  EXPECT_EQ(diff.p_lo(), 0.0);
  EXPECT_EQ(diff.p_hi(), 144.0 * 16.0);
  EXPECT_EQ(diff.input_slices(), 4);
  EXPECT_EQ(diff.column_slices(), 2);
  Decomposition native{Scheme::Native, 9, 4, 5};
  EXPECT_EQ(native.p_hi(), 9.0 * 15.0 * 16.0);
  EXPECT_EQ(native.p_lo(), -9.0 * 15.0 * 16.0);
  EXPECT_EQ(native.input_slices(), 1);
  EXPECT_EQ(native.column_slices(), 1);
  // G = ceil(K / N): K = 145 needs two groups of 144 rows; columns = G * C_out * T.
  EXPECT_EQ(bs.groups(144), 1);
  EXPECT_EQ(bs.groups(145), 2);
  EXPECT_EQ(bs.columns(145, 3), 2 * 3 * 5);
  EXPECT_EQ(native.groups(27), 3);
  EXPECT_EQ(native.groups(28), 4);
  EXPECT_EQ(bs.min_weight(), -16);
  EXPECT_EQ(bs.max_weight(), 15);
  EXPECT_EQ(bs.max_activation(), 15);
}

TEST(Scheme, BadSettingsAreRejectedTogether) {
  Decomposition d{Scheme::BitSerial, 0, 1, 9};
  try {
    d.validate();
    FAIL() << "bad decomposition accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("rows (N) = 0"), std::string::npos) << m;
    EXPECT_NE(m.find("activation bits = 1"), std::string::npos) << m;
    EXPECT_NE(m.find("weight bits = 9"), std::string::npos) << m;
  }
  Decomposition unknown{static_cast<Scheme>(7), 9, 4, 4};
  EXPECT_THROW(unknown.validate(), Error);
  Decomposition ok{Scheme::Native, 1, 2, 8};
  EXPECT_NO_THROW(ok.validate());
}

}  // namespace
}  // namespace pimqat::pim
