// Activation packing (pim/kernels/packed.h) on every instruction-set path: straight from NCHW
// floats (implicit im2col, padded and stride-phase-split bytes, 8-pixel blocks gathered by runs)
// equals packing the explicit im2col matrix (pim/im2col.h), which equals the layout computed here
// bit by bit; strides 1-3, 1x1 / 3x3 / 5x5 kernels, paddings 0-2, blocks that cross output rows
// and images, partial final blocks, N that cuts channels and chunks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "pim/im2col.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/packed.h"
#include "nn/quantize.h"

namespace pimqat::pim {
namespace {

struct ForcedIsa {
  explicit ForcedIsa(KernelIsa isa) { force_kernel_isa(isa); }
  ~ForcedIsa() { force_kernel_isa(std::nullopt); }
};

// The layout of packed.h from its definition.
std::vector<std::uint16_t> expected_bits(const Decomposition& d, const std::vector<std::int32_t>& cols, Index k,
                                         Index p) {
  const Index groups = d.groups(k), chunks = (d.rows + 15) / 16, blocks = (p + 7) / 8;
  std::vector<std::uint16_t> bits(static_cast<std::size_t>(blocks * groups * d.act_bits * chunks * 8), 0);
  for (Index i = 0; i < k; ++i)
    for (Index pixel = 0; pixel < p; ++pixel)
      for (int s = 0; s < d.act_bits; ++s)
        if ((cols[static_cast<std::size_t>(i * p + pixel)] >> s) & 1) {
          const Index g = i / d.rows, r = i % d.rows;
          const Index at = (((pixel / 8) * groups + g) * d.act_bits + s) * chunks * 8 + (r / 16) * 8 + pixel % 8;
          bits[static_cast<std::size_t>(at)] |= static_cast<std::uint16_t>(1u << (r % 16));
        }
  return bits;
}

TEST(KernelsPack, NchwEqualsIm2colEqualsDefinitionOnEveryPath) {
  const Im2colGeometry geometries[] = {
      {2, 5, 6, 7, 3, 3, 1, 1}, {3, 4, 7, 7, 3, 3, 2, 1}, {1, 16, 9, 9, 3, 3, 1, 1}, {2, 3, 8, 8, 1, 1, 2, 0},
      {1, 2, 11, 10, 5, 5, 3, 2}, {4, 1, 5, 3, 3, 3, 1, 2}, {1, 33, 4, 4, 1, 1, 1, 0}};
  for (const Im2colGeometry& g : geometries) {
    for (int rows : {9, 13, 20, 144}) {
      const Decomposition d{Scheme::BitSerial, rows, 3 + rows % 4, 4};
      RandomStream r(RngKey{static_cast<std::uint64_t>(rows), 0, Purpose::Operands, 2});
      std::vector<float> x(static_cast<std::size_t>(g.batch * g.channels * g.height * g.width));
      std::vector<std::int32_t> xi(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) {
        xi[i] = static_cast<std::int32_t>(r.below(static_cast<std::uint32_t>(d.max_activation() + 1)));
        x[i] = static_cast<float>(xi[i]);
      }
      std::vector<std::int32_t> cols(static_cast<std::size_t>(g.reduction() * g.pixels()));
      im2col(g, xi.data(), cols.data());
      const std::vector<std::uint16_t> expected = expected_bits(d, cols, g.reduction(), g.pixels());
      for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
        if (!kernel_isa_supported(isa)) continue;
        const ForcedIsa forced(isa);
        PackedActivations a, b;
        pack_activations(d, cols.data(), g.reduction(), g.pixels(), a);
        pack_activations(d, g, x.data(), b);
        ASSERT_EQ(a.bits, expected) << kernel_isa_name(isa) << " im2col packing, " << g.str() << ", N = " << rows;
        ASSERT_EQ(b.bits, expected) << kernel_isa_name(isa) << " NCHW packing, " << g.str() << ", N = " << rows;
        // Packing again into the same object (reused buffers) gives the same bits.
        pack_activations(d, g, x.data(), b);
        ASSERT_EQ(b.bits, expected) << kernel_isa_name(isa) << " repacking";
      }
    }
  }
}

// nChw{B}c of an NCHW tensor (nn/conv.h's blocked layout), written out here from its definition.
std::vector<float> blocked_copy(const std::vector<float>& nchw, const Im2colGeometry& g, Index block) {
  std::vector<float> out(nchw.size());
  const Index plane = g.height * g.width;
  for (Index n = 0; n < g.batch; ++n)
    for (Index c = 0; c < g.channels; ++c)
      for (Index i = 0; i < plane; ++i)
        out[static_cast<std::size_t>(((n * (g.channels / block) + c / block) * plane + i) * block + c % block)] =
            nchw[static_cast<std::size_t>((n * g.channels + c) * plane + i)];
  return out;
}

TEST(KernelsPack, BlockedLayoutPacksLikeNchwOnEveryPath) {
  // Widths below, at and above a 16-element gather, strides 1 and 2, 1x1 and 3x3, partial blocks.
  const Im2colGeometry geometries[] = {{2, 16, 7, 7, 3, 3, 1, 1},  {3, 32, 5, 9, 3, 3, 2, 1},
                                       {1, 16, 17, 18, 1, 1, 2, 0}, {2, 48, 4, 3, 3, 3, 1, 0},
                                       {1, 8, 6, 33, 3, 3, 1, 1},   {2, 16, 16, 16, 1, 1, 1, 0}};
  for (const Im2colGeometry& g : geometries) {
    for (Index block : {Index{8}, Index{16}}) {
      if (g.channels % block != 0) continue;
      const Decomposition d{Scheme::BitSerial, 144, 4, 4};
      RandomStream r(RngKey{static_cast<std::uint64_t>(g.channels * 100 + g.width), 0, Purpose::Operands, 3});
      std::vector<float> x(static_cast<std::size_t>(g.batch * g.channels * g.height * g.width));
      for (float& v : x) v = static_cast<float>(r.below(16));
      const std::vector<float> xb = blocked_copy(x, g, block);
      for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
        if (!kernel_isa_supported(isa)) continue;
        const ForcedIsa forced(isa);
        PackedActivations a, b;
        pack_activations(d, g, x.data(), a);
        pack_activations(d, g, xb.data(), b, block);
        ASSERT_EQ(a.bits, b.bits) << kernel_isa_name(isa) << ", " << g.str() << ", block " << block;
      }
      // A bad value is named by its NCHW index whatever the layout.
      std::vector<float> bad = x;
      const std::size_t at = bad.size() / 2 + 3;
      bad[at] = 16.0f;
      const std::vector<float> bad_blocked = blocked_copy(bad, g, block);
      for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
        if (!kernel_isa_supported(isa)) continue;
        const ForcedIsa forced(isa);
        PackedActivations out;
        try {
          pack_activations(d, g, bad_blocked.data(), out, block);
          ADD_FAILURE() << kernel_isa_name(isa) << " accepted 16 in a 4-bit activation";
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("index " + std::to_string(at) + " "), std::string::npos) << e.what();
          EXPECT_NE(std::string(e.what()).find("16"), std::string::npos) << e.what();
        }
      }
    }
  }
  // Channels that are not a multiple of the block are refused.
  const Im2colGeometry odd{1, 12, 4, 4, 3, 3, 1, 1};
  std::vector<float> x(12 * 16, 1.0f);
  PackedActivations out;
  EXPECT_THROW(pack_activations(Decomposition{Scheme::BitSerial, 144, 4, 4}, odd, x.data(), out, 16), Error);
}

