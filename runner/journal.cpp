#include "runner/journal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/log.h"

namespace pimqat::runner {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the journal is written in the host byte order, which must be little-endian");

constexpr char kFileMagic[8] = {'P', 'I', 'M', 'Q', 'A', 'T', 'J', '\n'};
constexpr std::size_t kFileHeaderBytes = 16;
constexpr std::uint32_t kRecordMagic = 0x524A5150u;  // "PQJR" in file byte order
constexpr std::size_t kRecordHeaderBytes = 12;
constexpr std::uint32_t kMaxPayloadBytes = 256u << 20;  // a sanity bound: no real record comes close
// Payload versions: 1 (pimqat 0.1), 2 adds a trailing u8 `retryable` (TaskResult::retryable).
// Both are read; version 2 is written.
constexpr std::uint16_t kPayloadVersion = 2;
constexpr std::uint16_t kOldestPayloadVersion = 1;

std::string errno_text() { return std::strerror(errno); }

std::uint32_t record_crc(std::uint32_t length, const unsigned char* payload, std::size_t size) {
  unsigned char length_bytes[4];
  std::memcpy(length_bytes, &length, 4);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, length_bytes, 4);
  // zlib takes uInt lengths; payloads are bounded by kMaxPayloadBytes.
  crc = crc32(crc, payload, static_cast<uInt>(size));
  return static_cast<std::uint32_t>(crc);
}

// ---- payload encoding: fixed-width little-endian scalars, strings as u32 length + bytes ----

