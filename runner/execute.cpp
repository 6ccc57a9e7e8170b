#include "runner/execute.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <exception>

#include "core/error.h"
#include "core/rng.h"
#include "runner/journal.h"
#include "runner/rundir.h"
#include "runner/synthetic.h"

namespace pimqat::runner {
namespace {

std::array<TaskRunnerFn, 3>& registry() {
  static std::array<TaskRunnerFn, 3> fns = {nullptr, nullptr, &run_synthetic_task};
  return fns;
}

std::size_t slot(TaskKind kind) {
  const auto i = static_cast<std::size_t>(kind);
  if (i >= registry().size()) throw Error("unknown task kind code " + std::to_string(i));
  return i;
}

double wall_clock_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string TaskContext::checkpoint_dir(const std::string& train_id) const {
  return runner::checkpoint_dir(run_dir, train_id);
}
std::string TaskContext::log_dir() const { return runner::log_dir(run_dir); }

void register_task_runner(TaskKind kind, TaskRunnerFn fn) { registry()[slot(kind)] = fn; }

bool has_task_runner(TaskKind kind) { return registry()[slot(kind)] != nullptr; }

std::uint64_t task_id_hash(const std::string& id) {
  if (id.size() == 16 && id.find_first_not_of("0123456789abcdef") == std::string::npos)
    return std::stoull(id, nullptr, 16);
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a SplitMix64 finalizer
  for (unsigned char c : id) h = (h ^ c) * 0x100000001b3ull;
  return mix64(h);
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown-host";
  return buf;
}

TaskResult execute_task(const TaskSpec& spec, const TaskContext& ctx) {
  const TaskRunnerFn fn = registry()[slot(spec.kind)];
  if (!fn)
    throw Error("no runner is registered for " + std::string(task_kind_name(spec.kind)) + " tasks (task " + spec.id +
                "): this program must call register_task_runner(TaskKind::" +
                (spec.kind == TaskKind::Train ? "Train" : "Eval") + ", ...) at start-up");
  const double start = wall_clock_now();
  const auto t0 = std::chrono::steady_clock::now();
  TaskResult result;
  try {
    result = fn(spec, ctx);
  } catch (const TaskStopped& e) {
    result = TaskResult{};
    result.status = kTaskStopped;
    result.message = e.what();
  } catch (const std::exception& e) {
    result = TaskResult{};
    result.status = TaskStatus::Failed;
    result.message = e.what();
    if (result.message.empty()) result.message = "exception without a message";
  } catch (...) {
    result = TaskResult{};
    result.status = TaskStatus::Failed;
    result.message = "unknown exception (not derived from std::exception)";
  }
  result.id = spec.id;
  result.attempt = ctx.attempt;
  result.host = ctx.host.empty() ? host_name() : ctx.host;
  result.start_time = start;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace pimqat::runner
