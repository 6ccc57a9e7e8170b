#include "pim/curves.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "core/error.h"
#include "core/hdf5.h"

namespace pimqat::pim {
namespace {

constexpr const char* kHdf5Format = "pimqat-adc-curves";
constexpr int kFormatVersion = 1;

std::string number_text(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = line.find(',', start);
    fields.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return fields;
}

bool parse_double(std::string_view text, double& value) {
  if (text.empty()) return false;
  if (text.front() == '+') text.remove_prefix(1);
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  return result.ec == std::errc() && result.ptr == text.data() + text.size() && std::isfinite(value);
}

bool parse_integer(std::string_view text, std::int64_t& value) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  return !text.empty() && result.ec == std::errc() && result.ptr == text.data() + text.size();
}

// Checks one code value; `where` is the location prefix ("file:line" or "file, curve 'x'").
void check_code(double code, int max_code, const std::string& where, const std::string& name, std::int64_t p) {
  if (!std::isfinite(code) || code < 0.0 || code > max_code)
    throw Error(where + ": code " + number_text(code) + " of curve '" + name + "' at p = " + std::to_string(p) +
                " is outside the ADC's code range [0, " + std::to_string(max_code) + "]");
}

void check_monotone(double previous, double code, const std::string& where, const std::string& name, std::int64_t p) {
  if (code < previous)
    throw Error(where + ": curve '" + name + "' decreases from " + number_text(previous) + " at p = " +
                std::to_string(p - 1) + " to " + number_text(code) + " at p = " + std::to_string(p) +
                " (a transfer curve must be non-decreasing in p)");
}

// The header as read (adc_bits as the file's 64-bit integer, never narrowed before the check).
// After it passes, p_hi - p_lo + 1 and p_lo + i for i < points fit in int64.
void check_header(std::int64_t adc_bits, std::int64_t p_lo, std::int64_t p_hi, const std::string& where) {
  if (adc_bits < 1 || adc_bits > 16)
    throw Error(where + ": adc_bits = " + std::to_string(adc_bits) + " is outside [1, 16]");
  if (p_hi <= p_lo)
    throw Error(where + ": p_hi = " + std::to_string(p_hi) + " must be greater than p_lo = " + std::to_string(p_lo));
  // p_hi > p_lo, so the difference is in [1, 2^64 - 1] and exact in unsigned arithmetic.
  const std::uint64_t span = static_cast<std::uint64_t>(p_hi) - static_cast<std::uint64_t>(p_lo);
  if (span > (std::uint64_t{1} << 26))
    throw Error(where + ": range p_lo..p_hi has " +
                (span == UINT64_MAX ? std::string("18446744073709551616") : std::to_string(span + 1)) +
                " points (at most 2^26 + 1)");
}

}  // namespace

TransferCurves::TransferCurves(int adc_bits, std::int64_t p_lo, std::int64_t p_hi, std::vector<std::string> names,
                               std::vector<std::vector<double>> codes, const std::string& origin)
    : adc_bits_(adc_bits), p_lo_(p_lo), p_hi_(p_hi), names_(std::move(names)), codes_(std::move(codes)),
      origin_(origin) {
  check_header(adc_bits, p_lo, p_hi, origin);
  if (codes_.empty()) throw Error(origin + ": no curves (at least one is needed)");
  if (names_.size() != codes_.size())
    throw Error(origin + ": " + std::to_string(names_.size()) + " curve names for " + std::to_string(codes_.size()) +
                " curves");
  const int max_code = (1 << adc_bits) - 1;
  for (std::size_t m = 0; m < codes_.size(); ++m) {
    const auto& c = codes_[m];
    if (static_cast<std::int64_t>(c.size()) != points())
      throw Error(origin + ": curve '" + names_[m] + "' has " + std::to_string(c.size()) + " entries, expected " +
                  std::to_string(points()) + " (one per integer p from " + std::to_string(p_lo) + " to " +
                  std::to_string(p_hi) + ")");
    for (std::int64_t i = 0; i < points(); ++i) {
      const double code = c[static_cast<std::size_t>(i)];
      check_code(code, max_code, origin, names_[m], p_lo + i);
      if (i > 0) check_monotone(c[static_cast<std::size_t>(i - 1)], code, origin, names_[m], p_lo + i);
    }
  }
}

TransferCurves TransferCurves::load(const std::string& path) {
  const auto ends_with = [&](std::string_view suffix) {
    return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".csv") || ends_with(".CSV")) return load_csv(path);
  if (ends_with(".h5") || ends_with(".hdf5") || ends_with(".H5")) return load_hdf5(path);
  throw Error(path + ": unknown transfer-curve file type (expected a .csv, .h5 or .hdf5 file)");
}

