#pragma once
/// Tactic `mma_conv`: a 16-bit NHWC convolution (one group, channel slots in multiples of 8, no
/// residual) as an implicit GEMM on tensor cores (mma.sync m16n8k16, f32 accumulation) in a
/// kernel generated for this one op — every shape a literal — with bias, activation and a fused
/// max/avg pool in its epilogue, so the unpooled map is never stored. Persistent blocks of 8
/// warps: the filter is staged in shared memory once per block, then each image in turn; a warp
/// computes 16 rows (output pixels; with a pool, L rows per pooled pixel, one per window
/// position, L ≤ 8 so shuffles 4·2^i lanes apart reduce them) by up to 64 output channels,
/// reusing each A fragment across 8 B fragments. The reduction runs over taps × channel slots in
/// steps of 16 (two taps per step when the slots are 8, as for a first layer's 1–8 channels).
/// Fragments are loaded with ldmatrix: for A each lane gives the address of one im2col row (a
/// pixel's 8 slots of one tap; a zero pixel for padding), for B of one filter row, two n-tiles
/// per instruction; pixels and filter rows are padded to an odd number of 16-byte chunks so that
/// the 8 rows of a matrix fall in different bank groups. (The first version read every fragment
/// register with its own 32-bit shared-memory load — 2.5 loads per mma, bank-conflicted — and
/// was bound by the shared-memory pipe: 424 µs for MNIST's conv4+pool at batch 4096 on an H200,
/// against cuDNN + pool's 122 µs.)
///
/// Offered to measured tuning only (heuristic rank: fallback) until it wins a timing on a GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/rtc/compiler.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"

