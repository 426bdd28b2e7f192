// The GPU tests' main: without a CUDA device every test reports "SKIPPED: no CUDA device" and
// the binary exits with 77, which CTest counts as skipped (SKIP_RETURN_CODE).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <cstdio>

int main(int argc, char** argv) {
  int count = 0;
  const cudaError_t st = cudaGetDeviceCount(&count);
  if (st != cudaSuccess || count == 0) {
    std::printf("SKIPPED: no CUDA device (%s)\n",
                st != cudaSuccess ? cudaGetErrorString(st) : "0 devices");
    return 77;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    std::printf("GPU: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
