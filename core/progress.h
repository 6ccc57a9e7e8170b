#pragma once
// Progress of long work (an epoch, a sweep): done/total, rate and ETA. On a terminal it redraws
// one line with a bar; otherwise it emits a plain log line at most every `plain_interval` seconds.
// The owner calls update(); output goes to the stream given at construction (the command line
// passes stderr; library code passes nullptr and gets no output).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace pimqat {

// Auto: a redrawn bar when `out` is a terminal, plain lines otherwise. Plain: always plain lines
// (for work that runs beside another display, e.g. a training task inside a sweep).
enum class ProgressStyle { Auto, Plain };

class Progress {
 public:
  Progress(std::string label, std::int64_t total, std::FILE* out, std::string unit = "it",
           double plain_interval_seconds = 30.0, ProgressStyle style = ProgressStyle::Auto);
  ~Progress();

  // `done` items finished so far; `extra` is appended (e.g. "loss 0.412").
  void update(std::int64_t done, const std::string& extra = {});
  void finish(const std::string& extra = {});

  // "12.3 it/s, ETA 4m05s" for the current state; also used by `pimqat status`.
  static std::string format_duration(double seconds);
  std::string line(std::int64_t done, const std::string& extra) const;

 private:
  std::string label_;
  std::int64_t total_;
  std::FILE* out_;
  std::string unit_;
  double plain_interval_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
};

}  // namespace pimqat
