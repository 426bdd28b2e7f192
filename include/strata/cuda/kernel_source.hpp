#pragma once
/// The source of Strata's generic CUDA kernels (layout and precision conversion, the pointwise
/// epilogue, pooling, softmax, the direct convolution, space-to-depth, subsampling), compiled at
/// run time by NVRTC for the GPU at hand and cached on disk (strata/cuda/rtc/). Templates on the
/// element type (float, strata_rtc::f16, strata_rtc::bf16) and the index type (int, or long
/// long when a tensor needs 64-bit indices); the launchers are in strata/cuda/kernels.hpp.
#include <string>
#include <string_view>

namespace strata::cuda::kernels {

/// What every run-time compiled Strata kernel starts with (namespace strata_rtc): the parameter
/// structs, 16-bit conversions, load/store in f32, the activations, 8-wide 16-byte access.
inline constexpr std::string_view kernel_prelude = R"strata_rtc(
// Strata's CUDA kernels, compiled at run time by NVRTC (strata/cuda/rtc/): self-contained —
// no header is included, so no CUDA include path is needed where the engine runs. The
// parameter structs mirror the host's (strata/cuda/kernels.hpp, strata/layers/layer.hpp)
// member for member. Every value is computed in f32; 16-bit types are stored as their bits
// and converted with the same PTX instructions cuda_fp16.h / cuda_bf16.h use.
namespace strata_rtc {

template <class A, class B> struct is_same { static constexpr bool value = false; };
template <class A> struct is_same<A, A> { static constexpr bool value = true; };

/// IEEE half and bfloat16, as stored (2 bytes each).
struct alignas(2) f16 { unsigned short bits; };
struct alignas(2) bf16 { unsigned short bits; };

enum class Act : unsigned char {
  none, relu, leaky_relu, clip, sigmoid, tanh, elu, gelu, gelu_tanh, silu, hardswish, hardsigmoid, mish
};
struct ActDesc { Act kind; float alpha; float beta; };
struct Strides { long long image; long long pixel; long long channel; };
struct PoolShape { int n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw; bool is_max; bool count_include_pad; };
struct ConvShape { int n, cp, h, w, k, kd, kp, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups, cg; int creal; };
struct ResizeShape { int n, c, h, w, oh, ow, sh, sw; bool bilinear; bool align_corners; };
struct ConvTShape { int n, c, h, w, k, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups; };

__device__ __forceinline__ float to_float(f16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits));
  return f;
}
__device__ __forceinline__ float to_float(bf16 b) {
  return __uint_as_float(static_cast<unsigned>(b.bits) << 16);
}
__device__ __forceinline__ f16 to_f16(float f) {
  f16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(f));
  return h;
}
__device__ __forceinline__ bf16 to_bf16(float f) {
  bf16 b;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(b.bits) : "f"(f));
  return b;
}

template <class T>
__device__ __forceinline__ float load(const T* p) {
  if constexpr (is_same<T, float>::value) {
    return *p;
  } else if constexpr (is_same<T, unsigned char>::value) {
    return static_cast<float>(*p);
  } else {
    return to_float(*p);
  }
}

/// An input value after the caller's per-channel normalization: x·affine[2c] + affine[2c+1]
/// (affine null: x).
__device__ __forceinline__ float normalize(float x, const float* affine, int c) {
  return affine == nullptr ? x : fmaf(x, affine[2 * c], affine[2 * c + 1]);
}

template <class T>
__device__ __forceinline__ void store(T* p, float v) {
  if constexpr (is_same<T, float>::value) {
    *p = v;
  } else if constexpr (is_same<T, f16>::value) {
    *p = to_f16(v);
  } else {
    *p = to_bf16(v);
  }
}

/// `v` as a T holds it (rounded to 16 bits for f16 and bf16): a value as one op stores it for
/// the next, where a fused kernel hands it over in registers.
template <class T>
__device__ __forceinline__ float as_stored(float v) {
  T r;
  store(&r, v);
  return load(&r);
}

/// act(x) in f32, the same functions as the CPU reference.
__device__ __forceinline__ float activate(ActDesc a, float x) {
  switch (a.kind) {
    case Act::none: return x;
    case Act::relu: return x > 0.0f ? x : 0.0f;
    case Act::leaky_relu: return x > 0.0f ? x : a.alpha * x;
    case Act::clip: return fminf(fmaxf(x, a.alpha), a.beta);
    case Act::sigmoid: return 1.0f / (1.0f + expf(-x));
    case Act::tanh: return tanhf(x);
    case Act::elu: return x > 0.0f ? x : a.alpha * expm1f(x);
    case Act::gelu: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case Act::gelu_tanh: {
      const float k = 0.79788456080286536f;  // sqrt(2/pi)
      return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
    case Act::silu: return x / (1.0f + expf(-x));
    case Act::hardswish: return x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case Act::hardsigmoid: return fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case Act::mish: {
      // softplus(x) = log1p(exp(x)), which is x itself (in f32) past 20, where exp would overflow.
      const float sp = x > 20.0f ? x : log1pf(expf(x));
      return x * tanhf(sp);
    }
  }
  return x;
}


/// act(x) for an activation kind fixed at compile time (a, its parameters): what activate()
/// computes, without the other kinds' code where many call sites are unrolled. SiLU as x times
/// the approximate reciprocal of 1 + 2^(-x log2 e) (a few f32 ulps from activate()'s, far below
/// the 16-bit rounding these kernels store with; 0 or -0 where 1 + e^-x overflows, as there):
/// the flush-to-zero forms of ex2 and rcp, one XU operation each and nothing else — __expf and
/// __fdividef added predicated rescaling FMULs and the compares that guard them, for operands
/// SiLU never gives them (a denormal power of 2 is 0 beside the 1 it is added to; 1 + e^-x is at
/// least 1): about 13 warp instructions a value in all (Nsight Compute, EfficientNet-B0's
/// features.2.0 expand_depthwise, H100, session 67); three fewer a call site now (sm_90, static).
/// The same values: equal to the bit on every f16 input (H100, session 67), and for f32 inputs
/// wherever 1 + e^-x stays below 2^126.
__device__ __forceinline__ float silu_fast(float x) {
#ifdef __CUDA_ARCH__
  float e, r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(x * -1.4426950408889634f));
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(1.0f + e));
  return x * r;
#else
  return x / (1.0f + expf(-x));
#endif
}
template <Act A>
__device__ __forceinline__ float activate_as(ActDesc a, float x) {
  if constexpr (A == Act::silu) {
    return silu_fast(x);
  } else {
    a.kind = A;
    return activate(a, x);
  }
}

/// Two floats rounded to a pair of T (f16 or bf16), the first in the low half (lower address).
/// (The paired forms are sm_80's; f16 on an older GPU takes one conversion a value, the same
/// values. bf16 needs sm_80 anyway.)
template <class T>
__device__ __forceinline__ unsigned pack2(float lo, float hi) {
  unsigned r;
  if constexpr (is_same<T, bf16>::value) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
#if __CUDA_ARCH__ >= 800
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
#else
    r = static_cast<unsigned>(to_f16(lo).bits) | (static_cast<unsigned>(to_f16(hi).bits) << 16);
#endif
  }
  return r;
}
/// f(a, b) of each f16 pair of a and b, in f32 and rounded back (max2 and min2 before sm_80,
/// where that is exact).
template <class F>
__device__ __forceinline__ unsigned f16_pairs_via_f32(unsigned a, unsigned b, F f) {
  const f16 a0{static_cast<unsigned short>(a)}, a1{static_cast<unsigned short>(a >> 16)};
  const f16 b0{static_cast<unsigned short>(b)}, b1{static_cast<unsigned short>(b >> 16)};
  return pack2<f16>(f(to_float(a0), to_float(b0)), f(to_float(a1), to_float(b1)));
}
/// The larger of each pair of T (f16 or bf16) in a and b (as fmaxf: a NaN loses); neg_inf2: a
/// pair of -infinity. (f16 before sm_80: through f32, exact.)
template <class T>
__device__ __forceinline__ unsigned max2(unsigned a, unsigned b) {
  unsigned r;
  if constexpr (is_same<T, bf16>::value) {
    asm("max.bf16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  } else {
#if __CUDA_ARCH__ >= 800
    asm("max.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
#else
    r = f16_pairs_via_f32(a, b, [](float x, float y) { return fmaxf(x, y); });
#endif
  }
  return r;
}
/// The smaller of each pair (as fminf: a NaN loses).
template <class T>
__device__ __forceinline__ unsigned min2(unsigned a, unsigned b) {
  unsigned r;
  if constexpr (is_same<T, bf16>::value) {
    asm("min.bf16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  } else {
#if __CUDA_ARCH__ >= 800
    asm("min.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
#else
    r = f16_pairs_via_f32(a, b, [](float x, float y) { return fminf(x, y); });
#endif
  }
  return r;
}
template <class T>
__device__ __forceinline__ unsigned neg_inf2() {
  return is_same<T, bf16>::value ? 0xff80ff80u : 0xfc00fc00u;
}

/// Two float4s as 8 floats.
__device__ __forceinline__ void unpack8(const float4 a, const float4 b, float (&v)[8]) {
  v[0] = a.x;
  v[1] = a.y;
  v[2] = a.z;
  v[3] = a.w;
  v[4] = b.x;
  v[5] = b.y;
  v[6] = b.z;
  v[7] = b.w;
}

/// 8 consecutive 16-bit (or f32) values as f32, through one 16-byte access for 16-bit types
/// (the pointer must then be 16-byte aligned); f32 through two where the pointer is 16-byte
/// aligned (NHWC f32 storage, tf32: pixels of 8-slot multiples), else one at a time.
template <class T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
  if constexpr (is_same<T, float>::value) {
    if ((reinterpret_cast<unsigned long long>(p) & 15ull) == 0) {
      unpack8(reinterpret_cast<const float4*>(p)[0], reinterpret_cast<const float4*>(p)[1], v);
      return;
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      v[j] = p[j];
    }
  } else {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const T* h = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      v[j] = load(h + j);
    }
  }
}

/// store8: load8's converse (f32: two 16-byte stores where `p` is 16-byte aligned; one at a time,
/// a warp's stores land 32 or 64 bytes apart, a sector apiece — the tf32 engine's space-to-depth
/// input step took 554.5 µs at ResNet-18's batch 256 on an H200, where the 16-bit one took 82.8).
template <class T>
__device__ __forceinline__ void store8(T* p, const float (&v)[8]) {
  if constexpr (is_same<T, float>::value) {
    if ((reinterpret_cast<unsigned long long>(p) & 15ull) == 0) {
      reinterpret_cast<float4*>(p)[0] = float4{v[0], v[1], v[2], v[3]};
      reinterpret_cast<float4*>(p)[1] = float4{v[4], v[5], v[6], v[7]};
      return;
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      p[j] = v[j];
    }
  } else {  // (pairs rounded by one cvt each: the same values as element by element)
    *reinterpret_cast<uint4*>(p) = uint4{pack2<T>(v[0], v[1]), pack2<T>(v[2], v[3]),
                                         pack2<T>(v[4], v[5]), pack2<T>(v[6], v[7])};
  }
}

/// 8 consecutive f32 values through two 16-byte read-only loads (p must be 16-byte aligned).
__device__ __forceinline__ void load8f(const float* p, float (&v)[8]) {
  const float4* q = reinterpret_cast<const float4*>(p);
  unpack8(__ldg(q), __ldg(q + 1), v);
}

/// The input rows [y0, y1) and columns [x0, x1) of pooled output (oy, ox) under PyTorch's rules
/// (see cpu::pool), and the average's divisor: the window clipped to the padded input with
/// count_include_pad, else to the input.
struct PoolWindow { int y0, x0, y1, x1; float divisor; };
__device__ __forceinline__ PoolWindow pool_window(const PoolShape& s, int oy, int ox) {
  PoolWindow r;
  r.y0 = oy * s.sh - s.ph;
  r.x0 = ox * s.sw - s.pw;
  r.y1 = min(r.y0 + s.kh, s.h + s.ph);
  r.x1 = min(r.x0 + s.kw, s.w + s.pw);
  const int padded_count = (r.y1 - r.y0) * (r.x1 - r.x0);
  r.y0 = max(r.y0, 0);
  r.x0 = max(r.x0, 0);
  r.y1 = min(r.y1, s.h);
  r.x1 = min(r.x1, s.w);
  r.divisor = static_cast<float>(s.count_include_pad ? padded_count : (r.y1 - r.y0) * (r.x1 - r.x0));
  return r;
}
__device__ __forceinline__ float pool_start(const PoolShape& s) {
  return s.is_max ? -__int_as_float(0x7f800000) : 0.0f;
}
__device__ __forceinline__ float pool_add(const PoolShape& s, float acc, float v) {
  return s.is_max ? fmaxf(acc, v) : acc + v;
}

/// D += A·B on tensor cores for one warp: mma.sync m16n8k16 with f32 accumulation, A (16×16,
/// row-major) and B (16×8, column-major) as pairs of 16-bit values of type T (f16 or bf16) in
/// the PTX fragment layout.
template <class T>
__device__ __forceinline__ void mma_16816(float (&d)[4], unsigned a0, unsigned a1, unsigned a2,
                                          unsigned a3, unsigned b0, unsigned b1) {
  if constexpr (is_same<T, bf16>::value) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}

/// D += A·B for a reduction of 8 (mma.sync m16n8k8): A 16×8 (a0 rows 0–7, a1 rows 8–15), B 8×8,
/// as mma_16816 otherwise — the tail of a reduction that is a multiple of 8 but not of 16.
template <class T>
__device__ __forceinline__ void mma_1688(float (&d)[4], unsigned a0, unsigned a1, unsigned b0) {
  if constexpr (is_same<T, bf16>::value) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(b0));
  } else {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(b0));
  }
}

/// A channel pair x of T (f16 or bf16) normalized in the folded form of a batch norm: x·β + γ
/// rounded once in T, one packed fma (with the ReLU: fma.rn.relu); b and g hold the pair's β and γ.
template <class T, Act NA>
__device__ __forceinline__ unsigned fold2(unsigned x, unsigned b, unsigned g) {
  unsigned o;
  if constexpr (is_same<T, bf16>::value) {
    if constexpr (NA == Act::relu) {
      asm("fma.rn.relu.bf16x2 %0, %1, %2, %3;" : "=r"(o) : "r"(x), "r"(b), "r"(g));
    } else {
      asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(o) : "r"(x), "r"(b), "r"(g));
    }
  } else {
    if constexpr (NA == Act::relu) {
      asm("fma.rn.relu.f16x2 %0, %1, %2, %3;" : "=r"(o) : "r"(x), "r"(b), "r"(g));
    } else {
      asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(o) : "r"(x), "r"(b), "r"(g));
    }
  }
  return o;
}

/// ldmatrix (x4 / x2 / x1, 16-bit, not transposed): lanes 8i..8i+7 give the shared-memory addresses
/// of the 8 rows (16 bytes each) of matrix i; register i receives, in every lane, the pair at row
/// lane/4, columns 2·(lane%4) and +1 of matrix i — the mma.sync fragment layout.
__device__ __forceinline__ unsigned shared_address(const void* p) {
  unsigned a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}
__device__ __forceinline__ void ldmatrix_x4(unsigned& r0, unsigned& r1, unsigned& r2,
                                            unsigned& r3, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(shared_address(p))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x2(unsigned& r0, unsigned& r1, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];"
               : "=r"(r0), "=r"(r1)
               : "r"(shared_address(p))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x1(unsigned& r0, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];"
               : "=r"(r0)
               : "r"(shared_address(p))
               : "memory");
}



