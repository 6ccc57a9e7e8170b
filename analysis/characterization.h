#pragma once
// Views of the characterization files: `pimqat mac-error` (computing error and rho of one PIM
// configuration against the exact product: the paper's Fig. 3 and A2) and `pimqat curves`
// (transfer curves of simulated dies, Fig. A7; format in docs/curves-format.md).
//
// mac-error files (runner/cli/mac_error.cpp: root attributes kind = "pimqat-mac-error", scheme,
// rows, act_bits, weight_bits, ...; table /mac_error with adc_bits, noise_sigma, dies,
// rms_error_lsb, mean_error_lsb, relative_rms, rho, rescaled_relative_rms, exact_std) are read as
// a table (core/hdf5.h write_table layout): the group "mac_error" if present, else the first table
// of the root, else the root's 1-D datasets of equal length. Columns are recognized by name:
//   resolution  adc_bits | infer_bits | bits | resolution       (x of the rho plot)
//   noise       noise_sigma | sigma | noise                     (x of the error plot, LSB)
//   metrics     relative_rms, rms_error_lsb | rms_error, rescaled_relative_rms, rho,
//               mean_error_lsb | mean_error, exact_std, outputs
// every other column is a parameter; parameters that vary split the plots' series. Rows with the
// same parameters are averaged (repeated draws). One file holds one scheme: give one file per
// scheme to compare them.
#include <string>

#include "analysis/report.h"

namespace pimqat::analysis {

// Throws pimqat::Error naming the file when it is missing, not HDF5, or has none of the columns
// above (the message lists the columns found and the ones expected). `tag` distinguishes the
// table and plot names of several files ("" for the first).
Section mac_error_section(const std::string& path, const std::string& tag = "");

// Throws pimqat::Error naming the file when it is not a transfer-curve file (format attribute,
// adc_bits/p_lo/p_hi, a 2-D /codes of p_hi - p_lo + 1 columns).
Section curves_section(const std::string& path, const std::string& tag = "");

}  // namespace pimqat::analysis
