// bna demo: the main job on an embedded default. Builds the default long-context Butterfly
// topology (T=65,536, H=8, W=64, S=64, one random cycle), validates it and reports size, build time
// and graph quality; then runs Butterfly attention (the planned path, normally streams) at full T,
// times it against dense causal attention, checks sampled rows of both against the float64 oracle of
// docs/numerics.md, and reports memory. On the GPU (when present) it uses bf16, dh=128 and runs
// dense at full T too. Exit code 1 when validation or a check fails. `bna demo --train` instead trains
// one small GPT with four attention graphs (demo_train.cpp).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "bna/attention.hpp"
#include "bna/attention_check.hpp"
#include "bna/dtype.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"
#include "bna/topology.hpp"
#include "cli.hpp"
#include "demo_train.hpp"

namespace bna::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct DemoFlags {
  GraphFlags g{.T = 65536, .H = 8, .window = 64, .landmark_stride = 64, .strategy = "random", .cycles = 1, .seed = 0};
  int64_t dh = 0;           // 0: 64 on the CPU, 128 on the GPU
  std::string backend = "auto";
  int64_t dense_T = 16384;  // CPU only: dense causal is O(T^2), on 2 cores 64k takes minutes
  int64_t check_rows = 64;
  bool no_attention = false;
  bool train = false;
  DemoTrainFlags train_flags;
};

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
double mib(double bytes) { return bytes / 1048576.0; }

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // kilobytes on Linux
}

// One attention problem, B = 1, Hq = Hkv = H, f32 host buffers.
struct Problem {
  attn::Shape shape;
  std::vector<float> q, k, v, out, lse;
};

Problem make_problem(int64_t H, int64_t T, int64_t dh, uint64_t seed) {
  Problem p;
  p.shape.B = 1; p.shape.Hq = H; p.shape.Hkv = H; p.shape.Tq = T; p.shape.Tk = T; p.shape.dh = dh;
  const int64_t n = H * T * dh;
  p.q.resize(n); p.k.resize(n); p.v.resize(n); p.out.resize(n); p.lse.resize(H * T);
  parallel_for(0, H, [&](int64_t h) {
    Rng rng(mix_seed(seed, static_cast<uint64_t>(h)));
    for (int64_t e = h * T * dh; e < (h + 1) * T * dh; ++e) {
      p.q[e] = static_cast<float>(rng.normal());
      p.k[e] = static_cast<float>(rng.normal());
      p.v[e] = static_cast<float>(rng.normal());
    }
  });
  return p;
}

