// SiLU forms on the GPU (session 67): each form's throughput in a loop bound by the XU pipe (a
// full grid, eight independent f16 pairs a thread), its error on every f16 input in [-16, 16]
// against the correctly rounded value (absolute, and in ulps of the result), and how many f16
// inputs give other bits than form 0 (__fdividef(x, 1 + __expf(-x)), the kernels' form before
// session 67). Form 4 is kernel_source.hpp's silu_fast. Not built by CMake; on the device:
//   nvcc -arch=sm_90 -O3 -std=c++17 benchmarks/silu_forms.cu -o /tmp/silu_forms && /tmp/silu_forms
#include <cuda_fp16.h>
#include <cstdio>
template <int F>
__device__ __forceinline__ unsigned silu2(unsigned v) {
  __half2 h = *reinterpret_cast<__half2*>(&v);
  float2 f = __half22float2(h);
  if constexpr (F == 0) {  // current: __expf + __fdividef
    f.x = __fdividef(f.x, 1.0f + __expf(-f.x));
    f.y = __fdividef(f.y, 1.0f + __expf(-f.y));
  } else if constexpr (F == 1) {  // tanh.approx.f32
    float t0, t1;
    asm("tanh.approx.f32 %0, %1;" : "=f"(t0) : "f"(0.5f * f.x));
    asm("tanh.approx.f32 %0, %1;" : "=f"(t1) : "f"(0.5f * f.y));
    f.x = fmaf(0.5f * f.x, t0, 0.5f * f.x);
    f.y = fmaf(0.5f * f.y, t1, 0.5f * f.y);
  } else if constexpr (F == 2) {  // tanh.approx.f16x2 on the packed half (x/2), silu = hx + hx*t
    __half2 hx = __hmul2(h, __float2half2_rn(0.5f));
    unsigned t, hxu = *reinterpret_cast<unsigned*>(&hx);
    asm("tanh.approx.f16x2 %0, %1;" : "=r"(t) : "r"(hxu));
    __half2 th = *reinterpret_cast<__half2*>(&t);
    __half2 r = __hfma2(hx, th, hx);
    return *reinterpret_cast<unsigned*>(&r);
  } else if constexpr (F == 3) {  // ex2.approx.f16x2 then f32 rcp
    __half2 m = __hmul2(h, __float2half2_rn(-1.4426950408889634f));
    unsigned e, mu = *reinterpret_cast<unsigned*>(&m);
    asm("ex2.approx.f16x2 %0, %1;" : "=r"(e) : "r"(mu));
    float2 ef = __half22float2(*reinterpret_cast<__half2*>(&e));
    f.x = __fdividef(f.x, 1.0f + ef.x);
    f.y = __fdividef(f.y, 1.0f + ef.y);
  } else if constexpr (F == 4) {  // ex2.approx.f32 + rcp.approx.ftz.f32 (raw)
    float e0, e1, r0, r1;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e0) : "f"(-1.4426950408889634f * f.x));
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e1) : "f"(-1.4426950408889634f * f.y));
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r0) : "f"(1.0f + e0));
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r1) : "f"(1.0f + e1));
    f.x *= r0; f.y *= r1;
  } else if constexpr (F == 6 || F == 7) {  // ex2.ftz on -|x|, 1/(1+e) by Newton (FMA only), symmetry
    float xs[2] = {f.x, f.y};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float x = xs[i];
      float e;
      asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(-1.4426950408889634f * fabsf(x)));
      const float y = 1.0f + e;
      float r = fmaf(-0.47058823529411764f, y, 1.4117647058823530f);
      r = fmaf(r, fmaf(-y, r, 1.0f), r);
      r = fmaf(r, fmaf(-y, r, 1.0f), r);
      if constexpr (F == 7) r = fmaf(r, fmaf(-y, r, 1.0f), r);
      xs[i] = x * (x >= 0.0f ? r : e * r);
    }
    f.x = xs[0]; f.y = xs[1];
  } else if constexpr (F == 5) {  // none: conversion only
  }
  __half2 r = __float22half2_rn(f);
  return *reinterpret_cast<unsigned*>(&r);
}
template <int F>
__global__ void k(unsigned* out, int iters) {
  unsigned v[8];
  for (int i = 0; i < 8; ++i) v[i] = 0x3c003c00u ^ (threadIdx.x * 7 + i * 13);
  for (int it = 0; it < iters; ++it)
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = silu2<F>(v[i]) ^ 0x00010001u;
  unsigned s = 0;
  for (int i = 0; i < 8; ++i) s ^= v[i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
// Accuracy against double over all f16 in [-16, 16]
template <int F>
__global__ void acc(float* err, const float* ref) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= 65536) return;
  __half h = __ushort_as_half(static_cast<unsigned short>(i));
  float x = __half2float(h);
  if (!(fabsf(x) <= 16.0f)) { err[i] = 0; err[65536 + i] = 0; return; }
  unsigned u = (unsigned)i | ((unsigned)i << 16);
  unsigned r = silu2<F>(u);
  float y = __half2float(__ushort_as_half(static_cast<unsigned short>(r & 0xffff)));
  err[i] = fabsf(y - ref[i]);
  // (in ulps of the reference's f16: the spacing at its magnitude)
  float rr = fabsf(ref[i]);
  int e; frexpf(rr, &e);
  float ulp = rr < 6.103515625e-05f ? 5.9604644775390625e-08f : ldexpf(1.0f, e - 11);
  err[65536 + i] = fabsf(y - ref[i]) / ulp;
}
template <int F>
__global__ void diff(int* cnt) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= 65536) return;
  unsigned u = (unsigned)i | ((unsigned)i << 16);
  unsigned a = silu2<F>(u), b = silu2<0>(u);
  __half ha = __ushort_as_half((unsigned short)(a & 0xffff));
  if ((a & 0xffff) != (b & 0xffff) && !__hisnan(ha)) atomicAdd(cnt, 1);
}
#include <cmath>
#include <vector>
float h2f(unsigned short b) { unsigned s = b >> 15, e = (b >> 10) & 31, m = b & 1023; float v; if (e == 0) v = std::ldexp((float)m, -24); else if (e == 31) v = NAN; else v = std::ldexp((float)(m | 1024), (int)e - 25); return s ? -v : v; }
template <int F>
void run(const char* name, unsigned* d, float* de, float* dref) {
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  int blocks = 132 * 8, iters = 2000;
  k<F><<<blocks, 256>>>(d, 10);
  cudaEventRecord(a);
  k<F><<<blocks, 256>>>(d, iters);
  cudaEventRecord(b); cudaEventSynchronize(b);
  float ms; cudaEventElapsedTime(&ms, a, b);
  double n = 2.0 * 8 * iters * blocks * 256;
  acc<F><<<256, 256>>>(de, dref);
  std::vector<float> e(131072); cudaMemcpy(e.data(), de, 4 * 131072, cudaMemcpyDeviceToHost);
  float wu = 0; int wui = 0, over1 = 0;
  for (int i = 0; i < 65536; ++i) { float u = e[65536 + i]; if (u > wu) { wu = u; wui = i; } over1 += u > 1.01f; }
  float worst = 0; double sum = 0; int wi = 0, cnt = 0;
  for (int i = 0; i < 65536; ++i) { if (e[i] > worst) { worst = e[i]; wi = i; } sum += e[i]; cnt += e[i] > 0; }
  int* dc; cudaMalloc(&dc, 4); cudaMemset(dc, 0, 4); diff<F><<<256, 256>>>(dc); int nd = 0; cudaMemcpy(&nd, dc, 4, cudaMemcpyDeviceToHost); cudaFree(dc);
  printf("%-22s %7.1f G/s  worst abs %.3g (0x%04x)  off %d  !=now %d  worst ulps %.1f (0x%04x = %g)  >1ulp %d\n", name, n / ms / 1e6, worst, wi, cnt, nd, wu, wui, h2f(wui), over1);
}
int main() {
  unsigned* d; float *de, *dref; cudaMalloc(&d, 4 * 132 * 8 * 256); cudaMalloc(&de, 4 * 131072); cudaMalloc(&dref, 4 * 65536);
  std::vector<float> ref(65536);
  for (int i = 0; i < 65536; ++i) { double x = h2f(i); double y = x / (1 + std::exp(-x));
    // the f16 rounding of the exact value
    __half hh = __double2half(y); ref[i] = __half2float(hh); }
  cudaMemcpy(dref, ref.data(), 4 * 65536, cudaMemcpyHostToDevice);
  run<5>("convert only", d, de, dref);
  run<0>("__expf+__fdividef (now)", d, de, dref);
  run<4>("ex2+rcp raw", d, de, dref);
  run<1>("tanh.approx.f32", d, de, dref);
  run<3>("ex2.f16x2 + f32 rcp", d, de, dref);
  run<2>("tanh.approx.f16x2", d, de, dref);
  run<6>("ex2.ftz + 2 Newton", d, de, dref);
  run<7>("ex2.ftz + 3 Newton", d, de, dref);
}