TransferCurves TransferCurves::load_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open transfer-curve file");
  std::int64_t adc_bits = -1, p_lo = 0, p_hi = 0;
  bool have_p_lo = false, have_p_hi = false, have_header = false;
  std::vector<std::string> names;
  std::vector<std::vector<double>> codes;
  std::int64_t rows = 0;  // data rows read; the next row's p is p_lo + rows (no overflow: rows <= p_hi - p_lo)
  std::int64_t line_number = 0, last_data_line = 0;
  std::string line;
  while (std::getline(in, line)) {
    ++line_number;
    const std::string where = path + ":" + std::to_string(line_number);
    const std::string_view text = trim(line);
    if (text.empty() || text.front() == '#') continue;
    const auto fields = split_fields(text);
    if (!have_header) {
      const std::string_view key = fields[0];
      if (key == "p") {
        if (adc_bits < 0 || !have_p_lo || !have_p_hi)
          throw Error(where + ": the header line 'p,...' must come after the 'adc_bits', 'p_lo' and 'p_hi' lines");
        check_header(adc_bits, p_lo, p_hi, where);
        if (fields.size() < 2) throw Error(where + ": the header names no curves (expected 'p,<name>,<name>,...')");
        for (std::size_t i = 1; i < fields.size(); ++i) {
          if (fields[i].empty()) throw Error(where + ": curve name " + std::to_string(i) + " is empty");
          names.emplace_back(fields[i]);
        }
        codes.assign(names.size(), {});
        have_header = true;
        continue;
      }
      std::int64_t value = 0;
      if (fields.size() != 2 || !parse_integer(fields[1], value))
        throw Error(where + ": expected 'adc_bits,<int>', 'p_lo,<int>', 'p_hi,<int>' or the header 'p,<names>', found '" +
                    std::string(text) + "'");
      if (key == "adc_bits") adc_bits = value;
      else if (key == "p_lo") p_lo = value, have_p_lo = true;
      else if (key == "p_hi") p_hi = value, have_p_hi = true;
      else throw Error(where + ": unknown key '" + std::string(key) + "' (valid: adc_bits, p_lo, p_hi)");
      continue;
    }
    if (fields.size() != names.size() + 1)
      throw Error(where + ": expected " + std::to_string(names.size() + 1) + " fields (p and one code per curve), found " +
                  std::to_string(fields.size()));
    std::int64_t p = 0;
    if (!parse_integer(fields[0], p)) throw Error(where + ": p = '" + std::string(fields[0]) + "' is not an integer");
    if (rows > p_hi - p_lo)
      throw Error(where + ": too many rows: the range p_lo..p_hi = " + std::to_string(p_lo) + ".." + std::to_string(p_hi) +
                  " has " + std::to_string(p_hi - p_lo + 1) + " entries per curve");
    const std::int64_t next_p = p_lo + rows;
    if (p != next_p)
      throw Error(where + ": expected p = " + std::to_string(next_p) + ", found " + std::to_string(p) +
                  " (rows must list every integer p from p_lo to p_hi in increasing order)");
    const int max_code = (1 << adc_bits) - 1;
    for (std::size_t m = 0; m < names.size(); ++m) {
      double code = 0;
      if (!parse_double(fields[m + 1], code))
        throw Error(where + ": code '" + std::string(fields[m + 1]) + "' of curve '" + names[m] + "' is not a finite number");
      check_code(code, max_code, where, names[m], p);
      if (!codes[m].empty()) check_monotone(codes[m].back(), code, where, names[m], p);
      codes[m].push_back(code);
    }
    ++rows;
    last_data_line = line_number;
  }
  if (!have_header) throw Error(path + ": no header line 'p,<name>,...' (is this a pimqat transfer-curve CSV file?)");
  if (rows != p_hi - p_lo + 1)
    throw Error(path + ":" + std::to_string(last_data_line > 0 ? last_data_line : line_number) + ": found " +
                std::to_string(rows) + " rows, expected " + std::to_string(p_hi - p_lo + 1) +
                " (one per integer p from " + std::to_string(p_lo) + " to " + std::to_string(p_hi) + ")");
  return TransferCurves(static_cast<int>(adc_bits), p_lo, p_hi, std::move(names), std::move(codes), path);
}

