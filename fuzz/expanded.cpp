// Fuzz target: RUN_DIR/sweep.expanded.txt, the task list a run directory keeps (runner/rundir.h
// parse_expanded_tasks). A run directory is outside data on resume: it may be damaged, edited or
// written by another pimqat version.
// Property: an accepted list, formatted again (format_expanded_tasks), parses to the same tasks.
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "runner/rundir.h"

using namespace pimqat;

namespace {

bool same(const runner::ExpandedTask& a, const runner::ExpandedTask& b) {
  return a.id == b.id && a.kind == b.kind && a.depends_on == b.depends_on && a.replicate == b.replicate &&
         a.die == b.die && a.axes == b.axes && a.canonical == b.canonical;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_error_or_success("parse_expanded_tasks", [&] {
    const std::vector<runner::ExpandedTask> tasks = runner::parse_expanded_tasks(text, "sweep.expanded.txt");
    std::vector<runner::TaskSpec> specs;
    for (const runner::ExpandedTask& t : tasks) {
      // Only what format_expanded_tasks can express: a die belongs to eval tasks, an axis name
      // holds no '=' (the separator of name and value) and an id does not start with '#' (a
      // comment line): the format escapes neither (harmless for pimqat's own hex ids and
      // config-key axis names; noted in docs/reliability.md).
      if (t.kind != runner::TaskKind::Eval && t.die != -1) return;
      if (!t.id.empty() && t.id[0] == '#') return;
      for (const auto& [name, value] : t.axes)
        if (name.find('=') != std::string::npos) return;
      runner::TaskSpec spec;
      spec.id = t.id;
      spec.kind = t.kind;
      spec.depends_on = t.depends_on;
      spec.replicate = t.replicate;
      spec.config.eval.first_die = t.die;
      spec.axes = t.axes;
      spec.canonical = t.canonical;
      specs.push_back(spec);
    }
    const auto back = runner::parse_expanded_tasks(runner::format_expanded_tasks(specs), "again");
    if (back.size() != tasks.size()) fuzz::finding("sweep.expanded.txt round trip changed the number of tasks");
    for (std::size_t i = 0; i < back.size(); ++i)
      if (!same(back[i], tasks[i])) fuzz::finding("sweep.expanded.txt round trip changed task " + tasks[i].id);
  });
  return 0;
}