/// The 2x2 max pool of an mma.sync accumulator tile whose rows g and g + 8 of each lane hold two
/// window positions of one pooled output and the lane 16 apart the other two (`valid0`,
/// `valid1`: those positions lie in the conv's map): for each of the NT n-tiles j, channels
/// c0 + 8j and + 1, the window's max of the sums plus `bias`, as a pair of T; then the relu
/// (RELU) and 0 in the slots at or past `k` (MASK). Exact: rounding, + bias and relu keep the
/// order, so the max across lanes and the relu run on the rounded pairs.
template <class T, int NT, bool RELU, bool MASK>
__device__ __forceinline__ void max_pool4_pairs(unsigned (&pk)[NT], const float (&acc)[NT][4],
                                                const float (&bias)[NT][2], bool valid0,
                                                bool valid1, int c0, int k) {
  const float ninf = -__int_as_float(0x7f800000);
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    pk[j] = pack2<T>(fmaxf(valid0 ? acc[j][0] : ninf, valid1 ? acc[j][2] : ninf) + bias[j][0],
                     fmaxf(valid0 ? acc[j][1] : ninf, valid1 ? acc[j][3] : ninf) + bias[j][1]);
  }
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    pk[j] = max2<T>(pk[j], __shfl_xor_sync(0xffffffffu, pk[j], 16));
    if constexpr (RELU) {
      pk[j] = max2<T>(pk[j], 0u);
    }
    if constexpr (MASK) {
      const int c = c0 + 8 * j;
      pk[j] &= (c < k ? 0xffffu : 0u) | (c + 1 < k ? 0xffff0000u : 0u);
    }
  }
}

/// f(mi, ni, h, row, col) for each pair of a warp's mma.sync C fragments over MI m16-tiles × NI
/// n8-tiles whose first row and column are r0 and c0, where row < rows and col < cols: the
/// pair at rows lane / 4 (h = 0) and + 8 (h = 1), columns 2 (lane % 4) and + 1.
template <int MI, int NI, class F>
__device__ __forceinline__ void for_each_pair(int r0, int c0, int rows, int cols, F&& f) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = r0 + mi * 16 + (lane >> 2) + h * 8;
        const int col = c0 + ni * 8 + (lane & 3) * 2;
        if (row < rows && col < cols) f(mi, ni, h, row, col);
      }
    }
  }
}

/// 16 bytes from global to shared memory without passing through registers (cp.async, L2 only);
/// `valid` false writes 16 zero bytes instead (nothing is read from `g`). Completes in groups:
/// cp_async_commit() closes a group, cp_async_wait<N>() waits until at most N groups are pending.
/// cp_async<N> copies N = 4, 8 or 16 bytes (16: bypassing L1), zero-filled where !valid; the
/// addresses N-byte aligned.
template <int N>
__device__ __forceinline__ void cp_async(void* s, const void* g, bool valid) {
  if constexpr (N == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :: "r"(shared_address(s)), "l"(g), "r"(valid ? 16 : 0) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;"
                 :: "r"(shared_address(s)), "l"(g), "n"(N), "r"(valid ? N : 0) : "memory");
  }
}
__device__ __forceinline__ void cp_async16(void* s, const void* g, bool valid) {
  cp_async<16>(s, g, valid);
}
/// Shared memory by 32-bit address (shared_address): ldmatrix x4, a 16-byte cp.async (zeros where
/// !ok), 16-byte loads and stores — for hot loops whose addresses are a per-thread base plus
/// constants, with no generic-to-shared conversion at each access.
__device__ __forceinline__ void ldsm4_at(unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3, unsigned a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a) : "memory");
}
__device__ __forceinline__ void ldsm2_at(unsigned& r0, unsigned& r1, unsigned a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];" : "=r"(r0), "=r"(r1) : "r"(a) : "memory");
}
__device__ __forceinline__ void ldsm1_at(unsigned& r0, unsigned a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r0) : "r"(a) : "memory");
}
__device__ __forceinline__ unsigned lds32_at(unsigned a) {
  unsigned v;
  asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ void sts32_at(unsigned a, unsigned v) {
  asm volatile("st.shared.u32 [%0], %1;" :: "r"(a), "r"(v) : "memory");
}
__device__ __forceinline__ void cp_async16_at(unsigned s, const void* g, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(s), "l"(g), "r"(ok ? 16 : 0) : "memory");
}
__device__ __forceinline__ uint4 lds16_at(unsigned a) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ void sts16_at(unsigned a, uint4 v) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" :: "r"(a), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory");
}

/// A lane's share of a warp's dot products of one weight row with up to B images' f32 vectors
/// (image b's at vec + b·cp): the lane holds the row's 16-byte chunks lane, lane + 32, ... in
/// `raw` (KI of them); acc[b] (b < batch) += its chunks' products. Chunks from cp on count nothing.
template <class T, int KI, int B>
__device__ __forceinline__ void row_dot(const uint4 (&raw)[KI], const float* vec, int cp, int lane,
                                        int batch, float (&acc)[B]) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));  // elements a chunk
#pragma unroll
  for (int t = 0; t < KI; ++t) {
    const int k = (lane + 32 * t) * V;
    if (k < cp) {
      const T* h = reinterpret_cast<const T*>(&raw[t]);
#pragma unroll
      for (int b = 0; b < B; ++b) {
        if (b < batch) {
          const float* pv = vec + b * cp + k;
#pragma unroll
          for (int e = 0; e < V; e += 4) {
            const float4 f = *reinterpret_cast<const float4*>(pv + e);
            acc[b] += load(h + e) * f.x + load(h + e + 1) * f.y + load(h + e + 2) * f.z +
                      load(h + e + 3) * f.w;
          }
        }
      }
    }
  }
}

/// Each of a warp's B partial sums (one per image) summed across the warp; lane b gets image b's
/// sum (lanes from B on: 0).
template <int B>
__device__ __forceinline__ float warp_sums_by_lane(float (&acc)[B], int lane) {
  float mine = 0.0f;
#pragma unroll
  for (int b = 0; b < B; ++b) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], off);
    mine = lane == b ? acc[b] : mine;
  }
  return mine;
}

/// A warp's dot products of one weight row with up to B images' f32 vectors (row_dot from zero,
/// summed across the warp): lane b gets image b's.
template <class T, int B, int KI>
__device__ __forceinline__ float row_dots_by_lane(const uint4 (&raw)[KI], const float* vec, int cp,
                                                  int lane, int batch) {
  float acc[B];
#pragma unroll
  for (int b = 0; b < B; ++b) acc[b] = 0.0f;
  row_dot<T>(raw, vec, cp, lane, batch, acc);
  return warp_sums_by_lane(acc, lane);
}

/// First thing in every kernel of Strata's that has no work to do before its wait (else
/// pdl_launch ... pdl_wait): let the next kernel on the stream launch (it waits in its own
/// pdl_entry or pdl_wait), then wait until the kernel before this one has finished and its writes
/// are visible — no-ops unless launched as a programmatic dependent launch (rtc::PdlScope;
/// compute capability 9.0 on).
__device__ __forceinline__ void pdl_entry() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// pdl_entry in two halves, for a kernel with work to do before it touches what an earlier
/// kernel wrote (copies or prefetches of weights, which no kernel writes: the split-K conv,
/// normed_conv's ring forms, expand_depthwise, depthwise_band's algo 1, the squeeze-excite
/// cluster, bottleneck_conv's cluster form): let the next kernel launch, first thing ...
__device__ __forceinline__ void pdl_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
/// ... and wait for the kernel before this one, before any read of an activation or workspace
/// and any write — by every thread, before any return (a kernel that completes has waited, so
/// the kernels before its predecessor have finished too).
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// One thread's prefetch into L1 of every 128-byte line of [p, p + bytes) (prefetch_l1 spreads
/// them over the block's threads instead).
__device__ __forceinline__ void prefetch_row(const void* p, long long bytes) {
#if defined(__CUDA_ARCH__)
  const auto end = reinterpret_cast<unsigned long long>(p) + static_cast<unsigned long long>(bytes);
  for (auto a = reinterpret_cast<unsigned long long>(p) & ~127ull; a < end; a += 128ull) {
    asm volatile("prefetch.global.L1 [%0];" ::"l"(a));
  }
#endif
}

/// The bytes [p, p + bytes) asked into this SM's L1 (prefetch.global.L1, a 128-byte line a
/// thread at a time, the block's threads together): for weights a kernel will read, issued
/// before a programmatic dependent launch's wait. A hint only: nothing is read or written.
__device__ __forceinline__ void prefetch_l1(const void* p, long long bytes) {
#if defined(__CUDA_ARCH__)
  if (bytes <= 0) {
    return;
  }
  const auto first = reinterpret_cast<unsigned long long>(p) & ~127ull;
  const auto end = reinterpret_cast<unsigned long long>(p) + static_cast<unsigned long long>(bytes);
  for (unsigned long long a = first + 128ull * threadIdx.x; a < end; a += 128ull * blockDim.x) {
    asm volatile("prefetch.global.L1 [%0];" ::"l"(a));
  }
#endif
}

/// A library kernel's clusters of n blocks: the attribute on compute capability 9.0 on, nothing
/// before (where the attribute does not compile, and such a kernel is never launched).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define STRATA_CLUSTER_DIMS(n) __cluster_dims__(n, 1, 1)
#else
#define STRATA_CLUSTER_DIMS(n)
#endif

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
/// Thread-block clusters (compute capability 9.0 on). A barrier of every thread of the cluster:
/// writes before it (shared memory, the block's own or another's, and global) are visible to the
/// cluster's blocks after it. The block's threads meet first; one thread's fence at cluster scope
/// then releases what all of them wrote (a fence is cumulative over what the block barrier
/// ordered before it), so the cluster barrier's arrive needs no release of its own — a release
/// arrive costs a GPU-wide memory barrier in every warp (session 49's microbenchmark, an H100, 16
/// blocks of 1,024 threads: 792 ns a barrier so and about 490 this way with shared memory
/// written before it; 959 and 785 with global stores before it and loads after).
__device__ __forceinline__ void cluster_barrier() {
  __syncthreads();
  if (threadIdx.x == 0) asm volatile("fence.acq_rel.cluster;" ::: "memory");
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}
/// The cluster's blocks past their last reads of another block's shared memory (whose values
/// they have used), so that none leaves — its shared memory going with it — while another may
/// still read it; the block's own threads synchronized too. Nothing written before it is read by
/// another block after it: no memory ordering across the cluster, so no fence (80 ns).
__device__ __forceinline__ void cluster_reads_done() {
  __syncthreads();
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n\tbarrier.cluster.wait.aligned;" ::: "memory");
}
/// `local`'s offset in the shared memory of the cluster's block `rank` (a shared::cluster address).
__device__ __forceinline__ unsigned cluster_address(const float* local, unsigned rank) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(local));
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(a), "r"(rank));
  return remote;
}
/// The float at `local`'s offset in the shared memory of the cluster's block `rank`.
__device__ __forceinline__ float cluster_load(const float* local, unsigned rank) {
  float v;
  asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(cluster_address(local, rank)) : "memory");
  return v;
}
/// Two floats at `local`'s offset in the shared memory of the cluster's block `rank`.
__device__ __forceinline__ float2 cluster_load2(const float* local, unsigned rank) {
  float2 v;
  asm volatile("ld.shared::cluster.v2.f32 {%0, %1}, [%2];"
               : "=f"(v.x), "=f"(v.y) : "r"(cluster_address(local, rank)) : "memory");
  return v;
}
#endif

}  // namespace strata_rtc
)strata_rtc";

/// The generic kernels, after the prelude.
inline constexpr std::string_view kernel_bodies = R"strata_rtc(
namespace strata_rtc {

/// Copies/converts a (N, C, HW) tensor from `src` (element type S, strides `ss`) to `dst`
/// (type D, strides `ds`, `dcp` channel slots per pixel: slots ≥ c are written as 0), with the
/// input normalization `affine` (may be null). One thread per destination element, destination
/// order (coalesced writes). I: index type (32-bit when the tensor allows: 64-bit division is
/// slow).
template <class S, class D, class I>
__global__ void convert_kernel(const S* __restrict__ src, Strides ss, D* __restrict__ dst, Strides ds,
                               int n, int c, int dcp, int hw, bool dst_nhwc,
                               const float* __restrict__ affine) {
  pdl_entry();
  const I total = static_cast<I>(n) * dcp * hw;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    I ch;
    I p;
    I img;
    if (dst_nhwc) {
      ch = i % dcp;
      p = (i / dcp) % hw;
      img = i / (static_cast<I>(dcp) * hw);
    } else {
      p = i % hw;
      ch = (i / hw) % dcp;
      img = i / (static_cast<I>(dcp) * hw);
    }
    const float v = ch < static_cast<I>(c)
                        ? normalize(load(src + img * ss.image + p * ss.pixel + ch * ss.channel),
                                    affine, static_cast<int>(ch))
                        : 0.0f;
    store(dst + img * ds.image + p * ds.pixel + ch * ds.channel, v);
  }
}

/// A dense (N, C, HW) input (element type S: f32, f16 or u8; strides `ss`, NCHW or HWC) →
/// 16-bit NHWC with cp (multiple of 8) slots, normalized by `affine` (may be null): one thread
/// per pixel, cp/8 16-byte stores.
template <class S, class D, class I>
__global__ void to_nhwc8_kernel(const S* __restrict__ src, Strides ss, D* __restrict__ dst, int n,
                                int c, int cp, int hw, const float* __restrict__ affine) {
  pdl_entry();
  const I pixels = static_cast<I>(n) * hw;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < pixels;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I img = i / hw;
    const I p = i - img * hw;
    const S* s = src + img * ss.image + p * ss.pixel;
    D* d = dst + i * cp;
    for (int g = 0; g < cp; g += 8) {
      float v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        v[j] = g + j < c ? normalize(load(s + static_cast<I>(g + j) * ss.channel), affine, g + j)
                         : 0.0f;
      }
      store8(d + g, v);
    }
  }
}

/// y = act(x·scale[c] + shift[c] + z), elementwise over a (N, ·) tensor of `total` elements;
/// scale, shift (f32, per channel slot) and z may be null. Channel of element i: NHWC: i mod cp;
/// NCHW: (i / hw) mod cp. Channel slots ≥ c_real are written as 0. x is read `x_image` elements
/// from one image to the next (cp·hw when dense; more when x is a channel slice of a concat's
/// NCHW output); z and y are dense. x and y may alias (in-place epilogue).
template <class T, class I>
__global__ void pointwise_kernel(const T* x, const T* z, T* y, const float* __restrict__ scale,
                                 const float* __restrict__ shift, ActDesc act, I total, int cp,
                                 int hw, int c_real, bool nhwc, I x_image) {
  pdl_entry();
  const I per_image = static_cast<I>(cp) * hw;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int ch = static_cast<int>(nhwc ? i % cp : (i / hw) % cp);
    const I img = i / per_image;
    float v = load(x + img * x_image + (i - img * per_image));
    if (scale != nullptr) {
      v *= scale[ch];
    }
    if (shift != nullptr) {
      v += shift[ch];
    }
    if (z != nullptr) {
      v += load(z + i);
    }
    store(y + i, ch < c_real ? activate(act, v) : 0.0f);
  }
}

