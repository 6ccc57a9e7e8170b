// Tests of runner/canonical: exact number text, sorted records, and the identity hash (against
// the published FNV-1a test vectors and an independent SplitMix64 finalizer).
#include "runner/canonical.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace pimqat::runner {
namespace {

double parse(const char* text) {
  double v = 0;
  const std::string s(text);
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

TEST(Canonical, NumberSpellingsOfOneValueEncodeAlike) {
  EXPECT_EQ(canonical_float(parse("0.5")), "0.5");
  EXPECT_EQ(canonical_float(parse("5e-1")), "0.5");
  EXPECT_EQ(canonical_float(parse("0.50")), "0.5");
  EXPECT_EQ(canonical_float(parse("2")), "2");
  EXPECT_EQ(canonical_float(parse("2.000")), "2");
  EXPECT_EQ(canonical_float(-0.0), "0");
  EXPECT_EQ(canonical_float(0.0), "0");
  // Shortest text that reads back to the same double: no rounding to "nice" decimals.
  EXPECT_EQ(canonical_float(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(parse(canonical_float(0.1 + 0.2).c_str()), 0.1 + 0.2);
  EXPECT_EQ(canonical_float(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(canonical_float(1e-4), "1e-04");
  EXPECT_EQ(canonical_float(-2.5e300), "-2.5e+300");
  EXPECT_EQ(canonical_float(std::numeric_limits<double>::denorm_min()), "5e-324");
  EXPECT_THROW(canonical_float(std::nan("")), Error);
  EXPECT_THROW(canonical_float(INFINITY), Error);
  EXPECT_EQ(canonical_integer(-42), "-42");
  EXPECT_EQ(canonical_unsigned(18446744073709551615ull), "18446744073709551615");
  EXPECT_EQ(canonical_bool(true), "true");
  EXPECT_EQ(canonical_integer_list({30, 60}), "[30,60]");
  EXPECT_EQ(canonical_integer_list({}), "[]");
}

TEST(Canonical, StringsAreJsonLiterals) {
  EXPECT_EQ(canonical_string("resnet20"), "\"resnet20\"");
  EXPECT_EQ(canonical_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(canonical_string(std::string("tab\there\n", 9)), "\"tab\\u0009here\\u000a\"");
  EXPECT_EQ(canonical_string(""), "\"\"");
}

TEST(Canonical, RecordSortsKeysWhateverTheInsertionOrder) {
  CanonicalRecord a, b;
  a.set_float("eval.noise_sigma", 0.5);
  a.set_string("model.arch", "resnet20");
  a.set_integer("pim.train_bits", 4);
  a.set_bool("pim.enabled", true);
  b.set_bool("pim.enabled", true);
  b.set_integer("pim.train_bits", 4);
  b.set_string("model.arch", "resnet20");
  b.set_float("eval.noise_sigma", parse("5e-1"));
  EXPECT_EQ(a.encode(), b.encode());
  EXPECT_EQ(a.encode(), "{\"eval.noise_sigma\":0.5,\"model.arch\":\"resnet20\",\"pim.enabled\":true,\"pim.train_bits\":4}");
  EXPECT_EQ(identity_of(a.encode()), identity_of(b.encode()));
  b.set_integer("pim.train_bits", 5);
  EXPECT_NE(identity_of(a.encode()), identity_of(b.encode()));
  EXPECT_EQ(CanonicalRecord().encode(), "{}");
}

TEST(Canonical, Fnv1aMatchesThePublishedTestVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

// SplitMix64's finalizer written out independently of core/rng.cpp.
std::uint64_t splitmix_finalizer(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

TEST(Canonical, IdentityHashIsFnv1aThenSplitMixAndNeverChanges) {
  for (const char* text : {"", "a", "{\"kind\":\"train\"}", "foobar"}) {
    EXPECT_EQ(identity_hash(text), splitmix_finalizer(fnv1a64(text))) << text;
  }
  // Pinned: task identities in existing run directories depend on these exact values.
  EXPECT_EQ(identity_of("{\"a\":1}"), hex16(splitmix_finalizer(fnv1a64("{\"a\":1}"))));
  EXPECT_EQ(identity_of(""), "c3817c016ba4ff30");  // also computed with Python
  EXPECT_EQ(identity_of("{\"kind\":\"train\"}"), "d029b75c36449a28");
}

TEST(Canonical, Hex16RoundTrips) {
  EXPECT_EQ(hex16(0), "0000000000000000");
  EXPECT_EQ(hex16(0x0123456789abcdefull), "0123456789abcdef");
  EXPECT_EQ(parse_hex16("0123456789ABCDEF"), 0x0123456789abcdefull);
  for (const std::uint64_t v : {0ull, 1ull, 0xffffffffffffffffull, 0x8000000000000000ull, 0xdeadbeefcafef00dull})
    EXPECT_EQ(parse_hex16(hex16(v)), v);
  EXPECT_THROW(parse_hex16("123"), Error);
  EXPECT_THROW(parse_hex16("0123456789abcdeg"), Error);
}

}  // namespace
}  // namespace pimqat::runner
