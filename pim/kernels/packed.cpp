// Packing, the plan of a product and the dispatch to the instruction-set paths
// (pim/kernels/packed.h describes the layouts; pim/kernels/internal.h the plan).
#include "pim/kernels/packed.h"

#include <algorithm>
#include <atomic>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/internal.h"
#include "pim/kernels/reference.h"

namespace pimqat::pim {
namespace {

using detail::AdcPath;
using detail::GemmPlan;

int chunks_per_group(const Decomposition& d) { return (d.rows + kPimChunkRows - 1) / kPimChunkRows; }

int weight_planes(const Decomposition& d) {
  return d.scheme == Scheme::Differential ? 2 * d.weight_bits : d.weight_bits;
}

int weight_passes(const Decomposition& d) {
  return d.scheme == Scheme::Differential ? (d.weight_bits + 1) / 2 : (d.weight_bits + kPimSlots - 1) / kPimSlots;
}

detail::PackBlock pack_block_for(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Avx512: return detail::pack_block_avx512;
    case KernelIsa::Avx2: return detail::pack_block_avx2;
    case KernelIsa::Portable: break;
  }
  return detail::pack_block_portable;
}

detail::ConvertRow convert_row_for(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Avx512: return detail::convert_row_avx512;
    case KernelIsa::Avx2: return detail::convert_row_avx2;
    case KernelIsa::Portable: break;
  }
  return detail::convert_row_portable;
}

detail::ExtractBits extract_for(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Avx512: return detail::extract_bits_avx512;
    case KernelIsa::Avx2: return detail::extract_bits_avx2;
    case KernelIsa::Portable: break;
  }
  return detail::extract_bits_portable;
}

[[noreturn]] void bad_activation(const Decomposition& d, const std::string& where, double value) {
  throw Error("activation integer " + where + " = " + std::to_string(value) + " is not an integer in [0, " +
              std::to_string(d.max_activation()) + "] (" + std::to_string(d.act_bits) + "-bit activations)");
}

[[noreturn]] void bad_weight(const Decomposition& d, Index o, Index i, double value) {
  throw Error("weight integer W[" + std::to_string(o) + "][" + std::to_string(i) + "] = " + std::to_string(value) +
              " is not an integer in [" + std::to_string(d.min_weight()) + ", " + std::to_string(d.max_weight()) +
              "] (" + std::to_string(d.weight_bits) + "-bit weights)");
}

// Every word of `bits` is written by the packing that follows (no clearing needed).
void shape_activations(const Decomposition& d, Index reduction, Index pixels, PackedActivations& out) {
  d.validate();
  out.pixels = pixels;
  out.groups = d.groups(reduction);
  out.planes = d.act_bits;
  out.chunks = chunks_per_group(d);
  out.bits.resize(static_cast<std::size_t>(out.blocks() * out.block_stride()));
}

// Tile rows of one block: row (g C16 + chunk) 16 + r holds reduction row g N + chunk 16 + r, or
// nothing (zero) when that local row is past N or the row past K. `row_of[t]` = that reduction
// row or -1.
std::vector<Index> tile_rows(const Decomposition& d, Index reduction) {
  const Index groups = d.groups(reduction);
  const int chunks = chunks_per_group(d);
  std::vector<Index> row_of(static_cast<std::size_t>(groups * chunks * kPimChunkRows), -1);
  for (Index g = 0; g < groups; ++g)
    for (Index r = 0; r < chunks * kPimChunkRows; ++r) {
      const Index i = g * d.rows + r;
      if (r < d.rows && i < reduction) row_of[static_cast<std::size_t>(g * chunks * kPimChunkRows + r)] = i;
    }
  return row_of;
}

// Four weight-plane bits -> the 4 uint16 slots of a weight word, bit 0 of each.
constexpr std::array<std::uint64_t, 16> make_spread() {
  std::array<std::uint64_t, 16> spread{};
  for (unsigned n = 0; n < 16; ++n)
    for (unsigned k = 0; k < 4; ++k)
      if ((n >> k) & 1u) spread[n] |= std::uint64_t{1} << (16 * k);
  return spread;
}
constexpr std::array<std::uint64_t, 16> kSpread = make_spread();

