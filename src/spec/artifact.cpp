// Content-addressed artifacts: compile() (key -> reuse or build), load_artifact(), materialize_abi().
// An artifact is structured (schema v2): perms + the row rules in meta.json; the [H, T, D] ABI
// arrays are written only on request (materialize_abi), one head at a time through a streaming
// writer, so memory stays at one head's rows. A build writes every file into a private temporary
// sibling directory, fsyncs, and renames it to <out_root>/<hex> (with --force, or to add the ABI
// arrays, an atomic RENAME_EXCHANGE swaps it over the old one), so readers see the old artifact or
// the new one, never a mix. Reuse does a cheap structural check (meta.json names the key, T and H
// match, every file has exactly the npy header and size its shape implies); load_artifact does the
// full check (arrays, permutations, D against the rules). meta.json holds no clock time and no
// absolute path, so two builds of one key are byte-identical.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bna/io.hpp"
#include "bna/npy.hpp"
#include "bna/spec.hpp"
#include "bna/threads.hpp"
#include "spec/internal.hpp"

namespace bna::spec {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct FileSpec {
  const char* name;
  io::NpyType type;
  std::vector<int64_t> shape;
};

std::vector<FileSpec> expected_files(int64_t H, int64_t T, int64_t D, int64_t k, int64_t W, bool window_stored,
                                     bool abi_stored) {
  std::vector<FileSpec> f = {{"perm.npy", io::NpyType::kI32, {H, k, T}},
                             {"inv_perm.npy", io::NpyType::kI32, {H, k, T}}};
  if (window_stored) f.push_back({"window_idx.npy", io::NpyType::kI32, {T, W}});
  if (abi_stored) {
    f.push_back({"neigh_idx.npy", io::NpyType::kI32, {H, T, D}});
    f.push_back({"edge_type.npy", io::NpyType::kU8, {H, T, D}});
  }
  return f;
}

const FileSpec& file_named(const std::vector<FileSpec>& files, std::string_view name) {
  for (const FileSpec& f : files)
    if (name == f.name) return f;
  BNA_ASSERT(false && "file_named: not in the artifact's file list");
  return files.front();
}

// What meta.json says about how rows are formed from the stored arrays (for external readers).
constexpr const char* kRowRule =
    "row i of head h: ascending union of prev/next of i in every cycle of perm[h] (CYCLE), then "
    "max(0,i-window)..i-1 minus those (WINDOW; LANDMARK where j % landmark_stride == 0), then "
    "0, S, 2S, .. < max(0,i-window) minus cycle neighbours (LANDMARK), then i unless already present "
    "(WINDOW); padded with -1 / PAD to D; not causal";

json metrics_json(const graph::GraphMetrics& m) {
  return {{"heads", m.heads},
          {"tokens", m.tokens},
          {"max_degree", m.max_degree},
          {"degree_mean", m.degree_mean},
          {"degree_min", m.degree_min},
          {"degree_max", m.degree_max},
          {"shortcut_rate", m.shortcut_rate},
          {"reachability_proxy", m.reachability_proxy},
          {"bfs_hops", m.bfs_hops},
          {"edge_type_counts",
           {{"pad", m.edge_type_counts[0]},
            {"cycle", m.edge_type_counts[1]},
            {"window", m.edge_type_counts[2]},
            {"landmark", m.edge_type_counts[3]},
            {"rewire", m.edge_type_counts[4]}}}};
}

graph::GraphMetrics metrics_from_json(const json& j) {
  graph::GraphMetrics m;
  m.heads = j.value("heads", int64_t{0});
  m.tokens = j.value("tokens", int64_t{0});
  m.max_degree = j.value("max_degree", int64_t{0});
  m.degree_mean = j.value("degree_mean", 0.0);
  m.degree_min = j.value("degree_min", int64_t{0});
  m.degree_max = j.value("degree_max", int64_t{0});
  m.shortcut_rate = j.value("shortcut_rate", 0.0);
  m.reachability_proxy = j.value("reachability_proxy", 0.0);
  m.bfs_hops = j.value("bfs_hops", 4);
  if (j.contains("edge_type_counts")) {
    const json& c = j["edge_type_counts"];
    m.edge_type_counts[0] = c.value("pad", int64_t{0});
    m.edge_type_counts[1] = c.value("cycle", int64_t{0});
    m.edge_type_counts[2] = c.value("window", int64_t{0});
    m.edge_type_counts[3] = c.value("landmark", int64_t{0});
    m.edge_type_counts[4] = c.value("rewire", int64_t{0});
  }
  return m;
}

// The parsed and structurally checked meta.json of an artifact directory.
struct Meta {
  json j;
  std::string text, key;
  int64_t H = 0, T = 0, D = 0, k = 0, W = 0, half_width = 0;
  bool pw_enabled = false, window_stored = false, abi_stored = false;
  Dispatch dispatch;
  graph::GraphMeta gmeta;  // no cycle_perms
  graph::RowRules rules;
  graph::GraphMetrics metrics;
};

Expected<Meta> read_meta(const std::string& dir, int64_t expect_T, int64_t expect_H) {
  const std::string where = "artifact '" + dir + "'";
  auto text = io::read_file((fs::path(dir) / "meta.json").string());
  if (!text) return Status(text.status().code(), where + ": cannot read meta.json: " + text.status().message());
  Meta m;
  m.text = std::move(*text);
  m.j = json::parse(m.text, nullptr, /*allow_exceptions=*/false);
  if (m.j.is_discarded() || !m.j.is_object()) return corrupt(where + ": meta.json is not a JSON object");
  try {
    if (m.j.value("schema", std::string()) != kArtifactSchema)
      return corrupt(where + ": meta.json schema '" + m.j.value("schema", std::string()) + "', expected '" +
                     kArtifactSchema + "'");
    const std::string key = m.j.at("cache_key").get<std::string>();
    m.key = key;
    const std::string base = fs::path(dir).lexically_normal().filename().string().empty()
                                 ? fs::path(dir).lexically_normal().parent_path().filename().string()
                                 : fs::path(dir).lexically_normal().filename().string();
    if (key != base)
      return corrupt(where + ": meta.json names cache key " + key + " but the directory is '" + base +
                     "' (artifacts are content-addressed: <out_root>/<key>)");
    m.H = m.j.at("H").get<int64_t>();
    m.T = m.j.at("T").get<int64_t>();
    m.D = m.j.at("D").get<int64_t>();
    m.k = m.j.at("num_cycles").get<int64_t>();
    m.abi_stored = m.j.at("abi_stored").get<bool>();
    const json& pw = m.j.at("permute_window");
    m.pw_enabled = pw.at("enabled").get<bool>();
    m.half_width = pw.at("half_width").get<int64_t>();
    m.W = pw.at("W").get<int64_t>();
    m.window_stored = pw.at("window_idx_stored").get<bool>();
    m.dispatch.path = m.j.at("dispatch").at("path").get<std::string>();
    m.dispatch.reason = m.j.at("dispatch").at("reason").get<std::string>();
    const json& r = m.j.at("rules");
    m.gmeta.strategy = r.at("strategy").get<std::string>();
    m.gmeta.window = r.at("window").get<int64_t>();
    m.gmeta.landmark_stride = r.at("landmark_stride").get<int64_t>();
    m.gmeta.seed = r.at("seed").get<uint64_t>();
    m.gmeta.include_self = r.at("include_self").get<bool>();
    m.metrics = metrics_from_json(m.j.at("graph_metrics"));
  } catch (const json::exception& e) {
    return corrupt(where + ": meta.json: " + e.what());
  }
  if (m.T != expect_T || m.H != expect_H)
    return invalid_argument(where + " was compiled for T=" + std::to_string(m.T) + ", H=" + std::to_string(m.H) +
                            " but T=" + std::to_string(expect_T) + ", H=" + std::to_string(expect_H) +
                            " was expected; compile the spec for these sizes (bna compile SPEC --T " +
                            std::to_string(expect_T) + " --H " + std::to_string(expect_H) + ")");
  if (m.H < 1 || m.T < 1 || m.D < 1 || m.k < 1 || m.H > 65536 || m.T > INT32_MAX || m.D > m.T ||
      m.k > kMaxAbiCycles || m.half_width < 0 || m.half_width > (int64_t{1} << 20) ||
      (m.pw_enabled && m.W != 2 * m.half_width + 1) || (!m.pw_enabled && m.window_stored))
    return corrupt(where + ": meta.json has inconsistent sizes H=" + std::to_string(m.H) + " T=" + std::to_string(m.T) +
                   " D=" + std::to_string(m.D) + " k=" + std::to_string(m.k) + " W=" + std::to_string(m.W) +
                   " half_width=" + std::to_string(m.half_width));
  if (m.gmeta.window < 0 || m.gmeta.window > INT32_MAX || m.gmeta.landmark_stride < 0 ||
      m.gmeta.landmark_stride > INT32_MAX)
    return corrupt(where + ": meta.json rules window=" + std::to_string(m.gmeta.window) +
                   " landmark_stride=" + std::to_string(m.gmeta.landmark_stride) +
                   ", expected 0 <= window, landmark_stride <= 2^31-1");
  m.gmeta.num_cycles = static_cast<int>(m.k);
  m.rules.T = m.T;
  m.rules.window = m.gmeta.window;
  m.rules.landmark_stride = m.gmeta.landmark_stride;
  m.rules.include_self = m.gmeta.include_self;
  return m;
}

// Every file exists with exactly the npy header its dtype and shape give and the matching size.
Status check_files(const std::string& dir, const Meta& m) {
  for (const FileSpec& f : expected_files(m.H, m.T, m.D, m.k, m.W, m.window_stored, m.abi_stored)) {
    const fs::path p = fs::path(dir) / f.name;
    std::error_code ec;
    const uintmax_t size = fs::file_size(p, ec);
    __int128 n = 1;  // [H, T, D] from a forged meta.json must not overflow
    for (int64_t d : f.shape) n *= d;
    const std::string header = io::npy_header(f.type, f.shape);
    const __int128 want128 = static_cast<__int128>(header.size()) + n * static_cast<__int128>(io::npy_type_size(f.type));
    const uintmax_t want = want128 > static_cast<__int128>(INT64_MAX) ? UINTMAX_MAX : static_cast<uintmax_t>(want128);
    if (ec) return corrupt("artifact '" + dir + "': missing " + f.name);
    if (size != want)
      return corrupt("artifact '" + dir + "': " + f.name + " has " + std::to_string(size) + " bytes, expected " +
                     std::to_string(want));
    std::string got(header.size(), '\0');
    std::FILE* fp = std::fopen(p.c_str(), "rb");
    const bool read_ok = fp != nullptr && std::fread(got.data(), 1, got.size(), fp) == got.size();
    if (fp) std::fclose(fp);
    if (!read_ok) return io_error("artifact '" + dir + "': cannot read " + f.name + ": " + std::strerror(errno));
    if (got != header)
      return corrupt("artifact '" + dir + "': " + f.name + " header is not " + io::npy_type_descr(f.type) +
                     " with the shape meta.json records");
  }
  return Status::ok();
}

template <class T>
Expected<std::vector<T>> read_array(const std::string& dir, const FileSpec& f) {
  const std::string path = (fs::path(dir) / f.name).string();
  BNA_ASSIGN_OR_RETURN(io::NpyArray a, io::read_npy(path));
  if (a.type != f.type || a.shape != f.shape) {
    auto shape_str = [](const std::vector<int64_t>& s) {
      std::string o = "[";
      for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
      return o + "]";
    };
    return corrupt("artifact '" + dir + "': " + f.name + " is " + io::npy_type_descr(a.type) + " " +
                   shape_str(a.shape) + ", expected " + io::npy_type_descr(f.type) + " " + shape_str(f.shape));
  }
  std::vector<T> v(a.bytes.size() / sizeof(T));
  std::memcpy(v.data(), a.bytes.data(), v.size() * sizeof(T));
  return v;
}

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return io_error("artifact: cannot open '" + dir + "': " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return io_error("artifact: fsync '" + dir + "': " + std::strerror(errno));
  return Status::ok();
}

std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

// neigh_idx.npy + edge_type.npy [H, T, D], one head at a time (build_heads on that head, padded to D).
Status write_abi_files(const std::string& tmp, const Lowered& low) {
  const topo::PermsOnly& p = low.perms;
  const int64_t H = p.H, T = p.T, D = low.D, k = p.num_cycles;
  const std::vector<int64_t> shape = {H, T, D};
  BNA_ASSIGN_OR_RETURN(io::AtomicWriter ni, io::AtomicWriter::open((fs::path(tmp) / "neigh_idx.npy").string()));
  BNA_ASSIGN_OR_RETURN(io::AtomicWriter et, io::AtomicWriter::open((fs::path(tmp) / "edge_type.npy").string()));
  const std::string hi = io::npy_header(io::NpyType::kI32, shape), ht = io::npy_header(io::NpyType::kU8, shape);
  BNA_RETURN_IF_ERROR(ni.write(hi.data(), hi.size()));
  BNA_RETURN_IF_ERROR(et.write(ht.data(), ht.size()));
  topo::PermsOnly one;
  one.H = 1;
  one.T = T;
  one.num_cycles = k;
  std::vector<int32_t> pad_idx;
  std::vector<uint8_t> pad_ty;
  for (int64_t h = 0; h < H; ++h) {
    one.perm.assign(p.perm_of(h, 0), p.perm_of(h, 0) + k * T);
    one.inv.assign(p.inv_of(h, 0), p.inv_of(h, 0) + k * T);
    BNA_ASSIGN_OR_RETURN(graph::GraphAbi g, materialize_rows(one, low.rules));
    if (g.D > D)
      return internal_error("artifact: head " + std::to_string(h) + " has D=" + std::to_string(g.D) +
                            " but the rules give D=" + std::to_string(D));
    if (g.D == D) {
      BNA_RETURN_IF_ERROR(ni.write(g.neigh_idx.data(), g.neigh_idx.size() * sizeof(int32_t)));
      BNA_RETURN_IF_ERROR(et.write(g.edge_type.data(), g.edge_type.size()));
      continue;
    }
    pad_idx.assign(static_cast<size_t>(T * D), -1);
    pad_ty.assign(static_cast<size_t>(T * D), static_cast<uint8_t>(graph::EdgeType::kPad));
    for (int64_t i = 0; i < T; ++i) {
      std::memcpy(pad_idx.data() + i * D, g.row(0, i), static_cast<size_t>(g.D) * sizeof(int32_t));
      std::memcpy(pad_ty.data() + i * D, g.row_types(0, i), static_cast<size_t>(g.D));
    }
    BNA_RETURN_IF_ERROR(ni.write(pad_idx.data(), pad_idx.size() * sizeof(int32_t)));
    BNA_RETURN_IF_ERROR(et.write(pad_ty.data(), pad_ty.size()));
  }
  BNA_RETURN_IF_ERROR(ni.commit());
  return et.commit();
}

Status write_files(const std::string& tmp, const Lowered& low, const PermuteWindow& pw, const Dispatch& dispatch,
                   const CacheKey& key, const GraphSpec& s, bool with_abi) {
  const topo::PermsOnly& p = low.perms;
  const int64_t k = p.num_cycles;
  const bool stored = !pw.window_idx.empty();
  const auto files = expected_files(p.H, p.T, low.D, k, pw.W, stored, with_abi);
  json file_list = json::object();
  for (const FileSpec& f : files) {
    const std::string name = f.name;
    const void* data = name == "perm.npy"         ? static_cast<const void*>(p.perm.data())
                       : name == "inv_perm.npy"   ? static_cast<const void*>(p.inv.data())
                       : name == "window_idx.npy" ? static_cast<const void*>(pw.window_idx.data())
                                                  : nullptr;
    if (data != nullptr)
      BNA_RETURN_IF_ERROR(io::write_npy((fs::path(tmp) / f.name).string(), f.type, f.shape, data));
    file_list[f.name] = {{"dtype", io::npy_type_descr(f.type)}, {"shape", f.shape}};
  }
  if (with_abi) BNA_RETURN_IF_ERROR(write_abi_files(tmp, low));
  const json meta = {
      {"schema", kArtifactSchema},
      {"cache_key", key.hex},
      {"key_payload", json::parse(key.payload)},
      {"H", p.H},
      {"T", p.T},
      {"D", low.D},
      {"num_cycles", k},
      {"abi_stored", with_abi},
      {"files", file_list},
      {"rules",
       {{"strategy", low.meta.strategy},
        {"seed", low.meta.seed},
        {"window", low.rules.window},
        {"landmark_stride", low.rules.landmark_stride},
        {"include_self", low.rules.include_self},
        {"rows", kRowRule}}},
      {"permute_window",
       {{"enabled", pw.enabled}, {"half_width", pw.half_width}, {"W", pw.W}, {"window_idx_stored", stored}}},
      {"dispatch", {{"path", dispatch.path}, {"reason", dispatch.reason}}},
      {"graph_metrics", metrics_json(low.metrics)},
      {"degree_bound", s.degree ? json(*s.degree) : json(nullptr)},
  };
  BNA_RETURN_IF_ERROR(io::write_file_atomic((fs::path(tmp) / "meta.json").string(), meta.dump(2) + "\n"));
  return fsync_dir(tmp);
}

// Moves the finished temporary directory to `dir`. Returns true when it was installed, false when
// another process installed the same key first (the caller then reuses that one).
Expected<bool> install(const std::string& tmp, const std::string& dir, bool replace) {
  const std::string root = fs::path(dir).parent_path().string();
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (::rename(tmp.c_str(), dir.c_str()) == 0) {
      BNA_RETURN_IF_ERROR(fsync_dir(root));
      return true;
    }
    if (errno != EEXIST && errno != ENOTEMPTY)
      return io_error("artifact: rename '" + tmp + "' -> '" + dir + "': " + std::strerror(errno));
    if (!replace) return false;
  } else if (!replace) {
    return false;
  }
  // Replace: swap atomically where the kernel supports it, else move the old one aside first.
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    const std::string old = dir + ".old-" + unique_suffix();
    if (::rename(dir.c_str(), old.c_str()) != 0 || ::rename(tmp.c_str(), dir.c_str()) != 0)
      return io_error("artifact: replace '" + dir + "': " + std::strerror(errno));
    fs::remove_all(old, ec);
  } else {
    fs::remove_all(tmp, ec);  // tmp now holds the old artifact
  }
  BNA_RETURN_IF_ERROR(fsync_dir(root));
  return true;
}

