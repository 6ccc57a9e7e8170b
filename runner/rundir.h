#pragma once
// The run directory of a sweep (DESIGN.md section 5, docs/runner.md "The run directory"):
//   sweep.yaml           the sweep file exactly as given on the first run
//   sweep.expanded.txt   the task list it expanded to (tab-separated, one task per line)
//   sweep.fingerprint    identity of the task list; a different sweep is refused
//   run.lock             held (flock) by the running coordinator: one sweep per directory at a time
//   journal.pjl          the journal (runner/journal.h): the source of truth
//   results.h5           rebuilt from the journal (runner/results.h)
//   heartbeat.txt        rewritten every few seconds by the coordinator (runner/status.h)
//   checkpoints/<train task id>/   checkpoints of one training task
//   logs/                log files
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runner/task.h"

namespace pimqat::runner {

inline constexpr const char* kSweepFileName = "sweep.yaml";
inline constexpr const char* kExpandedFileName = "sweep.expanded.txt";
inline constexpr const char* kFingerprintFileName = "sweep.fingerprint";
inline constexpr const char* kLockFileName = "run.lock";
inline constexpr const char* kResultsFileName = "results.h5";
inline constexpr const char* kHeartbeatFileName = "heartbeat.txt";

std::string run_file(const std::string& run_dir, const std::string& name);  // RUN_DIR/name
std::string journal_path(const std::string& run_dir);
std::string results_path(const std::string& run_dir);
std::string heartbeat_path(const std::string& run_dir);
std::string checkpoint_dir(const std::string& run_dir, const std::string& train_id);
std::string log_dir(const std::string& run_dir);

// The sweep as the user gave it.
struct SweepSource {
  std::string path;         // the file named on the command line (for messages)
  std::string text;         // its raw text, stored as sweep.yaml
  std::string fingerprint;  // the sweep parser's fingerprint of the text (may be empty)
};

// Identity of a task list: a 64-bit hash (16 hex digits) of the sorted (id, depends_on) pairs.
// Two sweeps with the same fingerprint describe the same tasks, whatever their text looks like.
std::string task_list_fingerprint(const std::vector<TaskSpec>& tasks);

// Checks that `tasks` is a consistent task list: non-empty unique ids, every depends_on names a task
// of the list, no dependency cycle. Throws pimqat::Error listing every problem.
void validate_task_list(const std::vector<TaskSpec>& tasks);

enum class RunDirState { Created, Resumed };

// Creates RUN_DIR (and checkpoints/, logs/) for this sweep, or checks that the sweep recorded there
// is the same one. A different task list in a used directory throws pimqat::Error explaining which
// file differs, how the task lists differ, and how to start a new directory.
RunDirState prepare_run_directory(const std::string& run_dir, const SweepSource& sweep,
                                  const std::vector<TaskSpec>& tasks);

// An exclusive lock on RUN_DIR/run.lock (flock), held for the lifetime of the object; the file
// records pid, host and start time of the holder. Throws pimqat::Error naming the holder if another
// process holds it.
class RunLock {
 public:
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Removes temporary files that a killed run left at the top of RUN_DIR (`NAME.tmp-PID`,
// `NAME.tmp.PID`: results.h5 and heartbeat rebuilds). Call with the lock held. Returns how many.
int remove_stale_temporaries(const std::string& run_dir);

// One line of sweep.expanded.txt.
struct ExpandedTask {
  std::string id;
  TaskKind kind = TaskKind::Synthetic;
  std::string depends_on;
  int replicate = 0;
  int die = -1;
  std::map<std::string, std::string> axes;
  std::string canonical;
};
ExpandedTask expanded_task(const TaskSpec& spec);
std::string format_expanded_tasks(const std::vector<TaskSpec>& tasks);
std::vector<ExpandedTask> parse_expanded_tasks(const std::string& text, const std::string& origin);
std::vector<ExpandedTask> read_expanded_tasks(const std::string& run_dir);

// Writes `content` to `path` through a temporary file in the same directory, fsync and rename:
// readers see the old or the new file, never a mix.
void write_file_atomically(const std::string& path, const std::string& content);
// The whole file as a string; throws pimqat::Error if it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace pimqat::runner