template <class T>
void pack_weights_impl(const Decomposition& d, const T* weights, Index reduction, Index out_channels,
                       PackedWeights& out) {
  d.validate();
  out.out_channels = out_channels;
  out.groups = d.groups(reduction);
  out.planes = weight_planes(d);
  out.passes = weight_passes(d);
  out.chunks = chunks_per_group(d);
  out.bits.assign(static_cast<std::size_t>(out_channels * out.channel_stride()), 0);
  // Validate everything first (the loop below then trusts the values).
  const auto count = static_cast<std::size_t>(out_channels * reduction);
  const auto w_min = static_cast<T>(d.min_weight()), w_max = static_cast<T>(d.max_weight());
  bool bad = false;
  for (std::size_t k = 0; k < count; ++k) {
    const T raw = weights[k];
    bad |= !(raw >= w_min && raw <= w_max) || static_cast<T>(static_cast<std::int32_t>(raw)) != raw;
  }
  if (bad)
    for (std::size_t k = 0; k < count; ++k) {
      const T raw = weights[k];
      if (!(raw >= w_min && raw <= w_max) || static_cast<T>(static_cast<std::int32_t>(raw)) != raw)
        bad_weight(d, static_cast<Index>(k) / reduction, static_cast<Index>(k) % reduction, static_cast<double>(raw));
    }
  // One uint64 (4 slots) per (o, g, pass, chunk): kSpread of the pass's 4 plane bits, shifted to
  // the row's bit. Bit-serial / native pass p: bits 4p..4p+3 of the two's complement; differential
  // pass p: magnitude bits 2p, 2p+1 of W+ (slots 0, 1) and of W- (slots 2, 3).
  const bool differential = d.scheme == Scheme::Differential;
  const Index n = d.rows;
  const int chunks = out.chunks, passes = out.passes;
  for (Index o = 0; o < out_channels; ++o) {
    const T* row = weights + o * reduction;
    std::uint16_t* channel = out.bits.data() + o * out.channel_stride();
    for (Index g = 0, i0 = 0; i0 < reduction; ++g, i0 += n) {
      const Index rows = std::min(n, reduction - i0);
      std::uint16_t* group = channel + g * passes * chunks * kPimSlots;
      for (int pass = 0; pass < passes; ++pass) {
        for (Index r0 = 0; r0 < rows; r0 += kPimChunkRows) {
          std::uint64_t word = 0;
          const Index end = std::min<Index>(rows, r0 + kPimChunkRows);
          for (Index r = r0; r < end; ++r) {
            const auto value = static_cast<std::int32_t>(row[i0 + r]);
            unsigned nibble;
            if (differential) {
              const auto plus = static_cast<unsigned>(std::max(value, 0)), minus = static_cast<unsigned>(std::max(-value, 0));
              nibble = ((plus >> (2 * pass)) & 3u) | (((minus >> (2 * pass)) & 3u) << 2);
            } else {
              nibble = (static_cast<std::uint32_t>(value) >> (4 * pass)) & 0xFu;
            }
            word |= kSpread[nibble] << (r - r0);
          }
          std::memcpy(group + (pass * chunks + r0 / kPimChunkRows) * kPimSlots, &word, sizeof word);
        }
      }
    }
  }
  // Planes past b_w must stay 0 (bit-serial / native twos-complement bits above b_w - 1 are copies
  // of the sign for negative values): clear them.
  if (!differential && d.weight_bits % kPimSlots != 0) {
    const int last = passes - 1, live = d.weight_bits - last * kPimSlots;
    for (Index o = 0; o < out_channels; ++o)
      for (Index g = 0; g < out.groups; ++g)
        for (int c = 0; c < chunks; ++c) {
          std::uint16_t* slots = out.bits.data() + o * out.channel_stride() + ((g * passes + last) * chunks + c) * kPimSlots;
          for (int k = live; k < kPimSlots; ++k) slots[k] = 0;
        }
  }
}

