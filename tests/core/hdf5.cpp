// HDF5 helpers: round trips of every element type, strings, attributes and tables; type and
// shape checks; errors naming the file and object; atomic replacement; readability by h5dump.
#include "core/hdf5.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"

namespace pimqat {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("pimqat_hdf5_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(path_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected a pimqat::Error mentioning '" << needles.front() << "'";
  } catch (const Error& e) {
    for (const auto& needle : needles)
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what() << "\nmissing: " << needle;
  }
}

// Values that exercise a type's range: extremes, zero and an awkward pattern.
template <class T>
std::vector<T> pattern(std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (std::is_floating_point_v<T>)
      v[i] = static_cast<T>((static_cast<double>(i) - 7.25) / 3.0);
    else
      v[i] = static_cast<T>(i * 2654435761u);
  }
  v[0] = std::numeric_limits<T>::lowest();
  v[1] = std::numeric_limits<T>::max();
  v[2] = T{0};
  if constexpr (std::is_floating_point_v<T>) v[3] = std::numeric_limits<T>::denorm_min();
  return v;
}

template <class T>
void round_trip(H5File& file, const std::string& name, const char* type_name) {
  const std::vector<hsize_t> shape = {2, 3, 5};
  const std::vector<T> values = pattern<T>(30);
  file.write(name, values.data(), shape);
  file.write(name + "_deflate", values.data(), shape, H5Compression::Deflate);
  file.write(name + "_1d", values);
  for (const std::string suffix : {"", "_deflate"}) {
    std::vector<hsize_t> got_shape;
    EXPECT_EQ(file.read<T>(name + suffix, &got_shape), values) << name;
    EXPECT_EQ(got_shape, shape);
    const H5DatasetInfo info = file.dataset_info(name + suffix);
    EXPECT_EQ(info.type_name, type_name);
    EXPECT_EQ(info.element_size, sizeof(T));
    EXPECT_EQ(info.elements(), 30u);
  }
  EXPECT_EQ(file.read<T>(name + "_1d"), values);
  EXPECT_EQ(file.dataset_info(name + "_1d").shape, std::vector<hsize_t>{30});
  std::vector<T> into(30);
  file.read_into(name, into.data(), shape);
  EXPECT_EQ(into, values);
}

TEST(Hdf5, RoundTripEveryElementType) {
  TempDir dir;
  const std::string path = dir.file("types.h5");
  {
    H5File file = H5File::create(path);
    round_trip<float>(file, "f32", "float32");
    round_trip<double>(file, "f64", "float64");
    round_trip<std::int32_t>(file, "i32", "int32");
    round_trip<std::int64_t>(file, "i64", "int64");
    round_trip<std::uint8_t>(file, "u8", "uint8");
    round_trip<std::uint64_t>(file, "u64", "uint64");
    file.close();
  }
  // Again from a freshly opened file.
  const H5File file = H5File::open(path);
  EXPECT_EQ(file.read<double>("f64"), pattern<double>(30));
  EXPECT_EQ(file.read<std::uint64_t>("u64_deflate"), pattern<std::uint64_t>(30));
  EXPECT_EQ(file.dataset_info("i32").type_class, H5Class::Integer);
  EXPECT_TRUE(file.dataset_info("i32").is_signed);
  EXPECT_FALSE(file.dataset_info("u8").is_signed);
  EXPECT_EQ(file.dataset_info("f32").type_class, H5Class::Float);
}

TEST(Hdf5, ScalarEmptyAndLargeCompressed) {
  TempDir dir;
  H5File file = H5File::create(dir.file("shapes.h5"));
  const double pi = 3.141592653589793;
  file.write("scalar", &pi, {});
  std::vector<hsize_t> shape = {9};
  EXPECT_EQ(file.read<double>("scalar", &shape), std::vector<double>{pi});
  EXPECT_TRUE(shape.empty());
  file.write("empty", std::vector<float>{}, H5Compression::Deflate);
  EXPECT_TRUE(file.read<float>("empty").empty());
  EXPECT_EQ(file.dataset_info("empty").shape, std::vector<hsize_t>{0});
  // 4 MiB of very compressible floats, awkward trailing size: must round-trip through chunks.
  const std::vector<hsize_t> big = {1031, 1017};
  std::vector<float> values(1031 * 1017);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 1000) * 0.5f;
  file.write("big", values.data(), big, H5Compression::Deflate);
  file.write("big_plain", values.data(), big);
  EXPECT_EQ(file.read<float>("big"), values);
  // The compressed copy takes less space in the file than the contiguous one.
  const auto storage = [&](const char* name) {
    const H5Dataset d = file.open_dataset(name);
    return H5Dget_storage_size(d.id());
  };
  EXPECT_LT(storage("big") * 4, storage("big_plain"));
}

