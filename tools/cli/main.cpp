// bna: the command-line front end. Subcommands register themselves (see cli.hpp).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "bna/attention.hpp"
#include "bna/log.hpp"
#include "cli.hpp"

namespace bna::cli {

std::vector<CommandSetup>& command_registry() {
  static std::vector<CommandSetup> r;
  return r;
}

int& exit_code() {
  static int code = 0;
  return code;
}

int fail(const Status& st, const std::string& hint) {
  std::fprintf(stderr, "error: %s\n", st.message().c_str());
  if (!hint.empty()) std::fprintf(stderr, "hint: %s\n", hint.c_str());
  const bool run_failed = st.code() == StatusCode::kInternal || st.code() == StatusCode::kUnavailable;
  exit_code() = run_failed ? 1 : 2;
  return exit_code();
}

int fail_usage(const std::string& message, const std::string& hint) {
  return fail(invalid_argument(message), hint);
}

int fail_cuda_load(const Status& st) {
  if (st.code() == StatusCode::kUnavailable && !attn::cuda_available())
    return fail_usage(st.message(), "--backend cuda needs an NVIDIA GPU and bna built with CUDA; use --backend cpu");
  return fail(st, st.code() == StatusCode::kUnimplemented ? "--backend cpu runs every supported architecture" : "");
}

CLI::App* ensure_subcommand(CLI::App* parent, const std::string& name, const std::string& description) {
  for (CLI::App* s : parent->get_subcommands([](CLI::App*) { return true; }))
    if (s->get_name() == name) return s;
  CLI::App* s = parent->add_subcommand(name, description);
  s->require_subcommand(1);
  return s;
}

void add_graph_flags(CLI::App* app, GraphFlags& f) {
  app->add_option("--T", f.T, "sequence length (tokens)")->capture_default_str();
  app->add_option("--H", f.H, "number of (KV) heads")->capture_default_str();
  app->add_option("--window", f.window, "causal window W (past tokens)")->capture_default_str();
  app->add_option("--landmark-stride", f.landmark_stride, "landmark stride S (0 = none)")->capture_default_str();
  app->add_option("--strategy", f.strategy,
                  "cycle strategy: random, greedy, online_insertion, regular_partition, edge_disjoint, covering")
      ->capture_default_str();
  app->add_option("--cycles", f.cycles, "number of Hamiltonian cycles per head")->capture_default_str();
  app->add_option("--seed", f.seed, "base seed (head h uses seed + 7919*h)")->capture_default_str();
}

}  // namespace bna::cli

namespace {

// OpenMP teams spin between parallel regions by default, and on a machine with few cores the
// spinning workers take the cores OpenBLAS's own threads need: on this project's 2-core box at 2
// threads, paged decode in `bna bench model` ran 66-80 tok/s with the default policy against
// 205-236 passive, prefill 6.6-7.5k against 8.4-8.9k tok/s (bench/results/cpu-omp-wait-policy-2026-11-27.txt).
// libgomp reads OMP_WAIT_POLICY once, when it is loaded, before main; so when the user has not chosen
// a policy, bna sets passive and executes itself again (the variable then set, there is no second
// exec; set OMP_WAIT_POLICY to any value to skip it, e.g. under a debugger). If the exec fails, the
// variable is removed again (the process keeps the default policy, and so do its children).
void prefer_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OMP_WAIT_POLICY");
}

}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp(argv);
  bna::set_log_sink([](bna::LogLevel lvl, std::string_view msg) {
    static const char* names[] = {"debug", "info", "warn", "error"};
    std::fprintf(stderr, "[bna %s] %.*s\n", names[static_cast<int>(lvl)], static_cast<int>(msg.size()), msg.data());
  });
  CLI::App app{"bna: Butterfly graph-structured sparse attention"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("bna ") + "0.1.0");
  app.footer("Threads: OMP_NUM_THREADS. Unless OMP_WAIT_POLICY is set, bna runs itself once more with "
             "OMP_WAIT_POLICY=passive (idle OpenMP threads sleep instead of spinning).");
  for (auto& setup : bna::cli::command_registry()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    std::fprintf(stderr, "hint: run 'bna --help' (or 'bna <command> --help') for usage\n");
    return 2;
  }
  return bna::cli::exit_code();
}
