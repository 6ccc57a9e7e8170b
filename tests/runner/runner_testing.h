#pragma once
// Helpers of the runner tests: temporary run directories and hand-built task lists.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "runner/task.h"

namespace pimqat::runner::testing {

// A fresh directory named after the running test, removed at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("pimqat-" + std::string(info->test_suite_name()) + "-" + info->name() + tag + "-" +
             std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string hex_id(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A synthetic task whose identity is derived from `i` and `salt`.
inline TaskSpec synthetic_task(int i, double duration = 0, double failure_probability = 0, bool always_fail = false,
                               std::uint64_t salt = 0) {
  TaskSpec t;
  t.kind = TaskKind::Synthetic;
  t.id = hex_id(mix64(0x5eed0000ull + static_cast<std::uint64_t>(i) + (salt << 32)));
  t.canonical = "{\"i\":" + std::to_string(i) + ",\"salt\":" + std::to_string(salt) + "}";
  t.synthetic.duration_seconds = duration;
  t.synthetic.failure_probability = failure_probability;
  t.synthetic.result = 0.5 * i;
  t.synthetic.always_fail = always_fail;
  t.axes = {{"synthetic.result", std::to_string(0.5 * i)}, {"group", i % 3 == 0 ? "a" : "b"}};
  t.replicate = i % 2;
  return t;
}

inline std::vector<TaskSpec> synthetic_sweep(int n, double duration = 0, double failure_probability = 0,
                                             std::uint64_t salt = 0) {
  std::vector<TaskSpec> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back(synthetic_task(i, duration, failure_probability, false, salt));
  return tasks;
}

// A train task and `evals` eval tasks (dies 0..evals-1) depending on it.
inline std::vector<TaskSpec> train_with_evals(int model, int evals) {
  std::vector<TaskSpec> tasks;
  TaskSpec train;
  train.kind = TaskKind::Train;
  train.id = hex_id(mix64(0x7a000000ull + static_cast<std::uint64_t>(model)));
  train.canonical = "{\"model\":" + std::to_string(model) + "}";
  train.axes = {{"pim.train_bits", std::to_string(3 + model)}};
  tasks.push_back(train);
  for (int d = 0; d < evals; ++d) {
    TaskSpec e;
    e.kind = TaskKind::Eval;
    e.id = hex_id(mix64(0xe0000000ull + static_cast<std::uint64_t>(model * 1000 + d)));
    e.canonical = "{\"model\":" + std::to_string(model) + ",\"die\":" + std::to_string(d) + "}";
    e.depends_on = train.id;
    e.config.eval.first_die = d;
    e.config.eval.dies = 1;
    e.axes = {{"pim.train_bits", std::to_string(3 + model)}, {"eval.noise_sigma", d % 2 ? "0.5" : "1"}};
    tasks.push_back(e);
  }
  return tasks;
}

}  // namespace pimqat::runner::testing
