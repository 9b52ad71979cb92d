// Host launch API of the CUDA attention kernels (sm_90a). Includes no CUDA header: every pointer is a
// DEVICE pointer passed as void*/float*, the stream is a cudaStream_t passed as void* (nullptr: the
// default stream). Launches are asynchronous; errors from the launch itself come back as Status,
// errors inside the kernel surface at the next synchronising call.
//
// Tensors (dimension vocabulary of docs/numerics.md), all contiguous, 16-byte aligned:
//   q   [B, Hq,  T, dh]  bf16 | f16 (uint16_t bits)
//   k,v [B, Hkv, T, dh]  same dtype as q
//   out [B, Hq,  T, dh]  same dtype as q
//   lse [B, Hq,  T]      f32, natural log
// dh in {64, 128}; Hq % Hkv == 0 (query head hq reads KV head hq / (Hq / Hkv)).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bna/dtype.hpp"
#include "bna/status.hpp"

namespace bna::cuda {

struct AttnArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  int64_t B = 1, Hq = 1, Hkv = 1, T = 0, dh = 128;
  DType dtype = DType::kBF16;
  float scale = 0.0f;  // 0 -> 1/sqrt(dh)
  // Forward kernel variant, for A/B timing (docs/kernels.md): 1 = v3 (64-row query tiles, one
  // m-tile per warp, persistent grid), 2 = v4 (128-row query tiles, 2 m-tiles per warp),
  // 0 = auto (v3 below T = 16384, v4 from there). Backward ignores it.
  int fwd_variant = 0;
  // Rows between consecutive KV heads in k, v (and the streams extras): 0 = T (contiguous). A KV
  // cache of capacity N >= T passes N, so prefill runs on the cache's first T rows in place. Only
  // dense_causal_fwd and streams_fwd take kv_rows != 0; every other kernel rejects it.
  int64_t kv_rows = 0;
  // Chunked prefill: the queries are the last T - q_offset positions (0 <= q_offset < T): q, out and
  // lse hold [B, Hq, T - q_offset, ..] and query row r sits at absolute position q_offset + r; k, v
  // (and the extras, indexed by absolute position) hold all T keys. Dense and streams forward only.
  int64_t q_offset = 0;
  // Paged K/V (kv_pages != nullptr; dense_causal_fwd and the decode kernels): k and v are
  // ignored; key j of batch b lives in the page kv_pages[b * kv_pages_stride + j / kv_page], a DEVICE
  // array of DEVICE pointers, each page 16-byte aligned and laid out [2][Hkv][kv_page][dh] (K rows,
  // then V rows), key j at row j % kv_page. kv_page: a power of two in [1, 2^20];
  // kv_pages_stride >= ceil(T / kv_page). The decode extras stay [Hkv, kv_rows or Tk, C].
  const void* const* kv_pages = nullptr;
  int64_t kv_page = 0, kv_pages_stride = 0;
  // Element strides {batch, head, row} of q, k / v and out; all zero = contiguous [B, H, T, dh]. The
  // token-major layout [B, T, H, dh] (FlashAttention's; a fused QKV GEMM's output with row stride
  // (Hq + 2 Hkv) dh) is {T * ld, dh, ld}. Each stride a multiple of 8 (16-byte rows), dh contiguous.
  // Backward: dq takes q's strides, dk and dv k's, dout out's. Dense and streams only (forward and
  // backward), with q_offset 0, kv_rows 0 and no kv_pages; every other kernel refuses them.
  int64_t q_strides[3] = {0, 0, 0}, kv_strides[3] = {0, 0, 0}, o_strides[3] = {0, 0, 0};
};

// True when the CUDA runtime reports at least one device (never an error: false on any failure).
bool device_available();

// Name of device 0, or "none".
std::string device_name();

// Dense causal forward: out[i] = softmax_{j <= i}(scale * q_i . k_j) v_j, lse[i] = log sum.
// Errors: invalid_argument for null pointers, dtype f32, dh not in {64,128}, Hq % Hkv != 0, T < 1,
// misaligned pointers; internal for a failed CUDA call (message names the call and the CUDA error).
Status dense_causal_fwd(const AttnArgs& a, void* stream = nullptr);

// Streams forward (the StreamsGraph of src/attention/cpu/kernels.hpp): row i of KV head h attends
//   band [max(0, i-W), i]  U  landmarks {m*S : m*S < i - W}  U  {extra[h, i, c] : c < C, extra >= 0}
// in one kernel and one online softmax. extra: DEVICE int32 [Hkv, T, C], -1 padded, each entry <= i
// and disjoint from band and landmarks (entries > i are masked, never attended), or nullptr with C = 0.
// S = 0: no landmarks. Workspace: none.
// Errors: as dense_causal_fwd, plus W < 0, S < 0, C < 0, C > 0 with extra == nullptr.
Status streams_fwd(const AttnArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C,
                   void* stream = nullptr);

