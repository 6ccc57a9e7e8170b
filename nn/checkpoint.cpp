#include "nn/checkpoint.h"

#include <filesystem>

#include "core/hdf5.h"
#include "pimqat/version.h"

namespace pimqat::nn {
namespace {

constexpr const char* kKind = "pimqat-checkpoint";

// "layer1.0.conv1.weight" -> "layer1.0.conv1/weight": one group per layer.
std::string tensor_path(const std::string& root, const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return root + "/" + name;
  return root + "/" + name.substr(0, dot) + "/" + name.substr(dot + 1);
}

std::vector<hsize_t> h5_shape(const Tensor& t) {
  std::vector<hsize_t> shape;
  for (int i = 0; i < t.rank(); ++i) shape.push_back(static_cast<hsize_t>(t.dim(i)));
  return shape;
}

void write_tensor(H5Group& file, const std::string& path, const Tensor& t) {
  file.write<float>(path, t.data(), h5_shape(t));
}

void read_tensor(const H5Group& file, const std::string& path, Tensor& t) {
  file.read_into<float>(path, t.data(), h5_shape(t));
}

std::vector<StateTensor> momentum_of(Sgd* optimizer) { return optimizer ? optimizer->state() : std::vector<StateTensor>{}; }

}  // namespace

void save_checkpoint(const std::string& path, Layer& model, Sgd* optimizer, const CheckpointInfo& info) {
  std::vector<Parameter*> parameters;
  model.collect_parameters(parameters);
  std::vector<StateTensor> state;
  model.collect_state(state);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path().empty()
                                          ? std::filesystem::path(".")
                                          : std::filesystem::path(path).parent_path());
  write_h5_atomically(path, [&](H5File& file) {
    file.set_attr_string("kind", kKind);
    file.set_attr_int("format_version", kFileFormatVersion);
    file.set_attr_string("program_version", kVersion);
    file.set_attr_string("git_commit", kGitCommit);
    file.set_attr_int("epochs_done", info.epochs_done);
    file.set_attr_int("complete", info.complete ? 1 : 0);
    file.set_attr_string("config", info.config_yaml);
    file.set_attr_string("task_id", info.task_id);
    for (const Parameter* p : parameters) write_tensor(file, tensor_path("/model", p->name), p->value);
    for (const StateTensor& s : state) write_tensor(file, tensor_path("/model", s.name), *s.value);
    for (const StateTensor& s : momentum_of(optimizer)) write_tensor(file, tensor_path("/optimizer", s.name), *s.value);
    file.write<float>("/normalization/mean", info.mean);
    file.write<float>("/normalization/stddev", info.stddev);
    H5Table history;
    std::vector<std::int64_t> epoch;
    std::vector<double> lr, train_loss, train_accuracy, test_loss, test_accuracy, seconds;
    for (const EpochStats& e : info.history) {
      epoch.push_back(e.epoch);
      lr.push_back(e.lr);
      train_loss.push_back(e.train_loss);
      train_accuracy.push_back(e.train_accuracy);
      test_loss.push_back(e.test_loss);
      test_accuracy.push_back(e.test_accuracy);
      seconds.push_back(e.seconds);
    }
    history.add("epoch", epoch);
    history.add("lr", lr);
    history.add("train_loss", train_loss);
    history.add("train_accuracy", train_accuracy);
    history.add("test_loss", test_loss);
    history.add("test_accuracy", test_accuracy);
    history.add("seconds", seconds);
    write_table(file, "history", history);
  });
}

namespace {

CheckpointInfo read_info(const H5File& file, const std::string& path) {
  if (!file.has_attr("kind") || file.attr_string("kind") != kKind)
    throw Error("'" + path + "' is not a pimqat checkpoint (no attribute kind = \"" + kKind + "\")");
  const std::int64_t version = file.attr_int("format_version");
  if (version != kFileFormatVersion)
    throw Error("'" + path + "' is a checkpoint of file format version " + std::to_string(version) +
                "; this pimqat (" + kVersion + ") reads version " + std::to_string(kFileFormatVersion));
  CheckpointInfo info;
  info.epochs_done = static_cast<int>(file.attr_int("epochs_done"));
  info.complete = file.attr_int("complete") != 0;
  info.config_yaml = file.attr_string("config");
  info.task_id = file.attr_string("task_id");
  info.mean = file.read<float>("/normalization/mean");
  info.stddev = file.read<float>("/normalization/stddev");
  const H5Table history = read_table(file, "history");
  for (std::size_t i = 0; i < history.rows(); ++i) {
    EpochStats e;
    e.epoch = static_cast<int>(history.ints("epoch")[i]);
    e.lr = history.doubles("lr")[i];
    e.train_loss = history.doubles("train_loss")[i];
    e.train_accuracy = history.doubles("train_accuracy")[i];
    e.test_loss = history.doubles("test_loss")[i];
    e.test_accuracy = history.doubles("test_accuracy")[i];
    e.seconds = history.doubles("seconds")[i];
    info.history.push_back(e);
  }
  return info;
}

}  // namespace

CheckpointInfo read_checkpoint_info(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("checkpoint '" + path + "' does not exist");
  const H5File file = H5File::open(path);
  return read_info(file, path);
}

CheckpointInfo load_checkpoint(const std::string& path, Layer& model, Sgd* optimizer, MissingState missing_state) {
  if (!std::filesystem::exists(path)) throw Error("checkpoint '" + path + "' does not exist");
  const H5File file = H5File::open(path);
  CheckpointInfo info = read_info(file, path);
  std::vector<Parameter*> parameters;
  model.collect_parameters(parameters);
  std::vector<StateTensor> state;
  model.collect_state(state);
  for (Parameter* p : parameters) {
    const std::string where = tensor_path("/model", p->name);
    if (!file.has_dataset(where))
      throw Error("checkpoint '" + path + "' has no " + where +
                  ": it was written for a different model (check model.arch and the dataset)");
    read_tensor(file, where, p->value);
  }
  for (StateTensor& s : state) {
    const std::string where = tensor_path("/model", s.name);
    if (!file.has_dataset(where)) {
      if (missing_state == MissingState::KeepDefault) continue;
      throw Error("checkpoint '" + path + "' has no " + where + ": it was written for a different model");
    }
    read_tensor(file, where, *s.value);
  }
  for (StateTensor& s : momentum_of(optimizer)) {
    const std::string where = tensor_path("/optimizer", s.name);
    if (!file.has_dataset(where)) throw Error("checkpoint '" + path + "' has no optimizer state " + where);
    read_tensor(file, where, *s.value);
  }
  return info;
}

}  // namespace pimqat::nn
