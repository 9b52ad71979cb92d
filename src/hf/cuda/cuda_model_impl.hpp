// Internal to the CUDA decoder (src/hf/cuda/): the device state of hf::CudaModel, shared by
// cuda_model.cpp (storage, graphs, forward) and cuda_model_load.cpp (weights from files or random).
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "attention/cuda/device_memory.hpp"
#include "bna/decode_graph.hpp"
#include "bna/hf_cuda.hpp"
#include "bna/topology.hpp"
#include "hf/compressed_cache.hpp"
#include "nn/cuda/blas.hpp"

namespace bna::hf {

namespace cuda_detail {
using bna::cuda::DeviceBuffer;
inline std::string S(int64_t v) { return std::to_string(v); }

// Grow-only device buffer.
inline Status ensure(DeviceBuffer& d, size_t bytes) {
  if (d.get() != nullptr && d.bytes() >= bytes) return Status::ok();
  return d.allocate(std::max<size_t>(bytes, 256));
}

inline Status upload_i32(const std::vector<int32_t>& v, DeviceBuffer& d) {
  BNA_RETURN_IF_ERROR(d.allocate(std::max<size_t>(v.size(), 1) * 4));
  return v.empty() ? Status::ok() : bna::cuda::copy_to_device(d.get(), v.data(), v.size() * 4);
}
}  // namespace cuda_detail

using cuda_detail::DeviceBuffer;

struct CudaLayer {
  // bf16 [out, in]. w_gu: gate | up [2I, C] (SwiGLU), or GPT-2's c_fc [I, C] (GELU MLP); GPT-2's
  // Conv1D weights ([in, out] in the file) are transposed at load, so every GEMM is the same.
  DeviceBuffer wqkv, wo, w_gu, w_down;
  DeviceBuffer bqkv, bo, q_norm, k_norm;            // f32, empty when the family has none
  DeviceBuffer ln1, ln2, post_attn, post_mlp;       // f32 [C]
  DeviceBuffer ln1_b, ln2_b, b_up, b_down;          // f32 LayerNorm biases [C], MLP biases [I] / [C] (GPT-2)
  DeviceBuffer k_cache, v_cache;                    // bf16 [Hkv, capacity, dh] (dense / Butterfly layers)
  // Paged dense layer (AttentionOptions::kv_page): its pages in token order (host copy of the table)
  // and the device table [ceil(capacity / P)] of page pointers; k_cache / v_cache stay empty.
  bool paged = false;
  std::vector<uint16_t*> page_host;
  int64_t pages_used = 0;
  DeviceBuffer page_table;
  // Compressed layer: the two pools instead of the cache, and its routing (H = 1) on host and device.
  bool compressed = false;
  DeviceBuffer ring_k, ring_v;                      // bf16 [Hkv, R, dh], token p in row p mod R
  DeviceBuffer sum_k, sum_v;                        // bf16 [Hkv, n_sum, dh] block means
  topo::BlockSparseLayout routing;
  DeviceBuffer r_indptr, r_indices;
  int64_t ordinal = 0;                              // among the compressed layers
};

struct CudaModel::Impl {
  Config cfg;
  AttentionOptions attn;
  nn::cuda::Blas blas;
  DeviceBuffer embed, lm_head, norm_w, inv_freq;  // lm_head empty = tied to embed; inv_freq empty without RoPE
  DeviceBuffer pos_embed, norm_b;                  // GPT-2: bf16 [n_positions, C], f32 [C] (ln_f bias)
  std::vector<CudaLayer> layers;
  int64_t capacity = 0, pos = 0;
  // Butterfly: per KV head graph; extras [Hkv, capacity, E] (E = 2 * num_cycles) on host and device.
  std::vector<topo::DecodeGraph> graphs;
  std::vector<int32_t> extra_host;
  DeviceBuffer extra_dev;
  int64_t E = 0;
  // Compressed layers: ring rows R, summaries n_sum, longest routing row; per-call state.
  int64_t R = 0, n_sum = 0, max_route = 0, n_compressed = 0;
  std::vector<int32_t> route_host;  // [n_compressed, max_route] routed blocks of this decode step
  std::vector<int64_t> route_len;   // [n_compressed]
  DeviceBuffer route_dev, scratch_k, scratch_v, kfull, vfull, cmp_ws;
  // Page pool of the paged dense layers: page_bytes each, carved from slabs, free pages on a stack.
  int64_t page = 0;          // tokens per page of the current storage (0: nothing paged)
  size_t page_bytes = 0;
  std::vector<DeviceBuffer> slabs;
  std::vector<uint16_t*> free_pages;
  int64_t slab_pages = 0;    // pages in all slabs
  // Activations, grown to the longest call.
  DeviceBuffer ids, x, h, qkv, q, o, ot, gu, act, tmp, lse, logits, dec_ws;

