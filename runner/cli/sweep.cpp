// `pimqat sweep SWEEP.yaml --out DIR [options]`: the main job (DESIGN.md section 4, docs/runner.md).
// Started plainly it runs every task in this process; under mpirun/srun rank 0 coordinates and the
// other ranks work. Running the same command again resumes.
#include <mpi.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/threads.h"
#include "runner/cli/args.h"
#include "runner/cli/commands.h"
#include "runner/coordinator.h"
#include "runner/plan.h"
#include "runner/rundir.h"
#include "runner/signals.h"
#include "runner/sweep.h"

namespace pimqat::cli {
namespace {

constexpr const char* kUsage =
    "usage: pimqat sweep SWEEP.yaml --out DIR [--retries N] [--retry-failed] [--time-limit T] [--threads N]\n"
    "                    [--task-timeout T] [--results-interval SECONDS] [--quiet]\n"
    "  Runs every task of SWEEP.yaml (docs/sweeps.md) and collects the results in DIR/results.h5.\n"
    "  Under `mpirun -np P` rank 0 coordinates and ranks 1..P-1 run tasks; started plainly, one\n"
    "  process runs everything. Running the same command again resumes: finished tasks are skipped,\n"
    "  training continues from its last epoch checkpoint. A different sweep in DIR is refused.\n"
    "  --retries N          more attempts after a failed one (default 2)\n"
    "  --retry-failed       give tasks that failed in earlier runs new attempts\n"
    "  --time-limit T       stop starting tasks that cannot end within T (seconds, or 1h30m, 45m, 90s);\n"
    "                       at T running tasks checkpoint and the sweep exits with code 75\n"
    "  --task-timeout T     time budget of one task attempt (same units as --time-limit): past it the\n"
    "                       attempt is stopped and journaled as failed, then retried per --retries;\n"
    "                       one that ignores the stop for max(60 s, T/4) more is given up (one process:\n"
    "                       the sweep exits 75 to be resumed; MPI: its rank gets no more tasks)\n"
    "  --threads N          OpenMP threads per process (default: OMP_NUM_THREADS or all cores)\n"
    "  --results-interval S rebuild DIR/results.h5 at most every S seconds while running (default 60)\n"
    "  --quiet              no progress display\n"
    "exit status: 0 all tasks done; 3 finished, some tasks failed; 75 stopped early (SIGINT, SIGTERM,\n"
    "  SIGUSR1 or the time limit), run the same command to resume; 1 error; 2 invalid input\n";

// Seconds from "5400", "90s", "45m", "1h30m", "2h", "1h30m15s", "1.5h".
double parse_time_limit(const std::string& text, const std::string& option = "--time-limit") {
  if (text.empty()) throw Error(option + ": empty value");
  double total = 0;
  std::size_t pos = 0;
  bool any_unit = false;
  while (pos < text.size()) {
    std::size_t used = 0;
    double value = 0;
    try {
      value = std::stod(text.substr(pos), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || value < 0)
      throw Error(option + " '" + text + "': expected seconds or a duration like 1h30m, 45m, 90s");
    pos += used;
    double unit = 1;
    if (pos < text.size()) {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(text[pos])));
      if (c == 'h') unit = 3600;
      else if (c == 'm') unit = 60;
      else if (c == 's') unit = 1;
      else if (c == 'd') unit = 86400;
      else throw Error(option + " '" + text + "': unknown unit '" + text.substr(pos, 1) + "' (valid: d, h, m, s)");
      ++pos;
      any_unit = true;
    } else if (any_unit) {
      throw Error(option + " '" + text + "': a number without unit after other units");
    }
    total += value * unit;
  }
  return total;
}

// True when started by an MPI launcher (mpirun/mpiexec, srun with PMI/PMIx).
bool launched_by_mpi() {
  if (const char* force = std::getenv("PIMQAT_MPI")) return std::string(force) != "0";
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
    if (std::getenv(name)) return true;
  return false;
}

// MPI for the duration of the command: initialized when launched by MPI, finalized at the end.
class MpiSession {
 public:
  MpiSession() {
    if (!launched_by_mpi()) return;
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw Error("MPI_Init_thread failed");
    active_ = true;
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      active_ = false;
      throw Error("the MPI library does not provide MPI_THREAD_FUNNELED");
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiSession() {
    if (active_) MPI_Finalize();
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }
  // Ends every rank of the job (a worker that cannot continue).
  [[noreturn]] void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  bool active_ = false;
  int rank_ = 0;
  int size_ = 1;
};

// Log lines go to stderr and, from the first line on, to RUN_DIR/logs/sweep.log (rank 0) or
// RUN_DIR/logs/rank-N.log (workers), appended across runs. Opening lazily keeps a refused run
// (a different sweep in the directory) from writing into that directory.
class LogTee {
 public:
  LogTee(const std::string& run_dir, int rank)
      : path_(runner::log_dir(run_dir) + (rank == 0 ? "/sweep.log" : "/rank-" + std::to_string(rank) + ".log")) {
    auto to_stderr = stderr_log_sink();
    set_log_sink([this, to_stderr](LogLevel level, std::string_view message) {
      to_stderr(level, message);
      write(level, message);
    });
  }
  ~LogTee() {
    set_log_sink(stderr_log_sink());
    if (file_) std::fclose(file_);
  }
  LogTee(const LogTee&) = delete;
  LogTee& operator=(const LogTee&) = delete;

