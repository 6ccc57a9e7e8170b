#pragma once
// h5spec: a line-based text description of an HDF5 file, so that the HDF5 targets mutate what
// pimqat's readers interpret — object names, attributes, element types, shapes and values — and
// not the on-disk B-trees and heaps, which belong to libhdf5 (docs/reliability.md explains why).
// Files are built with the HDF5 C API directly, independent of core/hdf5 (the code under test).
//
//   g PATH                               a group (missing parents are created)
//   d PATH TYPE SHAPE VALUE...           a dataset
//   a PATH NAME TYPE SHAPE VALUE...      an attribute of the group or dataset at PATH (a group is
//                                        created when nothing is there)
//   # ...                                a comment
// TYPE: f32 f64 i8 i16 i32 i64 u8 u16 u32 u64 (little-endian), f64be, str (variable-length UTF-8),
// fstr (fixed-length). SHAPE: "-" for a scalar, else dimensions joined by 'x' ("3", "2x3", "0").
// The values fill the object in row-major order, repeated cyclically (0 or "" when none is given).
// Tokens are separated by spaces; in tokens %XX is the byte XX and a lone "~" is the empty string.
// A line HDF5 refuses (a name used twice, a bad path) is skipped; a reader sees what the other
// lines built. Bounds keep one input cheap: 256 lines, rank <= 4, 2^16 elements per object.
#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pimqat::fuzz::h5spec {

inline constexpr std::size_t kMaxLines = 256;
inline constexpr int kMaxRank = 4;
inline constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 16;

enum class Kind { Float, Signed, Unsigned, VarString, FixedString };

struct Type {
  const char* name;
  Kind kind;
  std::size_t size;  // bytes per element in memory (strings: set per object)
};

inline const std::vector<Type>& types() {
  static const std::vector<Type> table = {
      {"f32", Kind::Float, 4},     {"f64", Kind::Float, 8},     {"f64be", Kind::Float, 8},
      {"i8", Kind::Signed, 1},     {"i16", Kind::Signed, 2},    {"i32", Kind::Signed, 4},
      {"i64", Kind::Signed, 8},    {"u8", Kind::Unsigned, 1},   {"u16", Kind::Unsigned, 2},
      {"u32", Kind::Unsigned, 4},  {"u64", Kind::Unsigned, 8},  {"str", Kind::VarString, sizeof(char*)},
      {"fstr", Kind::FixedString, 1}};
  return table;
}

inline const Type* find_type(std::string_view name) {
  for (const Type& t : types())
    if (name == t.name) return &t;
  return nullptr;
}

// File type of a numeric type name (a copy the caller closes is not needed: predefined ids).
inline hid_t file_type(std::string_view name) {
  if (name == "f32") return H5T_IEEE_F32LE;
  if (name == "f64") return H5T_IEEE_F64LE;
  if (name == "f64be") return H5T_IEEE_F64BE;
  if (name == "i8") return H5T_STD_I8LE;
  if (name == "i16") return H5T_STD_I16LE;
  if (name == "i32") return H5T_STD_I32LE;
  if (name == "i64") return H5T_STD_I64LE;
  if (name == "u8") return H5T_STD_U8LE;
  if (name == "u16") return H5T_STD_U16LE;
  if (name == "u32") return H5T_STD_U32LE;
  return H5T_STD_U64LE;
}

inline hid_t memory_type(std::string_view name) {
  if (name == "f32") return H5T_NATIVE_FLOAT;
  if (name == "f64" || name == "f64be") return H5T_NATIVE_DOUBLE;
  if (name == "i8") return H5T_NATIVE_INT8;
  if (name == "i16") return H5T_NATIVE_INT16;
  if (name == "i32") return H5T_NATIVE_INT32;
  if (name == "i64") return H5T_NATIVE_INT64;
  if (name == "u8") return H5T_NATIVE_UINT8;
  if (name == "u16") return H5T_NATIVE_UINT16;
  if (name == "u32") return H5T_NATIVE_UINT32;
  return H5T_NATIVE_UINT64;
}

// ---- tokens ----

