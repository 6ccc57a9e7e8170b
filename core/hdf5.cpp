#include "core/hdf5.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <type_traits>
#include <variant>

#include "core/error.h"

namespace pimqat {
namespace {

namespace fs = std::filesystem;

// HDF5 prints its error stack to stderr unless told not to; the library never prints.
void silence_hdf5() {
  static const bool done = [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
  // The setting is per thread in thread-safe builds: repeat it (cheap) for the calling thread.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

// The innermost message of HDF5's error stack ("" when empty): the most specific reason.
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* error, void* data) -> herr_t {
        auto* out = static_cast<std::string*>(data);
        if (n == 0 && error->desc) *out = error->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason.empty() ? "" : " (HDF5: " + reason + ")";
}

std::string shape_str(const std::vector<hsize_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Native (memory) and standard little-endian (file) types of an element type.
template <class T>
struct ElementTraits;
template <>
struct ElementTraits<float> {
  static hid_t memory() { return H5T_NATIVE_FLOAT; }
  static hid_t file() { return H5T_IEEE_F32LE; }
  static constexpr H5Class kClass = H5Class::Float;
  static constexpr bool kSigned = true;
  static constexpr const char* kName = "float32";
};
template <>
struct ElementTraits<double> {
  static hid_t memory() { return H5T_NATIVE_DOUBLE; }
  static hid_t file() { return H5T_IEEE_F64LE; }
  static constexpr H5Class kClass = H5Class::Float;
  static constexpr bool kSigned = true;
  static constexpr const char* kName = "float64";
};
template <>
struct ElementTraits<std::int32_t> {
  static hid_t memory() { return H5T_NATIVE_INT32; }
  static hid_t file() { return H5T_STD_I32LE; }
  static constexpr H5Class kClass = H5Class::Integer;
  static constexpr bool kSigned = true;
  static constexpr const char* kName = "int32";
};
template <>
struct ElementTraits<std::int64_t> {
  static hid_t memory() { return H5T_NATIVE_INT64; }
  static hid_t file() { return H5T_STD_I64LE; }
  static constexpr H5Class kClass = H5Class::Integer;
  static constexpr bool kSigned = true;
  static constexpr const char* kName = "int64";
};
template <>
struct ElementTraits<std::uint8_t> {
  static hid_t memory() { return H5T_NATIVE_UINT8; }
  static hid_t file() { return H5T_STD_U8LE; }
  static constexpr H5Class kClass = H5Class::Integer;
  static constexpr bool kSigned = false;
  static constexpr const char* kName = "uint8";
};
template <>
struct ElementTraits<std::uint64_t> {
  static hid_t memory() { return H5T_NATIVE_UINT64; }
  static hid_t file() { return H5T_STD_U64LE; }
  static constexpr H5Class kClass = H5Class::Integer;
  static constexpr bool kSigned = false;
  static constexpr const char* kName = "uint64";
};

// Describes an HDF5 datatype.
void describe_type(hid_t type, H5DatasetInfo& info) {
  info.element_size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      info.type_class = H5Class::Integer;
      info.is_signed = H5Tget_sign(type) == H5T_SGN_2;
      info.type_name = (info.is_signed ? "int" : "uint") + std::to_string(8 * info.element_size);
      break;
    case H5T_FLOAT:
      info.type_class = H5Class::Float;
      info.is_signed = true;
      info.type_name = "float" + std::to_string(8 * info.element_size);
      break;
    case H5T_STRING:
      info.type_class = H5Class::String;
      info.type_name = H5Tis_variable_str(type) > 0 ? "string" : "string" + std::to_string(info.element_size);
      break;
    case H5T_COMPOUND:
      info.type_name = "compound";
      break;
    case H5T_ENUM:
      info.type_name = "enum";
      break;
    default:
      info.type_name = "non-numeric";
      break;
  }
}

std::vector<hsize_t> space_shape(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> shape(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space, shape.data(), nullptr);
  return shape;
}

std::uint64_t product(const std::vector<hsize_t>& shape) {
  std::uint64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

// True if data of `stored` type converts to T without loss: same kind and no narrowing.
template <class T>
bool readable_as(const H5DatasetInfo& stored) {
  using Traits = ElementTraits<T>;
  if (stored.type_class != Traits::kClass) return false;
  if (Traits::kClass == H5Class::Float) return stored.element_size <= sizeof(T);
  if (stored.is_signed == Traits::kSigned) return stored.element_size <= sizeof(T);
  return !stored.is_signed && Traits::kSigned && stored.element_size < sizeof(T);
}

H5Id make_space(const std::vector<hsize_t>& shape) {
  const hid_t space = shape.empty() ? H5Screate(H5S_SCALAR)
                                    : H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr);
  return {space, H5Sclose};
}

// A link-creation property list that creates missing parent groups.
H5Id intermediate_groups() {
  H5Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  return lcpl;
}

// A variable-length UTF-8 string type.
H5Id vlen_string_type() {
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

void fsync_path(const std::string& path, bool directory, const std::string& what) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw Error("cannot open '" + path + "' to sync " + what + ": " + std::strerror(errno));
  const int status = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (status != 0) throw Error("cannot sync '" + path + "' to disk: " + std::strerror(err));
}

// Creates (or truncates) `path`, writes `bytes` and fsyncs it; any failure (ENOSPC, EFBIG) is an
// Error naming the file and the system's reason.
void write_file_durably(const std::string& path, const std::vector<unsigned char>& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw Error("cannot create '" + path + "': " + std::strerror(errno));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw Error("cannot write '" + path + "' (" + std::to_string(done) + " of " + std::to_string(bytes.size()) +
                  " bytes written): " + std::strerror(err));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error("cannot sync '" + path + "' to disk: " + std::strerror(err));
  }
  if (::close(fd) != 0) throw Error("cannot close '" + path + "': " + std::strerror(errno));
}

// Reads the strings of an attribute or dataset (variable-length or fixed-length storage).
// `read` performs the H5Aread/H5Dread with the given memory type into the given buffer.
std::vector<std::string> read_string_data(hid_t stored_type, std::uint64_t count,
                                          const std::function<herr_t(hid_t, void*)>& read,
                                          const std::string& where) {
  std::vector<std::string> out;
  out.reserve(count);
  const H5T_cset_t cset = H5Tget_cset(stored_type);
  if (H5Tis_variable_str(stored_type) > 0) {
    H5Id memory_type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memory_type.get(), H5T_VARIABLE);
    H5Tset_cset(memory_type.get(), cset);
    std::vector<char*> pointers(count, nullptr);
    if (count > 0 && read(memory_type.get(), pointers.data()) < 0)
      throw Error(where + ": cannot read strings" + hdf5_reason());
    for (char* p : pointers) out.emplace_back(p ? p : "");
    // Memory of variable-length strings comes from HDF5's allocator: give it back there.
    for (char* p : pointers)
      if (p) H5free_memory(p);
  } else {
    const std::size_t width = H5Tget_size(stored_type);
    H5Id memory_type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memory_type.get(), width);
    H5Tset_cset(memory_type.get(), cset);
    H5Tset_strpad(memory_type.get(), H5Tget_strpad(stored_type));
    std::vector<char> buffer(count * width);
    if (count > 0 && read(memory_type.get(), buffer.data()) < 0)
      throw Error(where + ": cannot read strings" + hdf5_reason());
    for (std::uint64_t i = 0; i < count; ++i) {
      const char* s = buffer.data() + i * width;
      std::size_t length = 0;
      while (length < width && s[length] != '\0') ++length;
      // Space-padded strings (Fortran style) lose their padding.
      if (H5Tget_strpad(stored_type) == H5T_STR_SPACEPAD)
        while (length > 0 && s[length - 1] == ' ') --length;
      out.emplace_back(s, length);
    }
  }
  return out;
}