// Plans and runs one forward; returns the median of `repeats` timed runs (after one warm-up when
// repeats > 1) in ms, or an error.
Expected<double> time_forward(const attn::GraphSource& src, Problem& p, int repeats, std::string* path_line) {
  BNA_ASSIGN_OR_RETURN(attn::Plan plan, attn::plan(src, p.shape));
  if (path_line) *path_line = std::string(attn::path_name(plan.path)) + " (" + plan.reason + ")";
  std::unique_ptr<void, decltype(&std::free)> ws(std::aligned_alloc(64, (plan.workspace_bytes + 63) / 64 * 64 + 64),
                                                 &std::free);
  if (!ws) return unavailable("demo: cannot allocate a workspace of " + std::to_string(plan.workspace_bytes) + " bytes");
  const auto& s = p.shape;
  TensorView q(p.q.data(), DType::kF32, {1, s.Hq, s.Tq, s.dh}), k(p.k.data(), DType::kF32, {1, s.Hkv, s.Tk, s.dh});
  TensorView v(p.v.data(), DType::kF32, {1, s.Hkv, s.Tk, s.dh}), o(p.out.data(), DType::kF32, {1, s.Hq, s.Tq, s.dh});
  TensorView l(p.lse.data(), DType::kF32, {1, s.Hq, s.Tq});
  if (repeats > 1) BNA_RETURN_IF_ERROR(attn::run(plan, q, k, v, o, l, ws.get()));
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    BNA_RETURN_IF_ERROR(attn::run(plan, q, k, v, o, l, ws.get()));
    ms.push_back(ms_since(t0));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Sampled rows: the last row of every head, the first rows, and random rows.
std::vector<attn::RowRef> sample_rows(int64_t H, int64_t T, int64_t n, uint64_t seed) {
  std::vector<attn::RowRef> rows;
  Rng rng(seed);
  for (int64_t h = 0; h < H && static_cast<int64_t>(rows.size()) < n; ++h) rows.push_back({h, T - 1});
  rows.push_back({0, 0});
  while (static_cast<int64_t>(rows.size()) < n)
    rows.push_back({static_cast<int64_t>(rng.uniform_below(H)), static_cast<int64_t>(rng.uniform_below(T))});
  return rows;
}

bool print_check(const char* what, const Expected<attn::RowCheckReport>& r) {
  if (!r) {
    std::printf("check:      %s: %s\n", what, r.status().message().c_str());
    return false;
  }
  std::printf("check:      %-9s %lld rows vs float64 oracle: out max err %.2e (bound %.2e), lse max err %.2e "
              "(bound %.2e)  %s%s%s\n",
              what, (long long)r->rows, r->out_max_err, r->out_max_bound, r->lse_max_err, r->lse_max_bound,
              r->pass ? "PASS" : "FAIL", r->pass ? "" : ": ", r->why.c_str());
  return r->pass;
}

int run_attention(const DemoFlags& f, const topo::Topology& topo, const graph::GraphAbi& g) {
  const int64_t H = g.H, T = g.T, dh = f.dh > 0 ? f.dh : 64;
  std::printf("\nattention:  cpu, f32, B=1 H=%lld dh=%lld, %d threads\n", (long long)H, (long long)dh, num_threads());
  attn::Options opt;
  Problem p = make_problem(H, T, dh, f.g.seed + 1);
  attn::GraphSource bsrc;  // streams straight from the cycle permutations, no [H,T,D] rows
  bsrc.topology = &topo;
  attn::GraphSource asrc;  // the ABI rows of the same graph, for the oracle
  asrc.abi = &g;
  std::string path_line;
  auto bms = time_forward(bsrc, p, 1, &path_line);
  if (!bms) return fail(bms.status());
  const int64_t pairs = attn::allowed_pairs(g);
  std::printf("path:       %s\n", path_line.c_str());
  std::printf("butterfly:  T=%lld  %.1f ms  %.1f useful GFLOP/s  (%.1f keys per query)\n", (long long)T, *bms,
              4.0 * dh * pairs / (*bms * 1e6), double(pairs) / double(H * T));
  const auto rows = sample_rows(H, T, f.check_rows, f.g.seed + 2);
  bool ok = print_check("butterfly", attn::check_rows(asrc, p.shape, opt, p.q.data(), p.k.data(), p.v.data(),
                                                      p.out.data(), p.lse.data(), rows));
  const double io_bytes = 4.0 * 4 * H * T * dh + 4.0 * H * T;
  // Butterfly against dense at the same length (dense_T; the full T when dense_T >= T).
  const int64_t Td = std::min(T, f.dense_T);
  if (Td >= 1) {
    auto gd = topo.construct(Td);
    if (!gd) return fail(gd.status());
    Problem pd = make_problem(H, Td, dh, f.g.seed + 3);
    attn::GraphSource bs;
    bs.topology = &topo;
    auto b2 = time_forward(bs, pd, 3, nullptr);
    if (!b2) return fail(b2.status());
    attn::GraphSource ds;
    ds.dense = true;
    auto dms = time_forward(ds, pd, 1, nullptr);
    if (!dms) return fail(dms.status());
    const double dpairs = double(H) * Td * (Td + 1) / 2, bpairs = double(attn::allowed_pairs(*gd));
    std::printf("vs dense:   T=%lld  butterfly %.1f ms, dense causal %.1f ms: %.1fx faster; %.1fx fewer allowed pairs\n",
                (long long)Td, *b2, *dms, *dms / *b2, dpairs / bpairs);
    ok = print_check("dense", attn::check_rows(ds, pd.shape, opt, pd.q.data(), pd.k.data(), pd.v.data(), pd.out.data(),
                                               pd.lse.data(), sample_rows(H, Td, f.check_rows / 4 + 1, f.g.seed + 4))) &&
         ok;
  }
  std::printf("memory:     q,k,v,out,lse %.0f MiB  graph %.0f MiB  peak RSS %.0f MiB; a materialised [H,T,D,dh] "
              "gather would need %.0f MiB per tensor\n",
              mib(io_bytes), mib(double(g.nbytes())), peak_rss_mib(), mib(4.0 * H * T * g.D * dh));
  if (!ok) exit_code() = 1;
  return ok ? 0 : 1;
}


// ---- GPU: bf16, full T for both Butterfly and dense ----------------------------------------------
struct DeviceBuf {
  void* p = nullptr;
  ~DeviceBuf() { attn::cuda_free(p); }
};

// Uploads x rounded to bf16 (and rounds the host copy, so the oracle sees what the kernel sees).
Status upload_bf16(std::vector<float>& x, DeviceBuf& d) {
  std::vector<uint16_t> h(x.size());
  for (size_t e = 0; e < x.size(); ++e) {
    h[e] = float_to_bf16(x[e]);
    x[e] = bf16_to_float(h[e]);
  }
  BNA_RETURN_IF_ERROR(attn::cuda_malloc(&d.p, h.size() * 2));
  return attn::cuda_copy(d.p, h.data(), h.size() * 2, true);
}

struct GpuRun {
  double ms = 0;
  std::string path;
  size_t workspace = 0;
};

// Plans on the GPU, runs once to warm up, then times `repeats` runs (each synchronised) and copies
// out and lse back into p.out / p.lse as floats.
Expected<GpuRun> gpu_forward(const attn::GraphSource& src, Problem& p, const DeviceBuf& q, const DeviceBuf& k,
                             const DeviceBuf& v, int repeats) {
  attn::Options opt;
  opt.backend = attn::Backend::kCuda;
  BNA_ASSIGN_OR_RETURN(attn::Plan plan, attn::plan(src, p.shape, opt));
  GpuRun r;
  r.path = std::string(attn::path_name(plan.path)) + " (" + plan.reason + ")";
  r.workspace = plan.workspace_bytes;
  const auto& s = p.shape;
  // The CUDA forward takes no workspace (plan.workspace_bytes sizes the backward's); none is passed.
  DeviceBuf o, l, ws;
  BNA_RETURN_IF_ERROR(attn::cuda_malloc(&o.p, p.out.size() * 2));
  BNA_RETURN_IF_ERROR(attn::cuda_malloc(&l.p, p.lse.size() * 4));
  TensorView tq(q.p, DType::kBF16, {1, s.Hq, s.Tq, s.dh}), tk(k.p, DType::kBF16, {1, s.Hkv, s.Tk, s.dh});
  TensorView tv(v.p, DType::kBF16, {1, s.Hkv, s.Tk, s.dh}), to(o.p, DType::kBF16, {1, s.Hq, s.Tq, s.dh});
  TensorView tl(l.p, DType::kF32, {1, s.Hq, s.Tq});
  BNA_RETURN_IF_ERROR(attn::run(plan, tq, tk, tv, to, tl, ws.p));
  BNA_RETURN_IF_ERROR(attn::cuda_synchronize());
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    BNA_RETURN_IF_ERROR(attn::run(plan, tq, tk, tv, to, tl, ws.p));
    BNA_RETURN_IF_ERROR(attn::cuda_synchronize());
    ms.push_back(ms_since(t0));
  }
  std::sort(ms.begin(), ms.end());
  r.ms = ms[ms.size() / 2];
  std::vector<uint16_t> oh(p.out.size());
  BNA_RETURN_IF_ERROR(attn::cuda_copy(oh.data(), o.p, oh.size() * 2, false));
  BNA_RETURN_IF_ERROR(attn::cuda_copy(p.lse.data(), l.p, p.lse.size() * 4, false));
  for (size_t e = 0; e < oh.size(); ++e) p.out[e] = bf16_to_float(oh[e]);
  return r;
}

