// The .wf graph-spec compiler: language front end (lexer, parser, formatter), the GraphSpec IR, its
// passes (normalize -> validate -> lower -> permute-window and dispatch specialization -> cache key)
// and content-addressed artifacts. docs/spec.md has the grammar (EBNF), the key and the layout.
//
// Decisions a reader must know:
//  * The grammar is the original's (every section and schedule form) tightened under a new schema:
//    `;` comments, string escapes, typed atoms (a quoted "64" is a string, never a number), errors for
//    unknown sections/keys, duplicates and malformed values, each as "file:line:col: message".
//  * The artifact is a pure function of the cache key. The key holds only what changes the graph
//    (T, H, strategy and its parameters, window, stride, permute window, the builder version, the
//    routing file's SHA-256), never dtype, paths, comments or training-time schedules. So schedules
//    and edge-logit biases live in the spec and the CompileResult, not in the artifact.
//  * The artifact is STRUCTURED: every compiled graph is its cycles (perm/inv [H, k, T]) plus the row
//    rules (window W, landmark stride S, self), so it stores those and derives D, the metrics and,
//    on demand, the [H, T, D] graph ABI from them (materialize_abi). The ABI arrays are written only
//    when asked for (CompileOptions::materialize_abi, `bna compile --abi`): at T = 65,536 with S = 64
//    they are 10.9 GiB, the perms 33 MB.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bna/graph.hpp"
#include "bna/status.hpp"
#include "bna/topology.hpp"

