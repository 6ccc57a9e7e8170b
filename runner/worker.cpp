#include "runner/worker.h"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/log.h"
#include "runner/coordinator.h"
#include "runner/execute.h"
#include "runner/messages.h"
#include "runner/rundir.h"
#include "runner/signals.h"

namespace pimqat::runner {

// ---- StopMonitor ----

StopMonitor::StopMonitor(std::atomic<bool>* signal_flag, double time_limit_seconds, std::string heartbeat_file,
                         double interval_seconds)
    : signal_flag_(signal_flag),
      has_deadline_(time_limit_seconds > 0),
      deadline_(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(has_deadline_ ? time_limit_seconds : 0.0))),
      heartbeat_file_(std::move(heartbeat_file)),
      interval_(interval_seconds) {
  thread_ = std::thread([this] { loop(); });
}

StopMonitor::~StopMonitor() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool StopMonitor::deadline_passed() const { return has_deadline_ && Clock::now() >= deadline_; }

double StopMonitor::seconds_left() const {
  if (!has_deadline_) return std::numeric_limits<double>::infinity();
  return std::chrono::duration<double>(deadline_ - Clock::now()).count();
}

void StopMonitor::set_heartbeat(Heartbeat heartbeat) {
  std::lock_guard lock(mutex_);
  heartbeat_ = std::move(heartbeat);
  have_heartbeat_ = true;
}

void StopMonitor::write_heartbeat_now(Heartbeat heartbeat) {
  std::lock_guard lock(mutex_);
  heartbeat_ = std::move(heartbeat);
  have_heartbeat_ = true;
  write_locked();
}

void StopMonitor::write_locked() {
  if (heartbeat_file_.empty() || !have_heartbeat_) return;
  heartbeat_.updated = unix_time_now();
  try {
    write_file_atomically(heartbeat_file_, format_heartbeat(heartbeat_));
  } catch (const Error& e) {
    log_warn(std::string("heartbeat not written: ") + e.what());
  }
}

void StopMonitor::loop() {
  auto next_heartbeat = Clock::now();
  std::unique_lock lock(mutex_);
  while (!quit_) {
    if (signal_flag_->load() || deadline_passed()) task_stop_.store(true);
    if (Clock::now() >= next_heartbeat) {
      write_locked();
      next_heartbeat =
          Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval_));
    }
    wake_.wait_for(lock, std::chrono::milliseconds(25));
  }
}

void PollBackoff::wait() const {
  const auto quiet = std::chrono::steady_clock::now() - last_activity_;
  if (quiet < std::chrono::microseconds(100)) std::this_thread::yield();
  else if (quiet < std::chrono::milliseconds(5)) std::this_thread::sleep_for(std::chrono::microseconds(50));
  else std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// ---- worker loop ----

int run_worker(const SweepOptions& options) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  StopMonitor monitor(options.stop ? options.stop : &stop_flag(), options.time_limit_seconds);
  ModelCache cache(options.model_cache_capacity);
  TaskContext ctx;
  ctx.run_dir = options.run_dir;
  ctx.sweep_seed = options.sweep_seed;
  ctx.models = &cache;
  ctx.stop = monitor.task_stop();
  ctx.host = host_name();
  ctx.rank = rank;
  // The budget is enforced here (the attempt is asked to stop); a task that ignores the request
  // holds this rank's only MPI thread, so the coordinator notices the silence and gives it up.
  ctx.time_budget_seconds = std::max(0.0, options.task_timeout_seconds);
  ctx.hang_grace_seconds = options.task_hang_grace_seconds >= 0 ? options.task_hang_grace_seconds
                                                                : default_hang_grace(options.task_timeout_seconds);

  const auto send = [](const std::string& bytes) {
    MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, 0, kTagWorker, MPI_COMM_WORLD);
  };
  WorkerMessage hello;
  hello.type = WorkerMessage::Type::Hello;
  hello.host = ctx.host;
  send(serialize(hello));

  std::string buffer;
  PollBackoff backoff;
  while (true) {
    int flag = 0;
    MPI_Status status;
    MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
    if (!flag) {
      backoff.wait();
      continue;
    }
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    buffer.resize(static_cast<std::size_t>(bytes));
    MPI_Recv(buffer.data(), bytes, MPI_BYTE, 0, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (status.MPI_TAG == kTagStop) return deserialize_stop(buffer).exit_code;
    if (status.MPI_TAG != kTagTask) throw Error("worker rank " + std::to_string(rank) + ": unexpected message tag " +
                                                std::to_string(status.MPI_TAG) + " from the coordinator");
    const TaskAssignment assignment = deserialize_assignment(buffer);
    ctx.attempt = assignment.attempt;
    ctx.sweep_seed = assignment.sweep_seed;
    WorkerMessage reply;
    reply.type = WorkerMessage::Type::Result;
    reply.host = ctx.host;
    try {
      reply.result = execute_task(assignment.spec, ctx);
    } catch (const std::exception& e) {  // set-up errors (no runner for the kind): a failed attempt
      reply.result = TaskResult{};
      reply.result.id = assignment.spec.id;
      reply.result.status = TaskStatus::Failed;
      reply.result.attempt = assignment.attempt;
      reply.result.host = ctx.host;
      reply.result.message = e.what();
    }
    send(serialize(reply));
    backoff.reset();  // the next task follows right away
  }
}

}  // namespace pimqat::runner
