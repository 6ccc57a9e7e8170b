#pragma once
// HDF5 files for checkpoints and results (DESIGN.md 5): RAII over the HDF5 C API.
//
// Objects: H5File (which is also its root group "/"), H5Group, H5Dataset. Each owns its HDF5
// identifier and closes it when destroyed; all are move-only. Every failure is a pimqat::Error
// naming the file and the object path, e.g. `'run/results.h5':/tasks/epoch: ...`; HDF5's own
// automatic error printing is switched off (the library never prints).
//
// What is written, so that h5py / h5dump / pandas read it directly:
// - numeric datasets: little-endian IEEE float32/float64 and int32/int64/uint8/uint64, any
//   rank (shape {} = scalar), contiguous or chunked with shuffle + deflate (H5Compression::Deflate);
// - string datasets and attributes: variable-length UTF-8 (h5py >= 3 returns bytes from
//   `ds[:]` and str from `ds.asstr()[:]`; attributes come back as str);
// - scalar attributes: int64, float64, variable-length UTF-8 string; 1-D string-list attributes;
// - tables (write_table): a group with one 1-D dataset per column and an attribute "columns"
//   holding the column order; in Python:
//     g = h5py.File(path)["evaluations"]
//     df = pd.DataFrame({c: g[c].asstr()[:] if g[c].dtype.kind == "O" else g[c][:] for c in g.attrs["columns"]})
//
// Reading checks the stored type: a dataset can be read as its own type or a wider one of the
// same kind (float32 -> double, uint8 -> int32, int32 -> int64, ...), never with a narrowing or
// a change of kind. The HDF5 library used here is not thread-safe: use these objects from one
// thread at a time.
#include <hdf5.h>

#include <concepts>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace pimqat {

// An owned HDF5 identifier (file, group, dataset, dataspace, datatype, property list,
// attribute) and the H5*close function that releases it.
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id() = default;
  H5Id(hid_t id, Closer close) : id_(id), close_(close) {}
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  H5Id(H5Id&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = H5I_INVALID_HID; }
  H5Id& operator=(H5Id&& other) noexcept;
  ~H5Id() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();              // closes (ignoring errors)
  herr_t close_checked();    // closes and returns the status of the close call

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// Element types of numeric datasets.
template <class T>
concept H5Element = std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, std::int32_t> ||
                    std::same_as<T, std::int64_t> || std::same_as<T, std::uint8_t> || std::same_as<T, std::uint64_t>;

enum class H5Class { Integer, Float, String, Other };
enum class H5Compression { None, Deflate };  // Deflate: chunks of <= 1 MiB, shuffle + deflate level 4

struct H5DatasetInfo {
  std::vector<hsize_t> shape;  // empty for a scalar
  H5Class type_class = H5Class::Other;
  std::size_t element_size = 0;  // bytes (variable-length strings: size of the pointer)
  bool is_signed = false;        // integers
  std::string type_name;         // "float32", "int64", "uint8", "string", ...
  std::uint64_t elements() const;
};

// An open file, group or dataset: what they share is attributes and their place in a file.
class H5Object {
 public:
  const std::string& file_path() const { return file_; }
  const std::string& path() const { return path_; }  // "/" or "/a/b"
  hid_t id() const { return id_.get(); }

  bool has_attr(const std::string& name) const;
  // Setting an attribute replaces one of the same name (whatever its type).
  void set_attr_string(const std::string& name, const std::string& value);
  void set_attr_int(const std::string& name, std::int64_t value);
  void set_attr_double(const std::string& name, double value);
  void set_attr_strings(const std::string& name, const std::vector<std::string>& values);  // 1-D
  std::string attr_string(const std::string& name) const;
  std::int64_t attr_int(const std::string& name) const;   // any integer attribute that fits
  double attr_double(const std::string& name) const;      // a float or integer attribute
  std::vector<std::string> attr_strings(const std::string& name) const;  // 1-D (or scalar) strings
  std::vector<std::string> attr_names() const;

 protected:
  H5Object() = default;
  H5Object(H5Id id, std::string file, std::string path)
      : id_(std::move(id)), file_(std::move(file)), path_(std::move(path)) {}
  // "'file':/path/child" for error messages.
  std::string where(const std::string& child = "") const;
  std::string child_path(const std::string& child) const;

  H5Id id_;
  std::string file_;
  std::string path_;
};

class H5Dataset : public H5Object {
 public:
  H5DatasetInfo info() const;
  std::vector<hsize_t> shape() const { return info().shape; }

 private:
  friend class H5Group;
  using H5Object::H5Object;
};

