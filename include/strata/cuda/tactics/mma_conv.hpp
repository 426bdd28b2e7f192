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
/// The same fragment layout as the fused-network kernel's tensor-core convs (fused_network.hpp).
///
/// Offered to measured tuning only (heuristic rank: fallback) until it has been timed on a GPU.
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

/// Shared memory per block: one image's input and the filter (16-bit).
[[nodiscard]] inline std::int64_t shared_bytes(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return (std::int64_t{g.h} * g.w * g.cp + std::int64_t{g.kp} * g.kh * g.kw * g.cp) * 2;
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
  constant("XN", g.h * g.w * g.cp);
  constant("WN", g.kp * taps * g.cp);
  o << "  constexpr bool POOLED = " << (pooled ? "true" : "false") << ";\n";
  o << R"src(
  extern __shared__ __align__(16) unsigned char smem[];
  T* xs = reinterpret_cast<T*>(smem);
  T* ws = reinterpret_cast<T*>(smem + XN * 2);
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  // The filter, once per block.
  for (int i = threadIdx.x; i < WN / 8; i += 256) {
    reinterpret_cast<uint4*>(ws)[i] = reinterpret_cast<const uint4*>(w)[i];
  }
  for (int img = blockIdx.x; img < batch; img += gridDim.x) {
    __syncthreads();  // the previous image is no longer read
    const uint4* xg = reinterpret_cast<const uint4*>(x + static_cast<long long>(img) * XN);
    for (int i = threadIdx.x; i < XN / 8; i += 256) {
      reinterpret_cast<uint4*>(xs)[i] = xg[i];
    }
    __syncthreads();
    T* yi = y + static_cast<long long>(img) * (YH * YW * YCP);
    for (int u = warp; u < MT * NG; u += 8) {
      const int mt = u / NG;
      const int n0 = (u % NG) * NT;  // first n-tile
      int oy[2], ox[2];
      bool ok[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // this lane's rows: lane/4 and lane/4 + 8
        const int r = mt * 16 + (lane >> 2) + 8 * h;
        const int pix = r / L;
        const int q = r % L;
        const int py = pix / YW;
        const int px = pix % YW;
        oy[h] = py * PSH - PPH + q / QW;
        ox[h] = px * PSW - PPW + q % QW;
        ok[h] = pix < PIX && q < QH * QW && oy[h] >= 0 && oy[h] < OH && ox[h] >= 0 && ox[h] < OW;
      }
      float acc[NT][4];
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
      }
#pragma unroll
      for (int s = 0; s < KSTEPS; ++s) {
        // k = 16s + 2(lane%4) + {0,1} (registers 0, 1) and + 8 (registers 2, 3): tap and slot.
        const int tap_lo = (16 * s) / CP;
        const int tap_hi = (16 * s + 8) / CP;
        const int c_lo = (16 * s) % CP + (lane & 3) * 2;
        const int c_hi = (16 * s + 8) % CP + (lane & 3) * 2;
        unsigned a[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {  // a0: row 0 lo, a1: row 1 lo, a2: row 0 hi, a3: row 1 hi
          const int h = j & 1;
          const int tap = j < 2 ? tap_lo : tap_hi;
          const int c = j < 2 ? c_lo : c_hi;
          const int iy = oy[h] * SH - PH + (tap / KW) * DH;
          const int ix = ox[h] * SW - PW + (tap % KW) * DW;
          const bool in = tap < TAPS && ok[h] && iy >= 0 && iy < H && ix >= 0 && ix < W;
          a[j] = in ? *reinterpret_cast<const unsigned*>(xs + (iy * W + ix) * CP + c) : 0u;
        }
#pragma unroll
        for (int n = 0; n < NT; ++n) {
          const T* wr = ws + ((n0 + n) * 8 + (lane >> 2)) * (TAPS * CP);
          const unsigned b0 =
              tap_lo < TAPS ? *reinterpret_cast<const unsigned*>(wr + tap_lo * CP + c_lo) : 0u;
          const unsigned b1 =
              tap_hi < TAPS ? *reinterpret_cast<const unsigned*>(wr + tap_hi * CP + c_hi) : 0u;
)src";
  o << "          mma_16816<T>(acc[n], a[0], a[1], a[2], a[3], b0, b1);\n";
  o << R"src(        }
      }
      // acc[n][i]: row lane/4 + 8·(i/2), channel (n0 + n)·8 + 2·(lane%4) + i%2.
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
    const bool pooled = this->fuses_pool(v) && op.pool.has_value();
    const std::string kernel_name =
        std::string("strata_rtc::mma_conv<") + kernels::detail::rtc_type<T>() + ">";
    const cudaKernel_t k = generated::kernel(mma::source(op, pooled), kernel_name);
    const generated::DeviceSms d = generated::device_sms();
    const auto shared = static_cast<std::size_t>(mma::shared_bytes(op));
    if (shared > (48u << 10)) {
      STRATA_CUDA_CHECK(cudaKernelSetAttributeForDevice(
          k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared), d.device));
    }
    // As many blocks as the SMs' shared memory holds (8 at most an SM), each walking images.
    const int per_sm = static_cast<int>(std::clamp<std::size_t>((220u << 10) / shared, 1, 8));
    const auto grid = static_cast<unsigned>(std::min(batch, per_sm * d.sms));
    return std::make_unique<MmaStep>(op, w, io, batch, grid, shared, pooled, k);
  }

 protected:
  /// Not yet timed on a GPU: below every other tactic's claim (measured tuning times it).
  [[nodiscard]] int claim_rank() const override { return rank::fallback + 1; }

 private:
  class MmaStep final : public generated::KernelStep<T> {
   public:
    MmaStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch, unsigned grid,
            std::size_t shared, bool pooled, cudaKernel_t k)
        : generated::KernelStep<T>(op, w, io, grid, pooled, k, "tensor-core conv",
                                   "mma.sync, shapes compiled in; "),
          batch_(batch), shared_(shared) {}
    void launch(cudaStream_t s, void*, std::size_t) override {
      rtc::launch_shared(this->kernel(), this->grid(), 256, shared_, s, this->x(), this->w(),
                         this->bias(), this->y(), batch_);
    }

   private:
    int batch_ = 1;
    std::size_t shared_ = 0;
  };
};

}  // namespace strata::cuda::tactics
