#pragma once
// PNG plots through gnuplot (Debian's gnuplot-nox). A plot is written as NAME.dat (one block per
// series: x, y, y_low, y_high; blocks separated by two blank lines, so `index i` selects series i)
// and NAME.gp (a script that reads NAME.dat and writes NAME.png), then gnuplot runs the script as
// a child process (no shell; its output goes to NAME.log, kept only when it fails). The .gp and
// .dat files stay next to the PNG so that a user can restyle a figure.
//
// Terminal: pngcairo when this gnuplot has it, else the libgd `png` terminal; 1000x650 pixels,
// text not "enhanced" (labels are shown literally: pim.train_bits keeps its underscore).
#include <string>
#include <vector>

#include "analysis/report.h"

namespace pimqat::analysis {

struct Gnuplot {
  bool found = false;
  std::string path;      // the program
  std::string terminal;  // "pngcairo" or "png"
  std::string problem;   // why it is not usable (found == false)
};

// `program`: a path or a name to look up in PATH; empty: $PIMQAT_GNUPLOT, else "gnuplot".
// Checks that the program runs and has a PNG terminal.
Gnuplot find_gnuplot(const std::string& program = "");

// The data file and script of a plot (exposed for tests).
std::string gnuplot_data(const Plot& plot);
std::string gnuplot_script(const Plot& plot, const std::string& data_file, const std::string& png_file,
                           const std::string& terminal);

struct PlotOutcome {
  std::string name;
  std::string png;    // path of the PNG (when ok)
  bool ok = false;
  std::string error;  // gnuplot's complaint (the end of its log) when not ok
};

// Renders every plot into `dir` (which must exist). A failed plot is reported in its outcome,
// never thrown; files that cannot be written throw pimqat::Error.
std::vector<PlotOutcome> render_plots(const std::vector<const Plot*>& plots, const std::string& dir, const Gnuplot& gnuplot);

// Whether `path` is a PNG file: the 8-byte signature and an IHDR chunk; width and height (pixels)
// go to the pointers when given.
bool is_png_file(const std::string& path, unsigned* width = nullptr, unsigned* height = nullptr);

}  // namespace pimqat::analysis
