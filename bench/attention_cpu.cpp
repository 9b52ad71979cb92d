// bna_attention_cpu: the CPU attention benchmark as a plain program (same driver as
// `bna bench attention --backend cpu`). Usage: bna_attention_cpu [T ...] [--path NAME]... [--repeats N] [--json]
// Prints one line per (path, T): median ms [min, max], useful GFLOP/s, speedup over our dense
// kernel and the ratio to OpenBLAS SGEMM measured in the same run. --path NAME (repeatable) limits
// the paths (profiling); --repeats N sets the timed runs.
//
// Decode mode: bna_attention_cpu --decode [Tk ...] [--hq N] [--hkv N] [--tq N] [--dh N] [--repeats N] [--json]
// times run() of dense and streams (Butterfly ABI graph on the Hkv KV heads, W = S = 64, one cycle) for
// Tq queries after a Tk - Tq prefix (q_offset = Tk - Tq), GQA G = Hq / Hkv, f32, B = 1: median ms
// [min, max] of `repeats` runs after one warm-up, and the K/V bytes a dense step must read at least
// once (2 * Hkv * Tk * dh * 4) per millisecond as GB/s. Defaults: Hq 14, Hkv 2, Tq 1, dh 64 (the
// attention of one Qwen2-0.5B layer), Tk 4096 16384.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bna/attention.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"
#include "bna/topology.hpp"

