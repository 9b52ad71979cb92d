// SVG mask pictures (see include/bna/render.hpp). Pairs are first counted into a grid of at most
// kRenderMaxCells x kRenderMaxCells bins per category (parallel over grid rows, which own disjoint
// bins), then each grid row is emitted as runs of equal colour and opacity, one <rect> per run, so a
// banded mask costs a few rects per row rather than one per pair.
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <string>
#include <vector>

#include "bna/render.hpp"
#include "bna/threads.hpp"

namespace bna::graph {

namespace {

struct Category {
  const char* name;
  const char* color;
};

// Edge categories in tie-break order (the ABI's merge priority: CYCLE > REWIRE > LANDMARK > WINDOW).
constexpr Category kEdgeCats[4] = {{"cycle", "#d62728"}, {"rewire", "#ff7f0e"}, {"landmark", "#2ca02c"},
                                   {"window", "#1f77b4"}};
// EdgeType code -> category index (-1 for pad / unknown).
constexpr int kCatOfCode[kNumEdgeTypes] = {-1, 0, 3, 2, 1};

void appendf(std::string& s, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  const int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n > 0) s.append(buf, static_cast<size_t>(std::min<int>(n, sizeof(buf) - 1)));
}

std::string xml_escape(const std::string& in) {
  std::string out;
  for (char c : in) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

// Counts per (grid row, grid col, category) over the range [rb, re) x [cb, ce).
struct Grid {
  int64_t rb, re, cb, ce;
  int64_t sr, sc;  // pairs per bin along rows / cols
  int64_t gr, gc;  // bins
  int K;
  std::vector<uint32_t> counts;  // [gr, gc, K]

  Grid(int64_t rb_, int64_t re_, int64_t cb_, int64_t ce_, int k) : rb(rb_), re(re_), cb(cb_), ce(ce_), K(k) {
    sr = (re - rb + kRenderMaxCells - 1) / kRenderMaxCells;
    sc = (ce - cb + kRenderMaxCells - 1) / kRenderMaxCells;
    gr = (re - rb + sr - 1) / sr;
    gc = (ce - cb + sc - 1) / sc;
    counts.assign(static_cast<size_t>(gr * gc * K), 0);
  }
  uint32_t* bin(int64_t gi, int64_t gj) { return counts.data() + (gi * gc + gj) * K; }
  const uint32_t* bin(int64_t gi, int64_t gj) const { return counts.data() + (gi * gc + gj) * K; }
};

// "Nice" tick step (1, 2 or 5 times a power of ten) giving about 8 ticks over n units.
int64_t tick_step(int64_t n) {
  const double raw = std::max(1.0, static_cast<double>(n) / 8.0);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) return std::max<int64_t>(1, static_cast<int64_t>(m * mag));
  return static_cast<int64_t>(10 * mag);
}

struct Picture {
  std::string title;
  std::string subtitle;
  std::string xlabel, ylabel;
  const Category* cats;
  std::vector<int64_t> cat_totals;
  bool shade_noncausal;
  const char* shade_label;
};

std::string to_svg(const Grid& g, const Picture& pic) {
  const int64_t nr = g.re - g.rb, nc = g.ce - g.cb;
  const double side = 800.0;
  const double plot_w = std::max(60.0, side * static_cast<double>(nc) / static_cast<double>(std::max(nr, nc)));
  const double plot_h = std::max(60.0, side * static_cast<double>(nr) / static_cast<double>(std::max(nr, nc)));
  const double x0 = 80, y0 = 90, legend_w = 240;
  const double width = x0 + plot_w + 30 + legend_w, height = std::max(y0 + plot_h + 30, y0 + 60 + 22.0 * 6);
  const double cw = plot_w / static_cast<double>(g.gc), ch = plot_h / static_cast<double>(g.gr);
  auto xof = [&](double col) { return x0 + (col - static_cast<double>(g.cb)) / static_cast<double>(g.sc) * cw; };
  auto yof = [&](double row) { return y0 + (row - static_cast<double>(g.rb)) / static_cast<double>(g.sr) * ch; };

  std::string s;
  s.reserve(1 << 16);
  appendf(s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  appendf(s,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
          "font-family=\"sans-serif\" font-size=\"12\">\n",
          width, height, width, height);
  appendf(s, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", width, height);
  s += "<text x=\"" + std::to_string(static_cast<int>(x0)) + "\" y=\"22\" font-size=\"15\" font-weight=\"bold\">" +
       xml_escape(pic.title) + "</text>\n";
  s += "<text x=\"" + std::to_string(static_cast<int>(x0)) + "\" y=\"40\" fill=\"#555555\">" +
       xml_escape(pic.subtitle) + "</text>\n";

  // Non-causal region (col > row): per grid row, the bins whose first column lies past the row's last row.
  if (pic.shade_noncausal) {
    s += "<g fill=\"#e6e6e6\">\n";
    for (int64_t gi = 0; gi < g.gr; ++gi) {
      const int64_t r_last = std::min(g.re, g.rb + (gi + 1) * g.sr) - 1;
      const int64_t first_col = std::max(g.cb, r_last + 1);
      if (first_col >= g.ce) continue;
      const int64_t gj = (first_col - g.cb + g.sc - 1) / g.sc;
      if (gj >= g.gc) continue;
      appendf(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n", x0 + gj * cw, y0 + gi * ch,
              (g.gc - gj) * cw, ch);
    }
    s += "</g>\n";
  }

  // Cells: the most frequent category (ties -> the earlier one); opacity from density when aggregated.
  s += "<g shape-rendering=\"crispEdges\">\n";
  const double area_full = static_cast<double>(g.sr * g.sc);
  for (int64_t gi = 0; gi < g.gr; ++gi) {
    int run_cat = -1;
    int run_op = 0;
    int64_t run_start = 0;
    auto flush = [&](int64_t end) {
      if (run_cat < 0) return;
      appendf(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"", x0 + run_start * cw,
              y0 + gi * ch, (end - run_start) * cw, ch, pic.cats[run_cat].color);
      if (run_op < 100) appendf(s, " fill-opacity=\"%.2f\"", run_op / 100.0);
      s += "/>\n";
    };
    for (int64_t gj = 0; gj < g.gc; ++gj) {
      const uint32_t* b = g.bin(gi, gj);
      int best = -1;
      uint64_t total = 0;
      for (int k = 0; k < g.K; ++k) {
        total += b[k];
        if (b[k] > 0 && (best < 0 || b[k] > b[best])) best = k;
      }
      int op = 100;
      if (best >= 0 && area_full > 1) {
        const double density = std::min(1.0, static_cast<double>(total) / area_full);
        op = static_cast<int>(std::lround(100.0 * (0.3 + 0.7 * std::sqrt(density))));
      }
      if (best != run_cat || op != run_op) {
        flush(gj);
        run_cat = best;
        run_op = op;
        run_start = gj;
      }
    }
    flush(g.gc);
  }
  s += "</g>\n";
  appendf(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333333\"/>\n", x0,
          y0, plot_w, plot_h);

  // Axes: keys along the top, queries down the left.
  const int64_t xs = tick_step(nc), ys = tick_step(nr);
  s += "<g fill=\"#333333\" font-size=\"11\">\n";
  for (int64_t v = (g.cb + xs - 1) / xs * xs; v < g.ce; v += xs) {
    const double x = xof(v + 0.5);
    appendf(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", x, y0 - 5, x, y0);
    appendf(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%lld</text>\n", x, y0 - 8, (long long)v);
  }
  for (int64_t v = (g.rb + ys - 1) / ys * ys; v < g.re; v += ys) {
    const double y = yof(v + 0.5);
    appendf(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", x0 - 5, y, x0, y);
    appendf(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" dominant-baseline=\"middle\">%lld</text>\n", x0 - 8,
            y, (long long)v);
  }
  s += "</g>\n";
  appendf(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", x0 + plot_w / 2,
          y0 - 26, xml_escape(pic.xlabel).c_str());
  appendf(s,
          "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"13\" "
          "transform=\"rotate(-90 %.2f %.2f)\">%s</text>\n",
          x0 - 55, y0 + plot_h / 2, x0 - 55, y0 + plot_h / 2, xml_escape(pic.ylabel).c_str());

  // Legend with pair counts.
  const double lx = x0 + plot_w + 30;
  double ly = y0;
  s += "<g font-size=\"12\">\n";
  for (int k = 0; k < g.K; ++k, ly += 22) {
    appendf(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"14\" height=\"14\" fill=\"%s\"/>\n", lx, ly, pic.cats[k].color);
    appendf(s, "<text x=\"%.2f\" y=\"%.2f\">%s (%lld)</text>\n", lx + 20, ly + 12, pic.cats[k].name,
            (long long)pic.cat_totals[k]);
  }
  if (pic.shade_noncausal) {
    appendf(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"14\" height=\"14\" fill=\"#e6e6e6\" stroke=\"#999999\"/>\n", lx,
            ly);
    appendf(s, "<text x=\"%.2f\" y=\"%.2f\">%s</text>\n", lx + 20, ly + 12, xml_escape(pic.shade_label).c_str());
    ly += 22;
  }
  if (g.sr * g.sc > 1) {
    appendf(s, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#555555\">1 cell = %lld x %lld pairs;</text>\n", lx, ly + 12,
            (long long)g.sr, (long long)g.sc);
    appendf(s, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#555555\">colour = commonest type,</text>\n", lx, ly + 28);
    appendf(s, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#555555\">opacity = density</text>\n", lx, ly + 44);
  }
  s += "</g>\n</svg>\n";
  return s;
}

Status check_range(const char* what, int64_t begin, int64_t end, int64_t n) {
  if (begin < 0 || begin >= end || end > n)
    return out_of_range(std::string("render: ") + what + "=[" + std::to_string(begin) + ", " + std::to_string(end) +
                        "), expected 0 <= begin < end <= " + std::to_string(n));
  return Status::ok();
}

}  // namespace

Expected<std::string> render_mask_svg(const GraphAbi& g, int64_t head, int64_t row_begin, int64_t row_end,
                                      int64_t col_begin, int64_t col_end, bool causal) {
  if (g.H < 1 || g.T < 1 || g.D < 1 || static_cast<int64_t>(g.neigh_idx.size()) != g.H * g.T * g.D ||
      g.edge_type.size() != g.neigh_idx.size())
    return invalid_argument("render: graph H=" + std::to_string(g.H) + " T=" + std::to_string(g.T) + " D=" +
                            std::to_string(g.D) + " with " + std::to_string(g.neigh_idx.size()) + " indices and " +
                            std::to_string(g.edge_type.size()) + " types, expected H, T, D >= 1 and H*T*D of each");
  if (head < 0 || head >= g.H)
    return out_of_range("render: head=" + std::to_string(head) + ", expected 0 <= head < H=" + std::to_string(g.H));
  BNA_RETURN_IF_ERROR(check_range("rows", row_begin, row_end, g.T));
  BNA_RETURN_IF_ERROR(check_range("cols", col_begin, col_end, g.T));

  Grid grid(row_begin, row_end, col_begin, col_end, 4);
  parallel_for(0, grid.gr, [&](int64_t gi) {
    const int64_t r1 = std::min(row_end, row_begin + (gi + 1) * grid.sr);
    for (int64_t i = row_begin + gi * grid.sr; i < r1; ++i) {
      const int32_t* idx = g.row(head, i);
      const uint8_t* ty = g.row_types(head, i);
      for (int64_t d = 0; d < g.D; ++d) {
        const int64_t j = idx[d];
        if (j < col_begin || j >= col_end || (causal && j > i)) continue;
        if (ty[d] >= kNumEdgeTypes || kCatOfCode[ty[d]] < 0) continue;
        grid.bin(gi, (j - col_begin) / grid.sc)[kCatOfCode[ty[d]]]++;
      }
    }
  });
  Picture pic;
  pic.cats = kEdgeCats;
  pic.cat_totals.assign(4, 0);
  for (size_t e = 0; e < grid.counts.size(); ++e) pic.cat_totals[e % 4] += grid.counts[e];
  pic.title = "attention mask, head " + std::to_string(head) + " (" + g.meta.strategy + ")";
  pic.subtitle = "queries [" + std::to_string(row_begin) + ", " + std::to_string(row_end) + "), keys [" +
                 std::to_string(col_begin) + ", " + std::to_string(col_end) + "), T=" + std::to_string(g.T) +
                 " D=" + std::to_string(g.D) + (causal ? ", causal (key <= query)" : ", all listed pairs");
  pic.xlabel = "key j";
  pic.ylabel = "query i";
  pic.shade_noncausal = causal;
  pic.shade_label = "masked (key > query)";
  return to_svg(grid, pic);
}

Expected<std::string> render_block_layout_svg(const topo::BlockSparseLayout& L, int64_t head) {
  BNA_RETURN_IF_ERROR(topo::validate_block_layout(L));
  if (head < 0 || head >= L.H)
    return out_of_range("render: head=" + std::to_string(head) + ", expected 0 <= head < H=" + std::to_string(L.H));
  static constexpr Category kBlockCats[2] = {{"self block", "#9467bd"}, {"attended block", "#1f77b4"}};
  const int64_t N = L.n_blocks;
  Grid grid(0, N, 0, N, 2);
  parallel_for(0, grid.gr, [&](int64_t gi) {
    const int64_t r1 = std::min(N, (gi + 1) * grid.sr);
    for (int64_t b = gi * grid.sr; b < r1; ++b)
      for (const int32_t* p = L.row_begin(head, b); p != L.row_end(head, b); ++p)
        grid.bin(gi, *p / grid.sc)[*p == b ? 0 : 1]++;
  });
  Picture pic;
  pic.cats = kBlockCats;
  pic.cat_totals.assign(2, 0);
  for (size_t e = 0; e < grid.counts.size(); ++e) pic.cat_totals[e % 2] += grid.counts[e];
  const int64_t nnz = L.indptr[head * (N + 1) + N];
  pic.title = "block-sparse layout, head " + std::to_string(head);
  pic.subtitle = "N=" + std::to_string(N) + " blocks of Bs=" + std::to_string(L.block_size) + " tokens, T=" +
                 std::to_string(L.T) + ", " + std::to_string(nnz) + " blocks attended (" +
                 std::to_string(100.0 * static_cast<double>(nnz) / (0.5 * static_cast<double>(N) * (N + 1))).substr(0, 5) +
                 "% of the causal block triangle)";
  pic.xlabel = "key block";
  pic.ylabel = "query block";
  pic.shade_noncausal = true;
  pic.shade_label = "non-causal (key block > query block)";
  return to_svg(grid, pic);
}

}  // namespace bna::graph