class H5Group : public H5Object {
 public:
  // Groups. Paths are relative to this group ("a/b/c") or absolute in the file ("/a/b").
  H5Group create_group(const std::string& path);   // creates missing parents; error if it exists
  H5Group require_group(const std::string& path);  // opens it, or creates it (and its parents)
  H5Group open_group(const std::string& path) const;
  bool exists(const std::string& path) const;  // a group or dataset at that path
  bool has_group(const std::string& path) const;
  bool has_dataset(const std::string& path) const;
  std::vector<std::string> children() const;  // names of the links in this group, in name order
  void remove(const std::string& path);       // unlinks a child (the space is not reclaimed)

  // Numeric datasets of any rank (shape {} = scalar; row-major data of prod(shape) elements).
  // Writing replaces an existing dataset of the same name; missing parent groups are created.
  template <H5Element T>
  void write(const std::string& path, const T* data, const std::vector<hsize_t>& shape,
             H5Compression compression = H5Compression::None);
  template <H5Element T>
  void write(const std::string& path, const std::vector<T>& values, H5Compression compression = H5Compression::None) {
    write(path, values.data(), {static_cast<hsize_t>(values.size())}, compression);
  }
  // Reads a whole dataset; its shape goes to *shape when given.
  template <H5Element T>
  std::vector<T> read(const std::string& path, std::vector<hsize_t>* shape = nullptr) const;
  // Reads into caller storage; an Error unless the stored shape equals `expected_shape`.
  template <H5Element T>
  void read_into(const std::string& path, T* data, const std::vector<hsize_t>& expected_shape) const;

  // 1-D variable-length UTF-8 string datasets (fixed-length ones are read too).
  void write_strings(const std::string& path, const std::vector<std::string>& values);
  std::vector<std::string> read_strings(const std::string& path) const;

  H5Dataset open_dataset(const std::string& path) const;
  H5DatasetInfo dataset_info(const std::string& path) const { return open_dataset(path).info(); }

 protected:
  friend class H5File;
  using H5Object::H5Object;
};

enum class H5Access { ReadOnly, ReadWrite };

class H5File : public H5Group {
 public:
  static H5File create(const std::string& path);  // creates or truncates
  static H5File open(const std::string& path, H5Access access = H5Access::ReadOnly);
  // A new file held in memory only (HDF5's core driver, no backing store): nothing touches the
  // disk, so no write of it can fail half-way. `name` names it in messages.
  static H5File create_in_memory(const std::string& name);

  // The file's bytes as they would be on disk (flushes first); for create_in_memory files.
  std::vector<unsigned char> image();

  void flush();
  // Closes the file now and reports failure (the destructor closes silently). It is an error to
  // close while groups or datasets of the file are still open.
  void close();

 private:
  using H5Group::H5Group;
};

// Writes a file so that readers see either the old file or the complete new one: `write` fills
// an in-memory file (H5File::create_in_memory) whose bytes are then written to "<path>.tmp-<pid>"
// with plain write(2), fsync'ed and renamed over `path` (and the directory fsync'ed). If `write`
// or any step throws (a full disk: "No space left on device"), the temporary file is removed and
// the exception propagates; `path` is untouched. libhdf5 never writes to the disk here: a flush
// that fails inside H5Fclose leaves a half-closed file in libhdf5's tables, and its exit handler
// then crashed the process (docs/reliability.md). The whole file is held in memory while written
// (about twice its size at the peak).
void write_h5_atomically(const std::string& path, const std::function<void(H5File&)>& write);

// A tidy table: named columns of equal length, each double, int64 or string.
using H5Column = std::variant<std::vector<double>, std::vector<std::int64_t>, std::vector<std::string>>;

class H5Table {
 public:
  void add(const std::string& name, H5Column column);  // error on a duplicate name
  std::size_t rows() const;                              // 0 without columns
  std::size_t column_count() const { return columns_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  bool has(const std::string& name) const;
  const H5Column& column(const std::string& name) const;
  const std::vector<double>& doubles(const std::string& name) const;
  const std::vector<std::int64_t>& ints(const std::string& name) const;
  const std::vector<std::string>& strings(const std::string& name) const;

 private:
  std::vector<std::string> names_;
  std::vector<H5Column> columns_;
};

// Writes `table` as group `parent/name` (replacing an existing one): one 1-D dataset per column
// (float64, int64 or variable-length UTF-8) and the attribute "columns" (1-D strings, the column
// order). Columns of unequal length are an Error. Numeric columns are chunked and deflated when
// `compression` asks for it.
void write_table(H5Group& parent, const std::string& name, const H5Table& table,
                 H5Compression compression = H5Compression::None);
// Reads a table written by write_table (float columns as double, integer columns as int64).
H5Table read_table(const H5Group& parent, const std::string& name);

}  // namespace pimqat