// Packing the float input with the quantizer applied on the fly equals packing the X that
// nn::quantize_activation writes, bit for bit, on every path and in both layouts: values below 0,
// above alpha, on rounding ties (x to_integer = n + 1/2 rounds to even), -0, infinities.
TEST(KernelsPack, QuantizingPackEqualsPackingTheQuantizersIntegers) {
  const Im2colGeometry geometries[] = {{2, 16, 7, 9, 3, 3, 1, 1}, {3, 16, 9, 18, 3, 3, 2, 1}, {1, 32, 5, 5, 1, 1, 2, 0}};
  for (const Im2colGeometry& g : geometries) {
    for (int bits : {2, 4, 7}) {
      const Decomposition d{Scheme::BitSerial, 144, bits, 4};
      const float alpha = 2.5f;
      const float to_integer = nn::activation_to_integer(bits, alpha);
      RandomStream r(RngKey{static_cast<std::uint64_t>(bits), 1, Purpose::Operands, 4});
      Tensor x(Shape{g.batch, g.channels, g.height, g.width});
      for (Index i = 0; i < x.size(); ++i) {
        switch (i % 7) {
          case 0: x[i] = (static_cast<float>(r.below(8)) + 0.5f) / to_integer; break;  // ties
          case 1: x[i] = -3.0f * r.uniform(); break;
          case 2: x[i] = alpha + r.uniform(); break;
          case 3: x[i] = i % 3 == 0 ? -0.0f : (i % 3 == 1 ? INFINITY : -INFINITY); break;
          default: x[i] = 3.0f * r.uniform() - 0.3f;
        }
      }
      Tensor integers, dequantized;
      nn::quantize_activation(x, bits, alpha, integers, dequantized);
      for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
        if (!kernel_isa_supported(isa)) continue;
        const ForcedIsa forced(isa);
        PackedActivations expected, nchw, blocked;
        pack_activations(d, g, integers.data(), expected);
        pack_activations_quantized(d, g, x.data(), alpha, nchw);
        ASSERT_EQ(nchw.bits, expected.bits) << kernel_isa_name(isa) << ", " << g.str() << ", " << bits << " bits";
        const std::vector<float> xs(x.data(), x.data() + x.size());
        const std::vector<float> xbl = blocked_copy(xs, g, 16);
        pack_activations_quantized(d, g, xbl.data(), alpha, blocked, 16);
        ASSERT_EQ(blocked.bits, expected.bits) << kernel_isa_name(isa) << " blocked, " << g.str() << ", " << bits << " bits";
      }
      // NaN is named by its NCHW index; a bad alpha is refused.
      x[x.size() - 2] = NAN;
      for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
        if (!kernel_isa_supported(isa)) continue;
        const ForcedIsa forced(isa);
        PackedActivations out;
        try {
          pack_activations_quantized(d, g, x.data(), alpha, out);
          ADD_FAILURE() << kernel_isa_name(isa) << " accepted NaN";
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("index " + std::to_string(x.size() - 2) + " is NaN"), std::string::npos)
              << e.what();
        }
      }
      PackedActivations out;
      EXPECT_THROW(pack_activations_quantized(d, g, x.data(), 0.0f, out), Error);
    }
  }
}

TEST(KernelsPack, BadActivationsAreRejectedOnEveryPath) {
  const Decomposition d{Scheme::BitSerial, 20, 4, 4};
  const Im2colGeometry g{1, 2, 5, 5, 3, 3, 1, 1};
  std::vector<float> x(50, 3.0f);
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
    if (!kernel_isa_supported(isa)) continue;
    const ForcedIsa forced(isa);
    PackedActivations out;
    for (float bad : {16.0f, -1.0f, 2.5f}) {
      x[37] = bad;
      try {
        pack_activations(d, g, x.data(), out);
        ADD_FAILURE() << "accepted " << bad;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("index 37"), std::string::npos) << e.what();
      }
    }
    x[37] = 3.0f;
  }
}

}  // namespace
}  // namespace pimqat::pim