 private:
  void write(LogLevel level, std::string_view message) {  // called under the log mutex
    if (!file_ && !failed_) {
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
      file_ = std::fopen(path_.c_str(), "a");
      failed_ = file_ == nullptr;
    }
    if (!file_) return;
    const std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
    const char* name = level == LogLevel::Error ? "error" : level == LogLevel::Warning ? "warning"
                       : level == LogLevel::Info ? "info" : "debug";
    std::fprintf(file_, "[%s] %s: %.*s\n", when, name, static_cast<int>(message.size()), message.data());
    std::fflush(file_);
  }
  std::string path_;
  std::FILE* file_ = nullptr;
  bool failed_ = false;
};

std::string stop_text(const runner::SweepSummary& s) {
  switch (s.stop) {
    case runner::StopReason::Signal: {
      const int sig = runner::stop_signal();
      return sig ? "stopped by signal " + std::to_string(sig) : "stopped by request";
    }
    case runner::StopReason::TimeLimit: return "stopped by the time limit";
    case runner::StopReason::None: break;
  }
  return "stopped";
}

}  // namespace

int run_sweep(int argc, char** argv) {
  const Args args(argc, argv, {"--out", "--retries", "--time-limit", "--task-timeout", "--threads", "--results-interval"},
                  {"--help", "--retry-failed", "--quiet"});
  if (args.has("--help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (args.positional().size() != 1 || args.get("--out").empty()) {
    std::fputs(kUsage, stderr);
    return kExitBadInput;
  }
  const std::string sweep_file = args.positional()[0];
  runner::SweepOptions options;
  options.run_dir = args.get("--out");
  options.retries = args.get_int("--retries", 2);
  if (options.retries < 0) throw Error("--retries must be >= 0");
  options.retry_failed = args.has("--retry-failed");
  if (args.has("--time-limit")) options.time_limit_seconds = parse_time_limit(args.get("--time-limit"));
  if (args.has("--task-timeout")) {
    options.task_timeout_seconds = parse_time_limit(args.get("--task-timeout"), "--task-timeout");
    if (!(options.task_timeout_seconds > 0))
      throw Error("--task-timeout '" + args.get("--task-timeout") + "': the time budget must be more than 0 seconds");
  }
  // A hung task in one process: the coordinator has journaled it; nothing else can end the process.
  options.exit_process = [](int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(code);
  };
  if (args.has("--results-interval")) options.results_interval_seconds = std::stod(args.get("--results-interval"));
  if (args.has("--threads")) set_threads(args.get_int("--threads", 0));

  // Before a task of a kind has finished, the time limit uses the plan's cost model (docs/sweeps.md).
  options.cost_estimate = [](const runner::TaskSpec& spec) {
    const double per_second = runner::kAssumedMacsPerCoreSecond * std::max(1, thread_count());
    if (spec.kind == runner::TaskKind::Train) return runner::train_task_macs(spec.config) / per_second;
    if (spec.kind == runner::TaskKind::Eval) return runner::eval_task_macs(spec.config) / per_second;
    return spec.synthetic.duration_seconds;
  };

  MpiSession mpi;
  options.stop = &runner::install_stop_handlers();
  if (mpi.rank() == 0 && !args.has("--quiet")) options.progress = stderr;
  if (mpi.rank() != 0) set_log_level(LogLevel::Warning);  // one voice: the coordinator's
  const LogTee log_tee(options.run_dir, mpi.rank());

  runner::SweepSummary summary;
  try {
    summary = runner::run_sweep(
        [&] {
          const runner::Sweep sweep = runner::load_sweep(sweep_file);
          runner::SweepInput input;
          input.tasks = sweep.tasks;
          input.sweep.path = sweep_file;
          input.sweep.text = sweep.files.empty() ? std::string() : sweep.files.front().text;
          for (std::size_t i = 1; i < sweep.files.size(); ++i)
            input.sweep.text += "\n# ---- included file " + sweep.files[i].path + " ----\n" + sweep.files[i].text;
          input.sweep.fingerprint = sweep.fingerprint;
          input.seed = sweep.seed;
          return input;
        },
        options);
  } catch (const std::exception& e) {
    if (mpi.rank() != 0) {
      std::fprintf(stderr, "pimqat sweep: worker rank %d: %s\n", mpi.rank(), e.what());
      mpi.abort(kExitFailure);
    }
    throw;  // rank 0 released its workers; main() reports the error
  }
  // Workers exit 0: the job's status is rank 0's (mpirun and srun report it). A worker exiting
  // non-zero first would make mpirun kill rank 0 while it writes results.h5.
  if (mpi.rank() != 0) return kExitOk;

  std::printf("sweep %s: %zu tasks: %zu done (%zu before this run), %zu failed, %zu skipped, %zu remaining\n",
              options.run_dir.c_str(), summary.total, summary.done, summary.done_before, summary.failed,
              summary.skipped, summary.remaining);
  char elapsed[32];
  if (summary.seconds < 60) std::snprintf(elapsed, sizeof elapsed, "%.1fs", summary.seconds);
  else std::snprintf(elapsed, sizeof elapsed, "%s", Progress::format_duration(summary.seconds).c_str());
  std::printf("%zu attempts (%zu failed) in %s on %d rank%s; results: %s/results.h5\n", summary.attempts,
              summary.failed_attempts, elapsed, summary.ranks,
              summary.ranks > 1 ? "s" : "", options.run_dir.c_str());
  const int code = summary.exit_code();
  if (summary.lost_ranks > 0) {
    // A rank holding a hung task cannot join MPI_Finalize: end the job with rank 0's status.
    std::printf("%d rank%s did not answer within the task time budget: the job ends with MPI_Abort (exit status %d)\n",
                summary.lost_ranks, summary.lost_ranks > 1 ? "s" : "", code);
    std::fflush(stdout);
    std::fflush(stderr);
    mpi.abort(code);
  }
  if (code == runner::kExitResumable)
    std::printf("%s: run the same command again to resume (exit status %d)\n", stop_text(summary).c_str(), code);
  else if (code == runner::kExitTasksFailed)
    std::printf("some tasks failed after all their attempts: see `pimqat status %s`; rerun with --retry-failed "
                "to try them again\n",
                options.run_dir.c_str());
  return code;
}

}  // namespace pimqat::cli