// The largest |v| a plan's ADC path can produce.
std::int64_t max_abs(const std::int32_t* values, std::size_t n) {
  std::int64_t m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max<std::int64_t>(m, std::abs(static_cast<std::int64_t>(values[i])));
  return m;
}

std::atomic<std::int64_t> g_max_table_entries{kDefaultMaxAdcTableEntries};

struct PlanStorage {
  std::vector<std::int32_t> table, code_value;
  std::vector<double> gains, offsets, slopes;
  std::shared_ptr<const AdcTables> tables;
};

// The linear model's per-column gain and offset (none for ideal columns: 1 and 0).
void set_column_parameters(const AdcBank& bank, PlanStorage& storage, GemmPlan& plan) {
  if (bank.ideal_columns()) return;
  const auto columns = static_cast<std::size_t>(bank.column_count());
  storage.gains.assign(columns, 1.0);
  storage.offsets.assign(columns, 0.0);
  for (std::size_t c = 0; c < columns; ++c) {
    storage.gains[c] = bank.column(static_cast<std::int64_t>(c)).gain;
    storage.offsets[c] = bank.column(static_cast<std::int64_t>(c)).offset;
  }
  plan.gains = storage.gains.data();
  plan.offsets = storage.offsets.data();
}

// A noisy plan's fast-decision parameters (GemmPlan::fast_levels, decision_margin): every level,
// approximate level and fma(sigma, bound, level) has magnitude below M = max |level| + 8 sigma + 2
// (|bound| < 7.2 for the finite bounds), and the margin is the power of two >= M 2^-44, 256 ulp
// of M: the decision's and the reference's rounding errors (a few ulp) stay far inside it.
void set_noise_decision(const AdcBank& bank, PlanStorage& storage, GemmPlan& plan) {
  const double range = static_cast<double>(plan.p_hi - plan.p_lo);
  double max_level = 0.0;
  if (bank.curve() == CurveModel::Linear) {
    plan.fast_levels = true;
    plan.slope = 1.0 / plan.delta;
    max_level = range / plan.delta;
    if (!bank.ideal_columns()) {
      set_column_parameters(bank, storage, plan);
      storage.slopes.resize(storage.gains.size());
      for (std::size_t c = 0; c < storage.gains.size(); ++c) {
        storage.slopes[c] = storage.gains[c] / plan.delta;
        max_level = std::max(max_level, std::abs(storage.gains[c]) * range / plan.delta + std::abs(storage.offsets[c]));
      }
      plan.slopes = storage.slopes.data();
    }
  }
  if (plan.levels) {
    const AdcTables& t = *storage.tables;
    for (const double l : t.levels) max_level = std::max(max_level, std::abs(l));
  }
  const double bound = max_level + 8.0 * plan.sigma + 2.0;
  plan.decision_margin = std::ldexp(1.0, std::ilogb(bound) + 1 - 44);
}

// GemmPlan::linear_codes: the code of the ideal ADC as one float fma, floor and clamp, checked
// against the table at every point (exhaustive: the table is at most the partial-sum range). fmaf
// rounds once, as the vector fma does, so the check covers the SIMD formula exactly. The points
// where it disagrees are levels exactly halfway between two codes, which the reference rounds
// either way depending on the double rounding of (p - p_lo) / Delta: up to kMaxCodeExceptions of
// them are kept with their table codes; more, and the table is gathered.
void set_linear_codes(const std::vector<std::int32_t>& table, GemmPlan& plan) {
  const float scale = static_cast<float>(1.0 / plan.delta);
  const float offset = static_cast<float>(0.5 - plan.adc_p_lo / plan.delta);
  if (!std::isfinite(scale) || !std::isfinite(offset) || plan.p_lo < -(std::int64_t{1} << 24) ||
      plan.p_hi > (std::int64_t{1} << 24))
    return;
  int exceptions = 0;
  for (std::int64_t k = 0; k < plan.points; ++k) {
    const float e = std::floor(std::fma(scale, static_cast<float>(plan.p_lo + k), offset));
    const float code = std::min(std::max(e, 0.0f), static_cast<float>(plan.max_code));
    const std::int32_t v = table[static_cast<std::size_t>(k)];
    if (static_cast<std::int32_t>(code) == v) continue;
    if (exceptions == GemmPlan::kMaxCodeExceptions) return;
    plan.exception_p[exceptions] = static_cast<std::int32_t>(plan.p_lo + k);
    plan.exception_code[exceptions] = v;
    ++exceptions;
  }
  plan.linear_codes = true;
  plan.code_scale = scale;
  plan.code_offset = offset;
  plan.code_exceptions = exceptions;
}

