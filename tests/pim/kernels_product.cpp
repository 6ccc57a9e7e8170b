// The fast PIM products (pim/kernels/packed.h) against the reference kernel (the oracle,
// pim/kernels/reference.h), bit for bit, on every instruction-set path this machine supports:
// every scheme x N in {9, 13, 65, 72, 144} x operand bits x ideal / lossless / clipped / gain-offset /
// smooth / measured / noisy dies, with K not a multiple of N, 16 or 64, pixel counts that are not
// multiples of the vector widths (8, 16, 32), odd C_out and NCHW placement with image sizes that
// cut the 8-pixel blocks. Each case also checks the exact product and the moments. The route every
// case took (pim/kernels/dispatch.h) is counted, printed, recorded as a test property, and the
// AVX-512 routes that should cover a case are required to have run. The noisy cases must also have
// made every path take the thermal noise's fine-word fallback (pim/gaussian.h: a coarse bucket
// that straddles a code threshold) somewhere, not only its fast decision.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "pim/die.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/noise.h"
#include "pim/kernels/packed.h"
#include "pim/kernels/reference.h"

namespace pimqat::pim {
namespace {

struct Operands {
  std::vector<std::int32_t> x, w;
};

// Both operands packed on the current path.
struct PackedOperands {
  PackedActivations x;
  PackedWeights w;
};
PackedOperands pack_operands(const Decomposition& d, const Operands& o, Index k, Index p, Index c_out) {
  PackedOperands packed;
  pack_activations(d, o.x.data(), k, p, packed.x);
  pack_weights(d, o.w.data(), k, c_out, packed.w);
  return packed;
}

Operands random_operands(const Decomposition& d, Index k, Index p, Index c_out, std::uint64_t seed) {
  RandomStream r(RngKey{seed, 0, Purpose::Operands, 7});
  Operands o;
  o.x.resize(static_cast<std::size_t>(k * p));
  o.w.resize(static_cast<std::size_t>(c_out * k));
  // Sparse-ish activations (as after ReLU) with the extremes present.
  for (auto& v : o.x) {
    const std::uint32_t u = r.below(4);
    v = u == 0 ? 0 : static_cast<std::int32_t>(r.below(static_cast<std::uint32_t>(d.max_activation() + 1)));
  }
  for (auto& v : o.w)
    v = d.min_weight() + static_cast<std::int32_t>(r.below(static_cast<std::uint32_t>(d.max_weight() - d.min_weight() + 1)));
  o.x[0] = d.max_activation();
  o.w[0] = d.min_weight();
  return o;
}

std::vector<KernelIsa> available_paths() {
  std::vector<KernelIsa> paths;
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable})
    if (kernel_isa_supported(isa)) paths.push_back(isa);
  return paths;
}

// Restores automatic dispatch at scope exit.
struct ForcedIsa {
  explicit ForcedIsa(KernelIsa isa) { force_kernel_isa(isa); }
  ~ForcedIsa() { force_kernel_isa(std::nullopt); }
};

enum class Chip { Ideal, Lossless, Clipped, GainOffset, Smooth, Measured, Noisy, NoisyIdealColumns, NoisyWide };

const char* chip_name(Chip c) {
  switch (c) {
    case Chip::Ideal: return "ideal";
    case Chip::Lossless: return "lossless";
    case Chip::Clipped: return "clipped";
    case Chip::GainOffset: return "gain-offset";
    case Chip::Smooth: return "smooth";
    case Chip::Measured: return "measured";
    case Chip::Noisy: return "noisy";
    case Chip::NoisyIdealColumns: return "noisy-ideal-columns";
    case Chip::NoisyWide:
      return "noisy-wide";
  }
  return "?";
}

int lossless_bits(const Decomposition& d) {
  int b = 1;
  while (static_cast<double>((1 << b) - 1) < d.p_hi() - d.p_lo()) ++b;
  return b;
}

