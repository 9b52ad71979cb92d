// The CUDA decoder (include/bna/hf_cuda.hpp): KV storage (full cache or compressed pools), the
// Butterfly graph kept on the host with its new rows uploaded per call, and the forward. Loading and
// random weights: cuda_model_load.cpp.
#include <algorithm>
#include <cstring>
#include <string>

#include "attention/cuda/cuda_check.cuh"
#include "attention/cuda/launch.hpp"
#include "hf/cuda/cuda_model_impl.hpp"
#include "hf/cuda/decoder_kernels.hpp"

namespace bna::hf {

using cuda_detail::ensure;
using cuda_detail::S;
using cuda_detail::upload_i32;

Status CudaModel::Impl::rebuild_graphs() {
  graphs.clear();
  extra_host.clear();
  E = 0;
  if (attn.kind != AttnKind::kButterfly || capacity == 0) {
    extra_dev = DeviceBuffer();
    return Status::ok();
  }
  E = 2 * attn.num_cycles;
  for (int64_t h = 0; h < cfg.n_kv_heads; ++h) {
    topo::DecodeGraphOptions go;
    go.n_heads = 1;
    go.num_cycles = attn.num_cycles;
    go.window = attn.window;
    go.landmark_stride = attn.landmark_stride;
    go.rule = topo::AppendRule::kRandomInsertion;
    go.seed = topo::head_seed(attn.seed, h);
    BNA_ASSIGN_OR_RETURN(topo::DecodeGraph g, topo::DecodeGraph::create(go));
    graphs.push_back(std::move(g));
  }
  extra_host.assign(static_cast<size_t>(cfg.n_kv_heads * capacity * E), -1);
  BNA_RETURN_IF_ERROR(extra_dev.allocate(extra_host.size() * sizeof(int32_t)));
  BNA_RETURN_IF_ERROR(bna::cuda::device_memset(extra_dev.get(), 0xff, extra_dev.bytes()));
  if (pos > 0) return append_graph_rows(0, pos);
  return Status::ok();
}

// Appends tokens p0 .. p0+n-1 to every head's graph and records each token's cycle neighbours at
// its append (its decode row) that fall outside its band [i-W, i] and its landmarks: exactly the
// streams extras of the row the CPU model attends. Uploads the new rows.
Status CudaModel::Impl::append_graph_rows(int64_t p0, int64_t n) {
  const int64_t W = attn.window, Sd = attn.landmark_stride;
  for (int64_t hh = 0; hh < cfg.n_kv_heads; ++hh) {
    topo::DecodeGraph& g = graphs[static_cast<size_t>(hh)];
    for (int64_t i = p0; i < p0 + n; ++i) {
      BNA_RETURN_IF_ERROR(g.append());
      int32_t* row = &extra_host[static_cast<size_t>((hh * capacity + i) * E)];
      int64_t len = 0;
      for (int64_t c = 0; c < attn.num_cycles; ++c) {
        int32_t nb[2];
        g.cycle_neighbours(0, c, i, &nb[0], &nb[1]);
        for (int32_t j : nb) {
          const bool in_band = j >= i - W && j <= i;
          const bool landmark = Sd > 0 && j % Sd == 0 && j < i - W;
          if (in_band || landmark || std::find(row, row + len, j) != row + len) continue;
          row[len++] = j;
        }
      }
    }
  }
  // Rows [p0, p0 + n) of every head in one strided copy.
  const size_t off = static_cast<size_t>(p0 * E), pitch = static_cast<size_t>(capacity * E) * sizeof(int32_t);
  BNA_CUDA_TRY(cudaMemcpy2D(extra_dev.as<int32_t>() + off, pitch, &extra_host[off], pitch,
                            static_cast<size_t>(n * E) * sizeof(int32_t), static_cast<size_t>(cfg.n_kv_heads),
                            cudaMemcpyHostToDevice));
  return Status::ok();
}

// (Re)allocates each layer's KV storage for `capacity`: the full cache for dense / Butterfly layers,
// the two pools and the routing for compressed layers (hf.hpp CompressedOptions; the CPU model's
// ring R = min(max(L, Bs), capacity) and n_sum = max(0, capacity - L) / Bs). Storage that already
// has the right kind and size is kept.
Status CudaModel::Impl::allocate_storage() {
  const Config& c = cfg;
  const CompressedOptions& co = attn.compressed;
  const size_t row = static_cast<size_t>(c.n_kv_heads * c.head_dim) * 2;
  release_pages();
  if (attn.kv_page != page) {  // a new page size: the old slabs cannot serve it
    free_pages.clear();
    slabs.clear();
    slab_pages = 0;
    page = attn.kv_page;
    page_bytes = 2 * row * static_cast<size_t>(page);
  }
  R = std::min(std::max(co.tail, co.block), capacity);
  n_sum = std::max<int64_t>(0, capacity - co.tail) / co.block;
  max_route = 0;
  n_compressed = 0;
  for (int64_t li = 0; li < c.layers; ++li) {
    CudaLayer& l = layers[static_cast<size_t>(li)];
    const bool cmp = wants_compressed(li);
    l.paged = !cmp && wants_paged(li);
    if (l.paged) {
      l.k_cache = DeviceBuffer();
      l.v_cache = DeviceBuffer();
      l.page_host.assign(static_cast<size_t>((capacity + page - 1) / page), nullptr);
      if (l.page_table.bytes() != l.page_host.size() * sizeof(uint16_t*)) {
        l.page_table = DeviceBuffer();
        BNA_RETURN_IF_ERROR(l.page_table.allocate(l.page_host.size() * sizeof(uint16_t*)));
      }
    } else {
      l.page_host.clear();
      l.page_table = DeviceBuffer();
    }
    if (!cmp) {
      l.ring_k = DeviceBuffer(); l.ring_v = DeviceBuffer(); l.sum_k = DeviceBuffer(); l.sum_v = DeviceBuffer();
      l.r_indptr = DeviceBuffer(); l.r_indices = DeviceBuffer();
      l.routing = topo::BlockSparseLayout();
      l.compressed = false;
      if (l.paged) continue;
      const size_t bytes = row * static_cast<size_t>(capacity);
      if (l.k_cache.bytes() != bytes) {
        l.k_cache = DeviceBuffer();  // free first: old and new need not fit together
        l.v_cache = DeviceBuffer();
        BNA_RETURN_IF_ERROR(l.k_cache.allocate(bytes));
        BNA_RETURN_IF_ERROR(l.v_cache.allocate(bytes));
      }
      continue;
    }
    l.k_cache = DeviceBuffer();
    l.v_cache = DeviceBuffer();
    l.compressed = true;
    l.ordinal = n_compressed++;
    BNA_ASSIGN_OR_RETURN(l.routing, detail::compressed_routing(co, capacity, l.ordinal));
    for (int64_t b = 0; b < l.routing.n_blocks; ++b)
      max_route = std::max<int64_t>(max_route, l.routing.indptr[b + 1] - l.routing.indptr[b]);
    BNA_RETURN_IF_ERROR(upload_i32(l.routing.indptr, l.r_indptr));
    BNA_RETURN_IF_ERROR(upload_i32(l.routing.indices, l.r_indices));
    if (l.ring_k.bytes() != row * static_cast<size_t>(R)) {
      l.ring_k = DeviceBuffer();
      l.ring_v = DeviceBuffer();
      BNA_RETURN_IF_ERROR(l.ring_k.allocate(row * static_cast<size_t>(R)));
      BNA_RETURN_IF_ERROR(l.ring_v.allocate(row * static_cast<size_t>(R)));
    }
    const size_t sb = row * static_cast<size_t>(std::max<int64_t>(n_sum, 1));
    if (l.sum_k.bytes() != sb) {
      l.sum_k = DeviceBuffer();
      l.sum_v = DeviceBuffer();
      BNA_RETURN_IF_ERROR(l.sum_k.allocate(sb));
      BNA_RETURN_IF_ERROR(l.sum_v.allocate(sb));
    }
  }
  if (std::none_of(layers.begin(), layers.end(), [](const CudaLayer& l) { return l.paged; })) {
    free_pages.clear();  // nothing paged any more: give the slabs back
    slabs.clear();
    slab_pages = 0;
  }
  route_host.assign(static_cast<size_t>(std::max<int64_t>(1, n_compressed * max_route)), 0);
  route_len.assign(static_cast<size_t>(n_compressed), 0);
  if (n_compressed > 0) {
    BNA_RETURN_IF_ERROR(ensure(route_dev, route_host.size() * sizeof(int32_t)));
    BNA_RETURN_IF_ERROR(ensure(scratch_k, row * static_cast<size_t>(max_route + R)));
    BNA_RETURN_IF_ERROR(ensure(scratch_v, row * static_cast<size_t>(max_route + R)));
  } else {
    route_dev = DeviceBuffer(); scratch_k = DeviceBuffer(); scratch_v = DeviceBuffer();
    kfull = DeviceBuffer(); vfull = DeviceBuffer(); cmp_ws = DeviceBuffer();
  }
  return Status::ok();
}

// Takes pages from the pool until layer l's pages cover tokens [0, tokens) and uploads the new table
// entries. A new slab holds at least the pages this call needs, else an eighth of the pool (16 to
// 1024 pages), so the pool overshoots what is in use by a bounded fraction.
Status CudaModel::Impl::pages_for(CudaLayer& l, int64_t tokens) {
  const int64_t need = (tokens + page - 1) / page, first = l.pages_used;
  while (l.pages_used < need) {
    if (free_pages.empty()) {
      const int64_t count = std::max(need - l.pages_used, std::clamp<int64_t>(slab_pages / 8, 16, 1024));
      DeviceBuffer slab;
      BNA_RETURN_IF_ERROR(slab.allocate(static_cast<size_t>(count) * page_bytes));
      for (int64_t i = count - 1; i >= 0; --i)
        free_pages.push_back(slab.as<uint16_t>() + static_cast<size_t>(i) * (page_bytes / sizeof(uint16_t)));
      slabs.push_back(std::move(slab));
      slab_pages += count;
    }
    l.page_host[static_cast<size_t>(l.pages_used++)] = free_pages.back();
    free_pages.pop_back();
  }
  if (l.pages_used == first) return Status::ok();
  return bna::cuda::copy_to_device(l.page_table.as<uint16_t*>() + first, &l.page_host[static_cast<size_t>(first)],
                                   static_cast<size_t>(l.pages_used - first) * sizeof(uint16_t*));
}

void CudaModel::Impl::release_pages() {
  for (CudaLayer& l : layers) {
    while (l.pages_used > 0) free_pages.push_back(l.page_host[static_cast<size_t>(--l.pages_used)]);
  }
}

// One compressed layer (q in place, k / v written by qkv_rope): at position 0 the runtime's compressed
// kernel over the call's full K/V (kfull / vfull, transient), then the pools are filled; after that
// one token per call: its K/V are in the ring, the block it completes is summarised, and the split-K
// decode kernel runs over [routed summaries | raw rows c .. pos] gathered for this step.
Status CudaModel::Impl::compressed_attention(CudaLayer& l, int64_t p0, int64_t n) {
  const Config& c = cfg;
  const CompressedOptions& co = attn.compressed;
  const int64_t Hkv = c.n_kv_heads, dh = c.head_dim, Bs = co.block;
  if (p0 == 0) {
    bna::cuda::AttnArgs a;
    a.q = q.get(); a.k = kfull.get(); a.v = vfull.get(); a.out = o.get(); a.lse = lse.as<float>();
    a.B = 1; a.Hq = c.n_heads; a.Hkv = Hkv; a.T = n; a.dh = dh; a.dtype = DType::kBF16;
    bna::cuda::CompressedArgs ca;
    ca.tail = co.tail;
    ca.Bs = Bs;
    ca.N = l.routing.n_blocks;
    ca.indptr = l.r_indptr.as<int32_t>();
    ca.indices = l.r_indices.as<int32_t>();
    ca.routing_heads = 1;
    BNA_RETURN_IF_ERROR(ensure(cmp_ws, bna::cuda::compressed_workspace_bytes(a, Bs)));
    ca.workspace = cmp_ws.get();
    ca.workspace_bytes = cmp_ws.bytes();
    BNA_RETURN_IF_ERROR(bna::cuda::compressed_fwd(a, ca));
    cuda::BlockMeanArgs bm;
    bm.Hkv = Hkv; bm.dh = dh; bm.src_rows = n; bm.dst_rows = n_sum; bm.Bs = Bs;
    bm.j1 = std::min(n_sum, n / Bs);
    bm.src = kfull.as<uint16_t>(); bm.dst = l.sum_k.as<uint16_t>();
    BNA_RETURN_IF_ERROR(cuda::block_means(bm, nullptr));
    bm.src = vfull.as<uint16_t>(); bm.dst = l.sum_v.as<uint16_t>();
    BNA_RETURN_IF_ERROR(cuda::block_means(bm, nullptr));
    const int64_t r0 = std::max<int64_t>(0, n - R);
    BNA_RETURN_IF_ERROR(cuda::fill_ring(kfull.as<uint16_t>(), l.ring_k.as<uint16_t>(), Hkv, dh, n, R, r0, n, nullptr));
    return cuda::fill_ring(vfull.as<uint16_t>(), l.ring_v.as<uint16_t>(), Hkv, dh, n, R, r0, n, nullptr);
  }
  const int64_t pos = p0;  // n == 1 (checked by forward)
  if ((pos + 1) % Bs == 0 && pos / Bs < n_sum) {
    cuda::BlockMeanArgs bm;
    bm.Hkv = Hkv; bm.dh = dh; bm.src_rows = R; bm.ring = R; bm.dst_rows = n_sum; bm.Bs = Bs;
    bm.j0 = pos / Bs;
    bm.j1 = bm.j0 + 1;
    bm.src = l.ring_k.as<uint16_t>(); bm.dst = l.sum_k.as<uint16_t>();
    BNA_RETURN_IF_ERROR(cuda::block_means(bm, nullptr));
    bm.src = l.ring_v.as<uint16_t>(); bm.dst = l.sum_v.as<uint16_t>();
    BNA_RETURN_IF_ERROR(cuda::block_means(bm, nullptr));
  }
  const int64_t cut = std::max<int64_t>(0, pos - co.tail + 1);
  const int64_t nr = route_len[static_cast<size_t>(l.ordinal)];
  cuda::GatherArgs g;
  g.sum = l.sum_k.as<uint16_t>(); g.ring = l.ring_k.as<uint16_t>();
  g.blocks = route_dev.as<int32_t>() + l.ordinal * max_route;
  g.dst = scratch_k.as<uint16_t>();
  g.Hkv = Hkv; g.dh = dh; g.sum_rows = std::max<int64_t>(n_sum, 1); g.ring_rows = R; g.dst_rows = max_route + R;
  g.nr = nr; g.c = cut; g.n_raw = pos - cut + 1;
  BNA_RETURN_IF_ERROR(cuda::gather_compressed(g, nullptr));
  g.sum = l.sum_v.as<uint16_t>(); g.ring = l.ring_v.as<uint16_t>(); g.dst = scratch_v.as<uint16_t>();
  BNA_RETURN_IF_ERROR(cuda::gather_compressed(g, nullptr));
  bna::cuda::DecodeArgs a;
  a.q = q.get(); a.k = scratch_k.get(); a.v = scratch_v.get(); a.out = o.get(); a.lse = lse.as<float>();
  a.B = 1; a.Hq = c.n_heads; a.Hkv = Hkv; a.Tq = 1; a.Tk = nr + g.n_raw; a.dh = dh; a.dtype = DType::kBF16;
  a.kv_rows = max_route + R;
  BNA_RETURN_IF_ERROR(ensure(dec_ws, bna::cuda::decode_workspace_bytes(a, true, 0, 0, 0)));
  a.workspace = dec_ws.get();
  a.workspace_bytes = dec_ws.bytes();
  return bna::cuda::dense_decode(a);
}

Status CudaModel::Impl::norm(const float* xin, const DeviceBuffer& w, const DeviceBuffer& b, int64_t rows) {
  if (cfg.layer_norm)
    return cuda::layer_norm(xin, w.as<float>(), b.as<float>(), h.as<uint16_t>(), rows, cfg.hidden, cfg.norm_eps, nullptr);
  return cuda::rms_norm(xin, w.as<float>(), h.as<uint16_t>(), rows, cfg.hidden, cfg.norm_eps, nullptr);
}

Status CudaModel::Impl::grow_work(int64_t n, int64_t rows_out) {
  const Config& c = cfg;
  const size_t N = static_cast<size_t>(n);
  const size_t C = static_cast<size_t>(c.hidden), dh = static_cast<size_t>(c.head_dim);
  const size_t Hq = static_cast<size_t>(c.n_heads), Hkv = static_cast<size_t>(c.n_kv_heads);
  const size_t I = static_cast<size_t>(c.intermediate);
  BNA_RETURN_IF_ERROR(ensure(ids, N * 4));
  BNA_RETURN_IF_ERROR(ensure(x, N * C * 4));
  BNA_RETURN_IF_ERROR(ensure(h, N * C * 2));
  BNA_RETURN_IF_ERROR(ensure(qkv, N * (Hq + 2 * Hkv) * dh * 4));
  BNA_RETURN_IF_ERROR(ensure(q, N * Hq * dh * 2));
  BNA_RETURN_IF_ERROR(ensure(o, N * Hq * dh * 2));
  BNA_RETURN_IF_ERROR(ensure(ot, N * Hq * dh * 2));
  BNA_RETURN_IF_ERROR(ensure(gu, N * 2 * I * 2));  // bf16 gate | up, or GPT-2's f32 c_fc output [n, I]: the same bytes
  BNA_RETURN_IF_ERROR(ensure(act, N * I * 2));
  if (c.sandwich_norm || c.o_bias || c.gelu_mlp) BNA_RETURN_IF_ERROR(ensure(tmp, N * C * 4));
  if (n_compressed > 0 && pos == 0) {  // the prompt's K/V for the compressed kernel, one layer at a time
    BNA_RETURN_IF_ERROR(ensure(kfull, N * Hkv * dh * 2));
    BNA_RETURN_IF_ERROR(ensure(vfull, N * Hkv * dh * 2));
  }
  BNA_RETURN_IF_ERROR(ensure(lse, N * Hq * 4));
  BNA_RETURN_IF_ERROR(ensure(logits, static_cast<size_t>(rows_out) * static_cast<size_t>(c.vocab) * 4));
  return Status::ok();
}

// Dense or streams attention of the call's n queries (positions p0 ..) over the cache: the split-K
// decode kernels for up to 64 query rows per KV head after position 0, else the forward kernels with
// q_offset = p0 (prefill, one-shot or chunked).
Status CudaModel::Impl::attention(CudaLayer& l, bool sparse_layer, int64_t p0, int64_t n) {
  const Config& c = cfg;
  const int64_t W = std::min<int64_t>(attn.window, p0 + n), Sd = attn.landmark_stride;
  const auto* table = reinterpret_cast<const void* const*>(l.page_table.get());
  const int64_t n_table = static_cast<int64_t>(l.page_host.size());
  if (p0 == 0 || (c.n_heads / c.n_kv_heads) * n > 64) {
    bna::cuda::AttnArgs a;
    a.q = q.get(); a.k = l.k_cache.get(); a.v = l.v_cache.get(); a.out = o.get(); a.lse = lse.as<float>();
    a.B = 1; a.Hq = c.n_heads; a.Hkv = c.n_kv_heads; a.T = p0 + n; a.dh = c.head_dim; a.dtype = DType::kBF16;
    a.kv_rows = capacity;
    a.q_offset = p0;
    if (l.paged) {
      a.k = a.v = nullptr;
      a.kv_pages = table; a.kv_page = page; a.kv_pages_stride = n_table;
    }
    return sparse_layer ? bna::cuda::streams_fwd(a, W, Sd, extra_dev.as<int32_t>(), E)
                        : bna::cuda::dense_causal_fwd(a);
  }
  bna::cuda::DecodeArgs a;
  a.q = q.get(); a.k = l.k_cache.get(); a.v = l.v_cache.get(); a.out = o.get(); a.lse = lse.as<float>();
  a.B = 1; a.Hq = c.n_heads; a.Hkv = c.n_kv_heads; a.Tq = n; a.Tk = p0 + n; a.dh = c.head_dim; a.dtype = DType::kBF16;
  a.kv_rows = capacity;
  if (l.paged) {
    a.k = a.v = nullptr;
    a.kv_pages = table; a.kv_page = page; a.kv_pages_stride = n_table;
  }
  const size_t need = bna::cuda::decode_workspace_bytes(a, !sparse_layer, W, Sd, E);
  BNA_RETURN_IF_ERROR(ensure(dec_ws, need));
  a.workspace = dec_ws.get();
  a.workspace_bytes = dec_ws.bytes();
  return sparse_layer ? bna::cuda::streams_decode(a, W, Sd, extra_dev.as<int32_t>(), E) : bna::cuda::dense_decode(a);
}

CudaModel::CudaModel() : impl_(std::make_unique<Impl>()) {}
CudaModel::CudaModel(CudaModel&&) noexcept = default;
CudaModel& CudaModel::operator=(CudaModel&&) noexcept = default;
CudaModel::~CudaModel() = default;
const Config& CudaModel::config() const { return impl_->cfg; }
const AttentionOptions& CudaModel::attention() const { return impl_->attn; }
int64_t CudaModel::position() const { return impl_->pos; }
int64_t CudaModel::capacity() const { return impl_->capacity; }
size_t CudaModel::kv_bytes() const { return impl_->cache_bytes(); }
size_t CudaModel::graph_bytes() const {
  size_t b = impl_->extra_dev.bytes() + impl_->routing_bytes();
  for (const auto& g : impl_->graphs) b += static_cast<size_t>(g.options().num_cycles * g.size()) * 2 * sizeof(int32_t);
  return b;
}
size_t CudaModel::device_bytes() const {
  const Impl& M = *impl_;
  size_t pages_in_use = 0;
  for (const CudaLayer& l : M.layers) pages_in_use += static_cast<size_t>(l.pages_used) * M.page_bytes;
  // cache_bytes counts the pages in use; the pool holds them plus its free pages and the tables.
  return M.weight_bytes() + M.cache_bytes() - pages_in_use + M.pool_bytes() + M.extra_dev.bytes() + M.work_bytes();
}

Status CudaModel::set_attention(const AttentionOptions& o) {
  if (o.window < 0 || o.landmark_stride < 0 || o.num_cycles < 1 || o.num_cycles > 2048) {
    return invalid_argument("attention: window=" + S(o.window) + " landmark_stride=" + S(o.landmark_stride) +
                            " num_cycles=" + S(o.num_cycles) +
                            ", expected window >= 0, landmark_stride >= 0, 1 <= num_cycles <= 2048");
  }
  for (int64_t l : o.dense_layers)
    if (l < 0 || l >= impl_->cfg.layers)
      return invalid_argument("attention: dense layer " + S(l) + " out of range [0, " + S(impl_->cfg.layers) + ")");
  if (o.kv_page < 0 || o.kv_page > (int64_t{1} << 20) || (o.kv_page & (o.kv_page - 1)) != 0)
    return invalid_argument("attention: kv_page=" + S(o.kv_page) +
                            ", expected 0 (contiguous) or a power of two <= 2^20 (the CUDA page tables)");
  const CompressedOptions& co = o.compressed;
  if (o.kind == AttnKind::kCompressed) {
    if (co.tail < 1 || co.block < 1 || co.partner_count < 0 || co.local_blocks < 0 || co.sink_count < 0)
      return invalid_argument("attention: compressed tail=" + S(co.tail) + " block=" + S(co.block) + " partners=" +
                              S(co.partner_count) + " local=" + S(co.local_blocks) + " sinks=" + S(co.sink_count) +
                              ", expected tail, block >= 1 and counts >= 0");
    if (co.full_kv_reference)
      return unimplemented("attention: compressed full_kv_reference is a CPU test mode; the CUDA model keeps the pools");
  }
  Impl& M = *impl_;
  const AttentionOptions old = M.attn;
  M.attn = o;
  bool storage_changes = false;
  for (int64_t li = 0; li < M.cfg.layers; ++li) {
    const CudaLayer& l = M.layers[static_cast<size_t>(li)];
    storage_changes |= l.compressed != M.wants_compressed(li) || l.paged != M.wants_paged(li) ||
                       (l.paged && o.kv_page != M.page);
  }
  if (storage_changes && M.pos > 0) {
    M.attn = old;
    return unimplemented("attention: switching layers to or from compressed or paged storage (or the page size) with " +
                         S(M.pos) + " tokens cached; the CUDA model does that on an empty cache (reset first)");
  }
  if (storage_changes || o.kind == AttnKind::kCompressed) BNA_RETURN_IF_ERROR(M.allocate_storage());
  return M.rebuild_graphs();
}

Status CudaModel::reset(int64_t cap) {
  Impl& M = *impl_;
  const Config& c = M.cfg;
  if (cap < 1 || cap > (int64_t{1} << 30))
    return invalid_argument("model: KV capacity " + S(cap) + ", expected 1 <= capacity <= 2^30");
  if (c.learned_pos && cap > c.max_positions)  // the position table has no row beyond n_positions
    return invalid_argument("model: KV capacity " + S(cap) + " exceeds n_positions=" + S(c.max_positions));
  M.pos = 0;
  M.release_pages();
  if (cap != M.capacity || M.n_compressed > 0) {
    M.capacity = cap;
    BNA_RETURN_IF_ERROR(M.allocate_storage());
  }
  return M.rebuild_graphs();
}

Expected<std::vector<float>> CudaModel::forward(std::span<const int32_t> ids, bool all_logits, int64_t chunk) {
  return impl_->forward_chunked(ids, all_logits, chunk);
}

// Model::forward's chunking: everything that can fail on the whole input is checked before the first
// chunk, so an error leaves the cache as it was.
Expected<std::vector<float>> CudaModel::Impl::forward_chunked(std::span<const int32_t> ids, bool all_logits,
                                                             int64_t chunk) {
  const int64_t n_all = static_cast<int64_t>(ids.size());
  if (chunk < 0) return invalid_argument("model: chunk=" + S(chunk) + ", expected >= 0 (0 = one call)");
  if (chunk == 0 || chunk >= n_all) return forward(ids, all_logits, nullptr);
  if (pos + n_all > capacity)
    return invalid_argument("model: " + S(n_all) + " tokens do not fit the KV cache (" + S(pos) + " of " +
                            S(capacity) + " used)");
  for (int64_t i = 0; i < n_all; ++i)
    if (ids[i] < 0 || ids[i] >= cfg.vocab)
      return invalid_argument("model: token id " + S(ids[i]) + " at " + S(i) + " out of range [0, " + S(cfg.vocab) + ")");
  if (n_compressed > 0 && chunk > 1)
    return unimplemented("cuda model: chunk=" + S(chunk) +
                         " with compressed layers; they take a prompt in one call at position 0, then one token per call");
  std::vector<float> out;
  for (int64_t s0 = 0; s0 < n_all; s0 += chunk) {
    const int64_t e = std::min(n_all, s0 + chunk);
    BNA_ASSIGN_OR_RETURN(std::vector<float> part, forward(ids.subspan(static_cast<size_t>(s0), static_cast<size_t>(e - s0)),
                                                          all_logits, nullptr));
    if (all_logits || e == n_all) out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

Expected<int32_t> CudaModel::forward_greedy(std::span<const int32_t> ids) {
  int32_t tok = 0;
  BNA_RETURN_IF_ERROR(impl_->forward(ids, false, &tok).status());
  return tok;
}

// The forward of CudaModel::forward; with greedy != nullptr the last row's argmax is taken on the
// device and only it comes back (the logits stay on the device; the result vector is empty).
Expected<std::vector<float>> CudaModel::Impl::forward(std::span<const int32_t> ids, bool all_logits, int32_t* greedy) {
  Impl& M = *this;
  const Config& c = M.cfg;
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n == 0) return invalid_argument("model: forward of 0 tokens");
  if (M.pos + n > M.capacity)
    return invalid_argument("model: " + S(n) + " tokens do not fit the KV cache (" + S(M.pos) + " of " +
                            S(M.capacity) + " used)");
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= c.vocab)
      return invalid_argument("model: token id " + S(ids[i]) + " at " + S(i) + " out of range [0, " + S(c.vocab) + ")");
  const int64_t p0 = M.pos, Tk = p0 + n;
  if (p0 > 0 && n > 1 && M.n_compressed > 0)
    return unimplemented("cuda model: " + S(n) + " tokens at position " + S(p0) +
                         "; compressed layers decode one token per call on the CUDA backend");
  const int64_t rows_out = all_logits ? n : 1;
  BNA_RETURN_IF_ERROR(M.grow_work(n, rows_out));
  const bool butterfly = !M.graphs.empty();
  // An error after the graphs grew re-syncs them to the cache (the draws depend only on the seed and
  // the token count), so a failed call never leaves the graph ahead of the cache.
  struct GraphSync {
    Impl& M;
    bool done = false;
    ~GraphSync() {
      if (!done && !M.graphs.empty() && M.graphs[0].size() != M.pos) (void)M.rebuild_graphs();
    }
  } sync{M};
  if (butterfly) BNA_RETURN_IF_ERROR(M.append_graph_rows(p0, n));
  for (CudaLayer& l : M.layers)
    if (l.paged) BNA_RETURN_IF_ERROR(M.pages_for(l, Tk));
  const bool sparse = butterfly && Tk > M.attn.window + 1;
  if (M.n_compressed > 0 && p0 > 0) {  // this step's routed blocks, per compressed layer
    const int64_t cut = std::max<int64_t>(0, p0 - M.attn.compressed.tail + 1), Bs = M.attn.compressed.block;
    for (const CudaLayer& l : M.layers) {
      if (!l.compressed) continue;
      int64_t len = 0;
      for (const int32_t* j = l.routing.row_begin(0, p0 / Bs); j != l.routing.row_end(0, p0 / Bs); ++j)
        if ((static_cast<int64_t>(*j) + 1) * Bs <= cut) M.route_host[static_cast<size_t>(l.ordinal * M.max_route + len++)] = *j;
      M.route_len[static_cast<size_t>(l.ordinal)] = len;
    }
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(M.route_dev.get(), M.route_host.data(),
                                                  M.route_host.size() * sizeof(int32_t)));
  }
  const int64_t C = c.hidden, dh = c.head_dim, Hq = c.n_heads, Hkv = c.n_kv_heads, I = c.intermediate;
  const int64_t QKV = (Hq + 2 * Hkv) * dh;
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(M.ids.get(), ids.data(), static_cast<size_t>(n) * 4));
  // Learned positions (GPT-2): row p0 + t < capacity <= n_positions (reset).
  BNA_RETURN_IF_ERROR(cuda::embed(M.ids.as<int32_t>(), M.embed.as<uint16_t>(), M.pos_embed.as<uint16_t>(), p0,
                                  M.x.as<float>(), n, C, nullptr));
  for (int64_t li = 0; li < c.layers; ++li) {
    CudaLayer& l = M.layers[static_cast<size_t>(li)];
    BNA_RETURN_IF_ERROR(M.norm(M.x.as<float>(), l.ln1, l.ln1_b, n));
    BNA_RETURN_IF_ERROR(M.blas.linear(M.h.as<uint16_t>(), l.wqkv.as<uint16_t>(), M.qkv.get(), true, n, C, QKV));
    cuda::QkvArgs qa;
    qa.qkv = M.qkv.as<float>();
    qa.bias = l.bqkv.as<float>();
    qa.q_norm = l.q_norm.as<float>();
    qa.k_norm = l.k_norm.as<float>();
    qa.inv_freq = M.inv_freq.as<float>();
    qa.q = M.q.as<uint16_t>();
    qa.k_cache = l.k_cache.as<uint16_t>();
    qa.v_cache = l.v_cache.as<uint16_t>();
    qa.n = n; qa.Hq = Hq; qa.Hkv = Hkv; qa.dh = dh; qa.cap = M.capacity; qa.p0 = p0;
    qa.rotary_dim = c.learned_pos ? 0 : c.rotary_dim;  // 0: no RoPE (inv_freq is empty)
    if (l.paged) {
      qa.pages = l.page_table.as<uint16_t*>();
      qa.page = M.page;
    } else if (l.compressed && p0 == 0) {  // the prompt's K/V, whole, for the compressed kernel
      qa.k_cache = M.kfull.as<uint16_t>();
      qa.v_cache = M.vfull.as<uint16_t>();
      qa.cap = n;
    } else if (l.compressed) {      // the new token goes into the ring
      qa.k_cache = l.ring_k.as<uint16_t>();
      qa.v_cache = l.ring_v.as<uint16_t>();
      qa.cap = qa.ring = M.R;
    }
    qa.interleaved = c.rope_interleaved;
    qa.eps = c.norm_eps;
    BNA_RETURN_IF_ERROR(cuda::qkv_rope(qa, nullptr));
    const bool dense_layer = !sparse || std::find(M.attn.dense_layers.begin(), M.attn.dense_layers.end(), li) !=
                                            M.attn.dense_layers.end();
    if (l.compressed) BNA_RETURN_IF_ERROR(M.compressed_attention(l, p0, n));
    else BNA_RETURN_IF_ERROR(M.attention(l, !dense_layer, p0, n));
    BNA_RETURN_IF_ERROR(cuda::heads_to_tokens(M.o.as<uint16_t>(), M.ot.as<uint16_t>(), Hq, n, dh, nullptr));
    if (!c.sandwich_norm && !c.o_bias) {
      BNA_RETURN_IF_ERROR(M.blas.linear(M.ot.as<uint16_t>(), l.wo.as<uint16_t>(), M.x.get(), true, n, Hq * dh, C, 1.0f));
    } else {
      BNA_RETURN_IF_ERROR(M.blas.linear(M.ot.as<uint16_t>(), l.wo.as<uint16_t>(), M.tmp.get(), true, n, Hq * dh, C));
      BNA_RETURN_IF_ERROR(cuda::add_residual(M.x.as<float>(), M.tmp.as<float>(), l.bo.as<float>(),
                                             l.post_attn.as<float>(), n, C, c.norm_eps, nullptr));
    }
    BNA_RETURN_IF_ERROR(M.norm(M.x.as<float>(), l.ln2, l.ln2_b, n));
    if (c.gelu_mlp) {  // GPT-2: c_fc (f32 out, so the bias is added before any rounding), GELU, c_proj + bias
      BNA_RETURN_IF_ERROR(M.blas.linear(M.h.as<uint16_t>(), l.w_gu.as<uint16_t>(), M.gu.get(), true, n, C, I));
      BNA_RETURN_IF_ERROR(cuda::bias_gelu(M.gu.as<float>(), l.b_up.as<float>(), M.act.as<uint16_t>(), n, I, nullptr));
      BNA_RETURN_IF_ERROR(M.blas.linear(M.act.as<uint16_t>(), l.w_down.as<uint16_t>(), M.tmp.get(), true, n, I, C));
      BNA_RETURN_IF_ERROR(cuda::add_residual(M.x.as<float>(), M.tmp.as<float>(), l.b_down.as<float>(),
                                             l.post_mlp.as<float>(), n, C, c.norm_eps, nullptr));
      continue;
    }
    BNA_RETURN_IF_ERROR(M.blas.linear(M.h.as<uint16_t>(), l.w_gu.as<uint16_t>(), M.gu.get(), false, n, C, 2 * I));
    BNA_RETURN_IF_ERROR(cuda::swiglu(M.gu.as<uint16_t>(), M.act.as<uint16_t>(), n, I, nullptr));
    if (!c.sandwich_norm) {
      BNA_RETURN_IF_ERROR(M.blas.linear(M.act.as<uint16_t>(), l.w_down.as<uint16_t>(), M.x.get(), true, n, I, C, 1.0f));
    } else {
      BNA_RETURN_IF_ERROR(M.blas.linear(M.act.as<uint16_t>(), l.w_down.as<uint16_t>(), M.tmp.get(), true, n, I, C));
      BNA_RETURN_IF_ERROR(cuda::add_residual(M.x.as<float>(), M.tmp.as<float>(), nullptr, l.post_mlp.as<float>(), n, C,
                                             c.norm_eps, nullptr));
    }
  }
  const int64_t r0 = n - rows_out;
  BNA_RETURN_IF_ERROR(M.norm(M.x.as<float>() + r0 * C, M.norm_w, M.norm_b, rows_out));
  const DeviceBuffer& head = M.lm_head.get() != nullptr ? M.lm_head : M.embed;
  BNA_RETURN_IF_ERROR(M.blas.linear(M.h.as<uint16_t>(), head.as<uint16_t>(), M.logits.get(), true, rows_out, C, c.vocab));
  std::vector<float> out;
  if (greedy != nullptr) {
    BNA_RETURN_IF_ERROR(cuda::argmax(M.logits.as<float>(), c.vocab, M.ids.as<int32_t>(), nullptr));  // ids: free now
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_host(greedy, M.ids.get(), 4));  // synchronises
  } else {
    out.resize(static_cast<size_t>(rows_out * c.vocab));
    BNA_RETURN_IF_ERROR(bna::cuda::copy_to_host(out.data(), M.logits.get(), out.size() * 4));  // synchronises
  }
  M.pos = Tk;
  sync.done = true;
  return out;
}

}  // namespace bna::hf
