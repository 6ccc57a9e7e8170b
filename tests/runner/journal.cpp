// Journal format: round trips, checksums against an independent bitwise CRC-32, torn last
// records (every cut point), corruption in the middle, and a 10^4-record replay.
#include "runner/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"

namespace pimqat::runner {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("pimqat-journal-" + std::string(info->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

JournalRecord sample_record(int i) {
  JournalRecord r;
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(0x9e3779b97f4a7c15ull * (i + 1)));
  r.id = id;
  r.kind = static_cast<TaskKind>(i % 3);
  r.status = i % 7 == 3 ? TaskStatus::Failed : TaskStatus::Done;
  r.attempt = 1 + i % 4;
  r.depends_on = i % 3 == 1 ? "00000000000000ab" : "";
  r.replicate = i % 5;
  r.die = r.kind == TaskKind::Eval ? i % 32 : -1;
  r.axes = {{"pim.train_bits", std::to_string(3 + i % 6)}, {"eval.noise_sigma", i % 2 ? "0.5" : "1e-3"}};
  r.canonical = "{\"eval\":{\"noise_sigma\":" + r.axes["eval.noise_sigma"] + "},\"i\":" + std::to_string(i) + "}";
  r.metrics = {{"accuracy", 0.5 + 1e-6 * i}, {"loss", std::ldexp(1.0, -i % 40)}};
  if (r.kind == TaskKind::Train)
    for (int e = 0; e < 1 + i % 4; ++e)
      r.curve.push_back({e, 0.1 / (e + 1), 2.0 - e, 0.3 + e, 1.9 - e, 0.35 + e, 12.5 * e});
  r.message = r.status == TaskStatus::Failed ? "diverged: loss is nan at epoch 3\nsecond line" : "";
  r.retryable = !(r.status == TaskStatus::Failed && i % 2 == 0);
  r.host = "node-" + std::to_string(i % 4);
  r.start_time = 1.7e9 + i;
  r.seconds = 0.25 * i;
  return r;
}

// Bitwise CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): independent of zlib.
std::uint32_t naive_crc32(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(fs::file_size(path), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}
void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Byte offset of record k (0-based) computed from the encoded payload sizes.
std::uint64_t offset_of(const std::vector<JournalRecord>& records, std::size_t k) {
  std::uint64_t offset = 16;
  for (std::size_t i = 0; i < k; ++i) offset += 12 + encode_record(records[i]).size();
  return offset;
}

std::vector<JournalRecord> write_records(const std::string& path, int n) {
  std::vector<JournalRecord> records;
  for (int i = 0; i < n; ++i) records.push_back(sample_record(i));
  JournalWriter writer(path, Durability::None);
  for (const auto& r : records) writer.append(r);
  return records;
}

TEST(Journal, EncodeDecodeRoundTrip) {
  for (int i = 0; i < 21; ++i) {
    const JournalRecord r = sample_record(i);
    EXPECT_EQ(decode_record(encode_record(r)), r) << "record " << i;
  }
  JournalRecord odd;  // empty strings, NaN-free extremes, a key with a NUL byte
  odd.id = std::string("a\0b", 3);
  odd.metrics = {{"", -0.0}, {"big", 1.7976931348623157e308}, {"tiny", 4.9e-324}};
  EXPECT_EQ(decode_record(encode_record(odd)), odd);
}

TEST(Journal, RoundTripKeepsTheRetryableFlag) {
  int reproducible = 0;
  for (int i = 0; i < 40; ++i) {
    const JournalRecord r = sample_record(i);
    reproducible += r.retryable ? 0 : 1;
    EXPECT_EQ(decode_record(encode_record(r)).retryable, r.retryable) << "record " << i;
  }
  EXPECT_GT(reproducible, 0);
}

TEST(Journal, VersionOnePayloadsAreReadAsRetryable) {
  // A version-1 payload is a version-2 payload without the trailing flag byte (docs/runner.md).
  for (int i : {3, 10, 17}) {
    JournalRecord r = sample_record(i);
    r.retryable = false;
    std::string payload = encode_record(r);
    ASSERT_EQ(payload[0], '\x02');
    ASSERT_EQ(payload.back(), '\x00');
    payload[0] = '\x01';
    payload.pop_back();
    const JournalRecord old = decode_record(payload);
    EXPECT_TRUE(old.retryable);
    r.retryable = true;
    EXPECT_EQ(old, r);
  }
  // A flag that is neither 0 nor 1, and a version from the future, are refused.
  std::string payload = encode_record(sample_record(3));
  payload.back() = '\x02';
  EXPECT_THROW(decode_record(payload), Error);
  payload = encode_record(sample_record(3));
  payload[0] = '\x03';
  try {
    decode_record(payload);
    ADD_FAILURE() << "a version-3 payload was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 3"), std::string::npos) << e.what();
  }
}

TEST(Journal, DecodeRejectsTruncatedOrPaddedPayloads) {
  const std::string payload = encode_record(sample_record(4));
  EXPECT_THROW(decode_record(payload.substr(0, payload.size() - 1)), Error);
  EXPECT_THROW(decode_record(payload + "x"), Error);
  EXPECT_THROW(decode_record(""), Error);
}

TEST(Journal, FileLayoutAndChecksumMatchIndependentCrc) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  const auto records = write_records(path, 2);
  const std::string bytes = read_all(path);
  ASSERT_EQ(bytes.substr(0, 8), std::string("PIMQATJ\n"));
  std::uint32_t version;
  std::memcpy(&version, bytes.data() + 8, 4);
  EXPECT_EQ(version, 1u);
  for (std::size_t k = 0; k < 2; ++k) {
    const std::uint64_t off = offset_of(records, k);
    EXPECT_EQ(bytes.substr(off, 4), std::string("PQJR"));
    std::uint32_t length, crc;
    std::memcpy(&length, bytes.data() + off + 4, 4);
    std::memcpy(&crc, bytes.data() + off + 8, 4);
    const std::string payload = encode_record(records[k]);
    ASSERT_EQ(length, payload.size());
    EXPECT_EQ(bytes.substr(off + 12, length), payload);
    EXPECT_EQ(crc, naive_crc32(bytes.substr(off + 4, 4) + payload));
  }
  EXPECT_EQ(bytes.size(), offset_of(records, 2));
}