GemmPlan make_plan(const Decomposition& d, const AdcBank& bank, const PackedActivations& x, const PackedWeights& w,
                   Index reduction, Index out_channels, Index image_pixels, PlanStorage& storage) {
  GemmPlan plan;
  plan.scheme = d.scheme;
  plan.act_bits = d.act_bits;
  plan.weight_bits = d.weight_bits;
  plan.rows = d.rows;
  plan.slices = d.input_slices();
  plan.column_slices = d.column_slices();
  plan.reduction = reduction;
  plan.groups = x.groups;
  plan.out_channels = out_channels;
  plan.pixels = x.pixels;
  plan.blocks = x.blocks();
  plan.image_pixels = image_pixels;
  plan.chunks = x.chunks;
  plan.passes = w.passes;
  plan.x = x.bits.data();
  plan.w = w.bits.data();
  plan.x_block_stride = x.block_stride();
  plan.w_channel_stride = w.channel_stride();
  plan.bank = &bank;
  plan.sum_coefficient = sum_coefficient(d, reduction);

  const Adc& adc = bank.adc();
  plan.p_lo = static_cast<std::int64_t>(d.p_lo());
  plan.p_hi = static_cast<std::int64_t>(d.p_hi());
  plan.points = plan.p_hi - plan.p_lo + 1;
  plan.adc_p_lo = adc.p_lo();
  plan.delta = adc.delta();
  plan.max_code = adc.max_code();
  storage.code_value.assign(static_cast<std::size_t>(adc.max_code()) + 1, 0);
  for (int c = 0; c <= adc.max_code(); ++c)
    storage.code_value[static_cast<std::size_t>(c)] = adc.integer_readout() ? static_cast<std::int32_t>(adc.value_integer(c)) : c;
  const std::int64_t max_code_value = adc.integer_readout() ? max_abs(storage.code_value.data(), storage.code_value.size())
                                                            : adc.max_code();

  if (bank.ideal() && adc.lossless()) {
    plan.path = AdcPath::Lossless;
    plan.max_value = std::max(std::abs(plan.p_lo), std::abs(plan.p_hi));
  } else if (!bank.noisy() && bank.ideal_columns() && plan.points <= g_max_table_entries.load()) {
    plan.path = AdcPath::SharedTable;
    storage.table.assign(static_cast<std::size_t>(plan.points), 0);
    for (std::int64_t k = 0; k < plan.points; ++k)
      storage.table[static_cast<std::size_t>(k)] =
          storage.code_value[static_cast<std::size_t>(adc.code(bank.level(0, plan.p_lo + k)))];
    plan.table = storage.table.data();
    plan.max_value = max_abs(storage.table.data(), storage.table.size());
    if (!adc.integer_readout()) set_linear_codes(storage.table, plan);
  } else {
    storage.tables = bank.tables(g_max_table_entries.load());
    if (!bank.noisy()) {
      if (storage.tables) {
        plan.path = AdcPath::ColumnTable;
        const AdcTables& t = *storage.tables;
        storage.table.assign(t.codes.size(), 0);
        for (std::size_t k = 0; k < t.codes.size(); ++k)
          storage.table[k] = storage.code_value[static_cast<std::size_t>(t.codes[k])];
        plan.table = storage.table.data();
        plan.max_value = max_abs(storage.table.data(), storage.table.size());
      } else if (bank.curve() == CurveModel::Linear) {
        // A die whose tables would be too big (native's wide partial-sum range on many columns):
        // the noise path's level formula with sigma = 0, fma(0, 0, level) = level, the same codes
        // as AdcBank::convert without noise.
        plan.path = AdcPath::Noisy;
        plan.sigma = 0.0;
        plan.code_value = adc.integer_readout() ? storage.code_value.data() : nullptr;
        plan.max_value = max_code_value;
        set_column_parameters(bank, storage, plan);
      } else {
        plan.path = AdcPath::Direct;
        plan.max_value = max_code_value;
      }
    } else {
      plan.sigma = bank.noise_sigma();
      plan.code_value = adc.integer_readout() ? storage.code_value.data() : nullptr;
      plan.max_value = max_code_value;
      if (bank.noise_words()) {
        plan.noise = *bank.noise_words();
        plan.noise_words = true;
      }
      if (storage.tables) {
        plan.path = AdcPath::Noisy;
        plan.levels = storage.tables->levels.data();
        plan.level_stride = storage.tables->columns == 1 ? 0 : storage.tables->points;
      } else if (bank.curve() == CurveModel::Linear) {
        plan.path = AdcPath::Noisy;
        set_column_parameters(bank, storage, plan);
      } else {
        plan.path = AdcPath::Direct;
      }
      if (plan.path == AdcPath::Noisy) set_noise_decision(bank, storage, plan);
    }
  }

  // Bounds of |A| and |y| over all operands in range.
  const std::int64_t groups = x.groups;
  const std::int64_t p_max = std::max(std::abs(plan.p_lo), std::abs(plan.p_hi));
  const std::int64_t a_mask = (std::int64_t{1} << d.act_bits) - 1, w_mask = (std::int64_t{1} << d.weight_bits) - 1;
  const std::int64_t value = std::max(plan.max_value, p_max);
  const std::int64_t per_group = d.scheme == Scheme::BitSerial      ? a_mask * w_mask * value
                                 : d.scheme == Scheme::Differential ? 2 * a_mask * value
                                                                    : value;
  plan.max_output = groups * per_group;
  return plan;
}

}  // namespace

