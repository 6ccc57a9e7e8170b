#include "runner/results.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "pimqat/version.h"

namespace pimqat::runner {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The whole text is one finite or infinite number ("4", "0.5", "1e-3", "-2").
bool parse_number(const std::string& text, double* value) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text.front()))) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || std::isnan(v)) return false;
  *value = v;
  return true;
}

// Per task: the record that decides its row.
struct TaskOutcome {
  const JournalRecord* done = nullptr;  // first Done record
  const JournalRecord* last = nullptr;  // last record of any status
  int attempts = 0;
};

// Axis columns of a set of rows: float64 if every present value is a number, else strings.
struct AxisColumns {
  std::vector<std::string> names;
  std::vector<bool> numeric;
};

AxisColumns axis_columns(const std::vector<const std::map<std::string, std::string>*>& rows) {
  std::set<std::string> names;
  for (const auto* axes : rows)
    for (const auto& [k, v] : *axes) names.insert(k);
  AxisColumns c;
  for (const std::string& name : names) {
    bool numeric = true;
    double unused;
    for (const auto* axes : rows) {
      const auto it = axes->find(name);
      if (it != axes->end() && !parse_number(it->second, &unused)) {
        numeric = false;
        break;
      }
    }
    c.names.push_back(name);
    c.numeric.push_back(numeric);
  }
  return c;
}

std::string unique_name(const H5Table& table, const std::string& name, const std::string& prefix) {
  return table.has(name) ? prefix + name : name;
}

void add_axis_columns(H5Table& table, const AxisColumns& columns,
                      const std::vector<const std::map<std::string, std::string>*>& rows) {
  for (std::size_t c = 0; c < columns.names.size(); ++c) {
    const std::string& name = columns.names[c];
    if (columns.numeric[c]) {
      std::vector<double> values(rows.size(), kNaN);
      for (std::size_t r = 0; r < rows.size(); ++r)
        if (const auto it = rows[r]->find(name); it != rows[r]->end()) parse_number(it->second, &values[r]);
      table.add(unique_name(table, name, "axis."), std::move(values));
    } else {
      std::vector<std::string> values(rows.size());
      for (std::size_t r = 0; r < rows.size(); ++r)
        if (const auto it = rows[r]->find(name); it != rows[r]->end()) values[r] = it->second;
      table.add(unique_name(table, name, "axis."), std::move(values));
    }
  }
}

// Metric columns, "accuracy" and "loss" first (when `leading` names them), then the others by name.
void add_metric_columns(H5Table& table, const std::vector<const JournalRecord*>& rows,
                        const std::vector<std::string>& leading) {
  std::set<std::string> others;
  for (const auto* r : rows)
    for (const auto& [k, v] : r->metrics)
      if (std::find(leading.begin(), leading.end(), k) == leading.end()) others.insert(k);
  std::vector<std::string> names = leading;
  names.insert(names.end(), others.begin(), others.end());
  for (const std::string& name : names) {
    std::vector<double> values(rows.size(), kNaN);
    for (std::size_t r = 0; r < rows.size(); ++r)
      if (const auto it = rows[r]->metrics.find(name); it != rows[r]->metrics.end()) values[r] = it->second;
    table.add(unique_name(table, name, "metric."), std::move(values));
  }
}

// Compares two axis maps column by column (numbers numerically, missing first).
int compare_axes(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b,
                 const AxisColumns& columns) {
  for (std::size_t c = 0; c < columns.names.size(); ++c) {
    const auto ia = a.find(columns.names[c]), ib = b.find(columns.names[c]);
    const bool ha = ia != a.end(), hb = ib != b.end();
    if (ha != hb) return ha ? 1 : -1;
    if (!ha) continue;
    if (columns.numeric[c]) {
      double va = 0, vb = 0;
      parse_number(ia->second, &va);
      parse_number(ib->second, &vb);
      if (va != vb) return va < vb ? -1 : 1;
    } else if (ia->second != ib->second) {
      return ia->second < ib->second ? -1 : 1;
    }
  }
  return 0;
}