inline std::string decode_token(std::string_view token) {
  if (token == "~") return {};
  std::string out;
  for (std::size_t i = 0; i < token.size(); ++i) {
    if (token[i] == '%' && i + 2 < token.size()) {
      const char hex[3] = {token[i + 1], token[i + 2], 0};
      char* end = nullptr;
      const long v = std::strtol(hex, &end, 16);
      if (end == hex + 2) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += token[i];
  }
  return out;
}

inline std::string encode_token(std::string_view text) {
  if (text.empty()) return "~";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '%' || c == '~') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

inline std::vector<std::string_view> split_tokens(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) tokens.push_back(line.substr(start, i - start));
  }
  return tokens;
}

// "-" -> scalar (false returned in *simple); "2x3" -> {2, 3}. False when malformed or too big.
inline bool parse_shape(std::string_view text, std::vector<hsize_t>& dims, bool& simple) {
  dims.clear();
  simple = text != "-";
  if (!simple) return true;
  std::uint64_t elements = 1;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t x = std::min(text.find('x', start), text.size());
    const std::string part(text.substr(start, x - start));
    char* end = nullptr;
    const unsigned long long d = std::strtoull(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || d > kMaxElements) return false;
    dims.push_back(d);
    elements *= d == 0 ? 1 : d;
    if (dims.size() > static_cast<std::size_t>(kMaxRank) || elements > kMaxElements) return false;
    start = x + 1;
  }
  return !dims.empty();
}

// The element buffer of `count` elements of `type` from the value tokens (cyclic).
struct Buffer {
  std::vector<unsigned char> bytes;  // numeric and fixed-length strings
  std::vector<std::string> strings;  // variable-length strings
  std::vector<const char*> pointers;
  std::size_t string_size = 1;       // fixed-length strings: bytes per element
};

inline Buffer fill(const Type& type, std::uint64_t count, const std::vector<std::string>& values) {
  Buffer b;
  const auto value = [&](std::uint64_t i) -> std::string { return values.empty() ? std::string() : values[i % values.size()]; };
  if (type.kind == Kind::VarString || type.kind == Kind::FixedString) {
    for (std::uint64_t i = 0; i < count; ++i) b.strings.push_back(value(i));
    if (type.kind == Kind::VarString) {
      for (const auto& s : b.strings) b.pointers.push_back(s.c_str());
    } else {
      for (const auto& s : b.strings) b.string_size = std::max(b.string_size, s.size());
      b.bytes.assign(static_cast<std::size_t>(count) * b.string_size, 0);
      for (std::uint64_t i = 0; i < count; ++i)
        std::memcpy(b.bytes.data() + i * b.string_size, b.strings[i].data(), b.strings[i].size());
    }
    return b;
  }
  b.bytes.assign(static_cast<std::size_t>(count) * type.size, 0);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::string text = value(i);
    unsigned char* dst = b.bytes.data() + i * type.size;
    if (type.kind == Kind::Float) {
      const double v = std::strtod(text.c_str(), nullptr);
      if (type.size == 4) {
        const float f = static_cast<float>(v);
        std::memcpy(dst, &f, 4);
      } else {
        std::memcpy(dst, &v, 8);
      }
    } else {
      // Integers: two's complement, truncated to the element size (little-endian host).
      const std::uint64_t v = type.kind == Kind::Signed ? static_cast<std::uint64_t>(std::strtoll(text.c_str(), nullptr, 10))
                                                        : std::strtoull(text.c_str(), nullptr, 10);
      std::memcpy(dst, &v, type.size);
    }
  }
  return b;
}

// The HDF5 type of a string object (closed by the caller); numeric types are predefined.
inline hid_t string_type(const Type& type, const Buffer& b) {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, type.kind == Kind::VarString ? H5T_VARIABLE : b.string_size);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

