// CUDA forward benchmark: dense causal and streams (window W + landmarks every S + C gathered extras
// per row) at B=1, H=32, dh=128, bf16, T in {4k, 16k, 64k} by default.
// Timing: CUDA events around each launch, warm-up first, median (and min/max) of the repeats.
// Useful TFLOP/s counts only allowed (query, key) pairs, 4*dh flops each (QK^T and PV).
// Usage: bna_attention_cuda [--T 4096,16384,65536] [--repeats 10] [--warmup 3] [--json out.json]
//        [--commit SHA]
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/dtype.hpp"
#include "bna/rng.hpp"

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
    v.push_back(std::stoll(s.substr(pos, e - pos)));
    pos = e + 1;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> Ts = {4096, 16384, 65536};
  int repeats = 10, warmup = 3;
  std::string json_path, commit = "unknown";
  const int64_t B = 1, H = 32, dh = 128, W = 64, S = 64, C = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "error: %s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--T") Ts = parse_list(next());
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
  std::printf("%8s %-8s %10s %10s %10s %10s %14s\n", "T", "kernel", "median_ms", "min_ms", "max_ms", "TFLOP/s", "pairs/query");
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
          if (j % S == 0 || (cnt == 1 && hex[static_cast<size_t>((h * T + i) * C)] == j)) continue;
          hex[static_cast<size_t>((h * T + i) * C + cnt++)] = static_cast<int32_t>(j);
        }
        const int64_t lim = i - W;  // landmarks j = m*S < i - W
        stream_pairs += static_cast<double>(std::min(i, W) + 1 + (lim > 0 ? (lim - 1) / S + 1 : 0) + cnt);
      }
    if (st.is_ok()) st = ex.allocate(hex.size() * 4);
    if (st.is_ok()) st = bna::cuda::copy_to_device(ex.get(), hex.data(), hex.size() * 4);
    if (!st.is_ok()) { std::fprintf(stderr, "error: T=%lld: %s\n", static_cast<long long>(T), st.to_string().c_str()); return 1; }

    bna::cuda::AttnArgs a;
    a.q = q.get(); a.k = k.get(); a.v = v.get(); a.out = o.get(); a.lse = lse.as<float>();
    a.B = B; a.Hq = H; a.Hkv = H; a.T = T; a.dh = dh; a.dtype = bna::DType::kBF16;
    const double dense_pairs = static_cast<double>(H) * static_cast<double>(T) * static_cast<double>(T + 1) / 2.0;
    struct Run { const char* name; double pairs; };
    for (const Run run : {Run{"streams", stream_pairs}, Run{"dense", dense_pairs}}) {
      const bool dense = std::string(run.name) == "dense";
      auto launch = [&]() {
        return dense ? bna::cuda::dense_causal_fwd(a) : bna::cuda::streams_fwd(a, W, S, ex.as<int32_t>(), C);
      };
      const int reps = dense && T >= 65536 ? std::min(repeats, 5) : repeats;
      auto t = time_it(launch, warmup, reps);
      if (!t) { std::fprintf(stderr, "error: %s T=%lld: %s\n", run.name, static_cast<long long>(T), t.status().to_string().c_str()); return 1; }
      const double tflops = 4.0 * static_cast<double>(dh) * run.pairs * B / (t->median_ms * 1e-3) / 1e12;
      const double ppq = run.pairs / static_cast<double>(H * T);
      std::printf("%8lld %-8s %10.3f %10.3f %10.3f %10.1f %14.1f\n", static_cast<long long>(T), run.name,
                  t->median_ms, t->min_ms, t->max_ms, tflops, ppq);
      out["results"].push_back({{"kernel", run.name}, {"T", T}, {"median_ms", t->median_ms}, {"min_ms", t->min_ms},
                                {"max_ms", t->max_ms}, {"repeats", reps}, {"useful_tflops", tflops},
                                {"pairs_per_query", ppq}});
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
