#include "analysis/plot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "analysis/output.h"
#include "core/error.h"

extern char** environ;

namespace pimqat::analysis {
namespace {

// Text from a results file on one line: control characters (a newline would end a gnuplot
// command and start another, e.g. `system(...)`) become spaces.
std::string one_line(const std::string& text) {
  std::string out = text;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

// gnuplot single-quoted string: a quote is doubled; control characters become spaces.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : one_line(text)) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

// Point types (hollow and filled circles, squares, triangles, ...) and dash types cycle per series,
// and points shrink a little from series to series, so that coinciding lines stay visible.
const std::vector<int> kPointTypes = {6, 7, 4, 5, 8, 9, 12, 13, 10, 11};

bool has_error_bars(const Series& s) { return !s.y_low.empty() && s.y_low.size() == s.x.size(); }

bool has_points(const Series& s) {
  for (double y : s.y)
    if (!std::isnan(y)) return true;
  return false;
}

std::string search_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs `program script` with stdin from /dev/null and stdout/stderr into `log`; returns the exit
// status (-1 when it could not start or died from a signal).
int run_gnuplot(const std::string& program, const std::string& script, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<std::string> args = {program, script};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_tail(const std::string& path, std::size_t max_chars) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.size() > max_chars ? "..." + text.substr(text.size() - max_chars) : text;
}

bool terminal_works(const std::string& program, const std::string& terminal, const std::string& scratch_dir) {
  const std::string script = scratch_dir + "/pimqat-gnuplot-probe-" + std::to_string(getpid()) + ".gp";
  const std::string log = script + ".log";
  write_text_file(script, "set terminal " + terminal + "\n");
  const int rc = run_gnuplot(program, script, log);
  std::error_code ec;
  std::filesystem::remove(script, ec);
  std::filesystem::remove(log, ec);
  return rc == 0;
}

}  // namespace

Gnuplot find_gnuplot(const std::string& program) {
  Gnuplot g;
  std::string name = program;
  if (name.empty()) {
    const char* env = std::getenv("PIMQAT_GNUPLOT");
    name = env && *env ? env : "gnuplot";
  }
  g.path = search_path(name);
  if (g.path.empty()) {
    g.problem = "gnuplot ('" + name + "') was not found" + (name.find('/') == std::string::npos ? " in PATH" : "") +
                "; install Debian's gnuplot-nox (apt-get install gnuplot-nox) or set PIMQAT_GNUPLOT";
    return g;
  }
  std::error_code ec;
  const std::string scratch = std::filesystem::temp_directory_path(ec).string();
  for (const char* terminal : {"pngcairo", "png"})
    if (terminal_works(g.path, terminal, scratch.empty() ? "/tmp" : scratch)) {
      g.terminal = terminal;
      g.found = true;
      return g;
    }
  g.problem = "'" + g.path + "' does not run or has neither the pngcairo nor the png terminal";
  return g;
}

std::string gnuplot_data(const Plot& plot) {
  std::string out = "# " + one_line(plot.title) + "\n# columns: x y y_low y_high; one block per series (gnuplot `index`)\n";
  bool first = true;
  for (const Series& s : plot.series) {
    if (!has_points(s)) continue;
    if (!first) out += "\n\n";
    first = false;
    out += "# " + one_line(s.label) + "\n";
    const bool bars = has_error_bars(s);
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      const double y = i < s.y.size() ? s.y[i] : NAN;
      out += number(s.x[i]) + " " + number(y) + " " + number(bars ? s.y_low[i] : y) + " " +
             number(bars ? s.y_high[i] : y) + "\n";
    }
  }
  return out;
}

std::string gnuplot_script(const Plot& plot, const std::string& data_file, const std::string& png_file,
                           const std::string& terminal) {
  std::string gp;
  gp += "# " + one_line(plot.title) + " (written by pimqat analyze; edit and run `gnuplot " +
        std::filesystem::path(png_file).stem().string() + ".gp`)\n";
  gp += "set terminal " + terminal + " noenhanced size 1000,650" + (terminal == "pngcairo" ? " font ',11'" : "") + "\n";
  gp += "set output " + quoted(png_file) + "\n";
  gp += "set datafile missing 'NaN'\n";
  gp += "set title " + quoted(plot.title) + "\n";
  gp += "set xlabel " + quoted(plot.x_label) + "\n";
  gp += "set ylabel " + quoted(plot.y_label) + "\n";
  std::size_t drawn = 0;
  double x_min = INFINITY, x_max = -INFINITY;
  for (const Series& s : plot.series) {
    if (!has_points(s)) continue;
    ++drawn;
    for (double x : s.x) {
      x_min = std::min(x_min, x);
      x_max = std::max(x_max, x);
    }
  }
  gp += "set key " + (drawn > 4 ? std::string("outside right top vertical") : plot.key_position) + " box opaque\n";
  if (plot.integer_x && plot.x_categories.empty() && x_max >= x_min && x_max - x_min <= 20) gp += "set xtics 1\n";
  gp += "set grid\n";
  gp += "set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05\n";
  if (!plot.x_categories.empty()) {
    gp += "set xtics (";
    for (std::size_t i = 0; i < plot.x_categories.size(); ++i)
      gp += (i ? ", " : "") + quoted(plot.x_categories[i]) + " " + std::to_string(i);
    gp += ")" + std::string(plot.x_categories.size() > 3 ? " rotate by 25 right" : "") + "\n";
    gp += "set xrange [-0.5:" + number(static_cast<double>(plot.x_categories.size()) - 0.5) + "]\n";
    gp += "set offsets 0, 0, graph 0.05, graph 0.05\n";
  }
  std::string command;
  std::size_t index = 0;
  for (const Series& s : plot.series) {
    if (!has_points(s)) continue;
    const bool bars = has_error_bars(s);
    std::string with;
    switch (plot.style) {
      case PlotStyle::LinesPoints: with = bars ? "yerrorlines" : "linespoints"; break;
      case PlotStyle::Points: with = bars ? "yerrorbars" : "points"; break;
      case PlotStyle::Lines: with = "lines"; break;
      case PlotStyle::Steps: with = "steps"; break;
    }
    // Lines-only plots (dense curves) stay solid; marked lines cycle dash and point types.
    const std::string style =
        plot.style == PlotStyle::Lines || plot.style == PlotStyle::Steps
            ? " lw 1.5"
            : " lw 2 dt " + std::to_string(index % 5 + 1) + " pt " + std::to_string(kPointTypes[index % kPointTypes.size()]) +
                  " ps " + number(1.8 - 0.1 * static_cast<double>(index % 8));
    // Categorical series are spread a little around each category so that error bars do not overlap.
    std::string x = "1";
    if (!plot.x_categories.empty() && plot.series.size() > 1) {
      const double shift = (static_cast<double>(index) - (static_cast<double>(plot.series.size()) - 1) / 2) * 0.12;
      x = "($1+" + number(shift) + ")";
    }
    command += std::string(command.empty() ? "plot " : ", \\\n     ") + quoted(data_file) + " index " +
               std::to_string(index) + " using " + x + ":2" + (bars && plot.style != PlotStyle::Lines ? ":3:4" : "") +
               " with " + with + style + " title " + quoted(s.label);
    ++index;
  }
  if (command.empty()) command = "set label 1 'no data' at graph 0.5, graph 0.5 center\nplot NaN notitle";
  gp += command + "\n";
  return gp;
}

std::vector<PlotOutcome> render_plots(const std::vector<const Plot*>& plots, const std::string& dir, const Gnuplot& gnuplot) {
  std::vector<PlotOutcome> outcomes;
  for (const Plot* plot : plots) {
    PlotOutcome o;
    o.name = plot->name;
    const std::string base = (std::filesystem::path(dir) / plot->name).string();
    o.png = base + ".png";
    // The script names its files relative to its own directory, so the folder can be moved.
    write_text_file(base + ".dat", gnuplot_data(*plot));
    write_text_file(base + ".gp", gnuplot_script(*plot, plot->name + ".dat", plot->name + ".png", gnuplot.terminal));
    if (!gnuplot.found) {
      o.error = gnuplot.problem;
      outcomes.push_back(std::move(o));
      continue;
    }
    const std::string log = base + ".log";
    std::error_code ec;
    std::filesystem::remove(o.png, ec);
    // gnuplot resolves relative paths against its working directory: run it from `dir` by
    // giving it a script that changes there first.
    const std::string runner = base + ".run.gp";
    write_text_file(runner, "cd " + quoted(std::filesystem::absolute(dir, ec).string()) + "\nload " +
                                quoted(plot->name + ".gp") + "\n");
    const int rc = run_gnuplot(gnuplot.path, runner, log);
    std::filesystem::remove(runner, ec);
    if (rc == 0 && is_png_file(o.png)) {
      o.ok = true;
      std::filesystem::remove(log, ec);
    } else {
      o.error = rc < 0 ? "gnuplot did not start or was killed" : "gnuplot failed (exit status " + std::to_string(rc) + "): " + read_tail(log, 400);
    }
    outcomes.push_back(std::move(o));
  }
  return outcomes;
}

bool is_png_file(const std::string& path, unsigned* width, unsigned* height) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[24] = {};
  if (!in.read(reinterpret_cast<char*>(header), sizeof header)) return false;
  static const unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (std::memcmp(header, kSignature, 8) != 0) return false;
  // The first chunk: length (4 bytes, big-endian) = 13, type "IHDR", then width and height.
  const auto be32 = [&](int at) {
    return (static_cast<unsigned>(header[at]) << 24) | (static_cast<unsigned>(header[at + 1]) << 16) |
           (static_cast<unsigned>(header[at + 2]) << 8) | static_cast<unsigned>(header[at + 3]);
  };
  if (be32(8) != 13 || std::memcmp(header + 12, "IHDR", 4) != 0) return false;
  if (width) *width = be32(16);
  if (height) *height = be32(20);
  return be32(16) > 0 && be32(20) > 0;
}

}  // namespace pimqat::analysis