// Creates the dataset or attribute described by type/shape/values. `attribute_of` >= 0: an
// attribute named `name` of that object; otherwise a dataset at path `name` in `file`.
inline void create_object(hid_t file, hid_t attribute_of, const std::string& name, const Type& type,
                          std::string_view shape_text, const std::vector<std::string>& values, hid_t lcpl) {
  std::vector<hsize_t> dims;
  bool simple = true;
  if (!parse_shape(shape_text, dims, simple)) return;
  std::uint64_t count = 1;
  for (const hsize_t d : dims) count *= d;
  const hid_t space = simple ? H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr) : H5Screate(H5S_SCALAR);
  if (space < 0) return;
  const Buffer b = fill(type, count, values);
  const bool is_string = type.kind == Kind::VarString || type.kind == Kind::FixedString;
  const hid_t ftype = is_string ? string_type(type, b) : file_type(type.name);
  const hid_t mtype = is_string ? ftype : memory_type(type.name);
  const void* data = type.kind == Kind::VarString ? static_cast<const void*>(b.pointers.data())
                                                  : static_cast<const void*>(b.bytes.data());
  if (attribute_of >= 0) {
    if (H5Aexists(attribute_of, name.c_str()) > 0) H5Adelete(attribute_of, name.c_str());
    const hid_t a = H5Acreate2(attribute_of, name.c_str(), ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
      if (count > 0) H5Awrite(a, mtype, data);
      H5Aclose(a);
    }
  } else {
    const hid_t d = H5Dcreate2(file, name.c_str(), ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
      if (count > 0) H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
      H5Dclose(d);
    }
  }
  if (is_string) H5Tclose(ftype);
  H5Sclose(space);
}

// Builds the file at `path` from `spec` (see above). False if the file could not be created.
inline bool build(std::string_view spec, const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) return false;
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  std::size_t lines = 0;
  std::size_t start = 0;
  while (start < spec.size() && lines < kMaxLines) {
    const std::size_t end = std::min(spec.find('\n', start), spec.size());
    const auto tokens = split_tokens(spec.substr(start, end - start));
    start = end + 1;
    ++lines;
    if (tokens.empty() || tokens[0].starts_with("#")) continue;
    const std::string_view op = tokens[0];
    if (op == "g" && tokens.size() >= 2) {
      const hid_t g = H5Gcreate2(file, decode_token(tokens[1]).c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT);
      if (g >= 0) H5Gclose(g);
    } else if (op == "d" && tokens.size() >= 4) {
      const Type* type = find_type(tokens[2]);
      if (!type) continue;
      std::vector<std::string> values;
      for (std::size_t i = 4; i < tokens.size(); ++i) values.push_back(decode_token(tokens[i]));
      create_object(file, -1, decode_token(tokens[1]), *type, tokens[3], values, lcpl);
    } else if (op == "a" && tokens.size() >= 5) {
      const Type* type = find_type(tokens[3]);
      if (!type) continue;
      const std::string object = decode_token(tokens[1]);
      hid_t o = H5Lexists(file, object.c_str(), H5P_DEFAULT) > 0 || object == "/" ? H5Oopen(file, object.c_str(), H5P_DEFAULT) : -1;
      if (o < 0) {
        const hid_t g = H5Gcreate2(file, object.c_str(), lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g >= 0) H5Gclose(g);
        o = H5Oopen(file, object.c_str(), H5P_DEFAULT);
      }
      if (o < 0) continue;
      std::vector<std::string> values;
      for (std::size_t i = 5; i < tokens.size(); ++i) values.push_back(decode_token(tokens[i]));
      create_object(file, o, decode_token(tokens[2]), *type, tokens[4], values, lcpl);
      H5Oclose(o);
    }
  }
  H5Pclose(lcpl);
  H5Eclear2(H5E_DEFAULT);
  return H5Fclose(file) >= 0;
}

// ---- dump: an existing file as h5spec text (seed corpora are made from real files) ----

