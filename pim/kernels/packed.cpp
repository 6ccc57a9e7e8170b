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

// How the partial sums p[lane] of column c become the values v that are accumulated,
// acc[lane] += coefficient * v: v = Q_int(code) with integer read-out, else v = code (the
// reference's exact-sum rule).
struct ConvertTable {  // fixed ADC: one table p -> v per column (stride 0: shared by all columns)
  const std::int32_t* table;  // [column][p - p_lo]
  std::int64_t p_lo, stride;
  void accumulate(Index column, int, Index, Index, const std::int64_t* p, std::int64_t coefficient,
                  std::int64_t* acc) const {
    const std::int32_t* t = table + column * stride - p_lo;
    for (Index l = 0; l < kPimLanes; ++l) acc[l] += coefficient * static_cast<std::int64_t>(t[p[l]]);
  }
};

struct ConvertDirect {  // thermal noise: every conversion through AdcBank::convert
  const AdcBank* bank;
  const std::int64_t* code_value;  // code -> v
  int slices;
  Index pixels;
  void accumulate(Index column, int s, Index pixel0, Index valid, const std::int64_t* p, std::int64_t coefficient,
                  std::int64_t* acc) const {
    for (Index l = 0; l < valid; ++l)
      acc[l] += coefficient *
                code_value[bank->convert(column, p[l], conversion_index(column, s, slices, pixel0 + l, pixels))];
  }
};

struct ConvertLossless {  // ideal ADC with Q(p) = p: no simulation
  void accumulate(Index, int, Index, Index, const std::int64_t* p, std::int64_t coefficient, std::int64_t* acc) const {
    for (Index l = 0; l < kPimLanes; ++l) acc[l] += coefficient * p[l];
  }
};

// p[lane] += popcount(x[lane] & w) << shift, over the words of one (group, plane) pair.
inline void and_popcount_lanes(const std::uint64_t* x, const std::uint64_t* w, int words, int shift,
                               std::int64_t* p) {
  for (int word = 0; word < words; ++word) {
    const std::uint64_t wt = w[word];
    const std::uint64_t* xs = x + word * kPimLanes;
    for (Index l = 0; l < kPimLanes; ++l) p[l] += static_cast<std::int64_t>(std::popcount(xs[l] & wt)) << shift;
  }
}

