#pragma once
// CPU seconds used by the calling thread (CLOCK_THREAD_CPUTIME_ID), for the kernel benchmarks.
#include <ctime>

namespace pimqat::bench {

inline double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace pimqat::bench