/// The NHWC form of pointwise_kernel with cp a multiple of 8: 8 channel slots per thread,
/// 16-byte accesses, over `vectors` = pixels·cp/8. x and y are read and written `xs` and `ys`
/// elements from one pixel to the next (cp when dense; a concat's channel slice has its
/// output's), z is dense. It is also the copy of a result into (or of) a concat's slice: no
/// scale, shift, z or activation.
template <class T, class I>
__global__ void pointwise8_kernel(const T* x, const T* z, T* y, const float* __restrict__ scale,
                                  const float* __restrict__ shift, ActDesc act, I vectors, int cp,
                                  int c_real, I xs, I ys) {
  pdl_entry();
  const int groups = cp / 8;
  for (I vi = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; vi < vectors;
       vi += static_cast<I>(gridDim.x) * blockDim.x) {
    const I pix = vi / groups;
    const int ch0 = static_cast<int>(vi - pix * groups) * 8;
    float v[8];
    load8(x + pix * xs + ch0, v);
    float zv[8];
    if (z != nullptr) {
      load8(z + pix * cp + ch0, zv);
    }
    // The 8 channels' scale and shift as two 16-byte loads each (the arrays are allocations of
    // their own, so aligned): 8 scalar loads each left the load units, not memory, the limit.
    float sc[8];
    float sh[8];
    if (scale != nullptr) {
      load8f(scale + ch0, sc);
    }
    if (shift != nullptr) {
      load8f(shift + ch0, sh);
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float t = v[j];
      if (scale != nullptr) {
        t *= sc[j];
      }
      if (shift != nullptr) {
        t += sh[j];
      }
      if (z != nullptr) {
        t += zv[j];
      }
      v[j] = ch0 + j < c_real ? activate(act, t) : 0.0f;
    }
    store8(y + pix * ys + ch0, v);
  }
}

/// Max or average pooling (pool_window's rules). One thread per output element; `c` is the
/// number of channel slots (cp in NHWC).
template <class T, class I>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, PoolShape s, bool nhwc) {
  pdl_entry();
  const I total = static_cast<I>(s.n) * s.c * s.oh * s.ow;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    int ch, ox, oy;
    I img;
    if (nhwc) {
      ch = static_cast<int>(i % s.c);
      ox = static_cast<int>((i / s.c) % s.ow);
      oy = static_cast<int>((i / (static_cast<I>(s.c) * s.ow)) % s.oh);
      img = i / (static_cast<I>(s.c) * s.ow * s.oh);
    } else {
      ox = static_cast<int>(i % s.ow);
      oy = static_cast<int>((i / s.ow) % s.oh);
      ch = static_cast<int>((i / (static_cast<I>(s.ow) * s.oh)) % s.c);
      img = i / (static_cast<I>(s.c) * s.ow * s.oh);
    }
    const PoolWindow win = pool_window(s, oy, ox);
    const I plane = static_cast<I>(s.h) * s.w;
    const T* base = nhwc ? x + img * plane * s.c + ch : x + (img * s.c + ch) * plane;
    const I step = nhwc ? s.c : 1;
    float acc = pool_start(s);
    for (int yy = win.y0; yy < win.y1; ++yy) {
      for (int xx = win.x0; xx < win.x1; ++xx) {
        acc = pool_add(s, acc, load(base + (static_cast<I>(yy) * s.w + xx) * step));
      }
    }
    store(y + i, s.is_max ? acc : acc / win.divisor);
  }
}

/// The NHWC form of pool_kernel with s.c a multiple of 8: 8 channels per thread, 16-byte loads.
template <class T, class I>
__global__ void pool8_kernel(const T* __restrict__ x, T* __restrict__ y, PoolShape s) {
  pdl_entry();
  const int groups = s.c / 8;
  const I total = static_cast<I>(s.n) * groups * s.oh * s.ow;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int cg = static_cast<int>(i % groups);
    const I rest = i / groups;
    const int ox = static_cast<int>(rest % s.ow);
    const int oy = static_cast<int>((rest / s.ow) % s.oh);
    const I img = rest / (static_cast<I>(s.ow) * s.oh);
    const PoolWindow win = pool_window(s, oy, ox);
    const T* base = x + img * s.h * s.w * s.c + cg * 8;
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      acc[j] = pool_start(s);
    }
    for (int yy = win.y0; yy < win.y1; ++yy) {
      for (int xx = win.x0; xx < win.x1; ++xx) {
        float v[8];
        load8(base + (static_cast<I>(yy) * s.w + xx) * s.c, v);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          acc[j] = pool_add(s, acc[j], v[j]);
        }
      }
    }
    if (!s.is_max) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        acc[j] /= win.divisor;
      }
    }
    store8(y + rest * s.c + cg * 8, acc);
  }
}

/// 8 consecutive f32 values of shared memory through two 16-byte reads (p 16-byte aligned): a
/// warp whose lanes read 8 values 32 bytes apart meets 2-way bank conflicts, not the 8-way of
/// scalar reads.
__device__ __forceinline__ void smem8(const float* p, float (&v)[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0];
  const float4 b = reinterpret_cast<const float4*>(p)[1];
  v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
  v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}

/// acc += the dot product of 8 16-bit values (one 16-byte load, `raw`) with vec[0..7] (shared
/// memory, 16-byte aligned), in order.
template <class T>
__device__ __forceinline__ void add_dot8(const uint4& raw, const float* vec, float& acc) {
  const T* h = reinterpret_cast<const T*>(&raw);
  float v[8];
  smem8(vec, v);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    acc += v[j] * load(h + j);
  }
}

/// v[j] = act(v[j]) rounded to T, for 8 loaded values (an activation deferred into a read).
template <class T>
__device__ __forceinline__ void activate8_stored(ActDesc a, float (&v)[8]) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    v[j] = as_stored<T>(activate(a, v[j]));
  }
}

/// A loaded value as it is summed: as stored (no activation deferred into the read).
struct AsLoaded {
  __device__ __forceinline__ float operator()(float v) const { return v; }
};
/// ... or with activation A (kind fixed at compile time) applied and rounded to T.
template <class T, Act A>
struct StoredAct {
  ActDesc a;
  __device__ __forceinline__ float operator()(float v) const { return as_stored<T>(activate_as<A>(a, v)); }
};
/// ... or any kind, chosen at run time.
template <class T>
struct StoredAnyAct {
  ActDesc a;
  __device__ __forceinline__ float operator()(float v) const { return as_stored<T>(activate(a, v)); }
};

/// A block's sums of one channel group of pixels [p0, p1) of an NHWC image (`base`: its first
/// pixel's group g, pixels cp slots apart): this thread (thread pl · width + g % width: pixel
/// lane pl of `lanes`, group g of cg) adds 8 channels (one 16-byte load) of every `lanes`-th
/// pixel, 4 loads in flight; the lanes are summed through `red` (free on entry: a barrier comes
/// first), the sums in pl == 0's `acc`. Each value is f of it (StoredAct: an activation
/// deferred into the pool's read, rounded to T as the producer would have stored it).
template <class T, class F = AsLoaded>
__device__ __forceinline__ void pool_group_sums(const T* base, int cp, int p0, int p1, int g, int cg,
                                                int pl, int lanes, int width, float (&red)[8][256],
                                                float (&acc)[8], F f = F{}) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    acc[j] = 0.0f;
  }
  if (pl < lanes && g < cg) {
    int p = p0 + pl;
    for (; p + 3 * lanes < p1; p += 4 * lanes) {
      float v0[8];
      float v1[8];
      float v2[8];
      float v3[8];
      load8(base + static_cast<long long>(p) * cp, v0);
      load8(base + static_cast<long long>(p + lanes) * cp, v1);
      load8(base + static_cast<long long>(p + 2 * lanes) * cp, v2);
      load8(base + static_cast<long long>(p + 3 * lanes) * cp, v3);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        acc[j] += (f(v0[j]) + f(v1[j])) + (f(v2[j]) + f(v3[j]));
      }
    }
    for (; p < p1; p += lanes) {
      float v[8];
      load8(base + static_cast<long long>(p) * cp, v);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        acc[j] += f(v[j]);
      }
    }
  }
  if (lanes > 1) {
    const int tid = static_cast<int>(threadIdx.x);
    __syncthreads();  // red is free (the previous round has read it)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      red[j][tid] = acc[j];
    }
    __syncthreads();
    if (pl == 0) {
      for (int l = 1; l < lanes; ++l) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          acc[j] += red[j][tid + l * width];
        }
      }
    }
  }
}

/// A block of 256 threads' sums of pixels [p0, p1) of an NHWC image (`base`: its first pixel, cp
/// channel slots in 8s), every channel group in rounds of pool_group_sums: emit(c, sum) once for
/// each channel slot c, by the thread holding it.
template <class T, class Emit>
__device__ __forceinline__ void pool_share(const T* base, int cp, int p0, int p1,
                                           float (&red)[8][256], Emit emit) {
  const int tid = static_cast<int>(threadIdx.x);
  const int cg = cp / 8;                  // 16-byte channel groups
  const int width = cg < 256 ? cg : 256;  // groups a round
  const int lanes = 256 / width;          // pixel lanes
  const int pl = tid / width;
  for (int g0 = 0; g0 < cg; g0 += width) {
    const int g = g0 + tid % width;
    float acc[8];
    pool_group_sums(base + g * 8, cp, p0, p1, g, cg, pl, lanes, width, red, acc);
    if (pl == 0 && g < cg) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        emit(g * 8 + j, acc[j]);
      }
    }
  }
}

/// NHWC with channel slots in 8s, many images: a block of 256 per image (grid-stride), each
/// thread 8 channels (one 16-byte load) of every `lanes`-th pixel, 4 loads in flight; the pixel
/// lanes summed in shared memory. A ResNet's 7×7×512 map is one 1-KB row a pixel, read whole by
/// 64 threads (global_avg_pool_kernel's blocks of 32 channels read 64 bytes of it each).
/// `in_act`: an activation deferred into the pool's read (none: the values as stored).
template <class T, class F>
__device__ __forceinline__ void global_avg_pool_rows(const T* __restrict__ x, T* __restrict__ y, int n,
                                                     int c, int hw, float (&red)[8][256], F f) {
  const int cg = c / 8;                       // 16-byte channel groups
  const int width = cg < 256 ? cg : 256;      // groups a round
  const int lanes = 256 / width;              // pixel lanes
  const int g_in = static_cast<int>(threadIdx.x) % width;
  const int pl = static_cast<int>(threadIdx.x) / width;
  const float inv = 1.0f / static_cast<float>(hw);
  for (long long img = blockIdx.x; img < n; img += gridDim.x) {
    for (int g0 = 0; g0 < cg; g0 += width) {
      const int g = g0 + g_in;
      float acc[8];
      pool_group_sums(x + img * hw * c + g * 8, c, 0, hw, g, cg, pl, lanes, width, red, acc, f);
      if (pl == 0 && g < cg) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          acc[j] *= inv;
        }
        store8(y + img * c + g * 8, acc);
      }
    }
  }
}
template <class T>
__global__ void global_avg_pool_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int n,
                                            int c, int hw, ActDesc in_act) {
  pdl_entry();
  __shared__ float red[8][256];
  // (the activation's kind fixed at compile time for those networks defer: no switch in the loop)
  switch (in_act.kind) {
    case Act::none: global_avg_pool_rows(x, y, n, c, hw, red, AsLoaded{}); break;
    case Act::clip: global_avg_pool_rows(x, y, n, c, hw, red, StoredAct<T, Act::clip>{in_act}); break;
    case Act::silu: global_avg_pool_rows(x, y, n, c, hw, red, StoredAct<T, Act::silu>{in_act}); break;
    case Act::hardswish: global_avg_pool_rows(x, y, n, c, hw, red, StoredAct<T, Act::hardswish>{in_act}); break;
    default: global_avg_pool_rows(x, y, n, c, hw, red, StoredAnyAct<T>{in_act}); break;
  }
}

/// Mean over H·W per (image, channel slot), f32 accumulation. NCHW: one warp per output
/// (contiguous plane, shuffle reduction). NHWC (blocks of 256 threads): a "unit" is (image, 32
/// channel slots); with slots in multiples of 8 (16-bit storage) a lane sums 8 channels of every
/// 64th pixel with 16-byte loads, four in flight, and the lanes of a channel group are added by
/// shuffles; otherwise 32 lanes along the channels, 8 phases along the pixels. The warps' sums
/// are added in shared memory. When there are few units (an SE gate's pool at batch 1), each is split over
/// `splits` blocks along the pixels: each block writes its 32 partial sums to `partial`, and
/// the last block of the unit to finish (a counter per unit, reset by that block) adds them in
/// split order — one launch, the same sums whatever order the blocks run in. `in_act`: an
/// activation deferred into the pool's read (16-bit NHWC; none: the values as stored).
template <class T>
__global__ void global_avg_pool_kernel(const T* __restrict__ x, T* __restrict__ y, int n, int c, int hw,
                                bool nhwc, int splits, float* partial, unsigned* counters, ActDesc in_act) {
  pdl_entry();
  const long long outputs = static_cast<long long>(n) * c;
  if (nhwc) {
    __shared__ float part[8][33];
    __shared__ bool last;
    const int tx = threadIdx.x & 31;
    const int ty = threadIdx.x >> 5;
    const int groups = (c + 31) / 32;
    const long long units = static_cast<long long>(n) * groups;
    const int span = (hw + splits - 1) / splits;
    for (long long b = blockIdx.x; b < units * splits; b += gridDim.x) {
      const long long u = b / splits;
      const int sp = static_cast<int>(b % splits);
      const long long img = u / groups;
      const int ch = static_cast<int>(u % groups) * 32 + tx;
      const int p0 = sp * span;
      const int p1 = min(hw, p0 + span);
      if (c % 8 == 0) {
        // 8 channels a lane (one 16-byte load of 16-bit values), 8 pixels a warp, 4 loads in
        // flight; the 8 pixel lanes of a channel group summed by shuffles.
        const int g = tx & 3;
        const int pl = tx >> 2;
        const int ch0 = static_cast<int>(u % groups) * 32 + g * 8;
        float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        if (ch0 < c) {
          const T* base = x + img * hw * c + ch0;
          int p = p0 + ty * 8 + pl;
          for (; p + 192 < p1; p += 256) {
            float v0[8];
            float v1[8];
            float v2[8];
            float v3[8];
            load8(base + static_cast<long long>(p) * c, v0);
            load8(base + static_cast<long long>(p + 64) * c, v1);
            load8(base + static_cast<long long>(p + 128) * c, v2);
            load8(base + static_cast<long long>(p + 192) * c, v3);
            if (in_act.kind != Act::none) {
              activate8_stored<T>(in_act, v0);
              activate8_stored<T>(in_act, v1);
              activate8_stored<T>(in_act, v2);
              activate8_stored<T>(in_act, v3);
            }
#pragma unroll
            for (int j = 0; j < 8; ++j) {
              acc[j] += (v0[j] + v1[j]) + (v2[j] + v3[j]);
            }
          }
          for (; p < p1; p += 64) {
            float v[8];
            load8(base + static_cast<long long>(p) * c, v);
            if (in_act.kind != Act::none) {
              activate8_stored<T>(in_act, v);
            }
#pragma unroll
            for (int j = 0; j < 8; ++j) {
              acc[j] += v[j];
            }
          }
        }
#pragma unroll
        for (int off = 4; off < 32; off <<= 1) {
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], off);
          }
        }
        if (pl == 0) {
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            part[ty][g * 8 + j] = acc[j];
          }
        }
      } else {  // one channel a lane
        float a0 = 0.0f;
        float a1 = 0.0f;
        if (ch < c) {
          const T* base = x + img * hw * c + ch;
          int p = p0 + ty;
          const auto value = [&](int q) {
            const float v = load(base + static_cast<long long>(q) * c);
            return in_act.kind != Act::none ? as_stored<T>(activate(in_act, v)) : v;
          };
          for (; p + 8 < p1; p += 16) {
            a0 += value(p);
            a1 += value(p + 8);
          }
          for (; p < p1; p += 8) {
            a0 += value(p);
          }
        }
        part[ty][tx] = a0 + a1;
      }
      __syncthreads();
      if (ty == 0) {
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          sum += part[j][tx];
        }
        if (splits == 1) {
          if (ch < c) {
            store(y + img * c + ch, sum / static_cast<float>(hw));
          }
        } else {
          partial[(static_cast<long long>(sp) * units + u) * 32 + tx] = sum;
          __threadfence();
        }
      }
      if (splits > 1) {
        __syncthreads();
        if (threadIdx.x == 0) {
          last = atomicAdd(counters + u, 1u) == static_cast<unsigned>(splits - 1);
        }
        __syncthreads();
        if (last && ty == 0) {
          __threadfence();
          const volatile float* pv = partial;
          float sum = 0.0f;
          for (int j = 0; j < splits; ++j) {
            sum += pv[(static_cast<long long>(j) * units + u) * 32 + tx];
          }
          if (ch < c) {
            store(y + img * c + ch, sum / static_cast<float>(hw));
          }
          if (tx == 0) {
            counters[u] = 0u;  // ready for the next run
          }
        }
      }
      __syncthreads();
    }
    return;
  }
  const int lane = threadIdx.x & 31;
  const long long warps = static_cast<long long>(gridDim.x) * (blockDim.x / 32);
  for (long long wi = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32;
       wi < outputs; wi += warps) {
    const T* base = x + wi * hw;
    float acc = 0.0f;
    for (int p = lane; p < hw; p += 32) {
      const float v = load(base + p);
      acc += in_act.kind != Act::none ? as_stored<T>(activate(in_act, v)) : v;
    }
    for (int off = 16; off > 0; off >>= 1) {
      acc += __shfl_xor_sync(0xffffffffu, acc, off);
    }
    if (lane == 0) {
      store(y + wi, acc / static_cast<float>(hw));
    }
  }
}

