// Fuzz target: measured ADC transfer curves in CSV (pim/curves.h TransferCurves::load_csv;
// format in docs/curves-format.md).
// Properties: accepted curves written with save_csv read back identical (bits, range, names,
// every code bit for bit), and written with save_hdf5 read back with the same codes.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "pim/curves.h"

using namespace pimqat;

namespace {

bool same_codes(const pim::TransferCurves& a, const pim::TransferCurves& b) {
  if (a.adc_bits() != b.adc_bits() || a.p_lo() != b.p_lo() || a.p_hi() != b.p_hi() || a.count() != b.count())
    return false;
  for (std::int64_t m = 0; m < a.count(); ++m)
    if (a.curve(m) != b.curve(m)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::scratch_path("curves.csv");
  fuzz::write_file(path, data, size);
  fuzz::expect_error_or_success("TransferCurves::load_csv", [&] {
    const pim::TransferCurves curves = pim::TransferCurves::load(path);
    if (curves.count() * curves.points() > 100000) return;  // keep one input cheap
    const std::string again_csv = fuzz::scratch_path("again.csv"), again_h5 = fuzz::scratch_path("again.h5");
    curves.save_csv(again_csv);
    pim::TransferCurves back;
    try {
      back = pim::TransferCurves::load(again_csv);
    } catch (const std::exception& e) {
      fuzz::finding("save_csv wrote curves that load_csv refuses: " + std::string(e.what()));
    }
    if (!same_codes(curves, back)) fuzz::finding("save_csv -> load_csv changed the curves");
    for (std::int64_t m = 0; m < curves.count(); ++m)
      if (curves.name(m) != back.name(m)) fuzz::finding("save_csv -> load_csv changed curve name '" + curves.name(m) + "'");
    curves.save_hdf5(again_h5);
    try {
      back = pim::TransferCurves::load(again_h5);
    } catch (const std::exception& e) {
      fuzz::finding("save_hdf5 wrote curves that load_hdf5 refuses: " + std::string(e.what()));
    }
    if (!same_codes(curves, back)) fuzz::finding("save_hdf5 -> load_hdf5 changed the curves");
  });
  return 0;
}
