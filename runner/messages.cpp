#include "runner/messages.h"

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>
#include <sstream>

#include "core/error.h"

// Every field of the structs below must be serialized, or a worker silently runs a task with a
// default value. These size checks stop the build when a struct changes: add the new field to
// its serialize() below, then update the size.
static_assert(sizeof(pimqat::DataConfig) == 88, "DataConfig changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::ModelConfig) == 48, "ModelConfig changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::TrainConfig) == 88, "TrainConfig changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::PimConfig) == 32, "PimConfig changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::EvalConfig) == 96, "EvalConfig changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::ExperimentConfig) == 360,
              "ExperimentConfig changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::runner::SyntheticSpec) == 32,
              "SyntheticSpec changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::runner::TaskSpec) == 552, "TaskSpec changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::runner::EpochRecord) == 56,
              "EpochRecord changed: update serialize() in runner/messages.cpp");
static_assert(sizeof(pimqat::runner::TaskResult) == 200,
              "TaskResult changed: update serialize() in runner/messages.cpp");

namespace boost::serialization {

template <class Archive>
void serialize(Archive& ar, pimqat::DataConfig& c, unsigned) {
  ar & c.name & c.dir & c.train_subset & c.test_subset & c.crop_padding & c.flip;
}
template <class Archive>
void serialize(Archive& ar, pimqat::ModelConfig& c, unsigned) {
  ar & c.arch & c.weight_bits & c.act_bits & c.first_last_weight_bits & c.alpha_init;
}
template <class Archive>
void serialize(Archive& ar, pimqat::TrainConfig& c, unsigned) {
  ar & c.epochs & c.batch_size & c.lr & c.momentum & c.nesterov & c.weight_decay & c.schedule & c.milestones &
      c.gamma & c.warmup_epochs & c.threads;
}
template <class Archive>
void serialize(Archive& ar, pimqat::PimConfig& c, unsigned) {
  ar & c.enabled & c.scheme & c.rows & c.train_bits & c.rescale & c.adc_clip;
}
template <class Archive>
void serialize(Archive& ar, pimqat::EvalConfig& c, unsigned) {
  ar & c.infer_bits & c.dies & c.first_die & c.noise_sigma & c.gain_sigma & c.offset_sigma & c.curve &
      c.curve_strength & c.curve_file & c.bn_calibration & c.batch_size;
}
template <class Archive>
void serialize(Archive& ar, pimqat::ExperimentConfig& c, unsigned) {
  ar & c.seed & c.data & c.model & c.train & c.pim & c.eval;
}
template <class Archive>
void serialize(Archive& ar, pimqat::runner::SyntheticSpec& s, unsigned) {
  ar & s.duration_seconds & s.failure_probability & s.result & s.always_fail;
}
template <class Archive>
void serialize(Archive& ar, pimqat::runner::TaskSpec& t, unsigned) {
  ar & t.id & t.kind & t.canonical & t.depends_on & t.config & t.synthetic & t.axes & t.replicate;
}
template <class Archive>
void serialize(Archive& ar, pimqat::runner::EpochRecord& e, unsigned) {
  ar & e.epoch & e.lr & e.train_loss & e.train_accuracy & e.test_loss & e.test_accuracy & e.seconds;
}
template <class Archive>
void serialize(Archive& ar, pimqat::runner::TaskResult& r, unsigned) {
  ar & r.id & r.status & r.attempt & r.message & r.retryable & r.metrics & r.curve & r.host & r.start_time & r.seconds;
}
template <class Archive>
void serialize(Archive& ar, pimqat::runner::TaskAssignment& a, unsigned) {
  ar & a.spec & a.attempt & a.sweep_seed;
}
template <class Archive>
void serialize(Archive& ar, pimqat::runner::WorkerMessage& m, unsigned) {
  ar & m.type & m.host & m.result;
}
template <class Archive>
void serialize(Archive& ar, pimqat::runner::StopMessage& m, unsigned) {
  ar & m.exit_code;
}

}  // namespace boost::serialization

namespace pimqat::runner {
namespace {

// no_header: both ends are this binary; the archive's own header would only add bytes.
constexpr unsigned kArchiveFlags = boost::archive::no_header;

template <class T>
std::string to_bytes(const T& value) {
  std::ostringstream out(std::ios::binary);
  {
    boost::archive::binary_oarchive archive(out, kArchiveFlags);
    archive << value;
  }
  return std::move(out).str();
}

template <class T>
T from_bytes(const std::string& bytes, const char* what) {
  T value;
  try {
    std::istringstream in(bytes, std::ios::binary);
    boost::archive::binary_iarchive archive(in, kArchiveFlags);
    archive >> value;
  } catch (const std::exception& e) {
    throw Error(std::string("malformed ") + what + " message (" + std::to_string(bytes.size()) + " bytes): " + e.what());
  }
  return value;
}

}  // namespace

std::string serialize(const TaskAssignment& message) { return to_bytes(message); }
std::string serialize(const WorkerMessage& message) { return to_bytes(message); }
std::string serialize(const StopMessage& message) { return to_bytes(message); }
TaskAssignment deserialize_assignment(const std::string& bytes) { return from_bytes<TaskAssignment>(bytes, "task"); }
WorkerMessage deserialize_worker_message(const std::string& bytes) {
  return from_bytes<WorkerMessage>(bytes, "worker");
}
StopMessage deserialize_stop(const std::string& bytes) { return from_bytes<StopMessage>(bytes, "stop"); }

}  // namespace pimqat::runner