/// softmax (or log_softmax) over the `c` channels of each of n·hw rows, one warp per row,
/// f32 throughout (max, then Σexp, both by shuffles). Output slots c..ocp-1 (NHWC padding of
/// the output, ocp ≥ c) are written as 0.
template <class S, class D>
__global__ void softmax_kernel(const S* __restrict__ x, Strides xs, D* __restrict__ y, Strides ys,
                        int n, int c, int ocp, int hw, bool log_softmax) {
  pdl_entry();
  const int lane = threadIdx.x & 31;
  const long long rows = static_cast<long long>(n) * hw;
  const long long warps = static_cast<long long>(gridDim.x) * (blockDim.x / 32);
  for (long long r = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32;
       r < rows; r += warps) {
    const long long img = r / hw;
    const long long p = r % hw;
    const S* xr = x + img * xs.image + p * xs.pixel;
    D* yr = y + img * ys.image + p * ys.pixel;
    float mx = -__int_as_float(0x7f800000);
    for (int ch = lane; ch < c; ch += 32) {
      mx = fmaxf(mx, load(xr + ch * xs.channel));
    }
    for (int off = 16; off > 0; off >>= 1) {
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    }
    float sum = 0.0f;
    for (int ch = lane; ch < c; ch += 32) {
      sum += expf(load(xr + ch * xs.channel) - mx);
    }
    for (int off = 16; off > 0; off >>= 1) {
      sum += __shfl_xor_sync(0xffffffffu, sum, off);
    }
    const float log_sum = logf(sum);
    for (int ch = lane; ch < ocp; ch += 32) {
      float v = 0.0f;
      if (ch < c) {
        const float zc = load(xr + ch * xs.channel) - mx;
        v = log_softmax ? zc - log_sum : expf(zc) / sum;
      }
      store(yr + ch * ys.channel, v);
    }
  }
}


/// bias[k] + the convolution's sum for output (img, oy, ox, k) of group g.
template <class T>
__device__ __forceinline__ float conv_sum(const T* __restrict__ x, const T* __restrict__ w,
                                          const float* __restrict__ bias, const ConvShape& s,
                                          long long img, int oy, int ox, int k, bool vec) {
  const int g = k / (s.kd / s.groups);
  float acc = bias != nullptr ? bias[k] : 0.0f;
  for (int ky = 0; ky < s.kh; ++ky) {
    const int iy = oy * s.sh - s.ph + ky * s.dh;
    if (iy < 0 || iy >= s.h) {
      continue;
    }
    for (int kx = 0; kx < s.kw; ++kx) {
      const int ix = ox * s.sw - s.pw + kx * s.dw;
      if (ix < 0 || ix >= s.w) {
        continue;
      }
      const T* xp = x + ((img * s.h + iy) * s.w + ix) * s.cp + static_cast<long long>(g) * s.cg;
      const T* wp = w + ((static_cast<long long>(k) * s.kh + ky) * s.kw + kx) * s.cg;
      if (vec) {  // 16-byte loads of 8 channels (input and filter rows 16-byte aligned)
        for (int ci = 0; ci < s.cg; ci += 8) {
          float xv[8];
          float wv[8];
          load8(xp + ci, xv);
          load8(wp + ci, wv);
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            acc += xv[j] * wv[j];
          }
        }
      } else {
        for (int ci = 0; ci < s.creal; ++ci) {  // padded channels have zero weights: skipped
          acc += load(xp + ci) * load(wp + ci);
        }
      }
    }
  }
  return acc;
}

template <class T>
__device__ __forceinline__ bool conv_vec(const ConvShape& s) {
  return sizeof(T) == 2 && s.cg % 8 == 0 && s.creal == s.cg && s.cp % 8 == 0;
}

/// The direct convolution, with the conv+pool fusion: one thread per *pooled* output element
/// (image, py, px, channel slot), channel fastest; it computes act(conv + bias + z) at every
/// position of its pool window and pools them, so the unpooled map is never stored. `p` is the
/// pool over the conv's output (p.h = s.oh, p.w = s.ow, p.c = s.kp); `z` (or null) is at the
/// conv's resolution. The plain convolution is the 1×1 max pool of stride 1 (conv_direct).
template <class T>
__global__ void conv_pool_direct_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                        const float* __restrict__ bias, const T* z, T* y,
                                        ConvShape s, PoolShape p, ActDesc act) {
  pdl_entry();
  const long long total = static_cast<long long>(s.n) * p.oh * p.ow * s.kp;
  const bool vec = conv_vec<T>(s);
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       i < total; i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int k = static_cast<int>(i % s.kp);
    if (k >= s.k || k >= s.kd) {
      store(y + i, 0.0f);
      continue;
    }
    const int px = static_cast<int>((i / s.kp) % p.ow);
    const int py = static_cast<int>((i / (static_cast<long long>(s.kp) * p.ow)) % p.oh);
    const long long img = i / (static_cast<long long>(s.kp) * p.ow * p.oh);
    const PoolWindow win = pool_window(p, py, px);
    float acc = pool_start(p);
    for (int oy = win.y0; oy < win.y1; ++oy) {
      for (int ox = win.x0; ox < win.x1; ++ox) {
        float v = conv_sum(x, w, bias, s, img, oy, ox, k, vec);
        if (z != nullptr) {
          v += load(z + ((img * s.oh + oy) * s.ow + ox) * s.kp + k);
        }
        acc = pool_add(p, acc, activate(act, v));
      }
    }
    store(y + i, p.is_max ? acc : acc / win.divisor);
  }
}

/// conv_pool_direct_kernel with 8 output channels per thread (one 16-byte store), for 16-bit
/// storage where each thread's 8 channels lie in one group. Each block first stages the filter
/// in shared memory as f32, (tap, input channel, output channel slot) — kh·kw·cin·kp floats,
/// cin = cg where the input loads 8 channels at a time, else the channels that hold data — so a
/// thread reads its 8 channels' weights as two 16-byte loads. Neighbouring threads take the
/// channel groups of one pixel, then the next pixel: stores are contiguous. A pool of 1x1,
/// stride 1 is the plain conv.
template <class T>
__global__ void conv_pool8_direct_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                         const float* __restrict__ bias, const T* z, T* y,
                                         ConvShape s, PoolShape p, ActDesc act) {
  pdl_entry();
  extern __shared__ float4 shared_filter[];
  float* sw = reinterpret_cast<float*>(shared_filter);
  const bool vec = conv_vec<T>(s);
  const int cin = vec ? s.cg : s.creal;
  const int taps = s.kh * s.kw;
  const int per_group = s.kd / s.groups;
  for (int e = threadIdx.x; e < taps * cin * s.kp; e += blockDim.x) {
    const int k = e % s.kp;
    const int ci = (e / s.kp) % cin;
    const int tap = e / (s.kp * cin);
    sw[e] = k < s.kd ? load(w + (static_cast<long long>(k) * taps + tap) * s.cg + ci) : 0.0f;
  }
  __syncthreads();
  const int kgroups = s.kp / 8;
  const long long total = static_cast<long long>(s.n) * p.oh * p.ow * kgroups;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
       i < total; i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const int k0 = static_cast<int>(i % kgroups) * 8;
    const long long pix = i / kgroups;
    const int px = static_cast<int>(pix % p.ow);
    const int py = static_cast<int>((pix / p.ow) % p.oh);
    const long long img = pix / (static_cast<long long>(p.ow) * p.oh);
    const int g = min(k0, s.kd - 1) / per_group;
    float b[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      b[j] = bias != nullptr && k0 + j < s.kd ? bias[k0 + j] : 0.0f;
    }
    const PoolWindow win = pool_window(p, py, px);
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      acc[j] = pool_start(p);
    }
    for (int oy = win.y0; oy < win.y1; ++oy) {
      for (int ox = win.x0; ox < win.x1; ++ox) {
        float v[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          v[j] = b[j];
        }
        for (int ky = 0; ky < s.kh; ++ky) {
          const int iy = oy * s.sh - s.ph + ky * s.dh;
          if (iy < 0 || iy >= s.h) {
            continue;
          }
          for (int kx = 0; kx < s.kw; ++kx) {
            const int ix = ox * s.sw - s.pw + kx * s.dw;
            if (ix < 0 || ix >= s.w) {
              continue;
            }
            const T* xp = x + ((img * s.h + iy) * s.w + ix) * s.cp + static_cast<long long>(g) * s.cg;
            const float4* wt = shared_filter + ((ky * s.kw + kx) * cin * s.kp + k0) / 4;
            for (int ci = 0; ci < cin; ci += 8) {
              float xv[8];
              if (vec) {
                load8(xp + ci, xv);
              } else {
#pragma unroll
                for (int c = 0; c < 8; ++c) {
                  xv[c] = ci + c < cin ? load(xp + ci + c) : 0.0f;
                }
              }
#pragma unroll
              for (int c = 0; c < 8; ++c) {
                if (ci + c < cin) {
                  const float4 w0 = wt[(ci + c) * s.kp / 4];
                  const float4 w1 = wt[(ci + c) * s.kp / 4 + 1];
                  v[0] += xv[c] * w0.x; v[1] += xv[c] * w0.y; v[2] += xv[c] * w0.z; v[3] += xv[c] * w0.w;
                  v[4] += xv[c] * w1.x; v[5] += xv[c] * w1.y; v[6] += xv[c] * w1.z; v[7] += xv[c] * w1.w;
                }
              }
            }
          }
        }
        if (z != nullptr) {
          float zv[8];
          load8(z + ((img * s.oh + oy) * s.ow + ox) * s.kp + k0, zv);
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            v[j] += zv[j];
          }
        }
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          acc[j] = pool_add(p, acc[j], activate(act, v[j]));
        }
      }
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      acc[j] = k0 + j < s.k && k0 + j < s.kd ? (p.is_max ? acc[j] : acc[j] / win.divisor) : 0.0f;
    }
    store8(y + pix * s.kp + k0, acc);
  }
}

/// The 8 slots from `ch0` of space-to-depth block (by, bx) of one image `s` (c × h × w, element
/// type S, strides `ss`): slot ch is channel ch/4 at row 2·by + (ch/2)%2 - pad_h, column
/// 2·bx + ch%2 - pad_w, normalized by `affine` (may be null); 0 outside the image (the
/// convolution's zero padding of the normalized input) and past 4·c.
template <class S>
__device__ __forceinline__ void space_to_depth8(const S* s, Strides ss, int c, int h, int w,
                                                int pad_h, int pad_w, int by, int bx, int ch0,
                                                const float* affine, float (&v)[8]) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int ch = ch0 + j;
    const int ci = ch / 4;
    const int y = 2 * by + (ch / 2) % 2 - pad_h;
    const int x = 2 * bx + ch % 2 - pad_w;
    v[j] = ci < c && y >= 0 && y < h && x >= 0 && x < w
               ? normalize(load(s + (static_cast<long long>(y) * w + x) * ss.pixel + ci * ss.channel),
                           affine, ci)
               : 0.0f;
  }
}

/// One thread per output block (image, Y, X), scp/8 16-byte stores (space_to_depth8).
template <class S, class T, class I>
__global__ void space_to_depth_kernel(const S* __restrict__ src, Strides ss, T* __restrict__ dst,
                                      int n, int c, int h, int w, int sh, int sw, int scp,
                                      int pad_h, int pad_w, const float* __restrict__ affine) {
  pdl_entry();
  const I blocks = static_cast<I>(n) * sh * sw;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < blocks;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int bx = static_cast<int>(i % sw);
    const int by = static_cast<int>((i / sw) % sh);
    const I img = i / (static_cast<I>(sw) * sh);
    const S* s = src + img * ss.image;
    T* d = dst + i * scp;
    for (int g = 0; g < scp; g += 8) {
      float v[8];
      space_to_depth8(s, ss, c, h, w, pad_h, pad_w, by, bx, g, affine, v);
      store8(d + g, v);
    }
  }
}

// The im2col matrix of a conv over NHWC input (cp slots a pixel, a multiple of 8): row pix =
// (image, oy, ox) holds kh·kw·cp values, tap (r, s) at (r·kw + s)·cp — the order of the
// filter's (K, kh, kw, C) rows — zeros where the tap falls in the padding. A thread a 16-byte
// chunk of 8 slots (16-bit storage only).
template <class T, class I>
__global__ void im2col_kernel(const T* __restrict__ src, T* __restrict__ dst, int n, int h, int w,
                              int cp, int oh, int ow, int kh, int kw, int sh, int sw, int ph,
                              int pw, int dh, int dw) {
  static_assert(sizeof(T) == 2, "im2col_kernel: 16-bit storage");
  pdl_entry();
  const int groups = cp / 8;
  const I total = static_cast<I>(n) * oh * ow * kh * kw * groups;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int g = static_cast<int>(i % groups);
    const I tap_pix = i / groups;
    const int s = static_cast<int>(tap_pix % kw);
    const int r = static_cast<int>((tap_pix / kw) % kh);
    const I pix = tap_pix / (static_cast<I>(kw) * kh);
    const int ox = static_cast<int>(pix % ow);
    const int oy = static_cast<int>((pix / ow) % oh);
    const I img = pix / (static_cast<I>(ow) * oh);
    const int y = oy * sh - ph + r * dh;
    const int x = ox * sw - pw + s * dw;
    const bool inside = y >= 0 && y < h && x >= 0 && x < w;
    *reinterpret_cast<uint4*>(dst + i * 8) =
        inside ? *reinterpret_cast<const uint4*>(src + ((img * h + y) * w + x) * cp + g * 8)
               : make_uint4(0u, 0u, 0u, 0u);
  }
}