std::int64_t set_max_adc_table_entries(std::int64_t entries) { return g_max_table_entries.exchange(entries); }

void PimMoments::merge(const PimMoments& other) {
  count += other.count;
  pim_sum += other.pim_sum;
  pim_square += other.pim_square;
  exact_sum += other.exact_sum;
  exact_square += other.exact_square;
}

double PimMoments::pim_scaled_variance() const {
  return static_cast<double>(static_cast<PimInt128>(count) * pim_square - pim_sum * pim_sum);
}

double PimMoments::exact_scaled_variance() const {
  return static_cast<double>(static_cast<PimInt128>(count) * exact_square - exact_sum * exact_sum);
}

std::int64_t sum_coefficient(const Decomposition& d, Index reduction) {
  const std::int64_t groups = d.groups(reduction);
  switch (d.scheme) {
    case Scheme::BitSerial: {
      std::int64_t c = 0;
      for (int s = 0; s < d.act_bits; ++s)
        for (int t = 0; t < d.weight_bits; ++t)
          c += (std::int64_t{1} << s) * (t < d.weight_bits - 1 ? (std::int64_t{1} << t) : -(std::int64_t{1} << t));
      return c * groups;
    }
    case Scheme::Differential: return 0;
    case Scheme::Native: return groups;
  }
  return 0;
}