namespace strata::cuda::tactics {

namespace mma {

/// Rows of the GEMM per output pixel: 1, or the pool window's positions rounded up to a power
/// of 2 (0 when over 8: not this kernel).
[[nodiscard]] inline int rows_per_pixel(const OpDesc& op) {
  const int l = pool_window_lanes(op);
  return l <= 8 ? l : 0;
}

/// Shared-memory row strides (16-bit elements): a pixel's channel slots and a filter row's
/// k-steps of 16, each padded to an odd number of 16-byte chunks so that the 8 rows an ldmatrix
/// reads fall in 8 different bank groups.
using generated::odd_chunks;
[[nodiscard]] inline int ksteps(const OpDesc& op) {
  return (op.conv.kh * op.conv.kw * op.conv.cp + 15) / 16;
}
[[nodiscard]] inline int pixel_stride(const OpDesc& op) { return odd_chunks(op.conv.cp); }
[[nodiscard]] inline int filter_stride(const OpDesc& op) { return odd_chunks(16 * ksteps(op)); }

/// Shared memory per block: one image's input, a zero pixel (read for padding) and the filter
/// (16-bit, rows zero-filled past the last tap).
[[nodiscard]] inline std::int64_t shared_bytes(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return (std::int64_t{g.h * g.w + 1} * pixel_stride(op) +
          std::int64_t{g.kp} * filter_stride(op)) * 2;
}
inline constexpr std::int64_t max_shared = 96 << 10;  ///< at least two blocks an SM

/// Whether the kernel runs `op` (see the file comment).
[[nodiscard]] inline bool fits(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  const int kt = g.kp / 8;  // n-tiles
  return op.kind == OpKind::conv && g.groups == 1 && g.packed && !g.s2d && g.cp % 8 == 0 &&
         g.fcg == g.cp && op.in_cp == g.cp && g.kp % 8 == 0 && g.kd == g.kp &&
         (kt <= 8 || kt % 8 == 0) && !op.has_residual && !op.slice && rows_per_pixel(op) > 0 &&
         shared_bytes(op) <= max_shared;
}

/// The kernel's source for `op` (pooled: with its fused pool).
[[nodiscard]] inline std::string source(const OpDesc& op, bool pooled) {
  const ConvGeom& g = op.conv;
  const int lanes = pooled ? rows_per_pixel(op) : 1;
  const Shape ys = pooled ? op.pool->out_shape : Shape{g.k, g.oh, g.ow, 3};
  const int ycp = pooled ? op.pool->out_cp : g.kp;
  const int taps = g.kh * g.kw;
  const int nt = std::min(8, g.kp / 8);  // n-tiles a warp computes
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  generated::open_kernel(o, op, pooled, "mma_conv", "int batch");
  constant("TAPS", taps);
  constant("L", lanes);
  constant("YCP", ycp);
  constant("PIX", ys.h * ys.w);
  constant("MT", (ys.h * ys.w * lanes + 15) / 16);
  constant("NT", nt);
  constant("NG", g.kp / 8 / nt);
  constant("KSTEPS", (taps * g.cp + 15) / 16);
  constant("XS", pixel_stride(op));
  constant("WS", filter_stride(op));
  constant("XCH", g.h * g.w * (g.cp / 8));      // 16-byte chunks of one image
  constant("WCH", g.kp * filter_stride(op) / 8);  // 16-byte chunks of the staged filter
  constant("WROW", taps * g.cp);                 // filter elements per output channel
  o << "  constexpr bool POOLED = " << (pooled ? "true" : "false") << ";\n";
  o << R"src(
  extern __shared__ __align__(16) unsigned char smem[];
  T* xs = reinterpret_cast<T*>(smem);                // pixels, XS apart; then one zero pixel
  T* ws = xs + (H * W + 1) * XS;                      // filter rows, WS apart
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  // The filter once per block (zero past the last tap: the last k-step's B may not be NaN), and
  // the zero pixel.
  for (int i = threadIdx.x; i < WCH; i += 256) {
    const int n = i / (WS / 8);
    const int k = (i % (WS / 8)) * 8;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (k < WROW) {
      v = *reinterpret_cast<const uint4*>(w + n * WROW + k);
    }
    *reinterpret_cast<uint4*>(ws + n * WS + k) = v;
  }
  for (int i = threadIdx.x; i < XS / 8; i += 256) {
    reinterpret_cast<uint4*>(xs + H * W * XS)[i] = make_uint4(0u, 0u, 0u, 0u);
  }
  const T* zero = xs + H * W * XS;
  for (int img = blockIdx.x; img < batch; img += gridDim.x) {
    __syncthreads();  // the previous image is no longer read
    const uint4* xg = reinterpret_cast<const uint4*>(x + static_cast<long long>(img) * H * W * CP);
    for (int i = threadIdx.x; i < XCH; i += 256) {
      const int p = i / (CP / 8);
      *reinterpret_cast<uint4*>(xs + p * XS + (i % (CP / 8)) * 8) = xg[i];
    }
    __syncthreads();
    T* yi = y + static_cast<long long>(img) * (YH * YW * YCP);
    for (int u = warp; u < MT * NG; u += 8) {
      const int mt = u / NG;
      const int n0 = (u % NG) * NT;  // first n-tile
      // The GEMM row whose address this lane gives to ldmatrix for A: row lane%8 of matrix
      // lane/8 (matrices: rows 0-7 / 8-15 × k 0-7 / 8-15).
      int ay, ax;
      bool aok;
      {
        const int r = mt * 16 + (lane & 7) + 8 * ((lane >> 3) & 1);
        const int pix = r / L;
        const int q = r % L;
        const int oy = (pix / YW) * PSH - PPH + q / QW;
        const int ox = (pix % YW) * PSW - PPW + q % QW;
        aok = pix < PIX && q < QH * QW && oy >= 0 && oy < OH && ox >= 0 && ox < OW;
        ay = oy * SH - PH;
        ax = ox * SW - PW;
      }
      const int akh = (lane >> 4) * 8;  // this lane's k-half for A
      // For B: row lane%8 (an output channel) of matrix lane/8 (n-tile +lane/16, k-half lane/8%2).
      const T* brow = ws + ((n0 + (lane >> 4)) * 8 + (lane & 7)) * WS + ((lane >> 3) & 1) * 8;
      float acc[NT][4];
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
      }
#pragma unroll
      for (int s = 0; s < KSTEPS; ++s) {
        const int k = 16 * s + akh;
        const int tap = k / CP;
        const int iy = ay + (tap / KW) * DH;
        const int ix = ax + (tap % KW) * DW;
        const bool in = aok && tap < TAPS && iy >= 0 && iy < H && ix >= 0 && ix < W;
        unsigned a[4];
        ldmatrix_x4(a[0], a[1], a[2], a[3], in ? xs + (iy * W + ix) * XS + k % CP : zero);
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
          unsigned b[4];
          if (n + 1 < NT) {
            ldmatrix_x4(b[0], b[1], b[2], b[3], brow + n * 8 * WS + 16 * s);
          } else {
            ldmatrix_x2(b[0], b[1], brow + n * 8 * WS + 16 * s);
          }
)src";
  o << "          mma_16816<T>(acc[n], a[0], a[1], a[2], a[3], b[0], b[1]);\n"
    << "          if (n + 1 < NT) mma_16816<T>(acc[n + 1], a[0], a[1], a[2], a[3], b[2], b[3]);\n";
  o << R"src(        }
      }
      // acc[n][i]: row lane/4 + 8·(i/2), channel (n0 + n)·8 + 2·(lane%4) + i%2.
      bool ok[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = mt * 16 + (lane >> 2) + 8 * h;
        const int pix = r / L;
        const int q = r % L;
        const int oy = (pix / YW) * PSH - PPH + q / QW;
        const int ox = (pix % YW) * PSW - PPW + q % QW;
        ok[h] = pix < PIX && q < QH * QW && oy >= 0 && oy < OH && ox >= 0 && ox < OW;
      }
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int h = i >> 1;
          const int k = (n0 + n) * 8 + (lane & 3) * 2 + (i & 1);
          float v = acc[n][i];
          if (k < K) {
            v = activate(act, v + bias[k]);
          }
          if (POOLED) {
            if (!ok[h]) v = pool_start(pool);
#pragma unroll
            for (int off = 4; off < 4 * L; off *= 2) {
              v = pool_add(pool, v, __shfl_xor_sync(0xffffffffu, v, off));
            }
          }
          const int r = mt * 16 + (lane >> 2) + 8 * h;
          const int pix = r / L;
          if (r % L == 0 && pix < PIX) {
            const int py = pix / YW;
            const int px = pix % YW;
            if (POOLED && !IS_MAX) {
              v /= pool_window(pool, py, px).divisor;
            }
            store(yi + (py * YW + px) * YCP + k, k < K ? v : 0.0f);
          }
        }
      }
    }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace mma

