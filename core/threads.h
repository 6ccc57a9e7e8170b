#pragma once
// OpenMP thread set-up. Results are reproducible for a fixed thread count (DESIGN.md 2.6).

namespace pimqat {

// Sets the number of OpenMP threads used by every parallel region (and by oneDNN, which shares
// the OpenMP runtime). `threads <= 0` means: OMP_NUM_THREADS if set, else all hardware threads.
void set_threads(int threads);
int thread_count();

}  // namespace pimqat