TEST(Journal, ReplayReturnsRecordsInOrder) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  const auto records = write_records(path, 9);
  const JournalReplay replay = replay_journal(path);
  EXPECT_EQ(replay.records, records);
  EXPECT_TRUE(replay.scan.warning.empty());
  EXPECT_EQ(replay.scan.valid_bytes, replay.scan.file_bytes);
  EXPECT_EQ(replay.scan.records, 9u);
}

TEST(Journal, MissingAndEmptyFilesAreEmptyJournals) {
  TempDir dir;
  EXPECT_TRUE(replay_journal(dir.file("nothing.pjl")).records.empty());
  write_all(dir.file("empty.pjl"), "");
  EXPECT_TRUE(replay_journal(dir.file("empty.pjl")).records.empty());
  EXPECT_TRUE(finished_task_ids(dir.path()).empty());
}

TEST(Journal, GroupAppendWritesAllRecords) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  std::vector<JournalRecord> records;
  for (int i = 0; i < 5; ++i) records.push_back(sample_record(i));
  {
    JournalWriter writer(path);  // Durability::Sync
    writer.append(std::span<const JournalRecord>(records.data(), 3));
    writer.append(std::span<const JournalRecord>(records.data() + 3, 2));
    EXPECT_EQ(writer.end_offset(), offset_of(records, 5));
  }
  EXPECT_EQ(replay_journal(path).records, records);
}

TEST(Journal, TornLastRecordIsDroppedAtEveryCutPointAndCutAwayOnAppend) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  const auto records = write_records(path, 4);
  const std::string full = read_all(path);
  const std::uint64_t last = offset_of(records, 3);
  const std::vector<JournalRecord> first3(records.begin(), records.begin() + 3);
  for (std::uint64_t cut = last + 1; cut < full.size(); ++cut) {
    write_all(path, full.substr(0, cut));
    const JournalReplay replay = replay_journal(path);
    ASSERT_EQ(replay.records, first3) << "cut at byte " << cut;
    ASSERT_NE(replay.scan.warning.find("byte offset " + std::to_string(last)), std::string::npos)
        << replay.scan.warning;
    ASSERT_EQ(replay.scan.valid_bytes, last);
  }
  // The next append removes the torn bytes and the journal is whole again.
  write_all(path, full.substr(0, full.size() - 5));
  {
    JournalWriter writer(path, Durability::None);
    EXPECT_FALSE(writer.recovered_warning().empty());
    writer.append(sample_record(100));
  }
  const JournalReplay replay = replay_journal(path);
  auto expected = first3;
  expected.push_back(sample_record(100));
  EXPECT_EQ(replay.records, expected);
  EXPECT_TRUE(replay.scan.warning.empty());
}

TEST(Journal, DamagedLastRecordWithFullLengthIsATornTail) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  const auto records = write_records(path, 3);
  std::string bytes = read_all(path);
  bytes[bytes.size() - 2] ^= 0x20;  // a byte of the last payload
  write_all(path, bytes);
  const JournalReplay replay = replay_journal(path);
  EXPECT_EQ(replay.records.size(), 2u);
  EXPECT_FALSE(replay.scan.warning.empty());
}

