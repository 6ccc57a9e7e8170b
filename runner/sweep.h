#pragma once
// Sweep files (DESIGN.md 3 and 5; the grammar is documented in docs/sweeps.md).
//
// A sweep is a base configuration (the schema of docs/config.md) plus axes: an axis is a dotted
// parameter path and a list of values (or a numeric range). Grid axes cross; the axes of one zip
// group vary together; zip groups cross with the grid. Expansion makes
//   - train tasks, keyed only by what affects training (every key but eval.*; with PIM off, the
//     pim.* keys other than pim.enabled do not affect training either), and
//   - eval tasks, one per (train task x inference setting x die), depending on their train task,
//     with config.eval.first_die = the die and config.eval.dies = 1,
// or, for `task: synthetic`, one synthetic task per grid point (runner tests and benchmarks).
// `replicates: R` repeats every task R times (replicate 0..R-1 is part of the identity, so each
// replicate draws different random numbers). A task's id is identity_of(canonical) (runner/canonical.h)
// over its resolved parameters: independent of key order, number spelling and the dies count
// (growing `dies` or adding axis values adds tasks and keeps the existing ids).
//
// Every problem of a sweep (its own keys, axis paths, values, and the configuration of every grid
// point through the config validator, each distinct problem once) is reported in one ConfigError.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runner/config.h"
#include "runner/task.h"

namespace pimqat::runner {

enum class SweepKind { TrainEval, Synthetic };

struct SweepAxis {
  std::string path;                 // a config key (pim.train_bits), a section (pim), or synthetic.KEY
  std::vector<std::string> labels;  // each value as text (numbers normalized: 5e-1 -> 0.5)
  std::string where;                // file:line:column of the axis
  int zip_group = -1;               // -1: a grid axis; k >= 0: varies together with zip group k's other axes
  bool affects_training = true;     // false for eval axes: they multiply eval tasks only
};

// A file read while loading a sweep, kept verbatim for provenance.
struct SweepFile {
  std::string path;
  std::string text;
};

struct Sweep {
  std::string name;                // `name:`, default: the file name without extension
  std::string description;
  std::uint64_t seed = 1;          // the sweep seed: ExperimentConfig::seed of every task
  SweepKind kind = SweepKind::TrainEval;
  int replicates = 1;
  std::vector<SweepAxis> axes;     // grid axes in file order, then the zip groups' axes
  std::size_t grid_points = 0;     // product of the grid axis sizes and zip group lengths
  std::vector<SweepFile> files;    // the sweep file first, then each included file once
  std::vector<TaskSpec> tasks;     // the expansion: train tasks first, then eval tasks grouped by
                                   // train task (synthetic: parents, then dependents)
  std::string fingerprint;         // sweep_fingerprint(tasks)
};

// Reads, validates and expands a sweep file. Throws ConfigError listing every problem.
Sweep load_sweep(const std::string& path);
// The same for text; `source_name` names it in problems, includes are relative to `include_dir`.
Sweep parse_sweep(const std::string& text, const std::string& source_name, const std::string& include_dir = ".");

// The expanded task list (computed by load_sweep/parse_sweep).
inline const std::vector<TaskSpec>& expand(const Sweep& sweep) { return sweep.tasks; }

// 16 hex digits: identity_of over the sorted task ids joined by newlines. Two sweeps with the same
// fingerprint have the same tasks, however their files are written.
std::string sweep_fingerprint(const std::vector<TaskSpec>& tasks);

// The canonical record of a train task / eval task of `config` (runner/canonical.h), as expansion
// builds them; exposed for tests and for tools that need an id without a sweep. An eval task with
// thermal noise (eval.noise_sigma > 0) also records the noise definition's version under
// kNoiseModelKey (pim::kThermalNoiseModel, pim/gaussian.h).
std::string train_canonical(const ExperimentConfig& config, int replicate);
std::string eval_canonical(const ExperimentConfig& config, int replicate);

inline constexpr std::string_view kNoiseModelKey = "task.noise_model";
// The identity the task of this canonical text had before kNoiseModelKey entered it (the text
// without that field), or empty when it has no such field.
std::string identity_without_noise_model(const std::string& canonical);

}  // namespace pimqat::runner
