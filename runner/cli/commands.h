#pragma once
// One function per subcommand, each in its own file of runner/cli/ (DESIGN.md section 4).
// argv[0] is the subcommand name. Return value: the process exit code
// (0 success, 1 failure, 2 bad input, 75 interrupted but resumable).

namespace pimqat::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitResumable = 75;  // EX_TEMPFAIL: stopped by a signal or time limit; rerun to resume

int run_train(int argc, char** argv);
}  // namespace pimqat::cli
