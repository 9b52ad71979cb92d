// CPU attention benchmark driver (attn::bench_cpu): builds the Butterfly graphs, plans every path,
// times run() and measures the OpenBLAS SGEMM ceiling in the same process (before each T). Lives in the library so
// the bench program and the CLI share one implementation. Allowed pairs are counted exactly from
// the graph structures (causality included), so GFLOP/s is useful work only.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/butterfly.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"
#include "bna/topology.hpp"

namespace bna::attn {
namespace {

using Clock = std::chrono::steady_clock;

double sgemm_gflops() {
  const int n = 2048;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n, 0.0f);
  std::vector<double> ms;
  for (int r = 0; r < 6; ++r) {
    const auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin() + 1, ms.end());  // the first run warms up; median of the other five
  return 2.0 * n * n * double(n) / (ms[3] * 1e6);
}

int64_t pairs_abi(const graph::GraphAbi& g) {
  int64_t n = 0;
  for (int64_t h = 0; h < g.H; ++h)
    for (int64_t i = 0; i < g.T; ++i)
      for (int64_t c = 0; c < g.D; ++c) {
        const int32_t j = g.row(h, i)[c];
        if (j < 0) break;
        n += j <= i;
      }
  return n;
}

int64_t pairs_perms(const topo::PermsOnly& P, int64_t w) {
  int64_t n = 0;
  for (int64_t h = 0; h < P.H; ++h) {
    const int32_t* perm = P.perm_of(h, 0);
    for (int64_t r = 0; r < P.T; ++r)
      for (int64_t rr = std::max<int64_t>(0, r - w); rr <= std::min<int64_t>(P.T - 1, r + w); ++rr) n += perm[rr] <= perm[r];
  }
  return n;
}

int64_t pairs_blocks(const topo::BlockSparseLayout& L) {
  int64_t n = 0;
  for (int64_t h = 0; h < L.H; ++h)
    for (int64_t b = 0; b < L.n_blocks; ++b)
      for (int64_t i = b * L.block_size; i < std::min((b + 1) * L.block_size, L.T); ++i)
        for (const int32_t* kb = L.row_begin(h, b); kb != L.row_end(h, b); ++kb) {
          const int64_t k0 = int64_t(*kb) * L.block_size, k1 = std::min({k0 + L.block_size, L.T, i + 1});
          n += std::max<int64_t>(0, k1 - k0);
        }
  return n;
}

}  // namespace

