#include "pim/kernels/packed.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "core/error.h"
#include "pim/kernels/reference.h"

namespace pimqat::pim {
namespace {

int words_per_group(const Decomposition& d) { return (d.rows + 63) / 64; }

void set_bit(std::uint64_t* words, Index row) { words[row >> 6] |= std::uint64_t{1} << (row & 63); }

[[noreturn]] void bad_activation(const Decomposition& d, const std::string& where, double value) {
  throw Error("activation integer " + where + " = " + std::to_string(value) + " is not an integer in [0, " +
              std::to_string(d.max_activation()) + "] (" + std::to_string(d.act_bits) + "-bit activations)");
}

[[noreturn]] void bad_weight(const Decomposition& d, Index o, Index i, double value) {
  throw Error("weight integer W[" + std::to_string(o) + "][" + std::to_string(i) + "] = " + std::to_string(value) +
              " is not an integer in [" + std::to_string(d.min_weight()) + ", " + std::to_string(d.max_weight()) +
              "] (" + std::to_string(d.weight_bits) + "-bit weights)");
}

template <class T>
void pack_weights_impl(const Decomposition& d, const T* weights, Index reduction, Index out_channels,
                       PackedWeights& out) {
  d.validate();
  out.out_channels = out_channels;
  out.groups = d.groups(reduction);
  out.words = words_per_group(d);
  out.planes = d.scheme == Scheme::Differential ? 2 * d.weight_bits : d.weight_bits;
  out.bits.assign(static_cast<std::size_t>(out_channels * out.channel_stride()), 0);
  const Index n = d.rows;
  for (Index o = 0; o < out_channels; ++o) {
    for (Index i = 0; i < reduction; ++i) {
      const T raw = weights[o * reduction + i];
      if (!(raw >= d.min_weight() && raw <= d.max_weight()) || static_cast<T>(static_cast<std::int32_t>(raw)) != raw)
        bad_weight(d, o, i, static_cast<double>(raw));
      const auto value = static_cast<std::int32_t>(raw);
      const Index g = i / n, r = i % n;
      std::uint64_t* group = out.bits.data() + o * out.channel_stride() + g * out.planes * out.words;
      if (d.scheme == Scheme::Differential) {
        const std::int32_t plus = std::max(value, 0), minus = std::max(-value, 0);
        for (int u = 0; u < d.weight_bits; ++u) {
          if ((plus >> u) & 1) set_bit(group + u * out.words, r);
          if ((minus >> u) & 1) set_bit(group + (d.weight_bits + u) * out.words, r);
        }
      } else {
        const auto twos = static_cast<std::uint32_t>(value);
        for (int t = 0; t < d.weight_bits; ++t)
          if ((twos >> t) & 1u) set_bit(group + t * out.words, r);
      }
    }
  }
}

// How a partial sum p of column c becomes the value v that is accumulated: v = Q_int(code) with
// integer read-out, else v = code (see the reference's exact-sum rule).
struct ConvertIdealTable {
  const std::int32_t* table;  // indexed by p - p_lo
  std::int64_t p_lo;
  std::int64_t operator()(Index, std::int64_t p, int, Index) const { return table[p - p_lo]; }
};

struct ConvertColumnTable {
  const std::int32_t* table;  // [column][p - p_lo]
  std::int64_t p_lo, points;
  std::int64_t operator()(Index column, std::int64_t p, int, Index) const { return table[column * points + p - p_lo]; }
};

struct ConvertDirect {
  const AdcBank* bank;
  const std::int64_t* code_value;  // code -> v
  int slices;
  Index pixels;
  std::int64_t operator()(Index column, std::int64_t p, int s, Index pixel) const {
    return code_value[bank->convert(column, p, conversion_index(column, s, slices, pixel, pixels))];
  }
};

inline std::int64_t and_popcount(const std::uint64_t* a, const std::uint64_t* b, int words) {
  std::int64_t sum = 0;
  for (int w = 0; w < words; ++w) sum += std::popcount(a[w] & b[w]);
  return sum;
}

template <Scheme kScheme, class Convert>
void gemm_impl(const Decomposition& d, const AdcBank& bank, const PackedActivations& x, const PackedWeights& w,
               Index out_channels, Index image_pixels, double* pim_dst, std::int64_t* exact_dst, Convert convert) {
  const Index pixels = x.pixels, groups = x.groups;
  const int words = x.words, a_bits = d.act_bits, w_bits = d.weight_bits;
  const int column_slices = d.column_slices();
  const int w_planes = w.planes;
  const bool integer_readout = bank.adc().integer_readout();
  const double delta = bank.adc().delta(), p_lo = bank.adc().p_lo();
  const Index x_stride = x.pixel_stride(), w_stride = w.channel_stride();
  constexpr Index kBlock = 32;
  const Index blocks = (pixels + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(dynamic, 1) if (pixels * out_channels * groups * a_bits * w_bits > (Index{1} << 15))
  for (Index block = 0; block < blocks; ++block) {
    const Index pixel_begin = block * kBlock, pixel_end = std::min(pixels, pixel_begin + kBlock);
    for (Index o = 0; o < out_channels; ++o) {
      const std::uint64_t* w_channel = w.bits.data() + o * w_stride;
      for (Index pixel = pixel_begin; pixel < pixel_end; ++pixel) {
        const std::uint64_t* x_pixel = x.bits.data() + pixel * x_stride;
        std::int64_t sum_v = 0, sum_coefficient = 0, exact = 0;
        for (Index g = 0; g < groups; ++g) {
          const std::uint64_t* xg = x_pixel + g * a_bits * words;
          const std::uint64_t* wg = w_channel + g * w_planes * words;
          const Index column0 = (g * out_channels + o) * column_slices;
          if constexpr (kScheme == Scheme::BitSerial) {
            for (int s = 0; s < a_bits; ++s) {
              for (int t = 0; t < w_bits; ++t) {
                const std::int64_t p = and_popcount(xg + s * words, wg + t * words, words);
                const std::int64_t c_t = t < w_bits - 1 ? (std::int64_t{1} << t) : -(std::int64_t{1} << t);
                const std::int64_t coefficient = (std::int64_t{1} << s) * c_t;
                sum_v += coefficient * convert(column0 + t, p, s, pixel);
                sum_coefficient += coefficient;
                exact += coefficient * p;
              }
            }
          } else if constexpr (kScheme == Scheme::Differential) {
            for (int s = 0; s < a_bits; ++s) {
              std::int64_t p_plus = 0, p_minus = 0;
              for (int u = 0; u < w_bits; ++u) {
                p_plus += and_popcount(xg + s * words, wg + u * words, words) << u;
                p_minus += and_popcount(xg + s * words, wg + (w_bits + u) * words, words) << u;
              }
              const std::int64_t weight = std::int64_t{1} << s;
              sum_v += weight * convert(column0, p_plus, s, pixel) - weight * convert(column0 + 1, p_minus, s, pixel);
              exact += weight * (p_plus - p_minus);
            }
          } else {
            std::int64_t p = 0;
            for (int s = 0; s < a_bits; ++s)
              for (int t = 0; t < w_bits; ++t) {
                const std::int64_t c_t = t < w_bits - 1 ? (std::int64_t{1} << t) : -(std::int64_t{1} << t);
                p += ((std::int64_t{1} << s) * c_t) * and_popcount(xg + s * words, wg + t * words, words);
              }
            sum_v += convert(column0, p, 0, pixel);
            sum_coefficient += 1;
            exact += p;
          }
        }
        const Index at = (pixel / image_pixels) * out_channels * image_pixels + o * image_pixels + pixel % image_pixels;
        if (pim_dst)
          pim_dst[at] = integer_readout ? static_cast<double>(sum_v)
                                        : std::fma(delta, static_cast<double>(sum_v), p_lo * static_cast<double>(sum_coefficient));
        if (exact_dst) exact_dst[at] = exact;
      }
    }
  }
}

template <Scheme kScheme>
void dispatch_convert(const Decomposition& d, const AdcBank& bank, const PackedActivations& x, const PackedWeights& w,
                      Index reduction, Index out_channels, Index image_pixels, double* pim_dst, std::int64_t* exact_dst) {
  const Adc& adc = bank.adc();
  const auto p_lo = static_cast<std::int64_t>(d.p_lo()), p_hi = static_cast<std::int64_t>(d.p_hi());
  const std::int64_t points = p_hi - p_lo + 1;
  std::vector<std::int64_t> code_value(static_cast<std::size_t>(adc.max_code()) + 1);
  for (int c = 0; c <= adc.max_code(); ++c)
    code_value[static_cast<std::size_t>(c)] = adc.integer_readout() ? adc.value_integer(c) : c;
  constexpr std::int64_t kMaxTable = std::int64_t{1} << 24;
  if (bank.ideal() && points <= kMaxTable) {
    std::vector<std::int32_t> table(static_cast<std::size_t>(points));
    for (std::int64_t p = p_lo; p <= p_hi; ++p)
      table[static_cast<std::size_t>(p - p_lo)] =
          static_cast<std::int32_t>(code_value[static_cast<std::size_t>(adc.code(bank.level(0, p)))]);
    gemm_impl<kScheme>(d, bank, x, w, out_channels, image_pixels, pim_dst, exact_dst, ConvertIdealTable{table.data(), p_lo});
    return;
  }
  const Index columns = d.columns(reduction, out_channels);
  // Per-column tables pay off when each entry is used about once: points <= P S conversions per column.
  if (!bank.noisy() && columns * points <= kMaxTable && points <= x.pixels * d.input_slices()) {
    std::vector<std::int32_t> table(static_cast<std::size_t>(columns * points));
#pragma omp parallel for schedule(static) if (columns * points > (std::int64_t{1} << 16))
    for (Index c = 0; c < columns; ++c)
      for (std::int64_t p = p_lo; p <= p_hi; ++p)
        table[static_cast<std::size_t>(c * points + p - p_lo)] =
            static_cast<std::int32_t>(code_value[static_cast<std::size_t>(adc.code(bank.level(c, p)))]);
    gemm_impl<kScheme>(d, bank, x, w, out_channels, image_pixels, pim_dst, exact_dst,
                       ConvertColumnTable{table.data(), p_lo, points});
    return;
  }
  gemm_impl<kScheme>(d, bank, x, w, out_channels, image_pixels, pim_dst, exact_dst,
                     ConvertDirect{&bank, code_value.data(), d.input_slices(), x.pixels});
}

}  // namespace

void pack_activations(const Decomposition& d, const std::int32_t* src, Index reduction, Index pixels,
                      PackedActivations& out) {
  d.validate();
  out.pixels = pixels;
  out.groups = d.groups(reduction);
  out.planes = d.act_bits;
  out.words = words_per_group(d);
  out.bits.assign(static_cast<std::size_t>(pixels * out.pixel_stride()), 0);
  const Index n = d.rows;
  for (Index i = 0; i < reduction; ++i) {
    const Index g = i / n, r = i % n;
    for (Index pixel = 0; pixel < pixels; ++pixel) {
      const std::int32_t v = src[i * pixels + pixel];
      if (v < 0 || v > d.max_activation())
        bad_activation(d, "X[" + std::to_string(i) + "][" + std::to_string(pixel) + "]", v);
      std::uint64_t* group = out.bits.data() + pixel * out.pixel_stride() + g * out.planes * out.words;
      for (int s = 0; s < d.act_bits; ++s)
        if ((v >> s) & 1) set_bit(group + s * out.words, r);
    }
  }
}

void pack_activations(const Decomposition& d, const Im2colGeometry& geometry, const float* integers,
                      PackedActivations& out) {
  d.validate();
  geometry.validate();
  const Index reduction = geometry.reduction(), pixels = geometry.pixels();
  out.pixels = pixels;
  out.groups = d.groups(reduction);
  out.planes = d.act_bits;
  out.words = words_per_group(d);
  out.bits.assign(static_cast<std::size_t>(pixels * out.pixel_stride()), 0);
  const Index oh_count = geometry.out_height(), ow_count = geometry.out_width();
  const Index n_rows = d.rows;
  const auto max_value = static_cast<float>(d.max_activation());
  Index first_bad = -1;
#pragma omp parallel for schedule(static) if (pixels * reduction > (Index{1} << 16))
  for (Index pixel = 0; pixel < pixels; ++pixel) {
    const Index ow = pixel % ow_count, oh = (pixel / ow_count) % oh_count, n = pixel / (ow_count * oh_count);
    std::uint64_t* words = out.bits.data() + pixel * out.pixel_stride();
    for (Index c = 0; c < geometry.channels; ++c) {
      const float* plane = integers + (n * geometry.channels + c) * geometry.height * geometry.width;
      for (int kh = 0; kh < geometry.kernel_h; ++kh) {
        const Index h = oh * geometry.stride - geometry.padding + kh;
        if (h < 0 || h >= geometry.height) continue;
        for (int kw = 0; kw < geometry.kernel_w; ++kw) {
          const Index wi = ow * geometry.stride - geometry.padding + kw;
          if (wi < 0 || wi >= geometry.width) continue;
          const float v = plane[h * geometry.width + wi];
          if (!(v >= 0.0f && v <= max_value) || v != std::floor(v)) {
#pragma omp critical(pimqat_pack_error)
            if (first_bad < 0 || (n * geometry.channels + c) * geometry.height * geometry.width + h * geometry.width + wi < first_bad)
              first_bad = (n * geometry.channels + c) * geometry.height * geometry.width + h * geometry.width + wi;
            continue;
          }
          const auto value = static_cast<std::int32_t>(v);
          const Index i = (c * geometry.kernel_h + kh) * geometry.kernel_w + kw;
          std::uint64_t* group = words + (i / n_rows) * out.planes * out.words;
          const Index r = i % n_rows;
          for (int s = 0; s < d.act_bits; ++s)
            if ((value >> s) & 1) set_bit(group + s * out.words, r);
        }
      }
    }
  }
  if (first_bad >= 0) bad_activation(d, "at flat NCHW index " + std::to_string(first_bad), integers[first_bad]);
}

void pack_weights(const Decomposition& d, const std::int32_t* weights, Index reduction, Index out_channels,
                  PackedWeights& out) {
  pack_weights_impl(d, weights, reduction, out_channels, out);
}

void pack_weights(const Decomposition& d, const float* weights, Index reduction, Index out_channels,
                  PackedWeights& out) {
  pack_weights_impl(d, weights, reduction, out_channels, out);
}

void packed_pim_gemm(const Decomposition& d, const AdcBank& bank, const PackedActivations& x,
                     const PackedWeights& w, Index reduction, Index out_channels, Index image_pixels, double* pim_dst,
                     std::int64_t* exact_dst) {
  d.validate();
  check_bank(d, bank, reduction, out_channels);
  const Index groups = d.groups(reduction);
  if (x.groups != groups || x.planes != d.act_bits || x.words != words_per_group(d) || w.groups != groups ||
      w.out_channels != out_channels || w.words != x.words ||
      w.planes != (d.scheme == Scheme::Differential ? 2 * d.weight_bits : d.weight_bits))
    throw Error("packed PIM operands do not fit " + d.str() + " with K = " + std::to_string(reduction) +
                ", C_out = " + std::to_string(out_channels));
  if (image_pixels < 1 || x.pixels % image_pixels != 0)
    throw Error("packed PIM product: " + std::to_string(x.pixels) + " pixels are not a whole number of images of " +
                std::to_string(image_pixels));
  switch (d.scheme) {
    case Scheme::BitSerial:
      dispatch_convert<Scheme::BitSerial>(d, bank, x, w, reduction, out_channels, image_pixels, pim_dst, exact_dst);
      break;
    case Scheme::Differential:
      dispatch_convert<Scheme::Differential>(d, bank, x, w, reduction, out_channels, image_pixels, pim_dst, exact_dst);
      break;
    case Scheme::Native:
      dispatch_convert<Scheme::Native>(d, bank, x, w, reduction, out_channels, image_pixels, pim_dst, exact_dst);
      break;
  }
}

}  // namespace pimqat::pim