int run_attention_gpu(const DemoFlags& f, const topo::Topology& topo, const graph::GraphAbi& g) {
  const int64_t H = g.H, T = g.T, dh = f.dh > 0 ? f.dh : 128;
  std::printf("\nattention:  cuda (%s), bf16, B=1 H=%lld dh=%lld\n", attn::cuda_device_name().c_str(), (long long)H,
              (long long)dh);
  Problem p = make_problem(H, T, dh, f.g.seed + 1);
  p.shape.dtype = DType::kBF16;
  DeviceBuf q, k, v;
  for (auto [x, d] : {std::pair{&p.q, &q}, std::pair{&p.k, &k}, std::pair{&p.v, &v}}) {
    const Status st = upload_bf16(*x, *d);
    if (!st.is_ok()) return fail(st);
  }
  attn::GraphSource bsrc, asrc, dsrc;
  bsrc.topology = &topo;
  asrc.abi = &g;
  dsrc.dense = true;
  attn::Options opt;
  auto b = gpu_forward(bsrc, p, q, k, v, 10);
  if (!b) return fail(b.status());
  const int64_t pairs = attn::allowed_pairs(g);
  std::printf("path:       %s\n", b->path.c_str());
  std::printf("butterfly:  T=%lld  %.3f ms  %.1f useful TFLOP/s  (%.1f keys per query)\n", (long long)T, b->ms,
              4.0 * dh * pairs / (b->ms * 1e9), double(pairs) / double(H * T));
  const auto rows = sample_rows(H, T, f.check_rows, f.g.seed + 2);
  bool ok = print_check("butterfly", attn::check_rows(asrc, p.shape, opt, p.q.data(), p.k.data(), p.v.data(),
                                                      p.out.data(), p.lse.data(), rows));
  auto d = gpu_forward(dsrc, p, q, k, v, 3);
  if (!d) return fail(d.status());
  const double dpairs = double(H) * T * (T + 1) / 2;
  std::printf("vs dense:   T=%lld  butterfly %.3f ms, dense causal (ours) %.3f ms: %.1fx faster; %.1fx fewer allowed "
              "pairs\n",
              (long long)T, b->ms, d->ms, d->ms / b->ms, dpairs / double(pairs));
  ok = print_check("dense", attn::check_rows(dsrc, p.shape, opt, p.q.data(), p.k.data(), p.v.data(), p.out.data(),
                                             p.lse.data(), sample_rows(H, T, f.check_rows / 4 + 1, f.g.seed + 4))) &&
       ok;
  std::printf("memory:     device q,k,v,out %.0f MiB (bf16) + lse %.1f MiB, no forward workspace (backward: %.0f MiB); "
              "a materialised [H,T,D,dh] gather would need %.0f MiB per tensor\n",
              mib(2.0 * 4 * H * T * dh), mib(4.0 * H * T), mib(double(b->workspace)), mib(2.0 * H * T * g.D * dh));
  if (!ok) exit_code() = 1;
  return ok ? 0 : 1;
}

