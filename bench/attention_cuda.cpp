// CUDA attention benchmark: dense causal and streams (window W + landmarks every S + C gathered
// extras per row) at B=1, H=32, dh=128 (--B, --H, --dh), bf16: forward and forward+backward at T in {4k, 16k, 64k},
// and split-K decode (Tq = 1 query per head against a Tk-key cache) at Tk in {32k, 128k}.
// Graph paths (forward, same shapes): block-sparse with the butterfly layout (Bs = 64, layer 1, 4 local
// blocks, 1 partner, 1 sink), permute-window (one random cycle per head, w = 32 and 64) and gather
// (D = 64: the 32 previous tokens and 32 random earlier keys per row), compressed butterfly (raw tail
// 1024 + block means routed by the block-sparse layout); --paths-only skips the
// backward, the A/B and decode runs and keeps streams and dense forward as the in-run baselines.
// With the backward on, each graph path is also timed forward+backward (<path>_fwd_bwd: the row-list
// two-pass backward of attn_bwd_rows.cuh).
// Timing: CUDA events around each call, warm-up first, median (and min/max) of the repeats.
// Useful TFLOP/s counts only allowed (query, key) pairs: 4*dh flops each forward, 10*dh (2.5x, the
// FlashAttention convention) forward+backward. Decode reports ms per token (all heads).
// Usage: bna_attention_cuda [--T 4096,16384,65536] [--decode-T 32768,131072] [--repeats 10]
//        [--warmup 3] [--no-bwd] [--ab] [--no-paths] [--paths-only] [--W 64] [--S 64] [--C 2]
//        [--B 1] [--H 32] [--dh 128]
//        [--json out.json] [--commit SHA]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/butterfly.hpp"
#include "bna/dtype.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

#ifdef BNA_HAVE_CUDA
#include "../src/attention/cuda/device_memory.hpp"  // bench targets have no src/ include dir
#include "../src/attention/cuda/launch.hpp"

namespace {

struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0;
};

template <class F>
bna::Expected<Timing> time_it(F&& launch, int warmup, int repeats) {
  for (int r = 0; r < warmup; ++r) BNA_RETURN_IF_ERROR(launch());
  BNA_RETURN_IF_ERROR(bna::cuda::device_synchronize());
  std::vector<double> ms;
  bna::cuda::EventTimer timer;
  for (int r = 0; r < repeats; ++r) {
    BNA_RETURN_IF_ERROR(timer.start());
    BNA_RETURN_IF_ERROR(launch());
    BNA_RETURN_IF_ERROR(timer.stop());
    BNA_ASSIGN_OR_RETURN(float t, timer.elapsed_ms());
    ms.push_back(t);
  }
  BNA_RETURN_IF_ERROR(bna::cuda::device_synchronize());
  std::sort(ms.begin(), ms.end());
  return Timing{ms[ms.size() / 2], ms.front(), ms.back()};
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t e = s.find(',', pos);
    if (e == std::string::npos) e = s.size();
    if (e > pos) v.push_back(std::stoll(s.substr(pos, e - pos)));  // "" or "," give an empty list
    pos = e + 1;
  }
  return v;
}