std::string now_iso8601() {
  const std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

ResultsTables build_results_tables(const ResultsInput& input) {
  std::unordered_map<std::string, TaskOutcome> outcome;
  for (const JournalRecord& r : input.records) {
    TaskOutcome& o = outcome[r.id];
    o.attempts = std::max(o.attempts, r.attempt);
    o.last = &r;
    if (r.status == TaskStatus::Done && !o.done) o.done = &r;
  }

  // Status of every task: given, or derived (failed = attempts used up; skipped = depends on a failure).
  std::vector<std::string> status = input.status;
  if (status.size() != input.tasks.size()) {
    status.assign(input.tasks.size(), "pending");
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < input.tasks.size(); ++i) index[input.tasks[i].id] = i;
    for (std::size_t i = 0; i < input.tasks.size(); ++i) {
      const auto it = outcome.find(input.tasks[i].id);
      if (it == outcome.end()) continue;
      if (it->second.done) status[i] = "done";
      else if (it->second.attempts >= input.max_attempts) status[i] = "failed";
    }
    for (std::size_t i = 0; i < input.tasks.size(); ++i) {
      if (status[i] != "pending") continue;
      std::string cur = input.tasks[i].depends_on;
      for (std::size_t steps = 0; !cur.empty() && steps <= input.tasks.size(); ++steps) {
        const auto it = index.find(cur);
        if (it == index.end()) break;
        if (status[it->second] == "failed") {
          status[i] = "skipped";
          break;
        }
        cur = input.tasks[it->second].depends_on;
      }
    }
  }

  ResultsTables out;

  // /tasks, sorted by id; axes as strings.
  {
    std::vector<std::size_t> order(input.tasks.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return input.tasks[a].id < input.tasks[b].id; });
    std::vector<std::string> id, kind, st, host, depends_on, message;
    std::vector<std::int64_t> attempts, replicate, die;
    std::vector<double> seconds;
    std::vector<const std::map<std::string, std::string>*> axes;
    for (std::size_t i : order) {
      const ExpandedTask& t = input.tasks[i];
      const auto it = outcome.find(t.id);
      const TaskOutcome* o = it == outcome.end() ? nullptr : &it->second;
      const JournalRecord* decisive = o ? (o->done ? o->done : o->last) : nullptr;
      id.push_back(t.id);
      kind.emplace_back(task_kind_name(t.kind));
      st.push_back(status[i]);
      attempts.push_back(o ? o->attempts : 0);
      seconds.push_back(decisive ? decisive->seconds : kNaN);
      host.push_back(decisive ? decisive->host : "");
      depends_on.push_back(t.depends_on);
      replicate.push_back(t.replicate);
      die.push_back(t.die);
      message.push_back(o && !o->done && o->last ? o->last->message : "");
      axes.push_back(&t.axes);
    }
    out.tasks.add("id", std::move(id));
    out.tasks.add("kind", std::move(kind));
    out.tasks.add("status", std::move(st));
    out.tasks.add("attempts", std::move(attempts));
    out.tasks.add("seconds", std::move(seconds));
    out.tasks.add("host", std::move(host));
    out.tasks.add("depends_on", std::move(depends_on));
    out.tasks.add("replicate", std::move(replicate));
    out.tasks.add("die", std::move(die));
    out.tasks.add("message", std::move(message));
    AxisColumns columns = axis_columns(axes);
    std::fill(columns.numeric.begin(), columns.numeric.end(), false);  // "axis columns as strings"
    add_axis_columns(out.tasks, columns, axes);
  }

  // Done records by kind, in task-list order (then sorted per table).
  std::vector<const JournalRecord*> evals, trains, synthetics;
  for (const ExpandedTask& t : input.tasks) {
    const auto it = outcome.find(t.id);
    if (it == outcome.end() || !it->second.done) continue;
    const JournalRecord* r = it->second.done;
    (t.kind == TaskKind::Eval ? evals : t.kind == TaskKind::Train ? trains : synthetics).push_back(r);
  }
  const auto axes_of = [](const std::vector<const JournalRecord*>& rows) {
    std::vector<const std::map<std::string, std::string>*> a;
    for (const auto* r : rows) a.push_back(&r->axes);
    return a;
  };

  // /eval: one row per die, sorted by train id, axes, die, eval id.
  {
    const AxisColumns columns = axis_columns(axes_of(evals));
    std::sort(evals.begin(), evals.end(), [&](const JournalRecord* a, const JournalRecord* b) {
      if (a->depends_on != b->depends_on) return a->depends_on < b->depends_on;
      if (const int c = compare_axes(a->axes, b->axes, columns); c != 0) return c < 0;
      if (a->die != b->die) return a->die < b->die;
      return a->id < b->id;
    });
    std::vector<std::string> train_id, eval_id;
    std::vector<std::int64_t> replicate, die;
    for (const auto* r : evals) {
      train_id.push_back(r->depends_on);
      eval_id.push_back(r->id);
      replicate.push_back(r->replicate);
      die.push_back(r->die);
    }
    out.eval.add("train_id", std::move(train_id));
    out.eval.add("eval_id", std::move(eval_id));
    out.eval.add("replicate", std::move(replicate));
    out.eval.add("die", std::move(die));
    add_axis_columns(out.eval, columns, axes_of(evals));
    add_metric_columns(out.eval, evals, {"accuracy", "loss"});
  }

  // /train and /curves, sorted by train id.
  {
    std::sort(trains.begin(), trains.end(), [](const JournalRecord* a, const JournalRecord* b) { return a->id < b->id; });
    std::vector<std::string> train_id;
    std::vector<std::int64_t> replicate, epochs;
    for (const auto* r : trains) {
      train_id.push_back(r->id);
      replicate.push_back(r->replicate);
      epochs.push_back(static_cast<std::int64_t>(r->curve.size()));
    }
    out.train.add("train_id", std::move(train_id));
    out.train.add("replicate", std::move(replicate));
    out.train.add("epochs", std::move(epochs));
    add_axis_columns(out.train, axis_columns(axes_of(trains)), axes_of(trains));
    add_metric_columns(out.train, trains, {});

    std::vector<std::string> curve_id;
    std::vector<std::int64_t> epoch;
    std::vector<double> lr, train_loss, train_accuracy, test_loss, test_accuracy, seconds;
    for (const auto* r : trains)
      for (const EpochRecord& e : r->curve) {
        curve_id.push_back(r->id);
        epoch.push_back(e.epoch);
        lr.push_back(e.lr);
        train_loss.push_back(e.train_loss);
        train_accuracy.push_back(e.train_accuracy);
        test_loss.push_back(e.test_loss);
        test_accuracy.push_back(e.test_accuracy);
        seconds.push_back(e.seconds);
      }
    out.curves.add("train_id", std::move(curve_id));
    out.curves.add("epoch", std::move(epoch));
    out.curves.add("lr", std::move(lr));
    out.curves.add("train_loss", std::move(train_loss));
    out.curves.add("train_accuracy", std::move(train_accuracy));
    out.curves.add("test_loss", std::move(test_loss));
    out.curves.add("test_accuracy", std::move(test_accuracy));
    out.curves.add("seconds", std::move(seconds));
  }

  // /synthetic, sorted by id.
  {
    std::sort(synthetics.begin(), synthetics.end(),
              [](const JournalRecord* a, const JournalRecord* b) { return a->id < b->id; });
    std::vector<std::string> id, depends_on;
    std::vector<std::int64_t> replicate, attempt;
    for (const auto* r : synthetics) {
      id.push_back(r->id);
      depends_on.push_back(r->depends_on);
      replicate.push_back(r->replicate);
      attempt.push_back(r->attempt);
    }
    out.synthetic.add("id", std::move(id));
    out.synthetic.add("depends_on", std::move(depends_on));
    out.synthetic.add("replicate", std::move(replicate));
    out.synthetic.add("attempt", std::move(attempt));
    add_axis_columns(out.synthetic, axis_columns(axes_of(synthetics)), axes_of(synthetics));
    add_metric_columns(out.synthetic, synthetics, {});
  }
  return out;
}

