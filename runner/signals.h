#pragma once
// Stop requests (DESIGN.md section 3, docs/runner.md "Stopping and resuming"). SIGINT, SIGTERM and
// SIGUSR1 set one process-wide flag: the coordinator stops handing out tasks, running tasks see the
// flag through TaskContext::stop and checkpoint, and `pimqat sweep` exits with kExitResumable.
// SIGUSR1 is accepted because `mpirun` forwards it to every rank without killing the job (it
// answers SIGTERM by killing the ranks after a short grace time); slurm/sweep.sbatch uses it.
// A second SIGINT ends the process at once (the journal is consistent at every instant).
#include <atomic>

namespace pimqat::runner {

// Exit status of a sweep that stopped early and can be resumed by running the same command
// (EX_TEMPFAIL of <sysexits.h>); slurm/sweep.sbatch requeues the job on it.
inline constexpr int kExitResumable = 75;
// Exit status of a sweep that ran to its end with some tasks failed after all their attempts.
inline constexpr int kExitTasksFailed = 3;

// Installs the handlers (idempotent). Returns the flag.
std::atomic<bool>& install_stop_handlers();
// The process-wide stop flag (false until a signal arrives or request_stop() is called).
std::atomic<bool>& stop_flag();
// The signal that set the flag, 0 if none (or if set by request_stop()).
int stop_signal();
// Sets the flag from ordinary code (time limit, tests).
void request_stop();
// Clears the flag (tests; a new sweep in the same process).
void clear_stop();
// Puts the default dispositions back.
void restore_default_handlers();

}  // namespace pimqat::runner
