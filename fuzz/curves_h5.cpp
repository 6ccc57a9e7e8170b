// Fuzz target: HDF5 characterization files: measured or simulated ADC transfer curves
// (pim/curves.h TransferCurves::load_hdf5, analysis/characterization.h curves_section) and
// mac-error tables (mac_error_section), as `pimqat eval`, `pimqat analyze` read them.
// Input: h5spec text (fuzz/h5spec.h), or raw HDF5 bytes when it starts with the HDF5 signature
// (libhdf5's own parsing; see docs/reliability.md).
// Property: curves that load have the ADC resolution and range the file's attributes state.
#include <cstdint>
#include <string>

#include "analysis/characterization.h"
#include "core/hdf5.h"
#include "fuzz/fuzz_common.h"
#include "fuzz/hdf5_input.h"
#include "pim/curves.h"

using namespace pimqat;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::scratch_path("curves.h5");
  if (!fuzz::make_hdf5_input(data, size, path)) return 0;
  fuzz::expect_error_or_success("TransferCurves::load_hdf5", [&] {
    const pim::TransferCurves curves = pim::TransferCurves::load(path);
    for (std::int64_t m = 0; m < curves.count(); ++m)
      for (std::int64_t p = curves.p_lo(); p <= curves.p_hi(); ++p) (void)curves.code(m, p);
    // Accepted curves are the file's: the same ADC resolution and range as its attributes say.
    const H5File file = H5File::open(path);
    if (file.attr_int("adc_bits") != curves.adc_bits() || file.attr_int("p_lo") != curves.p_lo() ||
        file.attr_int("p_hi") != curves.p_hi())
      fuzz::finding("load_hdf5 accepted adc_bits/p_lo/p_hi = " + std::to_string(file.attr_int("adc_bits")) + "/" +
                    std::to_string(file.attr_int("p_lo")) + "/" + std::to_string(file.attr_int("p_hi")) +
                    " as " + std::to_string(curves.adc_bits()) + "/" + std::to_string(curves.p_lo()) + "/" +
                    std::to_string(curves.p_hi()));
  });
  fuzz::expect_error_or_success("curves_section", [&] { (void)analysis::curves_section(path); });
  fuzz::expect_error_or_success("mac_error_section", [&] { (void)analysis::mac_error_section(path); });
  return 0;
}
