// bna spec validate | dump | fmt SPEC: check a .wf spec, print its normalized IR (and cache key for
// given T and H), or print / check / rewrite it in canonical layout. Work happens in bna::spec.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bna/io.hpp"
#include "bna/spec.hpp"
#include "bna/topology.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct SpecFlags {
  std::string spec;
  int64_t T = 0, H = 0;  // dump: key for these sizes when both > 0
  bool check = false, write = false;
};

const char* kSpecHint = "see docs/spec.md for the grammar; 'bna spec fmt' shows the canonical layout";

Expected<spec::GraphSpec> load_checked(const std::string& path) {
  BNA_ASSIGN_OR_RETURN(spec::GraphSpec s, spec::load_spec(path));
  s = spec::normalize(std::move(s));
  BNA_RETURN_IF_ERROR(spec::validate(s));
  return s;
}

int run_validate(const SpecFlags& f) {
  auto s = load_checked(f.spec);
  if (!s) return fail(s.status(), kSpecHint);
  std::printf("ok: %s  strategy=%s k=%lld seed=%llu window=%lld landmark_stride=%lld permute_window=%s\n",
              f.spec.c_str(), topo::strategy_name(s->strategy), (long long)s->num_cycles,
              (unsigned long long)s->seed, (long long)s->window_size, (long long)s->landmark_stride,
              s->permute_window_enabled ? std::to_string(s->permute_window_size).c_str() : "off");
  const spec::Dispatch d = spec::specialize_dispatch(*s);
  std::printf("dispatch: %s (%s)\n", d.path.c_str(), d.reason.c_str());
  return 0;
}

int run_dump(const SpecFlags& f) {
  auto s = load_checked(f.spec);
  if (!s) return fail(s.status(), kSpecHint);
  nlohmann::json j = {{"ir", nlohmann::json::parse(spec::ir_json(*s, -1))}};
  const spec::Dispatch d = spec::specialize_dispatch(*s);
  j["dispatch"] = {{"path", d.path}, {"reason", d.reason}};
  if (f.T != 0 || f.H != 0) {
    auto key = spec::cache_key(*s, f.T, f.H);
    if (!key) return fail(key.status(), "pass both --T and --H (>= 1) to print the cache key");
    j["cache_key"] = {{"hash", key->hex}, {"payload", nlohmann::json::parse(key->payload)}};
  }
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

int run_fmt(const SpecFlags& f) {
  auto text = io::read_file(f.spec);
  if (!text) return fail(text.status());
  auto doc = spec::parse_document(*text, f.spec);
  if (!doc) return fail(doc.status(), kSpecHint);
  const std::string out = spec::format(*doc);
  if (f.check) {
    if (out == *text) return 0;
    std::fprintf(stderr, "%s: not in canonical layout (run 'bna spec fmt --write %s')\n", f.spec.c_str(),
                 f.spec.c_str());
    exit_code() = 1;
    return 1;
  }
  if (f.write) {
    if (out == *text) return 0;
    if (Status st = io::write_file_atomic(f.spec, out); !st.is_ok()) return fail(st);
    return 0;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* group = ensure_subcommand(&root, "spec", "work with .wf graph specs (validate, dump, fmt)");
  auto* f = new SpecFlags();  // lives for the process

  auto* v = group->add_subcommand("validate", "parse, normalize and validate a spec");
  v->add_option("SPEC", f->spec, "graph spec file (.wf)")->required();
  v->callback([f] { run_validate(*f); });

  auto* d = group->add_subcommand("dump", "print the normalized IR as JSON (and the cache key with --T/--H)");
  d->add_option("SPEC", f->spec, "graph spec file (.wf)")->required();
  d->add_option("--T", f->T, "sequence length for the cache key");
  d->add_option("--H", f->H, "head count for the cache key");
  d->callback([f] { run_dump(*f); });

  auto* m = group->add_subcommand("fmt", "print a spec in canonical layout (comments kept)");
  m->add_option("SPEC", f->spec, "graph spec file (.wf)")->required();
  auto* check = m->add_flag("--check", f->check, "exit 1 if the file is not in canonical layout");
  m->add_flag("--write,-w", f->write, "rewrite the file in place (atomically)")->excludes(check);
  m->callback([f] { run_fmt(*f); });
});

}  // namespace
}  // namespace bna::cli
