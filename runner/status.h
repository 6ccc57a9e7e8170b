#pragma once
// Progress of a running or stopped sweep from its files (`pimqat status DIR`): the task list, the
// journal, and the heartbeat file that the coordinator rewrites every few seconds
// (RUN_DIR/heartbeat.txt, text, one "key value" per line; "task" lines list running tasks).
#include <cstdint>
#include <string>
#include <vector>

namespace pimqat::runner {

struct RunningTask {
  std::string id;
  std::string kind;
  int rank = 0;
  std::string host;
  double since = 0;  // Unix time the attempt started
  int attempt = 1;
};

struct Heartbeat {
  long pid = 0;
  std::string host;
  int ranks = 1;
  double started = 0;   // Unix time of the start of this run
  double updated = 0;   // Unix time of this write
  double interval = 2;  // seconds between writes
  std::string state = "running";  // running | stopping | finished | stopped
  int max_attempts = 3;
  std::int64_t total = 0, done = 0, failed = 0, skipped = 0, running = 0;
  std::int64_t done_at_start = 0;  // done tasks when this run started
  double task_timeout = 0;         // time budget of one attempt in seconds (--task-timeout), 0: none
  std::vector<RunningTask> tasks;
};

std::string format_heartbeat(const Heartbeat& heartbeat);
// Throws pimqat::Error on a malformed file: a known key whose line does not hold exactly its
// value(s) (trailing text included), or a first line that is not the header. Unknown keys are
// ignored (newer writers may add keys). `task_timeout` is written only when set.
Heartbeat parse_heartbeat(const std::string& text, const std::string& origin);

struct SweepStatus {
  std::string run_dir;
  std::int64_t total = 0;
  std::int64_t done = 0;
  std::int64_t failed = 0;     // tasks that used all their attempts without success
  std::int64_t retrying = 0;   // tasks with failed attempts and attempts left
  std::int64_t skipped = 0;    // not done because the task they depend on failed
  std::int64_t running = 0;    // from a live heartbeat
  std::int64_t attempts = 0;   // journal records
  bool live = false;           // a coordinator wrote the heartbeat recently
  bool has_heartbeat = false;
  Heartbeat heartbeat;
  double heartbeat_age = 0;    // seconds
  double rate = 0;             // finished tasks per second in the latest run
  double eta = -1;             // seconds, -1 unknown
  std::string journal_warning;
  std::vector<std::string> recent_failures;  // "id (kind) attempt N: message" of the last few failed attempts
};

// Reads RUN_DIR's task list, journal and heartbeat; `now` is Unix time.
SweepStatus read_sweep_status(const std::string& run_dir, double now);
// A few lines for a terminal.
std::string format_sweep_status(const SweepStatus& status);

double unix_time_now();

}  // namespace pimqat::runner