template <class T, class I>
__global__ void subsample_kernel(const T* __restrict__ src, T* __restrict__ dst, int n, int h,
                                 int w, int cp, int oh, int ow, int sh, int sw) {
  pdl_entry();
  const int groups = cp / 8;
  const I total = static_cast<I>(n) * oh * ow * groups;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int g = static_cast<int>(i % groups);
    const I pix = i / groups;
    const int ox = static_cast<int>(pix % ow);
    const int oy = static_cast<int>((pix / ow) % oh);
    const I img = pix / (static_cast<I>(ow) * oh);
    const T* s = src + ((img * h + static_cast<I>(oy) * sh) * w + static_cast<I>(ox) * sw) * cp + g * 8;
    T* d = dst + pix * cp + g * 8;
    if constexpr (sizeof(T) == 2) {
      *reinterpret_cast<uint4*>(d) = *reinterpret_cast<const uint4*>(s);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        d[j] = s[j];
      }
    }
  }
}

}  // namespace strata_rtc
)strata_rtc";

/// The generic kernels of the layers added with concat (upsample, adaptive average pooling, the
/// channel gate, the transposed convolution). Each reads a dense tensor with strides `xs` and
/// writes through strides `ys` — its own tensor, or its channel slice of a concat's output
/// (storage.hpp, OutSlice) — `write` channel slots per pixel, slots at or past the op's `c`
/// channels as 0. One thread per output element, channel fastest in NHWC (coalesced).
inline constexpr std::string_view kernel_bodies_layers = R"strata_rtc(
namespace strata_rtc {

/// Output element i of (n, write, oh·ow) in iteration order: channel fastest (NHWC) or pixel
/// fastest (NCHW).
struct OutIndex { long long img; int ch; int pixel; };
template <class I>
__device__ __forceinline__ OutIndex out_index(I i, int write, int pixels, bool nhwc) {
  OutIndex r;
  if (nhwc) {
    r.ch = static_cast<int>(i % write);
    r.pixel = static_cast<int>((i / write) % pixels);
  } else {
    r.pixel = static_cast<int>(i % pixels);
    r.ch = static_cast<int>((i / pixels) % write);
  }
  r.img = static_cast<long long>(i / (static_cast<I>(write) * pixels));
  return r;
}

/// Where output pixel `dst` samples the input along one dimension for bilinear interpolation
/// (cpu::linear_tap): the two source indices and the second one's weight.
struct LinearTap { int i0; int i1; float w1; };
__device__ __forceinline__ LinearTap linear_tap(int dst, int in_size, int out_size, int factor,
                                                bool align_corners) {
  float src;
  if (align_corners) {
    src = out_size > 1 ? static_cast<float>(dst) * static_cast<float>(in_size - 1) /
                             static_cast<float>(out_size - 1)
                       : 0.0f;
  } else {
    src = fmaxf((static_cast<float>(dst) + 0.5f) / static_cast<float>(factor) - 0.5f, 0.0f);
  }
  LinearTap t;
  t.i0 = min(static_cast<int>(src), in_size - 1);
  t.i1 = min(t.i0 + 1, in_size - 1);
  t.w1 = src - static_cast<float>(t.i0);
  return t;
}

/// nn.Upsample by integer factors (s.sh, s.sw): nearest (source ⌊dst/factor⌋) or bilinear with
/// PyTorch's align_corners rule.
template <class T, class I>
__global__ void upsample_kernel(const T* __restrict__ x, Strides xs, T* __restrict__ y, Strides ys,
                                ResizeShape s, int write, bool nhwc) {
  pdl_entry();
  const int pixels = s.oh * s.ow;
  const I total = static_cast<I>(s.n) * write * pixels;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const OutIndex o = out_index(i, write, pixels, nhwc);
    const int oy = o.pixel / s.ow;
    const int ox = o.pixel - oy * s.ow;
    float v = 0.0f;
    if (o.ch < s.c) {
      const T* base = x + o.img * xs.image + o.ch * xs.channel;
      if (!s.bilinear) {
        v = load(base + (static_cast<long long>(oy / s.sh) * s.w + ox / s.sw) * xs.pixel);
      } else {
        const LinearTap ty = linear_tap(oy, s.h, s.oh, s.sh, s.align_corners);
        const LinearTap tx = linear_tap(ox, s.w, s.ow, s.sw, s.align_corners);
        const T* r0 = base + static_cast<long long>(ty.i0) * s.w * xs.pixel;
        const T* r1 = base + static_cast<long long>(ty.i1) * s.w * xs.pixel;
        const float top = (1.0f - tx.w1) * load(r0 + tx.i0 * xs.pixel) + tx.w1 * load(r0 + tx.i1 * xs.pixel);
        const float bottom = (1.0f - tx.w1) * load(r1 + tx.i0 * xs.pixel) + tx.w1 * load(r1 + tx.i1 * xs.pixel);
        v = (1.0f - ty.w1) * top + ty.w1 * bottom;
      }
    }
    store(y + o.img * ys.image + static_cast<long long>(o.pixel) * ys.pixel + o.ch * ys.channel, v);
  }
}

/// nn.AdaptiveAvgPool2d((oh, ow)): output (oy, ox) is the mean of rows [⌊oy·h/oh⌋,
/// ⌈(oy+1)·h/oh⌉) and columns likewise (windows may overlap), f32 accumulation.
template <class T, class I>
__global__ void adaptive_avg_pool_kernel(const T* __restrict__ x, Strides xs, T* __restrict__ y,
                                         Strides ys, ResizeShape s, int write, bool nhwc) {
  pdl_entry();
  const int pixels = s.oh * s.ow;
  const I total = static_cast<I>(s.n) * write * pixels;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const OutIndex o = out_index(i, write, pixels, nhwc);
    const int oy = o.pixel / s.ow;
    const int ox = o.pixel - oy * s.ow;
    float v = 0.0f;
    if (o.ch < s.c) {
      const int y0 = oy * s.h / s.oh;
      const int y1 = ((oy + 1) * s.h + s.oh - 1) / s.oh;
      const int x0 = ox * s.w / s.ow;
      const int x1 = ((ox + 1) * s.w + s.ow - 1) / s.ow;
      const T* base = x + o.img * xs.image + o.ch * xs.channel;
      float acc = 0.0f;
      for (int yy = y0; yy < y1; ++yy) {
        for (int xx = x0; xx < x1; ++xx) {
          acc += load(base + (static_cast<long long>(yy) * s.w + xx) * xs.pixel);
        }
      }
      v = acc / static_cast<float>((y1 - y0) * (x1 - x0));
    }
    store(y + o.img * ys.image + static_cast<long long>(o.pixel) * ys.pixel + o.ch * ys.channel, v);
  }
}

/// A channel gate: y = act(x · gate[img, ch]) for the `c` channels of `hw` pixels; the gate is
/// (n, C, 1, 1) stored with `gate_image` elements per image (channel stride 1 in both layouts).
template <class T, class I>
__global__ void channel_gate_kernel(const T* __restrict__ x, Strides xs, const T* __restrict__ gate,
                                    long long gate_image, T* __restrict__ y, Strides ys, int n,
                                    int c, int hw, int write, ActDesc act, bool nhwc) {
  pdl_entry();
  const I total = static_cast<I>(n) * write * hw;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const OutIndex o = out_index(i, write, hw, nhwc);
    float v = 0.0f;
    if (o.ch < c) {
      v = activate(act, load(x + o.img * xs.image + static_cast<long long>(o.pixel) * xs.pixel +
                             o.ch * xs.channel) *
                            load(gate + o.img * gate_image + o.ch));
    }
    store(y + o.img * ys.image + static_cast<long long>(o.pixel) * ys.pixel + o.ch * ys.channel, v);
  }
}

/// channel_gate_kernel for 16-bit NHWC with cp (a multiple of 8) slots: 8 channels per thread,
/// 16-byte accesses. x is dense (hw pixels of cp slots an image, images `x_image` elements
/// apart: hw·cp, or 0 for one x for every image — a 1×1 conv's weights, kp rows of cp, scaled
/// per image by its gate), the gate (n, cp), y has `y_pixel` slots per pixel (a multiple of 8,
/// and y 16-byte aligned) of which the first cp are written.
template <class T, class I>
__global__ void channel_gate8_kernel(const T* __restrict__ x, long long x_image,
                                     const T* __restrict__ gate, T* __restrict__ y,
                                     long long y_pixel, int n, int c, int cp, int hw, ActDesc act) {
  pdl_entry();
  const int groups = cp / 8;
  const I total = static_cast<I>(n) * hw * groups;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int ch0 = static_cast<int>(i % groups) * 8;
    const I pix = i / groups;
    const I img = pix / hw;
    float v[8];
    float g[8];
    load8(x + img * x_image + (pix - img * hw) * cp + ch0, v);
    load8(gate + img * cp + ch0, g);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      v[j] = ch0 + j < c ? activate(act, v[j] * g[j]) : 0.0f;
    }
    store8(y + static_cast<long long>(pix) * y_pixel + ch0, v);
  }
}

/// nn.ConvTranspose2d as a gather: output (oy, ox) of channel o (group g = o / (k/groups)) sums
/// x[ci, iy, ix]·w over the group's input channels ci and the taps (ky, kx) with
/// iy·sh = oy + ph − ky·dh (and likewise ix), then bias, then the activation. Weights are stored
/// (k, kh, kw, c/groups); bias (f32, per output slot) may be null.
template <class T>
__global__ void conv_transpose_kernel(const T* __restrict__ x, Strides xs, const T* __restrict__ w,
                                      const float* __restrict__ bias, T* __restrict__ y, Strides ys,
                                      ConvTShape s, int write, ActDesc act, bool nhwc) {
  pdl_entry();
  const int pixels = s.oh * s.ow;
  const long long total = static_cast<long long>(s.n) * write * pixels;
  const int cpg = s.c / s.groups;
  const int opg = s.k / s.groups;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const OutIndex o = out_index(i, write, pixels, nhwc);
    float v = 0.0f;
    if (o.ch < s.k) {
      const int oy = o.pixel / s.ow;
      const int ox = o.pixel - oy * s.ow;
      const int g = o.ch / opg;
      float acc = bias != nullptr ? bias[o.ch] : 0.0f;
      const T* xg = x + o.img * xs.image + static_cast<long long>(g) * cpg * xs.channel;
      for (int ky = 0; ky < s.kh; ++ky) {
        const int ty = oy + s.ph - ky * s.dh;
        if (ty < 0 || ty % s.sh != 0 || ty / s.sh >= s.h) {
          continue;
        }
        const int iy = ty / s.sh;
        for (int kx = 0; kx < s.kw; ++kx) {
          const int tx = ox + s.pw - kx * s.dw;
          if (tx < 0 || tx % s.sw != 0 || tx / s.sw >= s.w) {
            continue;
          }
          const int ix = tx / s.sw;
          const T* xp = xg + (static_cast<long long>(iy) * s.w + ix) * xs.pixel;
          const T* wp = w + ((static_cast<long long>(o.ch) * s.kh + ky) * s.kw + kx) * cpg;
          for (int ci = 0; ci < cpg; ++ci) {
            acc += load(xp + ci * xs.channel) * load(wp + ci);
          }
        }
      }
      v = activate(act, acc);
    }
    store(y + o.img * ys.image + static_cast<long long>(o.pixel) * ys.pixel + o.ch * ys.channel, v);
  }
}

/// The depthwise kernels' filters of channel slots c0..c0+31 as f32 in shared memory, [K·K][32]
/// (stored as (channel, tap)); 0 for channels at or past k. Blocks of 256 threads.
template <int K, class T>
__device__ __forceinline__ void depthwise_filters(const T* w, float* wsm, int c0, int k) {
  for (int i = threadIdx.x; i < K * K * 32; i += 256) {
    const int ci = i / (K * K);
    const int t = i % (K * K);
    const int ch = c0 + ci;
    wsm[t * 32 + ci] = ch < k ? load(w + static_cast<long long>(ch) * (K * K) + t) : 0.0f;
  }
}

/// The depthwise kernels' dot product: acc (8 channels) += the K×K taps of output pixel (ty, tx)
/// of a tile, from its staged input patch ([rows][cols][32 slots], 16-bit) and the chunk's
/// filters ([K·K][32], f32); `g`: the thread's 8 channels of the 32. The tap rows unrolled
/// KY_UNROLL at a time (1 keeps the registers low), each row's taps fully.
template <int KY_UNROLL, class T, int K, int S>
__device__ __forceinline__ void depthwise_taps(const T* xsm, const float* wsm, int cols, int ty,
                                               int tx, int g, int dh, int dw, float (&acc)[8]) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    acc[j] = 0.0f;
  }
#pragma unroll KY_UNROLL
  for (int ky = 0; ky < K; ++ky) {
    const T* xr = xsm + ((ty * S + ky * dh) * cols + tx * S) * 32 + g * 8;
    const float* wr = wsm + ky * K * 32 + g * 8;
#pragma unroll
    for (int kx = 0; kx < K; ++kx) {
      const float4 w0 = *reinterpret_cast<const float4*>(wr + kx * 32);
      const float4 w1 = *reinterpret_cast<const float4*>(wr + kx * 32 + 4);
      const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
      const uint4 r = *reinterpret_cast<const uint4*>(xr + kx * dw * 32);
      const T* h = reinterpret_cast<const T*>(&r);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        acc[j] += load(h + j) * wv[j];
      }
    }
  }
}

/// The depthwise kernels' epilogue at element `o` (channel `ch` of an output pixel): bias, the
/// residual z (or null), then `f` (the activation: activate(), or one compiled in for its kind);
/// slots at or past k written as 0.
template <class T, class F>
__device__ __forceinline__ void depthwise_epilogue(float (&acc)[8], const float* bias, const T* z,
                                                   T* y, long long o, int ch, int k, F f) {
  float zv[8];
  if (z != nullptr) {
    load8(z + o, zv);
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    float v = acc[j] + (bias != nullptr ? bias[ch + j] : 0.0f) + (z != nullptr ? zv[j] : 0.0f);
    acc[j] = ch + j < k ? f(v) : 0.0f;
  }
  store8(y + o, acc);
}

/// depthwise_epilogue with activation `act` of any kind.
template <class T>
__device__ __forceinline__ void depthwise_store(float (&acc)[8], const float* bias, const T* z,
                                                T* y, long long o, int ch, int k, ActDesc act) {
  depthwise_epilogue(acc, bias, z, y, o, ch, k, [act](float v) { return activate(act, v); });
}

