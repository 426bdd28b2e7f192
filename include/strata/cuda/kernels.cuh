#pragma once
/// Strata's own CUDA kernels and their launchers (declared in kernels.hpp; compiled once, in
/// kernels.cu). The kernels: layout/precision conversion, the pointwise epilogue (scale,
/// shift, residual, activation), max/avg pooling with PyTorch's window rules, global average
/// pooling and softmax/log_softmax (f32 arithmetic, one warp per row, shuffles).
/// Activations are stored as `T` (float, __half, __nv_bfloat16); every reduction and every
/// activation function is computed in f32.
/// Layouts: NCHW (f32) or NHWC with `cp` channels per pixel (16-bit: cp = C rounded up to 8;
/// the padded channels hold finite values, zeros where a kernel writes them).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "strata/cuda/check.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/layers/layer.hpp"

namespace strata::cuda::kernels {

/// Whether 32-bit indices cover `n` elements.
[[nodiscard]] inline bool fits32(std::int64_t n) { return n < (std::int64_t{1} << 31) - 65536; }

namespace device {

template <class T>
__device__ __forceinline__ float load(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return *p;
  } else if constexpr (std::is_same_v<T, __half>) {
    return __half2float(*p);
  } else {
    return __bfloat162float(*p);
  }
}

template <class T>
__device__ __forceinline__ void store(T* p, float v) {
  if constexpr (std::is_same_v<T, float>) {
    *p = v;
  } else if constexpr (std::is_same_v<T, __half>) {
    *p = __float2half_rn(v);
  } else {
    *p = __float2bfloat16_rn(v);
  }
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
  }
  return x;
}

/// Grid size for `n` elements at 256 threads per block (grid-stride loops cover the rest).
[[nodiscard]] inline unsigned blocks_for(std::int64_t n, int threads = 256) {
  const std::int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 1048576 ? 1048576 : b));
}

/// 8 consecutive 16-bit (or f32) values as f32, through one 16-byte access for 16-bit types
/// (the pointer must then be 16-byte aligned).
template <class T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
  if constexpr (std::is_same_v<T, float>) {
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

template <class T>
__device__ __forceinline__ void store8(T* p, const float (&v)[8]) {
  if constexpr (std::is_same_v<T, float>) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      p[j] = v[j];
    }
  } else {
    uint4 raw;
    T* h = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      store(h + j, v[j]);
    }
    *reinterpret_cast<uint4*>(p) = raw;
  }
}

/// Copies/converts a (N, C, HW) tensor from `src` (element type S, strides `ss`) to `dst`
/// (type D, strides `ds`, `dcp` channel slots per pixel: slots ≥ c are written as 0).
/// One thread per destination element, destination order (coalesced writes). I: index type
/// (32-bit when the tensor allows: 64-bit division is slow).
template <class S, class D, class I>
__global__ void convert_kernel(const S* __restrict__ src, Strides ss, D* __restrict__ dst, Strides ds,
                               int n, int c, int dcp, int hw, bool dst_nhwc) {
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
                        ? load(src + img * ss.image + p * ss.pixel + ch * ss.channel)
                        : 0.0f;
    store(dst + img * ds.image + p * ds.pixel + ch * ds.channel, v);
  }
}

/// f32 NCHW → 16-bit NHWC with cp (multiple of 8) slots: one thread per pixel, reads coalesced
/// across pixels, writes cp/8 16-byte vectors.
template <class D, class I>
__global__ void nchw_to_nhwc8_kernel(const float* __restrict__ src, D* __restrict__ dst, int n,
                                     int c, int cp, int hw) {
  const I pixels = static_cast<I>(n) * hw;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < pixels;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const I img = i / hw;
    const I p = i - img * hw;
    const float* s = src + img * c * hw + p;
    D* d = dst + i * cp;
    for (int g = 0; g < cp; g += 8) {
      float v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        v[j] = g + j < c ? s[static_cast<I>(g + j) * hw] : 0.0f;
      }
      store8(d + g, v);
    }
  }
}