void write_results(const std::string& path, const ResultsInput& input) {
  const ResultsTables tables = build_results_tables(input);
  std::int64_t done = 0, failed = 0;
  for (const std::string& s : tables.tasks.strings("status")) {
    done += s == "done";
    failed += s == "failed";
  }
  const auto compression = [](const H5Table& t) {
    return t.rows() > 20000 ? H5Compression::Deflate : H5Compression::None;
  };
  write_h5_atomically(path, [&](H5File& file) {
    file.set_attr_int("format_version", kFileFormatVersion);
    file.set_attr_string("program", "pimqat");
    file.set_attr_string("program_version", kVersion);
    file.set_attr_string("git_commit", kGitCommit);
    file.set_attr_string("build_flags", kBuildFlags);
    file.set_attr_string("sweep_text", input.sweep_text);
    file.set_attr_strings("hosts", input.hosts);
    file.set_attr_string("created", now_iso8601());
    file.set_attr_int("tasks_total", static_cast<std::int64_t>(input.tasks.size()));
    file.set_attr_int("tasks_done", done);
    file.set_attr_int("tasks_failed", failed);
    file.set_attr_int("journal_records", static_cast<std::int64_t>(input.records.size()));
    write_table(file, "tasks", tables.tasks, compression(tables.tasks));
    write_table(file, "eval", tables.eval, compression(tables.eval));
    write_table(file, "train", tables.train, compression(tables.train));
    write_table(file, "curves", tables.curves, compression(tables.curves));
    write_table(file, "synthetic", tables.synthetic, compression(tables.synthetic));
  });
}

}  // namespace pimqat::runner
