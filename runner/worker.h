#pragma once
// The worker side of a sweep (MPI ranks 1..P-1; protocol in runner/messages.h): say hello, then run
// the tasks the coordinator sends, one at a time, answering each with its result (which also asks
// for the next task), until the coordinator says stop. The worker keeps a model cache across tasks.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "runner/status.h"

namespace pimqat::runner {

struct SweepOptions;

// A helper thread of every rank. It turns a stop signal (`signal_flag`) or the deadline into the
// stop flag that running tasks watch (TaskContext::stop), and, given a file name, rewrites the
// heartbeat every `interval` seconds from the latest snapshot handed to it. It never calls MPI
// (so MPI_THREAD_FUNNELED is enough).
class StopMonitor {
 public:
  StopMonitor(std::atomic<bool>* signal_flag, double time_limit_seconds, std::string heartbeat_file = {},
              double interval_seconds = 2.0);
  ~StopMonitor();
  StopMonitor(const StopMonitor&) = delete;
  StopMonitor& operator=(const StopMonitor&) = delete;

  const std::atomic<bool>* task_stop() const { return &task_stop_; }
  bool signalled() const { return signal_flag_->load(); }
  bool has_deadline() const { return has_deadline_; }
  bool deadline_passed() const;
  double seconds_left() const;  // +inf without a deadline

  void set_heartbeat(Heartbeat heartbeat);         // written by the thread at its next turn
  void write_heartbeat_now(Heartbeat heartbeat);   // written now, from the calling thread

 private:
  using Clock = std::chrono::steady_clock;
  void loop();
  void write_locked();

  std::atomic<bool>* signal_flag_;
  bool has_deadline_;
  Clock::time_point deadline_;
  std::string heartbeat_file_;
  double interval_;
  std::atomic<bool> task_stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool quit_ = false;
  Heartbeat heartbeat_;
  bool have_heartbeat_ = false;
  std::thread thread_;
};

// Waiting for MPI messages by polling (MPI_Iprobe) without holding a core: spin (yielding) for
// 100 us after the last message, then sleep 50 us at a time, and after 5 ms of quiet 1 ms at a
// time. Keeps the round trip of short tasks in the tens of microseconds while a busy coordinator
// or an idle worker costs almost no CPU on an oversubscribed node.
class PollBackoff {
 public:
  void reset() { last_activity_ = std::chrono::steady_clock::now(); }
  void wait() const;

 private:
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
};

// Runs the worker loop on this (non-zero) rank; returns the exit code the coordinator sent.
int run_worker(const SweepOptions& options);

}  // namespace pimqat::runner
