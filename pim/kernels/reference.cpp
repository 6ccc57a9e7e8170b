#include "pim/kernels/reference.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace pimqat::pim {
namespace {

// Exact accumulation of sum_j c_j Q(code_j) (see the header: integer read-out or (A, C)).
class QSum {
 public:
  explicit QSum(const Adc& adc) : adc_(adc) {}
  void add(std::int64_t coefficient, int code) {
    if (adc_.integer_readout()) {
      integer_ += coefficient * adc_.value_integer(code);
    } else {
      codes_ += coefficient * code;
      coefficients_ += coefficient;
    }
  }
  double value() const {
    if (adc_.integer_readout()) return static_cast<double>(integer_);
    return std::fma(adc_.delta(), static_cast<double>(codes_), adc_.p_lo() * static_cast<double>(coefficients_));
  }

 private:
  const Adc& adc_;
  std::int64_t integer_ = 0, codes_ = 0, coefficients_ = 0;
};

}  // namespace

void check_operands(const Decomposition& d, const std::int32_t* src, const std::int32_t* weights, Index reduction,
                    Index pixels, Index out_channels) {
  if (reduction < 1 || pixels < 0 || out_channels < 1)
    throw Error("PIM product with K = " + std::to_string(reduction) + ", P = " + std::to_string(pixels) +
                ", C_out = " + std::to_string(out_channels) + " (need K >= 1, P >= 0, C_out >= 1)");
  const std::int32_t x_max = d.max_activation(), w_min = d.min_weight(), w_max = d.max_weight();
  for (Index i = 0; i < reduction * pixels; ++i)
    if (src[i] < 0 || src[i] > x_max)
      throw Error("activation integer X[" + std::to_string(i / pixels) + "][" + std::to_string(i % pixels) + "] = " +
                  std::to_string(src[i]) + " is outside [0, " + std::to_string(x_max) + "] (" +
                  std::to_string(d.act_bits) + "-bit activations)");
  for (Index i = 0; i < out_channels * reduction; ++i)
    if (weights[i] < w_min || weights[i] > w_max)
      throw Error("weight integer W[" + std::to_string(i / reduction) + "][" + std::to_string(i % reduction) + "] = " +
                  std::to_string(weights[i]) + " is outside [" + std::to_string(w_min) + ", " + std::to_string(w_max) +
                  "] (" + std::to_string(d.weight_bits) + "-bit weights)");
}

void check_bank(const Decomposition& d, const AdcBank& bank, Index reduction, Index out_channels) {
  if (bank.adc().p_lo() != d.p_lo() || bank.adc().p_hi() != d.p_hi())
    throw Error("ADC range [" + std::to_string(bank.adc().p_lo()) + ", " + std::to_string(bank.adc().p_hi()) +
                "] does not match the partial-sum range [" + std::to_string(d.p_lo()) + ", " + std::to_string(d.p_hi()) +
                "] of " + d.str());
  if (!bank.ideal_columns() && bank.column_count() != d.columns(reduction, out_channels))
    throw Error("ADC bank has " + std::to_string(bank.column_count()) + " columns, the layer (" + d.str() + ", K = " +
                std::to_string(reduction) + ", C_out = " + std::to_string(out_channels) + ") has " +
                std::to_string(d.columns(reduction, out_channels)));
}

void reference_pim_gemm(const Decomposition& d, const AdcBank& bank, const std::int32_t* src,
                        const std::int32_t* weights, Index reduction, Index pixels, Index out_channels, double* dst) {
  d.validate();
  check_bank(d, bank, reduction, out_channels);
  check_operands(d, src, weights, reduction, pixels, out_channels);
  const Index rows = d.rows;
  const Index groups = d.groups(reduction);
  const int slices = d.input_slices();
  const int column_slices = d.column_slices();
  const int a_bits = d.act_bits, w_bits = d.weight_bits;

#pragma omp parallel for schedule(dynamic, 1) if (out_channels * pixels * reduction * slices * column_slices > (Index{1} << 16))
  for (Index o = 0; o < out_channels; ++o) {
    const std::int32_t* w_row = weights + o * reduction;
    for (Index pixel = 0; pixel < pixels; ++pixel) {
      QSum sum(bank.adc());
      for (Index g = 0; g < groups; ++g) {
        const Index begin = g * rows, end = std::min(reduction, begin + rows);
        const Index column0 = (g * out_channels + o) * column_slices;
        switch (d.scheme) {
          case Scheme::BitSerial:
            for (int s = 0; s < a_bits; ++s) {
              for (int t = 0; t < w_bits; ++t) {
                std::int64_t p = 0;
                for (Index i = begin; i < end; ++i) {
                  const std::int64_t x_bit = (src[i * pixels + pixel] >> s) & 1;
                  const std::int64_t w_bit = (static_cast<std::uint32_t>(w_row[i]) >> t) & 1u;
                  p += x_bit * w_bit;
                }
                const std::int64_t c_t = (t < w_bits - 1) ? (std::int64_t{1} << t) : -(std::int64_t{1} << t);
                const Index column = column0 + t;
                sum.add((std::int64_t{1} << s) * c_t,
                        bank.convert(column, p, conversion_index(column, s, slices, pixel, pixels)));
              }
            }
            break;
          case Scheme::Differential:
            for (int s = 0; s < a_bits; ++s) {
              std::int64_t p_plus = 0, p_minus = 0;
              for (Index i = begin; i < end; ++i) {
                const std::int64_t x_bit = (src[i * pixels + pixel] >> s) & 1;
                p_plus += x_bit * std::max<std::int64_t>(w_row[i], 0);
                p_minus += x_bit * std::max<std::int64_t>(-w_row[i], 0);
              }
              const Index column_plus = column0, column_minus = column0 + 1;
              sum.add(std::int64_t{1} << s,
                      bank.convert(column_plus, p_plus, conversion_index(column_plus, s, slices, pixel, pixels)));
              sum.add(-(std::int64_t{1} << s),
                      bank.convert(column_minus, p_minus, conversion_index(column_minus, s, slices, pixel, pixels)));
            }
            break;
          case Scheme::Native: {
            std::int64_t p = 0;
            for (Index i = begin; i < end; ++i) p += std::int64_t{src[i * pixels + pixel]} * w_row[i];
            sum.add(1, bank.convert(column0, p, conversion_index(column0, 0, slices, pixel, pixels)));
            break;
          }
        }
      }
      dst[o * pixels + pixel] = sum.value();
    }
  }
}

void reference_exact_gemm(const std::int32_t* src, const std::int32_t* weights, Index reduction, Index pixels,
                          Index out_channels, std::int64_t* dst) {
#pragma omp parallel for schedule(static) if (out_channels * pixels * reduction > (Index{1} << 16))
  for (Index o = 0; o < out_channels; ++o) {
    std::int64_t* out = dst + o * pixels;
    for (Index pixel = 0; pixel < pixels; ++pixel) out[pixel] = 0;
    for (Index i = 0; i < reduction; ++i) {
      const std::int64_t w = weights[o * reduction + i];
      const std::int32_t* x = src + i * pixels;
      for (Index pixel = 0; pixel < pixels; ++pixel) out[pixel] += w * x[pixel];
    }
  }
}

}  // namespace pimqat::pim