void pack_activations(const Decomposition& d, const std::int32_t* src, Index reduction, Index pixels,
                      PackedActivations& out) {
  shape_activations(d, reduction, pixels, out);
  for (Index i = 0; i < reduction * pixels; ++i)
    if (src[i] < 0 || src[i] > d.max_activation())
      bad_activation(d, "X[" + std::to_string(i / pixels) + "][" + std::to_string(i % pixels) + "]", src[i]);
  const std::vector<Index> row_of = tile_rows(d, reduction);
  const detail::ExtractBits extract = extract_for(active_kernel_isa());
  const Index blocks = out.blocks(), tile_size = static_cast<Index>(row_of.size()) * kPimBlockPixels;
#pragma omp parallel if (reduction * pixels > (Index{1} << 16))
  {
    std::vector<std::uint8_t> tile(static_cast<std::size_t>(tile_size));
#pragma omp for schedule(static)
    for (Index block = 0; block < blocks; ++block) {
      const Index pixel0 = block * kPimBlockPixels, valid = std::min(kPimBlockPixels, pixels - pixel0);
      for (std::size_t t = 0; t < row_of.size(); ++t) {
        std::uint8_t* row = tile.data() + t * kPimBlockPixels;
        const Index i = row_of[t];
        for (Index l = 0; l < kPimBlockPixels; ++l)
          row[l] = (i >= 0 && l < valid) ? static_cast<std::uint8_t>(src[i * pixels + pixel0 + l]) : 0;
      }
      extract(tile.data(), out.groups, out.chunks, out.planes, out.bits.data() + block * out.block_stride());
    }
  }
}