// Measured curves for the ADC: 3 monotone curves, a slightly stretched and shifted ramp each,
// clamped to the code range.
std::shared_ptr<const TransferCurves> measured_curves(const Adc& adc) {
  const auto points = static_cast<std::int64_t>(adc.p_hi() - adc.p_lo()) + 1;
  std::vector<std::vector<double>> codes(3, std::vector<double>(static_cast<std::size_t>(points)));
  const double max_code = adc.max_code();
  for (int c = 0; c < 3; ++c)
    for (std::int64_t k = 0; k < points; ++k) {
      const double code = static_cast<double>(k) / adc.delta() * (1.0 + 0.04 * (c - 1)) + 0.7 * (c - 1);
      codes[static_cast<std::size_t>(c)][static_cast<std::size_t>(k)] = std::min(max_code, std::max(0.0, code));
    }
  return std::make_shared<const TransferCurves>(adc.bits(), static_cast<std::int64_t>(adc.p_lo()),
                                                static_cast<std::int64_t>(adc.p_hi()),
                                                std::vector<std::string>{"a", "b", "c"}, std::move(codes));
}

std::map<std::string, int>& route_counts() {
  static std::map<std::string, int> counts;
  return counts;
}

// Fine words drawn by each route's products (thermal_fine_conversions()), keyed like route_counts.
std::map<std::string, std::uint64_t>& fine_draws() {
  static std::map<std::string, std::uint64_t> draws;
  return draws;
}

// Every noisy route must have taken the fine-word fallback in some case: the AVX-512 kernels'
// vector decision (bit-serial and the signed schemes' convert8) and the generic scalar one.
void expect_fine_draws_on_every_path(const char* test) {
  std::vector<std::string> routes;
  if (kernel_isa_supported(KernelIsa::Avx512))
    for (const char* r :
         {"avx512: avx512 bit-serial, noise", "avx512: avx512 differential bytes", "avx512: avx512 native bytes"})
      routes.emplace_back(r);
  if (kernel_isa_supported(KernelIsa::Avx2)) routes.emplace_back("avx2: avx2 generic");
  routes.emplace_back("portable: portable");
  for (const std::string& route : routes) {
    std::printf("[ fine     ] %s: %-40s drew %llu fine noise words\n", test, route.c_str(),
                static_cast<unsigned long long>(fine_draws()[route]));
    EXPECT_GT(fine_draws()[route], 0u) << "the thermal noise's fine-word fallback never ran on the route " << route;
  }
}

struct Case {
  Decomposition d;
  Chip chip;
  int adc_bits;
  Index k, p, c_out, image_pixels;
  std::uint64_t seed;
};

std::string describe(const Case& c) {
  return c.d.str() + " adc_bits=" + std::to_string(c.adc_bits) + " chip=" + chip_name(c.chip) + " K=" +
         std::to_string(c.k) + " P=" + std::to_string(c.p) + " C_out=" + std::to_string(c.c_out) +
         " image_pixels=" + std::to_string(c.image_pixels) + " seed=" + std::to_string(c.seed);
}

