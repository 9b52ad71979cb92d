// Shared plumbing of the bna CLI: subcommand registration, error reporting and exit codes.
// Exit codes: 0 success, 1 a run that failed (e.g. a check did not pass), 2 bad usage or input.
// Each subcommand lives in its own file and registers itself with BNA_CLI_COMMAND; no math here.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "bna/status.hpp"

namespace bna::cli {

using CommandSetup = std::function<void(CLI::App& root)>;
std::vector<CommandSetup>& command_registry();
inline bool register_command(CommandSetup s) { command_registry().push_back(std::move(s)); return true; }

// The process exit code set by a subcommand callback.
int& exit_code();
// Print "error: <message>" (and "hint: <hint>" when given) to stderr; returns and records the exit
// code: 1 for kInternal/kUnavailable (a failed run), 2 for everything a user caused.
int fail(const Status& st, const std::string& hint = "");
int fail_usage(const std::string& message, const std::string& hint = "");
// A failed hf::CudaModel / model::CudaGpt load: exit 2 with a hint when the machine has no GPU or
// the build has no CUDA (a usage problem here, not a failed run), else as fail().
int fail_cuda_load(const Status& st);

// The subcommand `name` of `parent`, created with `description` if it does not exist yet, so several
// files can add children to one group (e.g. `bna graph build` and `bna graph analyze`).
CLI::App* ensure_subcommand(CLI::App* parent, const std::string& name, const std::string& description);

// The same graph flags everywhere (graph build, compile, demo, bench).
struct GraphFlags {
  int64_t T = 4096;
  int64_t H = 8;
  int64_t window = 64;
  int64_t landmark_stride = 64;
  std::string strategy = "random";
  int64_t cycles = 1;
  uint64_t seed = 0;
};
void add_graph_flags(CLI::App* app, GraphFlags& f);

}  // namespace bna::cli

#define BNA_CLI_CONCAT_(a, b) a##b
#define BNA_CLI_CONCAT(a, b) BNA_CLI_CONCAT_(a, b)
#define BNA_CLI_COMMAND(fn) \
  static const bool BNA_CLI_CONCAT(bna_cli_reg_, __LINE__) = ::bna::cli::register_command(fn)