namespace {

// pack_activations and pack_activations_quantized: `values` become bytes as `format` says.
void pack_from_floats(const Decomposition& d, const Im2colGeometry& geometry, const float* values,
                      const detail::RowFormat& format, PackedActivations& out, Index channel_block) {
  geometry.validate();
  if (channel_block < 0 || (channel_block > 0 && geometry.channels % channel_block != 0))
    throw Error("pack_activations: a blocked layout of " + std::to_string(channel_block) + " channels needs C = " +
                std::to_string(geometry.channels) + " to be a multiple of it");
  const Index reduction = geometry.reduction(), pixels = geometry.pixels();
  shape_activations(d, reduction, pixels, out);

  // 1. Validate and convert to bytes in zero-padded, stride-phase-split planes: with stride s,
  // phase (a, b) of channel c holds padded[s y + a][s x + b] at (y, x), so that every (kh, kw)
  // reads consecutive output pixels from consecutive bytes.
  const Index pad = geometry.padding, stride = geometry.stride;
  const Index hp = geometry.height + 2 * pad, wp = geometry.width + 2 * pad;
  const Index hq = (hp + stride - 1) / stride, wq = (wp + stride - 1) / stride;
  const Index phase_size = hq * wq, channel_size = stride * stride * phase_size;
  const Index planes = geometry.batch * geometry.channels;
  const Index plane_size = geometry.height * geometry.width;
  // Where plane (n, c) starts in `values` and the distance between its elements: NCHW, or
  // nChw{B}c (element (n, c, h, w) at (((n C/B + c/B) H + h) W + w) B + c % B).
  const Index step = channel_block > 0 ? channel_block : 1;
  auto plane_start = [&](Index plane) -> const float* {
    if (channel_block == 0) return values + plane * plane_size;
    const Index c = plane % geometry.channels, n = plane / geometry.channels;
    return values + ((n * (geometry.channels / channel_block) + c / channel_block) * plane_size) * channel_block +
           c % channel_block;
  };
  // 8 bytes of margin on both sides: the block gathers load whole 8-byte rows (pack_block_*). Each
  // plane is zeroed by its own thread just before it is written (in cache; a serial memset of
  // the whole image cost more than the conversion on two threads).
  out.scratch.resize(static_cast<std::size_t>(planes * channel_size + 2 * kPimBlockPixels));
  std::memset(out.scratch.data(), 0, kPimBlockPixels);
  std::memset(out.scratch.data() + out.scratch.size() - kPimBlockPixels, 0, kPimBlockPixels);
  std::uint8_t* const padded = out.scratch.data() + kPimBlockPixels;
  const detail::ConvertRow convert_row = convert_row_for(active_kernel_isa());
  Index first_bad = -1;
#pragma omp parallel for schedule(static) if (planes * plane_size > (Index{1} << 16))
  for (Index plane = 0; plane < planes; ++plane) {
    thread_local std::vector<std::uint8_t> bytes;
    bytes.resize(static_cast<std::size_t>(geometry.width));
    const float* src = plane_start(plane);
    std::uint8_t* dst = padded + plane * channel_size;
    std::memset(dst, 0, static_cast<std::size_t>(channel_size));
    bool bad = false;
    for (Index h = 0; h < geometry.height; ++h) {
      const Index y = h + pad;
      std::uint8_t* line = dst + ((y % stride) * stride) * phase_size + (y / stride) * wq;
      const float* row = src + h * geometry.width * step;
      if (stride == 1) {
        bad |= !convert_row(row, geometry.width, step, format, line + pad);
        continue;
      }
      // Strided: the row's bytes first (vectorized), then each to its phase.
      bad |= !convert_row(row, geometry.width, step, format, bytes.data());
      Index phase = pad % stride, xq = pad / stride;
      for (Index w = 0; w < geometry.width; ++w) {
        line[phase * phase_size + xq] = bytes[static_cast<std::size_t>(w)];
        if (++phase == stride) {
          phase = 0;
          ++xq;
        }
      }
    }
    if (bad) {
      for (Index i = 0; i < plane_size; ++i) {
        bool ok = true;
        format.byte(src[i * step], ok);
        if (!ok) {
#pragma omp critical(pimqat_pack_error)
          if (first_bad < 0 || plane * plane_size + i < first_bad) first_bad = plane * plane_size + i;
          break;
        }
      }
    }
  }
  if (first_bad >= 0) {
    const float value = plane_start(first_bad / plane_size)[(first_bad % plane_size) * step];
    if (format.quantize)
      throw Error("activation at flat NCHW index " + std::to_string(first_bad) + " is NaN (training diverged?)");
    bad_activation(d, "at flat NCHW index " + std::to_string(first_bad), value);
  }

  // 2. Per block of 8 output pixels: a byte tile of its im2col rows (8 consecutive bytes when the
  // block's pixels are consecutive in one output row), then the bit-planes.
  const std::vector<Index> row_of = tile_rows(d, reduction);
  std::vector<Index> offset(row_of.size(), -1);  // byte offset of tile row t relative to a pixel's base
  for (std::size_t t = 0; t < row_of.size(); ++t) {
    const Index i = row_of[t];
    if (i < 0) continue;
    const Index kw = i % geometry.kernel_w, kh = (i / geometry.kernel_w) % geometry.kernel_h;
    const Index c = i / (static_cast<Index>(geometry.kernel_w) * geometry.kernel_h);
    offset[t] = c * channel_size + ((kh % stride) * stride + kw % stride) * phase_size + (kh / stride) * wq + kw / stride;
  }
  const Index oh_count = geometry.out_height(), ow_count = geometry.out_width();
  const detail::PackBlock pack_block = pack_block_for(active_kernel_isa());
  const detail::BlockSource block_source{padded, offset.data(), out.groups, out.chunks, out.planes};
  const Index blocks = out.blocks();
#pragma omp parallel for schedule(static) if (pixels * reduction > (Index{1} << 16))
  for (Index block = 0; block < blocks; ++block) {
    Index base[kPimBlockPixels];
    const Index pixel0 = block * kPimBlockPixels, valid = std::min(kPimBlockPixels, pixels - pixel0);
    Index ow = pixel0 % ow_count, oh = (pixel0 / ow_count) % oh_count, n = pixel0 / (ow_count * oh_count);
    for (Index l = 0; l < valid; ++l) {
      base[l] = n * geometry.channels * channel_size + oh * wq + ow;
      if (++ow == ow_count) {
        ow = 0;
        if (++oh == oh_count) {
          oh = 0;
          ++n;
        }
      }
    }
    pack_block(block_source, base, valid, out.bits.data() + block * out.block_stride());
  }
}

}  // namespace