TEST(Hdf5, WideningReadsAllowedNarrowingRejected) {
  TempDir dir;
  const std::string path = dir.file("conv.h5");
  H5File file = H5File::create(path);
  file.write("f32", std::vector<float>{1.5f, -2.25f});
  file.write("u8", std::vector<std::uint8_t>{0, 255});
  file.write("i32", std::vector<std::int32_t>{-7, 1 << 30});
  file.write("i64", std::vector<std::int64_t>{1, 2});
  file.write("u64", std::vector<std::uint64_t>{1, 2});
  file.write("grp/f64", std::vector<double>{0.1});
  EXPECT_EQ(file.read<double>("f32"), (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(file.read<std::int32_t>("u8"), (std::vector<std::int32_t>{0, 255}));
  EXPECT_EQ(file.read<std::int64_t>("i32"), (std::vector<std::int64_t>{-7, 1 << 30}));
  expect_error([&] { file.read<float>("grp/f64"); }, {path, "/grp/f64", "float64", "float32"});
  expect_error([&] { file.read<std::int32_t>("i64"); }, {path, "/i64", "int64", "int32"});
  expect_error([&] { file.read<std::int64_t>("u64"); }, {"/u64", "uint64"});
  expect_error([&] { file.read<std::uint64_t>("i32"); }, {"/i32", "int32", "uint64"});
  expect_error([&] { file.read<double>("i32"); }, {"/i32", "int32", "float64"});
  expect_error([&] { file.read<std::int64_t>("f32"); }, {"/f32", "float32"});
  expect_error([&] { file.read_strings("f32"); }, {"/f32", "string"});
  std::vector<float> two(2);
  expect_error([&] { file.read_into("f32", two.data(), {1, 2}); }, {path, "/f32", "(2,)", "(1, 2)"});
}

TEST(Hdf5, Strings) {
  TempDir dir;
  const std::string path = dir.file("strings.h5");
  const std::vector<std::string> values = {"resnet20", "", "ADC σ=0.024 µ", std::string(1000, 'x'), "a\tb"};
  {
    H5File file = H5File::create(path);
    file.write_strings("names", values);
    file.write_strings("deep/er/none", {});
    file.close();
  }
  const H5File file = H5File::open(path);
  EXPECT_EQ(file.read_strings("names"), values);
  EXPECT_TRUE(file.read_strings("deep/er/none").empty());
  EXPECT_EQ(file.dataset_info("names").type_class, H5Class::String);
  EXPECT_EQ(file.dataset_info("names").type_name, "string");
  expect_error([&] { file.read<double>("names"); }, {path, "/names", "string"});
}

TEST(Hdf5, FixedLengthStringsAreReadToo) {
  // h5py and other writers often store fixed-length, null-padded strings.
  TempDir dir;
  H5File file = H5File::create(dir.file("fixed.h5"));
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), 6);
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  const hsize_t n = 3;
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5Id dataset(H5Dcreate2(file.id(), "fixed", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  const char data[] = "abc\0\0\0sixsixz\0\0\0\0\0";
  ASSERT_GE(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
  dataset.reset();
  EXPECT_EQ(file.read_strings("fixed"), (std::vector<std::string>{"abc", "sixsix", "z"}));
  EXPECT_EQ(file.dataset_info("fixed").type_name, "string6");
}

TEST(Hdf5, AttributesOnFileGroupAndDataset) {
  TempDir dir;
  const std::string path = dir.file("attrs.h5");
  {
    H5File file = H5File::create(path);
    file.set_attr_string("version", "pimqat 0.1 ✓");
    file.set_attr_int("epoch", std::numeric_limits<std::int64_t>::min());
    file.set_attr_double("lr", 0.1);
    H5Group group = file.create_group("model/layer1");
    group.set_attr_strings("columns", {"b", "a", "ç"});
    group.set_attr_strings("none", {});
    group.set_attr_int("big", std::numeric_limits<std::int64_t>::max());
    file.write("model/layer1/weight", std::vector<float>{1, 2, 3});
    H5Dataset weight = file.open_dataset("model/layer1/weight");
    weight.set_attr_double("scale", -1e-300);
    weight.set_attr_string("layout", "");
    // Replacing an attribute with another type.
    weight.set_attr_int("replaced", 3);
    weight.set_attr_string("replaced", "now a string");
  }
  const H5File file = H5File::open(path);
  EXPECT_EQ(file.attr_string("version"), "pimqat 0.1 ✓");
  EXPECT_EQ(file.attr_int("epoch"), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(file.attr_double("lr"), 0.1);
  EXPECT_EQ(file.attr_double("epoch"), static_cast<double>(std::numeric_limits<std::int64_t>::min()));
  EXPECT_EQ(file.attr_names(), (std::vector<std::string>{"epoch", "lr", "version"}));
  EXPECT_TRUE(file.has_attr("lr"));
  EXPECT_FALSE(file.has_attr("nope"));
  const H5Group group = file.open_group("/model/layer1");
  EXPECT_EQ(group.path(), "/model/layer1");
  EXPECT_EQ(group.attr_strings("columns"), (std::vector<std::string>{"b", "a", "ç"}));
  EXPECT_TRUE(group.attr_strings("none").empty());
  EXPECT_EQ(group.attr_int("big"), std::numeric_limits<std::int64_t>::max());
  const H5Dataset weight = group.open_dataset("weight");
  EXPECT_EQ(weight.path(), "/model/layer1/weight");
  EXPECT_EQ(weight.attr_double("scale"), -1e-300);
  EXPECT_EQ(weight.attr_string("layout"), "");
  EXPECT_EQ(weight.attr_string("replaced"), "now a string");
  EXPECT_EQ(weight.shape(), std::vector<hsize_t>{3});
  expect_error([&] { file.attr_string("missing"); }, {path, "missing", "does not exist"});
  expect_error([&] { file.attr_int("lr"); }, {path, "'lr'", "float64"});
  expect_error([&] { file.attr_string("lr"); }, {"'lr'", "strings"});
  expect_error([&] { weight.attr_double("layout"); }, {"/model/layer1/weight", "'layout'"});
  expect_error([&] { group.attr_string("columns"); }, {"/model/layer1", "3 strings"});
}

TEST(Hdf5, Groups) {
  TempDir dir;
  const std::string path = dir.file("groups.h5");
  H5File file = H5File::create(path);
  {
    H5Group c = file.create_group("a/b/c");
    EXPECT_EQ(c.path(), "/a/b/c");
    c.write("data", std::vector<std::int32_t>{4});
  }
  file.create_group("a/zeta");
  file.create_group("a/alpha");
  EXPECT_TRUE(file.exists("a"));
  EXPECT_TRUE(file.exists("a/b"));
  EXPECT_TRUE(file.exists("/a/b/c"));
  EXPECT_TRUE(file.exists("a/b/c/data"));
  EXPECT_FALSE(file.exists("a/x/y"));
  EXPECT_FALSE(file.exists("x"));
  EXPECT_TRUE(file.has_group("a/b"));
  EXPECT_FALSE(file.has_group("a/b/c/data"));
  EXPECT_TRUE(file.has_dataset("a/b/c/data"));
  EXPECT_FALSE(file.has_dataset("a/b"));
  EXPECT_FALSE(file.has_dataset("a/x/data"));
  const H5Group a = file.open_group("a");
  EXPECT_EQ(a.children(), (std::vector<std::string>{"alpha", "b", "zeta"}));
  EXPECT_TRUE(a.exists("b/c"));
  EXPECT_EQ(a.open_group("b").open_group("c").read<std::int32_t>("data"), std::vector<std::int32_t>{4});
  EXPECT_EQ(file.require_group("a/b").path(), "/a/b");
  EXPECT_EQ(file.require_group("a/new/one").path(), "/a/new/one");
  EXPECT_TRUE(file.has_group("a/new"));
  expect_error([&] { file.create_group("a/b"); }, {path, "/a/b", "already"});
  expect_error([&] { file.open_group("a/nope"); }, {path, "/a/nope", "no such group"});
  expect_error([&] { file.open_group("a/b/c/data"); }, {"/a/b/c/data", "not a group"});
  expect_error([&] { file.open_dataset("a/b"); }, {"/a/b", "not a dataset"});
  expect_error([&] { a.read<float>("b/missing"); }, {path, "/a/b/missing", "no such dataset"});
  file.remove("a/zeta");
  EXPECT_EQ(a.children(), (std::vector<std::string>{"alpha", "b", "new"}));
  // Writing a dataset again replaces it (new type and shape).
  file.write("a/b/c/data", std::vector<double>{1.0, 2.0});
  EXPECT_EQ(file.read<double>("a/b/c/data"), (std::vector<double>{1.0, 2.0}));
  // A dataset write creates missing parents.
  file.write("p/q/r", std::vector<std::uint8_t>{9});
  EXPECT_TRUE(file.has_group("p/q"));
  EXPECT_TRUE(H5File::create(dir.file("empty.h5")).children().empty());
}

TEST(Hdf5, Tables) {
  TempDir dir;
  const std::string path = dir.file("table.h5");
  H5Table table;
  table.add("die", std::vector<std::int64_t>{0, 1, 2, 3});
  table.add("accuracy", std::vector<double>{0.91, 0.905, std::nan(""), 0.88});
  table.add("scheme", std::vector<std::string>{"bit-serial", "native", "differential", "é"});
  table.add("adc_bits", std::vector<std::int64_t>{7, 7, 3, 8});
  EXPECT_EQ(table.rows(), 4u);
  expect_error([&] { table.add("die", std::vector<double>{}); }, {"die", "twice"});
  {
    H5File file = H5File::create(path);
    {
      H5Group results = file.create_group("results");
      write_table(results, "evaluations", table, H5Compression::Deflate);
      // Rewriting replaces the whole group.
      write_table(results, "evaluations", table);
    }
    file.close();
  }
  const H5File file = H5File::open(path);
  const H5Group group = file.open_group("results/evaluations");
  EXPECT_EQ(group.attr_strings("columns"), (std::vector<std::string>{"die", "accuracy", "scheme", "adc_bits"}));
  EXPECT_EQ(group.children(), (std::vector<std::string>{"accuracy", "adc_bits", "die", "scheme"}));
  EXPECT_EQ(group.dataset_info("accuracy").type_name, "float64");
  EXPECT_EQ(group.dataset_info("die").type_name, "int64");
  const H5Table back = read_table(file.open_group("results"), "evaluations");
  EXPECT_EQ(back.names(), table.names());
  EXPECT_EQ(back.ints("die"), table.ints("die"));
  EXPECT_EQ(back.ints("adc_bits"), table.ints("adc_bits"));
  EXPECT_EQ(back.strings("scheme"), table.strings("scheme"));
  ASSERT_EQ(back.doubles("accuracy").size(), 4u);
  EXPECT_EQ(back.doubles("accuracy")[1], 0.905);
  EXPECT_TRUE(std::isnan(back.doubles("accuracy")[2]));
  expect_error([&] { back.doubles("die"); }, {"die", "double"});
  expect_error([&] { back.column("nope"); }, {"nope"});
  // Unequal columns are rejected before anything is written.
  H5Table bad;
  bad.add("x", std::vector<double>{1, 2});
  bad.add("y", std::vector<std::string>{"one"});
  H5File rw = H5File::create(dir.file("bad.h5"));
  expect_error([&] { write_table(rw, "t", bad); }, {"'y'", "1 rows", "2"});
  EXPECT_FALSE(rw.exists("t"));
  // A group without the attribute is not a table.
  rw.create_group("plain");
  expect_error([&] { read_table(rw, "plain"); }, {"/plain", "columns"});
  // An empty table round-trips.
  H5Table empty;
  empty.add("nothing", std::vector<double>{});
  write_table(rw, "empty", empty);
  EXPECT_EQ(read_table(rw, "empty").rows(), 0u);
}

TEST(Hdf5, AtomicWriteLeavesNoTemporaryFile) {
  TempDir dir;
  const std::string path = dir.file("results.h5");
  write_h5_atomically(path, [](H5File& f) { f.set_attr_int("generation", 1); });
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"results.h5"});
  EXPECT_EQ(H5File::open(path).attr_int("generation"), 1);
  write_h5_atomically(path, [](H5File& f) {
    f.set_attr_int("generation", 2);
    f.write("g/x", std::vector<double>{1.0});  // groups opened inside are closed by then
  });
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"results.h5"});
  EXPECT_EQ(H5File::open(path).attr_int("generation"), 2);
  // A failing writer leaves the old file and no temporary file.
  EXPECT_THROW(write_h5_atomically(path,
                                   [](H5File& f) {
                                     f.set_attr_int("generation", 3);
                                     throw Error("writer failed");
                                   }),
               Error);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"results.h5"});
  EXPECT_EQ(H5File::open(path).attr_int("generation"), 2);
  // A writer that keeps an object open past close() is reported, not silently flushed later.
  H5Group leaked;
  EXPECT_THROW(write_h5_atomically(path, [&](H5File& f) { leaked = f.create_group("kept"); }), Error);
  leaked = H5Group();
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"results.h5"});
  EXPECT_FALSE(H5File::open(path).exists("kept"));
}