// Block-sparse (butterfly, Bs = 64), permute-window (w = 32, 64) and gather (D = 64) forward at one
// T, on the tensors of `a` (Hq = Hkv = H). Pairs are counted exactly from the uploaded graphs.
bna::Status run_paths(bna::cuda::AttnArgs a, const bna::cuda::AttnBwdArgs* ba, int64_t T, int64_t H, bna::Rng& rng,
                      int warmup, int repeats, nlohmann::json& out) {
  using bna::cuda::DeviceBuffer;
  auto record1 = [&](const std::string& name, double pairs, double flop_per_pair, const std::function<bna::Status()>& launch,
                     const nlohmann::json& extra) -> bna::Status {
    BNA_ASSIGN_OR_RETURN(Timing t, time_it(launch, warmup, repeats));
    const double tflops = flop_per_pair * static_cast<double>(a.dh) * pairs / (t.median_ms * 1e-3) / 1e12;
    const double ppq = pairs / static_cast<double>(H * T);
    std::printf("%8lld %-16s %10.3f %10.3f %10.3f %10.1f %14.1f\n", static_cast<long long>(T), name.c_str(), t.median_ms,
                t.min_ms, t.max_ms, tflops, ppq);
    nlohmann::json r = {{"kernel", name}, {"T", T}, {"median_ms", t.median_ms}, {"min_ms", t.min_ms},
                        {"max_ms", t.max_ms}, {"repeats", repeats}, {"useful_tflops", tflops}, {"pairs_per_query", ppq}};
    r.update(extra);
    out["results"].push_back(r);
    return bna::Status::ok();
  };
  // Forward, then (when ba) forward + backward of the same graph.
  auto record = [&](const std::string& name, double pairs, const std::function<bna::Status()>& fwd,
                    const std::function<bna::Status()>& bwd, const nlohmann::json& extra) -> bna::Status {
    BNA_RETURN_IF_ERROR(record1(name, pairs, 4.0, fwd, extra));
    if (ba == nullptr) return bna::Status::ok();
    return record1(name + "_fwd_bwd", pairs, 10.0, [&]() -> bna::Status {
      BNA_RETURN_IF_ERROR(fwd());
      return bwd();
    }, extra);
  };
  // ---- block-sparse, butterfly layout ----
  {
    const int64_t Bs = 64;
    bna::topo::ButterflyOptions bo;
    bo.layer = 1;
    BNA_ASSIGN_OR_RETURN(bna::topo::BlockSparseLayout L, bna::topo::butterfly_block_layout(T, Bs, H, bo));
    std::vector<int32_t> indptr(static_cast<size_t>(H * (L.n_blocks + 1)));
    double pairs = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t b = 0; b <= L.n_blocks; ++b) {
        indptr[static_cast<size_t>(h * (L.n_blocks + 1) + b)] =
            static_cast<int32_t>(L.head_base[h] + L.indptr[h * (L.n_blocks + 1) + b]);
        if (b == L.n_blocks) continue;
        const int64_t nq = std::min(T, (b + 1) * Bs) - b * Bs;
        for (const int32_t* kb = L.row_begin(h, b); kb != L.row_end(h, b); ++kb) {
          const int64_t nk = std::min(T, (*kb + 1) * Bs) - *kb * Bs;
          pairs += *kb < b ? static_cast<double>(nq * nk) : (*kb == b ? nq * (nq + 1) / 2.0 : 0.0);
        }
      }
    DeviceBuffer dptr, dind;
    BNA_RETURN_IF_ERROR(dptr.allocate(indptr.size() * 4));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dptr.get(), indptr.data(), indptr.size() * 4));
    BNA_RETURN_IF_ERROR(dind.allocate(L.indices.size() * 4));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dind.get(), L.indices.data(), L.indices.size() * 4));
    std::vector<int32_t> tptr, tind;
    BNA_RETURN_IF_ERROR(bna::cuda::transpose_block_sparse(indptr.data(), L.indices.data(), H, L.n_blocks, tptr, tind));
    DeviceBuffer dtptr, dtind;
    BNA_RETURN_IF_ERROR(dtptr.allocate(tptr.size() * 4));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dtptr.get(), tptr.data(), tptr.size() * 4));
    BNA_RETURN_IF_ERROR(dtind.allocate(std::max<size_t>(tind.size(), 1) * 4));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dtind.get(), tind.data(), tind.size() * 4));
    const int64_t N = L.n_blocks;
    BNA_RETURN_IF_ERROR(record("block_sparse_bfly", pairs,
                               [&] { return bna::cuda::block_sparse_fwd(a, Bs, N, dptr.as<int32_t>(), dind.as<int32_t>()); },
                               [&] { return bna::cuda::block_sparse_bwd(*ba, Bs, N, dptr.as<int32_t>(), dind.as<int32_t>(),
                                                                        dtptr.as<int32_t>(), dtind.as<int32_t>()); },
                               {{"Bs", Bs}, {"layout", "butterfly layer 1, local 4, partner 1, sink 1"},
                                {"blocks_per_row", static_cast<double>(L.indices.size()) / static_cast<double>(H * N)}}));
    // Compressed butterfly on the same layout as routing: raw tail L = 1024 + routed block means.
    const int64_t tail = 1024;
    double cpairs = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const int64_t cut = std::max<int64_t>(0, i - tail + 1);
        cpairs += static_cast<double>(i - cut + 1);
        for (const int32_t* kb = L.row_begin(h, i / Bs); kb != L.row_end(h, i / Bs); ++kb) cpairs += (*kb + 1) * Bs <= cut;
      }
    DeviceBuffer cws;
    BNA_RETURN_IF_ERROR(cws.allocate(bna::cuda::compressed_workspace_bytes(a, Bs)));
    bna::cuda::CompressedArgs ca;
    ca.tail = tail; ca.Bs = Bs; ca.N = N; ca.indptr = dptr.as<int32_t>(); ca.indices = dind.as<int32_t>();
    ca.routing_heads = H; ca.workspace = cws.get(); ca.workspace_bytes = cws.bytes();
    BNA_RETURN_IF_ERROR(record1("compressed_L1024", cpairs, 4.0, [&] { return bna::cuda::compressed_fwd(a, ca); },
                                {{"Bs", Bs}, {"tail", tail}, {"routing", "butterfly layer 1 (the block-sparse layout)"}}));
  }
  // ---- permute-window, one random cycle per head ----
  {
    std::vector<int32_t> perm(static_cast<size_t>(H * T)), inv(perm.size());
    for (int64_t h = 0; h < H; ++h) bna::topo::cycle_random_into(perm.data() + h * T, T, rng);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t r = 0; r < T; ++r) inv[static_cast<size_t>(h * T + perm[static_cast<size_t>(h * T + r)])] = static_cast<int32_t>(r);
    DeviceBuffer dperm, dinv;
    BNA_RETURN_IF_ERROR(dperm.allocate(perm.size() * 4));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dperm.get(), perm.data(), perm.size() * 4));
    BNA_RETURN_IF_ERROR(dinv.allocate(inv.size() * 4));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dinv.get(), inv.data(), inv.size() * 4));
    for (const int64_t w : {int64_t{32}, int64_t{64}}) {
      double pairs = 0;
      for (int64_t h = 0; h < H; ++h) {
        const int32_t* pr = perm.data() + h * T;
        for (int64_t r = 0; r < T; ++r)
          for (int64_t k = std::max<int64_t>(0, r - w); k <= std::min<int64_t>(T - 1, r + w); ++k) pairs += pr[k] <= pr[r];
      }
      bna::cuda::PermuteWindowArgs pw;
      pw.perm = dperm.as<int32_t>();
      pw.inv = dinv.as<int32_t>();
      pw.w = w;
      const std::string name = "permute_w" + std::to_string(w);
      BNA_RETURN_IF_ERROR(record(name, pairs, [&] { return bna::cuda::permute_window_fwd(a, pw); },
                                 [&] { return bna::cuda::permute_window_bwd(*ba, pw); },
                                 {{"w", w}, {"cycles", 1}}));
    }
  }
  // ---- gather, D = 64 ----
  {
    const int64_t D = 64;
    std::vector<int32_t> nb(static_cast<size_t>(H * T * D));
    double pairs = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        int32_t* row = nb.data() + (h * T + i) * D;
        for (int64_t e = 0; e < D; ++e) {
          row[e] = e < 32 ? static_cast<int32_t>(i - e) : static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(i + 1)));
          if (row[e] < 0) row[e] = -1;
          pairs += row[e] >= 0;
        }
      }
    DeviceBuffer dnb;
    BNA_RETURN_IF_ERROR(dnb.allocate(nb.size() * 4));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dnb.get(), nb.data(), nb.size() * 4));
    std::vector<int64_t> trp;
    std::vector<int32_t> trows;
    BNA_RETURN_IF_ERROR(bna::cuda::transpose_gather(nb.data(), H, T, D, trp, trows));
    DeviceBuffer dtrp, dtrows;
    BNA_RETURN_IF_ERROR(dtrp.allocate(trp.size() * 8));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dtrp.get(), trp.data(), trp.size() * 8));
    BNA_RETURN_IF_ERROR(dtrows.allocate(std::max<size_t>(trows.size(), 1) * 4));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(dtrows.get(), trows.data(), trows.size() * 4));
    BNA_RETURN_IF_ERROR(record("gather_D64", pairs, [&] { return bna::cuda::gather_fwd(a, dnb.as<int32_t>(), D); },
                               [&] { return bna::cuda::gather_bwd(*ba, dnb.as<int32_t>(), D, dtrp.as<int64_t>(), dtrows.as<int32_t>()); },
                               {{"D", D}}));
  }
  return bna::Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> Ts = {4096, 16384, 65536};
  std::vector<int64_t> decTs = {32768, 131072};
  bool bwd = true, ab = false, paths = true, paths_only = false;
  int repeats = 10, warmup = 3;
  std::string json_path, commit = "unknown";
  int64_t B = 1, H = 32, dh = 128;
  int64_t W = 64, S = 64, C = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "error: %s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--T") Ts = parse_list(next());
    else if (a == "--decode-T") decTs = parse_list(next());
    else if (a == "--no-bwd") bwd = false;
    else if (a == "--ab") ab = true;
    else if (a == "--no-paths") paths = false;
    else if (a == "--paths-only") paths_only = true, bwd = false, ab = false, decTs.clear();
    else if (a == "--B") B = std::stoll(next());
    else if (a == "--H") H = std::stoll(next());
    else if (a == "--dh") dh = std::stoll(next());
    else if (a == "--W") W = std::stoll(next());
    else if (a == "--S") S = std::stoll(next());
    else if (a == "--C") C = std::stoll(next());
    else if (a == "--repeats") repeats = std::stoi(next());
    else if (a == "--warmup") warmup = std::stoi(next());
    else if (a == "--json") json_path = next();
    else if (a == "--commit") commit = next();
    else { std::fprintf(stderr, "error: unknown argument %s\nhint: see the header of bench/attention_cuda.cpp\n", a.c_str()); return 2; }
  }
  if (!bna::cuda::device_available()) {
    std::fprintf(stderr, "error: no CUDA device\n");
    return 1;
  }
  nlohmann::json out;
  out["device"] = bna::cuda::device_name();
  out["commit"] = commit;