// ---- backward --------------------------------------------------------------------------------
// Gradients of dense_causal_fwd / streams_fwd. fwd holds q, k, v, the forward's out and lse and the
// shapes; dout [B, Hq, T, dh] in; dq [B, Hq, T, dh], dk, dv [B, Hkv, T, dh] out (the dtype of q,
// overwritten). Workspace: a DEVICE buffer of at least attn_bwd_workspace_bytes(fwd) bytes, 256-byte
// aligned (rowsum(dO*O) and f32 dK/dV accumulators); no device memory is allocated inside. The dK/dV
// kernel runs on a second stream (one per host thread and device, created on first use) forked from
// `stream` by an event; before returning, `stream` is made to wait for it (a second event), so work
// queued on `stream` afterwards sees all gradients. While `stream` is being captured into a CUDA
// graph, both kernels go to `stream` one after the other.
// Errors: as the forward, plus null/misaligned dout/dq/dk/dv, a missing or short workspace, B*Hq > 65535.
struct AttnBwdArgs {
  AttnArgs fwd;
  const void* dout = nullptr;
  void* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};
size_t attn_bwd_workspace_bytes(const AttnArgs& a);
Status dense_causal_bwd(const AttnBwdArgs& a, void* stream = nullptr);
// Same graph arguments as streams_fwd (W, S, extra [Hkv, T, C] device int32, C).
Status streams_bwd(const AttnBwdArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C,
                   void* stream = nullptr);

// ---- decode (split-K) --------------------------------------------------------------------------
// Few queries per head against a long KV cache: q [B, Hq, Tq, dh], k/v [B, Hkv, Tk, dh], out
// [B, Hq, Tq, dh], lse [B, Hq, Tq]; query t sits at absolute position Tk - Tq + t. The keys a query
// may attend (dense: j <= pos; streams: band [pos-W, pos], landmarks m*S < pos - W, extras
// extra[h, pos, c] with extra [Hkv, Tk, C] indexed by absolute position) are split into chunks, one
// CTA per (chunk, b, KV head) serving all G*Tq query rows of that KV head; partial (o, max, sum)
// go to the workspace and a second kernel merges them (LSE merge of design-notes §2).
// Requires G*Tq <= 64 (G = Hq/Hkv); workspace: decode_workspace_bytes(...) bytes, 256-byte aligned.
struct DecodeArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  int64_t B = 1, Hq = 1, Hkv = 1, Tq = 1, Tk = 0, dh = 128;
  DType dtype = DType::kBF16;
  float scale = 0.0f;
  int64_t kv_rows = 0;  // rows between KV heads in k, v and extra (0 = Tk; a cache passes its capacity)
  const void* const* kv_pages = nullptr;  // paged K/V, as AttnArgs::kv_pages (k and v ignored)
  int64_t kv_page = 0, kv_pages_stride = 0;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};
// Workspace bytes for a dense (dense = true) or streams decode with these W, S, C.
size_t decode_workspace_bytes(const DecodeArgs& a, bool dense, int64_t W, int64_t S, int64_t C);
Status dense_decode(const DecodeArgs& a, void* stream = nullptr);
Status streams_decode(const DecodeArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C,
                      void* stream = nullptr);

// ---- graph paths: block-sparse, permute-window, gather (forward; backward below) -----------------
// Same tensors and checks as dense_causal_fwd (q, k, v, out [.., T, dh], lse; Tq == Tk == T).

// Block-sparse (BSR, include/bna/block_layout.hpp): query block qb (tokens [qb*Bs, min((qb+1)*Bs, T)))
// of KV head h attends key blocks indices[indptr[h*(N+1) + qb] .. indptr[h*(N+1) + qb + 1]) (ascending,
// in [0, N)), key <= query inside. indptr: DEVICE int32 [Hkv, N + 1], ABSOLUTE offsets into indices
// (head_base already added); indices: DEVICE int32. N = ceil(T / Bs). Tensor cores; no workspace.
// Errors: as dense_causal_fwd, plus Bs < 1, N != ceil(T/Bs), null indptr/indices.
Status block_sparse_fwd(const AttnArgs& a, int64_t Bs, int64_t N, const int32_t* indptr, const int32_t* indices,
                        void* stream = nullptr);

// Permute-window (src/attention/cpu/kernels.hpp permute_window_fwd): for cycle c, the query at rank r
// (position perm_c[r]) attends ranks r-w..r+w (clipped to [0, T), or mod T when circular), key
// allowed only if perm_c[rank_k] <= perm_c[r]. perm, inv: DEVICE int32 [Hkv, num_cycles, T].
// One cycle (or average mode): tensor cores over 64-rank query tiles, Q/out read/written through
// perm. Average over several cycles: one launch per cycle into an f32 workspace of
// permute_window_workspace_bytes() bytes (256-byte aligned), then out = mean, lse = log-mean-exp.
// Union (union_mode, several cycles): one softmax over every (cycle, offset) entry, one warp per row.
// w >= T is clipped to T - 1; circular with 2w + 1 >= T equals the linear band w = T - 1.
struct PermuteWindowArgs {
  const int32_t* perm = nullptr;
  const int32_t* inv = nullptr;  // needed by union mode only
  int64_t num_cycles = 1;
  int64_t w = 64;
  bool circular = false;
  bool union_mode = false;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};