// Runs one case on every path; returns false after the first mismatch (reported).
bool check_case(const Case& c) {
  const Decomposition& d = c.d;
  const Operands o = random_operands(d, c.k, c.p, c.c_out, c.seed);
  const Adc adc(d.p_lo(), d.p_hi(), c.adc_bits, c.chip == Chip::Clipped ? 0.8 : 1.0);
  NonIdeality settings;
  if (c.chip == Chip::GainOffset || c.chip == Chip::Smooth || c.chip == Chip::Noisy || c.chip == Chip::NoisyWide) {
    settings.gain_sigma = 0.03;
    settings.offset_sigma = 1.5;
  }
  if (c.chip == Chip::Smooth) {
    settings.curve = CurveModel::Smooth;
    settings.curve_strength = -0.9;
  }
  if (c.chip == Chip::Measured) {
    settings.curve = CurveModel::Measured;
    settings.curves = measured_curves(adc);
  }
  if (c.chip == Chip::Noisy || c.chip == Chip::NoisyIdealColumns) settings.noise_sigma = 0.8;
  if (c.chip == Chip::NoisyWide) settings.noise_sigma = 6.5;  // many thresholds within the noise: many fine words
  const Die die(c.seed, 42, 3, settings);
  AdcBank bank = die.bank(1, adc, d.columns(c.k, c.c_out));
  die.set_noise(bank, 1, 5);

  // Reference, in (C_out x P) order, then placed as NCHW with image_pixels.
  const auto n = static_cast<std::size_t>(c.c_out * c.p);
  std::vector<double> reference(n);
  std::vector<std::int64_t> reference_exact(n);
  reference_pim_gemm(d, bank, o.x.data(), o.w.data(), c.k, c.p, c.c_out, reference.data());
  reference_exact_gemm(o.x.data(), o.w.data(), c.k, c.p, c.c_out, reference_exact.data());
  PimMoments expected_moments;
  const std::int64_t coefficient_sum = sum_coefficient(d, c.k);
  for (std::size_t i = 0; i < n; ++i) {
    // A from y~: exact inverse of pim_value for the two read-out modes.
    ++expected_moments.count;
    expected_moments.exact_sum += reference_exact[i];
    expected_moments.exact_square += static_cast<PimInt128>(reference_exact[i]) * reference_exact[i];
  }

  for (KernelIsa isa : available_paths()) {
    const ForcedIsa forced(isa);
    const PackedOperands packed = pack_operands(d, o, c.k, c.p, c.c_out);
    std::vector<std::int64_t> sums(n), exact(n);
    PimMoments moments;
    const std::uint64_t fine_before = thermal_fine_conversions();
    packed_pim_gemm_integer(d, bank, packed.x, packed.w, c.k, c.c_out, c.image_pixels, sums.data(), exact.data(), &moments);
    const std::string route = std::string(kernel_isa_name(isa)) + ": " + last_kernel_route();
    fine_draws()[route] += thermal_fine_conversions() - fine_before;
    ++route_counts()[route];
    if (std::getenv("PIMQAT_TEST_ROUTES"))
      std::printf("[ route    ] %s: %s <- %s\n", std::string(kernel_isa_name(isa)).c_str(), last_kernel_route(),
                  describe(c).c_str());
    PimMoments pim_moments;
    for (Index oc = 0; oc < c.c_out; ++oc)
      for (Index pixel = 0; pixel < c.p; ++pixel) {
        const auto ref = static_cast<std::size_t>(oc * c.p + pixel);
        const auto at = static_cast<std::size_t>((pixel / c.image_pixels) * c.c_out * c.image_pixels +
                                                 oc * c.image_pixels + pixel % c.image_pixels);
        const double value = pim_value(adc, coefficient_sum, sums[at]);
        if (value != reference[ref] || exact[at] != reference_exact[ref]) {
          ADD_FAILURE() << "path " << kernel_isa_name(isa) << " (" << last_kernel_route() << "): " << describe(c)
                        << ": output (o=" << oc << ", pixel=" << pixel << ") y~ = " << value << " vs reference "
                        << reference[ref] << ", y = " << exact[at] << " vs " << reference_exact[ref];
          return false;
        }
        pim_moments.pim_sum += sums[at];
        pim_moments.pim_square += static_cast<PimInt128>(sums[at]) * sums[at];
      }
    const bool moments_ok = moments.count == expected_moments.count && moments.exact_sum == expected_moments.exact_sum &&
                            moments.exact_square == expected_moments.exact_square &&
                            moments.pim_sum == pim_moments.pim_sum && moments.pim_square == pim_moments.pim_square;
    if (!moments_ok) {
      ADD_FAILURE() << "path " << kernel_isa_name(isa) << " (" << last_kernel_route() << "): " << describe(c)
                    << ": moments differ from the outputs' (count " << moments.count << ")";
      return false;
    }
  }
  return true;
}

