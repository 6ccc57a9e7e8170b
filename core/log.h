#pragma once
// Logging without printing: library code calls log_info()/log_warn(); what becomes of the lines
// is decided by the program (runner/cli installs a sink that writes to stderr). With no sink
// installed, lines are dropped.
#include <functional>
#include <string>
#include <string_view>

namespace pimqat {

enum class LogLevel { Debug, Info, Warning, Error };

using LogSink = std::function<void(LogLevel, std::string_view)>;

void set_log_sink(LogSink sink);
void set_log_level(LogLevel minimum);
void log(LogLevel level, std::string_view message);
inline void log_debug(std::string_view m) { log(LogLevel::Debug, m); }
inline void log_info(std::string_view m) { log(LogLevel::Info, m); }
inline void log_warn(std::string_view m) { log(LogLevel::Warning, m); }

// A sink writing "[time] level: message" lines to stderr; the one the command line installs.
LogSink stderr_log_sink();

}  // namespace pimqat
