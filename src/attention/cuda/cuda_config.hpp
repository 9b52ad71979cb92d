// Which head dims the CUDA kernels are instantiated for (CMake option BNA_CUDA_HEAD_DIMS, a subset of
// "64;128", defines BNA_CUDA_DH64 / BNA_CUDA_DH128). Fewer head dims halve the CUDA compile time (CI).
// A call with a head dim that was not compiled in gets an invalid_argument Status naming the option.
#pragma once

#if !defined(BNA_CUDA_DH64) && !defined(BNA_CUDA_DH128)
#define BNA_CUDA_DH64 1
#define BNA_CUDA_DH128 1
#endif
#ifndef BNA_CUDA_DH64
#define BNA_CUDA_DH64 0
#endif
#ifndef BNA_CUDA_DH128
#define BNA_CUDA_DH128 0
#endif

namespace bna::cuda::detail {
inline bool head_dim_compiled(long long dh) { return (dh == 64 && BNA_CUDA_DH64) || (dh == 128 && BNA_CUDA_DH128); }
}  // namespace bna::cuda::detail