/// y = act(x·scale[c] + shift[c] + z), elementwise over a dense (N, ·) tensor of `total`
/// elements; scale, shift (f32, per channel slot) and z may be null. Channel of element i:
/// NHWC: i mod cp; NCHW: (i / hw) mod cp. Channel slots ≥ c_real are written as 0.
/// x and y may alias (in-place epilogue).
template <class T, class I>
__global__ void pointwise_kernel(const T* x, const T* z, T* y, const float* __restrict__ scale,
                                 const float* __restrict__ shift, ActDesc act, I total, int cp,
                                 int hw, int c_real, bool nhwc) {
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int ch = static_cast<int>(nhwc ? i % cp : (i / hw) % cp);
    float v = load(x + i);
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

/// The NHWC form of pointwise_kernel with cp a multiple of 8: 8 channels per thread, 16-byte
/// accesses.
template <class T, class I>
__global__ void pointwise8_kernel(const T* x, const T* z, T* y, const float* __restrict__ scale,
                                  const float* __restrict__ shift, ActDesc act, I vectors, int cp,
                                  int c_real) {
  for (I vi = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; vi < vectors;
       vi += static_cast<I>(gridDim.x) * blockDim.x) {
    const I i = vi * 8;
    const int ch0 = static_cast<int>(i % cp);
    float v[8];
    load8(x + i, v);
    float zv[8];
    if (z != nullptr) {
      load8(z + i, zv);
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float t = v[j];
      if (scale != nullptr) {
        t *= scale[ch0 + j];
      }
      if (shift != nullptr) {
        t += shift[ch0 + j];
      }
      if (z != nullptr) {
        t += zv[j];
      }
      v[j] = ch0 + j < c_real ? activate(act, t) : 0.0f;
    }
    store8(y + i, v);
  }
}

/// Max or average pooling with PyTorch's rules (see cpu::pool): the window is clipped to the
/// padded input for the divisor with count_include_pad, else to the input. One thread per
/// output element; `c` is the number of channel slots (cp in NHWC).
template <class T, class I>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, PoolShape s, bool nhwc) {
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
    int y0 = oy * s.sh - s.ph;
    int x0 = ox * s.sw - s.pw;
    int y1 = min(y0 + s.kh, s.h + s.ph);
    int x1 = min(x0 + s.kw, s.w + s.pw);
    const int padded_count = (y1 - y0) * (x1 - x0);
    y0 = max(y0, 0);
    x0 = max(x0, 0);
    y1 = min(y1, s.h);
    x1 = min(x1, s.w);
    const I plane = static_cast<I>(s.h) * s.w;
    const T* base = nhwc ? x + img * plane * s.c + ch : x + (img * s.c + ch) * plane;
    const I step = nhwc ? s.c : 1;
    float acc = s.is_max ? -INFINITY : 0.0f;
    for (int yy = y0; yy < y1; ++yy) {
      for (int xx = x0; xx < x1; ++xx) {
        const float v = load(base + (static_cast<I>(yy) * s.w + xx) * step);
        acc = s.is_max ? fmaxf(acc, v) : acc + v;
      }
    }
    if (!s.is_max) {
      acc /= static_cast<float>(s.count_include_pad ? padded_count : (y1 - y0) * (x1 - x0));
    }
    store(y + i, acc);
  }
}

/// The NHWC form of pool_kernel with s.c a multiple of 8: 8 channels per thread, 16-byte loads.
template <class T, class I>
__global__ void pool8_kernel(const T* __restrict__ x, T* __restrict__ y, PoolShape s) {
  const int groups = s.c / 8;
  const I total = static_cast<I>(s.n) * groups * s.oh * s.ow;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int cg = static_cast<int>(i % groups);
    const I rest = i / groups;
    const int ox = static_cast<int>(rest % s.ow);
    const int oy = static_cast<int>((rest / s.ow) % s.oh);
    const I img = rest / (static_cast<I>(s.ow) * s.oh);
    int y0 = oy * s.sh - s.ph;
    int x0 = ox * s.sw - s.pw;
    int y1 = min(y0 + s.kh, s.h + s.ph);
    int x1 = min(x0 + s.kw, s.w + s.pw);
    const int padded_count = (y1 - y0) * (x1 - x0);
    y0 = max(y0, 0);
    x0 = max(x0, 0);
    y1 = min(y1, s.h);
    x1 = min(x1, s.w);
    const T* base = x + img * s.h * s.w * s.c + cg * 8;
    float acc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      acc[j] = s.is_max ? -INFINITY : 0.0f;
    }
    for (int yy = y0; yy < y1; ++yy) {
      for (int xx = x0; xx < x1; ++xx) {
        float v[8];
        load8(base + (static_cast<I>(yy) * s.w + xx) * s.c, v);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          acc[j] = s.is_max ? fmaxf(acc[j], v[j]) : acc[j] + v[j];
        }
      }
    }
    if (!s.is_max) {
      const float inv =
          1.0f / static_cast<float>(s.count_include_pad ? padded_count : (y1 - y0) * (x1 - x0));
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        acc[j] *= inv;
      }
    }
    store8(y + rest * s.c + cg * 8, acc);
  }
}

