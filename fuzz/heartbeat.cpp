// Fuzz target: RUN_DIR/heartbeat.txt as `pimqat status DIR` reads it (runner/status.h
// parse_heartbeat, read_sweep_status, format_sweep_status). The heartbeat comes from a process
// that may have been killed in the middle of anything, or from another pimqat version.
// Input: the heartbeat text; the scratch run directory also holds a small valid task list and
// journal, so that read_sweep_status combines all three.
// Property: an accepted heartbeat, formatted again, parses to text that formats the same (for
// heartbeats whose texts are single words and whose times are plausible Unix times, as a
// coordinator writes them).
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "runner/journal.h"
#include "runner/rundir.h"
#include "runner/status.h"

using namespace pimqat;

namespace {

const std::string& run_dir() {
  static const std::string dir = [] {
    const std::string d = fuzz::scratch_path("status-run");
    std::filesystem::create_directories(d);
    std::vector<runner::TaskSpec> tasks(3);
    for (int i = 0; i < 3; ++i) {
      tasks[static_cast<std::size_t>(i)].id = "000000000000000" + std::to_string(i);
      tasks[static_cast<std::size_t>(i)].kind = runner::TaskKind::Synthetic;
    }
    tasks[2].depends_on = tasks[0].id;
    fuzz::write_file(runner::run_file(d, runner::kExpandedFileName), runner::format_expanded_tasks(tasks));
    runner::JournalWriter journal(runner::journal_path(d), runner::Durability::None);
    runner::JournalRecord r;
    r.id = tasks[0].id;
    r.status = runner::TaskStatus::Done;
    journal.append(r);
    r.id = tasks[1].id;
    r.status = runner::TaskStatus::Failed;
    r.message = "synthetic failure";
    journal.append(r);
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_error_or_success("parse_heartbeat", [&] {
    const runner::Heartbeat h = runner::parse_heartbeat(text, "heartbeat.txt");
    // The round trip holds for what a coordinator writes: host names, states, ids and kinds are
    // single non-empty words (an empty host is written as "host " and refused on reading: noted
    // in docs/reliability.md).
    const auto word = [](const std::string& w) {
      return !w.empty() && w.find_first_of(" \t\r\n") == std::string::npos;
    };
    // Times are Unix seconds with millisecond resolution, as a clock gives them.
    const auto time = [](double t) { return t >= 0 && t < 1e11; };
    if (!word(h.host) || !word(h.state) || !time(h.started) || !time(h.updated) || !time(h.interval)) return;
    for (const runner::RunningTask& t : h.tasks)
      if (!word(t.id) || !word(t.kind) || !word(t.host) || !time(t.since)) return;
    const std::string once = runner::format_heartbeat(h);
    std::string twice;
    try {
      twice = runner::format_heartbeat(runner::parse_heartbeat(once, "again"));
    } catch (const std::exception& e) {
      fuzz::finding("format_heartbeat wrote a heartbeat parse_heartbeat refuses: " + std::string(e.what()) + "\n" + once);
    }
    if (twice != once) fuzz::finding("heartbeat format/parse is not a fixed point:\n" + once + "----\n" + twice);
  });
  const std::string& dir = run_dir();
  fuzz::write_file(runner::heartbeat_path(dir), text);
  fuzz::expect_error_or_success("read_sweep_status", [&] {
    const runner::SweepStatus s = runner::read_sweep_status(dir, 1.8e9);
    (void)runner::format_sweep_status(s);
  });
  return 0;
}
