// Host-side argument checks of the CUDA GPT step's kernels (src/model/cuda/gpt_kernels.hpp) and of
// the cuBLASLt product (src/nn/cuda/blas.hpp): bad arguments are refused, named, before any launch.
// No device is needed (a CPU test: CI builds CUDA but has no GPU): the pointers are never
// dereferenced, and an argument that passed the checks would reach the launch and fail there with a
// CUDA error instead of kInvalidArgument.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "bna/status.hpp"

#ifdef BNA_HAVE_CUDA
#include "model/cuda/gpt_kernels.hpp"
#include "nn/cuda/blas.hpp"

namespace {

namespace mc = bna::model::cuda;

void expect_refused(const bna::Status& st, const char* what) {
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find(what), std::string::npos) << st.to_string();
}

template <class T>
T* fake(uintptr_t offset = 0) {
  return reinterpret_cast<T*>((uintptr_t{1} << 20) + offset);
}

TEST(CudaGptKernelArgs, RefusedBeforeAnyLaunch) {
  // Cross-entropy: rows of ld % 8 != 0, ld < V, logits off the 16-byte grid.
  expect_refused(mc::cross_entropy(fake<uint16_t>(), fake<int32_t>(), fake<float>(), fake<float>(), fake<uint16_t>(), 1.0f,
                                   4, 100, 100),
                 "ld=100");
  expect_refused(mc::cross_entropy(fake<uint16_t>(), fake<int32_t>(), fake<float>(), fake<float>(), fake<uint16_t>(), 1.0f,
                                   4, 200, 128),
                 "V=200");
  expect_refused(mc::cross_entropy(fake<uint16_t>(2), fake<int32_t>(), fake<float>(), fake<float>(), fake<uint16_t>(),
                                   1.0f, 4, 100, 128),
                 "aligned");
  // LayerNorm: C out of range.
  expect_refused(mc::layernorm_fwd(fake<float>(), fake<float>(), fake<float>(), fake<uint16_t>(), fake<float>(),
                                   fake<float>(), 4, 0),
                 "C=0");
  expect_refused(mc::layernorm_bwd(fake<float>(), fake<float>(), fake<float>(), fake<float>(), fake<float>(),
                                   fake<float>(), nullptr, fake<float>(), fake<float>(), 4, 7000),
                 "C=7000");
  // AdamW: buffers the 4-element groups cannot read, or a bad tensor table.
  mc::AdamWArgs a;
  a.w = fake<float>(4);
  a.g = a.m = a.v = fake<float>();
  a.n = 16;
  a.offsets = fake<int64_t>();
  a.decay = fake<uint8_t>();
  a.tensors = 1;
  expect_refused(mc::adamw(a), "16-byte aligned");
  a.w = fake<float>();
  a.tensors = 0;
  expect_refused(mc::adamw(a), "tensors=0");
  // Layout kernels: dh not a multiple of 8.
  expect_refused(mc::split_qkv(fake<uint16_t>(), fake<uint16_t>(), fake<uint16_t>(), fake<uint16_t>(), 1, 4, 2, 2, 12),
                 "dh=12");
}

TEST(CudaBlasArgs, MatmulRefusesBadArgumentsBeforeTheHandle) {
  const bna::nn::cuda::Blas none;  // never created: a valid call would fail with kInternal
  using Mm = bna::nn::cuda::Blas::Matmul;
  Mm m{.M = 64, .N = 64, .K = 64, .A = fake<uint16_t>(), .B = fake<uint16_t>(), .D = fake<uint16_t>()};
  Mm bad = m;
  bad.K = 0;
  expect_refused(none.matmul(bad), "K=0");
  bad = m;
  bad.B = nullptr;
  expect_refused(none.matmul(bad), "null A, B or D");
  bad = m;
  bad.epilogue = bna::nn::cuda::Blas::Epilogue::kGeluAux;  // no aux buffer
  expect_refused(none.matmul(bad), "aux");
  bad.aux = fake<uint16_t>(2);  // aux off the 16-byte grid
  expect_refused(none.matmul(bad), "aligned aux");
  bad.aux = fake<uint16_t>();
  bad.d_f32 = true;  // epilogues write bf16 only
  expect_refused(none.matmul(bad), "bf16 D");
  bad.d_f32 = false;
  bad.N = 60;
  expect_refused(none.matmul(bad), "N=60");
  EXPECT_EQ(none.matmul(m).code(), bna::StatusCode::kInternal);  // valid arguments reach the (missing) handle
}

}  // namespace
#endif  // BNA_HAVE_CUDA