template <Scheme kScheme, class Convert>
void gemm_impl(const Decomposition& d, const AdcBank& bank, const PackedActivations& x, const PackedWeights& w,
               Index out_channels, Index image_pixels, double* pim_dst, std::int64_t* exact_dst,
               const Convert& convert) {
  constexpr Index kL = kPimLanes;
  const Index pixels = x.pixels, groups = x.groups, blocks = x.blocks();
  const int words = x.words, a_bits = d.act_bits, w_bits = d.weight_bits;
  const int column_slices = d.column_slices(), w_planes = w.planes;
  const bool integer_readout = bank.adc().integer_readout();
  const double delta = bank.adc().delta(), p_lo = bank.adc().p_lo();
  // C = sum of the coefficients of one output: the same for every output.
  std::int64_t sum_coefficient = 0;
  if constexpr (kScheme == Scheme::BitSerial) {
    for (int s = 0; s < a_bits; ++s)
      for (int t = 0; t < w_bits; ++t)
        sum_coefficient += (std::int64_t{1} << s) * (t < w_bits - 1 ? (std::int64_t{1} << t) : -(std::int64_t{1} << t));
    sum_coefficient *= groups;
  } else if constexpr (kScheme == Scheme::Native) {
    sum_coefficient = groups;
  }
  const Index x_stride = x.block_stride(), w_stride = w.channel_stride();
#pragma omp parallel for schedule(dynamic, 1) if (pixels * out_channels * groups * a_bits * w_bits > (Index{1} << 15))
  for (Index block = 0; block < blocks; ++block) {
    alignas(64) std::int64_t acc[kL], exact[kL], p[kL], q[kL];
    const Index pixel0 = block * kL, valid = std::min(kL, pixels - pixel0);
    const std::uint64_t* xb = x.bits.data() + block * x_stride;
    for (Index o = 0; o < out_channels; ++o) {
      const std::uint64_t* w_channel = w.bits.data() + o * w_stride;
      std::fill(acc, acc + kL, 0);
      std::fill(exact, exact + kL, 0);
      for (Index g = 0; g < groups; ++g) {
        const std::uint64_t* xg = xb + g * a_bits * words * kL;
        const std::uint64_t* wg = w_channel + g * w_planes * words;
        const Index column0 = (g * out_channels + o) * column_slices;
        if constexpr (kScheme == Scheme::BitSerial) {
          for (int s = 0; s < a_bits; ++s) {
            for (int t = 0; t < w_bits; ++t) {
              std::fill(p, p + kL, 0);
              and_popcount_lanes(xg + s * words * kL, wg + t * words, words, 0, p);
              const std::int64_t c_t = t < w_bits - 1 ? (std::int64_t{1} << t) : -(std::int64_t{1} << t);
              const std::int64_t coefficient = (std::int64_t{1} << s) * c_t;
              convert.accumulate(column0 + t, s, pixel0, valid, p, coefficient, acc);
              for (Index l = 0; l < kL; ++l) exact[l] += coefficient * p[l];
            }
          }
        } else if constexpr (kScheme == Scheme::Differential) {
          for (int s = 0; s < a_bits; ++s) {
            std::fill(p, p + kL, 0);
            std::fill(q, q + kL, 0);
            for (int u = 0; u < w_bits; ++u) {
              and_popcount_lanes(xg + s * words * kL, wg + u * words, words, u, p);
              and_popcount_lanes(xg + s * words * kL, wg + (w_bits + u) * words, words, u, q);
            }
            const std::int64_t weight = std::int64_t{1} << s;
            convert.accumulate(column0, s, pixel0, valid, p, weight, acc);
            convert.accumulate(column0 + 1, s, pixel0, valid, q, -weight, acc);
            for (Index l = 0; l < kL; ++l) exact[l] += weight * (p[l] - q[l]);
          }
        } else {
          std::fill(p, p + kL, 0);
          for (int s = 0; s < a_bits; ++s) {
            for (int t = 0; t < w_bits; ++t) {
              std::fill(q, q + kL, 0);
              and_popcount_lanes(xg + s * words * kL, wg + t * words, words, 0, q);
              const std::int64_t c_t = t < w_bits - 1 ? (std::int64_t{1} << t) : -(std::int64_t{1} << t);
              const std::int64_t coefficient = (std::int64_t{1} << s) * c_t;
              for (Index l = 0; l < kL; ++l) p[l] += coefficient * q[l];
            }
          }
          convert.accumulate(column0, 0, pixel0, valid, p, 1, acc);
          for (Index l = 0; l < kL; ++l) exact[l] += p[l];
        }
      }
      for (Index l = 0; l < valid; ++l) {
        const Index pixel = pixel0 + l;
        const Index at = (pixel / image_pixels) * out_channels * image_pixels + o * image_pixels + pixel % image_pixels;
        if (pim_dst)
          pim_dst[at] = integer_readout
                            ? static_cast<double>(acc[l])
                            : std::fma(delta, static_cast<double>(acc[l]), p_lo * static_cast<double>(sum_coefficient));
        if (exact_dst) exact_dst[at] = exact[l];
      }
    }
  }
}