namespace detail {

// "TYPE SHAPE v v v" of a dataset or attribute, or "" for a type h5spec has no name for.
inline std::string describe(hid_t type, hid_t space, const std::function<herr_t(hid_t, void*)>& read) {
  std::string shape;
  std::uint64_t count = 1;
  const H5S_class_t sclass = H5Sget_simple_extent_type(space);
  if (sclass == H5S_SCALAR) {
    shape = "-";
  } else if (sclass == H5S_SIMPLE) {
    const int rank = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    for (std::size_t i = 0; i < dims.size(); ++i) {
      shape += (i ? "x" : "") + std::to_string(dims[i]);
      count *= dims[i];
    }
  } else {
    return {};
  }
  std::string out;
  const H5T_class_t tclass = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  if (tclass == H5T_STRING) {
    std::vector<std::string> values;
    if (H5Tis_variable_str(type) > 0) {
      const hid_t mem = H5Tcopy(H5T_C_S1);
      H5Tset_size(mem, H5T_VARIABLE);
      H5Tset_cset(mem, H5Tget_cset(type));
      std::vector<char*> ptrs(static_cast<std::size_t>(count), nullptr);
      if (count && read(mem, ptrs.data()) >= 0)
        for (char* p : ptrs) {
          values.emplace_back(p ? p : "");
          std::free(p);
        }
      H5Tclose(mem);
      out = "str " + shape;
    } else {
      std::vector<char> buf(static_cast<std::size_t>(count) * size + 1, 0);
      const hid_t mem = H5Tcopy(type);
      if (count && read(mem, buf.data()) >= 0)
        for (std::uint64_t i = 0; i < count; ++i) {
          std::string s(buf.data() + i * size, size);
          s.resize(std::strlen(s.c_str()));
          values.push_back(s);
        }
      H5Tclose(mem);
      out = "fstr " + shape;
    }
    for (const auto& v : values) out += " " + encode_token(v);
    return out;
  }
  if (tclass == H5T_FLOAT) {
    std::vector<double> v(static_cast<std::size_t>(count));
    if (count && read(H5T_NATIVE_DOUBLE, v.data()) < 0) return {};
    const bool big = H5Tget_order(type) == H5T_ORDER_BE;
    out = std::string(size == 4 ? "f32" : big ? "f64be" : "f64") + " " + shape;
    char buf[40];
    for (const double x : v) {
      std::snprintf(buf, sizeof buf, " %.17g", x);
      out += buf;
    }
    return out;
  }
  if (tclass == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    out = std::string(is_signed ? "i" : "u") + std::to_string(size * 8) + " " + shape;
    if (is_signed) {
      std::vector<long long> v(static_cast<std::size_t>(count));
      if (count && read(H5T_NATIVE_LLONG, v.data()) < 0) return {};
      for (const long long x : v) out += " " + std::to_string(x);
    } else {
      std::vector<unsigned long long> v(static_cast<std::size_t>(count));
      if (count && read(H5T_NATIVE_ULLONG, v.data()) < 0) return {};
      for (const unsigned long long x : v) out += " " + std::to_string(x);
    }
    return out;
  }
  return {};
}

inline void dump_attributes(hid_t object, const std::string& path, std::string& out) {
  struct Ctx {
    const std::string* path;
    std::string* out;
  } ctx{&path, &out};
  H5Aiterate2(
      object, H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t loc, const char* name, const H5A_info_t*, void* data) -> herr_t {
        auto* c = static_cast<Ctx*>(data);
        const hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
        if (a < 0) return 0;
        const hid_t t = H5Aget_type(a), s = H5Aget_space(a);
        const std::string d = describe(t, s, [&](hid_t mem, void* buf) { return H5Aread(a, mem, buf); });
        if (!d.empty()) *c->out += "a " + encode_token(*c->path) + " " + encode_token(name) + " " + d + "\n";
        H5Sclose(s);
        H5Tclose(t);
        H5Aclose(a);
        return 0;
      },
      &ctx);
}

inline void dump_group(hid_t group, const std::string& path, std::string& out) {
  dump_attributes(group, path, out);
  H5G_info_t info;
  if (H5Gget_info(group, &info) < 0) return;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    char name[1024];
    if (H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0) continue;
    const std::string child = (path == "/" ? "" : path) + "/" + name;
    const hid_t o = H5Oopen(group, name, H5P_DEFAULT);
    if (o < 0) continue;
    if (H5Iget_type(o) == H5I_GROUP) {
      out += "g " + encode_token(child) + "\n";
      dump_group(o, child, out);
    } else if (H5Iget_type(o) == H5I_DATASET) {
      const hid_t t = H5Dget_type(o), s = H5Dget_space(o);
      const std::string d = describe(t, s, [&](hid_t mem, void* buf) { return H5Dread(o, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); });
      if (!d.empty()) out += "d " + encode_token(child) + " " + d + "\n";
      H5Sclose(s);
      H5Tclose(t);
      dump_attributes(o, child, out);
    }
    H5Oclose(o);
  }
}

}  // namespace detail

// The h5spec text of the file at `path` ("" if it cannot be opened). Objects h5spec cannot
// describe (compound or enum types, links to other files) are left out.
inline std::string dump(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return {};
  std::string out;
  detail::dump_group(file, "/", out);
  H5Fclose(file);
  return out;
}

}  // namespace pimqat::fuzz::h5spec
