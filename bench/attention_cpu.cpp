// bna_attention_cpu: the CPU attention benchmark as a plain program (same driver as
// `bna bench attention --backend cpu`). Usage: bna_attention_cpu [T ...] [--path NAME]... [--repeats N] [--json]
// Prints one line per (path, T): median ms [min, max], useful GFLOP/s, speedup over our dense
// kernel and the ratio to OpenBLAS SGEMM measured in the same run. --path NAME (repeatable) limits
// the paths (profiling); --repeats N sets the timed runs.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bna/attention.hpp"

int main(int argc, char** argv) {
  bna::attn::BenchOptions opt;
  bool json = false;
  std::vector<int64_t> Ts;
  std::vector<bna::attn::Path> paths;
  for (int a = 1; a < argc; ++a) {
    if (std::strcmp(argv[a], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[a], "--path") == 0 && a + 1 < argc) {
      auto path = bna::attn::parse_path(argv[++a]);
      if (!path) {
        std::fprintf(stderr, "error: %s\n", path.status().to_string().c_str());
        return 2;
      }
      paths.push_back(*path);
    } else if (std::strcmp(argv[a], "--repeats") == 0 && a + 1 < argc) {
      opt.repeats = std::atoi(argv[++a]);
    } else {
      Ts.push_back(std::atoll(argv[a]));
    }
  }
  if (!Ts.empty()) opt.T = Ts;
  if (!paths.empty()) opt.paths = paths;
  auto rep = bna::attn::bench_cpu(opt);
  if (!rep) {
    std::fprintf(stderr, "error: %s\n", rep.status().to_string().c_str());
    return 1;
  }
  std::printf(json ? "{\"threads\": %d, \"sgemm_gflops\": %.1f, \"records\": [\n" : "threads %d, OpenBLAS SGEMM %.1f GFLOP/s\n",
              rep->threads, rep->sgemm_gflops);
  for (size_t i = 0; i < rep->records.size(); ++i) {
    const auto& r = rep->records[i];
    if (json)
      std::printf("  {\"path\": \"%s\", \"T\": %lld, \"skipped\": %s, \"ms\": %.3f, \"ms_min\": %.3f, \"ms_max\": %.3f, \"gflops\": %.2f, \"speedup_vs_dense\": %.2f, \"ratio_to_sgemm\": %.3f}%s\n",
                  bna::attn::path_name(r.path), (long long)r.T, r.skipped ? "true" : "false", r.ms_median, r.ms_min,
                  r.ms_max, r.gflops, r.speedup_vs_dense, r.ratio_to_sgemm, i + 1 < rep->records.size() ? "," : "");
    else if (r.skipped)
      std::printf("%-15s T=%-6lld skipped (%s)\n", bna::attn::path_name(r.path), (long long)r.T, r.note.c_str());
    else
      std::printf("%-15s T=%-6lld %10.2f ms [%.2f, %.2f]  %7.1f GFLOP/s  x%.1f vs dense  %.2f of SGEMM\n",
                  bna::attn::path_name(r.path), (long long)r.T, r.ms_median, r.ms_min, r.ms_max, r.gflops,
                  r.speedup_vs_dense, r.ratio_to_sgemm);
  }
  if (json) std::printf("]}\n");
  return 0;
}
