#include "runner/rundir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "pim/gaussian.h"
#include "runner/execute.h"
#include "runner/journal.h"
#include "runner/sweep.h"

namespace pimqat::runner {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFingerprintHeader = "pimqat-sweep-fingerprint 1";
constexpr const char* kExpandedHeader =
    "# pimqat task list v1: id kind depends_on replicate die canonical axis=value...  (tab-separated, "
    "\\t \\n \\\\ escaped)";

std::string escape_field(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out;
}

std::string unescape_field(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    out += c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
  }
  return out;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return fields;
}

TaskKind parse_kind(const std::string& s, const std::string& where) {
  if (s == "train") return TaskKind::Train;
  if (s == "eval") return TaskKind::Eval;
  if (s == "synthetic") return TaskKind::Synthetic;
  throw Error(where + ": unknown task kind '" + s + "' (valid: train, eval, synthetic)");
}

std::uint64_t fnv1a(std::uint64_t h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return (h ^ 0xffu) * 0x100000001b3ull;  // field separator
}

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::map<std::string, std::string> parse_key_values(const std::string& text) {
  std::map<std::string, std::string> kv;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto space = line.find(' ');
    if (space == std::string::npos) continue;
    kv[line.substr(0, space)] = line.substr(space + 1);
  }
  return kv;
}

// "line 7: 'a' (directory) vs 'b' (FILE)", or empty when the texts are equal.
std::string first_text_difference(const std::string& stored, const std::string& given, const std::string& dir_file,
                                  const std::string& given_file) {
  std::istringstream a(stored), b(given);
  std::string la, lb;
  for (int line = 1;; ++line) {
    const bool ha = static_cast<bool>(std::getline(a, la));
    const bool hb = static_cast<bool>(std::getline(b, lb));
    if (!ha && !hb) return {};
    if (ha != hb || la != lb) {
      const auto show = [](bool has, const std::string& s) { return has ? "'" + s + "'" : std::string("(end of file)"); };
      return "first difference at line " + std::to_string(line) + ": " + show(ha, la) + " in " + dir_file + " vs " +
             show(hb, lb) + " in " + given_file;
    }
  }
}

std::string describe_task(const ExpandedTask& t) {
  std::string s = t.id + " (" + std::string(task_kind_name(t.kind));
  for (const auto& [k, v] : t.axes) s += ", " + k + "=" + v;
  if (t.die >= 0) s += ", die=" + std::to_string(t.die);
  return s + ")";
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  ::close(fd);
}

}  // namespace

std::string run_file(const std::string& run_dir, const std::string& name) { return (fs::path(run_dir) / name).string(); }
std::string journal_path(const std::string& run_dir) { return run_file(run_dir, kJournalFileName); }
std::string results_path(const std::string& run_dir) { return run_file(run_dir, kResultsFileName); }
std::string heartbeat_path(const std::string& run_dir) { return run_file(run_dir, kHeartbeatFileName); }
std::string checkpoint_dir(const std::string& run_dir, const std::string& train_id) {
  return (fs::path(run_dir) / "checkpoints" / train_id).string();
}
std::string log_dir(const std::string& run_dir) { return run_file(run_dir, "logs"); }

std::string task_list_fingerprint(const std::vector<TaskSpec>& tasks) {
  std::vector<std::pair<std::string, std::string>> keys;
  keys.reserve(tasks.size());
  for (const TaskSpec& t : tasks) keys.emplace_back(t.id, t.depends_on);
  std::sort(keys.begin(), keys.end());
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const auto& [id, dep] : keys) h = fnv1a(fnv1a(h, id), dep);
  return hex16(mix64(h ^ keys.size()));
}

void validate_task_list(const std::vector<TaskSpec>& tasks) {
  std::vector<std::string> problems;
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].id.empty()) problems.push_back("task #" + std::to_string(i) + " has an empty id");
    else if (!index.emplace(tasks[i].id, i).second)
      problems.push_back("task id " + tasks[i].id + " appears twice (tasks #" + std::to_string(index[tasks[i].id]) +
                         " and #" + std::to_string(i) + "): two tasks with identical parameters");
  }
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const std::string& dep = tasks[i].depends_on;
    if (dep.empty()) continue;
    if (!index.count(dep)) {
      problems.push_back("task " + tasks[i].id + " depends on " + dep + ", which is not in the task list");
      continue;
    }
    // Follow the chain; more steps than tasks means a cycle.
    std::string cur = dep;
    for (std::size_t steps = 0; !cur.empty(); ++steps) {
      if (steps > tasks.size() || cur == tasks[i].id) {
        problems.push_back("task " + tasks[i].id + " is part of a dependency cycle");
        break;
      }
      const auto it = index.find(cur);
      if (it == index.end()) break;
      cur = tasks[it->second].depends_on;
    }
  }
  if (problems.empty()) return;
  std::string message = "inconsistent task list (" + std::to_string(problems.size()) + " problem" +
                        (problems.size() > 1 ? "s" : "") + "):";
  for (const auto& p : problems) message += "\n  " + p;
  throw Error(message);
}

