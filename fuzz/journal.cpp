// Fuzz target: the run journal RUN_DIR/journal.pjl as resume reads it (runner/journal.h
// scan_journal, scan_journal_heads, replay_journal, finished_task_ids, JournalWriter).
// Input: the bytes of the journal file.
// Properties (the guarantees of journal.h): the three scans agree on the number of records and
// the ids; a journal that scans without an error accepts an append, after which it replays to
// the same records plus the appended one (a torn tail is cut away, never kept, never fatal).
#include <cstdint>
#include <string>

#include "fuzz/fuzz_common.h"
#include "runner/journal.h"

using namespace pimqat;

namespace {

runner::JournalRecord appended_record() {
  runner::JournalRecord r;
  r.id = "00000000000000aa";
  r.kind = runner::TaskKind::Synthetic;
  r.status = runner::TaskStatus::Done;
  r.attempt = 1;
  r.axes = {{"synthetic.result", "1"}};
  r.canonical = "{\"fuzz\":1}";
  r.metrics = {{"value", 1.0}};
  r.host = "fuzz";
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string dir = fuzz::scratch_path("run");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + runner::kJournalFileName;
  fuzz::write_file(path, data, size);
  runner::JournalReplay replay;
  bool readable = false;
  fuzz::expect_error_or_success("replay_journal", [&] {
    replay = runner::replay_journal(path);
    readable = true;
  });
  fuzz::expect_error_or_success("scan_journal_heads", [&] {
    std::vector<std::string> ids;
    const runner::JournalScan heads =
        runner::scan_journal_heads(path, [&](const runner::JournalRecordHead& h) { ids.emplace_back(h.id); });
    if (!readable) fuzz::finding("scan_journal_heads accepts a journal that replay_journal refuses");
    if (heads.records != replay.records.size() || ids.size() != replay.records.size())
      fuzz::finding("scan_journal_heads and replay_journal disagree on the number of records");
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] != replay.records[i].id) fuzz::finding("scan_journal_heads and replay_journal disagree on a record id");
    (void)runner::finished_task_ids(dir);
  });
  if (!readable) return 0;
  if (replay.scan.records != replay.records.size()) fuzz::finding("JournalScan::records differs from the records replayed");
  const runner::JournalRecord extra = appended_record();
  try {
    runner::JournalWriter writer(path, runner::Durability::None);
    writer.append(extra);
  } catch (const std::exception& e) {
    fuzz::finding("a journal that replays cannot be appended to: " + std::string(e.what()));
  }
  runner::JournalReplay after;
  try {
    after = runner::replay_journal(path);
  } catch (const std::exception& e) {
    fuzz::finding("the journal does not replay after an append: " + std::string(e.what()));
  }
  if (!after.scan.warning.empty()) fuzz::finding("a torn tail survived an append: " + after.scan.warning);
  if (after.records.size() != replay.records.size() + 1) fuzz::finding("an append lost or kept extra records");
  for (std::size_t i = 0; i < replay.records.size(); ++i)
    if (runner::encode_record(after.records[i]) != runner::encode_record(replay.records[i])) fuzz::finding("an append changed an earlier record");
  if (!(after.records.back() == extra)) fuzz::finding("the appended record does not read back");
  return 0;
}