size_t permute_window_workspace_bytes(const AttnArgs& a, int64_t num_cycles, bool union_mode);
// Errors: as dense_causal_fwd, plus w < 0, num_cycles < 1, null perm (inv in union mode), a missing
// or short workspace.
Status permute_window_fwd(const AttnArgs& a, const PermuteWindowArgs& pw, void* stream = nullptr);

// Gather: row i of KV head h attends the keys neigh_idx[h, i, 0..D) that are >= 0 and <= i, one
// softmax term per entry (a multiset). neigh_idx: DEVICE int32 [Hkv, T, D], entries in [-1, T).
// One warp per query row on CUDA cores (f32 math, P not rounded). No workspace.
// Errors: as dense_causal_fwd, plus D < 1, null neigh_idx.
Status gather_fwd(const AttnArgs& a, const int32_t* neigh_idx, int64_t D, void* stream = nullptr);

// ---- compressed butterfly (forward, Tq == Tk) ------------------------------------------------------
// The CPU path's semantics (src/attention/cpu/compressed.hpp): query i attends the raw keys [c, i],
// c = max(0, i - tail + 1), plus the means of the routed complete blocks j with (j + 1) * Bs <= c,
// as one softmax. Routing: BSR rows of block size Bs, indptr DEVICE int32 [routing_heads, N + 1]
// (absolute offsets into indices; routing_heads = 1 serves every KV head), N >= ceil(T / Bs); a row
// is a multiset. Summaries (f32 block means) are computed into the workspace
// (compressed_workspace_bytes, 256-byte aligned); the raw band runs on the streams kernel.
struct CompressedArgs {
  int64_t tail = 1024;
  int64_t Bs = 64;
  int64_t N = 0;
  const int32_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  int64_t routing_heads = 1;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};
size_t compressed_workspace_bytes(const AttnArgs& a, int64_t Bs);
// Errors: as dense_causal_fwd, plus tail < 1, Bs < 1, routing_heads not 1 or Hkv, N too small, null
// routing arrays, a missing or short workspace.
Status compressed_fwd(const AttnArgs& a, const CompressedArgs& c, void* stream = nullptr);

// ---- graph paths: backward ---------------------------------------------------------------------
// Gradients of gather_fwd / permute_window_fwd / block_sparse_fwd (attn_bwd_rows.cuh), in two passes
// on CUDA cores with no atomics: one warp per query row writes dQ and the row's softmax statistics,
// then one warp per key row walks the queries that list it (the transposed graph) and writes dK, dV.
// AttnBwdArgs as for streams_bwd (fwd.out and fwd.lse from the forward), except the workspace: at
// least graph_bwd_workspace_bytes(fwd, segments) bytes, segments = num_cycles in permute-window
// average mode, else 1. f32 math. Errors: as streams_bwd, plus the forward's graph checks.
size_t graph_bwd_workspace_bytes(const AttnArgs& a, int64_t segments);
// Gather needs the transpose of neigh_idx: t_rowptr DEVICE int64 [Hkv, T + 1] (absolute offsets) into
// t_rows DEVICE int32, the queries i >= j listing key j, one per occurrence (transpose_gather).
Status gather_bwd(const AttnBwdArgs& a, const int32_t* neigh_idx, int64_t D, const int64_t* t_rowptr,
                  const int32_t* t_rows, void* stream = nullptr);
// Permute-window needs pw.inv in every mode; the band's transpose is the band itself.
Status permute_window_bwd(const AttnBwdArgs& a, const PermuteWindowArgs& pw, void* stream = nullptr);
// Block-sparse needs the transposed layout: t_indptr DEVICE int32 [Hkv, N + 1] (absolute) into
// t_indices DEVICE int32, the query blocks qb >= kb listing key block kb (transpose_block_sparse).
Status block_sparse_bwd(const AttnBwdArgs& a, int64_t Bs, int64_t N, const int32_t* indptr, const int32_t* indices,
                        const int32_t* t_indptr, const int32_t* t_indices, void* stream = nullptr);

// Host-side transposes for the two calls above (HOST arrays in and out; plan() does this once).
// neigh_idx: [Hkv, T, D]; entries outside [0, i] are skipped. indptr (absolute) / indices: the BSR
// layout as block_sparse_fwd takes it; key blocks after the query block are skipped.
Status transpose_gather(const int32_t* neigh_idx, int64_t Hkv, int64_t T, int64_t D, std::vector<int64_t>& t_rowptr,
                        std::vector<int32_t>& t_rows);
Status transpose_block_sparse(const int32_t* indptr, const int32_t* indices, int64_t Hkv, int64_t N,
                              std::vector<int32_t>& t_indptr, std::vector<int32_t>& t_indices);

}  // namespace bna::cuda
