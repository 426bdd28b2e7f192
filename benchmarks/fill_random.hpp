#pragma once
/// Device buffers filled with deterministic pseudo-random values in [-0.5, 0.5) (the ceilings'
/// inputs: all-zero data draws less power and flatters a GEMM or a copy). The kernel is compiled
/// at run time with Strata's NVRTC helpers, like Strata's own.
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "strata/cuda/rtc/compiler.hpp"
#include "strata/cuda/rtc/library.hpp"

namespace strata_bench {

/// Element type of a buffer to fill.
enum class FillType { f32, f16, bf16 };

inline constexpr const char* fill_source = R"(
// murmur3's finaliser of the index: cheap, deterministic, well mixed; then [-0.5, 0.5).
__device__ float value(unsigned long long i) {
  unsigned x = static_cast<unsigned>(i) ^ static_cast<unsigned>(i >> 32);
  x ^= x >> 16; x *= 0x85ebca6bu; x ^= x >> 13; x *= 0xc2b2ae35u; x ^= x >> 16;
  return static_cast<float>(x & 0xffffu) / 65536.0f - 0.5f;
}
__device__ void put(float* p, float v) { *p = v; }
__device__ void put(unsigned short* p, float v, int kind) {
  if (kind == 1) { asm("cvt.rn.f16.f32 %0, %1;" : "=h"(*p) : "f"(v)); }
  else { asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(*p) : "f"(v)); }
}
extern "C" __global__ void fill(void* p, unsigned long long n, int kind) {
  const unsigned long long step = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
  for (unsigned long long i = blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
       i < n; i += step) {
    if (kind == 0) { put(static_cast<float*>(p) + i, value(i)); }
    else { put(static_cast<unsigned short*>(p) + i, value(i), kind); }
  }
}
)";

/// Enqueues the fill of `n` elements of type `type` at device address `p` on `stream`.
inline void fill_random(void* p, std::size_t n, FillType type, cudaStream_t stream) {
  static std::mutex mutex;
  static std::unique_ptr<strata::cuda::rtc::Library> lib;
  {
    const std::lock_guard lock(mutex);
    if (!lib) {
      const std::vector<std::string> names{"fill"};
      lib = std::make_unique<strata::cuda::rtc::Library>(
          strata::cuda::rtc::compile(fill_source, "strata_bench_fill", names,
                                     strata::cuda::rtc::current_arch()),
          names);
    }
  }
  strata::cuda::rtc::launch(lib->kernel("fill"), 1024, 256, stream, p,
                            static_cast<unsigned long long>(n), static_cast<int>(type));
}

}  // namespace strata_bench
