// A stand-in for the CUDA runtime's device queries, preloaded (LD_PRELOAD) into the rtc tests on
// a machine without a GPU, so that the host-side choices those tests check — which variants a
// tactic offers, which it claims, what source it generates — are also made with a Hopper GPU's
// answers: compute capability 9.0, 132 SMs, 227 KiB of shared memory a block may opt into (an
// H100 SXM's and an H200's) — the attributes Strata's tactics ask for; any other is refused. Without it those checks only ever see "no device" (a machine
// without a GPU) — in session 30 three of them had gone stale unnoticed, and failed when first
// run on an H200. Nothing else of the runtime is replaced: the rtc tests launch no kernel.
#include <cuda_runtime_api.h>

extern "C" {

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) {
    return cudaErrorInvalidDevice;
  }
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = 132; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 232448; return cudaSuccess;
    default: return cudaErrorInvalidValue;
  }
}

}  // extern "C"
