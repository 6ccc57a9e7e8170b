#include "runner/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"

namespace pimqat::runner {

DatasetShape dataset_shape(const DataConfig& data) {
  DatasetShape s;
  if (data.name == "fashion-mnist" || data.name == "mnist") {
    s = {1, 28, 28, 10, 60000, 10000};
  } else if (data.name == "cifar10") {
    s = {3, 32, 32, 10, 50000, 10000};
  } else if (data.name == "cifar100") {
    s = {3, 32, 32, 100, 50000, 10000};
  } else {
    throw Error("dataset_shape: unknown dataset `" + data.name + "` (valid: fashion-mnist, mnist, cifar10, cifar100)");
  }
  if (data.train_subset > 0) s.train_images = std::min(s.train_images, data.train_subset);
  if (data.test_subset > 0) s.test_images = std::min(s.test_images, data.test_subset);
  return s;
}

std::int64_t forward_macs(const ModelConfig& model, const DatasetShape& shape) {
  int depth = 0;
  if (model.arch == "resnet20") depth = 20;
  else if (model.arch == "resnet32") depth = 32;
  else if (model.arch == "resnet44") depth = 44;
  else if (model.arch == "resnet56") depth = 56;
  else throw Error("forward_macs: unknown architecture `" + model.arch + "` (valid: resnet20, resnet32, resnet44, resnet56)");
  const std::int64_t blocks = (depth - 2) / 6;  // per stage
  // A 3x3 convolution, C_in -> C_out, on an H x W output: H W C_out C_in 9 MACs.
  auto conv = [](std::int64_t h, std::int64_t w, std::int64_t c_in, std::int64_t c_out, std::int64_t k) {
    return h * w * c_out * c_in * k * k;
  };
  std::int64_t h = shape.height, w = shape.width;
  std::int64_t macs = conv(h, w, shape.channels, 16, 3);  // the first convolution
  std::int64_t channels = 16;
  for (int stage = 0; stage < 3; ++stage) {
    const std::int64_t width = 16 << stage;
    for (std::int64_t b = 0; b < blocks; ++b) {
      if (stage > 0 && b == 0) {
        // Stride 2, padding 1: out = floor((in - 1) / 2) + 1, the same for the 1x1 shortcut.
        h = (h - 1) / 2 + 1;
        w = (w - 1) / 2 + 1;
        macs += conv(h, w, channels, width, 3) + conv(h, w, width, width, 3) + conv(h, w, channels, width, 1);
      } else {
        macs += 2 * conv(h, w, width, width, 3);
      }
      channels = width;
    }
  }
  return macs + channels * shape.classes;  // the linear layer after global average pooling
}

double train_task_macs(const ExperimentConfig& config) {
  const DatasetShape shape = dataset_shape(config.data);
  const double f = static_cast<double>(forward_macs(config.model, shape));
  return config.train.epochs * (3.0 * static_cast<double>(shape.train_images) + static_cast<double>(shape.test_images)) * f;
}

double eval_task_macs(const ExperimentConfig& config) {
  const DatasetShape shape = dataset_shape(config.data);
  const double f = static_cast<double>(forward_macs(config.model, shape));
  const double calibration = static_cast<double>(config.eval.bn_calibration) * config.eval.batch_size;
  return (static_cast<double>(shape.test_images) + calibration) * f;
}

namespace {
double task_macs(const TaskSpec& t) {
  switch (t.kind) {
    case TaskKind::Train: return train_task_macs(t.config);
    case TaskKind::Eval: return eval_task_macs(t.config);
    case TaskKind::Synthetic: return 0;
  }
  return 0;
}
}  // namespace

Plan make_plan(const Sweep& sweep, const std::string& run_dir, const FinishedTaskIds& finished) {
  Plan p;
  p.name = sweep.name;
  p.source = sweep.files.empty() ? "" : sweep.files.front().path;
  p.fingerprint = sweep.fingerprint;
  p.kind = sweep.kind;
  p.seed = sweep.seed;
  p.replicates = sweep.replicates;
  p.grid_points = sweep.grid_points;
  p.axes = sweep.axes;
  p.run_dir = run_dir;
  std::set<std::string> done;
  if (!run_dir.empty()) {
    p.run_dir_exists = std::filesystem::is_directory(run_dir);
    if (finished) {
      p.done_known = true;
      if (p.run_dir_exists) done = finished(run_dir);
    }
  }
  std::size_t matched = 0;
  for (const TaskSpec& t : sweep.tasks) {
    const double macs = task_macs(t);
    const bool is_done = done.count(t.id) != 0;
    matched += is_done;
    if (!is_done) p.remaining_macs += macs;
    switch (t.kind) {
      case TaskKind::Train:
        ++p.train_tasks;
        p.train_macs += macs;
        p.done_train += is_done;
        break;
      case TaskKind::Eval:
        ++p.eval_tasks;
        p.eval_macs += macs;
        p.done_eval += is_done;
        break;
      case TaskKind::Synthetic:
        ++p.synthetic_tasks;
        p.synthetic_seconds += t.synthetic.duration_seconds;
        p.done_synthetic += is_done;
        break;
    }
  }
  p.done_foreign = done.size() - matched;
  return p;
}

std::string si_number(double value) {
  static const char* kPrefix[] = {"", " k", " M", " G", " T", " P", " E"};
  int power = 0;
  double v = value;
  while (std::fabs(v) >= 999.5 && power < 6) {
    v /= 1000;
    ++power;
  }
  char buffer[64];
  if (power == 0) std::snprintf(buffer, sizeof buffer, "%.0f", v);
  else std::snprintf(buffer, sizeof buffer, "%.3g%s", v, kPrefix[power]);
  return buffer;
}

namespace {
std::string fixed1(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.1f", value);
  return buffer;
}

std::string significant3(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3g", value);
  return buffer;
}

// "1.23 PMAC", "500 MAC".
std::string quantity(double value, const std::string& unit) {
  std::string text = si_number(value);
  if (text.find(' ') == std::string::npos) text += ' ';
  return text + unit;
}

std::string core_hours(double macs) {
  const double hours = macs / kAssumedMacsPerCoreSecond / 3600.0;
  return hours < 0.1 ? fixed1(hours * 60) + " core-minutes" : significant3(hours) + " core-hours";
}

std::string values_text(const SweepAxis& axis) {
  std::string out;
  for (std::size_t i = 0; i < axis.labels.size(); ++i) {
    if (i == 6 && axis.labels.size() > 8) {
      out += ", ..., " + axis.labels.back();
      break;
    }
    out += (i ? ", " : "") + axis.labels[i];
  }
  return out;
}
}  // namespace

std::string format_plan(const Plan& p) {
  std::string out = "sweep " + p.name + (p.source.empty() ? "" : " (" + p.source + ")") + ": seed " +
                    std::to_string(p.seed) + ", fingerprint " + p.fingerprint + "\n";
  // Axes: grid axes one per line, zip groups with their members.
  std::size_t width = 0;
  // Zip members are indented 2 more: pad every path so that the counts line up in one column.
  const auto indented = [](const SweepAxis& a) { return a.path.size() + (a.zip_group >= 0 ? 2 : 0); };
  for (const auto& a : p.axes) width = std::max(width, indented(a));
  out += "axes (" + std::to_string(p.grid_points) + " grid point" + (p.grid_points == 1 ? "" : "s") + "):\n";
  if (p.axes.empty()) out += "  none\n";
  int last_group = -1;
  for (const auto& a : p.axes) {
    if (a.zip_group >= 0 && a.zip_group != last_group) out += "  zip group " + std::to_string(a.zip_group + 1) + ":\n";
    last_group = a.zip_group;
    std::string line = (a.zip_group >= 0 ? "    " : "  ") + a.path;
    line += std::string(width + 2 - indented(a), ' ');
    line += std::to_string(a.labels.size()) + (a.labels.size() == 1 ? " value:  " : " values: ") + values_text(a);
    if (p.kind == SweepKind::TrainEval && !a.affects_training) line += "   (evaluation only)";
    out += line + "\n";
  }
  const std::string replicates = p.replicates > 1 ? ", " + std::to_string(p.replicates) + " replicates" : "";
  if (p.kind == SweepKind::Synthetic) {
    out += "tasks: " + std::to_string(p.synthetic_tasks) + " synthetic" + replicates + "\n";
    out += "cost estimate: " + fixed1(p.synthetic_seconds) + " s of synthetic task time\n";
  } else {
    out += "tasks: " + std::to_string(p.train_tasks) + " train + " + std::to_string(p.eval_tasks) + " eval = " +
           std::to_string(p.total_tasks()) + replicates + "\n";
    out += "cost estimate: train " + quantity(p.train_macs, "MAC") + ", eval " + quantity(p.eval_macs, "MAC") + "; about " +
           core_hours(p.train_macs + p.eval_macs) + " at " + quantity(kAssumedMacsPerCoreSecond, "MAC/s") +
           " per core (docs/sweeps.md)\n";
  }
  if (!p.run_dir.empty()) {
    if (!p.run_dir_exists) {
      out += "run directory " + p.run_dir + ": does not exist yet (nothing done)\n";
    } else if (!p.done_known) {
      out += "run directory " + p.run_dir + ": exists; the number of finished tasks is not available\n";
    } else {
      out += "run directory " + p.run_dir + ": " + std::to_string(p.done_tasks()) + " of " + std::to_string(p.total_tasks()) +
             " tasks done";
      if (p.kind == SweepKind::TrainEval)
        out += " (" + std::to_string(p.done_train) + " train, " + std::to_string(p.done_eval) + " eval)";
      if (p.kind == SweepKind::TrainEval && p.done_tasks() < p.total_tasks())
        out += "; remaining about " + core_hours(p.remaining_macs);
      out += "\n";
      if (p.done_foreign > 0)
        out += "  note: " + std::to_string(p.done_foreign) +
               " finished tasks in its journal are not tasks of this sweep (a different sweep ran there)\n";
    }
  }
  return out;
}

std::string format_task_list(const Sweep& sweep) {
  auto kind = [](TaskKind k) {
    switch (k) {
      case TaskKind::Train: return "train";
      case TaskKind::Eval: return "eval";
      case TaskKind::Synthetic: return "synthetic";
    }
    return "";
  };
  std::string out = "# id\tkind\treplicate\tdie\tdepends_on\taxes\n";
  for (const TaskSpec& t : sweep.tasks) {
    out += t.id + "\t" + kind(t.kind) + "\t" + std::to_string(t.replicate) + "\t" +
           (t.kind == TaskKind::Eval ? std::to_string(t.config.eval.first_die) : "-") + "\t" +
           (t.depends_on.empty() ? "-" : t.depends_on) + "\t";
    std::string axes;
    for (const auto& [path, value] : t.axes) axes += (axes.empty() ? "" : " ") + path + "=" + value;
    out += axes + "\n";
  }
  return out;
}

}  // namespace pimqat::runner
