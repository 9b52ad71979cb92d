// Host-side validation of the CUDA attention arguments' strides (cuda/launch.hpp AttnArgs::q_strides,
// kv_strides, o_strides): layouts that would put two elements of an output at one address, strides
// off the 16-byte grid, strides with a query offset and strides on a contiguous-only kernel are
// refused before any launch. No device is needed (a CPU test: CI builds CUDA but has no GPU); the
// pointers are never dereferenced, and an argument that passed validation would reach the launch
// and fail there with a CUDA error instead of kInvalidArgument. The strided kernels themselves are
// checked on a GPU by tests/attention_cuda/attn_strides_test.cpp.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "bna/status.hpp"

#ifdef BNA_HAVE_CUDA
#include "attention/cuda/launch.hpp"

namespace {

TEST(StridedViewsValidation, RejectedBeforeAnyLaunch) {
  auto* fake = reinterpret_cast<void*>(uintptr_t{1} << 20);
  bna::cuda::AttnArgs a;
  a.q = a.k = a.v = fake;
  a.out = fake;
  a.lse = static_cast<float*>(fake);
  a.B = 2; a.Hq = 2; a.Hkv = 2; a.T = 64; a.dh = 64;
  auto token_major = [&](int64_t* s, int64_t ld) { s[0] = 64 * ld; s[1] = 64; s[2] = ld; };
  token_major(a.q_strides, 6 * 64);
  token_major(a.kv_strides, 6 * 64);
  token_major(a.o_strides, 2 * 64);
  auto expect_refused = [](const bna::Status& st, const char* what, const char* why) {
    EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument) << why << ": " << st.to_string();
    EXPECT_NE(st.message().find(what), std::string::npos) << why << ": " << st.to_string();
  };
  bna::cuda::AttnArgs b = a;
  b.o_strides[2] = 64;  // row stride == head stride: rows of head 1 land on head 0's next rows
  expect_refused(bna::cuda::dense_causal_fwd(b), "overlap", "head and row strides equal");
  b = a;
  b.o_strides[0] = 0;  // both batch rows write one place
  expect_refused(bna::cuda::dense_causal_fwd(b), "overlap", "batch stride 0 with B=2");
  b = a;
  b.q_strides[2] = 64;  // 2 heads of 64 in a 64-wide row: dq would overlap in backward
  bna::cuda::AttnBwdArgs bw;
  bw.fwd = b;
  bw.dout = bw.dq = bw.dk = bw.dv = fake;
  bw.workspace = fake;
  bw.workspace_bytes = size_t{1} << 30;
  expect_refused(bna::cuda::dense_causal_bwd(bw), "overlap", "q heads wider than the row");
  b = a;
  b.kv_strides[1] = 100;
  expect_refused(bna::cuda::streams_fwd(b, 16, 16, nullptr, 0), "stride 100", "head stride not a multiple of 8");
  expect_refused(bna::cuda::gather_fwd(a, static_cast<const int32_t*>(fake), 4), "strided", "gather reads contiguous");
  b = a;
  b.q_offset = 8;
  expect_refused(bna::cuda::dense_causal_fwd(b), "q_offset=8", "strides with a query offset");
}

}  // namespace
#endif  // BNA_HAVE_CUDA