int run_demo(const DemoFlags& f) {
  if (f.dh < 0) return fail_usage("--dh " + std::to_string(f.dh) + ", expected >= 1 (or 0 for the default)");
  if (f.backend != "auto" && f.backend != "cpu" && f.backend != "cuda")
    return fail_usage("--backend " + f.backend + ", expected auto, cpu or cuda");
  const bool gpu = f.backend == "cuda" || (f.backend == "auto" && attn::cuda_available());
  if (gpu && !attn::cuda_available())
    return fail(unavailable("demo: --backend cuda but no CUDA device (or a build without CUDA)"));
  if (f.check_rows < 1) return fail_usage("--check-rows " + std::to_string(f.check_rows) + ", expected >= 1");
  auto strategy = topo::parse_strategy(f.g.strategy);
  if (!strategy) return fail(strategy.status());
  topo::TopologyOptions opt;
  opt.n_heads = f.g.H;
  opt.strategy = *strategy;
  opt.num_cycles = f.g.cycles;
  opt.window = f.g.window;
  opt.landmark_stride = f.g.landmark_stride;
  opt.seed = f.g.seed;
  auto topo = topo::Topology::create(opt);
  if (!topo) return fail(topo.status());
  std::printf("bna demo: Butterfly topology T=%lld H=%lld W=%lld S=%lld strategy=%s cycles=%lld seed=%llu\n",
              (long long)f.g.T, (long long)f.g.H, (long long)f.g.window, (long long)f.g.landmark_stride,
              f.g.strategy.c_str(), (long long)f.g.cycles, (unsigned long long)f.g.seed);
  const auto t0 = Clock::now();
  auto g = topo->construct(f.g.T);
  const double ms = ms_since(t0);
  if (!g) return fail(g.status());
  std::printf("graph:      [H=%lld, T=%lld, D=%lld]  %.1f MiB (neigh_idx + edge_type)\n", (long long)g->H,
              (long long)g->T, (long long)g->D, mib(double(g->nbytes())));
  std::printf("build:      %.1f ms  (%.2f GB/s written)\n", ms, g->nbytes() / (ms * 1e6));
  const auto t2 = Clock::now();
  const Status v = graph::validate(*g);
  std::printf("validate:   %s  (%.1f ms)\n", v.is_ok() ? "ok" : v.message().c_str(), ms_since(t2));
  const auto m = graph::metrics(*g);
  std::printf("degree:     mean %.1f  min %lld  max %lld\n", m.degree_mean, (long long)m.degree_min,
              (long long)m.degree_max);
  std::printf("edges:      cycle %lld  window %lld  landmark %lld  rewire %lld\n",
              (long long)m.edge_type_counts[1], (long long)m.edge_type_counts[2], (long long)m.edge_type_counts[3],
              (long long)m.edge_type_counts[4]);
  std::printf("quality:    shortcut rate %.3f  reachability(%d hops) %.1f nodes\n", m.shortcut_rate, m.bfs_hops,
              m.reachability_proxy);
  if (!v.is_ok()) {
    exit_code() = 1;
    return 1;
  }
  if (f.no_attention) return 0;
  return gpu ? run_attention_gpu(f, *topo, *g) : run_attention(f, *topo, *g);
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new DemoFlags();  // lives for the process
  auto* sub = root.add_subcommand("demo", "build the default long-context Butterfly graph, run attention on it against "
                                          "dense and check it");
  add_graph_flags(sub, f->g);
  sub->add_option("--dh", f->dh, "head dim (0: 64 on the CPU, 128 on the GPU)")->capture_default_str();
  sub->add_option("--backend", f->backend, "auto (the GPU when one is present), cpu or cuda")->capture_default_str();
  sub->add_option("--dense-T", f->dense_T, "length of the butterfly-vs-dense comparison (dense is O(T^2))")
      ->capture_default_str();
  sub->add_option("--check-rows", f->check_rows, "query rows checked against the float64 oracle")->capture_default_str();
  sub->add_flag("--no-attention", f->no_attention, "only build and check the graph");
  auto* train = sub->add_flag("--train", f->train,
                              "instead: train one small GPT with dense, window, window+landmarks and butterfly "
                              "attention and compare (about 2 minutes on 2 cores)");
  sub->get_option("--T")->excludes(train);  // the graph's T; the training length is --train-T
  add_demo_train_flags(sub, train, f->train_flags);
  sub->callback([f] { f->train ? run_demo_train(f->train_flags) : run_demo(*f); });
});

}  // namespace
}  // namespace bna::cli
