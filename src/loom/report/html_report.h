#pragma once
// The self-contained HTML page of `loom report`: one SVG line chart per metric (iteration on x), every
// run overlaid in its own colour with a legend. No scripts, fonts or other resources. Each chart carries
// its data: the <svg> its axis ranges and plot box (data-x-min/max, data-y-min/max, data-y-scale,
// data-plot), each <polyline> its run, metric and the plotted values as printed (data-x, data-y), so a
// reader (and the tests) can check the picture against the CSV.
#include <string>
#include <vector>

#include "loom/report/metrics_table.h"

namespace loom::report {

std::string html_report(const std::vector<RunTable>& runs, const std::vector<std::string>& columns);

}  // namespace loom::report