Expected<BenchReport> bench_cpu(const BenchOptions& opt) {
  for (int64_t T : opt.T)
    if (T < 1) return invalid_argument("bench: T=" + std::to_string(T) + ", expected T >= 1");
  if (opt.H < 1 || opt.dh < 1 || opt.W < 0 || opt.S < 0 || opt.repeats < 1 || opt.cycles < 1)
    return invalid_argument("bench: H=" + std::to_string(opt.H) + " dh=" + std::to_string(opt.dh) + " W=" +
                            std::to_string(opt.W) + " S=" + std::to_string(opt.S) + " cycles=" + std::to_string(opt.cycles) +
                            " repeats=" + std::to_string(opt.repeats) + ", expected H, dh, cycles, repeats >= 1 and W, S >= 0");
  BenchReport rep;
  rep.options = opt;
  rep.threads = num_threads();
  // SGEMM is measured before each T; the report gives the best of those measurements (the closest to
  // the machine's ceiling when other work shares the cores) and every ratio uses it.
  std::vector<double> sgemm;
  topo::TopologyOptions to;
  to.n_heads = opt.H;
  to.num_cycles = opt.cycles;
  to.window = opt.W;
  to.landmark_stride = opt.S;
  BNA_ASSIGN_OR_RETURN(topo::Topology topology, topo::Topology::create(to));
  for (int64_t T : opt.T) {
    sgemm.push_back(sgemm_gflops());
    Shape s;
    s.B = 1; s.Hq = opt.H; s.Hkv = opt.H; s.Tq = T; s.Tk = T; s.dh = opt.dh;
    const int64_t n = opt.H * T * opt.dh;
    std::vector<float> q(n), k(n), v(n), o(n), lse(opt.H * T);
    Rng rng(T);
    for (int64_t e = 0; e < n; ++e) q[e] = float(rng.normal()), k[e] = float(rng.normal()), v[e] = float(rng.normal());
    TensorView tq(q.data(), DType::kF32, {1, opt.H, T, opt.dh}), tk(k.data(), DType::kF32, {1, opt.H, T, opt.dh});
    TensorView tv(v.data(), DType::kF32, {1, opt.H, T, opt.dh}), to_(o.data(), DType::kF32, {1, opt.H, T, opt.dh});
    TensorView tl(lse.data(), DType::kF32, {1, opt.H, T});
    BNA_ASSIGN_OR_RETURN(graph::GraphAbi abi, topology.construct(T));
    BNA_ASSIGN_OR_RETURN(topo::PermsOnly perms, topology.construct_perms_only(T));
    topo::ButterflyOptions bo;
    BNA_ASSIGN_OR_RETURN(topo::BlockSparseLayout blocks, topo::butterfly_block_layout(T, 64, opt.H, bo));
    double dense_ms = 0;
    for (Path path : opt.paths) {
      BenchRecord r;
      r.path = path;
      r.T = T;
      GraphSource src;
      Options po;
      po.permute_window = opt.W;
      switch (path) {
        case Path::kDense: src.dense = true; r.pairs = opt.H * T * (T + 1) / 2; break;
        case Path::kGather: src.abi = &abi; po.force_path = Path::kGather; r.pairs = pairs_abi(abi); break;
        case Path::kStreams: src.abi = &abi; po.force_path = Path::kStreams; r.pairs = pairs_abi(abi); break;
        case Path::kPermuteWindow: src.perms = &perms; r.pairs = pairs_perms(perms, opt.W); break;
        case Path::kBlockSparse: src.blocks = &blocks; r.pairs = pairs_blocks(blocks); break;
        default: r.skipped = true; r.note = "no CPU kernel"; rep.records.push_back(r); continue;
      }
      if (path == Path::kDense && T > opt.dense_max_T) {
        r.skipped = true;
        r.note = "dense skipped above T=" + std::to_string(opt.dense_max_T);
        rep.records.push_back(r);
        continue;
      }
      BNA_ASSIGN_OR_RETURN(Plan plan, attn::plan(src, s, po));
      r.note = plan.reason;
      std::vector<double> ms;
      for (int it = 0; it <= opt.repeats; ++it) {
        const auto t0 = Clock::now();
        BNA_RETURN_IF_ERROR(run(plan, tq, tk, tv, to_, tl));
        if (it > 0) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        // Dense at long T: one timed run is enough to rank it (seconds each).
        if (path == Path::kDense && it >= 1 && ms.back() > 3000) break;
      }
      std::sort(ms.begin(), ms.end());
      r.ms_median = ms[ms.size() / 2];
      r.ms_min = ms.front();
      r.ms_max = ms.back();
      r.gflops = 4.0 * opt.dh * double(r.pairs) / (r.ms_median * 1e6);
      if (path == Path::kDense) dense_ms = r.ms_median;
      rep.records.push_back(r);
    }
    for (auto& r : rep.records)
      if (r.T == T && !r.skipped && dense_ms > 0) r.speedup_vs_dense = dense_ms / r.ms_median;
  }
  rep.sgemm_gflops = sgemm.empty() ? sgemm_gflops() : *std::max_element(sgemm.begin(), sgemm.end());
  for (auto& r : rep.records)
    if (!r.skipped) r.ratio_to_sgemm = r.gflops / rep.sgemm_gflops;
  return rep;
}

}  // namespace bna::attn