ExpandedTask expanded_task(const TaskSpec& spec) {
  ExpandedTask t;
  t.id = spec.id;
  t.kind = spec.kind;
  t.depends_on = spec.depends_on;
  t.replicate = spec.replicate;
  t.die = spec.kind == TaskKind::Eval ? spec.config.eval.first_die : -1;
  t.axes = spec.axes;
  t.canonical = spec.canonical;
  return t;
}

std::string format_expanded_tasks(const std::vector<TaskSpec>& tasks) {
  std::string out = std::string(kExpandedHeader) + "\n";
  for (const TaskSpec& spec : tasks) {
    const ExpandedTask t = expanded_task(spec);
    out += escape_field(t.id) + '\t' + std::string(task_kind_name(t.kind)) + '\t' + escape_field(t.depends_on) + '\t' +
           std::to_string(t.replicate) + '\t' + std::to_string(t.die) + '\t' + escape_field(t.canonical);
    for (const auto& [k, v] : t.axes) out += '\t' + escape_field(k) + '=' + escape_field(v);
    out += '\n';
  }
  return out;
}

std::vector<ExpandedTask> parse_expanded_tasks(const std::string& text, const std::string& origin) {
  std::vector<ExpandedTask> tasks;
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    const std::string where = origin + ":" + std::to_string(number);
    const auto fields = split_tabs(line);
    if (fields.size() < 6)
      throw Error(where + ": " + std::to_string(fields.size()) + " tab-separated fields, expected at least 6");
    ExpandedTask t;
    t.id = unescape_field(fields[0]);
    t.kind = parse_kind(fields[1], where);
    t.depends_on = unescape_field(fields[2]);
    try {
      t.replicate = std::stoi(fields[3]);
      t.die = std::stoi(fields[4]);
    } catch (const std::exception&) {
      throw Error(where + ": replicate '" + fields[3] + "' or die '" + fields[4] + "' is not an integer");
    }
    t.canonical = unescape_field(fields[5]);
    for (std::size_t i = 6; i < fields.size(); ++i) {
      const auto eq = fields[i].find('=');
      if (eq == std::string::npos) throw Error(where + ": axis field '" + fields[i] + "' has no '='");
      t.axes[unescape_field(fields[i].substr(0, eq))] = unescape_field(fields[i].substr(eq + 1));
    }
    tasks.push_back(std::move(t));
  }
  return tasks;
}

std::vector<ExpandedTask> read_expanded_tasks(const std::string& run_dir) {
  const std::string path = run_file(run_dir, kExpandedFileName);
  return parse_expanded_tasks(read_text_file(path), path);
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create " + tmp + ": " + std::strerror(errno));
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("cannot write " + tmp + ": " + why);
    }
    written += static_cast<std::size_t>(n);
  }
  if (fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot write " + tmp + " (fsync/close): " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot rename " + tmp + " to " + path + ": " + why);
  }
  fsync_directory(fs::path(path).parent_path().string());
}