/// Mean over H·W per (image, channel slot), f32 accumulation. NCHW: one warp per output
/// (contiguous plane, shuffle reduction); NHWC: one thread per output (coalesced over channels).
template <class T>
__global__ void global_avg_pool_kernel(const T* __restrict__ x, T* __restrict__ y, int n, int c, int hw,
                                bool nhwc) {
  const std::int64_t outputs = static_cast<std::int64_t>(n) * c;
  if (nhwc) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         i < outputs; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
      const std::int64_t img = i / c;
      const int ch = static_cast<int>(i % c);
      const T* base = x + img * hw * c + ch;
      float acc = 0.0f;
      for (int p = 0; p < hw; ++p) {
        acc += load(base + static_cast<std::int64_t>(p) * c);
      }
      store(y + i, acc / static_cast<float>(hw));
    }
    return;
  }
  const int lane = threadIdx.x & 31;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  for (std::int64_t wi = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
       wi < outputs; wi += warps) {
    const T* base = x + wi * hw;
    float acc = 0.0f;
    for (int p = lane; p < hw; p += 32) {
      acc += load(base + p);
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
  const int lane = threadIdx.x & 31;
  const std::int64_t rows = static_cast<std::int64_t>(n) * hw;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * (blockDim.x / 32);
  for (std::int64_t r = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) / 32;
       r < rows; r += warps) {
    const std::int64_t img = r / hw;
    const std::int64_t p = r % hw;
    const S* xr = x + img * xs.image + p * xs.pixel;
    D* yr = y + img * ys.image + p * ys.pixel;
    float mx = -INFINITY;
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


/// One thread per output element (image, oy, ox, channel slot), channel fastest.
template <class T>
__global__ void conv_direct_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                   const float* __restrict__ bias, const T* z, T* y, ConvShape s,
                                   ActDesc act) {
  const std::int64_t total = static_cast<std::int64_t>(s.n) * s.oh * s.ow * s.kp;
  const int k_per_group = s.kd / s.groups;
  const bool vec = sizeof(T) == 2 && s.cg % 8 == 0 && s.creal == s.cg && s.cp % 8 == 0;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       i < total; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int k = static_cast<int>(i % s.kp);
    if (k >= s.k || k >= s.kd) {
      store(y + i, 0.0f);
      continue;
    }
    const int ox = static_cast<int>((i / s.kp) % s.ow);
    const int oy = static_cast<int>((i / (static_cast<std::int64_t>(s.kp) * s.ow)) % s.oh);
    const std::int64_t img = i / (static_cast<std::int64_t>(s.kp) * s.ow * s.oh);
    const int g = k / k_per_group;
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
        const T* xp = x + ((img * s.h + iy) * s.w + ix) * s.cp + static_cast<std::int64_t>(g) * s.cg;
        const T* wp = w + ((static_cast<std::int64_t>(k) * s.kh + ky) * s.kw + kx) * s.cg;
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
    if (z != nullptr) {
      acc += load(z + i);
    }
    store(y + i, activate(act, acc));
  }
}

