#pragma once
// Builds results.h5 files in the runner's layout (runner/results.cpp, docs/results-format.md)
// from hand-made tasks, so that the analysis is tested against answers known by construction
// without running a sweep (test_analysis does not link the runner).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/hdf5.h"
#include "pimqat/version.h"

namespace pimqat::analysis::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = (std::filesystem::temp_directory_path() /
             ("pimqat-analysis-" + tag + "-" + std::to_string(getpid())))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

using Axes = std::map<std::string, std::string>;

struct FakeTask {
  std::string id, kind, status, depends_on;
  Axes axes;
  int replicate = 0;
  int die = -1;
  double accuracy = std::numeric_limits<double>::quiet_NaN();  // eval: fraction; NaN until done
  std::vector<double> curve;  // train: test accuracy (fraction) per epoch
};

// A sweep's tasks; write() produces results.h5 as the runner would (eval axis columns float64
// when every value is a number, else text; axis columns of /tasks are text).
class FakeSweep {
 public:
  std::string add_train(const Axes& axes, std::vector<double> curve = {0.5, 0.7, 0.8}, int replicate = 0,
                        const std::string& status = "done") {
    FakeTask t;
    t.id = hex_id(tasks_.size());
    t.kind = "train";
    t.status = status;
    t.axes = axes;
    t.replicate = replicate;
    t.curve = status == "done" ? std::move(curve) : std::vector<double>{};
    tasks_.push_back(t);
    return t.id;
  }
  // One eval task per accuracy value (die 0, 1, ...); NaN accuracy = not finished (pending).
  void add_eval(const std::string& train_id, const Axes& axes, const std::vector<double>& accuracy, int replicate = 0,
                const std::string& unfinished_status = "pending") {
    for (std::size_t d = 0; d < accuracy.size(); ++d) {
      FakeTask t;
      t.id = hex_id(tasks_.size());
      t.kind = "eval";
      t.depends_on = train_id;
      t.axes = axes;
      t.replicate = replicate;
      t.die = static_cast<int>(d);
      t.accuracy = accuracy[d];
      t.status = std::isnan(accuracy[d]) ? unfinished_status : "done";
      tasks_.push_back(t);
    }
  }

  struct WriteOptions {
    std::int64_t format_version = kFileFormatVersion;
    bool write_version = true;
    std::set<std::string> drop;  // "table/column" to leave out, or "table" for a whole table
  };

