// Runner benchmarks (bench/runner_bench.sh runs them):
//   runner_bench dispatch N DIR [--no-sync]   N zero-length synthetic tasks through the coordinator
//                                             (start under mpirun -np P for P-1 workers); prints tasks/s
//   runner_bench replay N DIR                 writes a journal of N realistic records, then times its
//                                             replay (full decode) and finished_task_ids (heads only)
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "runner/coordinator.h"
#include "runner/journal.h"

namespace {

using namespace pimqat;
using namespace pimqat::runner;
using Clock = std::chrono::steady_clock;

std::string hex_id(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

int dispatch(long n, const std::string& dir, bool sync) {
  bool mpi = std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
  if (mpi) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  }
  std::vector<TaskSpec> tasks;
  tasks.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    TaskSpec t;
    t.kind = TaskKind::Synthetic;
    t.id = hex_id(mix64(0xbe9c000000000000ull + static_cast<std::uint64_t>(i)));
    t.canonical = "{\"synthetic.result\":" + std::to_string(i) + ",\"task.kind\":\"synthetic\"}";
    t.synthetic.result = static_cast<double>(i);
    t.axes = {{"synthetic.result", std::to_string(i)}};
    tasks.push_back(std::move(t));
  }
  SweepOptions options;
  options.run_dir = dir;
  options.sweep.path = "bench";
  options.sweep.text = "# runner_bench dispatch\n";
  options.durability = sync ? Durability::Sync : Durability::None;
  options.results_interval_seconds = 1e9;  // only the final rebuild
  options.results_interval_records = static_cast<std::size_t>(-1);
  int rank = 0;
  if (mpi) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const auto t0 = Clock::now();
  const SweepSummary summary = run_sweep_tasks(tasks, options);
  const double total = std::chrono::duration<double>(Clock::now() - t0).count();
  if (rank == 0) {
    // Steady dispatch rate: finished attempts over the span from the first start to the last end.
    const JournalReplay replay = replay_journal(journal_path(dir));
    double first = 1e300, last = 0;
    for (const JournalRecord& r : replay.records) {
      first = std::min(first, r.start_time);
      last = std::max(last, r.start_time + r.seconds);
    }
    std::printf("dispatch ranks=%d workers=%d tasks=%zu sync=%s: %.0f tasks/s (steady, journal span %.3f s); "
                "%.0f tasks/s including start-up and results.h5 (%.3f s)\n",
                summary.ranks, std::max(1, summary.ranks - 1), summary.attempts, sync ? "fdatasync" : "none",
                static_cast<double>(replay.records.size()) / (last - first), last - first,
                static_cast<double>(summary.attempts) / total, total);
  }
  if (mpi) MPI_Finalize();
  return summary.attempts == static_cast<std::size_t>(n) || rank != 0 ? 0 : 1;
}

int replay(long n, const std::string& dir) {
  std::filesystem::create_directories(dir);
  const std::string path = journal_path(dir);
  std::filesystem::remove(path);
  // Records shaped like those of an eval task of a real sweep.
  const auto t0 = Clock::now();
  {
    JournalWriter writer(path, Durability::None);
    std::vector<JournalRecord> batch;
    for (long i = 0; i < n; ++i) {
      JournalRecord r;
      r.id = hex_id(mix64(static_cast<std::uint64_t>(i)));
      r.kind = TaskKind::Eval;
      r.status = i % 97 == 0 ? TaskStatus::Failed : TaskStatus::Done;
      r.depends_on = hex_id(mix64(static_cast<std::uint64_t>(i / 128) + (1ull << 40)));
      r.die = static_cast<int>(i % 32);
      r.axes = {{"pim.train_bits", std::to_string(3 + i % 6)}, {"eval.infer_bits", std::to_string(4 + i % 4)},
                {"eval.noise_sigma", std::to_string(0.5 * static_cast<double>(i % 5))}};
      r.canonical = "{\"data.name\":\"fashion-mnist\",\"eval.die\":" + std::to_string(r.die) +
                    ",\"eval.infer_bits\":" + r.axes["eval.infer_bits"] + ",\"eval.noise_sigma\":" +
                    r.axes["eval.noise_sigma"] +
                    ",\"model.act_bits\":4,\"model.arch\":\"resnet20\",\"model.weight_bits\":4,\"pim.rows\":144,"
                    "\"pim.scheme\":\"bit-serial\",\"pim.train_bits\":" +
                    r.axes["pim.train_bits"] + ",\"seed\":1995,\"task.kind\":\"eval\",\"train.epochs\":10}";
      r.metrics = {{"accuracy", 0.8 + 1e-7 * static_cast<double>(i)}, {"loss", 0.5}, {"rho_mean", 1.01}};
      r.message = r.status == TaskStatus::Failed ? "synthetic failure" : "";
      r.host = "node" + std::to_string(i % 16);
      r.start_time = 1.7e9 + static_cast<double>(i);
      r.seconds = 12.5;
      batch.push_back(std::move(r));
      if (batch.size() == 4096 || i + 1 == n) {
        writer.append(batch);
        batch.clear();
      }
    }
  }
  const double write_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double mib = static_cast<double>(std::filesystem::file_size(path)) / (1 << 20);

  const auto t1 = Clock::now();
  const JournalReplay full = replay_journal(path);
  const double full_s = std::chrono::duration<double>(Clock::now() - t1).count();
  const auto t2 = Clock::now();
  const std::size_t done = finished_task_ids(dir).size();
  const double heads_s = std::chrono::duration<double>(Clock::now() - t2).count();
  std::printf("journal records=%ld size=%.1f MiB: write %.2f s (no sync, batches of 4096); replay (full decode) "
              "%.2f s = %.2f M records/s; finished_task_ids %.2f s (%zu done)\n",
              n, mib, write_s, full_s, static_cast<double>(full.records.size()) / full_s / 1e6, heads_s, done);
  return full.records.size() == static_cast<std::size_t>(n) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && !std::strcmp(argv[1], "dispatch"))
    return dispatch(std::atol(argv[2]), argv[3], !(argc >= 5 && !std::strcmp(argv[4], "--no-sync")));
  if (argc >= 4 && !std::strcmp(argv[1], "replay")) return replay(std::atol(argv[2]), argv[3]);
  std::fprintf(stderr, "usage: runner_bench dispatch N DIR [--no-sync] | runner_bench replay N DIR\n");
  return 2;
}