class Encoder {
 public:
  void u8(std::uint8_t v) { raw(&v, 1); }
  void u16(std::uint16_t v) { raw(&v, 2); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void i32(std::int32_t v) { raw(&v, 4); }
  void f64(double v) { raw(&v, 8); }
  void str(std::string_view s) {
    if (s.size() > kMaxPayloadBytes) throw Error("journal: a string field of " + std::to_string(s.size()) + " bytes is too long");
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  std::string take() { return std::move(out_); }

 private:
  void raw(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string out_;
};

class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  std::uint8_t u8() { return scalar<std::uint8_t>(); }
  std::uint16_t u16() { return scalar<std::uint16_t>(); }
  std::uint32_t u32() { return scalar<std::uint32_t>(); }
  std::int32_t i32() { return scalar<std::int32_t>(); }
  double f64() { return scalar<double>(); }
  std::string_view str() {
    const std::uint32_t n = u32();
    need(n);
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::uint32_t count(std::size_t min_bytes_each) {
    const std::uint32_t n = u32();
    if (min_bytes_each > 0 && n > (in_.size() - pos_) / min_bytes_each)
      throw Error("a count of " + std::to_string(n) + " items does not fit in the record");
    return n;
  }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  template <class T>
  T scalar() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void need(std::size_t n) const {
    if (in_.size() - pos_ < n)
      throw Error("field at payload byte " + std::to_string(pos_) + " runs past the end of the record");
  }
  std::string_view in_;
  std::size_t pos_ = 0;
};

TaskKind kind_from_byte(std::uint8_t b) {
  if (b > static_cast<std::uint8_t>(TaskKind::Synthetic)) throw Error("unknown task kind code " + std::to_string(b));
  return static_cast<TaskKind>(b);
}
TaskStatus status_from_byte(std::uint8_t b) {
  if (b > 1) throw Error("unknown task status code " + std::to_string(b));
  return static_cast<TaskStatus>(b);
}

JournalRecordHead decode_head(Decoder& d) {
  const std::uint16_t version = d.u16();
  if (version < kOldestPayloadVersion || version > kPayloadVersion)
    throw Error("record payload version " + std::to_string(version) + " (this pimqat reads versions " +
                std::to_string(kOldestPayloadVersion) + " to " + std::to_string(kPayloadVersion) +
                "; a newer pimqat wrote this journal)");
  JournalRecordHead head;
  head.payload_version = version;
  head.kind = kind_from_byte(d.u8());
  head.status = status_from_byte(d.u8());
  head.attempt = static_cast<int>(d.u32());
  head.id = d.str();
  return head;
}

// A read-only view of a whole file (mmap; empty files are not mapped).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT) return;
      throw Error("journal " + path + ": cannot open for reading: " + errno_text());
    }
    struct stat st {};
    if (fstat(fd_, &st) != 0) throw Error("journal " + path + ": fstat failed: " + errno_text());
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0) return;
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) throw Error("journal " + path + ": mmap failed: " + errno_text());
    data_ = static_cast<const unsigned char*>(p);
    madvise(p, size_, MADV_SEQUENTIAL);
  }
  ~MappedFile() {
    if (data_) munmap(const_cast<unsigned char*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  int fd_ = -1;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

// Length of the valid record at `offset`, or 0 if there is none (incomplete, wrong magic, bad length
// or checksum).
std::size_t valid_record_at(const unsigned char* data, std::size_t size, std::size_t offset) {
  if (size - offset < kRecordHeaderBytes) return 0;
  std::uint32_t magic, length, crc;
  std::memcpy(&magic, data + offset, 4);
  std::memcpy(&length, data + offset + 4, 4);
  std::memcpy(&crc, data + offset + 8, 4);
  if (magic != kRecordMagic || length > kMaxPayloadBytes) return 0;
  if (size - offset - kRecordHeaderBytes < length) return 0;
  if (record_crc(length, data + offset + kRecordHeaderBytes, length) != crc) return 0;
  return kRecordHeaderBytes + length;
}

// Scans the file; `visit(payload, offset)` is called for each valid record.
JournalScan scan_file(const std::string& path,
                      const std::function<void(std::string_view, std::uint64_t)>& visit) {
  MappedFile file(path);
  JournalScan scan;
  scan.file_bytes = file.size();
  const unsigned char* data = file.data();
  const std::size_t size = file.size();
  if (size == 0) return scan;

  const std::size_t header_bytes = std::min(size, kFileHeaderBytes);
  if (std::memcmp(data, kFileMagic, std::min(header_bytes, sizeof kFileMagic)) != 0)
    throw Error("journal " + path + ": not a pimqat journal (the file does not start with \"PIMQATJ\"); "
                "was another file written at this path?");
  if (size < kFileHeaderBytes) {
    scan.warning = "journal " + path + ": the file header is incomplete (" + std::to_string(size) +
                   " of 16 bytes; the run was killed while creating it); it is rewritten on the next append";
    return scan;
  }
  std::uint32_t version;
  std::memcpy(&version, data + 8, 4);
  if (version != kJournalFormatVersion)
    throw Error("journal " + path + ": format version " + std::to_string(version) + ", this pimqat reads version " +
                std::to_string(kJournalFormatVersion) + "; use the pimqat release that wrote this run directory");

  std::size_t offset = kFileHeaderBytes;
  scan.valid_bytes = offset;
  while (offset < size) {
    const std::size_t n = valid_record_at(data, size, offset);
    if (n == 0) {
      // Damage: a torn tail if no valid record follows, otherwise corruption in the middle.
      for (std::size_t p = offset + 1; p + kRecordHeaderBytes <= size; ++p) {
        const void* hit = std::memchr(data + p, 0x50 /* first byte of "PQJR" */, size - p);
        if (!hit) break;
        p = static_cast<std::size_t>(static_cast<const unsigned char*>(hit) - data);
        if (valid_record_at(data, size, p) != 0)
          throw Error("journal " + path + ": damaged record at byte offset " + std::to_string(offset) +
                      " followed by a valid record at byte offset " + std::to_string(p) +
                      ": the file is corrupt in the middle (not a torn last write). Keep a copy; the " +
                      std::to_string(scan.records) + " records before the damage are intact");
      }
      scan.warning = "journal " + path + ": the last record (at byte offset " + std::to_string(offset) + ", " +
                     std::to_string(size - offset) +
                     " bytes) is incomplete or damaged, as after a kill during a write; it is ignored and "
                     "cut away on the next append";
      return scan;
    }
    try {
      visit(std::string_view(reinterpret_cast<const char*>(data + offset + kRecordHeaderBytes),
                             n - kRecordHeaderBytes),
            offset);
    } catch (const Error& e) {
      throw Error("journal " + path + ": record at byte offset " + std::to_string(offset) +
                  " has a valid checksum but cannot be decoded: " + e.what());
    }
    ++scan.records;
    offset += n;
    scan.valid_bytes = offset;
  }
  return scan;
}

}  // namespace

std::string_view task_kind_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::Train: return "train";
    case TaskKind::Eval: return "eval";
    case TaskKind::Synthetic: return "synthetic";
  }
  return "unknown";
}

