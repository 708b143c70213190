#include "loom/report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace loom::report {

namespace {

const char* const kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kNumColours = 10;

// Chart geometry (px): the plot box inside an svg of kWidth x (kHeight + legend rows).
constexpr double kWidth = 460, kHeight = 270, kLeft = 72, kTop = 14, kPlotW = 370, kPlotH = 200;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

struct Axis {
  double lo = 0, hi = 1;  // domain (for a log axis: powers of ten)
  bool log = false;
  std::vector<double> ticks;
  double pos(double v) const {  // 0..1 along the axis
    const double a = log ? std::log10(v) : v, l = log ? std::log10(lo) : lo, h = log ? std::log10(hi) : hi;
    return (a - l) / (h - l);
  }
};

double nice_step(double range, int n) {
  const double raw = range / n, mag = std::pow(10.0, std::floor(std::log10(raw))), f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

// Round tick positions covering [lo, hi]; a log axis when the values span three decades or more.
Axis make_axis(double lo, double hi, bool allow_log, int n) {
  Axis a;
  if (allow_log && lo > 0 && hi / lo >= 1000) {
    a.log = true;
    const int e0 = int(std::floor(std::log10(lo))), e1 = int(std::ceil(std::log10(hi)));
    const int every = (e1 - e0 + 7) / 8;
    a.lo = std::pow(10.0, e0);
    a.hi = std::pow(10.0, std::max(e1, e0 + 1));
    for (int e = e0; e <= std::max(e1, e0 + 1); e += every) a.ticks.push_back(std::pow(10.0, e));
    return a;
  }
  if (lo == hi) {
    const double d = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const double step = nice_step(hi - lo, n);
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  for (double t = a.lo; t <= a.hi + step * 1e-6; t += step) a.ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return a;
}

std::string tick_label(const Axis& a, double v) {
  if (a.log) {
    const int e = int(std::lround(std::log10(v)));
    if (e >= -2 && e <= 4) return fmt("%g", v);
    return "1e" + std::to_string(e);
  }
  if (v == 0) return "0";
  // Enough significant digits for the largest tick and the step's decimals (steps are 1, 2 or 5 x 10^k).
  const double step = a.ticks.size() > 1 ? a.ticks[1] - a.ticks[0] : std::fabs(v);
  const double big = std::max(std::fabs(a.lo), std::fabs(a.hi));
  const int k = int(std::floor(std::log10(step) + 1e-9));
  const int sig = std::max(1, int(std::floor(std::log10(big) + 1e-9)) + 1 + std::max(0, -k));
  if (sig > 7 || big < 1e-3) return fmt("%.3g", v);
  return fmt(("%." + std::to_string(sig) + "g").c_str(), v);
}

struct Series {
  size_t run;
  std::vector<std::pair<double, double>> points;  // (iteration, value)
  std::vector<std::string> x_text, y_text;
};

std::string chart(const std::string& metric, const std::vector<Series>& series, const std::vector<RunTable>& runs) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  const Axis ax = make_axis(x0, x1, false, 6), ay = make_axis(y0, y1, true, 5);
  const int legend_rows = int(series.size());
  const double height = kHeight + 16.0 * legend_rows;
  std::string o;
  o += "<figure class=\"chart\"><figcaption>" + esc(metric) + "</figcaption>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", kWidth) + "\" height=\"" + fmt("%.0f", height) +
       "\" data-metric=\"" + esc(metric) + "\" data-x-min=\"" + fmt("%.17g", ax.lo) + "\" data-x-max=\"" +
       fmt("%.17g", ax.hi) + "\" data-y-min=\"" + fmt("%.17g", ay.lo) + "\" data-y-max=\"" + fmt("%.17g", ay.hi) +
       "\" data-y-scale=\"" + (ay.log ? "log" : "linear") + "\" data-plot=\"" + fmt("%g", kLeft) + " " +
       fmt("%g", kTop) + " " + fmt("%g", kPlotW) + " " + fmt("%g", kPlotH) + "\">\n";
  const double bottom = kTop + kPlotH, right = kLeft + kPlotW;
  o += "<rect x=\"" + fmt("%g", kLeft) + "\" y=\"" + fmt("%g", kTop) + "\" width=\"" + fmt("%g", kPlotW) +
       "\" height=\"" + fmt("%g", kPlotH) + "\" fill=\"#fafafa\" stroke=\"#999\"/>\n";
  for (double t : ax.ticks) {
    const double px = kLeft + ax.pos(t) * kPlotW;
    o += "<line class=\"grid\" x1=\"" + fmt("%.2f", px) + "\" y1=\"" + fmt("%g", kTop) + "\" x2=\"" + fmt("%.2f", px) +
         "\" y2=\"" + fmt("%g", bottom + 5) + "\" stroke=\"#ddd\"/>";
    o += "<text x=\"" + fmt("%.2f", px) + "\" y=\"" + fmt("%g", bottom + 18) + "\" text-anchor=\"middle\">" +
         esc(tick_label(ax, t)) + "</text>\n";
  }
  for (double t : ay.ticks) {
    const double py = bottom - ay.pos(t) * kPlotH;
    o += "<line class=\"grid\" x1=\"" + fmt("%g", kLeft - 5) + "\" y1=\"" + fmt("%.2f", py) + "\" x2=\"" + fmt("%g", right) +
         "\" y2=\"" + fmt("%.2f", py) + "\" stroke=\"#ddd\"/>";
    o += "<text x=\"" + fmt("%g", kLeft - 8) + "\" y=\"" + fmt("%.2f", py + 4) + "\" text-anchor=\"end\">" +
         esc(tick_label(ay, t)) + "</text>\n";
  }
  o += "<text x=\"" + fmt("%g", kLeft + kPlotW / 2) + "\" y=\"" + fmt("%g", bottom + 36) +
       "\" text-anchor=\"middle\" class=\"axis\">iteration</text>\n";
  o += "<text transform=\"translate(14 " + fmt("%g", kTop + kPlotH / 2) + ") rotate(-90)\" text-anchor=\"middle\" class=\"axis\">" +
       esc(metric) + (ay.log ? " (log scale)" : "") + "</text>\n";
  for (size_t k = 0; k < series.size(); k++) {
    const Series& s = series[k];
    const char* colour = kColours[s.run % kNumColours];
    std::string pts, xs, ys;
    for (size_t i = 0; i < s.points.size(); i++) {
      const double px = kLeft + ax.pos(s.points[i].first) * kPlotW, py = bottom - ay.pos(s.points[i].second) * kPlotH;
      if (i) pts += ' ', xs += ' ', ys += ' ';
      pts += fmt("%.2f", px) + "," + fmt("%.2f", py);
      xs += s.x_text[i];
      ys += s.y_text[i];
    }
    o += "<polyline data-run=\"" + esc(runs[s.run].name) + "\" data-metric=\"" + esc(metric) + "\" data-x=\"" + xs +
         "\" data-y=\"" + esc(ys) + "\" fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"1.6\" points=\"" + pts +
         "\"/>\n";
    if (s.points.size() <= 40)  // markers, so single points and sparse series show
      for (const auto& [x, y] : s.points)
        o += "<circle cx=\"" + fmt("%.2f", kLeft + ax.pos(x) * kPlotW) + "\" cy=\"" +
             fmt("%.2f", bottom - ay.pos(y) * kPlotH) + "\" r=\"2.6\" fill=\"" + colour + "\"/>";
    const double lx = 10, ly = kHeight + 16.0 * double(k) - 4;
    o += "<rect class=\"swatch\" x=\"" + fmt("%g", lx) + "\" y=\"" + fmt("%g", ly - 9) + "\" width=\"12\" height=\"10\" fill=\"" +
         colour + "\"/><text x=\"" + fmt("%g", lx + 16) + "\" y=\"" + fmt("%g", ly) + "\">" + esc(runs[s.run].name) +
         "</text>\n";
  }
  o += "</svg></figure>\n";
  return o;
}

}  // namespace

