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
  if (!op.pool) {
    return 1;
  }
  const int n = op.pool->layer.kernel.h * op.pool->layer.kernel.w;
  int l = 1;
  while (l < n) {
    l *= 2;
  }
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
  const LayerDesc pd = pooled ? op.pool->layer : LayerDesc{};
  const Shape ys = pooled ? op.pool->out_shape : Shape{g.k, g.oh, g.ow, 3};
  const int ycp = pooled ? op.pool->out_cp : g.kp;
  const int taps = g.kh * g.kw;
  const int nt = std::min(8, g.kp / 8);  // n-tiles a warp computes
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "'.\n"
    << "template <class T>\n__global__ void __launch_bounds__(256) mma_conv(\n"
    << "    const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,\n"
    << "    T* __restrict__ y, int batch) {\n";
  constant("H", g.h);
  constant("W", g.w);
  constant("CP", g.cp);
  constant("K", g.k);
  constant("KP", g.kp);
  constant("KW", g.kw);
  constant("TAPS", taps);
  constant("SH", g.sh);
  constant("SW", g.sw);
  constant("PH", g.ph);
  constant("PW", g.pw);
  constant("DH", g.dh);
  constant("DW", g.dw);
  constant("OH", g.oh);
  constant("OW", g.ow);
  constant("L", lanes);
  constant("PKH", pooled ? pd.kernel.h : 1);
  constant("PKW", pooled ? pd.kernel.w : 1);
  constant("PSH", pooled ? pd.stride.h : 1);
  constant("PSW", pooled ? pd.stride.w : 1);
  constant("PPH", pooled ? pd.padding.h : 0);
  constant("PPW", pooled ? pd.padding.w : 0);
  constant("YH", ys.h);
  constant("YW", ys.w);
  constant("YCP", ycp);
  constant("PIX", ys.h * ys.w);
  constant("MT", (ys.h * ys.w * lanes + 15) / 16);
  constant("NT", nt);
  constant("NG", g.kp / 8 / nt);
  constant("KSTEPS", (taps * g.cp + 15) / 16);
  constant("XN", g.h * g.w * g.cp);
  constant("WN", g.kp * taps * g.cp);
  o << "  constexpr bool POOLED = " << (pooled ? "true" : "false") << ";\n"
    << "  constexpr bool IS_MAX = " << (pooled && op.pool->kind == OpKind::max_pool ? "true" : "false")
    << ";\n"
    << "  constexpr bool COUNT_PAD = " << (pooled && pd.count_include_pad ? "true" : "false") << ";\n"
    << "  const ActDesc act{static_cast<Act>(" << static_cast<int>(op.act.kind) << "), "
    << std::hexfloat << op.act.alpha << "f, " << op.act.beta << std::defaultfloat << "f};\n";
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
        oy[h] = py * PSH - PPH + q / PKW;
        ox[h] = px * PSW - PPW + q % PKW;
        ok[h] = pix < PIX && q < PKH * PKW && oy[h] >= 0 && oy[h] < OH && ox[h] >= 0 && ox[h] < OW;
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
  const char* t = "f16";
  o << "          if constexpr (is_same<T, bf16>::value) {\n"
    << "            asm(\"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
       "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\"\n"
    << "                : \"+f\"(acc[n][0]), \"+f\"(acc[n][1]), \"+f\"(acc[n][2]), \"+f\"(acc[n][3])\n"
    << "                : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b0), \"r\"(b1));\n"
    << "          } else {\n"
    << "            asm(\"mma.sync.aligned.m16n8k16.row.col.f32." << t << "." << t
    << ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\"\n"
    << "                : \"+f\"(acc[n][0]), \"+f\"(acc[n][1]), \"+f\"(acc[n][2]), \"+f\"(acc[n][3])\n"
    << "                : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b0), \"r\"(b1));\n"
    << "          }\n";
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
            if (!ok[h]) v = IS_MAX ? -__int_as_float(0x7f800000) : 0.0f;