void report_routes(const char* test) {
  std::string all;
  for (const auto& [route, count] : route_counts()) {
    std::printf("[ routes   ] %s: %-48s %d cases\n", test, route.c_str(), count);
    all += route + " x" + std::to_string(count) + "; ";
  }
  ::testing::Test::RecordProperty("kernel_routes", all);
}

bool route_ran(const std::string& prefix) {
  for (const auto& [route, count] : route_counts())
    if (route.rfind(prefix, 0) == 0 && count > 0) return true;
  return false;
}

TEST(KernelsProduct, EveryPathMatchesReferenceOnSeededGrid) {
  route_counts().clear();
  fine_draws().clear();
  std::uint64_t seed = 1000;
  const int bits_pairs[][2] = {{2, 2}, {4, 4}, {3, 7}, {8, 5}, {5, 8}};
  const Chip chips[] = {Chip::Ideal,    Chip::Lossless, Chip::Clipped, Chip::GainOffset,
                        Chip::Smooth,   Chip::Measured, Chip::Noisy,   Chip::NoisyIdealColumns};
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    for (int rows : {9, 13, 65, 72, 144}) {
      for (const auto& bits : bits_pairs) {
        const Decomposition d{scheme, rows, bits[0], bits[1]};
        // Native with wide operands and many rows has a huge partial-sum range: keep it small.
        if (scheme == Scheme::Native && rows > 72 && bits[0] + bits[1] > 8) continue;
        for (Chip chip : chips) {
          ++seed;
          if (chip == Chip::Measured && d.p_hi() - d.p_lo() > 20000) continue;  // curve files of that size are slow to build
          const int adc_bits = chip == Chip::Lossless ? lossless_bits(d) : static_cast<int>(3 + seed % 6);
          if (chip == Chip::Lossless && adc_bits > kMaxAdcBits) continue;
          // K: not a multiple of N, 16 or 64 (and sometimes shorter than one group).
          const Index k = seed % 5 == 0 ? rows - 3 : static_cast<Index>(rows) * (1 + static_cast<Index>(seed % 3)) + 5 + static_cast<Index>(seed % 7);
          const Index images = 1 + static_cast<Index>(seed % 3);
          const Index image_pixels = 5 + static_cast<Index>(seed % 19);  // cuts the 8-pixel blocks
          const Index c_out = 1 + 2 * static_cast<Index>(seed % 3);       // odd
          if (!check_case({d, chip, adc_bits, std::max<Index>(k, 1), images * image_pixels, c_out, image_pixels, seed}))
            return;
        }
      }
    }
  }
  report_routes("grid");
  expect_fine_draws_on_every_path("grid");
  if (kernel_isa_supported(KernelIsa::Avx512)) {
    for (const char* route : {"avx512: avx512 bit-serial bytes, table", "avx512: avx512 bit-serial bytes, lossless",
                              "avx512: avx512 bit-serial words", "avx512: avx512 bit-serial, noise",
                              "avx512: avx512 differential bytes", "avx512: avx512 native bytes",
                              "avx512: avx512 differential bytes, code formula",
                              "avx512: avx512 native bytes, code formula"})
      EXPECT_TRUE(route_ran(route)) << "no case took the route '" << route << "'";
    // The shared table gathered (integer read-out, or a formula that misses a point) as well.
    int gathered = 0;
    for (const auto& [route, count] : route_counts())
      if ((route == "avx512: avx512 differential bytes" || route == "avx512: avx512 native bytes") && count > 0)
        ++gathered;
    EXPECT_GT(gathered, 0) << "no signed-scheme case read the ADC from a table";
  }
}

