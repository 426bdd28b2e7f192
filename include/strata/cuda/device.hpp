#pragma once
/// Questions about the machine's CUDA devices that never throw: whether one is usable, and its
/// name. For programs that choose between the GPU and the CPU reference.
#include <cuda_runtime.h>

#include <string>

namespace strata::cuda {

/// Whether at least one CUDA device can be used (a driver, a device, a matching runtime).
[[nodiscard]] inline bool device_available() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

/// The name of device `device` ("NVIDIA H100 80GB HBM3"), or "" when it cannot be read.
[[nodiscard]] inline std::string device_name(int device = 0) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    return {};
  }
  return prop.name;
}

/// The compute capability of the current device as one number (90 for sm_90), or 0 when it
/// cannot be read (no device).
[[nodiscard]] inline int device_arch() {
  int device = 0;
  int major = 0;
  int minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return major * 10 + minor;
}

}  // namespace strata::cuda
