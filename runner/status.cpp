#include "runner/status.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/progress.h"
#include "runner/journal.h"
#include "runner/rundir.h"

namespace pimqat::runner {
namespace {

constexpr const char* kHeartbeatHeader = "pimqat-heartbeat 1";
constexpr double kClockSkewSeconds = 60;

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

double unix_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string format_heartbeat(const Heartbeat& h) {
  std::ostringstream out;
  out << kHeartbeatHeader << "\n";
  out << "pid " << h.pid << "\nhost " << h.host << "\nranks " << h.ranks << "\nstarted " << format_double(h.started)
      << "\nupdated " << format_double(h.updated) << "\ninterval " << format_double(h.interval) << "\nstate "
      << h.state << "\nmax_attempts " << h.max_attempts << "\ntotal " << h.total << "\ndone " << h.done
      << "\nfailed " << h.failed << "\nskipped " << h.skipped << "\nrunning " << h.running << "\ndone_at_start "
      << h.done_at_start << "\n";
  if (h.task_timeout > 0) out << "task_timeout " << format_double(h.task_timeout) << "\n";
  for (const RunningTask& t : h.tasks)
    out << "task " << t.id << " " << t.kind << " " << t.rank << " " << t.host << " " << format_double(t.since) << " "
        << t.attempt << "\n";
  return out.str();
}

Heartbeat parse_heartbeat(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kHeartbeatHeader)
    throw Error(origin + ": not a pimqat heartbeat file (first line '" + line + "')");
  Heartbeat h;
  for (int number = 2; std::getline(in, line); ++number) {
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    bool ok = true;
    if (key == "pid") ok = static_cast<bool>(fields >> h.pid);
    else if (key == "host") ok = static_cast<bool>(fields >> h.host);
    else if (key == "ranks") ok = static_cast<bool>(fields >> h.ranks);
    else if (key == "started") ok = static_cast<bool>(fields >> h.started);
    else if (key == "updated") ok = static_cast<bool>(fields >> h.updated);
    else if (key == "interval") ok = static_cast<bool>(fields >> h.interval);
    else if (key == "state") ok = static_cast<bool>(fields >> h.state);
    else if (key == "max_attempts") ok = static_cast<bool>(fields >> h.max_attempts);
    else if (key == "total") ok = static_cast<bool>(fields >> h.total);
    else if (key == "done") ok = static_cast<bool>(fields >> h.done);
    else if (key == "failed") ok = static_cast<bool>(fields >> h.failed);
    else if (key == "skipped") ok = static_cast<bool>(fields >> h.skipped);
    else if (key == "running") ok = static_cast<bool>(fields >> h.running);
    else if (key == "done_at_start") ok = static_cast<bool>(fields >> h.done_at_start);
    else if (key == "task_timeout") ok = static_cast<bool>(fields >> h.task_timeout) && h.task_timeout >= 0;
    else if (key == "task") {
      RunningTask t;
      ok = static_cast<bool>(fields >> t.id >> t.kind >> t.rank >> t.host >> t.since >> t.attempt);
      if (ok) h.tasks.push_back(t);
    } else {
      continue;  // a key of a newer writer
    }
    // Nothing may follow the value(s): "pid 4242<0x10>host node-1" (a byte in place of a line
    // break) read as pid 4242 and lost the host line (fuzz finding, tests/runner/regression_status.cpp).
    std::string rest;
    if (ok && (fields >> rest)) ok = false;
    if (!ok) throw Error(origin + ":" + std::to_string(number) + ": malformed line '" + line + "'");
  }
  return h;
}

SweepStatus read_sweep_status(const std::string& run_dir, double now) {
  namespace fs = std::filesystem;
  SweepStatus s;
  s.run_dir = run_dir;
  if (!fs::exists(run_file(run_dir, kExpandedFileName)))
    throw Error(run_dir + " is not a pimqat run directory (no " + kExpandedFileName +
                "); `pimqat sweep FILE --out " + run_dir + "` creates one");
  const std::vector<ExpandedTask> tasks = read_expanded_tasks(run_dir);
  s.total = static_cast<std::int64_t>(tasks.size());

  const std::string hb_path = heartbeat_path(run_dir);
  if (fs::exists(hb_path)) {
    s.heartbeat = parse_heartbeat(read_text_file(hb_path), hb_path);
    s.has_heartbeat = true;
    s.heartbeat_age = now - s.heartbeat.updated;
    const bool active_state = s.heartbeat.state == "running" || s.heartbeat.state == "stopping";
    // A heartbeat from the future (beyond a minute of clock skew between hosts) proves nothing.
    s.live = active_state && s.heartbeat_age < std::max(10.0, 3 * s.heartbeat.interval) &&
             s.heartbeat_age > -kClockSkewSeconds;
  }
  const int max_attempts = s.has_heartbeat ? s.heartbeat.max_attempts : 3;

  std::unordered_map<std::string, int> failed_attempts;
  std::set<std::string> done;
  std::vector<double> ends;  // end times of attempts
  std::vector<JournalRecord> failures;
  const JournalScan scan = scan_journal(journal_path(run_dir), [&](const JournalRecord& r) {
    ++s.attempts;
    ends.push_back(r.start_time + r.seconds);
    if (r.status == TaskStatus::Done) done.insert(r.id);
    else {
      failed_attempts[r.id] = std::max(failed_attempts[r.id], r.attempt);
      failures.push_back(r);
      if (failures.size() > 50) failures.erase(failures.begin(), failures.begin() + 25);
    }
  });
  s.journal_warning = scan.warning;

  std::set<std::string> final_failed;
  for (const ExpandedTask& t : tasks) {
    if (done.count(t.id)) {
      ++s.done;
      continue;
    }
    const auto it = failed_attempts.find(t.id);
    if (it == failed_attempts.end()) continue;
    if (it->second >= max_attempts) final_failed.insert(t.id);
    else ++s.retrying;
  }
  s.failed = static_cast<std::int64_t>(final_failed.size());
  // Skipped: depends (directly or not) on a failed task.
  std::unordered_map<std::string, std::string> dep_of;
  for (const ExpandedTask& t : tasks) dep_of[t.id] = t.depends_on;
  for (const ExpandedTask& t : tasks) {
    if (done.count(t.id) || final_failed.count(t.id)) continue;
    std::string cur = t.depends_on;
    for (std::size_t steps = 0; !cur.empty() && steps <= tasks.size(); ++steps) {
      if (final_failed.count(cur)) {
        ++s.skipped;
        break;
      }
      cur = dep_of.count(cur) ? dep_of[cur] : std::string();
    }
  }
  if (s.live) s.running = static_cast<std::int64_t>(s.heartbeat.tasks.size());

  // Rate over the latest run: attempts that ended after it started.
  const double run_start = s.has_heartbeat ? s.heartbeat.started : (ends.empty() ? now : *std::min_element(ends.begin(), ends.end()));
  const double run_end = s.live ? now : (ends.empty() ? run_start : std::max(run_start, *std::max_element(ends.begin(), ends.end())));
  const auto finished_in_run = std::count_if(ends.begin(), ends.end(), [&](double e) { return e >= run_start; });
  if (run_end > run_start && finished_in_run > 0) s.rate = static_cast<double>(finished_in_run) / (run_end - run_start);
  const std::int64_t remaining = s.total - s.done - s.failed - s.skipped;
  if (remaining <= 0) s.eta = 0;
  else if (s.rate > 0) s.eta = static_cast<double>(remaining) / s.rate;

  for (auto it = failures.rbegin(); it != failures.rend() && s.recent_failures.size() < 5; ++it) {
    std::string msg = it->message;
    if (const auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl) + " ...";
    s.recent_failures.push_back(it->id + " (" + std::string(task_kind_name(it->kind)) + ") attempt " +
                                std::to_string(it->attempt) + ": " + msg);
  }
  return s;
}

std::string format_sweep_status(const SweepStatus& s) {
  std::ostringstream out;
  std::string state;
  if (s.live) state = s.heartbeat.state == "stopping" ? "stopping" : "running";
  else if (s.has_heartbeat && (s.heartbeat.state == "running" || s.heartbeat.state == "stopping") &&
           s.heartbeat_age <= -kClockSkewSeconds)
    state = "unknown (the heartbeat's time is " + Progress::format_duration(-s.heartbeat_age) +
            " in the future: a wrong clock or a damaged file)";
  else if (s.has_heartbeat && s.heartbeat.state == "running")
    state = "not running (the coordinator's last heartbeat is " + Progress::format_duration(s.heartbeat_age) +
            " old: killed or crashed; run the same command to resume)";
  else if (s.has_heartbeat) state = s.heartbeat.state;
  else state = "never started";
  out << s.run_dir << ": " << state << "\n";
  const std::int64_t to_do = std::max<std::int64_t>(0, s.total - s.done - s.failed - s.skipped - s.running);
  out << "  tasks: " << s.done << " done, " << s.failed << " failed, " << s.running << " running, " << to_do
      << " to do (" << s.retrying << " retrying), " << s.skipped << " skipped, " << s.total << " total\n";
  char line[200];
  std::snprintf(line, sizeof line, "  rate: %.3g tasks/s, ETA %s", s.rate, Progress::format_duration(s.eta).c_str());
  out << line;
  if (s.live && s.has_heartbeat)
    out << " (" << s.heartbeat.ranks << " rank" << (s.heartbeat.ranks > 1 ? "s" : "") << ", coordinator pid "
        << s.heartbeat.pid << " on " << s.heartbeat.host << ")";
  out << "\n";
  if (s.live)
    for (const RunningTask& t : s.heartbeat.tasks)
      out << "  running: " << t.id << " (" << t.kind << ", attempt " << t.attempt << ") on rank " << t.rank << " ("
          << t.host << ") for " << Progress::format_duration(s.heartbeat.updated - t.since)
          << (s.heartbeat.task_timeout > 0
                  ? " of its " + Progress::format_duration(s.heartbeat.task_timeout) + " time budget"
                  : std::string())
          << "\n";
  for (const std::string& f : s.recent_failures) out << "  failed attempt: " << f << "\n";
  if (!s.journal_warning.empty()) out << "  warning: " << s.journal_warning << "\n";
  return out.str();
}

}  // namespace pimqat::runner