TEST(Journal, TornFileHeaderIsRewritten) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  write_all(path, "PIMQA");
  const JournalReplay replay = replay_journal(path);
  EXPECT_TRUE(replay.records.empty());
  EXPECT_FALSE(replay.scan.warning.empty());
  {
    JournalWriter writer(path, Durability::None);
    writer.append(sample_record(1));
  }
  EXPECT_EQ(replay_journal(path).records, std::vector<JournalRecord>{sample_record(1)});
}

TEST(Journal, CorruptMiddleRecordIsAnErrorNamingItsOffset) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  const auto records = write_records(path, 5);
  const std::string clean = read_all(path);
  for (std::size_t k = 0; k < 4; ++k) {
    for (std::uint64_t byte : {std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{9}, std::uint64_t{20}}) {
      std::string bytes = clean;
      const std::uint64_t off = offset_of(records, k);
      bytes[off + byte] ^= 0x01;
      write_all(path, bytes);
      try {
        replay_journal(path);
        ADD_FAILURE() << "damage in record " << k << " byte " << byte << " was not detected";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("byte offset " + std::to_string(off) + " "), std::string::npos)
            << e.what();
      }
      EXPECT_THROW(finished_task_ids(dir.path()), Error);
      EXPECT_THROW(JournalWriter(path, Durability::None), Error);
    }
  }
}

// Fuzzing (fuzz_journal, fuzz/findings/journal/) found a record whose checksum holds but whose
// fields end early: replay refused it while the head scan (finished_task_ids, the resume of a
// sweep) accepted it. Every scan must refuse it, naming its offset.
TEST(Journal, RecordWithValidChecksumButBadFieldsIsRefusedByEveryScan) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  const auto records = write_records(path, 4);
  const std::string clean = read_all(path);
  for (const std::string& payload : {encode_record(sample_record(9)).substr(0, encode_record(sample_record(9)).size() - 1),
                                     encode_record(sample_record(9)) + "x"}) {
    std::string frame = "PQJR";
    const auto length = static_cast<std::uint32_t>(payload.size());
    frame.append(reinterpret_cast<const char*>(&length), 4);
    const std::uint32_t crc = naive_crc32(frame.substr(4, 4) + payload);
    frame.append(reinterpret_cast<const char*>(&crc), 4);
    frame += payload;
    const std::uint64_t off = offset_of(records, 2);  // between records 1 and 2
    write_all(path, clean.substr(0, off) + frame + clean.substr(off));
    try {
      replay_journal(path);
      ADD_FAILURE() << "replay accepted a record whose fields do not decode";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("byte offset " + std::to_string(off) + " "), std::string::npos) << e.what();
    }
    try {
      scan_journal_heads(path, [](const JournalRecordHead&) {});
      ADD_FAILURE() << "the head scan accepted a record whose fields do not decode";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("byte offset " + std::to_string(off) + " "), std::string::npos) << e.what();
    }
    EXPECT_THROW(finished_task_ids(dir.path()), Error);
    // (JournalWriter checks the framing and checksums only; the runner replays before it appends.)
  }
}

TEST(Journal, ForeignFileAndUnknownVersionAreRefused) {
  TempDir dir;
  const std::string path = dir.file("journal.pjl");
  write_all(path, "name: not a journal\n");
  EXPECT_THROW(replay_journal(path), Error);
  write_records(dir.file("j2.pjl"), 1);
  std::string bytes = read_all(dir.file("j2.pjl"));
  bytes[8] = 7;
  write_all(path, bytes);
  try {
    replay_journal(path);
    ADD_FAILURE() << "version 7 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 7"), std::string::npos) << e.what();
  }
}

TEST(Journal, TenThousandRecordsReplayAndFinishedIds) {
  TempDir dir;
  const std::string path = dir.file(kJournalFileName);
  constexpr int kRecords = 10000;
  std::vector<JournalRecord> records;
  records.reserve(kRecords);
  for (int i = 0; i < kRecords; ++i) records.push_back(sample_record(i));
  {
    JournalWriter writer(path, Durability::None);
    for (int i = 0; i < kRecords; i += 1000)
      writer.append(std::span<const JournalRecord>(records.data() + i, 1000));
  }
  const JournalReplay replay = replay_journal(path);
  ASSERT_EQ(replay.records.size(), records.size());
  EXPECT_TRUE(replay.records == records);

  std::set<std::string> expected;
  for (const auto& r : records)
    if (r.status == TaskStatus::Done) expected.insert(r.id);
  const std::set<std::string> done = finished_task_ids(dir.path());
  EXPECT_EQ(done, expected);
  EXPECT_LT(done.size(), records.size());  // some attempts failed and are not "finished"
}

}  // namespace
}  // namespace pimqat::runner
