// Micro-benchmarks of the PIM kernels on each instruction-set path available here: noisy
// conversions alone (pim/kernels/noise.h thermal_codes: coarse Philox words, the fast decision and
// its fine-word fallback, sigma = 1 LSB on a 7-bit ADC), activation packing and the PIM product on
// ResNet-20 layer shapes (batch 128, 28x28 input), ideal ADC and a noisy non-ideal die (with the
// share of conversions that drew the fine noise word). Reports CPU time per thread
// (CLOCK_THREAD_CPUTIME_ID on one thread), which a loaded machine disturbs much less than wall time.
// usage: pim_kernels [--repeat R] [--only noise|gemm] [--isa avx512|avx2|portable]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/thread_time.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/conv.h"
#include "pim/adc.h"
#include "pim/die.h"
#include "pim/kernels/dispatch.h"
#include "pim/kernels/noise.h"
#include "pim/kernels/packed.h"

namespace {

using namespace pimqat;
using namespace pimqat::pim;

using bench::thread_seconds;

struct Layer {
  const char* name;
  Index channels, size, out_channels;
  int kernel, stride, padding;
};

}  // namespace

int main(int argc, char** argv) {
  int repeat = 3;
  std::string only, isa_only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--isa" && i + 1 < argc) isa_only = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--repeat R] [--only noise|gemm] [--isa avx512|avx2|portable]\n", argv[0]);
      return 2;
    }
  }
  set_threads(1);
  std::vector<KernelIsa> paths;
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable})
    if (kernel_isa_supported(isa) && (isa_only.empty() || kernel_isa_name(isa) == isa_only)) paths.push_back(isa);

  // 1. Noisy conversions alone.
  if (only.empty() || only == "noise") {
    const auto words = PhiloxWords::of(RngKey{1, 2, Purpose::ThermalNoise, 3});
    const Index count = 1 << 18;
    const Adc adc(0.0, 144.0, 7);
    std::vector<double> levels(static_cast<std::size_t>(count));
    RandomStream r(RngKey{3, 0, Purpose::Operands, 1});
    for (auto& l : levels) l = 127.0 * r.uniform_double();
    std::vector<std::int32_t> codes(static_cast<std::size_t>(count));
    for (KernelIsa isa : paths) {
      double best = 1e30;
      std::uint64_t fine = 0;
      for (int rep = 0; rep < repeat; ++rep) {
        const double t0 = thread_seconds();
        fine = thermal_codes(*words, 0, count, 1.0, adc, levels.data(), codes.data(), isa);
        best = std::min(best, thread_seconds() - t0);
      }
      std::printf("noisy conversions %-9s %8.2f ns/conversion (sigma = 1 LSB, 7-bit ADC, %.3f%% fine words)\n",
                  std::string(kernel_isa_name(isa)).c_str(), 1e9 * best / static_cast<double>(count),
                  100.0 * static_cast<double>(fine) / static_cast<double>(count));
    }
  }

  // 2. Packing and products on ResNet-20 shapes.
  const Layer layers[] = {{"stage1 3x3 16->16", 16, 28, 16, 3, 1, 1},
                          {"stage2 3x3 32->32", 32, 14, 32, 3, 1, 1},
                          {"stage3 3x3 64->64", 64, 7, 64, 3, 1, 1}};
  const Index batch = 128;
  for (const Layer& L : layers) {
    if (!only.empty() && only != "gemm") continue;
    const Im2colGeometry g{batch, L.channels, L.size, L.size, L.kernel, L.kernel, L.stride, L.padding};
    const Decomposition d{Scheme::BitSerial, 144, 4, 4};
    RandomStream r(RngKey{3, 0, Purpose::Operands, 0});
    std::vector<float> x(static_cast<std::size_t>(g.batch * g.channels * g.height * g.width));
    for (auto& v : x) v = static_cast<float>(r.below(16));
    // The same activations as a PIM layer inside a basic block sees them: floats in nChw16c,
    // quantized by the packer (alpha = 15: X = x).
    std::vector<float> x_blocked(x.size());
    {
      const Index plane = g.height * g.width, blocks = g.channels / 16;
      for (Index n = 0; n < g.batch; ++n)
        for (Index c = 0; c < g.channels; ++c)
          for (Index i = 0; i < plane; ++i)
            x_blocked[static_cast<std::size_t>(((n * blocks + c / 16) * plane + i) * 16 + c % 16)] =
                x[static_cast<std::size_t>((n * g.channels + c) * plane + i)];
    }
    std::vector<std::int32_t> w(static_cast<std::size_t>(L.out_channels * g.reduction()));
    for (auto& v : w) v = static_cast<std::int32_t>(r.below(16)) - 8;
    const Index hw = g.out_height() * g.out_width();
    std::vector<std::int64_t> sums(static_cast<std::size_t>(g.pixels() * L.out_channels));
    PackedWeights pw;
    pack_weights(d, w.data(), g.reduction(), L.out_channels, pw);
    NonIdeality chip;
    chip.gain_sigma = 0.024;
    chip.offset_sigma = 2.04;
    chip.noise_sigma = 1.0;
    const Die die(7, 1, 0, chip);
    const Adc adc7(d.p_lo(), d.p_hi(), 7), adc4(d.p_lo(), d.p_hi(), 4);
    AdcBank noisy = die.bank(0, adc7, d.columns(g.reduction(), L.out_channels));
    die.set_noise(noisy, 0, 0);
    const AdcBank ideal4(adc4);
    for (KernelIsa isa : paths) {
      force_kernel_isa(isa);
      PackedActivations px;
      double pack = 1e30, pack_blocked = 1e30, fixed = 1e30, noise = 1e30;
      std::uint64_t fine = 0;
      for (int rep = 0; rep < repeat; ++rep) {
        double t0 = thread_seconds();
        pack_activations(d, g, x.data(), px);
        pack = std::min(pack, thread_seconds() - t0);
        if (g.channels % 16 == 0) {
          t0 = thread_seconds();
          pack_activations_quantized(d, g, x_blocked.data(), 15.0f, px, 16);
          pack_blocked = std::min(pack_blocked, thread_seconds() - t0);
        }
        PimMoments m;
        t0 = thread_seconds();
        packed_pim_gemm_integer(d, ideal4, px, pw, g.reduction(), L.out_channels, hw, sums.data(), nullptr, &m);
        fixed = std::min(fixed, thread_seconds() - t0);
        const std::uint64_t fine_before = thermal_fine_conversions();
        t0 = thread_seconds();
        packed_pim_gemm_integer(d, noisy, px, pw, g.reduction(), L.out_channels, hw, sums.data(), nullptr, &m);
        noise = std::min(noise, thread_seconds() - t0);
        fine = thermal_fine_conversions() - fine_before;
      }
      const double macs = static_cast<double>(g.pixels()) * static_cast<double>(g.reduction()) * static_cast<double>(L.out_channels);
      const double conversions = static_cast<double>(d.columns(g.reduction(), L.out_channels)) * d.input_slices() * static_cast<double>(g.pixels());
      std::printf(
          "%-20s %-9s pack %7.2f ms (quantizing, blocked %7.2f ms)  ideal TR=4 %8.2f ms (%5.2f GMAC/s)  noisy die IR=7 %8.2f ms (%5.2f "
          "ns/conversion, %.3f%% fine words)\n",
          L.name, std::string(kernel_isa_name(isa)).c_str(), 1e3 * pack, 1e3 * pack_blocked, 1e3 * fixed, macs / fixed * 1e-9, 1e3 * noise,
          1e9 * noise / conversions, 100.0 * static_cast<double>(fine) / conversions);
    }
    force_kernel_isa(std::nullopt);
    // The FP32 convolution of the same layer (oneDNN, NCHW), for scale.
    nn::ConvEngine engine(nn::ConvGeometry{L.channels, L.out_channels, L.kernel, L.stride, L.padding});
    Tensor src(Shape{batch, L.channels, L.size, L.size}), weight(Shape{L.out_channels, L.channels, L.kernel, L.kernel}), dst;
    for (Index i = 0; i < src.size(); ++i) src[i] = x[static_cast<std::size_t>(i)];
    for (Index i = 0; i < weight.size(); ++i) weight[i] = static_cast<float>(w[static_cast<std::size_t>(i)]);
    double forward = 1e30;
    for (int rep = 0; rep <= repeat; ++rep) {
      const double t0 = thread_seconds();
      engine.forward(src, weight, dst);
      if (rep > 0) forward = std::min(forward, thread_seconds() - t0);
    }
    const double macs = static_cast<double>(g.pixels()) * static_cast<double>(g.reduction()) * static_cast<double>(L.out_channels);
    std::printf("%-20s fp32 conv forward (oneDNN, NCHW) %8.2f ms (%5.2f GMAC/s)\n", L.name, 1e3 * forward, macs / forward * 1e-9);
  }
  return 0;
}