void fill_from_meta(CompileResult& r, const Meta& m) {
  r.D = m.D;
  r.dispatch = m.dispatch;
  r.metrics = m.metrics;
  r.abi_stored = m.abi_stored;
}

}  // namespace

Expected<CompileResult> compile(const GraphSpec& spec, const CompileOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  CompileResult r;
  r.spec = normalize(spec);
  BNA_RETURN_IF_ERROR(validate(r.spec));
  BNA_ASSIGN_OR_RETURN(r.key, cache_key(r.spec, opt.T, opt.H));
  if (opt.out_root.empty()) return invalid_argument("compile: out_root is empty, expected a directory");
  r.artifact_dir = (fs::path(opt.out_root) / r.key.hex).string();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  // Reuses the existing artifact: true when it is usable as is, false when it lacks the ABI arrays
  // that materialize_abi asks for (the caller then rebuilds and swaps it).
  auto reuse = [&]() -> Expected<bool> {
    auto m = read_meta(r.artifact_dir, opt.T, opt.H);
    Status st = m ? check_files(r.artifact_dir, *m) : m.status();
    if (!st.is_ok())
      return Status(st.code(), "compile: the artifact for key " + r.key.hex + " exists but is unusable (" +
                                   st.message() + "); rebuild it with force (bna compile --force)");
    if (opt.materialize_abi && !m->abi_stored) return false;
    fill_from_meta(r, *m);
    r.reused = true;
    r.seconds = seconds();
    return true;
  };
  std::error_code ec;
  bool replace = opt.force;
  if (!opt.force && fs::exists(r.artifact_dir, ec)) {
    BNA_ASSIGN_OR_RETURN(bool reused, reuse());
    if (reused) return r;
    replace = true;  // same graph, plus the ABI arrays: rebuilt and swapped in atomically
  }

  BNA_ASSIGN_OR_RETURN(Lowered low, lower(r.spec, opt.T, opt.H));
  const PermuteWindow pw = specialize_permute_window(r.spec, opt.T, opt.max_window_idx_bytes);
  r.dispatch = specialize_dispatch(r.spec);
  r.D = low.D;
  r.metrics = low.metrics;
  r.abi_stored = opt.materialize_abi;

  fs::create_directories(opt.out_root, ec);
  if (ec) return io_error("compile: cannot create out_root '" + opt.out_root + "': " + ec.message());
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::string tmp = (fs::path(opt.out_root) / (".tmp-" + r.key.hex + "-" + unique_suffix())).string();
    fs::create_directory(tmp, ec);
    if (ec) return io_error("compile: cannot create '" + tmp + "': " + ec.message());
    Status st = write_files(tmp, low, pw, r.dispatch, r.key, r.spec, opt.materialize_abi);
    Expected<bool> installed = st.is_ok() ? install(tmp, r.artifact_dir, replace) : Expected<bool>(st);
    if (!installed || !*installed) fs::remove_all(tmp, ec);
    if (!installed) return installed.status();
    if (*installed) {
      r.seconds = seconds();
      return r;
    }
    // Lost a race against another compile of the same key: use its artifact unless it lacks the ABI.
    BNA_ASSIGN_OR_RETURN(bool reused, reuse());
    if (reused) return r;
    replace = true;
  }
  return internal_error("compile: the artifact for key " + r.key.hex + " was replaced concurrently twice");
}

