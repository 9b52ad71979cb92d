// Content-addressed artifacts: compile() (key -> reuse or build) and load_artifact().
// A build writes every file into a private temporary sibling directory, fsyncs, and renames it to
// <out_root>/<hex> (with --force an atomic RENAME_EXCHANGE swaps it over the old one), so readers see
// the old artifact or the new one, never a mix. Reuse does a cheap structural check (meta.json names
// the key, T and H match, every file has exactly the size its header and shape imply); load_artifact
// does the full check (arrays, permutations, graph::validate). meta.json holds no clock time and no
// absolute path, so two builds of one key are byte-identical.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "bna/io.hpp"
#include "bna/npy.hpp"
#include "bna/spec.hpp"
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

std::vector<FileSpec> expected_files(int64_t H, int64_t T, int64_t D, int64_t k, int64_t W, bool window_stored) {
  std::vector<FileSpec> f = {{"neigh_idx.npy", io::NpyType::kI32, {H, T, D}},
                             {"edge_type.npy", io::NpyType::kU8, {H, T, D}},
                             {"perm.npy", io::NpyType::kI32, {H, k, T}},
                             {"inv_perm.npy", io::NpyType::kI32, {H, k, T}}};
  if (window_stored) f.push_back({"window_idx.npy", io::NpyType::kI32, {T, W}});
  return f;
}

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
           {{"cycle", m.edge_type_counts[1]},
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
  bool pw_enabled = false, window_stored = false;
  Dispatch dispatch;
  graph::GraphMeta gmeta;
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
    const json& pw = m.j.at("permute_window");
    m.pw_enabled = pw.at("enabled").get<bool>();
    m.half_width = pw.at("half_width").get<int64_t>();
    m.W = pw.at("W").get<int64_t>();
    m.window_stored = pw.at("window_idx_stored").get<bool>();
    m.dispatch.path = m.j.at("dispatch").at("path").get<std::string>();
    m.dispatch.reason = m.j.at("dispatch").at("reason").get<std::string>();
    const json& gm = m.j.at("graph_meta");
    m.gmeta.strategy = gm.at("strategy").get<std::string>();
    m.gmeta.window = gm.at("window").get<int64_t>();
    m.gmeta.landmark_stride = gm.at("landmark_stride").get<int64_t>();
    m.gmeta.seed = gm.at("seed").get<uint64_t>();
    m.gmeta.include_self = gm.at("include_self").get<bool>();
    m.metrics = metrics_from_json(m.j.at("graph_metrics"));
  } catch (const json::exception& e) {
    return corrupt(where + ": meta.json: " + e.what());
  }
  if (m.T != expect_T || m.H != expect_H)
    return invalid_argument(where + " was compiled for T=" + std::to_string(m.T) + ", H=" + std::to_string(m.H) +
                            " but T=" + std::to_string(expect_T) + ", H=" + std::to_string(expect_H) +
                            " was expected; compile the spec for these sizes (bna compile SPEC --T " +
                            std::to_string(expect_T) + " --H " + std::to_string(expect_H) + ")");
  if (m.H < 1 || m.T < 1 || m.D < 1 || m.k < 1 || m.H > 65536 || m.T > INT32_MAX || m.D > m.T + 1 ||
      m.k > 4096 || m.half_width < 0 || (m.pw_enabled && m.W != 2 * m.half_width + 1))
    return corrupt(where + ": meta.json has inconsistent sizes H=" + std::to_string(m.H) + " T=" + std::to_string(m.T) +
                   " D=" + std::to_string(m.D) + " k=" + std::to_string(m.k) + " W=" + std::to_string(m.W));
  return m;
}