namespace {

struct DecodeBench {
  std::vector<int64_t> Tk = {4096, 16384};
  int64_t Hq = 14, Hkv = 2, Tq = 1, dh = 64;
  int repeats = 50;
  bool json = false;
};

int run_decode_bench(const DecodeBench& d) {
  using namespace bna;
  using Clock = std::chrono::steady_clock;
  if (d.Hkv < 1 || d.Hq % d.Hkv != 0 || d.Tq < 1 || d.dh < 1 || d.repeats < 1) {
    std::fprintf(stderr, "error: decode bench: Hq=%lld Hkv=%lld Tq=%lld dh=%lld repeats=%d, expected Hkv | Hq, all >= 1\n",
                 (long long)d.Hq, (long long)d.Hkv, (long long)d.Tq, (long long)d.dh, d.repeats);
    return 2;
  }
  topo::TopologyOptions to;
  to.n_heads = d.Hkv;
  to.num_cycles = 1;
  to.window = 64;
  to.landmark_stride = 64;
  auto topology = topo::Topology::create(to);
  if (!topology) {
    std::fprintf(stderr, "error: %s\n", topology.status().to_string().c_str());
    return 1;
  }
  if (d.json) std::printf("{\"threads\": %d, \"records\": [\n", num_threads());
  else std::printf("threads %d, decode Hq=%lld Hkv=%lld Tq=%lld dh=%lld\n", num_threads(), (long long)d.Hq, (long long)d.Hkv,
                   (long long)d.Tq, (long long)d.dh);
  bool first = true;
  for (int64_t Tk : d.Tk) {
    if (Tk < d.Tq) {
      std::fprintf(stderr, "error: decode bench: Tk=%lld < Tq=%lld\n", (long long)Tk, (long long)d.Tq);
      return 2;
    }
    attn::Shape s;
    s.B = 1; s.Hq = d.Hq; s.Hkv = d.Hkv; s.Tq = d.Tq; s.Tk = Tk; s.dh = d.dh; s.q_offset = Tk - d.Tq;
    std::vector<float> q(d.Hq * d.Tq * d.dh), k(d.Hkv * Tk * d.dh), v(k.size()), o(q.size()), lse(d.Hq * d.Tq);
    Rng rng(Tk);
    for (auto& x : q) x = float(rng.normal());
    for (size_t e = 0; e < k.size(); ++e) k[e] = float(rng.normal()), v[e] = float(rng.normal());
    TensorView tq(q.data(), DType::kF32, {1, d.Hq, d.Tq, d.dh}), tk(k.data(), DType::kF32, {1, d.Hkv, Tk, d.dh});
    TensorView tv(v.data(), DType::kF32, {1, d.Hkv, Tk, d.dh}), tout(o.data(), DType::kF32, {1, d.Hq, d.Tq, d.dh});
    TensorView tl(lse.data(), DType::kF32, {1, d.Hq, d.Tq});
    auto abi = topology->construct(Tk);
    if (!abi) {
      std::fprintf(stderr, "error: %s\n", abi.status().to_string().c_str());
      return 1;
    }
    for (attn::Path path : {attn::Path::kDense, attn::Path::kStreams}) {
      attn::GraphSource src;
      attn::Options po;
      if (path == attn::Path::kDense) {
        src.dense = true;
      } else {
        src.abi = &*abi;
        po.force_path = attn::Path::kStreams;
      }
      auto plan = attn::plan(src, s, po);
      if (!plan) {
        std::fprintf(stderr, "error: %s\n", plan.status().to_string().c_str());
        return 1;
      }
      std::vector<char> ws(plan->workspace_bytes + 64);
      void* wsp = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(ws.data()) + 63) & ~uintptr_t(63));
      std::vector<double> ms;
      for (int it = 0; it <= d.repeats; ++it) {
        const auto t0 = Clock::now();
        const Status st = attn::run(*plan, tq, tk, tv, tout, tl, wsp);
        if (!st.is_ok()) {
          std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
          return 1;
        }
        if (it > 0) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      const double gbs = 2.0 * double(d.Hkv * Tk * d.dh) * 4.0 / (med * 1e6);
      if (d.json)
        std::printf("%s  {\"path\": \"%s\", \"Hq\": %lld, \"Hkv\": %lld, \"Tq\": %lld, \"Tk\": %lld, \"dh\": %lld, \"ms\": %.4f, "
                    "\"ms_min\": %.4f, \"ms_max\": %.4f, \"kv_gb_per_s\": %.2f, \"reason\": \"%s\"}",
                    first ? "" : ",\n", attn::path_name(path), (long long)d.Hq, (long long)d.Hkv, (long long)d.Tq,
                    (long long)Tk, (long long)d.dh, med, ms.front(), ms.back(), gbs, plan->reason.c_str());
      else
        std::printf("%-8s Tk=%-7lld %9.4f ms [%.4f, %.4f]  %6.2f GB/s K/V  (%s)\n", attn::path_name(path), (long long)Tk,
                    med, ms.front(), ms.back(), gbs, plan->reason.c_str());
      first = false;
    }
  }
  if (d.json) std::printf("\n]}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bna::attn::BenchOptions opt;
  bool json = false, decode = false;
  DecodeBench dec;
  std::vector<int64_t> Ts;
  std::vector<bna::attn::Path> paths;
  for (int a = 1; a < argc; ++a) {
    if (std::strcmp(argv[a], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[a], "--decode") == 0) {
      decode = true;
    } else if (std::strcmp(argv[a], "--hq") == 0 && a + 1 < argc) {
      dec.Hq = std::atoll(argv[++a]);
    } else if (std::strcmp(argv[a], "--hkv") == 0 && a + 1 < argc) {
      dec.Hkv = std::atoll(argv[++a]);
    } else if (std::strcmp(argv[a], "--tq") == 0 && a + 1 < argc) {
      dec.Tq = std::atoll(argv[++a]);
    } else if (std::strcmp(argv[a], "--dh") == 0 && a + 1 < argc) {
      dec.dh = std::atoll(argv[++a]);
    } else if (std::strcmp(argv[a], "--path") == 0 && a + 1 < argc) {
      auto path = bna::attn::parse_path(argv[++a]);
      if (!path) {
        std::fprintf(stderr, "error: %s\n", path.status().to_string().c_str());
        return 2;
      }
      paths.push_back(*path);
    } else if (std::strcmp(argv[a], "--repeats") == 0 && a + 1 < argc) {
      opt.repeats = dec.repeats = std::atoi(argv[++a]);
    } else {
      Ts.push_back(std::atoll(argv[a]));
    }
  }
  if (decode) {
    if (!Ts.empty()) dec.Tk = Ts;
    dec.json = json;
    return run_decode_bench(dec);
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