void pack_activations(const Decomposition& d, const Im2colGeometry& geometry, const float* integers,
                      PackedActivations& out, Index channel_block) {
  detail::RowFormat format;
  format.max_value = static_cast<float>(d.max_activation());
  pack_from_floats(d, geometry, integers, format, out, channel_block);
}

void pack_activations_quantized(const Decomposition& d, const Im2colGeometry& geometry, const float* src, float alpha,
                                PackedActivations& out, Index channel_block) {
  if (!(alpha > 0.0f) || !std::isfinite(alpha))
    throw Error("pack_activations_quantized: the clip alpha must be positive and finite, got " + std::to_string(alpha));
  detail::RowFormat format;
  format.max_value = static_cast<float>(d.max_activation());
  format.quantize = true;
  format.alpha = alpha;
  format.to_integer = nn::activation_to_integer(d.act_bits, alpha);
  pack_from_floats(d, geometry, src, format, out, channel_block);
}

void pack_weights(const Decomposition& d, const std::int32_t* weights, Index reduction, Index out_channels,
                  PackedWeights& out) {
  pack_weights_impl(d, weights, reduction, out_channels, out);
}

void pack_weights(const Decomposition& d, const float* weights, Index reduction, Index out_channels,
                  PackedWeights& out) {
  pack_weights_impl(d, weights, reduction, out_channels, out);
}

void packed_pim_gemm_integer(const Decomposition& d, const AdcBank& bank, const PackedActivations& x,
                             const PackedWeights& w, Index reduction, Index out_channels, Index image_pixels,
                             std::int64_t* pim_sum, std::int64_t* exact_dst, PimMoments* moments) {
  d.validate();
  check_bank(d, bank, reduction, out_channels);
  const Index groups = d.groups(reduction);
  if (x.groups != groups || x.planes != d.act_bits || x.chunks != chunks_per_group(d) || w.groups != groups ||
      w.out_channels != out_channels || w.chunks != x.chunks || w.planes != weight_planes(d) ||
      w.passes != weight_passes(d))
    throw Error("packed PIM operands do not fit " + d.str() + " with K = " + std::to_string(reduction) +
                ", C_out = " + std::to_string(out_channels));
  if (image_pixels < 1 || x.pixels % image_pixels != 0)
    throw Error("packed PIM product: " + std::to_string(x.pixels) + " pixels are not a whole number of images of " +
                std::to_string(image_pixels));
  if (moments) *moments = PimMoments{};
  if (x.pixels == 0) return;
  PlanStorage storage;
  GemmPlan plan = make_plan(d, bank, x, w, reduction, out_channels, image_pixels, storage);
  plan.pim_sum = pim_sum;
  plan.exact = exact_dst;
  plan.moments = moments;
  switch (active_kernel_isa()) {
    case KernelIsa::Avx512:
      if (detail::gemm_avx512(plan)) return;
      break;
    case KernelIsa::Avx2:
      if (detail::gemm_avx2(plan)) return;
      break;
    case KernelIsa::Portable: break;
  }
  detail::gemm_portable(plan);
}

void packed_pim_gemm(const Decomposition& d, const AdcBank& bank, const PackedActivations& x,
                     const PackedWeights& w, Index reduction, Index out_channels, Index image_pixels, double* pim_dst,
                     std::int64_t* exact_dst) {
  std::vector<std::int64_t> sums(pim_dst ? static_cast<std::size_t>(x.pixels * out_channels) : 0);
  packed_pim_gemm_integer(d, bank, x, w, reduction, out_channels, image_pixels, pim_dst ? sums.data() : nullptr,
                          exact_dst, nullptr);
  if (!pim_dst) return;
  const std::int64_t c = sum_coefficient(d, reduction);
  const Adc& adc = bank.adc();
  for (std::size_t i = 0; i < sums.size(); ++i) pim_dst[i] = pim_value(adc, c, sums[i]);
}

}  // namespace pimqat::pim
