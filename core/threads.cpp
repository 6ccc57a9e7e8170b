#include "core/threads.h"

#include <omp.h>

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace pimqat {

void set_threads(int threads) {
  if (threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    threads = (env && *env) ? std::atoi(env) : omp_get_num_procs();
    if (threads <= 0) throw Error(std::string("OMP_NUM_THREADS='") + env + "' is not a positive integer");
  }
  omp_set_dynamic(0);
  omp_set_num_threads(threads);
}

int thread_count() { return omp_get_max_threads(); }

}  // namespace pimqat