  size_t weight_bytes() const {
    size_t b = embed.bytes() + lm_head.bytes() + norm_w.bytes() + inv_freq.bytes() + pos_embed.bytes() + norm_b.bytes();
    for (const CudaLayer& l : layers)
      b += l.wqkv.bytes() + l.wo.bytes() + l.w_gu.bytes() + l.w_down.bytes() + l.bqkv.bytes() + l.bo.bytes() +
           l.q_norm.bytes() + l.k_norm.bytes() + l.ln1.bytes() + l.ln2.bytes() + l.post_attn.bytes() +
           l.post_mlp.bytes() + l.ln1_b.bytes() + l.ln2_b.bytes() + l.b_up.bytes() + l.b_down.bytes();
    return b;
  }
  size_t cache_bytes() const {
    size_t b = 0;
    for (const CudaLayer& l : layers)
      b += l.k_cache.bytes() + l.v_cache.bytes() + l.ring_k.bytes() + l.ring_v.bytes() + l.sum_k.bytes() + l.sum_v.bytes() +
           static_cast<size_t>(l.pages_used) * page_bytes;
    return b;
  }
  size_t pool_bytes() const {  // slabs reserved, plus the page tables
    size_t b = static_cast<size_t>(slab_pages) * page_bytes;
    for (const CudaLayer& l : layers) b += l.page_table.bytes();
    return b;
  }
  size_t routing_bytes() const {
    size_t b = route_dev.bytes();
    for (const CudaLayer& l : layers) b += l.r_indptr.bytes() + l.r_indices.bytes() + detail::routing_bytes(l.routing);
    return b;
  }
  size_t work_bytes() const {
    size_t b = 0;
    for (const DeviceBuffer* d : {&ids, &x, &h, &qkv, &q, &o, &ot, &gu, &act, &tmp, &lse, &logits, &dec_ws, &scratch_k,
                                  &scratch_v, &kfull, &vfull, &cmp_ws})
      b += d->bytes();
    return b + blas.workspace_bytes();
  }
  bool listed_dense(int64_t li) const {
    return std::find(attn.dense_layers.begin(), attn.dense_layers.end(), li) != attn.dense_layers.end();
  }
  bool wants_compressed(int64_t li) const { return attn.kind == AttnKind::kCompressed && !listed_dense(li); }
  // Paged layers: the dense ones (every layer of a dense model, the listed ones otherwise).
  bool wants_paged(int64_t li) const { return attn.kv_page > 0 && (attn.kind == AttnKind::kDense || listed_dense(li)); }

  // h bf16 [rows, C] = the pre-attention / pre-MLP / final norm of x f32 [rows, C]: LayerNorm with
  // weight w and bias b (GPT-2), else RMSNorm with w (b unused).
  Status norm(const float* x, const DeviceBuffer& w, const DeviceBuffer& b, int64_t rows);
  Status allocate_storage();
  Status pages_for(CudaLayer& l, int64_t tokens);  // the layer's pages cover tokens [0, tokens)
  void release_pages();                            // every layer's pages back to the pool
  Status compressed_attention(CudaLayer& l, int64_t p0, int64_t n);

  Expected<std::vector<float>> forward(std::span<const int32_t> ids, bool all_logits, int32_t* greedy);
  Expected<std::vector<float>> forward_chunked(std::span<const int32_t> ids, bool all_logits, int64_t chunk);
  Status rebuild_graphs();
  Status append_graph_rows(int64_t p0, int64_t n);
  Status grow_work(int64_t n, int64_t rows_out);
  Status attention(CudaLayer& l, bool sparse_layer, int64_t p0, int64_t n);
};


}  // namespace bna::hf