RunDirState prepare_run_directory(const std::string& run_dir, const SweepSource& sweep,
                                  const std::vector<TaskSpec>& tasks) {
  validate_task_list(tasks);
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw Error("cannot create the run directory " + run_dir + ": " + ec.message());
  for (const std::string& sub : {run_file(run_dir, "checkpoints"), log_dir(run_dir)}) {
    fs::create_directories(sub, ec);
    if (ec) throw Error("cannot create " + sub + ": " + ec.message());
  }

  const std::string fingerprint = task_list_fingerprint(tasks);
  const std::string fingerprint_file = run_file(run_dir, kFingerprintFileName);
  const std::string sweep_file = run_file(run_dir, kSweepFileName);
  const std::string expanded_file = run_file(run_dir, kExpandedFileName);

  if (fs::exists(fingerprint_file)) {
    const auto stored = parse_key_values(read_text_file(fingerprint_file));
    const auto it = stored.find("tasks");
    if (it == stored.end())
      throw Error(fingerprint_file + " has no 'tasks' line: this file was not written by pimqat or is damaged");
    if (it->second == fingerprint) {
      if (fs::exists(sweep_file) && read_text_file(sweep_file) != sweep.text)
        log_info("the text of " + sweep.path + " differs from " + sweep_file +
                 " but it expands to the same tasks: resuming (the directory keeps its original sweep.yaml)");
      return RunDirState::Resumed;
    }
    // A different sweep: explain how.
    std::string message = "the run directory " + run_dir + " holds a different sweep: " + sweep.path + " expands to " +
                          std::to_string(tasks.size()) + " tasks (fingerprint " + fingerprint + ")";
    std::vector<ExpandedTask> old_tasks;
    try {
      old_tasks = read_expanded_tasks(run_dir);
    } catch (const Error&) {
    }
    const auto count = stored.find("count");
    message += ", " + expanded_file + " lists " +
               (count != stored.end() ? count->second : std::to_string(old_tasks.size())) + " (fingerprint " +
               it->second + ").";
    std::set<std::string> old_ids, new_ids;
    for (const auto& t : old_tasks) old_ids.insert(t.id);
    for (const auto& t : tasks) new_ids.insert(t.id);
    std::size_t added = 0, removed = 0;
    std::string first_added, first_removed;
    for (const auto& t : tasks)
      if (!old_ids.count(t.id) && added++ == 0) first_added = describe_task(expanded_task(t));
    for (const auto& t : old_tasks)
      if (!new_ids.count(t.id) && removed++ == 0) first_removed = describe_task(t);
    if (!old_tasks.empty()) {
      message += " " + std::to_string(added) + " tasks are new";
      if (added) message += " (e.g. " + first_added + ")";
      message += ", " + std::to_string(removed) + " of the directory's tasks are not in the new sweep";
      if (removed) message += " (e.g. " + first_removed + ")";
      message += ".";
    }
    if (fs::exists(sweep_file)) {
      const std::string diff = first_text_difference(read_text_file(sweep_file), sweep.text, sweep_file, sweep.path);
      if (diff.empty())
        message += " The sweep file is the same: this pimqat gives some of its tasks other identities than the one "
                   "that made the directory.";
      else
        message += " The sweep files differ: " + diff + ".";
    }
    // Evaluation tasks that differ only by the thermal-noise model (a pimqat whose noise definition
    // changed): say so, their results are not comparable.
    std::size_t noise_model_only = 0;
    for (const auto& t : tasks)
      if (!old_ids.count(t.id)) {
        const std::string before = identity_without_noise_model(t.canonical);
        if (!before.empty() && old_ids.count(before)) ++noise_model_only;
      }
    if (noise_model_only > 0)
      message += " " + std::to_string(noise_model_only) + " evaluation tasks with thermal noise differ from the " +
                 "directory's only by the thermal-noise model (" + std::string(kNoiseModelKey) + " " +
                 std::to_string(pim::kThermalNoiseModel) + "; docs/pim.md): this pimqat draws the noise " +
                 "differently, so their results would not be comparable with the ones stored.";
    message += " Results of different sweeps are never mixed in one directory: run with a new --out directory "
               "(e.g. --out " + fs::path(run_dir).lexically_normal().string() + "-2), or delete " + run_dir +
               " to start over.";
    throw Error(message);
  }

  if (fs::exists(journal_path(run_dir)) && fs::file_size(journal_path(run_dir)) > 0)
    throw Error(run_dir + " has a journal but no " + kFingerprintFileName +
                ": it was not created by this version of pimqat sweep, or its files were removed; "
                "use a new --out directory");

  // First run: the sweep as given, the task list, and last the fingerprint (a kill before it
  // leaves a directory that the next run simply prepares again).
  write_file_atomically(sweep_file, sweep.text);
  write_file_atomically(expanded_file, format_expanded_tasks(tasks));
  std::string fp = std::string(kFingerprintHeader) + "\n";
  fp += "tasks " + fingerprint + "\n";
  fp += "count " + std::to_string(tasks.size()) + "\n";
  fp += "sweep " + (sweep.fingerprint.empty() ? std::string("-") : sweep.fingerprint) + "\n";
  fp += "source " + sweep.path + "\n";
  write_file_atomically(fingerprint_file, fp);
  return RunDirState::Created;
}

int remove_stale_temporaries(const std::string& run_dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    const std::string name = entry.path().filename().string();
    const auto tmp = name.find(".tmp");
    if (tmp == std::string::npos || tmp + 5 > name.size() || (name[tmp + 4] != '-' && name[tmp + 4] != '.')) continue;
    if (name.find_first_not_of("0123456789", tmp + 5) != std::string::npos) continue;  // NAME.tmp[-.]PID only
    if (fs::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

RunLock::RunLock(const std::string& run_dir) {
  const std::string path = run_file(run_dir, kLockFileName);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    char buf[512] = {};
    const ssize_t n = pread(fd_, buf, sizeof buf - 1, 0);
    if (n > 0) holder = std::string(buf, static_cast<std::size_t>(n));
    while (!holder.empty() && holder.back() == '\n') holder.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw Error(run_dir + " is in use by another pimqat sweep (" + (holder.empty() ? "holder unknown" : holder) +
                  "); wait for it to finish or stop it (Ctrl-C, scancel) before running this command again");
    throw Error("cannot lock " + path + ": " + std::strerror(err));
  }
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  const std::string text = "pid " + std::to_string(::getpid()) + " on " + host_name() + " since " + when + "\n";
  if (ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t w = pwrite(fd_, text.data(), text.size(), 0);
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) {
    flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace pimqat::runner
