#pragma once
/// Declarations of Strata's CUDA kernels' host-side launchers (host-compilable). The kernels
/// themselves live in kernels.cuh and are compiled once, by nvcc, in kernels.cu: a program
/// using strata::cuda adds that one source file (nvcc cannot emit host code that names types
/// with class-type template arguments, such as a network's Pipeline<...> type, so everything
/// that names a network is host C++ and only these launchers, which name element types only,
/// go through nvcc).
///
/// Element types T: float, __half, __nv_bfloat16. Layouts: NCHW (f32) or NHWC with `cp`
/// channel slots per pixel (16-bit: C rounded up to 8).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "strata/layers/layer.hpp"

namespace strata::cuda::kernels {

/// Where channel `c` of pixel `p` of image `n` lives: n·image + p·pixel + c·channel (elements).
struct Strides {
  std::int64_t image = 0;
  std::int64_t pixel = 0;
  std::int64_t channel = 0;
};

[[nodiscard]] inline Strides nchw_strides(int c, int hw) {
  return {static_cast<std::int64_t>(c) * hw, 1, hw};
}
[[nodiscard]] inline Strides nhwc_strides(int cp, int hw) {
  return {static_cast<std::int64_t>(cp) * hw, cp, 1};
}

/// Window parameters of a pool (c = channel slots).
struct PoolShape {
  int n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw;
  bool is_max;
  bool count_include_pad;
};

/// A convolution in NHWC storage for the direct kernel: `cg` input channels per group as stored
/// (group g reads channels g·cg ..), `kd` filter rows (K, kh, kw, cg), `kp` output channel slots
/// (slots >= k are written as 0).
struct ConvShape {
  int n, cp, h, w, k, kd, kp, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups, cg;
  int creal;  ///< input channels per group that hold data (≤ cg; the rest are zero padding)
};

/// Direct convolution, NHWC, f32 accumulation, with the epilogue fused:
/// y = act(conv(x, w) + bias[k] + z). The fallback for convolutions cuDNN has no algorithm
/// for (16-bit grouped convolutions whose channels are not a multiple of 8).
template <class T>
void conv_direct(const T* x, const T* w, const float* bias, const T* z, T* y, ConvShape shape,
                 ActDesc act, cudaStream_t stream);

/// f32 NCHW (n, c, h, w) → 16-bit NHWC space-to-depth blocks (n, sh, sw, scp): channel
/// (ci·2 + dy)·2 + dx of block (Y, X) is input pixel (2Y + dy − pad_h, 2X + dx − pad_w) of
/// channel ci (0 outside the input; slots >= 4c are 0).
template <class T>
void space_to_depth(const float* src, T* dst, int n, int c, int h, int w, int sh, int sw, int scp,
                    int pad_h, int pad_w, cudaStream_t stream);

/// NHWC (n, h, w, cp) → (n, oh, ow, cp) taking pixel (oy·sh, ox·sw): the input of a strided 1×1
/// convolution run as a GEMM. cp must be a multiple of 8 (16-byte copies).
template <class T>
void subsample(const T* src, T* dst, int n, int h, int w, int cp, int oh, int ow, int sh, int sw,
               cudaStream_t stream);

/// Copies/converts (N, C, HW) from src (strides ss) to dst (strides ds, dcp channel slots per
/// pixel; slots >= c are written as 0).
template <class S, class D>
void convert(const S* src, Strides ss, D* dst, Strides ds, int n, int c, int dcp, int hw,
             bool dst_nhwc, cudaStream_t stream);

/// y = act(x·scale[ch] + shift[ch] + z) over `total` elements of a dense (N, ·) tensor; scale,
/// shift (f32, per channel slot) and z may be null; channel slots >= c_real are written as 0.
/// x and y may alias.
template <class T>
void pointwise(const T* x, const T* z, T* y, const float* scale, const float* shift, ActDesc act,
               std::int64_t total, int cp, int hw, int c_real, bool nhwc, cudaStream_t stream);

/// Max or average pooling with PyTorch's window rules (padding, ceil_mode, count_include_pad).
template <class T>
void pool(const T* x, T* y, PoolShape shape, bool nhwc, cudaStream_t stream);

/// Mean over H·W for each of n × c channel slots (f32 accumulation).
template <class T>
void global_avg_pool(const T* x, T* y, int n, int c, int hw, bool nhwc, cudaStream_t stream);

/// softmax / log_softmax over c channels for each of n·hw rows (f32, one warp per row);
/// output slots c..ocp-1 are written as 0.
template <class S, class D>
void softmax(const S* x, Strides xs, D* y, Strides ys, int n, int c, int ocp, int hw,
             bool log_softmax, cudaStream_t stream);

}  // namespace strata::cuda::kernels
