// Tests of pim/kernels/reference.h (the oracle) and pim/im2col.h:
// - hand-computed cases per scheme (weight sign bit, short last group that still uses N's range),
// - lossless ADC == exact integer GEMM bit for bit, every scheme, b_a, b_w in 2..8, K % N != 0,
// - non-ideal die + noise against an independent transcription that sums Q values in long double,
// - thread-count independence, operand/bank validation, im2col against a direct convolution.
#include "pim/kernels/reference.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "pim/die.h"
#include "pim/im2col.h"

namespace pimqat::pim {
namespace {

Adc adc_for(const Decomposition& d, int bits, double clip = 1.0) { return Adc(d.p_lo(), d.p_hi(), bits, clip); }

double run_one(const Decomposition& d, int adc_bits, const std::vector<std::int32_t>& x, const std::vector<std::int32_t>& w) {
  double y = 0;
  const AdcBank bank(adc_for(d, adc_bits));
  reference_pim_gemm(d, bank, x.data(), w.data(), static_cast<Index>(x.size()), 1, 1, &y);
  return y;
}

TEST(ReferenceKernel, BitSerialHandComputed) {
  // N = 3, K = 4: group 0 = rows 0..2, group 1 = row 3 (short). b_a = b_w = 2.
  // X = [3, 1, 2, 3]: X_0 = [1,1,0,1], X_1 = [1,0,1,1].
  // W = [-1, 1, -2, 1] in 2-bit two's complement: W_0 = [1,1,0,1], W_1 (weight -2) = [1,0,1,0].
  // Partial sums p_gst: g0: (s0,t0) 2, (s0,t1) 1, (s1,t0) 1, (s1,t1) 2; g1: 1, 0, 1, 0.
  // Coefficients 2^s c_t: (s0,t0) 1, (s0,t1) -2, (s1,t0) 2, (s1,t1) -4.
  // Exact: g0 = 2 - 2 + 2 - 8 = -6, g1 = 1 + 2 = 3, total -3 = sum X W.
  const Decomposition d{Scheme::BitSerial, 3, 2, 2};
  const std::vector<std::int32_t> x = {3, 1, 2, 3}, w = {-1, 1, -2, 1};
  EXPECT_EQ(run_one(d, 2, x, w), -3.0);  // 2 bits over [0, 3]: Delta = 1, lossless
  // 1 bit over [0, 3]: Delta = 3, Q(0) = Q(1) = 0, Q(2) = Q(3) = 3. The short group's p = 1 maps
  // to 0 because the range is N = 3, not the group's 1 row.
  // g0 = Q(2) - 2 Q(1) + 2 Q(1) - 4 Q(2) = 3 - 12 = -9; g1 = Q(1) + 2 Q(1) = 0.
  EXPECT_EQ(run_one(d, 1, x, w), -9.0);
}

TEST(ReferenceKernel, DifferentialHandComputed) {
  // N = 2, K = 3, b_a = 2, b_w = 3: range [0, 2 * 4 = 8]. X = [3, 2, 1], W = [-4, 3, -1].
  // W+ = [0, 3, 0], W- = [4, 0, 1]; X_0 = [1, 0, 1], X_1 = [1, 1, 0].
  // g0 (rows 0,1): s0: p+ = 0, p- = 4; s1: p+ = 3, p- = 4.  g1 (row 2): s0: p+ = 0, p- = 1; s1: 0, 0.
  // Exact: (0 - 4) + 2 (3 - 4) + (0 - 1) = -7.
  const Decomposition d{Scheme::Differential, 2, 2, 3};
  const std::vector<std::int32_t> x = {3, 2, 1}, w = {-4, 3, -1};
  EXPECT_EQ(run_one(d, 4, x, w), -7.0);  // 4 bits: Delta = 8/15 <= 1, integer read-out
  // 2 bits: Delta = 8/3, code = floor(3p/8 + 1/2): p = 0 -> 0, 1 -> 0, 3 -> 1, 4 -> 2.
  // y~ = (0 - 2D) + 2 (D - 2D) + (0 - 0) = -4 D = -32/3.
  EXPECT_DOUBLE_EQ(run_one(d, 2, x, w), -32.0 / 3.0);
}

TEST(ReferenceKernel, NativeHandComputed) {
  // N = 2, K = 3, b_a = b_w = 2: P = 2 * 3 * 2 = 12, range [-12, 12]. X = [3, 2, 1], W = [-2, 1, 1].
  // g0: p = -6 + 2 = -4; g1 (short): p = 1. Exact -3.
  const Decomposition d{Scheme::Native, 2, 2, 2};
  const std::vector<std::int32_t> x = {3, 2, 1}, w = {-2, 1, 1};
  EXPECT_EQ(run_one(d, 5, x, w), -3.0);  // Delta = 24/31
  // 3 bits: Delta = 24/7; p = -4: 8/D = 2.33 -> code 2 -> -12 + 2D; p = 1: 13/D = 3.79 -> 4 -> -12 + 4D.
  // y~ = -24 + 6 D = -24/7.
  EXPECT_NEAR(run_one(d, 3, x, w), -24.0 / 7.0, 1e-14);
}

struct Operands {
  std::vector<std::int32_t> x, w;
};

Operands random_operands(const Decomposition& d, Index k, Index p, Index c_out, std::uint64_t seed) {
  RandomStream r(RngKey{seed, 0, Purpose::Operands, 0});
  Operands o;
  o.x.resize(static_cast<std::size_t>(k * p));
  o.w.resize(static_cast<std::size_t>(c_out * k));
  const auto x_levels = static_cast<std::uint32_t>(d.max_activation() + 1);
  const auto w_levels = static_cast<std::uint32_t>(d.max_weight() - d.min_weight() + 1);
  for (auto& v : o.x) v = static_cast<std::int32_t>(r.below(x_levels));
  for (auto& v : o.w) v = d.min_weight() + static_cast<std::int32_t>(r.below(w_levels));
  return o;
}

// The smallest ADC resolution with Delta <= 1 for the decomposition (may exceed 16).
int lossless_bits(const Decomposition& d) {
  const double range = d.p_hi() - d.p_lo();
  int bits = 1;
  while (static_cast<double>((std::int64_t{1} << bits) - 1) < range) ++bits;
  return bits;
}

TEST(ReferenceKernel, LosslessAdcEqualsExactGemmForEverySchemeAndBitWidth) {
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    for (int a_bits = 2; a_bits <= 8; ++a_bits) {
      for (int w_bits = 2; w_bits <= 8; ++w_bits) {
        Decomposition d{scheme, scheme == Scheme::Native ? 9 : 13, a_bits, w_bits};
        while (lossless_bits(d) > kMaxAdcBits) d.rows = d.rows > 2 ? d.rows / 2 : 1;
        const Index k = d.rows == 1 ? 5 : 3 * d.rows + d.rows / 2;  // a short last group (unless N = 1)
        const Index p = 6, c_out = 3;
        Operands o = random_operands(d, k, p, c_out, static_cast<std::uint64_t>(a_bits * 10 + w_bits));
        // Pixel 0 sees the extremes: X = max, W = min (p at the ends of the range).
        for (Index i = 0; i < k; ++i) o.x[static_cast<std::size_t>(i * p)] = d.max_activation();
        for (Index i = 0; i < k; ++i) o.w[static_cast<std::size_t>(i)] = d.min_weight();
        const int bits = lossless_bits(d);
        const AdcBank bank(adc_for(d, bits));
        ASSERT_TRUE(bank.adc().lossless());
        std::vector<double> y(static_cast<std::size_t>(c_out * p));
        std::vector<std::int64_t> exact(y.size());
        reference_pim_gemm(d, bank, o.x.data(), o.w.data(), k, p, c_out, y.data());
        reference_exact_gemm(o.x.data(), o.w.data(), k, p, c_out, exact.data());
        for (std::size_t i = 0; i < y.size(); ++i)
          ASSERT_EQ(y[i], static_cast<double>(exact[i]))
              << d.str() << " adc_bits=" << bits << " K=" << k << " entry " << i;
        // One bit fewer is lossy somewhere (the test would notice a kernel that skips the ADC).
        if (bits > 1 && k > 1) {
          reference_pim_gemm(d, AdcBank(adc_for(d, bits - 1)), o.x.data(), o.w.data(), k, p, c_out, y.data());
          bool any_difference = false;
          for (std::size_t i = 0; i < y.size(); ++i) any_difference |= y[i] != static_cast<double>(exact[i]);
          EXPECT_TRUE(any_difference) << d.str() << " adc_bits=" << bits - 1;
        }
      }
    }
  }
}

TEST(ReferenceKernel, ExactGemmMatchesNaiveSum) {
  const Decomposition d{Scheme::Native, 9, 8, 8};
  const Operands o = random_operands(d, 37, 11, 5, 3);
  std::vector<std::int64_t> y(55);
  reference_exact_gemm(o.x.data(), o.w.data(), 37, 11, 5, y.data());
  for (int oc = 0; oc < 5; ++oc)
    for (int px = 0; px < 11; ++px) {
      std::int64_t s = 0;
      for (int i = 0; i < 37; ++i) s += std::int64_t{o.w[oc * 37 + i]} * o.x[i * 11 + px];
      EXPECT_EQ(y[static_cast<std::size_t>(oc * 11 + px)], s);
    }
}

// Independent transcription of DESIGN.md 2.2: bit-planes materialized as arrays, two's
// complement bits from the unsigned residue W mod 2^b_w, Q values summed in long double.
long double literal_output(const Decomposition& d, const AdcBank& bank, const Operands& o, Index k, Index p,
                           Index c_out, Index oc, Index px) {
  const Index n = d.rows, groups = (k + n - 1) / n;
  const Adc& adc = bank.adc();
  const auto q = [&](Index column, std::int64_t partial, int s) {
    const int code = bank.convert(column, partial, (static_cast<std::uint64_t>(column) * d.input_slices() +
                                                    static_cast<std::uint64_t>(s)) * static_cast<std::uint64_t>(p) +
                                                       static_cast<std::uint64_t>(px));
    long double v = static_cast<long double>(adc.p_lo()) + static_cast<long double>(adc.delta()) * code;
    if (adc.delta() <= 1.0) v = std::round(v);
    return v;
  };
  std::vector<int> x(static_cast<std::size_t>(k)), w(static_cast<std::size_t>(k));
  for (Index i = 0; i < k; ++i) {
    x[static_cast<std::size_t>(i)] = o.x[static_cast<std::size_t>(i * p + px)];
    w[static_cast<std::size_t>(i)] = o.w[static_cast<std::size_t>(oc * k + i)];
  }
  long double y = 0;
  for (Index g = 0; g < groups; ++g) {
    const Index begin = g * n, end = std::min(k, begin + n);
    if (d.scheme == Scheme::Native) {
      std::int64_t s = 0;
      for (Index i = begin; i < end; ++i) s += x[static_cast<std::size_t>(i)] * w[static_cast<std::size_t>(i)];
      y += q(g * c_out + oc, s, 0);
      continue;
    }
    for (int s = 0; s < d.act_bits; ++s) {
      std::vector<int> x_plane(static_cast<std::size_t>(k));
      for (Index i = 0; i < k; ++i) x_plane[static_cast<std::size_t>(i)] = (x[static_cast<std::size_t>(i)] / (1 << s)) % 2;
      if (d.scheme == Scheme::BitSerial) {
        for (int t = 0; t < d.weight_bits; ++t) {
          std::int64_t sum = 0;
          for (Index i = begin; i < end; ++i) {
            const int residue = (w[static_cast<std::size_t>(i)] + (1 << d.weight_bits)) % (1 << d.weight_bits);
            sum += x_plane[static_cast<std::size_t>(i)] * ((residue / (1 << t)) % 2);
          }
          const long double c_t = t == d.weight_bits - 1 ? -std::ldexp(1.0L, t) : std::ldexp(1.0L, t);
          y += std::ldexp(1.0L, s) * c_t * q((g * c_out + oc) * d.weight_bits + t, sum, s);
        }
      } else {
        std::int64_t plus = 0, minus = 0;
        for (Index i = begin; i < end; ++i) {
          const int wi = w[static_cast<std::size_t>(i)];
          plus += x_plane[static_cast<std::size_t>(i)] * (wi > 0 ? wi : 0);
          minus += x_plane[static_cast<std::size_t>(i)] * (wi < 0 ? -wi : 0);
        }
        const Index column = (g * c_out + oc) * 2;
        y += std::ldexp(1.0L, s) * (q(column, plus, s) - q(column + 1, minus, s));
      }
    }
  }
  return y;
}

TEST(ReferenceKernel, NonIdealDieWithNoiseMatchesLiteralSumOfQ) {
  NonIdeality chip;
  chip.gain_sigma = 0.024;
  chip.offset_sigma = 2.04;
  chip.noise_sigma = 0.8;
  for (CurveModel curve : {CurveModel::Linear, CurveModel::Smooth}) {
    chip.curve = curve;
    chip.curve_strength = curve == CurveModel::Smooth ? 1.3 : 0.0;
    for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
      for (int adc_bits : {3, 5, 7}) {
        for (double clip : {1.0, 0.6}) {
          const Decomposition d{scheme, scheme == Scheme::Native ? 9 : 20, 3, 4};
          const Index k = 47, p = 9, c_out = 4;
          const Operands o = random_operands(d, k, p, c_out, 77);
          const Die die(5, 6, 7, chip);
          AdcBank bank = die.bank(2, adc_for(d, adc_bits, clip), d.columns(k, c_out));
          die.set_noise(bank, 2, 0);
          std::vector<double> y(static_cast<std::size_t>(c_out * p));
          reference_pim_gemm(d, bank, o.x.data(), o.w.data(), k, p, c_out, y.data());
          double scale = 0;
          for (Index oc = 0; oc < c_out; ++oc)
            for (Index px = 0; px < p; ++px) {
              const long double literal = literal_output(d, bank, o, k, p, c_out, oc, px);
              scale = std::max(scale, std::abs(static_cast<double>(literal)));
              EXPECT_NEAR(y[static_cast<std::size_t>(oc * p + px)], static_cast<double>(literal),
                          1e-12 * (1.0 + std::abs(static_cast<double>(literal))))
                  << d.str() << " adc_bits=" << adc_bits << " clip=" << clip;
            }
          EXPECT_GT(scale, 0.0);
        }
      }
    }
  }
}

