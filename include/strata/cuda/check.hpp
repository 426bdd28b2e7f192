#pragma once
/// Status checks for CUDA, cuDNN and cuBLAS(Lt): a failed call throws strata::Error carrying the
/// call's text, file:line, the layer being planned or run (when one is), and the library's own
/// message. Host-compilable (no kernels).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <sstream>
#include <string>
#include <string_view>

#include "strata/core/error.hpp"

namespace strata::cuda {

namespace detail {

/// The label of the layer whose work is under way on this thread ("" when none).
inline thread_local std::string_view current_layer{};

[[noreturn]] inline void throw_call_error(std::string_view library, std::string_view call,
                                          std::string_view where, long code,
                                          std::string_view message) {
  std::ostringstream os;
  os << library << " call failed: " << call << " -> " << message << " (status " << code << ")";
  if (!current_layer.empty()) {
    os << " in layer '" << current_layer << "'";
  }
  os << " [" << where << "]";
  throw Error(os.str());
}

inline const char* cublas_status_text(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cuBLAS status";
}

inline std::string cudnn_message(cudnnStatus_t s) {
  std::string m = cudnnGetErrorString(s);
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof(detail));
  if (detail[0] != '\0') {
    m += ": ";
    m += detail;
  }
  return m;
}

}  // namespace detail

/// Names the layer whose work follows on this thread, for error messages, until destroyed.
class LayerScope {
 public:
  explicit LayerScope(std::string_view label) : previous_(detail::current_layer) {
    detail::current_layer = label;
  }
  ~LayerScope() { detail::current_layer = previous_; }
  LayerScope(const LayerScope&) = delete;
  LayerScope& operator=(const LayerScope&) = delete;

 private:
  std::string_view previous_;
};

}  // namespace strata::cuda

/// Checks a CUDA runtime call; throws strata::Error with the call, place, layer and message.
#define STRATA_CUDA_CHECK(call)                                                               \
  do {                                                                                        \
    const cudaError_t strata_status_ = (call);                                                \
    if (strata_status_ != cudaSuccess) {                                                      \
      ::strata::cuda::detail::throw_call_error("CUDA", #call, STRATA_HERE,                    \
                                               static_cast<long>(strata_status_),             \
                                               cudaGetErrorString(strata_status_));           \
    }                                                                                         \
  } while (false)

/// Checks a cuDNN call.
#define STRATA_CUDNN_CHECK(call)                                                              \
  do {                                                                                        \
    const cudnnStatus_t strata_status_ = (call);                                              \
    if (strata_status_ != CUDNN_STATUS_SUCCESS) {                                             \
      ::strata::cuda::detail::throw_call_error("cuDNN", #call, STRATA_HERE,                   \
                                               static_cast<long>(strata_status_),             \
                                               ::strata::cuda::detail::cudnn_message(         \
                                                   strata_status_));                          \
    }                                                                                         \
  } while (false)

/// Checks a cuBLAS or cuBLASLt call.
#define STRATA_CUBLAS_CHECK(call)                                                             \
  do {                                                                                        \
    const cublasStatus_t strata_status_ = (call);                                             \
    if (strata_status_ != CUBLAS_STATUS_SUCCESS) {                                            \
      ::strata::cuda::detail::throw_call_error(                                               \
          "cuBLAS", #call, STRATA_HERE, static_cast<long>(strata_status_),                    \
          ::strata::cuda::detail::cublas_status_text(strata_status_));                        \
    }                                                                                         \
  } while (false)