std::string html_report(const std::vector<RunTable>& runs, const std::vector<std::string>& columns) {
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>loom report</title>\n"
      "<style>body{font:13px sans-serif;margin:16px;color:#222;background:#fff}h1{font-size:18px}"
      "table{border-collapse:collapse;margin-bottom:12px}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
      ".charts{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;border:1px solid #e4e4e4;padding:4px}"
      "figcaption{font-weight:bold;padding:2px 6px}svg text{font:11px sans-serif;fill:#333}svg text.axis{font-size:12px}"
      ".key{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}</style>\n"
      "</head><body>\n<h1>loom report</h1>\n<table class=\"runs\"><tr><th>run</th><th>format</th><th>log</th>"
      "<th>rows</th><th>iterations</th></tr>\n";
  for (size_t r = 0; r < runs.size(); r++) {
    const auto& rows = runs[r].rows();
    const std::string range =
        rows.empty() ? "" : std::to_string(rows.begin()->first) + " &ndash; " + std::to_string(rows.rbegin()->first);
    o += "<tr><td><span class=\"key\" style=\"background:" + std::string(kColours[r % kNumColours]) + "\"></span>" +
         esc(runs[r].name) + "</td><td>" + esc(runs[r].format) + "</td><td>" + esc(runs[r].path) + "</td><td>" +
         std::to_string(rows.size()) + "</td><td>" + range + "</td></tr>\n";
  }
  o += "</table>\n<div class=\"charts\">\n";
  for (const auto& metric : columns) {
    std::vector<Series> series;
    for (size_t r = 0; r < runs.size(); r++) {
      Series s{r, {}, {}, {}};
      for (const auto& [it, values] : runs[r].rows()) {
        auto v = values.find(metric);
        if (v == values.end() || !std::isfinite(v->second.number)) continue;
        s.points.emplace_back(double(it), v->second.number);
        s.x_text.push_back(std::to_string(it));
        s.y_text.push_back(v->second.text);
      }
      if (!s.points.empty()) series.push_back(std::move(s));
    }
    if (!series.empty()) o += chart(metric, series, runs);
  }
  o += "</div>\n</body></html>\n";
  return o;
}

}  // namespace loom::report
