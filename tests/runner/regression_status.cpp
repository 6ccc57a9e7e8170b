// Regression tests for the heartbeat reader of `pimqat status` (runner/status.h) from the hardening
// work (docs/reliability.md). Input: fuzz/findings/heartbeat/trailing_byte_future_update.txt.
//
// fuzz_heartbeat found a heartbeat with the byte 0x10 in place of the line break after
// "pid 4242", and an `updated` time of 1.7e12 s (the year 55 000, a millisecond count written as
// seconds). Rebuilt from the sources of the time, the target no longer failed on it (its
// round-trip property skips empty hosts and implausible times), but the input shows two real
// faults: the line "pid 4242<0x10>host node-1" was accepted as pid 4242 and the host line was
// silently lost (parse_heartbeat ignored text after a value), and `pimqat status` called a
// coordinator with a heartbeat from the far future "running" forever (age < 10 s because it is
// negative). Fixed in runner/status.cpp.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "runner/rundir.h"
#include "runner/status.h"
#include "runner_testing.h"

namespace pimqat::runner {
namespace {

using testing::TempDir;

const std::string kFinding =
    "pimqat-heartbeat 1\npid 4242\x10host node-1\nranks 3\nstarted 1700000000.000\nupdated 1700000001003\n"
    "total 3\ndone 1\nfailed 1\nskipped 0\nrunning 0\ndone_at_start 0\n";

TEST(RegressionStatus, TextAfterAValueIsAMalformedLine) {
  try {
    (void)parse_heartbeat(kFinding, "heartbeat.txt");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("heartbeat.txt:2: malformed line"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)parse_heartbeat("pimqat-heartbeat 1\nranks 3 4\n", "h"), Error);
  EXPECT_THROW((void)parse_heartbeat("pimqat-heartbeat 1\ntask a synthetic 1 host 5.0 1 extra\n", "h"), Error);
  // Trailing blanks are not text; unknown keys (a newer writer) are still ignored.
  const Heartbeat h = parse_heartbeat("pimqat-heartbeat 1\npid 7  \nhost n\nfuture_key 1 2 3\n", "h");
  EXPECT_EQ(h.pid, 7);
  EXPECT_EQ(h.host, "n");
}

TEST(RegressionStatus, AHeartbeatFromTheFutureIsNotLive) {
  TempDir dir;
  std::vector<TaskSpec> tasks = testing::synthetic_sweep(3);
  prepare_run_directory(dir.path(), SweepSource{"s.yaml", "# s\n", ""}, tasks);
  Heartbeat h;
  h.pid = 4242;
  h.host = "node-1";
  h.ranks = 3;
  h.started = 1700000000;
  h.updated = 1700000001003;
  h.total = 3;
  write_file_atomically(heartbeat_path(dir.path()), format_heartbeat(h));
  const SweepStatus s = read_sweep_status(dir.path(), 1.8e9);
  EXPECT_FALSE(s.live);
  const std::string text = format_sweep_status(s);
  EXPECT_NE(text.find("in the future"), std::string::npos) << text;
  // Within a minute of clock skew a heartbeat is still live.
  h.updated = 1.8e9 + 30;
  write_file_atomically(heartbeat_path(dir.path()), format_heartbeat(h));
  EXPECT_TRUE(read_sweep_status(dir.path(), 1.8e9).live);
}

}  // namespace
}  // namespace pimqat::runner
