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

}  // namespace strata::cuda
