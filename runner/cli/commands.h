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

// runner/cli/sweep.cpp and runner/cli/status.cpp (docs/runner.md).
namespace pimqat::cli {
int run_sweep(int argc, char** argv);   // pimqat sweep SWEEP.yaml --out DIR [...]
int run_status(int argc, char** argv);  // pimqat status DIR [--watch S]
}  // namespace pimqat::cli

// runner/cli/plan.cpp (docs/sweeps.md, "pimqat plan").
namespace pimqat::cli {
int run_plan(int argc, char** argv);  // pimqat plan SWEEP.yaml [--out DIR] [--list]
}  // namespace pimqat::cli

// runner/cli/eval.cpp, mac_error.cpp, curves.cpp (docs/pim.md).
namespace pimqat::cli {
int run_eval(int argc, char** argv);       // pimqat eval --checkpoint FILE --config CONFIG.yaml [--dies D] [...]
int run_mac_error(int argc, char** argv);  // pimqat mac-error [--scheme S] [--adc-bits LIST] [--noise LIST] [...]
int run_curves(int argc, char** argv);     // pimqat curves --out FILE.(csv|h5) [--dies D] [--columns C] [...]
}  // namespace pimqat::cli

// runner/cli/analyze.cpp (docs/analysis.md).
namespace pimqat::cli { int run_analyze(int argc, char** argv); }  // pimqat analyze DIR [--out ANALYSIS_DIR] [--no-plots] [...]