/// One thread per output block (image, Y, X), scp/8 16-byte stores.
template <class T, class I>
__global__ void space_to_depth_kernel(const float* __restrict__ src, T* __restrict__ dst, int n,
                                      int c, int h, int w, int sh, int sw, int scp, int pad_h,
                                      int pad_w) {
  const I blocks = static_cast<I>(n) * sh * sw;
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < blocks;
       i += static_cast<I>(gridDim.x) * blockDim.x) {
    const int bx = static_cast<int>(i % sw);
    const int by = static_cast<int>((i / sw) % sh);
    const I img = i / (static_cast<I>(sw) * sh);
    const float* s = src + img * c * h * w;
    T* d = dst + i * scp;
    for (int g = 0; g < scp; g += 8) {
      float v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int ch = g + j;
        const int ci = ch / 4;
        const int y = 2 * by + (ch / 2) % 2 - pad_h;
        const int x = 2 * bx + ch % 2 - pad_w;
        v[j] = ci < c && y >= 0 && y < h && x >= 0 && x < w
                   ? s[(static_cast<I>(ci) * h + y) * w + x]
                   : 0.0f;
      }
      store8(d + g, v);
    }
  }
}

template <class T, class I>
__global__ void subsample_kernel(const T* __restrict__ src, T* __restrict__ dst, int n, int h,
                                 int w, int cp, int oh, int ow, int sh, int sw) {
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

}  // namespace device

