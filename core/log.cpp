#include "core/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace pimqat {
namespace {

std::mutex& log_mutex() {
  static std::mutex m;
  return m;
}
LogSink& sink() {
  static LogSink s;
  return s;
}
LogLevel& minimum_level() {
  static LogLevel l = LogLevel::Info;
  return l;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
  }
  return "?";
}

}  // namespace

void set_log_sink(LogSink s) {
  std::lock_guard lock(log_mutex());
  sink() = std::move(s);
}

void set_log_level(LogLevel minimum) { minimum_level() = minimum; }

void log(LogLevel level, std::string_view message) {
  if (level < minimum_level()) return;
  std::lock_guard lock(log_mutex());
  if (sink()) sink()(level, message);
}

LogSink stderr_log_sink() {
  return [](LogLevel level, std::string_view message) {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    std::fprintf(stderr, "[%s] %s: %.*s\n", stamp, level_name(level), static_cast<int>(message.size()),
                 message.data());
    std::fflush(stderr);
  };
}

}  // namespace pimqat
