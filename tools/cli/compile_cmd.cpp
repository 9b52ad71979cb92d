// bna compile SPEC --T N --H N [--out-root DIR] [--force] [--abi] [--json]: compiles a .wf graph spec
// into a content-addressed artifact directory (perms + rules; with --abi also the [H,T,D] graph ABI
// arrays for external tools) and reports where it is, its key, whether it was reused and how long it
// took. All work happens in bna::spec; this file only parses flags and prints.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bna/spec.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct CompileFlags {
  std::string spec;
  int64_t T = 0, H = 0;
  std::string out_root = ".cache/bna";
  bool force = false;
  bool abi = false;
  bool json = false;
};

int run_compile(const CompileFlags& f) {
  auto s = spec::load_spec(f.spec);
  if (!s) return fail(s.status(), "check the spec with 'bna spec validate " + f.spec + "'");
  spec::CompileOptions opt;
  opt.T = f.T;
  opt.H = f.H;
  opt.out_root = f.out_root;
  opt.force = f.force;
  opt.materialize_abi = f.abi;
  auto r = spec::compile(*s, opt);
  if (!r) {
    const std::string& m = r.status().message();
    const bool stale = m.find("exists but is unusable") != std::string::npos;
    return fail(r.status(), stale ? "rerun with --force to rebuild the artifact" : "");
  }
  if (f.json) {
    nlohmann::json j = {{"ok", true},
                        {"artifact_dir", r->artifact_dir},
                        {"cache_key", r->key.hex},
                        {"reused", r->reused},
                        {"seconds", r->seconds},
                        {"H", f.H},
                        {"T", f.T},
                        {"D", r->D},
                        {"abi_stored", r->abi_stored},
                        {"dispatch", {{"path", r->dispatch.path}, {"reason", r->dispatch.reason}}},
                        {"degree_mean", r->metrics.degree_mean},
                        {"reachability_proxy", r->metrics.reachability_proxy}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("artifact: %s\n", r->artifact_dir.c_str());
  std::printf("hash:     %s\n", r->key.hex.c_str());
  std::printf("status:   %s\n", r->reused ? "reused (already compiled; --force rebuilds)" : "built");
  std::printf("time:     %.1f ms\n", r->seconds * 1e3);
  std::printf("graph:    [H=%lld, T=%lld, D=%lld]  degree mean %.1f  reachability(%d hops) %.1f\n",
              (long long)f.H, (long long)f.T, (long long)r->D, r->metrics.degree_mean, r->metrics.bfs_hops,
              r->metrics.reachability_proxy);
  std::printf("stored:   perms + rules%s\n",
              r->abi_stored ? ", neigh_idx.npy + edge_type.npy [H,T,D]" : " (--abi also writes the [H,T,D] arrays)");
  std::printf("dispatch: %s (%s)\n", r->dispatch.path.c_str(), r->dispatch.reason.c_str());
  return 0;
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new CompileFlags();  // lives for the process
  auto* sub = root.add_subcommand("compile", "compile a .wf graph spec into a cached graph artifact");
  sub->add_option("SPEC", f->spec, "graph spec file (.wf)")->required();
  sub->add_option("--T", f->T, "sequence length (tokens)")->required();
  sub->add_option("--H", f->H, "number of (KV) heads")->required();
  sub->add_option("--out-root", f->out_root, "artifact cache root; artifacts go to <out-root>/<hash>")
      ->capture_default_str();
  sub->add_flag("--force", f->force, "rebuild even if the artifact exists (replaced atomically)");
  sub->add_flag("--abi", f->abi,
                "also write the graph ABI arrays neigh_idx.npy/edge_type.npy [H,T,D] for external tools "
                "(H*T*D*5 bytes)");
  sub->add_flag("--json", f->json, "print the result as JSON");
  sub->callback([f] { run_compile(*f); });
});

}  // namespace
}  // namespace bna::cli
