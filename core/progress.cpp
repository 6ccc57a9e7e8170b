#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace pimqat {

Progress::Progress(std::string label, std::int64_t total, std::FILE* out, std::string unit,
                   double plain_interval_seconds, ProgressStyle style)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      unit_(std::move(unit)),
      plain_interval_(plain_interval_seconds),
      tty_(style == ProgressStyle::Auto && out && isatty(fileno(out))),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() {
  if (!finished_ && tty_) std::fputc('\n', out_);
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[48];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%llds", s);
  return buf;
}

std::string Progress::line(std::int64_t done, const std::string& extra) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1.0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %lld/%lld (%.0f%%) %.1f %s/s, elapsed %s, ETA %s", label_.c_str(),
                static_cast<long long>(done), static_cast<long long>(total_),
                total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0, rate,
                unit_.c_str(), format_duration(elapsed).c_str(), format_duration(eta).c_str());
  std::string s = buf;
  if (!extra.empty()) s += ", " + extra;
  return s;
}

void Progress::update(std::int64_t done, const std::string& extra) {
  if (!out_) return;
  const auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_print_ < std::chrono::milliseconds(200) && done < total_) return;
    constexpr int kWidth = 24;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * std::min<std::int64_t>(done, total_) / total_) : kWidth;
    std::string bar = "[" + std::string(static_cast<std::size_t>(filled), '#') +
                      std::string(static_cast<std::size_t>(kWidth - filled), '.') + "] ";
    std::fprintf(out_, "\r\033[K%s%s", bar.c_str(), line(done, extra).c_str());
    std::fflush(out_);
  } else {
    if (std::chrono::duration<double>(now - last_print_).count() < plain_interval_ && done < total_) return;
    std::fprintf(out_, "%s\n", line(done, extra).c_str());
    std::fflush(out_);
  }
  last_print_ = now;
}

void Progress::finish(const std::string& extra) {
  if (!out_ || finished_) return;
  finished_ = true;
  const std::string s = line(total_, extra);
  if (tty_)
    std::fprintf(out_, "\r\033[K%s\n", s.c_str());
  else
    std::fprintf(out_, "%s\n", s.c_str());
  std::fflush(out_);
}

}  // namespace pimqat
