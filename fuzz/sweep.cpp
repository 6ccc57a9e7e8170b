// Fuzz target: sweep files (runner/sweep.h parse_sweep), their expansion into tasks, and the
// task list the run directory stores (runner/rundir.h).
// Input: YAML text. Includes are resolved in a scratch directory holding two valid files,
// common.yaml (a train/eval base) and synthetic.yaml (a synthetic block).
// Properties: an accepted sweep expands into a consistent task list (validate_task_list: unique
// ids, dependencies present, no cycle), its fingerprint is sweep_fingerprint of its tasks, and
// sweep.expanded.txt written from the tasks reads back to the same ids, kinds and dependencies.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "runner/rundir.h"
#include "runner/sweep.h"

using namespace pimqat;

namespace {

const std::string& include_dir() {
  static const std::string dir = [] {
    const std::string d = fuzz::scratch_path("includes");
    std::filesystem::create_directories(d);
    fuzz::write_file(d + "/common.yaml",
                     "seed: 7\nbase:\n  dataset: {name: fashion-mnist, train_subset: 100, test_subset: 50}\n"
                     "  model: {arch: resnet20, weight_bits: 4, act_bits: 4}\n  train: {epochs: 1}\n"
                     "  pim: {scheme: bit-serial, rows: 144}\n  eval: {dies: 2}\ngrid:\n  pim.train_bits: [4, 7]\n");
    fuzz::write_file(d + "/synthetic.yaml",
                     "task: synthetic\nsynthetic: {duration: 0, failure_probability: 0.5, result: 2, dependents: 1}\n"
                     "grid:\n  synthetic.result: [1, 2]\n");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string& dir = include_dir();
  fuzz::expect_error_or_success("parse_sweep", [&] {
    const runner::Sweep sweep = runner::parse_sweep(text, "fuzz.yaml", dir);
    try {
      runner::validate_task_list(sweep.tasks);
    } catch (const std::exception& e) {
      fuzz::finding("an accepted sweep expanded into an invalid task list: " + std::string(e.what()));
    }
    if (sweep.fingerprint != runner::sweep_fingerprint(sweep.tasks))
      fuzz::finding("Sweep::fingerprint differs from sweep_fingerprint(tasks)");
    if (sweep.tasks.size() > 20000) return;  // the round trip below is linear; keep one input cheap
    const std::string expanded = runner::format_expanded_tasks(sweep.tasks);
    std::vector<runner::ExpandedTask> back;
    try {
      back = runner::parse_expanded_tasks(expanded, "sweep.expanded.txt");
    } catch (const std::exception& e) {
      fuzz::finding("sweep.expanded.txt written for an accepted sweep does not read back: " + std::string(e.what()));
    }
    if (back.size() != sweep.tasks.size()) fuzz::finding("sweep.expanded.txt lost or added tasks");
    for (std::size_t i = 0; i < back.size(); ++i) {
      const runner::ExpandedTask want = runner::expanded_task(sweep.tasks[i]);
      if (back[i].id != want.id || back[i].kind != want.kind || back[i].depends_on != want.depends_on ||
          back[i].replicate != want.replicate || back[i].die != want.die || back[i].axes != want.axes ||
          back[i].canonical != want.canonical)
        fuzz::finding("sweep.expanded.txt changed task " + want.id + " on the way back");
    }
  });
  return 0;
}
