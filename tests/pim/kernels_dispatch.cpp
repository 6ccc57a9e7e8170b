// Run-time dispatch (pim/kernels/dispatch.h): names, forcing a path, the environment variable, and
// that the PIM layer gives the same bits on every path (training forward with rho, and a noisy
// non-ideal die in evaluation).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "pim/die.h"
#include "pim/kernels/dispatch.h"
#include "pim/pim_conv.h"

namespace pimqat::pim {
namespace {

TEST(KernelsDispatch, NamesAndForcing) {
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable})
    EXPECT_EQ(parse_kernel_isa(kernel_isa_name(isa)), isa);
  EXPECT_THROW(parse_kernel_isa("sse2"), Error);
  EXPECT_TRUE(kernel_isa_supported(KernelIsa::Portable));
  const KernelIsa best = best_kernel_isa();
  std::printf("[ dispatch ] best path on this CPU: %s (avx512 %s, avx2 %s); active: %s\n",
              std::string(kernel_isa_name(best)).c_str(), kernel_isa_supported(KernelIsa::Avx512) ? "yes" : "no",
              kernel_isa_supported(KernelIsa::Avx2) ? "yes" : "no", std::string(kernel_isa_name(active_kernel_isa())).c_str());
  ::testing::Test::RecordProperty("best_kernel_isa", std::string(kernel_isa_name(best)));
  for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Portable}) {
    if (kernel_isa_supported(isa)) {
      force_kernel_isa(isa);
      EXPECT_EQ(active_kernel_isa(), isa);
    } else {
      EXPECT_THROW(force_kernel_isa(isa), Error);
    }
  }
  force_kernel_isa(std::nullopt);
  const char* env = std::getenv("PIMQAT_KERNEL");
  EXPECT_EQ(active_kernel_isa(), env && *env ? parse_kernel_isa(env) : best);
}

// A PIM layer's forward output, batch rho and PIM sums on one path.
struct LayerRun {
  std::vector<float> train_output, eval_output;
  double train_rho = 0, eval_rho = 0;
  std::vector<double> pim;
};

LayerRun run_layer(KernelIsa isa, Scheme scheme, int adc_bits) {
  force_kernel_isa(isa);
  PimLayerSettings settings;
  settings.scheme = scheme;
  settings.adc_bits = adc_bits;
  PimConv2d layer("conv", nn::ConvGeometry{16, 11, 3, 1, 1}, nn::LayerQuantization{4, 4, 2.0f}, settings);
  RandomStream r(RngKey{5, 0, Purpose::Operands, 0});
  for (Index i = 0; i < layer.weight().value.size(); ++i) layer.weight().value[i] = r.normal() * 0.2f;
  Tensor x(Shape{3, 16, 9, 7});
  for (Index i = 0; i < x.size(); ++i) x[i] = 2.5f * r.uniform();
  LayerRun run;
  const Tensor& y = layer.forward(x, nn::Mode::Train);
  run.train_output.assign(y.data(), y.data() + y.size());
  run.train_rho = layer.batch_rho();
  NonIdeality chip;
  chip.gain_sigma = 0.024;
  chip.offset_sigma = 2.04;
  chip.noise_sigma = 1.0;
  layer.attach_die(std::make_shared<const Die>(1, 2, 3, chip), 4);
  layer.set_adc_bits(7);
  const Tensor& e = layer.forward(x, nn::Mode::Eval);
  run.eval_output.assign(e.data(), e.data() + e.size());
  run.eval_rho = layer.batch_rho();
  run.pim = layer.pim_output();
  force_kernel_isa(std::nullopt);
  return run;
}

TEST(KernelsDispatch, PimLayerGivesTheSameBitsOnEveryPath) {
  for (Scheme scheme : {Scheme::BitSerial, Scheme::Differential, Scheme::Native}) {
    const LayerRun reference = run_layer(KernelIsa::Portable, scheme, 4);
    for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2}) {
      if (!kernel_isa_supported(isa)) continue;
      const LayerRun run = run_layer(isa, scheme, 4);
      EXPECT_EQ(run.train_output, reference.train_output) << kernel_isa_name(isa) << " " << scheme_name(scheme);
      EXPECT_EQ(run.train_rho, reference.train_rho) << kernel_isa_name(isa);
      EXPECT_EQ(run.eval_output, reference.eval_output) << kernel_isa_name(isa) << " (noisy die)";
      EXPECT_EQ(run.eval_rho, reference.eval_rho) << kernel_isa_name(isa);
      EXPECT_EQ(run.pim, reference.pim) << kernel_isa_name(isa);
    }
  }
}

}  // namespace
}  // namespace pimqat::pim