// Pointers to the characters of `values` for a variable-length string write.
std::vector<const char*> c_strings(const std::vector<std::string>& values) {
  std::vector<const char*> pointers;
  pointers.reserve(values.size());
  for (const auto& v : values) pointers.push_back(v.c_str());
  return pointers;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// H5Id

H5Id& H5Id::operator=(H5Id&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    close_ = other.close_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void H5Id::reset() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = H5I_INVALID_HID;
}

herr_t H5Id::close_checked() {
  herr_t status = 0;
  if (id_ >= 0 && close_) status = close_(id_);
  id_ = H5I_INVALID_HID;
  return status;
}

std::uint64_t H5DatasetInfo::elements() const { return product(shape); }

// ---------------------------------------------------------------------------------------------
// H5Object: attributes

std::string H5Object::child_path(const std::string& child) const {
  if (child.empty()) return path_;
  if (child.front() == '/') return child;
  return path_ == "/" ? "/" + child : path_ + "/" + child;
}

std::string H5Object::where(const std::string& child) const { return "'" + file_ + "':" + child_path(child); }

bool H5Object::has_attr(const std::string& name) const {
  const htri_t exists = H5Aexists(id(), name.c_str());
  if (exists < 0) throw Error(where() + ": cannot look up attribute '" + name + "'" + hdf5_reason());
  return exists > 0;
}

std::vector<std::string> H5Object::attr_names() const {
  std::vector<std::string> names;
  hsize_t position = 0;
  const herr_t status = H5Aiterate2(
      id(), H5_INDEX_NAME, H5_ITER_INC, &position,
      [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->emplace_back(name);
        return 0;
      },
      &names);
  if (status < 0) throw Error(where() + ": cannot list attributes" + hdf5_reason());
  return names;
}

namespace {

// Creates (replacing) an attribute of the given file type and shape and writes `data`.
void write_attribute(hid_t object, const std::string& where, const std::string& name, hid_t file_type,
                     hid_t memory_type, const std::vector<hsize_t>& shape, const void* data) {
  const htri_t exists = H5Aexists(object, name.c_str());
  if (exists > 0 && H5Adelete(object, name.c_str()) < 0)
    throw Error(where + ": cannot replace attribute '" + name + "'" + hdf5_reason());
  H5Id space = make_space(shape);
  H5Id attribute(H5Acreate2(object, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const bool has_data = shape.empty() || product(shape) > 0;
  if (!attribute.valid() || (has_data && H5Awrite(attribute.get(), memory_type, data) < 0))
    throw Error(where + ": cannot write attribute '" + name + "'" + hdf5_reason());
}

struct OpenAttribute {
  H5Id attribute, type, space;
  H5DatasetInfo info;
};

OpenAttribute open_attribute(hid_t object, const std::string& where, const std::string& name) {
  if (H5Aexists(object, name.c_str()) <= 0) throw Error(where + ": attribute '" + name + "' does not exist");
  OpenAttribute a;
  a.attribute = H5Id(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a.attribute.valid()) throw Error(where + ": cannot open attribute '" + name + "'" + hdf5_reason());
  a.type = H5Id(H5Aget_type(a.attribute.get()), H5Tclose);
  a.space = H5Id(H5Aget_space(a.attribute.get()), H5Sclose);
  describe_type(a.type.get(), a.info);
  a.info.shape = space_shape(a.space.get());
  return a;
}

template <class T>
T read_scalar_attribute(hid_t object, const std::string& where, const std::string& name, bool allow_integer) {
  OpenAttribute a = open_attribute(object, where, name);
  const bool kind_ok = a.info.type_class == ElementTraits<T>::kClass ||
                       (allow_integer && a.info.type_class == H5Class::Integer);
  if (!kind_ok || a.info.elements() != 1)
    throw Error(where + ": attribute '" + name + "' is " + a.info.type_name + " of shape " + shape_str(a.info.shape) +
                ", expected a single " + ElementTraits<T>::kName + " value");
  T value{};
  if (H5Aread(a.attribute.get(), ElementTraits<T>::memory(), &value) < 0)
    throw Error(where + ": cannot read attribute '" + name + "' as " + ElementTraits<T>::kName + hdf5_reason());
  return value;
}

}  // namespace

void H5Object::set_attr_string(const std::string& name, const std::string& value) {
  H5Id type = vlen_string_type();
  const char* pointer = value.c_str();
  write_attribute(id(), where(), name, type.get(), type.get(), {}, &pointer);
}

void H5Object::set_attr_int(const std::string& name, std::int64_t value) {
  write_attribute(id(), where(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, {}, &value);
}

void H5Object::set_attr_double(const std::string& name, double value) {
  write_attribute(id(), where(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {}, &value);
}

void H5Object::set_attr_strings(const std::string& name, const std::vector<std::string>& values) {
  H5Id type = vlen_string_type();
  const std::vector<const char*> pointers = c_strings(values);
  write_attribute(id(), where(), name, type.get(), type.get(), {static_cast<hsize_t>(values.size())}, pointers.data());
}

std::string H5Object::attr_string(const std::string& name) const {
  std::vector<std::string> values = attr_strings(name);
  if (values.size() != 1)
    throw Error(where() + ": attribute '" + name + "' holds " + std::to_string(values.size()) +
                " strings, expected a single string");
  return values.front();
}

std::vector<std::string> H5Object::attr_strings(const std::string& name) const {
  OpenAttribute a = open_attribute(id(), where(), name);
  if (a.info.type_class != H5Class::String || a.info.shape.size() > 1)
    throw Error(where() + ": attribute '" + name + "' is " + a.info.type_name + " of shape " + shape_str(a.info.shape) +
                ", expected strings");
  const hid_t attribute = a.attribute.get();
  return read_string_data(
      a.type.get(), a.info.elements(), [&](hid_t memory_type, void* buffer) { return H5Aread(attribute, memory_type, buffer); },
      where() + " attribute '" + name + "'");
}

std::int64_t H5Object::attr_int(const std::string& name) const {
  OpenAttribute a = open_attribute(id(), where(), name);
  if (a.info.type_class == H5Class::Integer && !a.info.is_signed && a.info.element_size >= 8) {
    const auto value = read_scalar_attribute<std::uint64_t>(id(), where(), name, false);
    if (value > static_cast<std::uint64_t>(INT64_MAX))
      throw Error(where() + ": attribute '" + name + "' = " + std::to_string(value) + " does not fit in int64");
    return static_cast<std::int64_t>(value);
  }
  return read_scalar_attribute<std::int64_t>(id(), where(), name, false);
}

double H5Object::attr_double(const std::string& name) const {
  return read_scalar_attribute<double>(id(), where(), name, true);
}

// ---------------------------------------------------------------------------------------------
// H5Dataset

H5DatasetInfo H5Dataset::info() const {
  H5Id type(H5Dget_type(id()), H5Tclose);
  H5Id space(H5Dget_space(id()), H5Sclose);
  if (!type.valid() || !space.valid()) throw Error(where() + ": cannot inspect dataset" + hdf5_reason());
  H5DatasetInfo info;
  describe_type(type.get(), info);
  info.shape = space_shape(space.get());
  return info;
}

// ---------------------------------------------------------------------------------------------
// H5Group

bool H5Group::exists(const std::string& path) const {
  if (path.empty() || path == "/" || path == ".") return true;
  // H5Lexists fails (rather than answering false) when a parent is missing: walk the prefixes.
  std::size_t start = path.front() == '/' ? 1 : 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    const std::string prefix = path.substr(0, slash);
    if (slash > start) {
      const htri_t link = H5Lexists(id(), prefix.c_str(), H5P_DEFAULT);
      if (link <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
      // The link must lead somewhere (a dangling soft link does not count).
      const htri_t object = H5Oexists_by_name(id(), prefix.c_str(), H5P_DEFAULT);
      if (object <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
    }
    start = slash + 1;
  }
  return true;
}

namespace {

H5I_type_t object_type(hid_t location, const std::string& path) {
  H5Id object(H5Oopen(location, path.c_str(), H5P_DEFAULT), H5Oclose);
  if (!object.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return H5I_BADID;
  }
  return H5Iget_type(object.get());
}

}  // namespace

bool H5Group::has_group(const std::string& path) const {
  return exists(path) && object_type(id(), path) == H5I_GROUP;
}

bool H5Group::has_dataset(const std::string& path) const {
  return exists(path) && object_type(id(), path) == H5I_DATASET;
}

H5Group H5Group::open_group(const std::string& path) const {
  if (!exists(path)) throw Error(where(path) + ": no such group");
  if (object_type(id(), path) != H5I_GROUP) throw Error(where(path) + ": is not a group");
  H5Id group(H5Gopen2(id(), path.c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.valid()) throw Error(where(path) + ": cannot open group" + hdf5_reason());
  return H5Group(std::move(group), file_, child_path(path));
}

H5Group H5Group::create_group(const std::string& path) {
  if (exists(path)) throw Error(where(path) + ": cannot create group: the name is already taken");
  H5Id lcpl = intermediate_groups();
  H5Id group(H5Gcreate2(id(), path.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!group.valid()) throw Error(where(path) + ": cannot create group" + hdf5_reason());
  return H5Group(std::move(group), file_, child_path(path));
}

H5Group H5Group::require_group(const std::string& path) {
  return exists(path) ? open_group(path) : create_group(path);
}

std::vector<std::string> H5Group::children() const {
  H5G_info_t info;
  if (H5Gget_info(id(), &info) < 0) throw Error(where() + ": cannot list group" + hdf5_reason());
  std::vector<std::string> names;
  names.reserve(info.nlinks);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t length = H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (length < 0) throw Error(where() + ": cannot list group" + hdf5_reason());
    std::string name(static_cast<std::size_t>(length), '\0');
    H5Lget_name_by_idx(id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), static_cast<std::size_t>(length) + 1,
                       H5P_DEFAULT);
    names.push_back(std::move(name));
  }
  return names;
}

void H5Group::remove(const std::string& path) {
  if (!exists(path)) throw Error(where(path) + ": cannot remove: no such object");
  if (H5Ldelete(id(), path.c_str(), H5P_DEFAULT) < 0) throw Error(where(path) + ": cannot remove" + hdf5_reason());
}

H5Dataset H5Group::open_dataset(const std::string& path) const {
  if (!exists(path)) throw Error(where(path) + ": no such dataset");
  if (object_type(id(), path) != H5I_DATASET) throw Error(where(path) + ": is not a dataset");
  H5Id dataset(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dataset.valid()) throw Error(where(path) + ": cannot open dataset" + hdf5_reason());
  return H5Dataset(std::move(dataset), file_, child_path(path));
}

namespace {

// Chunk shape for a compressed dataset: whole trailing dimensions, as many leading rows as fit
// in 1 MiB (at least one element per dimension).
std::vector<hsize_t> chunk_shape(const std::vector<hsize_t>& shape, std::size_t element_size) {
  const std::uint64_t target = std::max<std::uint64_t>(1, (std::uint64_t{1} << 20) / element_size);
  std::vector<hsize_t> chunk = shape;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    std::uint64_t rest = 1;
    for (std::size_t e = d + 1; e < shape.size(); ++e) rest *= shape[e];
    if (rest >= target) {
      chunk[d] = 1;
      continue;
    }
    chunk[d] = std::max<hsize_t>(1, std::min<hsize_t>(shape[d], target / rest));
    break;
  }
  return chunk;
}

// Creates dataset `path` (replacing one of the same name) and returns it open.
H5Id create_dataset(hid_t location, const std::string& path, const std::string& where, hid_t file_type,
                    const std::vector<hsize_t>& shape, std::size_t element_size, H5Compression compression) {
  if (H5Lexists(location, path.c_str(), H5P_DEFAULT) > 0 && H5Ldelete(location, path.c_str(), H5P_DEFAULT) < 0)
    throw Error(where + ": cannot replace the existing dataset" + hdf5_reason());
  H5Eclear2(H5E_DEFAULT);
  H5Id space = make_space(shape);
  H5Id lcpl = intermediate_groups();
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (compression == H5Compression::Deflate && !shape.empty() && product(shape) > 0) {
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
      throw Error(where + ": the HDF5 library has no deflate filter; write without compression");
    const std::vector<hsize_t> chunk = chunk_shape(shape, element_size);
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), 4);
  }
  H5Id dataset(H5Dcreate2(location, path.c_str(), file_type, space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT),
               H5Dclose);
  if (!dataset.valid()) throw Error(where + ": cannot create dataset" + hdf5_reason());
  return dataset;
}

}  // namespace

template <H5Element T>
void H5Group::write(const std::string& path, const T* data, const std::vector<hsize_t>& shape,
                    H5Compression compression) {
  if (product(shape) > 0 && data == nullptr) throw Error(where(path) + ": no data to write");
  H5Id dataset = create_dataset(id(), path, where(path), ElementTraits<T>::file(), shape, sizeof(T), compression);
  if (product(shape) > 0 && H5Dwrite(dataset.get(), ElementTraits<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw Error(where(path) + ": cannot write " + ElementTraits<T>::kName + " data of shape " + shape_str(shape) +
                hdf5_reason());
}

template <H5Element T>
void H5Group::read_into(const std::string& path, T* data, const std::vector<hsize_t>& expected_shape) const {
  const H5Dataset dataset = open_dataset(path);
  const H5DatasetInfo info = dataset.info();
  if (!readable_as<T>(info))
    throw Error(where(path) + ": holds " + info.type_name + " data, which cannot be read as " + ElementTraits<T>::kName +
                " without loss");
  if (info.shape != expected_shape)
    throw Error(where(path) + ": has shape " + shape_str(info.shape) + ", expected " + shape_str(expected_shape));
  if (info.elements() > 0 &&
      H5Dread(dataset.id(), ElementTraits<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw Error(where(path) + ": cannot read " + info.type_name + " data as " + ElementTraits<T>::kName + hdf5_reason());
}

template <H5Element T>
std::vector<T> H5Group::read(const std::string& path, std::vector<hsize_t>* shape) const {
  const H5DatasetInfo info = dataset_info(path);
  std::vector<T> values(info.elements());
  read_into(path, values.data(), info.shape);
  if (shape) *shape = info.shape;
  return values;
}

#define PIMQAT_H5_INSTANTIATE(T)                                                                             \
  template void H5Group::write<T>(const std::string&, const T*, const std::vector<hsize_t>&, H5Compression); \
  template void H5Group::read_into<T>(const std::string&, T*, const std::vector<hsize_t>&) const;            \
  template std::vector<T> H5Group::read<T>(const std::string&, std::vector<hsize_t>*) const;
PIMQAT_H5_INSTANTIATE(float)
PIMQAT_H5_INSTANTIATE(double)
PIMQAT_H5_INSTANTIATE(std::int32_t)
PIMQAT_H5_INSTANTIATE(std::int64_t)
PIMQAT_H5_INSTANTIATE(std::uint8_t)
PIMQAT_H5_INSTANTIATE(std::uint64_t)
#undef PIMQAT_H5_INSTANTIATE

void H5Group::write_strings(const std::string& path, const std::vector<std::string>& values) {
  H5Id type = vlen_string_type();
  const std::vector<hsize_t> shape = {static_cast<hsize_t>(values.size())};
  H5Id dataset = create_dataset(id(), path, where(path), type.get(), shape, sizeof(char*), H5Compression::None);
  const std::vector<const char*> pointers = c_strings(values);
  if (!values.empty() && H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()) < 0)
    throw Error(where(path) + ": cannot write " + std::to_string(values.size()) + " strings" + hdf5_reason());
}

std::vector<std::string> H5Group::read_strings(const std::string& path) const {
  const H5Dataset dataset = open_dataset(path);
  const H5DatasetInfo info = dataset.info();
  if (info.type_class != H5Class::String || info.shape.size() > 1)
    throw Error(where(path) + ": holds " + info.type_name + " data of shape " + shape_str(info.shape) +
                ", expected a 1-D string dataset");
  H5Id type(H5Dget_type(dataset.id()), H5Tclose);
  const hid_t dataset_id = dataset.id();
  return read_string_data(
      type.get(), info.elements(),
      [&](hid_t memory_type, void* buffer) { return H5Dread(dataset_id, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer); },
      where(path));
}

// ---------------------------------------------------------------------------------------------
// H5File

H5File H5File::create(const std::string& path) {
  silence_hdf5();
  errno = 0;
  H5Id file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (!file.valid()) {
    const int err = errno;
    throw Error("cannot create HDF5 file '" + path + "'" + (err ? std::string(": ") + std::strerror(err) : "") +
                hdf5_reason());
  }
  return H5File(std::move(file), path, "/");
}

H5File H5File::open(const std::string& path, H5Access access) {
  silence_hdf5();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("HDF5 file '" + path + "' does not exist");
  if (fs::is_directory(path, ec)) throw Error("'" + path + "' is a directory, expected an HDF5 file");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) throw Error("'" + path + "' is not an HDF5 file");
  if (is_hdf5 < 0) throw Error("cannot read '" + path + "'" + hdf5_reason());
  H5Id file(H5Fopen(path.c_str(), access == H5Access::ReadOnly ? H5F_ACC_RDONLY : H5F_ACC_RDWR, H5P_DEFAULT),
            H5Fclose);
  if (!file.valid())
    throw Error("cannot open HDF5 file '" + path + "'" + (access == H5Access::ReadWrite ? " for writing" : "") +
                hdf5_reason());
  return H5File(std::move(file), path, "/");
}

H5File H5File::create_in_memory(const std::string& name) {
  silence_hdf5();
  H5Id access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  // 1 MiB growth steps; backing_store = false: the image is never written by libhdf5.
  if (!access.valid() || H5Pset_fapl_core(access.get(), std::size_t{1} << 20, false) < 0)
    throw Error("cannot set up an in-memory HDF5 file for '" + name + "'" + hdf5_reason());
  H5Id file(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose);
  if (!file.valid()) throw Error("cannot create an in-memory HDF5 file for '" + name + "'" + hdf5_reason());
  return H5File(std::move(file), name, "/");
}

std::vector<unsigned char> H5File::image() {
  flush();
  const ssize_t size = H5Fget_file_image(id(), nullptr, 0);
  if (size < 0) throw Error("cannot get the image of HDF5 file '" + file_ + "'" + hdf5_reason());
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  if (H5Fget_file_image(id(), bytes.data(), bytes.size()) != size)
    throw Error("cannot get the image of HDF5 file '" + file_ + "'" + hdf5_reason());
  return bytes;
}

void H5File::flush() {
  if (H5Fflush(id(), H5F_SCOPE_GLOBAL) < 0) throw Error("cannot flush HDF5 file '" + file_ + "'" + hdf5_reason());
}

void H5File::close() {
  if (!id_.valid()) return;
  const ssize_t open_objects = H5Fget_obj_count(id(), H5F_OBJ_ALL | H5F_OBJ_LOCAL);
  if (open_objects > 1)
    throw Error("cannot close HDF5 file '" + file_ + "': " + std::to_string(open_objects - 1) +
                " of its groups, datasets or attributes are still open");
  if (id_.close_checked() < 0) throw Error("cannot close HDF5 file '" + file_ + "'" + hdf5_reason());
}

void write_h5_atomically(const std::string& path, const std::function<void(H5File&)>& write) {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  try {
    std::vector<unsigned char> bytes;
    {
      H5File file = H5File::create_in_memory(temporary);
      write(file);
      bytes = file.image();
      file.close();
    }
    write_file_durably(temporary, bytes);
  } catch (...) {
    std::error_code ec;
    fs::remove(temporary, ec);
    throw;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::error_code ec;
    fs::remove(temporary, ec);
    throw Error("cannot rename '" + temporary + "' to '" + path + "': " + std::strerror(err));
  }
  fs::path directory = fs::path(path).parent_path();
  if (directory.empty()) directory = ".";
  fsync_path(directory.string(), true, "the rename");
}

// ---------------------------------------------------------------------------------------------
// Tables

void H5Table::add(const std::string& name, H5Column column) {
  if (name.empty() || name.find('/') != std::string::npos || name == ".")
    throw Error("table column name '" + name + "' is not valid (non-empty, no '/')");
  if (has(name)) throw Error("table column '" + name + "' is added twice");
  names_.push_back(name);
  columns_.push_back(std::move(column));
}

std::size_t H5Table::rows() const {
  if (columns_.empty()) return 0;
  return std::visit([](const auto& values) { return values.size(); }, columns_.front());
}

bool H5Table::has(const std::string& name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

const H5Column& H5Table::column(const std::string& name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it == names_.end()) throw Error("table has no column '" + name + "'");
  return columns_[static_cast<std::size_t>(it - names_.begin())];
}

namespace {

template <class V>
const V& column_as(const H5Table& table, const std::string& name, const char* kind) {
  const H5Column& column = table.column(name);
  if (!std::holds_alternative<V>(column)) throw Error("table column '" + name + "' is not a " + kind + " column");
  return std::get<V>(column);
}

}  // namespace

const std::vector<double>& H5Table::doubles(const std::string& name) const {
  return column_as<std::vector<double>>(*this, name, "double");
}
const std::vector<std::int64_t>& H5Table::ints(const std::string& name) const {
  return column_as<std::vector<std::int64_t>>(*this, name, "int64");
}
const std::vector<std::string>& H5Table::strings(const std::string& name) const {
  return column_as<std::vector<std::string>>(*this, name, "string");
}

void write_table(H5Group& parent, const std::string& name, const H5Table& table, H5Compression compression) {
  const std::size_t rows = table.rows();
  for (const auto& column : table.names()) {
    const std::size_t length = std::visit([](const auto& values) { return values.size(); }, table.column(column));
    if (length != rows)
      throw Error("table '" + name + "': column '" + column + "' has " + std::to_string(length) + " rows, column '" +
                  table.names().front() + "' has " + std::to_string(rows) + "; all columns must have the same length");
  }
  if (parent.exists(name)) parent.remove(name);
  H5Group group = parent.create_group(name);
  for (const auto& column : table.names()) {
    std::visit(
        [&](const auto& values) {
          using V = std::decay_t<decltype(values)>;
          if constexpr (std::is_same_v<V, std::vector<std::string>>)
            group.write_strings(column, values);
          else
            group.write(column, values, compression);
        },
        table.column(column));
  }
  group.set_attr_strings("columns", table.names());
}

H5Table read_table(const H5Group& parent, const std::string& name) {
  const H5Group group = parent.open_group(name);
  if (!group.has_attr("columns"))
    throw Error("'" + group.file_path() + "':" + group.path() + ": is not a table (no 'columns' attribute)");
  H5Table table;
  for (const auto& column : group.attr_strings("columns")) {
    if (!group.has_dataset(column))
      throw Error("'" + group.file_path() + "':" + group.path() + ": column '" + column +
                  "' is listed in 'columns' but has no dataset");
    const H5DatasetInfo info = group.dataset_info(column);
    if (info.shape.size() != 1)
      throw Error("'" + group.file_path() + "':" + group.path() + "/" + column + ": a table column must be 1-D, has shape " +
                  shape_str(info.shape));
    switch (info.type_class) {
      case H5Class::Float:
        table.add(column, group.read<double>(column));
        break;
      case H5Class::Integer:
        table.add(column, group.read<std::int64_t>(column));
        break;
      case H5Class::String:
        table.add(column, group.read_strings(column));
        break;
      case H5Class::Other:
        throw Error("'" + group.file_path() + "':" + group.path() + "/" + column + ": column of unsupported type " +
                    info.type_name);
    }
    const std::size_t length = std::visit([](const auto& values) { return values.size(); }, table.column(column));
    if (length != table.rows())
      throw Error("'" + group.file_path() + "':" + group.path() + ": column '" + column + "' has " +
                  std::to_string(length) + " rows, expected " + std::to_string(table.rows()));
  }
  return table;
}

}  // namespace pimqat
