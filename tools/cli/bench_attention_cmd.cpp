// bna bench attention --backend cpu [--T 1024 --T 4096 ...] [--repeats N] [--dense-max-T N] [--json]
// Runs attn::bench_cpu (dense and every CPU path on the default Butterfly graph) and prints a table
// or one JSON document (machine, threads, build type, shapes, dtype, commit from $BNA_COMMIT, load
// average, one record per path and T with dense_pair_ratio = dense pairs / the path's pairs, the
// speedup over dense an equally efficient kernel would get).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/attention.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct BenchAttnFlags {
  std::string backend = "cpu";
  std::vector<int64_t> T;
  int repeats = 5;
  int64_t dense_max_T = 16384;
  int64_t H = 8, dh = 64, W = 64, S = 64, cycles = 1;
  bool json = false;
  std::string note;  // free text stored in the JSON (e.g. machine load)
};

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a.empty() ? "unknown" : a + " " + b + " " + c;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

int run_bench_attention(const BenchAttnFlags& f) {
  auto backend = attn::parse_backend(f.backend);
  if (!backend) return fail(backend.status());
  if (*backend != attn::Backend::kCpu)
    return fail(unimplemented("bench attention: backend " + f.backend + " is not available here"), "use --backend cpu");
  attn::BenchOptions opt;
  if (!f.T.empty()) opt.T = f.T;
  opt.repeats = f.repeats;
  opt.dense_max_T = f.dense_max_T;
  opt.H = f.H; opt.dh = f.dh; opt.W = f.W; opt.S = f.S; opt.cycles = f.cycles;
  auto rep = attn::bench_cpu(opt);
  if (!rep) return fail(rep.status());
  if (f.json) {
    nlohmann::json j;
    j["machine"] = cpu_model();
    j["threads"] = rep->threads;
    j["backend"] = "cpu";
#ifdef NDEBUG
    j["build_type"] = "Release";
#else
    j["build_type"] = "Debug";
#endif
    j["dtype"] = "f32";
    j["shape"] = {{"B", 1}, {"Hq", opt.H}, {"Hkv", opt.H}, {"dh", opt.dh}, {"W", opt.W}, {"S", opt.S}, {"cycles", opt.cycles}};
    j["sgemm_gflops"] = rep->sgemm_gflops;
    const char* commit = std::getenv("BNA_COMMIT");
    j["commit"] = commit ? commit : "unknown";
    j["loadavg_after"] = load_average();
    j["note"] = f.note;
    j["records"] = nlohmann::json::array();
    for (const auto& r : rep->records) {
      nlohmann::json x{{"path", attn::path_name(r.path)}, {"T", r.T}, {"skipped", r.skipped}, {"note", r.note},
                       {"pairs", r.pairs}};
      // Allowed pairs of dense causal over this path's: the speedup an equally efficient kernel gets.
      const double dense_pairs = double(opt.H) * double(r.T) * double(r.T + 1) / 2;
      if (r.pairs > 0) x["dense_pair_ratio"] = dense_pairs / double(r.pairs);
      if (!r.skipped) {
        x["ms_median"] = r.ms_median; x["ms_min"] = r.ms_min; x["ms_max"] = r.ms_max;
        x["gflops"] = r.gflops; x["ratio_to_sgemm"] = r.ratio_to_sgemm;
        x["speedup_vs_dense"] = r.speedup_vs_dense > 0 ? nlohmann::json(r.speedup_vs_dense) : nlohmann::json(nullptr);
      }
      j["records"].push_back(x);
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("machine: %s, %d threads; OpenBLAS SGEMM %.1f GFLOP/s; H=%lld dh=%lld W=%lld S=%lld f32\n",
              cpu_model().c_str(), rep->threads, rep->sgemm_gflops, (long long)opt.H, (long long)opt.dh,
              (long long)opt.W, (long long)opt.S);
  std::printf("%-15s %7s %12s %21s %9s %9s %8s %10s\n", "path", "T", "ms(median)", "[min, max]", "GFLOP/s", "vs dense", "/SGEMM",
              "pairs/den");
  for (const auto& r : rep->records) {
    if (r.skipped) {
      std::printf("%-15s %7lld  skipped: %s\n", attn::path_name(r.path), (long long)r.T, r.note.c_str());
      continue;
    }
    const double dense_pairs = double(opt.H) * double(r.T) * double(r.T + 1) / 2;
    std::printf("%-15s %7lld %12.2f   [%8.2f, %8.2f] %9.1f %8.1fx %8.2f %9.1fx\n", attn::path_name(r.path), (long long)r.T,
                r.ms_median, r.ms_min, r.ms_max, r.gflops, r.speedup_vs_dense, r.ratio_to_sgemm,
                r.pairs > 0 ? dense_pairs / double(r.pairs) : 0.0);
  }
  return 0;
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new BenchAttnFlags();  // lives for the process
  auto* bench = ensure_subcommand(&root, "bench", "benchmarks");
  auto* sub = bench->add_subcommand("attention", "time the attention paths against dense and OpenBLAS SGEMM");
  sub->add_option("--backend", f->backend, "cpu (cuda: see the CUDA benchmark)")->default_val("cpu");
  sub->add_option("--T", f->T, "sequence lengths (repeatable; default 1024 4096 16384 65536)");
  sub->add_option("--repeats", f->repeats, "timed runs per case (median reported)")->check(CLI::PositiveNumber);
  sub->add_option("--dense-max-T", f->dense_max_T, "skip dense above this T (it is quadratic)");
  sub->add_option("--H", f->H, "heads");
  sub->add_option("--dh", f->dh, "head dim");
  sub->add_option("--window", f->W, "window W (and permute half-window)");
  sub->add_option("--landmark-stride", f->S, "landmark stride S");
  sub->add_option("--cycles", f->cycles, "random cycles per head");
  sub->add_flag("--json", f->json, "one JSON document instead of the table");
  sub->add_option("--note", f->note, "free text stored in the JSON (e.g. machine load)");
  sub->callback([f] { run_bench_attention(*f); });
});

}  // namespace
}  // namespace bna::cli
