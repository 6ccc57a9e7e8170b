// Output of an analysis: cell formatting, CSV quoting, gnuplot scripts and data, PNG plots of a
// small constructed sweep (when gnuplot is installed), the whole `analyze` call with and without
// gnuplot, the mac-error and curves views, and the h5py/pandas example of docs/examples.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "analysis/analyze.h"
#include "analysis/characterization.h"
#include "analysis/output.h"
#include "analysis/plot.h"
#include "analysis/results_file.h"
#include "analysis_testing.h"
#include "core/error.h"
#include "core/hdf5.h"

namespace pimqat::analysis {
namespace {

using testing::FakeSweep;
using testing::TempDir;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Two TR x two IR x two sigma, 4 dies, a digital baseline, one partial setting.
FakeSweep small_sweep() {
  FakeSweep s;
  const std::string digital = s.add_train({{"pim.enabled", "false"}, {"pim.train_bits", "-"}}, {0.6, 0.9});
  std::map<std::string, std::string> model;
  for (const char* tr : {"4", "6"}) model[tr] = s.add_train({{"pim.enabled", "true"}, {"pim.train_bits", tr}}, {0.5, 0.8, 0.85});
  for (const char* ir : {"4", "6"})
    for (const char* sigma : {"0", "1"}) {
      const double penalty = std::string(sigma) == "1" ? 0.05 : 0.0;
      s.add_eval(digital, {{"pim.enabled", "false"}, {"pim.train_bits", "-"}, {"eval.infer_bits", ir}, {"eval.noise_sigma", sigma}},
                 {0.3 - penalty, 0.32 - penalty, 0.31 - penalty, 0.29 - penalty});
      for (const char* tr : {"4", "6"}) {
        const double base = 0.85 - 0.02 * std::fabs(std::atof(tr) - std::atof(ir)) - penalty;
        std::vector<double> dies = {base - 0.01, base + 0.005, base + 0.01, base - 0.005};
        if (std::string(ir) == "6" && std::string(sigma) == "1" && std::string(tr) == "4") dies[3] = std::nan("");
        s.add_eval(model[tr], {{"pim.enabled", "true"}, {"pim.train_bits", tr}, {"eval.infer_bits", ir}, {"eval.noise_sigma", sigma}},
                   dies);
      }
    }
  return s;
}

TEST(Output, CellsAreFormattedForPeopleAndForCsv) {
  EXPECT_EQ(cell_display(Cell{87.456}, 2), "87.46");
  EXPECT_EQ(cell_display(Cell{std::nan("")}, 2), "");
  EXPECT_EQ(cell_display(Cell{0.00003}, 4), "3.0e-05");  // would read 0.0000
  EXPECT_EQ(cell_display(Cell{std::int64_t{12}}, 2), "12");
  EXPECT_EQ(cell_display(Cell{}, 2), "");
  EXPECT_EQ(cell_csv(Cell{0.1}), "0.1");
  EXPECT_EQ(cell_csv(Cell{std::nan("")}), "");
  EXPECT_EQ(cell_csv(Cell{std::string("a,b")}), "\"a,b\"");
  EXPECT_EQ(cell_csv(Cell{std::string("say \"hi\"")}), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(file_stem("IR=4, sigma=0.5"), "ir_4_sigma_0p5");
}

TEST(Output, TextTableAlignsAndTruncates) {
  Table t;
  t.name = "demo";
  t.title = "Demo";
  t.columns = {{"name", 0}, {"value", 2}};
  t.rows = {{Cell{std::string("a")}, Cell{1.5}}, {Cell{std::string("longer")}, Cell{22.25}}, {Cell{std::string("c")}, Cell{}}};
  t.notes = {"a note"};
  EXPECT_EQ(format_table_text(t, 2),
            "Demo\n"
            "name    value\n"
            "------  -----\n"
            "a        1.50\n"
            "longer  22.25\n"
            "... 1 more rows (all of them in demo.csv)\n"
            "a note\n");
  EXPECT_EQ(format_csv(t), "name,value\na,1.5\nlonger,22.25\nc,\n");
}

TEST(Output, GnuplotDataHasOneIndexBlockPerSeries) {
  Plot p;
  p.name = "p";
  p.title = "It's a plot";
  p.x_label = "x (bits)";
  p.y_label = "y (%)";
  Series a, b, empty;
  a.label = "with bars";
  a.x = {1, 2};
  a.y = {10, std::nan("")};
  a.y_low = {9, 0};
  a.y_high = {11, 0};
  empty.label = "nothing";
  empty.x = {1};
  empty.y = {std::nan("")};
  b.label = "plain";
  b.x = {3};
  b.y = {30};
  p.series = {a, empty, b};
  EXPECT_EQ(gnuplot_data(p),
            "# It's a plot\n# columns: x y y_low y_high; one block per series (gnuplot `index`)\n"
            "# with bars\n1 10 9 11\n2 NaN 0 0\n\n\n# plain\n3 30 30 30\n");
  const std::string gp = gnuplot_script(p, "p.dat", "p.png", "pngcairo");
  EXPECT_NE(gp.find("set title 'It''s a plot'"), std::string::npos) << gp;
  EXPECT_NE(gp.find("'p.dat' index 0 using 1:2:3:4 with yerrorlines"), std::string::npos) << gp;
  EXPECT_NE(gp.find("'p.dat' index 1 using 1:2 with linespoints"), std::string::npos) << gp;  // the empty series is skipped
  EXPECT_EQ(gp.find("nothing"), std::string::npos) << gp;
  EXPECT_NE(gp.find("set xlabel 'x (bits)'"), std::string::npos);
}

TEST(Output, PngCheckReadsSignatureAndSize) {
  TempDir dir("png");
  // A minimal header: signature, IHDR length 13, "IHDR", width 640, height 480.
  const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                               0, 0, 2, 128, 0, 0, 1, 224};
  std::ofstream(dir.file("a.png"), std::ios::binary).write(reinterpret_cast<const char*>(png), sizeof png);
  unsigned w = 0, h = 0;
  EXPECT_TRUE(is_png_file(dir.file("a.png"), &w, &h));
  EXPECT_EQ(w, 640u);
  EXPECT_EQ(h, 480u);
  std::ofstream(dir.file("b.png")) << "GIF89a not a png at all";
  EXPECT_FALSE(is_png_file(dir.file("b.png")));
  EXPECT_FALSE(is_png_file(dir.file("missing.png")));
}

TEST(Output, AnalyzeWritesValidPngPlotsTablesAndReport) {
  const Gnuplot gnuplot = find_gnuplot();
  if (!gnuplot.found) GTEST_SKIP() << "no PNG check: " << gnuplot.problem;
  TempDir dir("analyze");
  small_sweep().write(dir.file("results.h5"));
  AnalyzeOptions options;
  options.run_dir = dir.path();
  const AnalyzeResult r = analyze(options);
  EXPECT_EQ(r.out_dir, dir.path() + "/analysis");
  ASSERT_TRUE(r.gnuplot.found);
  // Fig. 4 view (one plot), best TR (best-TR line plot + accuracy vs TR per sigma), learning curves (2).
  ASSERT_GE(r.plots.size(), 5u);
  const std::string report = read_file(r.report_path);
  for (const PlotOutcome& p : r.plots) {
    SCOPED_TRACE(p.name);
    EXPECT_TRUE(p.ok) << p.error;
    unsigned width = 0, height = 0;
    EXPECT_TRUE(is_png_file(p.png, &width, &height));
    EXPECT_EQ(width, 1000u);
    EXPECT_EQ(height, 650u);
    EXPECT_GT(std::filesystem::file_size(p.png), 5000u);  // more than an empty frame
    EXPECT_TRUE(std::filesystem::exists(dir.path() + "/analysis/plots/" + p.name + ".gp"));
    EXPECT_NE(report.find("(plots/" + p.name + ".png)"), std::string::npos);
  }
  for (const char* table : {"overview", "scheme_resolution", "best_train_bits", "learning_curves", "eval_stats"})
    EXPECT_TRUE(std::filesystem::exists(dir.path() + "/analysis/tables/" + std::string(table) + ".csv")) << table;
  const std::string csv = read_file(dir.path() + "/analysis/tables/eval_stats.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "pim.enabled,pim.train_bits,eval.infer_bits,eval.noise_sigma,n,of,mean,std,min,p5,max,ci95_low,ci95_high,status");
  EXPECT_NE(csv.find("true,4,6,1,3,4,"), std::string::npos) << csv;  // the partial setting: 3 of 4 dies
  EXPECT_NE(report.find("partial sweep: 1 setting"), std::string::npos);
  EXPECT_NE(report.find("## Best training resolution"), std::string::npos);
}

TEST(Output, AnalyzeWithoutGnuplotStillWritesTables) {
  TempDir dir("nognuplot");
  small_sweep().write(dir.file("results.h5"));
  AnalyzeOptions options;
  options.run_dir = dir.file("results.h5");  // a results file instead of the directory
  options.out_dir = dir.file("out");
  options.gnuplot = dir.file("no-such-gnuplot");
  const AnalyzeResult r = analyze(options);
  EXPECT_FALSE(r.gnuplot.found);
  EXPECT_NE(r.gnuplot.problem.find("was not found"), std::string::npos);
  bool warned = false;
  for (const auto& w : r.report.warnings) warned = warned || w.find("no plots") != std::string::npos;
  EXPECT_TRUE(warned);
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/report.md")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/tables/best_train_bits.csv")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/plots/best_train_bits.gp")));  // to render elsewhere
  EXPECT_FALSE(std::filesystem::exists(dir.file("out/plots/best_train_bits.png")));
}

TEST(Output, AnalyzeRefusesAnUnsupportedFile) {
  TempDir dir("refuse");
  FakeSweep::WriteOptions bad;
  bad.format_version = 7;
  small_sweep().write(dir.file("results.h5"), bad);
  AnalyzeOptions options;
  options.run_dir = dir.path();
  options.plots = false;
  try {
    analyze(options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("format_version 7 is not supported"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/analysis/report.md"));
}

TEST(Output, MacErrorAndCurvesFilesBecomeSections) {
  TempDir dir("characterization");
  {
    // The layout of runner/cli/mac_error.cpp.
    H5File f = H5File::create(dir.file("mac.h5"));
    f.set_attr_string("kind", "pimqat-mac-error");
    f.set_attr_string("scheme", "bit-serial");
    f.set_attr_int("rows", 144);
    H5Table t;
    t.add("adc_bits", std::vector<std::int64_t>{3, 3, 5, 5});
    t.add("noise_sigma", std::vector<double>{0, 1, 0, 1});
    t.add("dies", std::vector<std::int64_t>{2, 2, 2, 2});
    t.add("rms_error_lsb", std::vector<double>{40, 50, 10, 20});
    t.add("mean_error_lsb", std::vector<double>{1, 2, 3, 4});
    t.add("relative_rms", std::vector<double>{0.4, 0.5, 0.1, 0.2});
    t.add("rho", std::vector<double>{0.8, 0.82, 0.97, 0.98});
    t.add("rescaled_relative_rms", std::vector<double>{0.3, 0.4, 0.05, 0.1});
    t.add("exact_std", std::vector<double>{100, 100, 100, 100});
    write_table(f, "mac_error", t);
  }
  const Section mac = mac_error_section(dir.file("mac.h5"));
  ASSERT_EQ(mac.tables.size(), 1u);
  EXPECT_EQ(mac.tables[0].rows.size(), 4u);
  ASSERT_EQ(mac.plots.size(), 3u);  // error vs noise, rho vs resolution, error vs resolution
  EXPECT_EQ(mac.plots[0].name, "mac_error_vs_noise");
  EXPECT_EQ(mac.plots[0].title, "PIM computing error vs thermal noise (bit-serial, N=144)");
  EXPECT_NE(mac.text.find("scheme bit-serial, rows 144"), std::string::npos) << mac.text;
  EXPECT_EQ(mac.plots[0].y_label, "RMS computing error / std(y) (%)");
  ASSERT_EQ(mac.plots[0].series.size(), 2u);  // one per resolution
  EXPECT_EQ(mac.plots[0].series[0].label, "adc_bits=3");
  EXPECT_EQ(mac.plots[0].series[0].y, (std::vector<double>{40, 50}));  // percent of std(y)
  EXPECT_EQ(mac.plots[1].series[0].y, (std::vector<double>{0.8, 0.97}));

  {
    H5File f = H5File::create(dir.file("curves.h5"));
    f.set_attr_string("format", "pimqat-adc-curves");
    f.set_attr_int("version", 1);
    f.set_attr_int("adc_bits", 2);
    f.set_attr_int("p_lo", 0);
    f.set_attr_int("p_hi", 6);  // Delta = 2: ideal codes 0, 0.5, ..., 3
    const std::vector<double> codes = {0, 0.5, 1, 1.5, 2, 2.5, 3,       // ideal
                                       0.5, 1, 1.5, 2, 2.5, 3, 3};      // +0.5 offset, clipped at 3
    f.write("codes", codes.data(), {2, 7});
    f.write("die", std::vector<std::int64_t>{0, 1});
    f.write("column", std::vector<std::int64_t>{4, 4});
  }
  const Section curves = curves_section(dir.file("curves.h5"));
  const Table& t = curves.tables[0];
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(std::get<double>(t.rows[0][3]), 0.0);
  EXPECT_DOUBLE_EQ(std::get<double>(t.rows[1][3]), 0.5);                     // max |deviation|
  EXPECT_DOUBLE_EQ(std::get<double>(t.rows[1][4]), std::sqrt(6 * 0.25 / 7));  // rms deviation
  EXPECT_EQ(std::get<std::int64_t>(t.rows[1][1]), 1);
  ASSERT_EQ(curves.plots.size(), 2u);
  EXPECT_EQ(curves.plots[0].series.size(), 3u);  // the ideal line and both curves

  // Wrong files say what they are missing.
  try {
    mac_error_section(dir.file("curves.h5"));
    FAIL() << "curves file accepted as mac-error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a mac-error table"), std::string::npos) << e.what();
  }
  EXPECT_THROW(curves_section(dir.file("mac.h5")), Error);
  EXPECT_THROW(curves_section(dir.file("missing.h5")), Error);
}

TEST(Output, PythonExampleReadsTheResultsFile) {
  if (std::system("/usr/bin/python3 -c 'import h5py' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 cannot import h5py (install python3-h5py): the example is not run";
  TempDir dir("python");
  small_sweep().write(dir.file("results.h5"));
  const std::string out = dir.file("out.txt");
  const std::string command = std::string("/usr/bin/python3 ") + PIMQAT_SOURCE_DIR + "/docs/examples/read_results.py " +
                              dir.path() + " > " + out + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(out);
  const std::string text = read_file(out);
  EXPECT_NE(text.find("format_version 1"), std::string::npos) << text;
  // Its per-setting n and mean equal the analysis' (pooled) settings, as multisets.
  std::vector<std::pair<std::size_t, double>> python, cpp;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("SETTING ", 0) != 0) continue;
    const auto n = line.find(" n="), mean = line.find(" mean=");
    python.emplace_back(std::stoul(line.substr(n + 3)), std::stod(line.substr(mean + 6)));
  }
  const SweepData data = collect_sweep(read_results_file(dir.file("results.h5")));
  for (const auto& s : data.settings) cpp.emplace_back(s.accuracy.size(), s.stats.mean);
  ASSERT_EQ(python.size(), cpp.size()) << text;
  std::sort(python.begin(), python.end());
  std::sort(cpp.begin(), cpp.end());
  for (std::size_t i = 0; i < cpp.size(); ++i) {
    EXPECT_EQ(python[i].first, cpp[i].first);
    EXPECT_NEAR(python[i].second, cpp[i].second, 1e-5);
  }
}

}  // namespace
}  // namespace pimqat::analysis

namespace pimqat::analysis {
namespace {

// Values read from a results file end up in gnuplot scripts: a newline in them must not start a
// new gnuplot command (found by fuzz/findings/results/gnuplot_injection.spec).
TEST(GnuplotScript, TextFromResultsCannotInjectCommands) {
  Plot plot;
  plot.name = "injection";
  plot.title = "title\nsystem(\"touch /tmp/x\")\n#";
  plot.x_label = "x\nsystem('a')";
  plot.y_label = "y";
  Series s;
  s.label = "4\nsystem(\"touch /tmp/x\")\n#";
  s.x = {1.0};
  s.y = {2.0};
  plot.series.push_back(s);
  const std::string script = gnuplot_script(plot, "injection.dat", "out.png", "pngcairo");
  const std::string data = gnuplot_data(plot);
  for (const std::string* text : {&script, &data}) {
    std::size_t start = 0;
    while (start < text->size()) {
      const std::size_t end = text->find('\n', start);
      const std::string line = text->substr(start, end == std::string::npos ? std::string::npos : end - start);
      EXPECT_NE(line.rfind("system", 0), 0u) << "a line starts a command from the data: " << line;
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
}

}  // namespace
}  // namespace pimqat::analysis