/// The depthwise convolution (one filter per channel) of 16-bit NHWC storage, f32 accumulation,
/// K×K taps at stride S (dilation and padding at run time). A block of 256 threads computes an
/// 8×8 tile of output pixels for 32 channel slots: it stages the input patch the tile reads in
/// shared memory once — 16-byte copies, four in flight a thread, with `in_act` (the producer's
/// deferred activation) applied in registers on the way, so each input value is activated once
/// however many taps read it — and the 32 channels' filters as f32; then each thread computes 8
/// channels of one output pixel from shared memory. At most 64 registers a thread (4 blocks an
/// SM, no spills); the tap rows stay a loop.
/// Epilogue: bias, the residual z (or null), act; slots at or past s.k are written as 0. Grid:
/// (image, tile row, tile column, 32-slot chunk), chunk fastest.
template <class T, int K, int S>
__global__ void __launch_bounds__(256, 4) depthwise_kernel(const T* __restrict__ x,
    const T* __restrict__ w, const float* __restrict__ bias, const T* z, T* __restrict__ y,
    ConvShape s, ActDesc in_act, ActDesc act, int tiles_w, int tiles_h, int chunks) {
  pdl_entry();
  extern __shared__ __align__(16) unsigned char dw_smem[];
  const int rows = 7 * S + (K - 1) * s.dh + 1;
  const int cols = 7 * S + (K - 1) * s.dw + 1;
  float* wsm = reinterpret_cast<float*>(dw_smem);                   // [K·K][32]
  T* xsm = reinterpret_cast<T*>(dw_smem + K * K * 32 * sizeof(float));  // [rows][cols][32]
  long long b = blockIdx.x;
  const int chunk = static_cast<int>(b % chunks);
  b /= chunks;
  const int tx0 = static_cast<int>(b % tiles_w) * 8;
  b /= tiles_w;
  const int ty0 = static_cast<int>(b % tiles_h) * 8;
  const long long img = b / tiles_h;
  const int c0 = chunk * 32;
  depthwise_filters<K>(w, wsm, c0, s.k);
  const int iy0 = ty0 * S - s.ph;
  const int ix0 = tx0 * S - s.pw;
  const int vectors = rows * cols * 4;
  for (int i0 = threadIdx.x; i0 < vectors; i0 += 4 * 256) {  // 16-byte copies, 4 in flight
    uint4 raw[4];
    bool inside[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int i = i0 + u * 256;
      const int g = i & 3;
      const int p = i >> 2;
      const int iy = iy0 + p / cols;
      const int ix = ix0 + p % cols;
      const int ch = c0 + g * 8;
      raw[u] = make_uint4(0u, 0u, 0u, 0u);
      inside[u] = i < vectors && iy >= 0 && iy < s.h && ix >= 0 && ix < s.w && ch < s.cp;
      if (inside[u]) {
        raw[u] = *reinterpret_cast<const uint4*>(x + ((img * s.h + iy) * s.w + ix) * s.cp + ch);
      }
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int i = i0 + u * 256;
      if (i < vectors) {
        if (inside[u] && in_act.kind != Act::none) {  // once per staged value; padding stays 0
          float v[8];
          load8(reinterpret_cast<const T*>(&raw[u]), v);
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            v[j] = activate(in_act, v[j]);
          }
          store8(reinterpret_cast<T*>(&raw[u]), v);
        }
        *reinterpret_cast<uint4*>(xsm + i * 8) = raw[u];  // p·32 + g·8 = 8·i
      }
    }
  }
  __syncthreads();
  const int g = threadIdx.x & 3;
  const int ty = threadIdx.x >> 5;
  const int tx = (threadIdx.x >> 2) & 7;
  const int ox = tx0 + tx;
  const int ch = c0 + g * 8;
  if (ox >= s.ow || ch >= s.cp || ty0 + ty >= s.oh) {
    return;
  }
  float acc[8];
  depthwise_taps<1, T, K, S>(xsm, wsm, cols, ty, tx, g, s.dh, s.dw, acc);
  const int oy = ty0 + ty;
  depthwise_store(acc, bias, z, y, ((img * s.oh + oy) * s.ow + ox) * s.kp + ch, ch, s.k, act);
}

/// The depthwise convolution for large maps (kernels::depthwise_tiled): what depthwise_kernel
/// computes, by persistent blocks of 256 threads that keep memory busy. A block owns one
/// 32-slot channel chunk (the grid is a multiple of the chunks: its filters are staged once) and
/// walks tiles of 8×16 output pixels; the next tile's input patch is copied into the second
/// shared buffer (cp.async, zero outside the map) while this one is computed. The producer's
/// deferred activation is applied to the staged patch in place, once per value and only inside
/// the map (the padding stays 0). Each thread computes 8 channels of two output pixels (rows r
/// and r + 4 of the tile, one after the other), all taps unrolled; at most 64 registers (4 blocks
/// an SM where the patches fit).
template <class T, int K, int S>
__global__ void __launch_bounds__(256, 4) depthwise_tiled_kernel(const T* __restrict__ x,
    const T* __restrict__ w, const float* __restrict__ bias, const T* z, T* __restrict__ y,
    ConvShape s, ActDesc in_act, ActDesc act, int tiles_w, int tiles_h, int chunks) {
  pdl_entry();
  constexpr int TH = 8;
  constexpr int TW = 16;
  extern __shared__ __align__(16) unsigned char dw_smem[];
  const int rows = (TH - 1) * S + (K - 1) * s.dh + 1;
  const int cols = (TW - 1) * S + (K - 1) * s.dw + 1;
  const int vectors = rows * cols * 4;  // 16-byte pieces of a patch (32 slots a pixel)
  float* wsm = reinterpret_cast<float*>(dw_smem);                       // [K·K][32]
  T* xsm = reinterpret_cast<T*>(dw_smem + K * K * 32 * sizeof(float));  // 2 × [rows][cols][32]
  const int chunk = static_cast<int>(blockIdx.x % chunks);
  const int c0 = chunk * 32;
  depthwise_filters<K>(w, wsm, c0, s.k);
  const long long tiles = static_cast<long long>(s.n) * tiles_h * tiles_w;
  const long long step = gridDim.x / chunks;
  // Tile t's image and the input pixel its patch starts at.
  struct Origin {
    long long img;
    int oy0, ox0, iy0, ix0;
  };
  auto origin = [&](long long t) {
    Origin o;
    o.ox0 = static_cast<int>(t % tiles_w) * TW;
    t /= tiles_w;
    o.oy0 = static_cast<int>(t % tiles_h) * TH;
    o.img = t / tiles_h;
    o.iy0 = o.oy0 * S - s.ph;
    o.ix0 = o.ox0 * S - s.pw;
    return o;
  };
  auto inside = [&](const Origin& o, int i, const T*& src) {
    const int p = i >> 2;
    const int iy = o.iy0 + p / cols;
    const int ix = o.ix0 + p % cols;
    const int ch = c0 + (i & 3) * 8;
    const bool in = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w && ch < s.cp;
    src = in ? x + ((o.img * s.h + iy) * s.w + ix) * s.cp + ch : x;
    return in;
  };
  auto stage = [&](long long t, T* buf) {
    const Origin o = origin(t);
    for (int i = threadIdx.x; i < vectors; i += 256) {
      const T* src;
      const bool in = inside(o, i, src);
#if __CUDA_ARCH__ >= 800
      cp_async16(buf + i * 8, src, in);
#else
      *reinterpret_cast<uint4*>(buf + i * 8) =
          in ? *reinterpret_cast<const uint4*>(src) : make_uint4(0u, 0u, 0u, 0u);
#endif
    }
#if __CUDA_ARCH__ >= 800
    cp_async_commit();
#endif
  };
  const int g = threadIdx.x & 3;
  const int tx = (threadIdx.x >> 2) & (TW - 1);
  const int tr = threadIdx.x >> 6;  // rows tr and tr + 4
  const int ch = c0 + g * 8;
  long long t = blockIdx.x / chunks;
  if (t < tiles) {
    stage(t, xsm);
  }
  for (int buf = 0; t < tiles; t += step, buf ^= 1) {
    T* xb = xsm + buf * (vectors * 8);
#if __CUDA_ARCH__ >= 800
    cp_async_wait<0>();
#endif
    // Tile t's patch is in (the filters too, the first time); every thread is done with the
    // previous tile, whose buffer the next tile's patch now goes into.
    __syncthreads();
    if (t + step < tiles) {
      stage(t + step, xsm + (buf ^ 1) * (vectors * 8));
    }
    const Origin o = origin(t);
    if (in_act.kind != Act::none) {
      for (int i = threadIdx.x; i < vectors; i += 256) {
        const T* src;
        if (inside(o, i, src)) {
          float v[8];
          load8(xb + i * 8, v);
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            v[j] = activate(in_act, v[j]);
          }
          store8(xb + i * 8, v);
        }
      }
      __syncthreads();
    }
    const int ox = o.ox0 + tx;
#pragma unroll 1
    for (int r = 0; r < 2; ++r) {
      const int ty = tr + 4 * r;
      const int oy = o.oy0 + ty;
      if (ox < s.ow && oy < s.oh && ch < s.kp) {
        float acc[8];
        depthwise_taps<K, T, K, S>(xb, wsm, cols, ty, tx, g, s.dh, s.dw, acc);
        depthwise_store(acc, bias, z, y, ((o.img * s.oh + oy) * s.ow + ox) * s.kp + ch, ch, s.k, act);
      }
    }
  }
}

/// A pair of T (channels ch, ch + 1 of a pixel, as loaded) with the producer's deferred
/// activation IA applied and rounded to T, as the unfused path stores it. None, ReLU
/// and clip run on the stored pair itself (max/min of 16-bit pairs, clip's bounds rounded to T:
/// the same values as rounding the f32 result, with no conversion back and forth); any other
/// kind in f32, the pair rounded by one conversion. `lo2`, `hi2`: clip's bounds as pairs of T.
template <Act IA, class T>
__device__ __forceinline__ unsigned pair_act_stored(unsigned raw, ActDesc in_act, unsigned lo2,
                                                    unsigned hi2) {
  if constexpr (IA == Act::relu) {
    return max2<T>(raw, 0u);
  } else if constexpr (IA == Act::clip) {
    return min2<T>(max2<T>(raw, lo2), hi2);
  } else if constexpr (IA == Act::none) {
    return raw;
  } else {
    const T* h = reinterpret_cast<const T*>(&raw);
    return pack2<T>(activate_as<IA>(in_act, load(h)), activate_as<IA>(in_act, load(h + 1)));
  }
}
/// pair_act_stored's pair as two f32.
template <Act IA, class T>
__device__ __forceinline__ float2 pair_act(unsigned raw, ActDesc in_act, unsigned lo2,
                                           unsigned hi2) {
  const unsigned r = pair_act_stored<IA, T>(raw, in_act, lo2, hi2);
  const T* h = reinterpret_cast<const T*>(&r);
  return float2{load(h), load(h + 1)};
}
/// clip's bounds as pairs of T (x: the lower, y: the upper) for pair_act where IA is clip; 0
/// otherwise.
template <Act IA, class T>
__device__ __forceinline__ uint2 pair_act_bounds(ActDesc in_act) {
  if constexpr (IA == Act::clip) {
    return make_uint2(pack2<T>(in_act.alpha, in_act.alpha), pack2<T>(in_act.beta, in_act.beta));
  } else {
    return make_uint2(0u, 0u);
  }
}
/// A channel pair's epilogue at element `o` (channels ch, ch + 1 of an output pixel): the
/// residual z (or null) added, `f` (the activation of both values, as a float2) applied, slots
/// at or past k written as 0, one 4-byte store.
template <class T, class F>
__device__ __forceinline__ void pair_epilogue(T* y, const T* z, long long o, int ch, int k,
                                              float v0, float v1, F f) {
  if (z != nullptr) {
    const unsigned zr = *reinterpret_cast<const unsigned*>(z + o);
    const T* zh = reinterpret_cast<const T*>(&zr);
    v0 += load(zh);
    v1 += load(zh + 1);
  }
  const float2 u = f(v0, v1);
  *reinterpret_cast<unsigned*>(y + o) = pack2<T>(ch < k ? u.x : 0.0f, ch + 1 < k ? u.y : 0.0f);
}

/// 8 channels of T at `p` (16-byte aligned) as f32 through pair_act.
template <Act IA, class T>
__device__ __forceinline__ void load8_act(const T* __restrict__ p, ActDesc in_act, unsigned lo2,
                                          unsigned hi2, float (&v)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const unsigned u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = pair_act<IA, T>(u[i], in_act, lo2, hi2);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

/// depthwise_rows_kernel's taps: acc[r] (8 channels of output row oy0 + r) += the K×K taps over
/// the (R − 1)·S + K input rows from iy0, K vectors a row from column ix0, each value loaded once,
/// with the producer's deferred activation IA applied (load8_act; zero outside the map); filters
/// `wt` (shared, [K·K][cw]).
template <Act IA, class T, int K, int S, int R>
__device__ __forceinline__ void depthwise_rows_taps(const T* __restrict__ x, const ConvShape& s,
    long long img, int iy0, int ix0, int ch, ActDesc in_act, const float* wt, int cw,
    float (&acc)[R][8]) {
  constexpr int ROWS = (R - 1) * S + K;
  const uint2 b2 = pair_act_bounds<IA, T>(in_act);
#pragma unroll
  for (int j = 0; j < ROWS; ++j) {
    const int iy = iy0 + j;
    if (iy < 0 || iy >= s.h) {
      continue;
    }
    const T* xr = x + (img * s.h + iy) * s.w * s.cp + ch;
    float xv[K][8];
#pragma unroll
    for (int kx = 0; kx < K; ++kx) {
      const int ix = ix0 + kx;
      if (ix >= 0 && ix < s.w) {
        load8_act<IA>(xr + static_cast<long long>(ix) * s.cp, in_act, b2.x, b2.y, xv[kx]);
      } else {
#pragma unroll
        for (int c = 0; c < 8; ++c) {
          xv[kx][c] = 0.0f;
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int ky = j - r * S;
      if (ky >= 0 && ky < K) {
#pragma unroll
        for (int kx = 0; kx < K; ++kx) {
          const int t = ky * K + kx;
          const float4 a = *reinterpret_cast<const float4*>(wt + t * cw);
          const float4 b = *reinterpret_cast<const float4*>(wt + t * cw + 4);
          const float wv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
          for (int c = 0; c < 8; ++c) {
            acc[r][c] += xv[kx][c] * wv[c];
          }
        }
      }
    }
  }
}

/// depthwise_rows_kernel's epilogue for activation A, each of the R rows inside the map: bias
/// `bv` (the thread's 8 channels, read once), the residual z (or null), then A (as
/// depthwise_epilogue: slots at or past k written as 0).
template <Act A, class T, int R>
__device__ __forceinline__ void depthwise_rows_store(float (&acc)[R][8], const float (&bv)[8],
    const T* z, T* y, const ConvShape& s, long long img, int oy0, int ox, int ch, ActDesc act) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int oy = oy0 + r;
    if (oy < s.oh) {
      const long long o = ((img * s.oh + oy) * s.ow + ox) * s.kp + ch;
      float zv[8];
      if (z != nullptr) {
        load8(z + o, zv);
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float v = acc[r][j] + bv[j] + (z != nullptr ? zv[j] : 0.0f);
        acc[r][j] = ch + j < s.k ? activate_as<A>(act, v) : 0.0f;
      }
      store8(y + o, acc[r]);
    }
  }
}

/// The depthwise convolution by strips of output rows (kernels::depthwise_rows), dilation 1: no
/// staged patch. A thread computes 8 channels (one 16-byte vector) of R vertically adjacent output
/// pixels at one column: it reads the (R − 1)·S + K input rows those need, K vectors a row (the
/// producer's deferred activation applied once per loaded value; zero outside the map), and adds
/// each row into every output row whose taps cover it. A block's threads run `gc` channel
/// vectors fastest, then consecutive output columns of row strips, so a warp's loads are
/// contiguous in NHWC and neighbouring columns share their input in L1. The block's filters are
/// staged as f32 in shared memory ([K·K][gc·8]) and read from there; blocks of 128 threads, 4 an
/// SM within 128 registers, so one finishing does not leave the SM idle (each thread keeping its
/// 72 filters of a 3×3 in registers took ~150 registers, one 256-thread block an SM: 1.4-1.7x
/// slower on an H200). The activations are compiled in per kind (the taps and stores are unrolled: one
/// generic activation at every site would not fit the instruction cache): on load none, ReLU,
/// clip, SiLU, hardswish or hardsigmoid (the tactic offers the kernel for those only; any other
/// traps); in the epilogue those or any other through activate(). Grid: (column group, chunk of
/// gc vectors), chunk fastest.
template <class T, int K, int S, int R>
__global__ void __launch_bounds__(128, 4) depthwise_rows_kernel(const T* __restrict__ x,
    const T* __restrict__ w, const float* __restrict__ bias, const T* z, T* __restrict__ y,
    ConvShape s, ActDesc in_act, ActDesc act, int gc, int strips, int chunks) {
  pdl_entry();
  extern __shared__ __align__(16) unsigned char dw_smem[];
  float* wsm = reinterpret_cast<float*>(dw_smem);  // [K·K][gc·8]
  const int cw = gc * 8;
  const int chunk = static_cast<int>(blockIdx.x % chunks);
  const long long group = blockIdx.x / chunks;
  const int c0 = chunk * cw;
  for (int i = threadIdx.x; i < K * K * cw; i += blockDim.x) {
    const int ci = i / (K * K);
    const int t = i % (K * K);
    const int ch = c0 + ci;
    wsm[t * cw + ci] = ch < s.k ? load(w + static_cast<long long>(ch) * (K * K) + t) : 0.0f;
  }
  __syncthreads();
  const int per = blockDim.x / gc;
  const int tg = threadIdx.x % gc;
  const long long q = group * per + threadIdx.x / gc;  // (image, strip, column)
  if (q >= static_cast<long long>(s.n) * strips * s.ow) {
    return;
  }
  const int ox = static_cast<int>(q % s.ow);
  const long long rest = q / s.ow;
  const int oy0 = static_cast<int>(rest % strips) * R;
  const long long img = rest / strips;
  const int ch = c0 + tg * 8;
  const float* wt = wsm + tg * 8;
  float acc[R][8];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      acc[r][j] = 0.0f;
    }
  }
  const int iy0 = oy0 * S - s.ph;
  const int ix0 = ox * S - s.pw;
