// fuzz_seeds SOURCE_DIR OUT_DIR: writes the seed corpus of every fuzz target, OUT_DIR/<target>/...,
// from pimqat's own writers (so the seeds are valid files of the current formats) and the
// repository's example and test inputs. fuzz/corpus/ is its committed output; rerun it after a
// file format changes (fuzz/run.sh --seeds).
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/hdf5.h"
#include "fuzz/fuzz_model.h"
#include "fuzz/h5spec.h"
#include "nn/checkpoint.h"
#include "pim/curves.h"
#include "runner/config.h"
#include "runner/journal.h"
#include "runner/results.h"
#include "runner/rundir.h"
#include "runner/status.h"
#include "runner/sweep.h"

using namespace pimqat;
namespace fs = std::filesystem;

namespace {

fs::path g_out;
int g_files = 0;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_out / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error("cannot write " + (dir / name).string());
  ++g_files;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// 16 hex digits: a task id for hand-made seed tasks.
std::string hex_id(int i) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016x", 0xf00d0000u + static_cast<unsigned>(i));
  return buf;
}

std::string u32_be(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string scratch(const std::string& name) { return (fs::temp_directory_path() / ("pimqat-fuzz-seeds-" + name)).string(); }

// h5spec text of the file that `write` creates.
std::string h5_seed(const std::string& name, const std::function<void(const std::string&)>& write) {
  const std::string path = scratch(name + ".h5");
  write(path);
  std::string spec = fuzz::h5spec::dump(path);
  fs::remove(path);
  if (spec.empty()) throw Error("h5spec dump of " + name + " is empty");
  return spec;
}

// ---- text formats ----

void config_seeds(const fs::path& source) {
  put("config", "quickstart-train.yaml", read(source / "configs/quickstart-train.yaml"));
  put("config", "defaults.yaml", runner::to_yaml(ExperimentConfig{}));
  put("config", "pim.yaml",
      "seed: 3\ndataset: {name: cifar10, dir: /data/cifar}\nmodel: {arch: resnet20, weight_bits: 4, act_bits: 4}\n"
      "train: {epochs: 3, schedule: multistep, milestones: [1, 2], lr: 0.05}\n"
      "pim: {scheme: differential, rows: 72, train_bits: 6, rescale: backward}\n"
      "eval: {dies: 4, noise_sigma: 0.5, infer_bits: 5, bn_calibration: 2}\n");
  put("config", "overrides.yaml", std::string("model: {weight_bits: 4, act_bits: 4}\n") + '\0' +
                                      "train.milestones=[30, 60]" + '\0' + "pim.rows=9" + '\0' + "eval.dies=2");
}

void sweep_seeds(const fs::path& source) {
  put("sweep", "quickstart.yaml", read(source / "sweeps/quickstart.yaml"));
  put("sweep", "synthetic.yaml",
      "name: syn\ntask: synthetic\nreplicates: 2\nsynthetic: {duration: 0, failure_probability: 0.2, dependents: 2}\n"
      "grid:\n  synthetic.result: {from: 0, to: 1, step: 0.25}\n");
  put("sweep", "include.yaml", "include: common.yaml\ngrid:\n  eval.infer_bits: [4, 5]\n  eval.noise_sigma: [0, 1]\n");
  put("sweep", "include_synthetic.yaml", "include: [synthetic.yaml]\nreplicates: 3\n");
  put("sweep", "zip.yaml",
      "base: {model: {weight_bits: 4, act_bits: 4}, pim: {scheme: native, rows: 9}, eval: {dies: 2}}\n"
      "grid:\n  pim.enabled: [false, true]\nzip:\n  - {pim.train_bits: [4, 7], eval.infer_bits: [4, 7]}\n"
      "  - {pim: [{rows: 9}, {scheme: bit-serial, rows: 144}, null]}\n");
  for (const auto& entry : fs::directory_iterator(source / "tests/runner/data/bad_sweeps"))
    if (entry.path().extension() == ".yaml") put("sweep", "bad_" + entry.path().filename().string(), read(entry.path()));
}

std::vector<runner::TaskSpec> sample_tasks() {
  std::vector<runner::TaskSpec> tasks =
      runner::parse_sweep(
          "task: synthetic\nsynthetic: {dependents: 1}\ngrid:\n  synthetic.result: [1, 2]\n", "s.yaml", ".")
          .tasks;
  runner::TaskSpec eval;
  eval.id = "00000000000000e1";
  eval.kind = runner::TaskKind::Eval;
  eval.depends_on = tasks.front().id;
  eval.config.eval.first_die = 3;
  eval.canonical = "{\"x\":\"tab\\there\"}";
  eval.axes = {{"eval.noise_sigma", "0.5"}, {"pim", "{rows: 9}"}};
  tasks.push_back(eval);
  return tasks;
}

void expanded_seeds() {
  put("expanded", "synthetic.txt", runner::format_expanded_tasks(sample_tasks()));
  put("expanded", "escapes.txt", "# pimqat expanded tasks\nab\\tc\teval\t\t1\t7\t{}\tk=v\\n\\\\\n");
}

// ---- datasets ----

std::string idx_images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols) {
  std::string s = u32_be(0x803) + u32_be(n) + u32_be(rows) + u32_be(cols);
  for (std::uint32_t i = 0; i < n * rows * cols; ++i) s += static_cast<char>(i * 37);
  return s;
}
std::string idx_labels(std::uint32_t n) {
  std::string s = u32_be(0x801) + u32_be(n);
  for (std::uint32_t i = 0; i < n; ++i) s += static_cast<char>(i % 10);
  return s;
}