template <class T>
void subsample(const T* src, T* dst, int n, int h, int w, int cp, int oh, int ow, int sh, int sw,
               cudaStream_t stream) {
  const std::int64_t total = static_cast<std::int64_t>(n) * oh * ow * (cp / 8);
  if (fits32(static_cast<std::int64_t>(n) * h * w * cp)) {
    device::subsample_kernel<T, int><<<device::blocks_for(total), 256, 0, stream>>>(src, dst, n, h, w, cp, oh, ow, sh, sw);
  } else {
    device::subsample_kernel<T, std::int64_t><<<device::blocks_for(total), 256, 0, stream>>>(src, dst, n, h, w, cp, oh, ow, sh, sw);
  }
  STRATA_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void space_to_depth(const float* src, T* dst, int n, int c, int h, int w, int sh, int sw, int scp,
                    int pad_h, int pad_w, cudaStream_t stream) {
  const std::int64_t blocks = static_cast<std::int64_t>(n) * sh * sw;
  if (fits32(blocks * scp) && fits32(static_cast<std::int64_t>(n) * c * h * w)) {
    device::space_to_depth_kernel<T, int><<<device::blocks_for(blocks), 256, 0, stream>>>(src, dst, n, c, h, w, sh, sw, scp, pad_h, pad_w);
  } else {
    device::space_to_depth_kernel<T, std::int64_t><<<device::blocks_for(blocks), 256, 0, stream>>>(src, dst, n, c, h, w, sh, sw, scp, pad_h, pad_w);
  }
  STRATA_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void conv_direct(const T* x, const T* w, const float* bias, const T* z, T* y, ConvShape s,
                 ActDesc act, cudaStream_t stream) {
  const std::int64_t work = static_cast<std::int64_t>(s.n) * s.oh * s.ow * s.kp;
  device::conv_direct_kernel<T><<<device::blocks_for(work), 256, 0, stream>>>(x, w, bias, z, y, s, act);
  STRATA_CUDA_CHECK(cudaGetLastError());
}


template <class S, class D>
void convert(const S* src, Strides ss, D* dst, Strides ds, int n, int c, int dcp, int hw,
             bool dst_nhwc, cudaStream_t stream) {
  const std::int64_t work = static_cast<std::int64_t>(n) * dcp * hw;
  if constexpr (std::is_same_v<S, float> && !std::is_same_v<D, float>) {
    // The common input case: dense f32 NCHW to 16-bit NHWC.
    if (dst_nhwc && dcp % 8 == 0 && ss.pixel == 1 && ss.channel == hw &&
        ss.image == static_cast<std::int64_t>(c) * hw && ds.channel == 1 && ds.pixel == dcp) {
      const std::int64_t pixels = static_cast<std::int64_t>(n) * hw;
      if (fits32(work)) {
        device::nchw_to_nhwc8_kernel<D, int><<<device::blocks_for(pixels), 256, 0, stream>>>(src, dst, n, c, dcp, hw);
      } else {
        device::nchw_to_nhwc8_kernel<D, std::int64_t><<<device::blocks_for(pixels), 256, 0, stream>>>(src, dst, n, c, dcp, hw);
      }
      STRATA_CUDA_CHECK(cudaGetLastError());
      return;
    }
  }
  if constexpr (std::is_same_v<S, D>) {
    // Same type, same dense layout: a copy.
    if (dcp == c && ss.image == ds.image && ss.pixel == ds.pixel && ss.channel == ds.channel &&
        ss.image == static_cast<std::int64_t>(c) * hw) {
      STRATA_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(work) * sizeof(S),
                                        cudaMemcpyDeviceToDevice, stream));
      return;
    }
  }
  if (fits32(work)) {
    device::convert_kernel<S, D, int><<<device::blocks_for(work), 256, 0, stream>>>(src, ss, dst, ds, n, c, dcp, hw, dst_nhwc);
  } else {
    device::convert_kernel<S, D, std::int64_t><<<device::blocks_for(work), 256, 0, stream>>>(src, ss, dst, ds, n, c, dcp, hw, dst_nhwc);
  }
  STRATA_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void pointwise(const T* x, const T* z, T* y, const float* scale, const float* shift, ActDesc act,
               std::int64_t total, int cp, int hw, int c_real, bool nhwc, cudaStream_t stream) {
  if (nhwc && cp % 8 == 0 && !std::is_same_v<T, float>) {
    const std::int64_t vectors = total / 8;
    if (fits32(total)) {
      device::pointwise8_kernel<T, int><<<device::blocks_for(vectors), 256, 0, stream>>>(x, z, y, scale, shift, act, static_cast<int>(vectors), cp, c_real);
    } else {
      device::pointwise8_kernel<T, std::int64_t><<<device::blocks_for(vectors), 256, 0, stream>>>(x, z, y, scale, shift, act, vectors, cp, c_real);
    }
  } else if (fits32(total)) {
    device::pointwise_kernel<T, int><<<device::blocks_for(total), 256, 0, stream>>>(x, z, y, scale, shift, act, static_cast<int>(total), cp, hw, c_real, nhwc);
  } else {
    device::pointwise_kernel<T, std::int64_t><<<device::blocks_for(total), 256, 0, stream>>>(x, z, y, scale, shift, act, total, cp, hw, c_real, nhwc);
  }
  STRATA_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void pool(const T* x, T* y, PoolShape s, bool nhwc, cudaStream_t stream) {
  const std::int64_t work = static_cast<std::int64_t>(s.n) * s.c * s.oh * s.ow;
  const std::int64_t in_elems = static_cast<std::int64_t>(s.n) * s.c * s.h * s.w;
  const bool small = fits32(std::max(work, in_elems));
  if (nhwc && s.c % 8 == 0 && !std::is_same_v<T, float>) {
    if (small) {
      device::pool8_kernel<T, int><<<device::blocks_for(work / 8), 256, 0, stream>>>(x, y, s);
    } else {
      device::pool8_kernel<T, std::int64_t><<<device::blocks_for(work / 8), 256, 0, stream>>>(x, y, s);
    }
  } else if (small) {
    device::pool_kernel<T, int><<<device::blocks_for(work), 256, 0, stream>>>(x, y, s, nhwc);
  } else {
    device::pool_kernel<T, std::int64_t><<<device::blocks_for(work), 256, 0, stream>>>(x, y, s, nhwc);
  }
  STRATA_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void global_avg_pool(const T* x, T* y, int n, int c, int hw, bool nhwc, cudaStream_t stream) {
  const std::int64_t outputs = static_cast<std::int64_t>(n) * c;
  device::global_avg_pool_kernel<T><<<device::blocks_for(nhwc ? outputs : outputs * 32), 256, 0, stream>>>(x, y, n, c, hw, nhwc);
  STRATA_CUDA_CHECK(cudaGetLastError());
}

template <class S, class D>
void softmax(const S* x, Strides xs, D* y, Strides ys, int n, int c, int ocp, int hw,
             bool log_softmax, cudaStream_t stream) {
  const std::int64_t rows = static_cast<std::int64_t>(n) * hw;
  device::softmax_kernel<S, D><<<device::blocks_for(rows * 32), 256, 0, stream>>>(x, xs, y, ys, n, c, ocp, hw, log_softmax);
  STRATA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace strata::cuda::kernels