template <Scheme kScheme>
void dispatch_convert(const Decomposition& d, const AdcBank& bank, const PackedActivations& x, const PackedWeights& w,
                      Index reduction, Index out_channels, Index image_pixels, double* pim_dst, std::int64_t* exact_dst) {
  const Adc& adc = bank.adc();
  if (bank.ideal() && adc.lossless()) {
    gemm_impl<kScheme>(d, bank, x, w, out_channels, image_pixels, pim_dst, exact_dst, ConvertLossless{});
    return;
  }
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
    gemm_impl<kScheme>(d, bank, x, w, out_channels, image_pixels, pim_dst, exact_dst, ConvertTable{table.data(), p_lo, 0});
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
                       ConvertTable{table.data(), p_lo, points});
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
  out.bits.assign(static_cast<std::size_t>(out.blocks() * out.block_stride()), 0);
  const Index n = d.rows;
  for (Index i = 0; i < reduction; ++i) {
    const Index g = i / n, r = i % n;
    for (Index pixel = 0; pixel < pixels; ++pixel) {
      const std::int32_t v = src[i * pixels + pixel];
      if (v < 0 || v > d.max_activation())
        bad_activation(d, "X[" + std::to_string(i) + "][" + std::to_string(pixel) + "]", v);
      const Index block = pixel / kPimLanes, lane = pixel % kPimLanes;
      std::uint64_t* group = out.bits.data() + block * out.block_stride() + g * out.planes * out.words * kPimLanes;
      for (int s = 0; s < d.act_bits; ++s)
        if ((v >> s) & 1) group[(s * out.words + (r >> 6)) * kPimLanes + lane] |= std::uint64_t{1} << (r & 63);
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
  out.bits.assign(static_cast<std::size_t>(out.blocks() * out.block_stride()), 0);

  // 1. Validate and convert to bytes in a zero-padded copy (no bounds checks in the gather below).
  const Index pad = geometry.padding;
  const Index hp = geometry.height + 2 * pad, wp = geometry.width + 2 * pad, padded_plane = hp * wp;
  const Index planes = geometry.batch * geometry.channels;
  const Index plane_size = geometry.height * geometry.width;
  std::vector<std::uint8_t> padded(static_cast<std::size_t>(planes * padded_plane), 0);
  const auto max_value = static_cast<float>(d.max_activation());
  Index first_bad = -1;
#pragma omp parallel for schedule(static) if (planes * plane_size > (Index{1} << 16))
  for (Index plane = 0; plane < planes; ++plane) {
    const float* src = integers + plane * plane_size;
    std::uint8_t* dst = padded.data() + plane * padded_plane + pad * wp + pad;
    bool bad = false;
    for (Index h = 0; h < geometry.height; ++h)
      for (Index w = 0; w < geometry.width; ++w) {
        const float v = src[h * geometry.width + w];
        const bool ok = v >= 0.0f && v <= max_value && v == std::floor(v);
        bad |= !ok;
        dst[h * wp + w] = static_cast<std::uint8_t>(ok ? v : 0.0f);
      }
    if (bad) {
      for (Index i = 0; i < plane_size; ++i) {
        const float v = src[i];
        if (!(v >= 0.0f && v <= max_value && v == std::floor(v))) {
#pragma omp critical(pimqat_pack_error)
          if (first_bad < 0 || plane * plane_size + i < first_bad) first_bad = plane * plane_size + i;
          break;
        }
      }
    }
  }
  if (first_bad >= 0) bad_activation(d, "at flat NCHW index " + std::to_string(first_bad), integers[first_bad]);

  // 2. Gather kPimLanes pixels per (c, kh, kw) and spread the bits over the planes.
  const Index oh_count = geometry.out_height(), ow_count = geometry.out_width();
  const Index n_rows = d.rows, blocks = out.blocks();
#pragma omp parallel for schedule(static) if (pixels * reduction > (Index{1} << 16))
  for (Index block = 0; block < blocks; ++block) {
    Index base[kPimLanes];
    std::uint8_t live[kPimLanes];
    for (Index l = 0; l < kPimLanes; ++l) {
      const Index pixel = block * kPimLanes + l;
      live[l] = pixel < pixels ? 0xFF : 0x00;
      const Index q = pixel < pixels ? pixel : 0;
      const Index ow = q % ow_count, oh = (q / ow_count) % oh_count, n = q / (ow_count * oh_count);
      base[l] = n * geometry.channels * padded_plane + oh * geometry.stride * wp + ow * geometry.stride;
    }
    std::uint64_t* words = out.bits.data() + block * out.block_stride();
    std::uint8_t values[kPimLanes];
    for (Index c = 0; c < geometry.channels; ++c) {
      for (int kh = 0; kh < geometry.kernel_h; ++kh) {
        for (int kw = 0; kw < geometry.kernel_w; ++kw) {
          const Index i = (c * geometry.kernel_h + kh) * geometry.kernel_w + kw;
          const std::uint8_t* at = padded.data() + c * padded_plane + kh * wp + kw;
          for (Index l = 0; l < kPimLanes; ++l) values[l] = at[base[l]] & live[l];
          const Index g = i / n_rows, r = i % n_rows;
          std::uint64_t* group = words + (g * out.planes * out.words + (r >> 6)) * kPimLanes;
          const int bit = static_cast<int>(r & 63);
          for (int s = 0; s < d.act_bits; ++s) {
            std::uint64_t* plane = group + s * out.words * kPimLanes;
            for (Index l = 0; l < kPimLanes; ++l) plane[l] |= static_cast<std::uint64_t>((values[l] >> s) & 1) << bit;
          }
        }
      }
    }
  }
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