void TransferCurves::save_csv(const std::string& path) const {
  std::ofstream out(path);
  if (!out) throw Error(path + ": cannot create transfer-curve file");
  out << "# pimqat ADC transfer curves (docs/curves-format.md): mean output code per integer partial sum p\n";
  out << "adc_bits," << adc_bits_ << "\np_lo," << p_lo_ << "\np_hi," << p_hi_ << "\np";
  for (const auto& n : names_) out << ',' << n;
  out << '\n';
  out.precision(17);
  for (std::int64_t i = 0; i < points(); ++i) {
    out << p_lo_ + i;
    for (const auto& c : codes_) out << ',' << c[static_cast<std::size_t>(i)];
    out << '\n';
  }
  if (!out) throw Error(path + ": write failed");
}

TransferCurves TransferCurves::load_hdf5(const std::string& path) {
  std::optional<H5File> opened;
  try {
    opened.emplace(H5File::open(path));
  } catch (const Error& e) {
    throw Error(path + ": cannot open as an HDF5 file (" + e.what() + ")");
  }
  H5File& file = *opened;
  const auto require = [&](const char* name) {
    if (!file.has_attr(name)) throw Error(path + ": missing root attribute '" + std::string(name) + "'");
  };
  require("format");
  const std::string format = file.attr_string("format");
  if (format != kHdf5Format)
    throw Error(path + ": root attribute format = '" + format + "', expected '" + kHdf5Format + "'");
  require("version");
  const std::int64_t version = file.attr_int("version");
  if (version != kFormatVersion)
    throw Error(path + ": format version " + std::to_string(version) + " is not supported (this pimqat reads version " +
                std::to_string(kFormatVersion) + ")");
  require("adc_bits");
  require("p_lo");
  require("p_hi");
  const std::int64_t adc_bits = file.attr_int("adc_bits"), p_lo = file.attr_int("p_lo"), p_hi = file.attr_int("p_hi");
  check_header(adc_bits, p_lo, p_hi, path);
  if (!file.has_dataset("codes")) throw Error(path + ": missing dataset '/codes'");
  std::vector<hsize_t> dims;
  const std::vector<double> flat = file.read<double>("codes", &dims);
  if (dims.size() != 2) throw Error(path + ": dataset '/codes' must be 2-D (curves x points)");
  const auto expected = static_cast<hsize_t>(p_hi - p_lo + 1);
  if (dims[1] != expected)
    throw Error(path + ": dataset '/codes' has " + std::to_string(dims[1]) + " entries per curve, expected " +
                std::to_string(expected) + " (one per integer p from " + std::to_string(p_lo) + " to " +
                std::to_string(p_hi) + ")");
  if (dims[0] == 0) throw Error(path + ": dataset '/codes' holds no curves");
  std::vector<std::string> names;
  std::vector<std::vector<double>> codes;
  for (hsize_t m = 0; m < dims[0]; ++m) {
    names.push_back("curve" + std::to_string(m));
    codes.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(m * dims[1]),
                       flat.begin() + static_cast<std::ptrdiff_t>((m + 1) * dims[1]));
  }
  return TransferCurves(static_cast<int>(adc_bits), p_lo, p_hi, std::move(names), std::move(codes), path + " /codes");
}

void TransferCurves::save_hdf5(const std::string& path, const std::function<void(H5File&)>& extra) const {
  write_h5_atomically(path, [&](H5File& file) {
    file.set_attr_string("format", kHdf5Format);
    file.set_attr_int("version", kFormatVersion);
    file.set_attr_int("adc_bits", adc_bits_);
    file.set_attr_int("p_lo", p_lo_);
    file.set_attr_int("p_hi", p_hi_);
    std::vector<double> flat;
    flat.reserve(static_cast<std::size_t>(count() * points()));
    for (const auto& c : codes_) flat.insert(flat.end(), c.begin(), c.end());
    file.write<double>("codes", flat.data(), {static_cast<hsize_t>(count()), static_cast<hsize_t>(points())});
    if (extra) extra(file);
  });
}

void TransferCurves::check_matches(int adc_bits, double p_lo, double p_hi, const std::string& where) const {
  if (adc_bits != adc_bits_ || p_lo != static_cast<double>(p_lo_) || p_hi != static_cast<double>(p_hi_))
    throw Error(origin_ + ": transfer curves were measured for adc_bits = " + std::to_string(adc_bits_) + ", p = " +
                std::to_string(p_lo_) + ".." + std::to_string(p_hi_) + ", but " + where + " has adc_bits = " +
                std::to_string(adc_bits) + ", p = " + number_text(p_lo) + ".." + number_text(p_hi));
}

}  // namespace pimqat::pim