TEST(ReferenceKernel, NoiseMattersAndIsReproducibleForAnyThreadCount) {
  const Decomposition d{Scheme::BitSerial, 16, 4, 4};
  const Index k = 50, p = 33, c_out = 5;
  const Operands o = random_operands(d, k, p, c_out, 1);
  NonIdeality chip;
  chip.noise_sigma = 1.0;
  chip.offset_sigma = 1.0;
  const Die die(1, 2, 3, chip);
  AdcBank bank = die.bank(0, adc_for(d, 4), d.columns(k, c_out));
  std::vector<double> call0(static_cast<std::size_t>(c_out * p)), again(call0.size()), call1(call0.size());
  die.set_noise(bank, 0, 0);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  reference_pim_gemm(d, bank, o.x.data(), o.w.data(), k, p, c_out, call0.data());
  omp_set_num_threads(2);
  reference_pim_gemm(d, bank, o.x.data(), o.w.data(), k, p, c_out, again.data());
  omp_set_num_threads(threads);
  EXPECT_EQ(call0, again);
  die.set_noise(bank, 0, 1);
  reference_pim_gemm(d, bank, o.x.data(), o.w.data(), k, p, c_out, call1.data());
  EXPECT_NE(call0, call1);
}

TEST(ReferenceKernel, BadOperandsAndBanksAreRejected) {
  const Decomposition d{Scheme::BitSerial, 4, 2, 3};
  std::vector<std::int32_t> x = {0, 1, 2, 4}, w = {0, 1, 2, 3};  // X = 4 > 3
  double y = 0;
  const AdcBank bank(adc_for(d, 3));
  try {
    reference_pim_gemm(d, bank, x.data(), w.data(), 4, 1, 1, &y);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("X[3][0] = 4 is outside [0, 3]"), std::string::npos) << e.what();
  }
  x[3] = 3;
  w[1] = -5;  // below -4
  EXPECT_THROW(reference_pim_gemm(d, bank, x.data(), w.data(), 4, 1, 1, &y), Error);
  w[1] = -4;
  EXPECT_NO_THROW(reference_pim_gemm(d, bank, x.data(), w.data(), 4, 1, 1, &y));
  const AdcBank wrong_range(Adc(0, 8, 3));
  EXPECT_THROW(reference_pim_gemm(d, wrong_range, x.data(), w.data(), 4, 1, 1, &y), Error);
  AdcBank wrong_columns(adc_for(d, 3));
  wrong_columns.set_columns(std::vector<ColumnParams>(2), CurveModel::Linear, 0.0, nullptr);  // needs 3
  EXPECT_THROW(reference_pim_gemm(d, wrong_columns, x.data(), w.data(), 4, 1, 1, &y), Error);
  Decomposition bad_rows = d;
  bad_rows.rows = 0;
  EXPECT_THROW(reference_pim_gemm(bad_rows, bank, x.data(), w.data(), 4, 1, 1, &y), Error);
}

