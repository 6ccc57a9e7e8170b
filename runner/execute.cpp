#include "runner/execute.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
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

double default_hang_grace(double budget_seconds) { return std::max(60.0, 0.25 * budget_seconds); }

std::string time_budget_message(double budget_seconds, double elapsed_seconds, bool stopped) {
  char text[240];
  std::snprintf(text, sizeof text,
                stopped ? "exceeded its time budget of %g s (--task-timeout): asked to stop, it stopped after %.1f s"
                        : "exceeded its time budget of %g s (--task-timeout): still running after %.1f s, it ignored "
                          "the request to stop",
                budget_seconds, elapsed_seconds);
  return text;
}

namespace {

using SteadyClock = std::chrono::steady_clock;

SteadyClock::duration to_duration(double seconds) {
  return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
}

// Watches one attempt with a time budget from a second thread: the attempt sees `stop`, set when
// the outer stop flag is set or the budget passes (then `expired` too); budget + grace later, with
// the attempt still running, on_hung is called once under the mutex. The attempt's thread takes
// the mutex to say it returned, so it cannot return while on_hung runs.
class BudgetWatch {
 public:
  BudgetWatch(const TaskContext& ctx, SteadyClock::time_point start) : ctx_(ctx), start_(start) {
    thread_ = std::thread([this] { loop(); });
  }
  ~BudgetWatch() { finish(); }
  BudgetWatch(const BudgetWatch&) = delete;
  BudgetWatch& operator=(const BudgetWatch&) = delete;

  const std::atomic<bool>* stop() const { return &stop_; }
  bool expired() const { return expired_.load(); }
  // The attempt returned: stop watching.
  void finish() {
    {
      std::lock_guard lock(mutex_);
      if (returned_) return;
      returned_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void loop() {
    const auto deadline = start_ + to_duration(ctx_.time_budget_seconds);
    const auto hung_at = deadline + to_duration(std::max(0.0, ctx_.hang_grace_seconds));
    bool hung_reported = false;
    std::unique_lock lock(mutex_);
    while (!returned_) {
      if (ctx_.stop_requested()) stop_.store(true);
      const auto now = SteadyClock::now();
      if (now >= deadline && !expired_.load()) {
        expired_.store(true);
        stop_.store(true);
      }
      if (now >= hung_at && !hung_reported && ctx_.on_hung) {
        hung_reported = true;
        ctx_.on_hung(std::chrono::duration<double>(now - start_).count());
      }
      wake_.wait_for(lock, std::chrono::milliseconds(10));
    }
  }

  const TaskContext& ctx_;
  SteadyClock::time_point start_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> expired_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool returned_ = false;
  std::thread thread_;
};

}  // namespace

TaskResult execute_task(const TaskSpec& spec, const TaskContext& ctx) {
  const TaskRunnerFn fn = registry()[slot(spec.kind)];
  if (!fn)
    throw Error("no runner is registered for " + std::string(task_kind_name(spec.kind)) + " tasks (task " + spec.id +
                "): this program must call register_task_runner(TaskKind::" +
                (spec.kind == TaskKind::Train ? "Train" : "Eval") + ", ...) at start-up");
  const double start = wall_clock_now();
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<BudgetWatch> watch;
  TaskContext watched;
  if (ctx.time_budget_seconds > 0) {
    watch.emplace(ctx, t0);
    watched = ctx;
    watched.stop = watch->stop();
  }
  TaskResult result;
  try {
    result = fn(spec, watch ? watched : ctx);
  } catch (const TaskStopped& e) {
    result = TaskResult{};
    result.status = kTaskStopped;
    result.message = e.what();
  } catch (const ReproducibleError& e) {
    result = TaskResult{};
    result.status = TaskStatus::Failed;
    result.message = e.what();
    result.retryable = false;
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
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (watch) {
    watch->finish();
    // Past its budget, whatever the attempt returned but a finished result is a failure naming
    // the budget (a stop it saw because of the budget is not the resumable kind).
    if (watch->expired() && result.status != TaskStatus::Done) {
      const bool stopped_in_grace = result.seconds <= ctx.time_budget_seconds + std::max(0.0, ctx.hang_grace_seconds);
      const std::string reason = result.status == kTaskStopped || result.message.empty()
                                     ? std::string()
                                     : " (its own error: " + result.message + ")";
      result = TaskResult{};
      result.status = TaskStatus::Failed;
      result.message = time_budget_message(ctx.time_budget_seconds,
                                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                                           stopped_in_grace) +
                       reason;
    }
  }
  result.id = spec.id;
  result.attempt = ctx.attempt;
  result.host = ctx.host.empty() ? host_name() : ctx.host;
  result.start_time = start;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace pimqat::runner