// Every file exists with exactly the byte size of its npy header plus data.
Status check_file_sizes(const std::string& dir, const Meta& m) {
  for (const FileSpec& f : expected_files(m.H, m.T, m.D, m.k, m.W, m.window_stored)) {
    const fs::path p = fs::path(dir) / f.name;
    std::error_code ec;
    const uintmax_t size = fs::file_size(p, ec);
    int64_t n = 1;
    for (int64_t d : f.shape) n *= d;
    const uintmax_t want = io::npy_header(f.type, f.shape).size() + static_cast<uintmax_t>(n) * io::npy_type_size(f.type);
    if (ec) return corrupt("artifact '" + dir + "': missing " + f.name);
    if (size != want)
      return corrupt("artifact '" + dir + "': " + f.name + " has " + std::to_string(size) + " bytes, expected " +
                     std::to_string(want));
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

Status write_files(const std::string& tmp, const Lowered& low, const PermuteWindow& pw, const Dispatch& dispatch,
                   const CacheKey& key, const GraphSpec& s) {
  const graph::GraphAbi& g = low.abi;
  const int64_t k = low.perms.num_cycles;
  const bool stored = !pw.window_idx.empty();
  const auto files = expected_files(g.H, g.T, g.D, k, pw.W, stored);
  const void* data[] = {g.neigh_idx.data(), g.edge_type.data(), low.perms.perm.data(), low.perms.inv.data(),
                        pw.window_idx.data()};
  json file_list = json::object();
  for (size_t i = 0; i < files.size(); ++i) {
    BNA_RETURN_IF_ERROR(io::write_npy((fs::path(tmp) / files[i].name).string(), files[i].type, files[i].shape, data[i]));
    file_list[files[i].name] = {{"dtype", io::npy_type_descr(files[i].type)}, {"shape", files[i].shape}};
  }
  const json meta = {
      {"schema", kArtifactSchema},
      {"cache_key", key.hex},
      {"key_payload", json::parse(key.payload)},
      {"H", g.H},
      {"T", g.T},
      {"D", g.D},
      {"num_cycles", k},
      {"files", file_list},
      {"permute_window",
       {{"enabled", pw.enabled}, {"half_width", pw.half_width}, {"W", pw.W}, {"window_idx_stored", stored}}},
      {"dispatch", {{"path", dispatch.path}, {"reason", dispatch.reason}}},
      {"graph_metrics", metrics_json(low.metrics)},
      {"graph_meta",
       {{"strategy", g.meta.strategy},
        {"window", g.meta.window},
        {"landmark_stride", g.meta.landmark_stride},
        {"num_cycles", g.meta.num_cycles},
        {"seed", g.meta.seed},
        {"include_self", g.meta.include_self}}},
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
  auto reuse = [&]() -> Status {
    auto m = read_meta(r.artifact_dir, opt.T, opt.H);
    Status st = m ? check_file_sizes(r.artifact_dir, *m) : m.status();
    if (!st.is_ok())
      return Status(st.code(), "compile: the artifact for key " + r.key.hex + " exists but is unusable (" +
                                   st.message() + "); rebuild it with force (bna compile --force)");
    fill_from_meta(r, *m);
    r.reused = true;
    r.seconds = seconds();
    return Status::ok();
  };
  std::error_code ec;
  if (!opt.force && fs::exists(r.artifact_dir, ec)) {
    BNA_RETURN_IF_ERROR(reuse());
    return r;
  }

  BNA_ASSIGN_OR_RETURN(Lowered low, lower(r.spec, opt.T, opt.H));
  const PermuteWindow pw = specialize_permute_window(r.spec, opt.T, opt.max_window_idx_bytes);
  r.dispatch = specialize_dispatch(r.spec);
  r.D = low.abi.D;
  r.metrics = low.metrics;

  fs::create_directories(opt.out_root, ec);
  if (ec) return io_error("compile: cannot create out_root '" + opt.out_root + "': " + ec.message());
  const std::string tmp = (fs::path(opt.out_root) / (".tmp-" + r.key.hex + "-" + unique_suffix())).string();
  fs::create_directory(tmp, ec);
  if (ec) return io_error("compile: cannot create '" + tmp + "': " + ec.message());
  Status st = write_files(tmp, low, pw, r.dispatch, r.key, r.spec);
  Expected<bool> installed = st.is_ok() ? install(tmp, r.artifact_dir, opt.force) : Expected<bool>(st);
  if (!installed || !*installed) fs::remove_all(tmp, ec);
  if (!installed) return installed.status();
  if (!*installed) {  // lost a race against another compile of the same key
    BNA_RETURN_IF_ERROR(reuse());
    return r;
  }
  r.seconds = seconds();
  return r;
}

Expected<CompileResult> compile_file(const std::string& spec_path, const CompileOptions& opt) {
  BNA_ASSIGN_OR_RETURN(GraphSpec s, load_spec(spec_path));
  return compile(s, opt);
}

Expected<Artifact> load_artifact(const std::string& dir, int64_t expect_T, int64_t expect_H) {
  BNA_ASSIGN_OR_RETURN(Meta m, read_meta(dir, expect_T, expect_H));
  BNA_RETURN_IF_ERROR(check_file_sizes(dir, m));
  const auto files = expected_files(m.H, m.T, m.D, m.k, m.W, m.window_stored);
  Artifact a;
  a.dir = dir;
  a.cache_key = m.key;
  a.meta_json = m.text;
  a.dispatch = m.dispatch;
  graph::GraphAbi& g = a.abi;
  g.H = m.H;
  g.T = m.T;
  g.D = m.D;
  BNA_ASSIGN_OR_RETURN(g.neigh_idx, read_array<int32_t>(dir, files[0]));
  BNA_ASSIGN_OR_RETURN(g.edge_type, read_array<uint8_t>(dir, files[1]));
  topo::PermsOnly& p = a.perms;
  p.H = m.H;
  p.T = m.T;
  p.num_cycles = m.k;
  BNA_ASSIGN_OR_RETURN(p.perm, read_array<int32_t>(dir, files[2]));
  BNA_ASSIGN_OR_RETURN(p.inv, read_array<int32_t>(dir, files[3]));
  g.meta.cycle_perms.assign(static_cast<size_t>(m.H), {});
  for (int64_t h = 0; h < m.H; ++h) {
    for (int64_t c = 0; c < m.k; ++c) {
      topo::Perm perm(p.perm_of(h, c), p.perm_of(h, c) + m.T);
      if (Status st = topo::validate_perm(perm, m.T); !st.is_ok())
        return corrupt("artifact '" + dir + "': perm.npy head " + std::to_string(h) + " cycle " + std::to_string(c) +
                       ": " + st.message());
      const int32_t* inv = p.inv_of(h, c);
      for (int64_t i = 0; i < m.T; ++i)
        if (inv[perm[i]] != i)
          return corrupt("artifact '" + dir + "': inv_perm.npy head " + std::to_string(h) + " cycle " +
                         std::to_string(c) + " is not the inverse of perm.npy at position " + std::to_string(i));
      g.meta.cycle_perms[h].push_back(std::move(perm));
    }
  }
  auto cycles = std::move(g.meta.cycle_perms);
  g.meta = m.gmeta;
  g.meta.cycle_perms = std::move(cycles);
  g.meta.num_cycles = static_cast<int>(m.k);
  graph::ValidateOptions vo;
  vo.expect_heads = m.H;
  vo.expect_tokens = m.T;
  vo.enforce_hamiltonian = true;
  if (Status st = graph::validate(g, vo); !st.is_ok())
    return corrupt("artifact '" + dir + "': " + st.message());

  a.permute.enabled = m.pw_enabled;
  a.permute.half_width = m.half_width;
  a.permute.W = m.W;
  if (m.pw_enabled) {
    std::vector<int32_t> derived = derive_window_idx(m.T, m.half_width);
    if (m.window_stored) {
      BNA_ASSIGN_OR_RETURN(a.permute.window_idx, read_array<int32_t>(dir, files[4]));
      if (a.permute.window_idx != derived)
        return corrupt("artifact '" + dir + "': window_idx.npy differs from clamp(t + c - w, 0, T - 1)");
    } else {
      a.permute.window_idx = std::move(derived);
    }
  }
  return a;
}

}  // namespace bna::spec