TEST(KernelsProduct, LargerShapesAcrossTilesAndThreads) {
  // Enough pixels for several 16-pixel pairs and 32-pixel noise tiles per thread, partial last
  // tiles, several row groups, N = 144 with 16-row chunks and the ResNet-20 operand widths.
  route_counts().clear();
  fine_draws().clear();
  std::uint64_t seed = 5000;
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    const int rows = default_rows(scheme);
    const Decomposition d{scheme, rows, 4, 4};
    for (Chip chip : {Chip::Ideal, Chip::Noisy, Chip::NoisyWide}) {
      for (int adc_bits : {4, 7}) {
        ++seed;
        ASSERT_TRUE(check_case({d, chip, adc_bits, 2 * rows + 11, 3 * 49, 5, 49, seed}));
      }
    }
  }
  // N = 300: 19 chunks (the runtime chunk count) and counts past a byte: the 16-bit-lane paths.
  const Decomposition wide{Scheme::BitSerial, 300, 3, 3};
  for (Chip chip : {Chip::Ideal, Chip::Lossless, Chip::GainOffset, Chip::Noisy}) {
    ++seed;
    const int adc_bits = chip == Chip::Lossless ? lossless_bits(wide) : 6;
    ASSERT_TRUE(check_case({wide, chip, adc_bits, 700, 2 * 23, 3, 23, seed}));
  }
  report_routes("larger");
  expect_fine_draws_on_every_path("larger");
  if (kernel_isa_supported(KernelIsa::Avx512)) {
    for (const char* route : {"avx512: avx512 bit-serial words, table", "avx512: avx512 bit-serial words, lossless",
                              "avx512: avx512 bit-serial words, column tables", "avx512: avx512 bit-serial, noise"})
      EXPECT_TRUE(route_ran(route)) << "no case took the route '" << route << "'";
  }
}

// Sets the ADC table limit for a scope.
struct TableLimit {
  explicit TableLimit(std::int64_t entries) : previous(set_max_adc_table_entries(entries)) {}
  ~TableLimit() { set_max_adc_table_entries(previous); }
  std::int64_t previous;
};

TEST(KernelsProduct, DiesWithoutNoiseBeyondTheTableLimitTakeTheLevelFormula) {
  // Native's partial-sum range times a layer's columns can pass the table limit (ResNet-20 at
  // N = 9: 2161 points x 4096 columns); such a die without noise then runs the noise path's level
  // formula with sigma = 0 instead of the scalar converter. With the limit at 0 no table is built
  // at all: every scheme, ideal and gain/offset columns, must still match the reference.
  route_counts().clear();
  const TableLimit no_tables(0);
  std::uint64_t seed = 7000;
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    for (int rows : {9, 72, 144}) {
      const Decomposition d{scheme, rows, 4, scheme == Scheme::Differential ? 5 : 4};
      for (Chip chip : {Chip::Ideal, Chip::GainOffset, Chip::Noisy}) {
        for (int adc_bits : {3, 7}) {
          ++seed;
          ASSERT_TRUE(check_case({d, chip, adc_bits, 2 * rows + 7, 2 * 37, 3, 37, seed}));
        }
      }
    }
  }
  report_routes("no tables");
  if (kernel_isa_supported(KernelIsa::Avx512)) {
    for (const char* route : {"avx512: avx512 bit-serial, level formula", "avx512: avx512 bit-serial, noise",
                              "avx512: avx512 differential bytes", "avx512: avx512 native bytes"})
      EXPECT_TRUE(route_ran(route)) << "no case took the route '" << route << "'";
  }
  // On AVX-512 nothing falls back to the generic product (whose Direct path converts one by one).
  for (const auto& [route, count] : route_counts()) {
    if (route.rfind("avx512: ", 0) == 0) {
      EXPECT_EQ(route.rfind("avx512: avx512 ", 0), 0u) << count << " cases fell back: " << route;
    }
  }
}

