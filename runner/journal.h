#pragma once
// The run journal DIR/journal.pjl (DESIGN.md section 5): append-only, one checksummed record per
// finished task attempt. It is the source of truth of a sweep: results.h5 is rebuilt from it, and
// resuming a sweep skips the tasks it records as done.
//
// File layout (all integers little-endian; docs/runner.md has the full description):
//   file header, 16 bytes: "PIMQATJ\n" | u32 format version (1) | u32 zero
//   record:  u32 magic 0x524A5150 ("PQJR") | u32 payload length L | u32 crc32(L as 4 bytes ++ payload)
//            | payload (L bytes; see encode_record() in journal.cpp)
// Guarantees:
//  - append() returns only after the record is written and fdatasync()ed, so a task counted as done
//    survives a kill -9 or a power loss of the coordinator;
//  - a torn LAST record (a kill in the middle of a write) is detected by replay, reported as a
//    warning and cut away by the next append (never fatal);
//  - a damaged record followed by a valid one (damage in the middle of the file) is an error that
//    names the byte offset: nothing is ever silently dropped from the middle.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runner/task.h"

namespace pimqat::runner {

inline constexpr const char* kJournalFileName = "journal.pjl";
inline constexpr std::uint32_t kJournalFormatVersion = 1;

// One finished attempt of one task: its result and enough of its spec (axes, dependencies,
// canonical parameters) to rebuild every results table from the journal alone.
struct JournalRecord {
  std::string id;
  TaskKind kind = TaskKind::Synthetic;
  TaskStatus status = TaskStatus::Done;
  int attempt = 1;
  std::string depends_on;
  int replicate = 0;
  int die = -1;  // eval tasks: the die index; -1 otherwise
  std::map<std::string, std::string> axes;
  std::string canonical;
  std::map<std::string, double> metrics;
  std::vector<EpochRecord> curve;
  std::string message;
  bool retryable = true;  // false: a reproducible failure (TaskResult::retryable); payload version >= 2
  std::string host;
  double start_time = 0;  // seconds since the Unix epoch
  double seconds = 0;     // duration of the attempt
};

// Field-by-field equality (doubles compared exactly: the journal stores their bits).
bool operator==(const JournalRecord& a, const JournalRecord& b);

// The record of one attempt of `spec` that produced `result`.
JournalRecord make_journal_record(const TaskSpec& spec, const TaskResult& result);

// Binary payload of one record (the part covered by the checksum, without the length prefix).
std::string encode_record(const JournalRecord& record);
// Throws pimqat::Error if `payload` is not a well-formed record payload.
JournalRecord decode_record(std::string_view payload);

// The fields `pimqat plan` and resume need, decoded without the rest of the record.
struct JournalRecordHead {
  std::uint16_t payload_version = 0;
  std::string_view id;  // valid only during the visit
  TaskKind kind = TaskKind::Synthetic;
  TaskStatus status = TaskStatus::Done;
  int attempt = 1;
};

// What a scan of a journal file found.
struct JournalScan {
  std::uint64_t records = 0;      // valid records
  std::uint64_t valid_bytes = 0;  // offset just past the last valid record (0: no valid header yet)
  std::uint64_t file_bytes = 0;   // size of the file as scanned
  std::string warning;            // non-empty when a torn last record was found (and dropped)
};

// Scans `path` and calls `visit` for every valid record in file order. A missing or empty file is
// an empty journal. A torn last record is reported in JournalScan::warning; damage followed by a
// valid record, a foreign file or an unknown format version throws pimqat::Error naming the offset.
JournalScan scan_journal(const std::string& path, const std::function<void(const JournalRecord&)>& visit);
// The same, handing out only the record heads (faster: no strings, maps or curves are built);
// every field is still checked, so it refuses exactly the journals scan_journal refuses.
JournalScan scan_journal_heads(const std::string& path,
                               const std::function<void(const JournalRecordHead&)>& visit);

struct JournalReplay {
  std::vector<JournalRecord> records;
  JournalScan scan;
};
JournalReplay replay_journal(const std::string& path);

// Ids of the tasks with a Done record in RUN_DIR/journal.pjl (empty if there is no journal).
std::set<std::string> finished_task_ids(const std::string& run_dir);

enum class Durability {
  Sync,  // fdatasync after every append: a task counts as done only once its record is on disk
  None   // no sync (benchmarks and tests of the format only)
};

// Appends records to a journal file. One writer per file at a time (the run directory's lock
// guarantees it for sweeps).
class JournalWriter {
 public:
  // Opens `path`, scanning it to find the end of the last valid record.
  explicit JournalWriter(std::string path, Durability durability = Durability::Sync);
  // Opens `path` whose scan is already known (avoids a second scan when the caller replayed it).
  JournalWriter(std::string path, const JournalScan& scan, Durability durability = Durability::Sync);
  ~JournalWriter();
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Writes the records with one write() and (Durability::Sync) one fdatasync(): a group commit.
  // The first append cuts away a torn tail found by the scan. On failure the file is truncated
  // back to its previous end and pimqat::Error is thrown.
  void append(std::span<const JournalRecord> records);
  void append(const JournalRecord& record) { append(std::span<const JournalRecord>(&record, 1)); }

  const std::string& path() const { return path_; }
  std::uint64_t end_offset() const { return end_; }
  // The warning of the scan (a torn tail that the first append removes), empty if none.
  const std::string& recovered_warning() const { return warning_; }

 private:
  void open_file();
  std::string path_;
  Durability durability_;
  int fd_ = -1;
  std::uint64_t end_ = 0;
  bool truncated_tail_ = false;
  std::string warning_;
};

// Text of a kind / status as stored in results tables ("train", "eval", "synthetic"; "done", "failed").
std::string_view task_kind_name(TaskKind kind);
std::string_view task_status_name(TaskStatus status);

}  // namespace pimqat::runner
