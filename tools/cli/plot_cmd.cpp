// bna plot: loss curves of one or several training runs (their metrics.jsonl) as one SVG.
// Train loss as solid lines, validation loss (where logged) as dots, one colour per run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bna/io.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct PlotFlags {
  std::vector<std::string> runs;
  std::string out = "loss.svg";
  bool log_y = false;
};

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> train, val;
};

int run_plot(const PlotFlags& f) {
  std::vector<Series> all;
  for (const std::string& r : f.runs) {
    const std::string path = r.size() > 6 && r.substr(r.size() - 6) == ".jsonl" ? r : r + "/metrics.jsonl";
    auto text = io::read_file(path);
    if (!text) return fail(text.status(), "give run directories written by bna train --out, or metrics.jsonl files");
    Series s;
    s.name = r;
    std::istringstream in(*text);
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (line.empty()) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("step") || !j.contains("loss"))
        return fail(corrupt("plot: " + path + " line " + std::to_string(line_no) + " is not a metrics record"));
      s.train.emplace_back(j["step"].get<double>(), j["loss"].get<double>());
      if (j.contains("val_loss")) s.val.emplace_back(j["step"].get<double>(), j["val_loss"].get<double>());
    }
    if (s.train.empty()) return fail(invalid_argument("plot: " + path + " has no records"));
    all.push_back(std::move(s));
  }
  double x1 = 1, y0 = 1e300, y1 = -1e300;
  auto ty = [&](double y) { return f.log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (const auto& s : all)
    for (const auto* v : {&s.train, &s.val})
      for (const auto& [x, y] : *v) { x1 = std::max(x1, x); y0 = std::min(y0, ty(y)); y1 = std::max(y1, ty(y)); }
  if (y1 <= y0) y1 = y0 + 1;
  const double W = 720, H = 420, L = 60, R = 200, Tp = 20, Bt = 40;
  auto px = [&](double x) { return L + (W - L - R) * x / x1; };
  auto py = [&](double y) { return Tp + (H - Tp - Bt) * (1 - (ty(y) - y0) / (y1 - y0)); };
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg << "<line x1=\"" << L << "\" y1=\"" << H - Bt << "\" x2=\"" << W - R << "\" y2=\"" << H - Bt << "\" stroke=\"black\"/>\n";
  svg << "<line x1=\"" << L << "\" y1=\"" << Tp << "\" x2=\"" << L << "\" y2=\"" << H - Bt << "\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double yv = y0 + (y1 - y0) * i / 4, yp = Tp + (H - Tp - Bt) * (1 - i / 4.0);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", f.log_y ? std::pow(10.0, yv) : yv);
    svg << "<text x=\"" << L - 6 << "\" y=\"" << yp + 4 << "\" text-anchor=\"end\">" << buf << "</text>\n";
    const double xv = x1 * i / 4;
    svg << "<text x=\"" << px(xv) << "\" y=\"" << H - Bt + 16 << "\" text-anchor=\"middle\">" << static_cast<long long>(xv) << "</text>\n";
  }
  svg << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 6 << "\" text-anchor=\"middle\">step</text>\n";
  svg << "<text x=\"14\" y=\"" << H / 2 << "\" transform=\"rotate(-90 14 " << H / 2 << ")\" text-anchor=\"middle\">loss</text>\n";
  for (size_t k = 0; k < all.size(); ++k) {
    const char* col = colours[k % 8];
    svg << "<polyline fill=\"none\" stroke=\"" << col << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& [x, y] : all[k].train) svg << px(x) << "," << py(y) << " ";
    svg << "\"/>\n";
    for (const auto& [x, y] : all[k].val) svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3\" fill=\"" << col << "\"/>\n";
    std::string label = all[k].name;
    for (char& ch : label) if (ch == '<' || ch == '>' || ch == '&') ch = '_';
    svg << "<text x=\"" << W - R + 10 << "\" y=\"" << Tp + 14 * (k + 1) << "\" fill=\"" << col << "\">" << label << "</text>\n";
  }
  svg << "</svg>\n";
  Status st = io::write_file_atomic(f.out, svg.str());
  if (!st.is_ok()) return fail(st);
  std::printf("wrote %s (%zu runs)\n", f.out.c_str(), all.size());
  return 0;
}

void setup(CLI::App& root) {
  auto f = std::make_shared<PlotFlags>();
  auto* sub = root.add_subcommand("plot", "draw the loss curves of training runs (metrics.jsonl) as SVG");
  sub->add_option("runs", f->runs, "run directories (from bna train --out) or metrics.jsonl files")->required();
  sub->add_option("--out", f->out, "SVG file to write")->capture_default_str();
  sub->add_flag("--log-y", f->log_y, "logarithmic loss axis");
  sub->callback([f] { run_plot(*f); });
}

BNA_CLI_COMMAND(setup);

}  // namespace
}  // namespace bna::cli
