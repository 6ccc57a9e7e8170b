// Regression tests for the gnuplot scripts `pimqat analyze` writes (analysis/plot.h) from the
// hardening work (docs/reliability.md).
//
// Found by fuzz_results (fuzz/findings/results/gnuplot_injection.spec): an axis value of a
// results.h5 file becomes a series title; a line break in it ended the quoted string and the
// script's line, so the rest of the value ran as gnuplot commands when `pimqat analyze` rendered
// the plots — `system("...")` and `!...` run shell commands. Analyzing a results file someone else
// wrote ran their commands. A correct script keeps every text inside its quotes on one line.
//
// A test named DISABLED_* reproduces a bug reported but not fixed yet (the fix is in
// analysis/plot.cpp, which the hardening work does not own): enable it with the fix.
#include <gtest/gtest.h>

#include <string>

#include "analysis/plot.h"

namespace pimqat::analysis {
namespace {

// The line breaks that occur inside a single-quoted gnuplot string ('' is a quote inside one).
int breaks_inside_quotes(const std::string& script) {
  // Comment lines ("# title ...") are not gnuplot strings: their quotes are skipped.
  bool in_quote = false, in_comment = false, line_start = true;
  int breaks = 0;
  for (const char c : script) {
    if (line_start && !in_quote) in_comment = c == '#';
    line_start = c == '\n';
    if (in_comment) continue;
    if (c == '\'') in_quote = !in_quote;
    else if (in_quote && (c == '\n' || c == '\r')) ++breaks;
  }
  return breaks;
}

Plot plot_with_text(const std::string& text) {
  Plot p;
  p.name = "p";
  p.title = "title " + text;
  p.x_label = "x " + text;
  p.y_label = "y " + text;
  p.x_categories = {"a", text};
  Series s;
  s.label = "IR = " + text;
  s.x = {0, 1};
  s.y = {50, 60};
  p.series = {s};
  return p;
}

TEST(RegressionPlot, LineBreaksInLabelsStayInsideTheirString) {
  for (const std::string text : {"x\nsystem(\"touch /tmp/pimqat-injected\")\n#", "a\r\n!touch /tmp/x", "\n"}) {
    const std::string script = gnuplot_script(plot_with_text(text), "p.dat", "p.png", "png");
    EXPECT_EQ(breaks_inside_quotes(script), 0) << script;
    EXPECT_EQ(script.find("\nsystem("), std::string::npos) << script;
    EXPECT_EQ(script.find("\n!touch"), std::string::npos) << script;
  }
}

// Quotes are already handled: a label with quotes stays one string.
TEST(RegressionPlot, QuotesInLabelsStayInsideTheirString) {
  const std::string script = gnuplot_script(plot_with_text("it's 'quoted'"), "p.dat", "p.png", "png");
  EXPECT_EQ(breaks_inside_quotes(script), 0) << script;
  EXPECT_NE(script.find("it''s ''quoted''"), std::string::npos) << script;
}

}  // namespace
}  // namespace pimqat::analysis