#pragma unroll
            for (int off = 4; off < 4 * L; off *= 2) {
              const float o2 = __shfl_xor_sync(0xffffffffu, v, off);
              v = IS_MAX ? fmaxf(v, o2) : v + o2;
            }
          }
          const int r = mt * 16 + (lane >> 2) + 8 * h;
          const int pix = r / L;
          if (r % L == 0 && pix < PIX) {
            const int py = pix / YW;
            const int px = pix % YW;
            if (POOLED && !IS_MAX) {
              const int y0 = py * PSH - PPH;
              const int x0 = px * PSW - PPW;
              const int y1 = min(y0 + PKH, OH + PPH);
              const int x1 = min(x0 + PKW, OW + PPW);
              v /= COUNT_PAD ? static_cast<float>((y1 - y0) * (x1 - x0))
                             : static_cast<float>((min(y1, OH) - max(y0, 0)) * (min(x1, OW) - max(x0, 0)));
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
class MmaConv final : public Tactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "mma_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return P != DType::f32 && mma::fits(op);
  }
  /// Variant fuse = 1 pools in the kernel; fuse = 0 writes the conv's map and leaves the pool
  /// to the pool kernel.
  [[nodiscard]] bool fuses_pool(const Variant& v) const override { return v.fuse != 0; }
  /// Not yet timed on a GPU: the heuristic leaves it to the other tactics.
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int, std::size_t,
                                               const Libraries&) const override {
    return Claim{{std::string(name()), 0, 0, op.pool ? 1 : 0}, rank::fallback + 1};
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    if (op.pool) {
      return {Variant{std::string(name()), 0, 0, 1}, Variant{std::string(name())}};
    }
    return {Variant{std::string(name())}};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const bool pooled = fuses_pool(v) && op.pool.has_value();
    const std::string kernel_name =
        std::string("strata_rtc::mma_conv<") + kernels::detail::rtc_type<T>() + ">";
    const cudaKernel_t k = generated::kernel(mma::source(op, pooled), kernel_name);
    int device = 0;
    int sms = 0;
    STRATA_CUDA_CHECK(cudaGetDevice(&device));
    STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    const auto shared = static_cast<std::size_t>(mma::shared_bytes(op));
    if (shared > (48u << 10)) {
      STRATA_CUDA_CHECK(cudaKernelSetAttributeForDevice(
          k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared), device));
    }
    // As many blocks as the SMs' shared memory holds (8 at most an SM), each walking images.
    const int per_sm = static_cast<int>(std::clamp<std::size_t>((220u << 10) / shared, 1, 8));
    const auto grid = static_cast<unsigned>(std::min(batch, per_sm * sms));
    return std::make_unique<MmaStep>(op, w, io, batch, grid, shared, pooled, k);
  }

 private:
  class MmaStep final : public Step {
   public:
    MmaStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch, unsigned grid,
            std::size_t shared, bool pooled, cudaKernel_t k)
        : w_(w), io_(io), batch_(batch), grid_(grid), shared_(shared), pooled_(pooled), kernel_(k) {
      const ConvGeom& g = op.conv;
      std::ostringstream d;
      d << "strata tensor-core conv " << g.kh << "x" << g.kw << " " << g.c << "->" << g.k;
      if (pooled_) {
        d << " + " << (op.pool->kind == OpKind::max_pool ? "max" : "avg") << "_pool "
          << op.pool->layer.kernel.h << "x" << op.pool->layer.kernel.w;
      }
      d << " (mma.sync, shapes compiled in; bias, act" << (pooled_ ? ", pool" : "") << " fused)";
      what_ = d.str();
    }
    [[nodiscard]] std::string describe() const override { return what_; }
    void launch(cudaStream_t s, void*, std::size_t) override {
      const T* x = static_cast<const T*>(io_.x);
      const T* w = w_.weight.template as<const T>();
      const float* b = w_.bias_f32.template as<const float>();
      T* y = static_cast<T*>(pooled_ ? io_.pooled : io_.y);
      rtc::launch_shared(kernel_, grid_, 256, shared_, s, x, w, b, y, batch_);
    }

   private:
    const OpWeights& w_;
    OpIo io_;
    int batch_ = 1;
    unsigned grid_ = 1;
    std::size_t shared_ = 0;
    bool pooled_ = false;
    cudaKernel_t kernel_ = nullptr;
    std::string what_;
  };
};

}  // namespace strata::cuda::tactics