  void write(const std::string& path, const WriteOptions& options) const {
    H5Table tasks, eval, train, curves, synthetic;
    std::set<std::string> axis_names, eval_axis_names, train_axis_names;
    for (const auto& t : tasks_)
      for (const auto& [k, v] : t.axes) {
        axis_names.insert(k);
        if (t.kind == "eval" && t.status == "done") eval_axis_names.insert(k);
        if (t.kind == "train" && t.status == "done") train_axis_names.insert(k);
      }
    {
      std::vector<std::string> id, kind, status, host, depends_on, message;
      std::vector<std::int64_t> attempts, replicate, die;
      std::vector<double> seconds;
      for (const auto& t : tasks_) {
        id.push_back(t.id);
        kind.push_back(t.kind);
        status.push_back(t.status);
        attempts.push_back(t.status == "pending" ? 0 : 1);
        seconds.push_back(1.0);
        host.push_back("h");
        depends_on.push_back(t.depends_on);
        replicate.push_back(t.replicate);
        die.push_back(t.die);
        message.push_back("");
      }
      add(tasks, options, "tasks", "id", std::move(id));
      add(tasks, options, "tasks", "kind", std::move(kind));
      add(tasks, options, "tasks", "status", std::move(status));
      add(tasks, options, "tasks", "attempts", std::move(attempts));
      add(tasks, options, "tasks", "seconds", std::move(seconds));
      add(tasks, options, "tasks", "host", std::move(host));
      add(tasks, options, "tasks", "depends_on", std::move(depends_on));
      add(tasks, options, "tasks", "replicate", std::move(replicate));
      add(tasks, options, "tasks", "die", std::move(die));
      add(tasks, options, "tasks", "message", std::move(message));
      for (const auto& name : axis_names) {
        std::vector<std::string> values;
        for (const auto& t : tasks_) values.push_back(t.axes.count(name) ? t.axes.at(name) : "");
        add(tasks, options, "tasks", name, std::move(values));
      }
    }
    {
      std::vector<const FakeTask*> rows;
      for (const auto& t : tasks_)
        if (t.kind == "eval" && t.status == "done") rows.push_back(&t);
      std::vector<std::string> train_id, eval_id;
      std::vector<std::int64_t> replicate, die;
      std::vector<double> accuracy, loss;
      for (const auto* t : rows) {
        train_id.push_back(t->depends_on);
        eval_id.push_back(t->id);
        replicate.push_back(t->replicate);
        die.push_back(t->die);
        accuracy.push_back(t->accuracy);
        loss.push_back(1 - t->accuracy);
      }
      add(eval, options, "eval", "train_id", std::move(train_id));
      add(eval, options, "eval", "eval_id", std::move(eval_id));
      add(eval, options, "eval", "replicate", std::move(replicate));
      add(eval, options, "eval", "die", std::move(die));
      add_axes(eval, options, "eval", eval_axis_names, rows);
      add(eval, options, "eval", "accuracy", std::move(accuracy));
      add(eval, options, "eval", "loss", std::move(loss));
    }
    {
      std::vector<const FakeTask*> rows;
      for (const auto& t : tasks_)
        if (t.kind == "train" && t.status == "done") rows.push_back(&t);
      std::vector<std::string> train_id, curve_id;
      std::vector<std::int64_t> replicate, epochs, epoch;
      std::vector<double> lr, train_loss, train_accuracy, test_loss, test_accuracy, seconds;
      for (const auto* t : rows) {
        train_id.push_back(t->id);
        replicate.push_back(t->replicate);
        epochs.push_back(static_cast<std::int64_t>(t->curve.size()));
        for (std::size_t e = 0; e < t->curve.size(); ++e) {
          curve_id.push_back(t->id);
          epoch.push_back(static_cast<std::int64_t>(e));
          lr.push_back(0.1);
          train_loss.push_back(2.0 / static_cast<double>(e + 1));
          train_accuracy.push_back(t->curve[e]);
          test_loss.push_back(2.0 / static_cast<double>(e + 1));
          test_accuracy.push_back(t->curve[e]);
          seconds.push_back(1.0);
        }
      }
      add(train, options, "train", "train_id", std::move(train_id));
      add(train, options, "train", "replicate", std::move(replicate));
      add(train, options, "train", "epochs", std::move(epochs));
      add_axes(train, options, "train", train_axis_names, rows);
      add(curves, options, "curves", "train_id", std::move(curve_id));
      add(curves, options, "curves", "epoch", std::move(epoch));
      add(curves, options, "curves", "lr", std::move(lr));
      add(curves, options, "curves", "train_loss", std::move(train_loss));
      add(curves, options, "curves", "train_accuracy", std::move(train_accuracy));
      add(curves, options, "curves", "test_loss", std::move(test_loss));
      add(curves, options, "curves", "test_accuracy", std::move(test_accuracy));
      add(curves, options, "curves", "seconds", std::move(seconds));
    }
    synthetic.add("id", std::vector<std::string>{});
    H5File file = H5File::create(path);
    if (options.write_version) file.set_attr_int("format_version", options.format_version);
    file.set_attr_string("program", "pimqat");
    file.set_attr_string("program_version", "9.9.9-test");
    file.set_attr_string("git_commit", "0123456789ab");
    file.set_attr_string("created", "2024-01-01T00:00:00Z");
    file.set_attr_string("sweep_text", "name: fake\n");
    std::int64_t done = 0;
    for (const auto& t : tasks_) done += t.status == "done";
    file.set_attr_int("tasks_total", static_cast<std::int64_t>(tasks_.size()));
    file.set_attr_int("tasks_done", done);
    file.set_attr_int("tasks_failed", 0);
    for (const auto& [name, table] : {std::pair<std::string, const H5Table*>{"tasks", &tasks}, {"eval", &eval},
                                      {"train", &train}, {"curves", &curves}, {"synthetic", &synthetic}})
      if (!options.drop.count(name)) write_table(file, name, *table);
    file.close();
  }
  void write(const std::string& path) const { write(path, WriteOptions{}); }

 private:
  static std::string hex_id(std::size_t i) {
    char buffer[17];
    std::snprintf(buffer, sizeof buffer, "%016zx", i + 0x1000);
    return buffer;
  }
  static void add(H5Table& table, const WriteOptions& options, const std::string& name, const std::string& column,
                  H5Column values) {
    if (!options.drop.count(name + "/" + column)) table.add(column, std::move(values));
  }
  static void add_axes(H5Table& table, const WriteOptions& options, const std::string& name,
                       const std::set<std::string>& axes, const std::vector<const FakeTask*>& rows) {
    for (const auto& axis : axes) {
      bool numeric = true;
      for (const auto* t : rows) {
        const auto it = t->axes.find(axis);
        if (it == t->axes.end()) continue;
        char* end = nullptr;
        std::strtod(it->second.c_str(), &end);
        if (it->second.empty() || *end != '\0') numeric = false;
      }
      if (numeric) {
        std::vector<double> values;
        for (const auto* t : rows)
          values.push_back(t->axes.count(axis) ? std::strtod(t->axes.at(axis).c_str(), nullptr)
                                               : std::numeric_limits<double>::quiet_NaN());
        add(table, options, name, axis, std::move(values));
      } else {
        std::vector<std::string> values;
        for (const auto* t : rows) values.push_back(t->axes.count(axis) ? t->axes.at(axis) : "");
        add(table, options, name, axis, std::move(values));
      }
    }
  }

  std::vector<FakeTask> tasks_;
};

}  // namespace pimqat::analysis::testing