namespace bna::spec {

// Bump when anything in the key payload or in how bna::topo builds graphs changes meaning.
// v2: the key names a structured (v2) artifact, so v1 directories of the same graph are never reused.
inline constexpr const char* kCacheSchema = "bna-spec-cache-v2";
inline constexpr const char* kBuilderVersion = "bna.topo/1";
inline constexpr const char* kArtifactSchema = "bna-graph-artifact-v2";

// ---- syntax tree --------------------------------------------------------------------------------
struct SourceLoc {
  int line = 0, col = 0;  // 1-based; col counts bytes
};

enum class NodeKind { kList, kSymbol, kKeyword, kInt, kFloat, kString, kComment };

struct Node {
  NodeKind kind = NodeKind::kSymbol;
  SourceLoc loc;            // first character
  std::string text;         // symbol / keyword (with ':') / number as written / decoded string / comment after ';'
  int64_t int_value = 0;    // kInt
  double float_value = 0;   // kFloat (finite)
  std::vector<Node> items;  // kList, comments included in source order
  bool trailing = false;    // kComment: on the same line as the token before it
  bool blank_before = false;  // one or more empty lines precede this node
};

struct Document {
  std::string source_name;  // used as the prefix of every error message
  std::vector<Node> top;    // comments and exactly one list (the root)
  const Node& root() const;
};

// Lex + parse. Errors (invalid_argument) read "<source_name>:<line>:<col>: <what>", e.g.
// "spec.wf:3:14: expected ')' to close '(' opened at 2:3, got end of input". Never crashes on any
// byte sequence; nesting deeper than 64 lists is an error.
Expected<Document> parse_document(std::string_view text, std::string_view source_name = "<input>");

// Canonical layout (bna spec fmt): comments and blank-line groups kept, a list printed on one line
// when it has no comments and fits 100 columns, else one element (or one ":key value") per line.
// Idempotent: format(parse(format(x))) == format(x).
std::string format(const Document& doc);

// ---- IR ----------------------------------------------------------------------------------------
struct Schedule {
  enum class Kind { kConstant, kLinear };
  Kind kind = Kind::kConstant;
  double start = 0, end = 0;
  int64_t steps = 1;
  // linear: start + clamp(step / (steps - 1), 0, 1) * (end - start) (end when steps <= 1); constant: end.
  double value(int64_t step) const;
  bool operator==(const Schedule&) const = default;
};

// Edge-logit bias schedules in the runtime's order [cycle, window, landmark, rewire].
struct EdgeBias {
  std::optional<Schedule> cycle, window, landmark, rewire;
  bool operator==(const EdgeBias&) const = default;
};

// Routing vectors for greedy / online insertion: an .npy file (f32 [T, d] shared by all heads or
// [H, T, d]) or, when no file is named, a seeded generator: head h's f32 [T, d] matrix is filled
// row-major with Rng(mix_seed(seed, h)).normal() draws.
struct RoutingSpec {
  std::string npy_path;  // resolved against the spec file's directory; empty = seeded
  int64_t dim = 64;
  uint64_t seed = 0;
  bool seed_set = false;  // false: the backbone seed is used
};

struct GraphSpec {
  std::string source_name;  // for messages
  std::string base_dir;     // directory relative paths in the spec resolve against
  std::optional<int64_t> degree;  // upper bound on the compiled D (checked, never truncates rows)
  topo::Strategy strategy = topo::Strategy::kRandom;
  uint64_t seed = 42;
  int64_t num_cycles = 1;
  bool edge_disjoint = true;          // random with k > 1
  int64_t regular_num_clusters = 8;   // regular_partition
  double coverage_target = 0.99;      // covering
  RoutingSpec routing;                // greedy, online_insertion
  int64_t window_size = 32;
  std::optional<Schedule> window_schedule;  // training-time; compiled window = its start
  int64_t landmark_stride = 64;             // 0 = no landmarks
  EdgeBias edge_bias;                       // training-time; not lowered
  bool permute_window_enabled = true;
  int64_t permute_window_size = 32;         // band half-width; W = 2 * size + 1
  // Where each field was set ("window_size" -> 4:20), so later passes can point at the source.
  std::map<std::string, SourceLoc> locs;
};

// Syntax tree -> IR. Errors carry the offending node's line:col.
Expected<GraphSpec> build_spec(const Document& doc);
// parse_document + build_spec.
Expected<GraphSpec> parse_spec(std::string_view text, std::string_view source_name = "<input>");
// Reads the file (not_found / io_error) and parses it; base_dir = the file's directory.
Expected<GraphSpec> load_spec(const std::string& path);

// The IR as JSON (sorted keys), every field including schedules; `bna spec dump`.
std::string ir_json(const GraphSpec& spec, int indent = 2);

// ---- passes ------------------------------------------------------------------------------------
// Canonical form: window_size := window_schedule.start; permute size := 0 when disabled; parameters
// the strategy does not use are reset to their defaults (so they cannot split the cache).
GraphSpec normalize(GraphSpec spec);
// Field ranges (independent of T and H); messages point at the source when the field has a location.
Status validate(const GraphSpec& spec);

// Reachability sources in the compile metrics (evenly spaced over all H*T rows, see graph::metrics).
// Each 4-hop BFS walks up to T rows of ~D neighbours; 16 keeps the metrics well under a second at
// T = 65,536.
inline constexpr int64_t kMetricsSources = 16;
// The graph ABI's row builder holds at most this many cycles per head (graph::build_heads), so a
// spec that lowers to more could never be materialized; lower() rejects it.
inline constexpr int64_t kMaxAbiCycles = 127;

// ---- structured graphs -------------------------------------------------------------------------
// Row i of head h in the graph ABI (src/graph/abi_rows.cpp, no rewires) is, in order: the ascending
// union of every cycle's prev/next of i (CYCLE), the past window max(0, i-W)..i-1 minus those
// (WINDOW, or LANDMARK where j % S == 0), landmarks 0, S, 2S, .. < max(0, i-W) minus cycle
// neighbours (LANDMARK), then i itself unless it is a cycle neighbour (WINDOW; only at T = 1).
// Rows are not causal: causality is applied by attention. These functions compute what the ABI's
// rows would give without building them.

// Row width D = longest row over all heads (>= 1). O(H * T * k).
// perms: [H, k, T], each a permutation with its inverse; rules.T == perms.T, window >= 0, stride >= 0
// (asserted: callers pass lowered or loaded perms, which are checked).
int64_t rule_row_width(const topo::PermsOnly& perms, const graph::RowRules& rules);
// Exactly graph::metrics(abi, bfs_hops, max_sources) of the materialized ABI, from the rules:
// degree and edge-type counts in O(H * T * k), reachability by BFS over rule-enumerated neighbours
// (same deterministic sources). Same preconditions as rule_row_width.
graph::GraphMetrics rule_metrics(const topo::PermsOnly& perms, const graph::RowRules& rules, int bfs_hops,
                                 int64_t max_sources);
// The [H, T, D] ABI of the rules (graph::build_heads); meta.cycle_perms filled, other meta fields as
// build_heads leaves them. Errors: as graph::build_heads (bad perms, k > kMaxAbiCycles, out of memory).
Expected<graph::GraphAbi> materialize_rows(const topo::PermsOnly& perms, const graph::RowRules& rules);

// The lowered graph for (T, H): every head's cycles plus the row rules; no [H, T, D] rows are built.
struct Lowered {
  topo::PermsOnly perms;     // perm / inv [H, k, T], checked to be permutations with inverses
  graph::RowRules rules;     // T, window, landmark stride, include_self
  graph::GraphMeta meta;     // strategy, seed, window, stride, num_cycles, include_self; no cycle_perms
  int64_t D = 0;             // row width the ABI would have (rule_row_width)
  graph::GraphMetrics metrics;  // rule_metrics with bfs_hops 4 and kMetricsSources
};
// Errors: T < 1, H < 1, more edge-disjoint cycles than T allows, more than kMaxAbiCycles cycles, a
// missing or mis-shaped routing file, D > degree, or any topology error.
Expected<Lowered> lower(const GraphSpec& spec, int64_t T, int64_t H);

// Permute-window tensors. window_idx[t, c] = clamp(t + c - w, 0, T - 1) indexes positions in cycle
// order and is the same for every head and cycle, so it is [T, W], not [H, T, W].
struct PermuteWindow {
  bool enabled = false;
  int64_t half_width = 0, W = 0;  // W = 2 * half_width + 1
  std::vector<int32_t> window_idx;  // [T, W]; empty when not materialized
};
// Materializes window_idx when enabled and T * W * 4 <= max_bytes.
PermuteWindow specialize_permute_window(const GraphSpec& spec, int64_t T, size_t max_bytes);
std::vector<int32_t> derive_window_idx(int64_t T, int64_t half_width);

// Which attention path the runtime would use for this graph, and why.
inline constexpr int64_t kStreamsMaxCycles = 8;  // 2k extra neighbours per row stay "few"
struct Dispatch {
  std::string path;    // "permute_window" | "streams" | "gather" (bna::attn::path_name spelling)
  std::string reason;
};
// permute_window when enabled in the spec; else streams when the rows are a causal window and/or
// landmarks plus at most 2 * kStreamsMaxCycles cycle neighbours; else gather.
Dispatch specialize_dispatch(const GraphSpec& spec);

struct CacheKey {
  std::string hex;      // SHA-256 of payload, 64 lowercase hex digits
  std::string payload;  // canonical JSON: sorted keys, no spaces
};
// Errors: T < 1, H < 1, an unreadable routing file (its SHA-256 is part of the key).
Expected<CacheKey> cache_key(const GraphSpec& spec, int64_t T, int64_t H);

// ---- artifacts ---------------------------------------------------------------------------------
// <out_root>/<hex>/ (schema kArtifactSchema, "bna-graph-artifact-v2"):
//   perm.npy i32 [H,k,T], inv_perm.npy i32 [H,k,T], window_idx.npy i32 [T,W] (optional), meta.json
//   (the rules: strategy, seed, k, window, landmark stride, include_self; D; metrics; dispatch), and
//   only with materialize_abi: neigh_idx.npy i32 [H,T,D] + edge_type.npy u8 [H,T,D] (graph ABI).
// Built in a temporary sibling directory and renamed into place, so a reader never sees a partial
// artifact.
struct CompileOptions {
  int64_t T = 0, H = 0;
  std::string out_root = ".cache/bna";
  bool force = false;  // rebuild even when the artifact exists (replaced atomically)
  // Also write the [H,T,D] ABI arrays for external tools. An existing artifact without them is
  // rebuilt with them (replaced atomically); one with them is reused either way.
  bool materialize_abi = false;
  size_t max_window_idx_bytes = size_t{16} << 20;
};

struct CompileResult {
  std::string artifact_dir;
  CacheKey key;
  bool reused = false;  // the artifact existed and was validated instead of rebuilt
  bool abi_stored = false;  // the artifact holds neigh_idx.npy / edge_type.npy
  double seconds = 0;   // wall time of this compile call
  int64_t D = 0;
  Dispatch dispatch;
  graph::GraphMetrics metrics;
  GraphSpec spec;  // normalized; schedules and biases for the trainer
};

// normalize -> validate -> cache key -> reuse (structural check) or lower + specialize + write.
// An existing but invalid artifact is an error naming --force, never a silent rebuild.
Expected<CompileResult> compile(const GraphSpec& spec, const CompileOptions& opt);
Expected<CompileResult> compile_file(const std::string& spec_path, const CompileOptions& opt);

struct Artifact {
  std::string dir;
  std::string cache_key;
  topo::PermsOnly perms;  // [H, k, T]
  graph::RowRules rules;  // T, window, landmark stride, include_self
  graph::GraphMeta meta;  // strategy, seed, window, stride, num_cycles, include_self; no cycle_perms
  int64_t D = 0;          // row width of the ABI (checked against the rules)
  graph::GraphMetrics metrics;  // as recorded at compile time
  bool abi_stored = false;      // neigh_idx.npy / edge_type.npy present (headers checked, not contents)
  PermuteWindow permute;  // window_idx loaded, or derived when the file was not stored
  Dispatch dispatch;
  std::string meta_json;
};
// Loads and checks an artifact: T and H must equal expect_T / expect_H (a mismatch is an
// invalid_argument error, never a rebuild), meta.json must name the directory's key and hold sane
// rules, the arrays must have the recorded dtypes and shapes, perms must be permutations with
// matching inverses (which makes every cycle Hamiltonian) and D must equal the rules' row width.
// Errors for anything else are kCorrupt (kNotFound / kIoError for unreadable files).
Expected<Artifact> load_artifact(const std::string& dir, int64_t expect_T, int64_t expect_H);
// The artifact's [H, T, D] graph ABI built from its perms and rules (H*T*D*5 bytes), with meta filled
// as bna::topo::Topology::construct fills it. Errors: out of memory.
Expected<graph::GraphAbi> materialize_abi(const Artifact& a);
// Reads a stored ABI (abi_stored) and compares it entry by entry with materialize_abi (kCorrupt
// naming the first differing head/row/column). Error when the artifact has no stored ABI.
Status verify_stored_abi(const Artifact& a);

}  // namespace bna::spec