#define STRATA_DW_TAPS(A)                                                                       \
  depthwise_rows_taps<A, T, K, S, R>(x, s, img, iy0, ix0, ch, in_act, wt, cw, acc); break
  switch (in_act.kind) {
    case Act::none: STRATA_DW_TAPS(Act::none);
    case Act::relu: STRATA_DW_TAPS(Act::relu);
    case Act::clip: STRATA_DW_TAPS(Act::clip);
    case Act::silu: STRATA_DW_TAPS(Act::silu);
    case Act::hardswish: STRATA_DW_TAPS(Act::hardswish);
    case Act::hardsigmoid: STRATA_DW_TAPS(Act::hardsigmoid);
    default: __trap();
  }
#undef STRATA_DW_TAPS
  float bv[8];  // (the bias is padded to the slots: ch + 7 < kp)
  if (bias != nullptr) {
    load8f(bias + ch, bv);
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      bv[j] = 0.0f;
    }
  }
#define STRATA_DW_STORE(A) \
  depthwise_rows_store<A, T, R>(acc, bv, z, y, s, img, oy0, ox, ch, act); break
  switch (act.kind) {
    case Act::none: STRATA_DW_STORE(Act::none);
    case Act::relu: STRATA_DW_STORE(Act::relu);
    case Act::clip: STRATA_DW_STORE(Act::clip);
    case Act::silu: STRATA_DW_STORE(Act::silu);
    case Act::hardswish: STRATA_DW_STORE(Act::hardswish);
    default:
#pragma unroll 1
      for (int r = 0; r < R; ++r) {  // one generic site a value; acc stays in registers
        float v[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          v[j] = acc[0][j];
        }
#pragma unroll
        for (int u = 0; u + 1 < R; ++u) {  // rotate the rows: row r is now acc[0]
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            acc[u][j] = acc[u + 1][j];
          }
        }
        const int oy = oy0 + r;
        if (oy < s.oh) {
          depthwise_store(v, bias, z, y, ((img * s.oh + oy) * s.ow + ox) * s.kp + ch, ch, s.k, act);
        }
      }
  }
#undef STRATA_DW_STORE
}

/// activate() of two values, not inlined: depthwise_pairs_kernel's epilogue for the activation
/// kinds it does not compile in (one call site instead of the whole switch at every output).
__device__ __noinline__ float2 activate_pair(ActDesc a, float v0, float v1) {
  return float2{activate(a, v0), activate(a, v1)};
}

/// depthwise_pairs_kernel's taps and stores for activations IA (on load: none, clip — ReLU is
/// clip to [0, inf) — SiLU, hardswish, hardsigmoid) and A (epilogue: none, clip, SiLU, or
/// Act::mish for "any other kind", through activate_pair).
template <Act IA, Act A, class T, int K, int S, int R>
__device__ __forceinline__ void depthwise_pairs_run(const T* __restrict__ x,
    const float (&wv)[K * K][2], float2 bv, const T* z, T* __restrict__ y, const ConvShape& s, long long img, int oy0, int ox0,
    int ch, ActDesc in_act, ActDesc act) {
  constexpr int NR = (R - 1) * S + K;  // input rows a strip reads
  constexpr int CW = 8;                // output columns a thread slides over
  const uint2 b2 = pair_act_bounds<IA, T>(in_act);
  const int iy0 = oy0 * S - s.ph;
  const int ix0 = ox0 * S - s.pw;
  // Whether input pixel (row iy0 + j, column ix) lies in the map; the pair there as stored (0
  // outside); a pair as f32 with the activation applied (zero outside stays zero).
  auto inside = [&](int j, int ix) {
    return iy0 + j >= 0 && iy0 + j < s.h && ix >= 0 && ix < s.w;
  };
  auto fetch = [&](int j, int ix) -> unsigned {
    return inside(j, ix) ? __ldg(reinterpret_cast<const unsigned*>(
                               x + ((img * s.h + iy0 + j) * s.w + ix) * s.cp + ch))
                         : 0u;
  };
  auto convert = [&](unsigned raw, int j, int ix) -> float2 {
    return inside(j, ix) ? pair_act<IA, T>(raw, in_act, b2.x, b2.y) : float2{0.0f, 0.0f};
  };
  float2 win[K][NR];  // the K input columns of the current output column
#pragma unroll
  for (int c = 0; c < K - S; ++c) {
#pragma unroll
    for (int j = 0; j < NR; ++j) {
      win[c][j] = convert(fetch(j, ix0 + c), j, ix0 + c);
    }
  }
  unsigned next[S][NR];  // the S columns the next output column adds, loaded a step ahead
#pragma unroll
  for (int c = 0; c < S; ++c) {
#pragma unroll
    for (int j = 0; j < NR; ++j) {
      next[c][j] = fetch(j, ix0 + K - S + c);
    }
  }
  // The step count through an empty asm the compiler cannot see through: with the constant, NVVM
  // unrolled the stride-2 loop fully in spite of the pragma (5x the PTX of stride 1; NVRTC and
  // ptxas took a minute for that one kernel, most of the depthwise library's compile).
  int cw = CW;
  asm volatile("" : "+r"(cw));
#pragma unroll 1
  for (int step = 0; step < cw; ++step) {
    const int ox = ox0 + step;
    if (ox >= s.ow) {
      break;
    }
#pragma unroll
    for (int c = 0; c < S; ++c) {
      const int ix = ix0 + step * S + K - S + c;
#pragma unroll
      for (int j = 0; j < NR; ++j) {
        win[K - S + c][j] = convert(next[c][j], j, ix);
      }
    }
    if (step + 1 < cw) {
#pragma unroll
      for (int c = 0; c < S; ++c) {
#pragma unroll
        for (int j = 0; j < NR; ++j) {
          next[c][j] = fetch(j, ix0 + (step + 1) * S + K - S + c);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int oy = oy0 + r;
      float a0 = 0.0f;
      float a1 = 0.0f;
#pragma unroll
      for (int ky = 0; ky < K; ++ky) {
#pragma unroll
        for (int kx = 0; kx < K; ++kx) {
          a0 += win[kx][r * S + ky].x * wv[ky * K + kx][0];
          a1 += win[kx][r * S + ky].y * wv[ky * K + kx][1];
        }
      }
      if (oy < s.oh) {
        pair_epilogue(y, z, ((img * s.oh + oy) * s.ow + ox) * s.kp + ch, ch, s.k, a0 + bv.x,
                      a1 + bv.y, [&](float v0, float v1) {
                        if constexpr (A == Act::mish) {  // (any kind not compiled in: one call)
                          return activate_pair(act, v0, v1);
                        } else {
                          return float2{activate_as<A>(act, v0), activate_as<A>(act, v1)};
                        }
                      });
      }
    }
#pragma unroll
    for (int c = 0; c < K - S; ++c) {  // slide: the window's last K - S columns come first
#pragma unroll
      for (int j = 0; j < NR; ++j) {
        win[c][j] = win[c + S][j];
      }
    }
  }
}

/// The depthwise convolution by channel pairs (kernels::depthwise_pairs), dilation 1: a thread
/// computes 2 channels (one 4-byte pair) of a strip of R output rows, sliding over 8 output
/// columns — each step adds the S input columns the next output column needs to a window of K
/// columns kept in registers (as f32, the producer's deferred activation applied once per loaded
/// value) and loads the following step's columns while this one is computed. The pair's K·K
/// filters and bias sit in registers (no shared memory). Threads run channel pairs fastest, then
/// column groups, strips and images, so a warp's loads and stores are whole 32-byte sectors of
/// NHWC (64 bytes of each of 2 pixels of a 32-slot map; 128 contiguous bytes from 64 slots on).
/// Activations as depthwise_rows_kernel's.
template <class T, int K, int S, int R>
__global__ void __launch_bounds__(256) depthwise_pairs_kernel(const T* __restrict__ x,
    const T* __restrict__ w, const float* __restrict__ bias, const T* z, T* __restrict__ y,
    ConvShape s, ActDesc in_act, ActDesc act, int col_groups, int strips) {
  pdl_entry();
  const int pairs = s.cp / 2;
  const long long q = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q >= static_cast<long long>(s.n) * strips * col_groups * pairs) {
    return;
  }
  const int ch = static_cast<int>(q % pairs) * 2;
  long long rest = q / pairs;
  const int ox0 = static_cast<int>(rest % col_groups) * 8;
  rest /= col_groups;
  const int oy0 = static_cast<int>(rest % strips) * R;
  const long long img = rest / strips;
  float wv[K * K][2];
#pragma unroll
  for (int t = 0; t < K * K; ++t) {
    wv[t][0] = ch < s.k ? load(w + static_cast<long long>(ch) * (K * K) + t) : 0.0f;
    wv[t][1] = ch + 1 < s.k ? load(w + static_cast<long long>(ch + 1) * (K * K) + t) : 0.0f;
  }
  const float2 bv =
      bias != nullptr ? *reinterpret_cast<const float2*>(bias + ch) : float2{0.0f, 0.0f};
  // ReLU as clip to [0, inf): the same values (a NaN gives 0 either way).
  const float inf = __int_as_float(0x7f800000);
  if (in_act.kind == Act::relu) {
    in_act = ActDesc{Act::clip, 0.0f, inf};
  }
  if (act.kind == Act::relu) {
    act = ActDesc{Act::clip, 0.0f, inf};
  }
#define STRATA_DWP(IA, A) \
  depthwise_pairs_run<IA, A, T, K, S, R>(x, wv, bv, z, y, s, img, oy0, ox0, ch, in_act, act); return
#define STRATA_DWP_OUT(IA)                       \
  switch (act.kind) {                            \
    case Act::none: STRATA_DWP(IA, Act::none);   \
    case Act::clip: STRATA_DWP(IA, Act::clip);   \
    case Act::silu: STRATA_DWP(IA, Act::silu);   \
    default: STRATA_DWP(IA, Act::mish);          \
  }
  switch (in_act.kind) {
    case Act::none: STRATA_DWP_OUT(Act::none);
    case Act::clip: STRATA_DWP_OUT(Act::clip);
    case Act::silu: STRATA_DWP_OUT(Act::silu);
    case Act::hardswish: STRATA_DWP_OUT(Act::hardswish);
    case Act::hardsigmoid: STRATA_DWP_OUT(Act::hardsigmoid);
    default: __trap();
  }
#undef STRATA_DWP_OUT
#undef STRATA_DWP
}

/// A 1×1 convolution of a 1×1 map (a squeeze-excite gate's layers), 16-bit: `lanes` lanes per
/// output (image, channel slot) — a power of two up to 32, enough for one 16-byte vector of the
/// input slots each where there are at most 32 vectors (a whole warp per output of a 16-slot gate
/// idled 30 lanes) — 8 slots at a time (16-byte loads of the input and of the filter row), a shuffle
/// reduction within the lanes. y = act(w·in_act(x) + bias), in_act's result rounded to T as the
/// unfused path would store it; slots at or past `k` are written as 0. A warp's outputs are
/// consecutive and it runs its loop whole (the shuffles need every lane).
template <class T>
__global__ void pixel_conv1x1_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                     const float* __restrict__ bias, T* __restrict__ y, int n,
                                     int cp, int k, int kp, ActDesc in_act, ActDesc act, int lanes) {
  pdl_entry();
  const int lane = threadIdx.x & 31;
  const int sub = lane & (lanes - 1);  // this lane's place among its output's lanes
  const int per_warp = 32 / lanes;
  const long long total = static_cast<long long>(n) * kp;
  const long long step = static_cast<long long>(gridDim.x) * (blockDim.x / 32) * per_warp;
  for (long long first = (blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x) / 32 * per_warp;
       first < total; first += step) {
    const long long o = first + lane / lanes;
    const bool live = o < total;
    const int ch = live ? static_cast<int>(o % kp) : 0;
    const long long img = live ? o / kp : 0;
    float acc = 0.0f;
    if (live && ch < k) {
      for (int i = sub * 8; i < cp; i += lanes * 8) {
        float xv[8];
        float wv[8];
        load8(x + img * cp + i, xv);
        load8(w + static_cast<long long>(ch) * cp + i, wv);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          float v = xv[j];
          if (in_act.kind != Act::none) {  // as the unfused path stores it
            v = as_stored<T>(activate(in_act, v));
          }
          acc += v * wv[j];
        }
      }
    }
    for (int d = lanes / 2; d > 0; d >>= 1) {
      acc += __shfl_xor_sync(0xffffffffu, acc, d);
    }
    if (live && sub == 0) {
      store(y + o, ch < k ? activate(act, acc + (bias != nullptr ? bias[ch] : 0.0f)) : 0.0f);
    }
  }
}

/// A squeeze-excite gate's fc1 output o, by a warp (every lane calls it): its lanes 8 input
/// slots each of the pooled vector (shared memory, 16-byte reads) against row o of w1 (k1p, cp),
/// summed across the warp; lane 0 writes it to squeezed[o] as fc2 reads it — act1, rounded to T,
/// in_act2 applied and rounded again; slots at or past k1 as 0.
template <class T>
__device__ __forceinline__ void se_fc1_output(const T* __restrict__ w1, const float* __restrict__ b1,
                                              const float* pooled, float* squeezed, int o, int k1,
                                              int cp, int lane, ActDesc act1, ActDesc in_act2) {
  float acc = 0.0f;
  if (o < k1) {
    for (int i = lane * 8; i < cp; i += 256) {
      float wv[8];
      float pv[8];
      load8(w1 + static_cast<long long>(o) * cp + i, wv);
      smem8(pooled + i, pv);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        acc += pv[j] * wv[j];
      }
    }
  }