template <DType P>
class MmaConv final : public generated::PoolingKernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "mma_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return P != DType::f32 && mma::fits(op);
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const bool pooled = this->pools(v, op);
    const cudaKernel_t k = this->compiled(mma::source(op, pooled));
    // Persistent blocks of 8 warps, each walking images.
    const generated::Launch l = generated::persistent_launch(
        k, generated::device_sms(), 256, static_cast<std::size_t>(mma::shared_bytes(op)), batch);
    return std::make_unique<MmaStep>(op, w, io, batch, l, pooled, k);
  }

 protected:
  /// Slower than cuDNN on the shapes timed so far (docs/cuda_backend.md): below every other
  /// tactic's claim; measured tuning times it.
  [[nodiscard]] int claim_rank() const override { return rank::fallback + 1; }

 private:
  class MmaStep final : public generated::KernelStep<T> {
   public:
    MmaStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch,
            generated::Launch launch, bool pooled, cudaKernel_t k)
        : generated::KernelStep<T>(op, w, io, launch, pooled, k, "tensor-core conv",
                                   "mma.sync, shapes compiled in; "),
          batch_(batch) {}
    void launch(cudaStream_t s, void*, std::size_t) override { this->run(s, batch_); }

   private:
    int batch_ = 1;
  };
};

}  // namespace strata::cuda::tactics