#ifdef NDEBUG
  out["build_type"] = "Release";
#else
  out["build_type"] = "Debug";
#endif
  out["shape"] = {{"B", B}, {"H", H}, {"dh", dh}, {"dtype", "bf16"}, {"W", W}, {"S", S}, {"C", C}};
  out["timing"] = {{"warmup", warmup}, {"repeats", repeats}, {"stat", "median of CUDA-event times"}};
  out["results"] = nlohmann::json::array();

  // A pool of random bf16 values (normal for q, k; uniform for v); every tensor copies it at its own
  // offset, so no two heads of one tensor share data within a 2^24-element period.
  bna::Rng rng(20261126);
  const size_t pool_n = size_t{1} << 24;
  std::vector<uint16_t> pool_n01(pool_n), pool_u(pool_n);
  for (size_t x = 0; x < pool_n; ++x) {
    pool_n01[x] = bna::float_to_bf16(static_cast<float>(rng.normal()));
    pool_u[x] = bna::float_to_bf16(static_cast<float>(2.0 * rng.uniform01() - 1.0));
  }
  std::printf("device: %s\n", bna::cuda::device_name().c_str());
  std::printf("%8s %-16s %10s %10s %10s %10s %14s\n", "T", "kernel", "median_ms", "min_ms", "max_ms", "TFLOP/s", "pairs/query");
  for (const int64_t T : Ts) {
    const size_t n = static_cast<size_t>(B * H * T * dh);
    std::vector<uint16_t> host(n);
    bna::cuda::DeviceBuffer q, k, v, o, lse, ex;
    auto upload = [&](bna::cuda::DeviceBuffer& buf, const std::vector<uint16_t>& pool, size_t offset) -> bna::Status {
      for (size_t x = 0; x < n; ++x) host[x] = pool[(x + offset) & (pool_n - 1)];
      BNA_RETURN_IF_ERROR(buf.allocate(n * 2));
      return bna::cuda::copy_to_device(buf.get(), host.data(), n * 2);
    };
    bna::Status st = upload(q, pool_n01, 0);
    if (st.is_ok()) st = upload(k, pool_n01, 5'000'011);
    if (st.is_ok()) st = upload(v, pool_u, 11'000'027);
    if (st.is_ok()) st = o.allocate(n * 2);
    if (st.is_ok()) st = lse.allocate(static_cast<size_t>(B * H * T) * 4);
    // One cycle's extras: 2 random keys per row in [0, i-W-1], off the landmarks, distinct.
    std::vector<int32_t> hex(static_cast<size_t>(H * T * C), -1);
    double stream_pairs = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const int64_t hi = i - W - 1;
        int64_t cnt = 0;
        for (int tries = 0; tries < 8 && cnt < C && hi >= 0; ++tries) {
          const int64_t j = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(hi + 1)));
          if ((S > 0 && j % S == 0) || (cnt == 1 && hex[static_cast<size_t>((h * T + i) * C)] == j)) continue;
          hex[static_cast<size_t>((h * T + i) * C + cnt++)] = static_cast<int32_t>(j);
        }
        const int64_t lim = i - W;  // landmarks j = m*S < i - W
        stream_pairs += static_cast<double>(std::min(i, W) + 1 + (lim > 0 && S > 0 ? (lim - 1) / S + 1 : 0) + cnt);
      }
    if (st.is_ok()) st = ex.allocate(hex.size() * 4);
    if (st.is_ok()) st = bna::cuda::copy_to_device(ex.get(), hex.data(), hex.size() * 4);
    if (!st.is_ok()) { std::fprintf(stderr, "error: T=%lld: %s\n", static_cast<long long>(T), st.to_string().c_str()); return 1; }

    bna::cuda::AttnArgs a;
    a.q = q.get(); a.k = k.get(); a.v = v.get(); a.out = o.get(); a.lse = lse.as<float>();
    a.B = B; a.Hq = H; a.Hkv = H; a.T = T; a.dh = dh; a.dtype = bna::DType::kBF16;
    bna::cuda::DeviceBuffer dout, gq, gk, gv, ws;
    bna::cuda::AttnBwdArgs ba;
    if (bwd) {
      st = upload(dout, pool_n01, 7'000'003);
      if (st.is_ok()) st = gq.allocate(n * 2);
      if (st.is_ok()) st = gk.allocate(n * 2);
      if (st.is_ok()) st = gv.allocate(n * 2);
      if (st.is_ok()) st = ws.allocate(bna::cuda::attn_bwd_workspace_bytes(a));
      if (!st.is_ok()) { std::fprintf(stderr, "error: T=%lld: %s\n", static_cast<long long>(T), st.to_string().c_str()); return 1; }
      ba.fwd = a;
      ba.dout = dout.get(); ba.dq = gq.get(); ba.dk = gk.get(); ba.dv = gv.get();
      ba.workspace = ws.get(); ba.workspace_bytes = ws.bytes();
    }
    const double dense_pairs = static_cast<double>(H) * static_cast<double>(T) * static_cast<double>(T + 1) / 2.0;
    struct Run { const char* name; double pairs; bool dense, with_bwd; int variant = 0; };
    std::vector<Run> runs = {{"streams", stream_pairs, false, false}, {"dense", dense_pairs, true, false}};
    if (ab) {  // both forward kernels (v3: 64-row tiles, v4: 128-row tiles) in the same run
      runs.push_back({"streams_v3", stream_pairs, false, false, 1});
      runs.push_back({"dense_v3", dense_pairs, true, false, 1});
      runs.push_back({"streams_v4", stream_pairs, false, false, 2});
      runs.push_back({"dense_v4", dense_pairs, true, false, 2});
    }
    if (bwd) {
      runs.push_back({"streams_fwd_bwd", stream_pairs, false, true});
      runs.push_back({"dense_fwd_bwd", dense_pairs, true, true});
    }
    for (const Run& run : runs) {
      const bool dense = run.dense;
      a.fwd_variant = run.variant;
      auto launch = [&]() -> bna::Status {
        BNA_RETURN_IF_ERROR(dense ? bna::cuda::dense_causal_fwd(a) : bna::cuda::streams_fwd(a, W, S, ex.as<int32_t>(), C));
        if (!run.with_bwd) return bna::Status::ok();
        return dense ? bna::cuda::dense_causal_bwd(ba) : bna::cuda::streams_bwd(ba, W, S, ex.as<int32_t>(), C);
      };
      const int reps = dense && T >= 65536 ? std::min(repeats, run.with_bwd ? 3 : 5) : repeats;
      auto t = time_it(launch, dense && run.with_bwd && T >= 65536 ? 1 : warmup, reps);
      if (!t) { std::fprintf(stderr, "error: %s T=%lld: %s\n", run.name, static_cast<long long>(T), t.status().to_string().c_str()); return 1; }
      const double flop_per_pair = (run.with_bwd ? 10.0 : 4.0) * static_cast<double>(dh);
      const double tflops = flop_per_pair * run.pairs * B / (t->median_ms * 1e-3) / 1e12;
      const double ppq = run.pairs / static_cast<double>(H * T);
      std::printf("%8lld %-16s %10.3f %10.3f %10.3f %10.1f %14.1f\n", static_cast<long long>(T), run.name,
                  t->median_ms, t->min_ms, t->max_ms, tflops, ppq);
      out["results"].push_back({{"kernel", run.name}, {"T", T}, {"median_ms", t->median_ms}, {"min_ms", t->min_ms},
                                {"max_ms", t->max_ms}, {"repeats", reps}, {"useful_tflops", tflops},
                                {"pairs_per_query", ppq}});
    }
    if (paths || paths_only) {
      st = run_paths(a, bwd ? &ba : nullptr, T, H, rng, warmup, repeats, out);
      if (!st.is_ok()) { std::fprintf(stderr, "error: paths T=%lld: %s\n", static_cast<long long>(T), st.to_string().c_str()); return 1; }
    }
  }
  // ---- decode: one query per head at position Tk-1 against a Tk-key cache ----
  std::printf("%8s %-16s %10s %10s %10s %10s %14s\n", "Tk", "decode", "median_ms", "min_ms", "max_ms", "GB/s", "keys/query");
  for (const int64_t Tk : decTs) {
    const size_t nkv = static_cast<size_t>(B * H * Tk * dh), nq = static_cast<size_t>(B * H * dh);
    std::vector<uint16_t> host(nkv);
    bna::cuda::DeviceBuffer q, k, v, o, lse, ex, ws;
    auto upload_n = [&](bna::cuda::DeviceBuffer& buf, const std::vector<uint16_t>& pool, size_t offset, size_t cnt) -> bna::Status {
      for (size_t x = 0; x < cnt; ++x) host[x] = pool[(x + offset) & (pool_n - 1)];
      BNA_RETURN_IF_ERROR(buf.allocate(cnt * 2));
      return bna::cuda::copy_to_device(buf.get(), host.data(), cnt * 2);
    };
    bna::Status st = upload_n(q, pool_n01, 3, nq);
    if (st.is_ok()) st = upload_n(k, pool_n01, 5'000'011, nkv);
    if (st.is_ok()) st = upload_n(v, pool_u, 11'000'027, nkv);
    if (st.is_ok()) st = o.allocate(nq * 2);
    if (st.is_ok()) st = lse.allocate(static_cast<size_t>(B * H) * 4);
    // Extras of the cache rows (only row Tk-1 is read): 2 random keys off band and landmarks.
    std::vector<int32_t> hex(static_cast<size_t>(H * Tk * C), -1);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t i = Tk - 1, hi = i - W - 1;
      int64_t cnt = 0;
      for (int tries = 0; tries < 16 && cnt < C && hi >= 0; ++tries) {
        const int64_t j = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(hi + 1)));
        if ((S > 0 && j % S == 0) || (cnt == 1 && hex[static_cast<size_t>((h * Tk + i) * C)] == j)) continue;
        hex[static_cast<size_t>((h * Tk + i) * C + cnt++)] = static_cast<int32_t>(j);
      }
    }
    if (st.is_ok()) st = ex.allocate(hex.size() * 4);
    if (st.is_ok()) st = bna::cuda::copy_to_device(ex.get(), hex.data(), hex.size() * 4);
    bna::cuda::DecodeArgs d;
    d.q = q.get(); d.k = k.get(); d.v = v.get(); d.out = o.get(); d.lse = lse.as<float>();
    d.B = B; d.Hq = H; d.Hkv = H; d.Tq = 1; d.Tk = Tk; d.dh = dh; d.dtype = bna::DType::kBF16;
    const size_t wsb = std::max(bna::cuda::decode_workspace_bytes(d, true, 0, 0, 0), bna::cuda::decode_workspace_bytes(d, false, W, S, C));
    if (st.is_ok()) st = ws.allocate(wsb);
    if (!st.is_ok()) { std::fprintf(stderr, "error: decode Tk=%lld: %s\n", static_cast<long long>(Tk), st.to_string().c_str()); return 1; }
    d.workspace = ws.get(); d.workspace_bytes = wsb;
    const int64_t pos = Tk - 1, lim = pos - W;
    const double stream_keys = static_cast<double>(std::min(pos, W) + 1 + (lim > 0 && S > 0 ? (lim - 1) / S + 1 : 0) + C);
    struct DRun { const char* name; bool dense; double keys; };
    for (const DRun run : {DRun{"streams_decode", false, stream_keys}, DRun{"dense_decode", true, static_cast<double>(Tk)}}) {
      auto launch = [&]() { return run.dense ? bna::cuda::dense_decode(d) : bna::cuda::streams_decode(d, W, S, ex.as<int32_t>(), C); };
      auto t = time_it(launch, warmup, std::max(repeats, 20));
      if (!t) { std::fprintf(stderr, "error: %s Tk=%lld: %s\n", run.name, static_cast<long long>(Tk), t.status().to_string().c_str()); return 1; }
      const double gbs = 2.0 * run.keys * static_cast<double>(dh) * 2.0 * H * B / (t->median_ms * 1e-3) / 1e9;  // K+V bytes
      std::printf("%8lld %-16s %10.4f %10.4f %10.4f %10.1f %14.1f\n", static_cast<long long>(Tk), run.name, t->median_ms,
                  t->min_ms, t->max_ms, gbs, run.keys);
      out["results"].push_back({{"kernel", run.name}, {"Tk", Tk}, {"Tq", 1}, {"median_ms", t->median_ms}, {"min_ms", t->min_ms},
                                {"max_ms", t->max_ms}, {"repeats", std::max(repeats, 20)}, {"kv_GBps", gbs},
                                {"keys_per_query", run.keys}});
    }
  }
  if (!json_path.empty()) {
    const std::string tmp = json_path + ".tmp";
    { std::ofstream f(tmp); f << out.dump(2) << "\n"; }
    if (std::rename(tmp.c_str(), json_path.c_str()) != 0) { std::fprintf(stderr, "error: cannot write %s\n", json_path.c_str()); return 1; }
  }
  return 0;
}

#else

int main() {
  std::fprintf(stderr, "error: bna_attention_cuda was built without the CUDA backend\nhint: configure with -DBNA_CUDA=ON\n");
  return 1;
}

#endif