TEST(KernelsProduct, LosslessAdcEqualsTheExactProductOnEveryPath) {
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    const Decomposition d{scheme, scheme == Scheme::Native ? 9 : 144, 4, 4};
    const int bits = lossless_bits(d);
    const Adc adc(d.p_lo(), d.p_hi(), bits);
    ASSERT_TRUE(adc.lossless()) << d.str();
    const Index k = 300, p = 45, c_out = 3;
    const Operands o = random_operands(d, k, p, c_out, 77);
    std::vector<std::int64_t> exact(static_cast<std::size_t>(c_out * p));
    reference_exact_gemm(o.x.data(), o.w.data(), k, p, c_out, exact.data());
    for (KernelIsa isa : available_paths()) {
      const ForcedIsa forced(isa);
      const PackedOperands packed = pack_operands(d, o, k, p, c_out);
      std::vector<std::int64_t> sums(exact.size()), y(exact.size());
      packed_pim_gemm_integer(d, AdcBank(adc), packed.x, packed.w, k, c_out, p, sums.data(), y.data(), nullptr);
      EXPECT_EQ(sums, exact) << d.str() << " on " << kernel_isa_name(isa) << " (" << last_kernel_route() << ")";
      EXPECT_EQ(y, exact) << d.str() << " on " << kernel_isa_name(isa);
    }
  }
}

// The signed schemes compute an ideal ADC's code by a float formula where the plan found it equal
// to the table (GemmPlan::linear_codes), with the few levels exactly halfway between two codes
// kept from the table: native N = 9 W4A4 has one at p = 0 with a 7-bit ADC (level 63.5, which the
// reference's double rounding puts at 63.499999999999993, code 63; the float formula says 64) and
// one at p = -1008 with a 4-bit ADC (level 0.5, code 1; the formula says 0). Operands that hit
// those partial sums on purpose must still match the reference on every path.
TEST(KernelsProduct, CodeFormulaKeepsTheTablesHalfwayCodes) {
  const Decomposition d{Scheme::Native, 9, 4, 4};
  for (int bits : {7, 4}) {
    const Adc adc(d.p_lo(), d.p_hi(), bits);
    const AdcBank bank(adc);
    const std::int64_t tie = bits == 7 ? 0 : -1008;
    ASSERT_EQ(adc.code(bank.level(0, tie)), bits == 7 ? 63 : 1);
    // Native p is the group's exact dot product sum X W.
    const Index k = 9 * 7 + 4, p = 37, c_out = 3;
    Operands o = random_operands(d, k, p, c_out, 91);
    // Pixel 0: all activations 0 (every partial sum 0); pixel 1: X = 14 and W = -8 on rows 0..8
    // of group 0 give p = -8 * 9 * 14 = -1008.
    for (Index i = 0; i < k; ++i) o.x[static_cast<std::size_t>(i * p)] = 0;
    for (Index i = 0; i < 9; ++i) {
      o.x[static_cast<std::size_t>(i * p + 1)] = 14;
      for (Index c = 0; c < c_out; ++c) o.w[static_cast<std::size_t>(c * k + i)] = -8;
    }
    std::vector<double> expected(static_cast<std::size_t>(c_out * p));
    reference_pim_gemm(d, bank, o.x.data(), o.w.data(), k, p, c_out, expected.data());
    for (KernelIsa isa : available_paths()) {
      const ForcedIsa forced(isa);
      const PackedOperands packed = pack_operands(d, o, k, p, c_out);
      std::vector<double> got(expected.size());
      packed_pim_gemm(d, bank, packed.x, packed.w, k, c_out, p, got.data(), nullptr);
      EXPECT_EQ(got, expected) << bits << "-bit ADC on " << kernel_isa_name(isa) << " (" << last_kernel_route() << ")";
      if (isa == KernelIsa::Avx512)
        EXPECT_STREQ(last_kernel_route(), "avx512 native bytes, code formula");
    }
  }
}

}  // namespace
}  // namespace pimqat::pim
