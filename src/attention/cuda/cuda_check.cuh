// BNA_CUDA_TRY: turn a failed CUDA runtime call into a returned bna::Status naming the call.
// Every runtime call in src/attention/cuda goes through it; every launch is followed by
// BNA_CUDA_TRY(cudaGetLastError()).
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "bna/status.hpp"

#define BNA_CUDA_TRY(call)                                                                      \
  do {                                                                                          \
    cudaError_t bna_err_ = (call);                                                              \
    if (bna_err_ != cudaSuccess)                                                                \
      return ::bna::internal_error(std::string("cuda: ") + #call + " failed: " +               \
                                   cudaGetErrorName(bna_err_) + " (" +                          \
                                   cudaGetErrorString(bna_err_) + ")");                         \
  } while (0)