std::string_view task_status_name(TaskStatus status) {
  switch (status) {
    case TaskStatus::Done: return "done";
    case TaskStatus::Failed: return "failed";
    case TaskStatus::Stopped: return "stopped";
  }
  return "unknown";
}

bool operator==(const JournalRecord& a, const JournalRecord& b) {
  const auto same_epoch = [](const EpochRecord& x, const EpochRecord& y) {
    return x.epoch == y.epoch && x.lr == y.lr && x.train_loss == y.train_loss &&
           x.train_accuracy == y.train_accuracy && x.test_loss == y.test_loss &&
           x.test_accuracy == y.test_accuracy && x.seconds == y.seconds;
  };
  return a.id == b.id && a.kind == b.kind && a.status == b.status && a.attempt == b.attempt &&
         a.depends_on == b.depends_on && a.replicate == b.replicate && a.die == b.die && a.axes == b.axes &&
         a.canonical == b.canonical && a.metrics == b.metrics &&
         std::equal(a.curve.begin(), a.curve.end(), b.curve.begin(), b.curve.end(), same_epoch) &&
         a.message == b.message && a.retryable == b.retryable && a.host == b.host && a.start_time == b.start_time && a.seconds == b.seconds;
}

JournalRecord make_journal_record(const TaskSpec& spec, const TaskResult& result) {
  JournalRecord r;
  r.id = spec.id;
  r.kind = spec.kind;
  r.status = result.status;
  r.attempt = result.attempt;
  r.depends_on = spec.depends_on;
  r.replicate = spec.replicate;
  r.die = spec.kind == TaskKind::Eval ? spec.config.eval.first_die : -1;
  r.axes = spec.axes;
  r.canonical = spec.canonical;
  r.metrics = result.metrics;
  r.curve = result.curve;
  r.message = result.message;
  r.retryable = result.retryable;
  r.host = result.host;
  r.start_time = result.start_time;
  r.seconds = result.seconds;
  return r;
}

std::string encode_record(const JournalRecord& r) {
  Encoder e;
  e.u16(kPayloadVersion);
  e.u8(static_cast<std::uint8_t>(r.kind));
  e.u8(static_cast<std::uint8_t>(r.status));
  e.u32(static_cast<std::uint32_t>(r.attempt));
  e.str(r.id);
  e.str(r.depends_on);
  e.i32(r.replicate);
  e.i32(r.die);
  e.f64(r.start_time);
  e.f64(r.seconds);
  e.str(r.host);
  e.str(r.message);
  e.str(r.canonical);
  e.u32(static_cast<std::uint32_t>(r.axes.size()));
  for (const auto& [k, v] : r.axes) {
    e.str(k);
    e.str(v);
  }
  e.u32(static_cast<std::uint32_t>(r.metrics.size()));
  for (const auto& [k, v] : r.metrics) {
    e.str(k);
    e.f64(v);
  }
  e.u32(static_cast<std::uint32_t>(r.curve.size()));
  for (const EpochRecord& c : r.curve) {
    e.i32(c.epoch);
    e.f64(c.lr);
    e.f64(c.train_loss);
    e.f64(c.train_accuracy);
    e.f64(c.test_loss);
    e.f64(c.test_accuracy);
    e.f64(c.seconds);
  }
  e.u8(r.retryable ? 1 : 0);
  return e.take();
}