#pragma unroll
  for (int d = 16; d > 0; d >>= 1) {
    acc += __shfl_xor_sync(0xffffffffu, acc, d);
  }
  if (lane == 0) {
    float v = o < k1 ? as_stored<T>(activate(act1, acc + (b1 != nullptr ? b1[o] : 0.0f))) : 0.0f;
    if (in_act2.kind != Act::none) {  // as fc2 reads what fc1 stored
      v = as_stored<T>(activate(in_act2, v));
    }
    squeezed[o] = v;
  }
}

/// A squeeze-excite gate's output slot o, by one thread: row o of w2 (chunk-major, (k1p / 8, k2p,
/// 8)) against the squeezed vector, in order, + b2, act2; 0 at or past k2.
template <class T>
__device__ __forceinline__ float se_fc2_output(const T* __restrict__ w2, const float* __restrict__ b2,
                                               const float* squeezed, int o, int k1p, int k2, int k2p,
                                               ActDesc act2) {
  float acc = 0.0f;
  if (o < k2) {
    for (int i = 0; i < k1p; i += 8) {
      float wv[8];
      load8(w2 + (static_cast<long long>(i / 8) * k2p + o) * 8, wv);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        acc += squeezed[i + j] * wv[j];
      }
    }
    acc = activate(act2, acc + (b2 != nullptr ? b2[o] : 0.0f));
  }
  return acc;
}

/// A squeeze-excite gate as one kernel, 16-bit NHWC (tactics/squeeze_excite.hpp): the global
/// average pool of each image's map x (n, hw, cp), then fc1 = act1(w1 (k1p, cp) · pooled + b1),
/// then y = act2(w2 · in_act2(fc1) + b2) (n, k2p), w2 (k2p, k1p) given chunk-major — (k1p / 8,
/// k2p, 8): chunk v of row o at (v · k2p + o) · 8, so that a warp's threads, an output row each,
/// read 16 consecutive bytes each — each intermediate rounded to T as the unfused path stores
/// it, slots at or past k1 / k2 as 0. `splits` blocks an image (blocks
/// b·splits .. b·splits + splits − 1 take image b, a share of its pixels each, 8 channels a
/// thread, and write their sums to `partial` (n · splits · cp floats); the last of them to
/// finish — `counters` (n, zeroed, left zeroed) says which — adds them in a fixed order and runs
/// the two convs); with splits = 1, `row_blocks` blocks an image (blocks b·row_blocks ..
/// b·row_blocks + row_blocks − 1 take image b, in turn where the grid is smaller), each pooling
/// the whole map and running all of fc1, then its share of fc2's output slots (ceil(k2p /
/// row_blocks) of them; every block's sums alike). FORM 1 computes the same sums in the same
/// order for the same `splits`, its loads issued together: fc1 four rows a warp at once, fc2 two
/// rows a thread and 64 of a row's inputs at once. Both forms add the partial sums 8 (FORM 1:
/// 16) splits at once (loads in flight together, added in split order) and read the pooled
/// vector 16 bytes a lane.
/// (Registers: FORM 0 five blocks an SM's, 48 as measured before its partial sums were loaded 8
/// at once; FORM 1, 16 loads a lane in flight, 118.)
template <class T, int FORM>
__global__ void __launch_bounds__(256, FORM == 0 ? 5 : 1) squeeze_excite_kernel(
    const T* __restrict__ x, const T* __restrict__ w1, const float* __restrict__ b1,
    const T* __restrict__ w2, const float* __restrict__ b2, T* __restrict__ y, int n, int cp,
    int hw, int k1, int k1p, int k2, int k2p, ActDesc act1, ActDesc in_act2, ActDesc act2,
    int splits, int row_blocks, float* __restrict__ partial, unsigned* __restrict__ counters) {
  pdl_entry();
  __shared__ float red[8][256];
  __shared__ __align__(16) float pooled[4096];
  __shared__ __align__(16) float squeezed[1024];
  __shared__ bool last;
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int span = (hw + splits - 1) / splits;
  const int rb = splits > 1 ? 1 : row_blocks;     // blocks an image that share fc2's outputs
  const int rows = (k2p + rb - 1) / rb;           // fc2's output slots a block
  const long long blocks = static_cast<long long>(n) * (splits > 1 ? splits : rb);
  for (long long b = blockIdx.x; b < blocks; b += gridDim.x) {
    const long long img = splits > 1 ? b / splits : b / rb;
    const int sp = splits > 1 ? static_cast<int>(b % splits) : 0;
    const int r0 = splits > 1 ? 0 : static_cast<int>(b % rb) * rows;  // this block's fc2 slots
    const int r1 = min(k2p, r0 + rows);
    const int p0 = sp * span;
    const int p1 = min(hw, p0 + span);
    // The pool: this block's pixels, every channel group, summed over the pixel lanes.
    pool_share(x + img * hw * cp, cp, p0, p1, red, [&](int c, float sum) {
      if (splits > 1) {
        partial[(img * splits + sp) * cp + c] = sum;
      } else {  // the mean as the pool would store it
        pooled[c] = as_stored<T>(sum / static_cast<float>(hw));
      }
    });
    if (splits > 1) {  // the last block of the image adds the partial sums up
      __threadfence();
      __syncthreads();
      if (tid == 0) {
        last = atomicAdd(counters + img, 1u) == static_cast<unsigned>(splits - 1);
      }
      __syncthreads();
      if (!last) {
        continue;
      }
      __threadfence();
      // (from L2, bypassing L1; the splits of a channel over `per` threads where the channels
      // leave threads idle, then added in a fixed order)
      const float* pb = partial + img * splits * cp;
      const int per = cp >= 256 ? 1 : 256 / cp;
      // Splits j = first, first + step, ... of channel c added in that order, AT loads in flight.
      constexpr int AT = FORM == 0 ? 8 : 16;
      const auto add_splits = [&](int c, int first, int step) {
        float sum = 0.0f;
        for (int j0 = first; j0 < splits; j0 += AT * step) {
          float v[AT];
#pragma unroll
          for (int q = 0; q < AT; ++q) {
            const int j = j0 + q * step;
            v[q] = j < splits ? __ldcg(pb + static_cast<long long>(j) * cp + c) : 0.0f;
          }
#pragma unroll
          for (int q = 0; q < AT; ++q) {
            if (j0 + q * step < splits) {
              sum += v[q];
            }
          }
        }
        return sum;
      };
      if (per == 1) {
        for (int c = tid; c < cp; c += 256) {
          pooled[c] = as_stored<T>(add_splits(c, 0, 1) / static_cast<float>(hw));
        }
      } else {
        float* flat = &red[0][0];
        const int c = tid % cp;
        const int part = tid / cp;
        if (part < per) {
          flat[part * cp + c] = add_splits(c, part, per);
        }
        __syncthreads();
        if (tid < cp) {
          float sum = 0.0f;
          for (int q = 0; q < per; ++q) {
            sum += flat[q * cp + tid];
          }
          pooled[tid] = as_stored<T>(sum / static_cast<float>(hw));
        }
      }
      if (tid == 0) {
        counters[img] = 0u;  // ready for the next launch
      }
    }
    __syncthreads();
    if constexpr (FORM == 0) {
      // fc1: a warp an output at a time, its lanes 8 input slots each.
      for (int o = warp; o < k1p; o += 8) {
        se_fc1_output<T>(w1, b1, pooled, squeezed, o, k1, cp, lane, act1, in_act2);
      }
      __syncthreads();
      // fc2: a thread an output slot.
      for (int o = r0 + tid; o < r1; o += 256) {
        store(y + img * k2p + o, se_fc2_output<T>(w2, b2, squeezed, o, k1p, k2, k2p, act2));
      }
    } else {
      // fc1: a warp four outputs at once, every lane's loads of them (4 a row) issued together.
      for (int o0 = warp * 4; o0 < k1p; o0 += 32) {
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int i0 = lane * 8; i0 < cp; i0 += 1024) {
          uint4 raw[4][4];
#pragma unroll
          for (int r = 0; r < 4; ++r) {
#pragma unroll
            for (int u = 0; u < 4; ++u) {
              const int i = i0 + u * 256;
              raw[r][u] = o0 + r < k1 && i < cp
                              ? __ldg(reinterpret_cast<const uint4*>(w1 + static_cast<long long>(o0 + r) * cp + i))
                              : uint4{0u, 0u, 0u, 0u};
            }
          }
#pragma unroll
          for (int r = 0; r < 4; ++r) {
#pragma unroll
            for (int u = 0; u < 4; ++u) {
              const int i = i0 + u * 256;
              if (o0 + r < k1 && i < cp) {
                add_dot8<T>(raw[r][u], pooled + i, acc[r]);
              }
            }
          }
        }
#pragma unroll
        for (int r = 0; r < 4; ++r) {
#pragma unroll
          for (int d = 16; d > 0; d >>= 1) {
            acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], d);
          }
        }
        if (lane == 0) {
#pragma unroll
          for (int r = 0; r < 4; ++r) {
            const int o = o0 + r;
            if (o < k1p) {
              float v = o < k1 ? as_stored<T>(activate(act1, acc[r] + (b1 != nullptr ? b1[o] : 0.0f))) : 0.0f;
              if (in_act2.kind != Act::none) {
                v = as_stored<T>(activate(in_act2, v));
              }
              squeezed[o] = v;
            }
          }
        }
      }
      __syncthreads();
      // fc2: a thread two output slots (256 apart), 64 inputs of each row loaded at once.
      for (int o0 = r0 + tid; o0 < r1; o0 += 512) {
        float acc[2] = {0.0f, 0.0f};
        for (int k0 = 0; k0 < k1p; k0 += 64) {
          uint4 raw[2][8];
#pragma unroll
          for (int r = 0; r < 2; ++r) {
#pragma unroll
            for (int v = 0; v < 8; ++v) {
              const int o = o0 + 256 * r;
              const int i = k0 + 8 * v;
              raw[r][v] = o < k2 && o < r1 && i < k1p
                              ? __ldg(reinterpret_cast<const uint4*>(w2 + (static_cast<long long>(i / 8) * k2p + o) * 8))
                              : uint4{0u, 0u, 0u, 0u};
            }
          }
#pragma unroll
          for (int r = 0; r < 2; ++r) {
#pragma unroll
            for (int v = 0; v < 8; ++v) {
              const int o = o0 + 256 * r;
              const int i = k0 + 8 * v;
              if (o < k2 && o < r1 && i < k1p) {
                add_dot8<T>(raw[r][v], squeezed + i, acc[r]);
              }
            }
          }
        }
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int o = o0 + 256 * r;
          if (o < r1) {
            store(y + img * k2p + o,
                  o < k2 ? activate(act2, acc[r] + (b2 != nullptr ? b2[o] : 0.0f)) : 0.0f);
          }
        }
      }
    }
    __syncthreads();  // pooled and squeezed are free for the next image
  }
}

/// squeeze_excite_kernel's work for one image a thread-block cluster of CL blocks (8, or 16 where
/// the GPU allows it; compute capability 9.0 on; grid n · CL): block r pools pixels [r·span,
/// r·span + span) of the image (span = ceil(hw / CL)) into its shared memory, a cluster barrier,
/// then every block adds the CL blocks' sums of each channel in rank order (distributed shared
/// memory) — the pooled vector whole in each — and computes its share of fc1's outputs
/// (ceil(k1p / CL), a warp an output as FORM 0), a barrier, gathers the others' shares, a
/// barrier (no block reads another's shared memory after it), and writes its share of fc2's
/// output slots (ceil(k2p / CL), a thread each as FORM 0, w2 chunk-major). No partial sums in
/// memory, no counters. Each block's sums of its pixels are those of squeeze_excite_kernel with
/// CL splits (added in rank order here; there, below 256 channel slots, in groups); fc1 and fc2
/// add as FORM 0 does.
template <class T, int CL>
__global__ void STRATA_CLUSTER_DIMS(CL) __launch_bounds__(256, 1) squeeze_excite_cluster_kernel(
    const T* __restrict__ x, const T* __restrict__ w1, const float* __restrict__ b1,
    const T* __restrict__ w2, const float* __restrict__ b2, T* __restrict__ y, int n, int cp,
    int hw, int k1, int k1p, int k2, int k2p, ActDesc act1, ActDesc in_act2, ActDesc act2) {
  pdl_launch();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  __shared__ float red[8][256];
  __shared__ __align__(16) float mine[4096];      // this block's sums of its pixels
  __shared__ __align__(16) float pooled[4096];
  __shared__ __align__(16) float squeezed[1024];
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int r = static_cast<int>(blockIdx.x % CL);  // the rank in the cluster (clusters along x)
  const long long img = blockIdx.x / CL;             // (the grid is n · CL: every block an image)
  // This block's share of fc1's outputs [f0, f1) and of fc2's output slots [s0, s1).
  const int per1 = (k1p + CL - 1) / CL;
  const int f0 = min(k1p, r * per1);
  const int f1 = min(k1p, f0 + per1);
  const int per2 = (k2p + CL - 1) / CL;
  const int s0 = min(k2p, r * per2);
  const int s1 = min(k2p, s0 + per2);
  // Their weights (fc1's rows, fc2's slots of each 8-input chunk) asked into L1 before the wait
  // — weights no kernel writes: under a programmatic dependent launch while the kernel before
  // this one finishes — so that the two products after the pooling find them there.
  prefetch_l1(w1 + static_cast<long long>(f0) * cp, static_cast<long long>(max(0, min(f1, k1) - f0)) * cp * sizeof(T));
  for (int v = 0; v < k1p / 8; ++v) {
    prefetch_l1(w2 + (static_cast<long long>(v) * k2p + s0) * 8, static_cast<long long>(max(0, min(s1, k2) - s0)) * 8 * sizeof(T));
  }
  pdl_wait();
  const int span = (hw + CL - 1) / CL;
  const int p0 = min(hw, r * span);
  const int p1 = min(hw, p0 + span);
  pool_share(x + img * hw * cp, cp, p0, p1, red, [&](int c, float sum) { mine[c] = sum; });
  cluster_barrier();  // every block's sums written
  for (int c = tid; c < cp; c += 256) {
    float v[CL];
#pragma unroll
    for (int q = 0; q < CL; ++q) {
      v[q] = cluster_load(&mine[c], static_cast<unsigned>(q));
    }
    float sum = 0.0f;
#pragma unroll
    for (int q = 0; q < CL; ++q) {
      sum += v[q];
    }
    pooled[c] = as_stored<T>(sum / static_cast<float>(hw));
  }
  __syncthreads();
  // fc1: this block's outputs [f0, f1), a warp an output at a time, its lanes 8 input slots each.
  for (int o = f0 + warp; o < f1; o += 8) {
    se_fc1_output<T>(w1, b1, pooled, squeezed, o, k1, cp, lane, act1, in_act2);
  }
  cluster_barrier();  // every block's share of fc1 written
  for (int o = tid; o < k1p; o += 256) {
    const int owner = o / per1;
    if (owner != r) {
      squeezed[o] = cluster_load(&squeezed[o], static_cast<unsigned>(owner));
    }
  }
  cluster_reads_done();  // no block reads another's shared memory after this
  // fc2: this block's output slots [s0, s1), a thread each.
  for (int o = s0 + tid; o < s1; o += 256) {
    store(y + img * k2p + o, se_fc2_output<T>(w2, b2, squeezed, o, k1p, k2, k2p, act2));
  }
#endif
}

}  // namespace strata_rtc
)strata_rtc";

/// The generic kernels' whole source.
[[nodiscard]] inline std::string kernel_source() {
  return std::string(kernel_prelude) + std::string(kernel_bodies) +
         std::string(kernel_bodies_layers);
}

}  // namespace strata::cuda::kernels