void idx_seeds() {
  const std::string images = idx_images(3, 4, 5), labels = idx_labels(3);
  const auto input = [&](std::uint8_t flags) {
    const auto length = static_cast<std::uint16_t>(images.size());
    return std::string(1, static_cast<char>(flags)) + static_cast<char>(length & 0xff) + static_cast<char>(length >> 8) +
           images + labels;
  };
  // Class counts 1 + v * 17 / 2 (fuzz/idx.cpp): v = 9 -> 77 classes, v = 1 -> 9.
  put("idx", "plain", input(9 << 3));
  put("idx", "gzip_both", input(3 | (1 << 3)));
  put("idx", "mnist_dir", input(4 | (9 << 3)));
  put("idx", "mnist_dir_gzip", input(4 | 1 | (9 << 3)));
}

void cifar_seeds() {
  const auto records = [](int n, int label_bytes) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      for (int b = 0; b < label_bytes; ++b) s += static_cast<char>(i % 10);
      for (int k = 0; k < 3 * 32 * 32; ++k) s += static_cast<char>((k * 7 + i) & 0xff);
    }
    return s;
  };
  put("cifar", "cifar10", std::string(1, '\0') + records(2, 1));
  put("cifar", "cifar100_subdir", std::string(1, '\5') + records(2, 2));
  put("cifar", "cifar10_gzip", std::string(1, '\2') + records(1, 1));
}

// ---- curves and characterization ----

pim::TransferCurves sample_curves() {
  const int bits = 3;
  const std::int64_t p_lo = -4, p_hi = 12;
  std::vector<std::vector<double>> codes(2);
  for (std::int64_t p = p_lo; p <= p_hi; ++p) {
    codes[0].push_back(std::min(7.0, std::max(0.0, std::floor(static_cast<double>(p - p_lo) * 7.0 / 16.0 + 0.5))));
    codes[1].push_back(std::min(7.0, std::max(0.0, static_cast<double>(p - p_lo) * 7.0 / 16.0 * 0.97 + 0.1)));
  }
  return pim::TransferCurves(bits, p_lo, p_hi, {"die0_col0", "die0_col1"}, codes, "seed");
}

