// Minimal SVG line and histogram plots for `bna graph plot`: axes, "nice" ticks, a legend.
// Decision: everything is computed in data space then mapped once to pixels; log axes map log10(y),
// and points that cannot be drawn (NaN, inf, y <= 0 on a log axis) break the polyline instead of
// being clamped, so a picture never shows a value that was not measured.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "bna/analysis.hpp"

namespace bna::analysis {
namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> t;
  if (!(hi > lo)) { t.push_back(lo); return t; }
  const double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag, step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) t.push_back(std::fabs(v) < 1e-12 * step ? 0 : v);
  return t;
}

}  // namespace

std::string svg_plot(const PlotSpec& spec) {
  const double W = spec.width, Hh = spec.height, ml = 70, mr = 170, mt = 40, mb = 55;
  auto ok = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!spec.log_y || y > 0); };
  auto ty = [&](double y) { return spec.log_y ? std::log10(y) : y; };
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : spec.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (ok(s.x[i], s.y[i])) {
        x0 = std::min(x0, s.x[i]); x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, ty(s.y[i])); y1 = std::max(y1, ty(s.y[i]));
      }
  if (x0 > x1) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
  if (x1 == x0) { x0 -= 0.5; x1 += 0.5; }
  if (y1 == y0) { y0 -= 0.5; y1 += 0.5; }
  if (!spec.log_y && y0 > 0 && y0 < 0.5 * y1) y0 = 0;
  const double pad = 0.04 * (y1 - y0);
  y1 += pad;
  if (spec.log_y || y0 != 0) y0 -= pad;
  auto px = [&](double x) { return ml + (x - x0) / (x1 - x0) * (W - ml - mr); };
  auto py = [&](double y) { return Hh - mb - (ty(y) - y0) / (y1 - y0) * (Hh - mt - mb); };
  auto pyl = [&](double ly) { return Hh - mb - (ly - y0) / (y1 - y0) * (Hh - mt - mb); };
  std::string o;
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(W) + "\" height=\"" + num(Hh) +
       "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num(W / 2 - mr / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" + esc(spec.title) + "</text>\n";
  o += "<rect x=\"" + num(ml) + "\" y=\"" + num(mt) + "\" width=\"" + num(W - ml - mr) + "\" height=\"" + num(Hh - mt - mb) +
       "\" fill=\"none\" stroke=\"#333\"/>\n";
  for (double t : nice_ticks(x0, x1, 6)) {
    o += "<line x1=\"" + num(px(t)) + "\" y1=\"" + num(Hh - mb) + "\" x2=\"" + num(px(t)) + "\" y2=\"" + num(mt) +
         "\" stroke=\"#ddd\"/><text x=\"" + num(px(t)) + "\" y=\"" + num(Hh - mb + 16) + "\" text-anchor=\"middle\">" +
         num(t) + "</text>\n";
  }
  for (double t : nice_ticks(y0, y1, 5)) {
    const std::string label = spec.log_y ? "1e" + num(t) : num(t);
    if (spec.log_y && std::fabs(t - std::round(t)) > 1e-9) continue;
    o += "<line x1=\"" + num(ml) + "\" y1=\"" + num(pyl(t)) + "\" x2=\"" + num(W - mr) + "\" y2=\"" + num(pyl(t)) +
         "\" stroke=\"#ddd\"/><text x=\"" + num(ml - 6) + "\" y=\"" + num(pyl(t) + 4) + "\" text-anchor=\"end\">" + label +
         "</text>\n";
  }
  o += "<text x=\"" + num(ml + (W - ml - mr) / 2) + "\" y=\"" + num(Hh - 12) + "\" text-anchor=\"middle\">" + esc(spec.x_label) + "</text>\n";
  o += "<text transform=\"translate(16," + num(mt + (Hh - mt - mb) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       esc(spec.y_label) + (spec.log_y ? " (log)" : "") + "</text>\n";
  for (size_t si = 0; si < spec.series.size(); ++si) {
    const auto& s = spec.series[si];
    const std::string color = kColors[si % 8];
    std::string pts;
    auto flush = [&] {
      if (!pts.empty()) o += "<polyline fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.8\" points=\"" + pts + "\"/>\n";
      pts.clear();
    };
    const size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i) {
      if (!ok(s.x[i], s.y[i])) { flush(); continue; }
      if (spec.steps && i + 1 < s.x.size()) {
        pts += num(px(s.x[i])) + "," + num(py(s.y[i])) + " " + num(px(s.x[i + 1])) + "," + num(py(s.y[i])) + " ";
      } else {
        pts += num(px(s.x[i])) + "," + num(py(s.y[i])) + " ";
      }
    }
    flush();
    const double ly = mt + 14 + 18.0 * si;
    o += "<line x1=\"" + num(W - mr + 10) + "\" y1=\"" + num(ly - 4) + "\" x2=\"" + num(W - mr + 30) + "\" y2=\"" + num(ly - 4) +
         "\" stroke=\"" + color + "\" stroke-width=\"3\"/><text x=\"" + num(W - mr + 35) + "\" y=\"" + num(ly) + "\">" +
         esc(s.name) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

PlotSpec histogram_spec(const std::string& title, const std::string& x_label,
                        const std::vector<std::pair<std::string, std::vector<double>>>& samples, int nbins) {
  PlotSpec p;
  p.title = title;
  p.x_label = x_label;
  p.y_label = "fraction of eigenvalues";
  p.steps = true;
  nbins = std::max(nbins, 1);
  double lo = 1e300, hi = -1e300;
  for (const auto& [name, v] : samples)
    for (double x : v)
      if (std::isfinite(x)) { lo = std::min(lo, x); hi = std::max(hi, x); }
  if (lo > hi) { lo = 0; hi = 1; }
  if (hi == lo) hi = lo + 1;
  const double w = (hi - lo) / nbins;
  for (const auto& [name, v] : samples) {
    PlotSeries s;
    s.name = name;
    std::vector<double> count(nbins, 0.0);
    for (double x : v)
      if (std::isfinite(x)) count[std::min(nbins - 1, static_cast<int>((x - lo) / w))] += 1.0 / v.size();
    for (int b = 0; b <= nbins; ++b) {
      s.x.push_back(lo + b * w);
      s.y.push_back(count[std::min(b, nbins - 1)]);
    }
    p.series.push_back(std::move(s));
  }
  return p;
}

}  // namespace bna::analysis