Expected<CompileResult> compile_file(const std::string& spec_path, const CompileOptions& opt) {
  BNA_ASSIGN_OR_RETURN(GraphSpec s, load_spec(spec_path));
  return compile(s, opt);
}

Expected<Artifact> load_artifact(const std::string& dir, int64_t expect_T, int64_t expect_H) {
  BNA_ASSIGN_OR_RETURN(Meta m, read_meta(dir, expect_T, expect_H));
  BNA_RETURN_IF_ERROR(check_files(dir, m));
  const auto files = expected_files(m.H, m.T, m.D, m.k, m.W, m.window_stored, m.abi_stored);
  Artifact a;
  a.dir = dir;
  a.cache_key = m.key;
  a.meta_json = m.text;
  a.dispatch = m.dispatch;
  a.meta = m.gmeta;
  a.rules = m.rules;
  a.D = m.D;
  a.metrics = m.metrics;
  a.abi_stored = m.abi_stored;
  topo::PermsOnly& p = a.perms;
  p.H = m.H;
  p.T = m.T;
  p.num_cycles = m.k;
  BNA_ASSIGN_OR_RETURN(p.perm, read_array<int32_t>(dir, file_named(files, "perm.npy")));
  BNA_ASSIGN_OR_RETURN(p.inv, read_array<int32_t>(dir, file_named(files, "inv_perm.npy")));
  const int64_t hk = m.H * m.k;
  std::vector<Status> bad(static_cast<size_t>(hk));
  parallel_for(0, hk, [&](int64_t i) {
    std::vector<uint8_t> seen;
    bad[i] = detail::check_perm_pair(p.perm.data() + i * m.T, p.inv.data() + i * m.T, m.T, seen);
  });
  for (int64_t i = 0; i < hk; ++i)
    if (!bad[i].is_ok())
      return corrupt("artifact '" + dir + "': perm.npy / inv_perm.npy head " + std::to_string(i / m.k) + " cycle " +
                     std::to_string(i % m.k) + ": " + bad[i].message());
  // Every cycle is a permutation, so the backbone is Hamiltonian; D must be what the rules give.
  const int64_t D = rule_row_width(p, a.rules);
  if (D != m.D)
    return corrupt("artifact '" + dir + "': meta.json records D=" + std::to_string(m.D) + " but its perms and rules (window " +
                   std::to_string(a.rules.window) + ", landmark stride " + std::to_string(a.rules.landmark_stride) +
                   ") give D=" + std::to_string(D));

  a.permute.enabled = m.pw_enabled;
  a.permute.half_width = m.half_width;
  a.permute.W = m.W;
  if (m.pw_enabled) {
    std::vector<int32_t> derived = derive_window_idx(m.T, m.half_width);
    if (m.window_stored) {
      BNA_ASSIGN_OR_RETURN(a.permute.window_idx, read_array<int32_t>(dir, file_named(files, "window_idx.npy")));
      if (a.permute.window_idx != derived)
        return corrupt("artifact '" + dir + "': window_idx.npy differs from clamp(t + c - w, 0, T - 1)");
    } else {
      a.permute.window_idx = std::move(derived);
    }
  }
  return a;
}