TEST(Hdf5, FileErrors) {
  TempDir dir;
  expect_error([&] { H5File::open(dir.file("absent.h5")); }, {dir.file("absent.h5"), "does not exist"});
  {
    std::ofstream text(dir.file("text.h5"));
    text << "not hdf5 at all\n";
  }
  expect_error([&] { H5File::open(dir.file("text.h5")); }, {dir.file("text.h5"), "not an HDF5 file"});
  expect_error([&] { H5File::create(dir.file("no/such/dir/x.h5")); }, {dir.file("no/such/dir/x.h5"), "cannot create"});
  {
    H5File file = H5File::create(dir.file("ro.h5"));
    file.write("x", std::vector<double>{1.0});
  }
  {
    H5File ro = H5File::open(dir.file("ro.h5"));
    expect_error([&] { ro.write("y", std::vector<double>{1.0}); }, {dir.file("ro.h5"), "/y"});
    expect_error([&] { ro.set_attr_int("a", 1); }, {dir.file("ro.h5"), "'a'"});
  }
  H5File rw = H5File::open(dir.file("ro.h5"), H5Access::ReadWrite);
  rw.write("y", std::vector<double>{2.0});
  EXPECT_EQ(rw.read<double>("y"), std::vector<double>{2.0});
  {
    const H5Group root_copy = rw.open_group("/");
    expect_error([&] { rw.close(); }, {dir.file("ro.h5"), "still open"});
  }
  rw.close();
}

TEST(Hdf5, ReadableByH5dump) {
  if (!fs::exists("/usr/bin/h5dump")) GTEST_SKIP() << "h5dump is not installed";
  TempDir dir;
  const std::string path = dir.file("dump.h5");
  {
    H5File file = H5File::create(path);
    file.set_attr_string("program", "pimqat");
    H5Table table;
    table.add("name", std::vector<std::string>{"a", "b"});
    table.add("value", std::vector<double>{1, 2});
    write_table(file, "table", table);
    file.write("weights", std::vector<float>(100, 0.5f), H5Compression::Deflate);
  }
  const std::string command = "/usr/bin/h5dump -H '" + path + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  EXPECT_EQ(::pclose(pipe), 0) << output;
  for (const char* needle : {"ATTRIBUTE \"program\"", "H5T_CSET_UTF8", "ATTRIBUTE \"columns\"", "DATASET \"value\"",
                             "H5T_IEEE_F64LE", "DATASET \"weights\"", "H5T_IEEE_F32LE"})
    EXPECT_NE(output.find(needle), std::string::npos) << needle << "\n" << output;
}

}  // namespace
}  // namespace pimqat