namespace {

// The fields after the head, read and checked in order; stored into `out` when it is given.
// scan_journal_heads walks them without storing, so the head scan refuses exactly the records the
// full decode refuses (a record whose checksum holds but whose fields do not).
void decode_body(Decoder& d, std::uint16_t payload_version, JournalRecord* out) {
  const std::string_view depends_on = d.str();
  const std::int32_t replicate = d.i32(), die = d.i32();
  const double start_time = d.f64(), seconds = d.f64();
  const std::string_view host = d.str(), message = d.str(), canonical = d.str();
  if (out) {
    out->depends_on = depends_on;
    out->replicate = replicate;
    out->die = die;
    out->start_time = start_time;
    out->seconds = seconds;
    out->host = host;
    out->message = message;
    out->canonical = canonical;
  }
  for (std::uint32_t i = 0, n = d.count(8); i < n; ++i) {
    const std::string_view key = d.str(), value = d.str();
    if (out) out->axes.emplace(std::string(key), std::string(value));
  }
  for (std::uint32_t i = 0, n = d.count(12); i < n; ++i) {
    const std::string_view key = d.str();
    const double value = d.f64();
    if (out) out->metrics.emplace(std::string(key), value);
  }
  const std::uint32_t epochs = d.count(52);
  if (out) out->curve.resize(epochs);
  for (std::uint32_t k = 0; k < epochs; ++k) {
    EpochRecord c;
    c.epoch = d.i32();
    c.lr = d.f64();
    c.train_loss = d.f64();
    c.train_accuracy = d.f64();
    c.test_loss = d.f64();
    c.test_accuracy = d.f64();
    c.seconds = d.f64();
    if (out) out->curve[k] = c;
  }
  if (payload_version >= 2) {
    const std::uint8_t retryable = d.u8();
    if (retryable > 1) throw Error("retryable flag " + std::to_string(retryable) + " is neither 0 nor 1");
    if (out) out->retryable = retryable == 1;
  }
  if (!d.at_end()) throw Error("unexpected bytes after the last field of the record");
}

}  // namespace

JournalRecord decode_record(std::string_view payload) {
  Decoder d(payload);
  const JournalRecordHead head = decode_head(d);
  JournalRecord r;
  r.id = head.id;
  r.kind = head.kind;
  r.status = head.status;
  r.attempt = head.attempt;
  decode_body(d, head.payload_version, &r);
  return r;
}

JournalScan scan_journal(const std::string& path, const std::function<void(const JournalRecord&)>& visit) {
  return scan_file(path, [&](std::string_view payload, std::uint64_t) { visit(decode_record(payload)); });
}

JournalScan scan_journal_heads(const std::string& path,
                               const std::function<void(const JournalRecordHead&)>& visit) {
  return scan_file(path, [&](std::string_view payload, std::uint64_t) {
    Decoder d(payload);
    const JournalRecordHead head = decode_head(d);
    decode_body(d, head.payload_version, nullptr);  // the same checks as a full decode
    visit(head);
  });
}

JournalReplay replay_journal(const std::string& path) {
  JournalReplay replay;
  replay.scan = scan_file(path, [&](std::string_view payload, std::uint64_t) {
    replay.records.push_back(decode_record(payload));
  });
  return replay;
}

std::set<std::string> finished_task_ids(const std::string& run_dir) {
  // Collected, sorted, then inserted in order (linear with the end hint): much faster than
  // inserting 10^6 random ids into the tree one by one.
  std::vector<std::string> ids;
  const std::string path = (std::filesystem::path(run_dir) / kJournalFileName).string();
  scan_journal_heads(path, [&](const JournalRecordHead& head) {
    if (head.status == TaskStatus::Done) ids.emplace_back(head.id);
  });
  std::sort(ids.begin(), ids.end());
  std::set<std::string> result;
  for (auto& id : ids)
    if (result.empty() || *result.rbegin() != id) result.emplace_hint(result.end(), std::move(id));
  return result;
}

