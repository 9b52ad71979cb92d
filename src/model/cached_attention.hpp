// Internal: attention of a few query rows against the KV cache of model::Gpt::decode, one (query
// row, KV head) at a time, reading the cache in place ([Hkv, capacity, dh] per layer; no copy, no plan).
// Decisions: the caller gives each row's key list (row p of the layer's fixed T = seq_len structure,
// keys <= p), so a decode step costs O(Hq * keys * dh) whatever the cache length for sparse layers;
// the G query heads of a KV head share one pass over its K/V rows. Softmax in two passes in f32
// (max, then exp-sum and the weighted V sum), the same math as the planned kernels up to summation order.
#pragma once

#include <cstdint>

namespace bna::model::detail {

// One (query row, KV head): G query rows q [G, dh] with row stride q_stride, attended over the keys
// keys[0..n) (positions into the cache; nullptr means 0, 1, .., n-1) of that KV head's cache rows
// k, v [capacity, dh]. Writes out [G, dh] (row stride out_stride): softmax(scale * q k^T) v; n = 0
// writes zeros. scores: scratch of at least G * n floats.
void attend_cached_row(const float* q, int64_t q_stride, int64_t G, const float* k, const float* v, int64_t dh,
                       const int32_t* keys, int64_t n, float scale, float* scores, float* out, int64_t out_stride);

}  // namespace bna::model::detail
