// bna_spec_compile: compile time of a .wf spec (default: configs/graph_specs/long_context.wf) by
// stage: parse, cache key, lower (perms + rule-derived D and metrics), of which metrics, a cache miss
// (full compile into an emptied scratch out_root: lower + write perms/meta), a cache hit (reuse), the
// full load_artifact and, with --abi, a miss that also writes the [H,T,D] ABI arrays. Plain main:
// each stage is repeated, the median and min..max are reported; --json prints one record per
// (stage, T) with the 1-minute load average before and after that T's stages.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/spec.hpp"
#include "bna/threads.hpp"

namespace {

struct Stat {
  double median, lo, hi;
};

template <class F>
Stat time_it(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front(), t.back()};
}

double load_average() {
  std::ifstream f("/proc/loadavg");
  double v = -1;
  f >> v;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  // The source tree from this file's path (bench/ has no source-dir define).
  std::string spec_path =
      (std::filesystem::path(__FILE__).parent_path().parent_path() / "configs/graph_specs/long_context.wf").string();
  std::vector<int64_t> Ts = {8192, 32768, 65536};
  int64_t H = 8;
  int reps = 3;
  bool json_out = false, with_abi = false, t_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--spec" && i + 1 < argc) spec_path = argv[++i];
    else if (a == "--T" && i + 1 < argc) {  // repeatable
      if (!t_given) Ts.clear();
      t_given = true;
      Ts.push_back(std::stoll(argv[++i]));
    }
    else if (a == "--abi") with_abi = true;
    else if (a == "--H" && i + 1 < argc) H = std::stoll(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::stoi(argv[++i]));
    else if (a == "--json") json_out = true;
    else {
      std::fprintf(stderr, "usage: %s [--spec FILE] [--T N]... [--H N] [--reps N] [--abi] [--json]\n", argv[0]);
      return 2;
    }
  }
  auto spec = bna::spec::load_spec(spec_path);
  if (!spec) {
    std::fprintf(stderr, "error: %s\n", spec.status().message().c_str());
    return 2;
  }
  const std::string root = (std::filesystem::temp_directory_path() / "bna_spec_compile_bench").string();
  nlohmann::json records = nlohmann::json::array();
  if (!json_out)
    std::printf("spec %s, H=%lld, %d threads, %d reps (median [min..max] ms)\n", spec_path.c_str(), (long long)H,
                bna::num_threads(), reps);
  for (int64_t T : Ts) {
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
    bna::spec::CompileOptions opt;
    opt.T = T;
    opt.H = H;
    opt.out_root = root;
    int64_t D = 0;
    bool failed = false;
    const double load_before = load_average();
    const Stat parse = time_it(reps * 10, [&] { (void)bna::spec::load_spec(spec_path); });
    const Stat key = time_it(reps * 10, [&] { (void)bna::spec::cache_key(*spec, T, H); });
    const Stat lower = time_it(reps, [&] {
      auto l = bna::spec::lower(bna::spec::normalize(*spec), T, H);
      if (l) D = l->D; else failed = true;
    });
    Stat metrics{0, 0, 0}, width{0, 0, 0};
    if (auto l = bna::spec::lower(bna::spec::normalize(*spec), T, H)) {
      metrics = time_it(reps, [&] { (void)bna::spec::rule_metrics(l->perms, l->rules, 4, bna::spec::kMetricsSources); });
      width = time_it(reps, [&] { (void)bna::spec::rule_row_width(l->perms, l->rules); });
    }
    // Cache miss: the out_root is emptied before each rep (outside the timing).
    auto miss = [&](bool abi) {
      std::vector<double> t;
      for (int r = 0; r < reps; ++r) {
        std::filesystem::remove_all(root, ec);
        opt.materialize_abi = abi;
        const Stat s = time_it(1, [&] { failed |= !bna::spec::compile(*spec, opt).has_value(); });
        t.push_back(s.median);
      }
      opt.materialize_abi = false;
      std::sort(t.begin(), t.end());
      return Stat{t[t.size() / 2], t.front(), t.back()};
    };
    const Stat build = miss(false);
    bool reused = true;
    std::string dir;
    const Stat reuse = time_it(reps * 10, [&] {
      auto r = bna::spec::compile(*spec, opt);
      reused &= r.has_value() && r->reused;
      if (r) dir = r->artifact_dir;
    });
    const Stat load = time_it(reps, [&] { failed |= !bna::spec::load_artifact(dir, T, H).has_value(); });
    std::uintmax_t artifact_bytes = 0;  // the default (structured) artifact
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) artifact_bytes += e.file_size(ec);
    const Stat build_abi = with_abi ? miss(true) : Stat{0, 0, 0};
    std::filesystem::remove_all(root, ec);
    const double load_after = load_average();
    if (failed || !reused) {
      std::fprintf(stderr, "error: compile failed for T=%lld\n", (long long)T);
      return 1;
    }
    const double mib = static_cast<double>(H) * T * D * 5 / 1048576.0;
    std::vector<std::pair<const char*, Stat>> stages = {
        {"parse", parse},     {"cache_key", key},          {"lower", lower}, {"  of which metrics", metrics},
        {"    of which row stats", width},
        {"compile_miss", build}, {"compile_hit", reuse}, {"load_artifact", load}};
    if (with_abi) stages.push_back({"compile_miss_abi", build_abi});
    if (!json_out)
      std::printf("T=%-7lld D=%-4lld ABI would be %.0f MiB, artifact %.1f MiB, load avg %.2f -> %.2f\n", (long long)T,
                  (long long)D, mib, static_cast<double>(artifact_bytes) / 1048576.0, load_before, load_after);
    for (const auto& [name, s] : stages) {
      if (json_out)
        records.push_back({{"bench", "spec_compile"}, {"machine", "cpu"}, {"threads", bna::num_threads()},
                           {"stage", name}, {"T", T}, {"H", H}, {"D", D}, {"median_ms", s.median},
                           {"min_ms", s.lo}, {"max_ms", s.hi}, {"reps", name == std::string("compile_hit") ? reps * 10 : reps},
                           {"artifact_bytes", artifact_bytes}, {"load_average_before", load_before},
                           {"load_average_after", load_after}});
      else
        std::printf("  %-18s %10.3f [%.3f..%.3f]\n", name, s.median, s.lo, s.hi);
    }
  }
  if (json_out) std::printf("%s\n", records.dump(2).c_str());
  return 0;
}