void curves_seeds() {
  const pim::TransferCurves curves = sample_curves();
  const std::string csv = scratch("curves.csv");
  curves.save_csv(csv);
  put("curves_csv", "two_curves.csv", read(csv));
  fs::remove(csv);
  put("curves_csv", "one_curve.csv", "# comment\nadc_bits,1\np_lo,0\np_hi,2\np,a\n0,0\n1,0.5\n2,1\n");
  put("curves_h5", "curves.spec", h5_seed("curves", [&](const std::string& p) { curves.save_hdf5(p); }));
  put("curves_h5", "simulated_curves.spec", h5_seed("simulated", [&](const std::string& p) {
        curves.save_hdf5(p, [](H5File& f) {
          f.write<std::int64_t>("die", std::vector<std::int64_t>{0, 0});
          f.write<std::int64_t>("column", std::vector<std::int64_t>{0, 1});
        });
      }));
  put("curves_h5", "mac_error.spec", h5_seed("mac_error", [](const std::string& p) {
        write_h5_atomically(p, [](H5File& f) {
          H5Table t;
          t.add("adc_bits", std::vector<std::int64_t>{4, 4, 6, 6});
          t.add("noise_sigma", std::vector<double>{0, 1, 0, 1});
          t.add("scheme", std::vector<std::string>{"bit-serial", "bit-serial", "native", "native"});
          t.add("relative_rms", std::vector<double>{0.1, 0.2, 0.05, 0.07});
          t.add("rho", std::vector<double>{0.9, 0.85, 0.97, 0.95});
          write_table(f, "mac_error", t);
        });
      }));
}

// ---- checkpoints ----

void checkpoint_seeds() {
  fuzz::FuzzModel m = fuzz::make_fuzz_model();
  float v = 0.25f;
  for (nn::Parameter* p : m.model->parameters()) p->value.fill(v += 0.125f);
  nn::CheckpointInfo info;
  info.epochs_done = 2;
  info.complete = false;
  info.config_yaml = "seed: 1\n";
  info.task_id = "0123456789abcdef";
  info.mean = {0.5f};
  info.stddev = {0.25f};
  info.history = {{1, 0.1, 2.0, 30.0, 1.9, 35.0, 1.5}, {2, 0.05, 1.5, 50.0, 1.4, 52.0, 1.4}};
  put("checkpoint", "with_optimizer.spec",
      h5_seed("checkpoint", [&](const std::string& p) { nn::save_checkpoint(p, *m.model, m.optimizer.get(), info); }));
  info.history.clear();
  put("checkpoint", "model_only.spec",
      h5_seed("checkpoint2", [&](const std::string& p) { nn::save_checkpoint(p, *m.model, nullptr, info); }));
}

// ---- results and journal ----

runner::JournalRecord record_of(const runner::ExpandedTask& t, double accuracy) {
  runner::JournalRecord r;
  r.id = t.id;
  r.kind = t.kind;
  r.status = runner::TaskStatus::Done;
  r.attempt = 1;
  r.depends_on = t.depends_on;
  r.replicate = t.replicate;
  r.die = t.die;
  r.axes = t.axes;
  r.canonical = t.canonical;
  r.metrics = {{"accuracy", accuracy}, {"loss", 1 - accuracy}};
  if (t.kind == runner::TaskKind::Train)
    for (int e = 1; e <= 2; ++e) r.curve.push_back({e, 0.1 / e, 1.0 / e, 40.0 * e, 1.1 / e, 38.0 * e, 2.0});
  r.host = "seed-host";
  r.start_time = 1.7e9;
  r.seconds = 1.5;
  return r;
}

// Two TR x two IR x three dies: every view of `pimqat analyze` has something to show.
runner::ResultsInput sample_results() {
  runner::ResultsInput in;
  int n = 0;
  for (const char* tr : {"4", "7"}) {
    runner::ExpandedTask train;
    train.id = hex_id(++n);
    train.kind = runner::TaskKind::Train;
    train.axes = {{"pim.train_bits", tr}};
    train.canonical = std::string("{\"pim.train_bits\":") + tr + "}";
    in.tasks.push_back(train);
    in.records.push_back(record_of(train, 0.8));
    for (const char* ir : {"4", "7"})
      for (int die = 0; die < 3; ++die) {
        runner::ExpandedTask e;
        e.id = hex_id(++n);
        e.kind = runner::TaskKind::Eval;
        e.depends_on = train.id;
        e.die = die;
        e.axes = {{"pim.train_bits", tr}, {"eval.infer_bits", ir}};
        e.canonical = train.canonical + ir + std::to_string(die);
        in.tasks.push_back(e);
        if (n % 5 != 0) in.records.push_back(record_of(e, 0.7 + 0.01 * n));  // some left pending
      }
  }
  in.sweep_text = "grid: {pim.train_bits: [4, 7], eval.infer_bits: [4, 7]}\n";
  in.hosts = {"seed-host"};
  return in;
}