// ---- writer ----

JournalWriter::JournalWriter(std::string path, Durability durability)
    : path_(std::move(path)), durability_(durability) {
  const JournalScan scan = scan_file(path_, [](std::string_view, std::uint64_t) {});
  end_ = scan.valid_bytes;
  warning_ = scan.warning;
  open_file();
}

JournalWriter::JournalWriter(std::string path, const JournalScan& scan, Durability durability)
    : path_(std::move(path)), durability_(durability), end_(scan.valid_bytes), warning_(scan.warning) {
  open_file();
}

JournalWriter::~JournalWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JournalWriter::open_file() {
  const bool existed = std::filesystem::exists(path_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("journal " + path_ + ": cannot open for writing: " + errno_text());
  if (!existed) {
    // Make the new directory entry durable too.
    const std::string dir = std::filesystem::path(path_).parent_path().string();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      if (durability_ == Durability::Sync) fsync(dfd);
      ::close(dfd);
    }
  }
}

void JournalWriter::append(std::span<const JournalRecord> records) {
  if (records.empty()) return;
  std::string buffer;
  if (end_ == 0) {  // a new file (or one whose header write was torn): header first
    buffer.append(kFileMagic, sizeof kFileMagic);
    const std::uint32_t version = kJournalFormatVersion, zero = 0;
    buffer.append(reinterpret_cast<const char*>(&version), 4);
    buffer.append(reinterpret_cast<const char*>(&zero), 4);
  }
  for (const JournalRecord& record : records) {
    const std::string payload = encode_record(record);
    if (payload.size() > kMaxPayloadBytes)
      throw Error("journal " + path_ + ": record of task " + record.id + " is " + std::to_string(payload.size()) +
                  " bytes, more than the limit of " + std::to_string(kMaxPayloadBytes));
    const auto length = static_cast<std::uint32_t>(payload.size());
    const std::uint32_t crc =
        record_crc(length, reinterpret_cast<const unsigned char*>(payload.data()), payload.size());
    buffer.append(reinterpret_cast<const char*>(&kRecordMagic), 4);
    buffer.append(reinterpret_cast<const char*>(&length), 4);
    buffer.append(reinterpret_cast<const char*>(&crc), 4);
    buffer.append(payload);
  }

  if (!truncated_tail_) {
    struct stat st {};
    if (fstat(fd_, &st) != 0) throw Error("journal " + path_ + ": fstat failed: " + errno_text());
    if (static_cast<std::uint64_t>(st.st_size) != end_) {
      if (ftruncate(fd_, static_cast<off_t>(end_)) != 0)
        throw Error("journal " + path_ + ": cannot cut the torn last record away (ftruncate to " +
                    std::to_string(end_) + " bytes): " + errno_text());
      log_warn("journal " + path_ + ": cut away " + std::to_string(st.st_size - static_cast<off_t>(end_)) +
               " bytes of a torn last record at byte offset " + std::to_string(end_));
    }
    truncated_tail_ = true;
  }

  std::size_t written = 0;
  while (written < buffer.size()) {
    const ssize_t n = pwrite(fd_, buffer.data() + written, buffer.size() - written,
                             static_cast<off_t>(end_ + written));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? errno_text() : "no progress";
      [[maybe_unused]] const int rc = ftruncate(fd_, static_cast<off_t>(end_));
      throw Error("journal " + path_ + ": write of " + std::to_string(buffer.size()) + " bytes failed (" + why +
                  "); is the file system full? No record of this batch was kept");
    }
    written += static_cast<std::size_t>(n);
  }
  if (durability_ == Durability::Sync && fdatasync(fd_) != 0) {
    const std::string why = errno_text();
    [[maybe_unused]] const int rc = ftruncate(fd_, static_cast<off_t>(end_));
    throw Error("journal " + path_ + ": fdatasync failed (" + why + "); no record of this batch was kept");
  }
  end_ += buffer.size();
}

}  // namespace pimqat::runner
