#pragma once
// Helpers of the runner tests: temporary run directories, hand-built task lists, child processes
// (the real program, or this test binary under mpirun: MpiChild.RunSweep in mpi.cpp), and the
// comparison of results files.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "core/hdf5.h"
#include "core/rng.h"
#include "runner/results.h"
#include "runner/task.h"

namespace pimqat::runner::testing {

// A fresh directory named after the running test, removed at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("pimqat-" + std::string(info->test_suite_name()) + "-" + info->name() + tag + "-" +
             std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string hex_id(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A synthetic task whose identity is derived from `i` and `salt`.
inline TaskSpec synthetic_task(int i, double duration = 0, double failure_probability = 0, bool always_fail = false,
                               std::uint64_t salt = 0) {
  TaskSpec t;
  t.kind = TaskKind::Synthetic;
  t.id = hex_id(mix64(0x5eed0000ull + static_cast<std::uint64_t>(i) + (salt << 32)));
  t.canonical = "{\"i\":" + std::to_string(i) + ",\"salt\":" + std::to_string(salt) + "}";
  t.synthetic.duration_seconds = duration;
  t.synthetic.failure_probability = failure_probability;
  t.synthetic.result = 0.5 * i;
  t.synthetic.always_fail = always_fail;
  t.axes = {{"synthetic.result", std::to_string(0.5 * i)}, {"group", i % 3 == 0 ? "a" : "b"}};
  t.replicate = i % 2;
  return t;
}

inline std::vector<TaskSpec> synthetic_sweep(int n, double duration = 0, double failure_probability = 0,
                                             std::uint64_t salt = 0) {
  std::vector<TaskSpec> tasks;
  for (int i = 0; i < n; ++i) tasks.push_back(synthetic_task(i, duration, failure_probability, false, salt));
  return tasks;
}

// A train task and `evals` eval tasks (dies 0..evals-1) depending on it.
inline std::vector<TaskSpec> train_with_evals(int model, int evals) {
  std::vector<TaskSpec> tasks;
  TaskSpec train;
  train.kind = TaskKind::Train;
  train.id = hex_id(mix64(0x7a000000ull + static_cast<std::uint64_t>(model)));
  train.canonical = "{\"model\":" + std::to_string(model) + "}";
  train.axes = {{"pim.train_bits", std::to_string(3 + model)}};
  tasks.push_back(train);
  for (int d = 0; d < evals; ++d) {
    TaskSpec e;
    e.kind = TaskKind::Eval;
    e.id = hex_id(mix64(0xe0000000ull + static_cast<std::uint64_t>(model * 1000 + d)));
    e.canonical = "{\"model\":" + std::to_string(model) + ",\"die\":" + std::to_string(d) + "}";
    e.depends_on = train.id;
    e.config.eval.first_die = d;
    e.config.eval.dies = 1;
    e.axes = {{"pim.train_bits", std::to_string(3 + model)}, {"eval.noise_sigma", d % 2 ? "0.5" : "1"}};
    tasks.push_back(e);
  }
  return tasks;
}

// Synthetic parents, each with `dependents` synthetic tasks depending on it (the shape of train and
// eval tasks); every task sleeps `duration` and fails with probability `p` per attempt; the task at
// `always_fail` (if >= 0) fails every attempt.
inline std::vector<TaskSpec> synthetic_tree(int parents, int dependents, double duration, double p,
                                            int always_fail = -1) {
  std::vector<TaskSpec> tasks;
  for (int i = 0; i < parents; ++i) tasks.push_back(synthetic_task(i, duration, p, false, 7));
  for (int i = 0; i < parents; ++i)
    for (int d = 0; d < dependents; ++d) {
      TaskSpec t = synthetic_task(1000 + i * 100 + d, duration, p, false, 7);
      t.depends_on = tasks[static_cast<std::size_t>(i)].id;
      t.axes["die"] = std::to_string(d);
      tasks.push_back(t);
    }
  if (always_fail >= 0) tasks[static_cast<std::size_t>(always_fail)].synthetic.always_fail = true;
  return tasks;
}

// Processes of session `sid` that are not zombies (from /proc/PID/stat: state, field 3; session, field 6).
inline std::vector<pid_t> session_processes(pid_t sid) {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::FILE* f = std::fopen((entry.path() / "stat").c_str(), "r");
    if (!f) continue;
    char buf[1024] = {};
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    const std::string stat(buf, n);
    const auto paren = stat.rfind(')');  // the command name may contain spaces
    if (paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0, pgrp = 0, session = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) != 4) continue;
    if (session == sid && state != 'Z' && state != 'X') pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}

// A child process started with fork/exec as the leader of a new session. mpirun puts every rank in
// a process group of its own but leaves it in mpirun's session, so the session is what holds
// "mpirun and all its ranks".
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log_file) {
    pid_ = fork();
    if (pid_ == 0) {
      setsid();
      for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
      if (!log_file.empty()) {
        if (!freopen(log_file.c_str(), "a", stdout) || !freopen(log_file.c_str(), "a", stderr)) _exit(126);
      }
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    // Until the child has called setsid() its session is ours: wait for it (microseconds).
    while (getsid(pid_) != pid_ && ::kill(pid_, 0) == 0) std::this_thread::yield();
  }
  ~ChildProcess() {
    if (!reaped_) {
      kill_session(SIGKILL);
      wait(60);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Sends `sig` to every live process of the child's session: mpirun and all its ranks.
  void kill_session(int sig) {
    for (pid_t p : session_processes(pid_)) ::kill(p, sig);
  }
  // The child's process group and everything else of its session (same as kill_session).
  void kill_group(int sig) {
    ::kill(-pid_, sig);
    kill_session(sig);
  }
  // Exit status (or 128 + signal); -1 after `timeout_seconds` (the group is then killed).
  int wait(double timeout_seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
    while (true) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() > end) {
        kill_session(SIGKILL);
        waitpid(pid_, &status, 0);
        reaped_ = true;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // Waits until no live process of the session is left.
  bool session_gone(double timeout_seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
    while (!session_processes(pid_).empty()) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

inline std::vector<std::string> mpirun_env() {
  return {"OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMPI_MCA_rmaps_base_oversubscribe=1"};
}

// `mpirun --oversubscribe -np RANKS PROGRAM...`
inline std::vector<std::string> mpirun_argv(int ranks, const std::vector<std::string>& program) {
  std::vector<std::string> argv = {"mpirun", "--oversubscribe", "-np", std::to_string(ranks)};
  argv.insert(argv.end(), program.begin(), program.end());
  return argv;
}

// This test binary (it runs itself under mpirun as MpiChild.RunSweep).
inline std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

// The synthetic sweep of an MpiChild run (mpi.cpp), passed to it through the environment:
// synthetic_tree(parents, dependents, duration, p, always_fail), the retries, the task time budget
// and grace, and a task whose first attempt hangs (ignores its stop flag for hang_seconds).
struct TreeShape {
  int parents = 6, dependents = 3;
  double duration = 0, p = 0;
  int always_fail = -1;
  int retries = 2;
  double task_timeout = 0, hang_grace = -1, hang_seconds = 600;
  int hang_index = -1;
};

inline std::vector<std::string> mpi_child_env(const std::string& run_dir, const TreeShape& shape) {
  std::vector<std::string> env = mpirun_env();
  env.push_back("PIMQAT_TEST_MPI_CHILD=1");
  env.push_back("PIMQAT_TEST_RUN_DIR=" + run_dir);
  env.push_back("PIMQAT_TEST_PARENTS=" + std::to_string(shape.parents));
  env.push_back("PIMQAT_TEST_DEPENDENTS=" + std::to_string(shape.dependents));
  env.push_back("PIMQAT_TEST_DURATION=" + std::to_string(shape.duration));
  env.push_back("PIMQAT_TEST_P=" + std::to_string(shape.p));
  env.push_back("PIMQAT_TEST_ALWAYS_FAIL=" + std::to_string(shape.always_fail));
  env.push_back("PIMQAT_TEST_RETRIES=" + std::to_string(shape.retries));
  env.push_back("PIMQAT_TEST_TASK_TIMEOUT=" + std::to_string(shape.task_timeout));
  env.push_back("PIMQAT_TEST_HANG_GRACE=" + std::to_string(shape.hang_grace));
  env.push_back("PIMQAT_TEST_HANG_INDEX=" + std::to_string(shape.hang_index));
  env.push_back("PIMQAT_TEST_HANG_SECONDS=" + std::to_string(shape.hang_seconds));
  return env;
}

// Starts `ranks` ranks of this binary's MpiChild test under mpirun, output to `log`.
inline std::unique_ptr<ChildProcess> start_mpi_child(const std::string& run_dir, int ranks, const TreeShape& shape,
                                                     const std::string& log) {
  return std::make_unique<ChildProcess>(mpirun_argv(ranks, {self_exe(), "--gtest_filter=MpiChild.RunSweep"}),
                                        mpi_child_env(run_dir, shape), log);
}

// The whole content of a file ("" when it cannot be read).
inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Equal columns, NaN equal to NaN (missing values).
inline bool same_column(const H5Column& a, const H5Column& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<std::vector<double>>(&a)) {
    const auto& y = std::get<std::vector<double>>(b);
    if (x->size() != y.size()) return false;
    for (std::size_t i = 0; i < x->size(); ++i)
      if (!((*x)[i] == y[i] || (std::isnan((*x)[i]) && std::isnan(y[i])))) return false;
    return true;
  }
  return a == b;
}

// Every column of the named tables of a results file, as "table/column", except those that hold
// timings and hosts (they differ between runs that computed the same results).
inline std::map<std::string, H5Column> comparable_columns(
    const std::string& results_file, std::initializer_list<const char*> tables = {"tasks", "synthetic"}) {
  std::map<std::string, H5Column> columns;
  const H5File file = H5File::open(results_file);
  for (const char* table : tables) {
    const H5Table t = read_table(file, table);
    for (const std::string& name : t.names())
      if (name != "seconds" && name != "host") columns[std::string(table) + "/" + name] = t.column(name);
  }
  return columns;
}

}  // namespace pimqat::runner::testing
