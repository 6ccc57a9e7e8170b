#pragma once
// RUN_DIR/results.h5 (DESIGN.md section 5; layout in docs/results-format.md), rebuilt from the
// journal into a temporary file and renamed into place, so a reader never sees a partial file.
//
//   /                 attributes: format_version (kFileFormatVersion), program_version, git_commit,
//                     build_flags, sweep_text, hosts (1-D strings), created, tasks_total/done/failed
//   /tasks            one row per task of the sweep: id, kind, status, attempts, seconds, host,
//                     depends_on, replicate, die, message, then one string column per axis
//   /eval             one row per evaluated die: train_id, eval_id, replicate, die, one column per
//                     axis (float64 when every value is a number, else string), accuracy, loss and
//                     every other metric (float64, NaN where a row lacks it)
//   /train            one row per trained model: train_id, replicate, axes, final metrics, epochs
//   /curves           one row per (train task, epoch): train_id, epoch, lr, train_loss,
//                     train_accuracy, test_loss, test_accuracy, seconds
//   /synthetic        one row per done synthetic task: id, depends_on, replicate, axes, metrics
// Every table is a group with one 1-D dataset per column and a "columns" attribute (core/hdf5.h
// write_table). Rows are sorted by task id (eval: by train id, axes, die), so the file's tables do not
// depend on the number of ranks or the order in which tasks finished; only timings and hosts do.
#include <string>
#include <vector>

#include "core/hdf5.h"
#include "runner/journal.h"
#include "runner/rundir.h"

namespace pimqat::runner {

struct ResultsInput {
  std::vector<ExpandedTask> tasks;      // the sweep's task list
  std::vector<JournalRecord> records;   // the journal, in file order
  // Optional status text per task (parallel to `tasks`, e.g. "running"); empty: derived from the
  // records with `max_attempts` (done / failed / skipped / pending).
  std::vector<std::string> status;
  int max_attempts = 3;
  std::string sweep_text;
  std::vector<std::string> hosts;
};

// The tables as they are written (exposed for tests and for `pimqat analyze`).
struct ResultsTables {
  H5Table tasks, eval, train, curves, synthetic;
};
ResultsTables build_results_tables(const ResultsInput& input);

// Builds the tables and writes them to `path` atomically (temporary file + rename).
void write_results(const std::string& path, const ResultsInput& input);

}  // namespace pimqat::runner