void results_seeds() {
  const runner::ResultsInput in = sample_results();
  put("results", "tr_ir_dies.spec", h5_seed("results", [&](const std::string& p) { runner::write_results(p, in); }));
  runner::ResultsInput synthetic;
  for (const runner::TaskSpec& t : sample_tasks()) synthetic.tasks.push_back(runner::expanded_task(t));
  for (std::size_t i = 0; i + 1 < synthetic.tasks.size(); ++i) synthetic.records.push_back(record_of(synthetic.tasks[i], 0.5));
  put("results", "synthetic.spec", h5_seed("results2", [&](const std::string& p) { runner::write_results(p, synthetic); }));
}

void journal_seeds() {
  const runner::ResultsInput in = sample_results();
  const std::string path = scratch("journal.pjl");
  fs::remove(path);
  {
    runner::JournalWriter w(path, runner::Durability::None);
    for (std::size_t i = 0; i < 3; ++i) w.append(in.records[i]);
    runner::JournalRecord failed = in.records[3];
    failed.status = runner::TaskStatus::Failed;
    failed.message = "synthetic failure";
    failed.metrics.clear();
    w.append(failed);
  }
  const std::string bytes = read(path);
  fs::remove(path);
  put("journal", "four_records.pjl", bytes);
  put("journal", "torn_tail.pjl", bytes.substr(0, bytes.size() - 7));
  put("journal", "header_only.pjl", bytes.substr(0, 16));
  put("journal_record", "train.bin", runner::encode_record(in.records[0]));
  put("journal_record", "eval.bin", runner::encode_record(in.records[1]));
  runner::JournalRecord failed = in.records[2];
  failed.status = runner::TaskStatus::Failed;
  failed.message = "boom";
  put("journal_record", "failed.bin", runner::encode_record(failed));
}

void heartbeat_seeds() {
  runner::Heartbeat h;
  h.pid = 4242;
  h.host = "node-1";
  h.ranks = 3;
  h.started = 1.7e9;
  h.updated = 1.7e9 + 100;
  h.state = "running";
  h.total = 3;
  h.done = 1;
  h.failed = 1;
  h.running = 1;
  h.tasks.push_back({"0000000000000002", "synthetic", 1, "node-2", 1.7e9 + 90, 1});
  put("heartbeat", "running.txt", runner::format_heartbeat(h));
  h.task_timeout = 90;
  put("heartbeat", "budget.txt", runner::format_heartbeat(h));
  h.task_timeout = 0;
  h.state = "finished";
  h.tasks.clear();
  h.running = 0;
  put("heartbeat", "finished.txt", runner::format_heartbeat(h));
  // The input of a finding (fuzz/findings/heartbeat/, tests/runner/regression_status.cpp).
  put("heartbeat", "finding-trailing-byte-future-update.txt",
      "pimqat-heartbeat 1\npid 4242\x10host node-1\nranks 3\nstarted 1700000000.000\nupdated 1700000001003\n"
      "total 3\ndone 1\nfailed 1\nskipped 0\nrunning 0\ndone_at_start 0\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_seeds SOURCE_DIR OUT_DIR\n");
    return 2;
  }
  try {
    const fs::path source = argv[1];
    g_out = argv[2];
    fs::create_directories(g_out);
    config_seeds(source);
    sweep_seeds(source);
    expanded_seeds();
    idx_seeds();
    cifar_seeds();
    curves_seeds();
    checkpoint_seeds();
    results_seeds();
    journal_seeds();
    heartbeat_seeds();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
    return 1;
  }
  std::printf("fuzz_seeds: %d files in %s\n", g_files, argv[2]);
  return 0;
}