TEST(Im2col, MatchesDirectConvolutionOnAwkwardShapes) {
  struct Case {
    Im2colGeometry g;
    Index c_out;
  };
  const Case cases[] = {
      {{2, 3, 7, 5, 3, 3, 1, 1}, 4},
      {{1, 2, 9, 6, 3, 3, 2, 1}, 3},
      {{3, 5, 4, 4, 1, 1, 2, 0}, 2},
      {{1, 1, 5, 8, 3, 2, 1, 0}, 2},
  };
  for (const auto& c : cases) {
    const Im2colGeometry& g = c.g;
    g.validate();
    RandomStream r(RngKey{1, 0, Purpose::Operands, 5});
    std::vector<std::int32_t> src(static_cast<std::size_t>(g.batch * g.channels * g.height * g.width));
    for (auto& v : src) v = static_cast<std::int32_t>(r.below(16));
    std::vector<std::int32_t> w(static_cast<std::size_t>(c.c_out * g.reduction()));
    for (auto& v : w) v = static_cast<std::int32_t>(r.below(15)) - 7;
    std::vector<std::int32_t> cols(static_cast<std::size_t>(g.reduction() * g.pixels()));
    im2col(g, src.data(), cols.data());
    std::vector<std::int64_t> y(static_cast<std::size_t>(c.c_out * g.pixels()));
    reference_exact_gemm(cols.data(), w.data(), g.reduction(), g.pixels(), c.c_out, y.data());
    const Index oh_n = g.out_height(), ow_n = g.out_width();
    for (Index n = 0; n < g.batch; ++n)
      for (Index o = 0; o < c.c_out; ++o)
        for (Index oh = 0; oh < oh_n; ++oh)
          for (Index ow = 0; ow < ow_n; ++ow) {
            std::int64_t s = 0;
            for (Index ci = 0; ci < g.channels; ++ci)
              for (Index kh = 0; kh < g.kernel_h; ++kh)
                for (Index kw = 0; kw < g.kernel_w; ++kw) {
                  const Index h = oh * g.stride - g.padding + kh, x = ow * g.stride - g.padding + kw;
                  if (h < 0 || h >= g.height || x < 0 || x >= g.width) continue;
                  s += std::int64_t{w[static_cast<std::size_t>(((o * g.channels + ci) * g.kernel_h + kh) * g.kernel_w + kw)]} *
                       src[static_cast<std::size_t>(((n * g.channels + ci) * g.height + h) * g.width + x)];
                }
            EXPECT_EQ(y[static_cast<std::size_t>(o * g.pixels() + (n * oh_n + oh) * ow_n + ow)], s) << g.str();
          }
  }
  Im2colGeometry bad{1, 1, 2, 2, 5, 5, 1, 0};
  EXPECT_THROW(bad.validate(), Error);
}

}  // namespace
}  // namespace pimqat::pim