Expected<graph::GraphAbi> materialize_abi(const Artifact& a) {
  BNA_ASSIGN_OR_RETURN(graph::GraphAbi g, materialize_rows(a.perms, a.rules));
  if (g.D != a.D)
    return internal_error("artifact '" + a.dir + "': rows have D=" + std::to_string(g.D) + ", the artifact records D=" +
                          std::to_string(a.D));
  auto cycles = std::move(g.meta.cycle_perms);
  g.meta = a.meta;
  g.meta.num_cycles = static_cast<int>(a.perms.num_cycles);
  g.meta.cycle_perms = std::move(cycles);
  return g;
}

Status verify_stored_abi(const Artifact& a) {
  if (!a.abi_stored)
    return invalid_argument("artifact '" + a.dir +
                            "' has no neigh_idx.npy / edge_type.npy (compile with --abi to store them)");
  const std::vector<int64_t> shape = {a.perms.H, a.perms.T, a.D};
  BNA_ASSIGN_OR_RETURN(auto idx, read_array<int32_t>(a.dir, {"neigh_idx.npy", io::NpyType::kI32, shape}));
  BNA_ASSIGN_OR_RETURN(auto ty, read_array<uint8_t>(a.dir, {"edge_type.npy", io::NpyType::kU8, shape}));
  BNA_ASSIGN_OR_RETURN(graph::GraphAbi g, materialize_abi(a));
  for (size_t e = 0; e < idx.size(); ++e) {
    if (idx[e] == g.neigh_idx[e] && ty[e] == g.edge_type[e]) continue;
    const int64_t D = a.D, row = static_cast<int64_t>(e) / D;
    const bool is_idx = idx[e] != g.neigh_idx[e];
    return corrupt("artifact '" + a.dir + "': " + (is_idx ? "neigh_idx.npy" : "edge_type.npy") + " head " +
                   std::to_string(row / a.perms.T) + " row " + std::to_string(row % a.perms.T) + " col " +
                   std::to_string(static_cast<int64_t>(e) % D) + ": stored " +
                   std::to_string(is_idx ? idx[e] : ty[e]) + ", the perms and rules give " +
                   std::to_string(is_idx ? g.neigh_idx[e] : g.edge_type[e]));
  }
  return Status::ok();
}

}  // namespace bna::spec
