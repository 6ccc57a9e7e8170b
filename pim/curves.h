#pragma once
// Measured ADC transfer curves (DESIGN.md 2.3): a pool of M curves, each giving the (mean) output
// code of one measured ADC column for every integer partial sum p in [p_lo, p_hi]. The file
// formats (CSV and HDF5) and their checks are specified in docs/curves-format.md; a simulated
// physical column uses the curve its die assigns to it (pim/die.h).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pimqat {
class H5File;
}

namespace pimqat::pim {

class TransferCurves {
 public:
  TransferCurves() = default;
  // codes[m][p - p_lo] for m < M (= codes.size()), p in [p_lo, p_hi]. Validates like a file
  // (sizes, range, monotonicity); `origin` names the source in error messages.
  TransferCurves(int adc_bits, std::int64_t p_lo, std::int64_t p_hi, std::vector<std::string> names,
                 std::vector<std::vector<double>> codes, const std::string& origin = "transfer curves");

  // Loads a .csv, or an .h5/.hdf5 file; throws pimqat::Error naming the file (and line for CSV)
  // and what is wrong.
  static TransferCurves load(const std::string& path);
  static TransferCurves load_csv(const std::string& path);
  static TransferCurves load_hdf5(const std::string& path);
  void save_csv(const std::string& path) const;
  // Written atomically (core/hdf5.h); `extra` may add datasets (e.g. where simulated curves came from).
  void save_hdf5(const std::string& path, const std::function<void(H5File&)>& extra = {}) const;

  int adc_bits() const { return adc_bits_; }
  std::int64_t p_lo() const { return p_lo_; }
  std::int64_t p_hi() const { return p_hi_; }
  std::int64_t points() const { return p_hi_ - p_lo_ + 1; }
  std::int64_t count() const { return static_cast<std::int64_t>(codes_.size()); }  // M
  const std::string& name(std::int64_t m) const { return names_[static_cast<std::size_t>(m)]; }
  // Mean code of curve m at partial sum p (p in [p_lo, p_hi]).
  double code(std::int64_t m, std::int64_t p) const {
    return codes_[static_cast<std::size_t>(m)][static_cast<std::size_t>(p - p_lo_)];
  }
  const std::vector<double>& curve(std::int64_t m) const { return codes_[static_cast<std::size_t>(m)]; }

  // Throws pimqat::Error unless the curves were measured for this ADC: same bits, same range.
  void check_matches(int adc_bits, double p_lo, double p_hi, const std::string& where) const;

 private:
  int adc_bits_ = 0;
  std::int64_t p_lo_ = 0, p_hi_ = 0;
  std::vector<std::string> names_;
  std::vector<std::vector<double>> codes_;
  std::string origin_;
};

}  // namespace pimqat::pim
