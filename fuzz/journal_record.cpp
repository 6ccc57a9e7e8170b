// Fuzz target: one journal record payload (runner/journal.h decode_record), the part behind a
// valid checksum, which a fuzzer could not reach through whole files (a mutated payload fails
// its crc32). The payload is also framed into a journal file with a correct checksum, which must
// then replay to the same record or be refused with an Error naming the offset.
// Property: encode_record(decode_record(p)) decodes to the same record (records are compared by
// their encoding, bit for bit: operator== would call a NaN metric different from itself).
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_common.h"
#include "runner/journal.h"

using namespace pimqat;

namespace {

// A journal file holding `payload` as its one record (layout in runner/journal.h).
std::string framed(std::string_view payload) {
  std::string file = "PIMQATJ\n";
  const auto u32 = [&](std::uint32_t v) { file.append(reinterpret_cast<const char*>(&v), 4); };
  u32(runner::kJournalFormatVersion);
  u32(0);
  const auto length = static_cast<std::uint32_t>(payload.size());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(&length), 4);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
  u32(0x524A5150u);
  u32(length);
  u32(static_cast<std::uint32_t>(crc));
  file.append(payload);
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  runner::JournalRecord record;
  bool decoded = false;
  fuzz::expect_error_or_success("decode_record", [&] {
    record = runner::decode_record(payload);
    decoded = true;
  });
  const std::string path = fuzz::scratch_path("record.pjl");
  fuzz::write_file(path, framed(payload));
  fuzz::expect_error_or_success("replay_journal", [&] {
    const runner::JournalReplay replay = runner::replay_journal(path);
    if (!decoded) fuzz::finding("replay_journal accepted a record that decode_record refuses");
    if (replay.records.size() != 1 || runner::encode_record(replay.records[0]) != runner::encode_record(record))
      fuzz::finding("replay_journal of one framed record differs from decode_record");
  });
  if (!decoded) return 0;
  try {
    const std::string bytes = runner::encode_record(record);
    if (runner::encode_record(runner::decode_record(bytes)) != bytes)
      fuzz::finding("decode_record(encode_record(r)) != r");
  } catch (const std::exception& e) {
    fuzz::finding("encode_record wrote a payload decode_record refuses: " + std::string(e.what()));
  }
  return 0;
}
