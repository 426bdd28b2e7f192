// The one kernel of the benchmark's own: see fill_random.hpp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "fill_random.hpp"

namespace strata_bench {
namespace {

template <class T>
__global__ void fill_kernel(T* p, std::size_t n) {
  const std::size_t step = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += step) {
    // An integer hash of the index (murmur3's finaliser): cheap, deterministic, well mixed.
    std::uint32_t x = static_cast<std::uint32_t>(i) ^ static_cast<std::uint32_t>(i >> 32);
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    p[i] = static_cast<T>(static_cast<float>(x & 0xffffu) / 65536.0f - 0.5f);
  }
}

}  // namespace

void fill_random(void* p, std::size_t n, FillType type, cudaStream_t stream) {
  switch (type) {
    case FillType::f32:
      fill_kernel<<<1024, 256, 0, stream>>>(static_cast<float*>(p), n);
      break;
    case FillType::f16:
      fill_kernel<<<1024, 256, 0, stream>>>(static_cast<__half*>(p), n);
      break;
    case FillType::bf16:
      fill_kernel<<<1024, 256, 0, stream>>>(static_cast<__nv_bfloat16*>(p), n);
      break;
  }
  const cudaError_t st = cudaGetLastError();
  if (st != cudaSuccess) {
    throw std::runtime_error(std::string("fill_random: ") + cudaGetErrorString(st));
  }
}

}  // namespace strata_bench
