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
/// Three forms (Variant::algo): 0, the above; 1, two m-tiles a warp with the 2x2 max pool taken on
/// rounded pairs (paired_source); 2, on Hopper's warpgroup MMA (wgmma_source: A from registers,
/// the filter read by the tensor cores from shared memory), sm_90a only. All are offered to
/// measured tuning. The heuristic claims a conv with its 2x2 max pool for the wgmma form ahead
/// of the libraries where that form runs, at batches of 256 and more (MNIST's conv4 + pool at
/// batch 4096 on an H200: 97.5 µs against cuDNN + the pool kernel's 122), otherwise the op only
/// as a fallback.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/device.hpp"
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

/// Output pixels of `op`'s kernel: the pooled map's with the pool inside, else the conv's.
[[nodiscard]] inline int pixels_out(const OpDesc& op, bool pooled) {
  const kernels::PoolShape ps = kernels::conv_pool_shape(op, 0, op.conv.kp, pooled);
  return ps.oh * ps.ow;
}

/// What both forms' kernels (`source`, `paired_source`) share, up to the work of one image:
/// generated::open_kernel (kernel `kernel`, `min_blocks`), the shape constants (`lanes` GEMM
/// rows per output pixel; `pooled`: the pool inside), `decls`, the shared-memory layout with
/// the filter staged once per block and the zero pixel, `setup`, then the loop over images up to
/// the image staged in shared memory and `yi`, its output.
inline void open_staged(std::ostringstream& o, const OpDesc& op, bool pooled, int lanes,
                        const char* kernel, int min_blocks, const std::string& decls,
                        const std::string& setup, bool core_matrices = false, int images = 1,
                        int pitch = 0) {
  const ConvGeom& g = op.conv;
  const int ycp = pooled ? op.pool->out_cp : g.kp;
  const int taps = g.kh * g.kw;
  const int nt = std::min(8, g.kp / 8);  // n-tiles a warp computes
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  const char* loaders = R"src(  // The A-fragment (ldmatrix.x4) of reduction columns k.. of this lane's im2col row over image
  // `img`: the row's first tap at input (ay, ax), `ok` false for no row (padding, taps past the
  // last and no row read the zero pixel).
  auto load_a = [&](unsigned (&a)[4], const T* img, int ay, int ax, bool ok, int k) {
    const int tap = k / CP;
    const int iy = ay + (tap / KW) * DH;
    const int ix = ax + (tap % KW) * DW;
    const bool in = ok && tap < TAPS && iy >= 0 && iy < H && ix >= 0 && ix < W;
    ldmatrix_x4(a[0], a[1], a[2], a[3], in ? img + (iy * WP + ix) * XS + k % CP : zero);
  };
)src";
  generated::open_kernel(o, op, pooled, kernel, "int batch", min_blocks);
  constant("TAPS", taps);
  constant("L", lanes);
  constant("YCP", ycp);
  constant("PIX", pixels_out(op, pooled));
  constant("MT", (pixels_out(op, pooled) * lanes + 15) / 16);
  constant("NT", nt);
  constant("NG", g.kp / 8 / nt);
  constant("KSTEPS", (taps * g.cp + 15) / 16);
  constant("XS", pixel_stride(op));
  constant("WP", pitch > 0 ? pitch : g.w);  // pixels between a staged image's rows
  constant("WS", filter_stride(op));
  constant("XCH", g.h * g.w * (g.cp / 8));      // 16-byte chunks of one image
  constant("WCH", g.kp * filter_stride(op) / 8);  // 16-byte chunks of the staged filter
  constant("WROW", taps * g.cp);                 // filter elements per output channel
  if (core_matrices) {
    constant("IMAGES", images);
  }
  o << decls << (core_matrices ? R"src(
  extern __shared__ __align__(16) unsigned char smem[];
  T* xs = reinterpret_cast<T*>(smem);  // IMAGES images, pixels XS apart; then one zero pixel
  T* ws = xs + (IMAGES * H * WP + 1) * XS;  // the filter's core matrices
)src" : R"src(
  extern __shared__ __align__(16) unsigned char smem[];
  T* xs = reinterpret_cast<T*>(smem);                // pixels, XS apart; then one zero pixel
  T* ws = xs + (H * W + 1) * XS;                      // filter rows, WS apart
)src") << R"src(  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
)src" << (core_matrices ? "  // The filter once per block, as wgmma's core matrices; and the zero pixel.\n"
                        : "  // The filter once per block, as rows; and the zero pixel.\n")
    << generated::stage_filter(core_matrices);
  if (core_matrices) {  // the caller writes the loop over images
    o << R"src(  for (int i = threadIdx.x; i < XS / 8; i += 256) {
    reinterpret_cast<uint4*>(xs + IMAGES * H * WP * XS)[i] = make_uint4(0u, 0u, 0u, 0u);
  }
  const T* zero = xs + IMAGES * H * WP * XS;
)src" << loaders << setup;
    return;
  }
  o << R"src(  for (int i = threadIdx.x; i < XS / 8; i += 256) {
    reinterpret_cast<uint4*>(xs + H * W * XS)[i] = make_uint4(0u, 0u, 0u, 0u);
  }
  const T* zero = xs + H * W * XS;
)src" << loaders << R"src(  // The B-fragments (ldmatrix) of n-tiles n and n + 1 (n alone when last) at k-step s, from
  // this lane's filter row `brow`.
  auto load_b = [&](unsigned (&b)[4], const T* brow, int n, int s) {
    if (n + 1 < NT) {
      ldmatrix_x4(b[0], b[1], b[2], b[3], brow + n * 8 * WS + 16 * s);
    } else {
      ldmatrix_x2(b[0], b[1], brow + n * 8 * WS + 16 * s);
    }
  };
)src" << setup << R"src(  for (int img = blockIdx.x; img < batch; img += gridDim.x) {
    __syncthreads();  // the previous image is no longer read
    const uint4* xg = reinterpret_cast<const uint4*>(x + static_cast<long long>(img) * H * W * CP);
    for (int i = threadIdx.x; i < XCH; i += 256) {
      const int p = i / (CP / 8);
      *reinterpret_cast<uint4*>(xs + p * XS + (i % (CP / 8)) * 8) = xg[i];
    }
    __syncthreads();
    T* yi = y + static_cast<long long>(img) * (YH * YW * YCP);
)src";
}

/// The kernel's source for `op` (pooled: with its fused pool).
[[nodiscard]] inline std::string source(const OpDesc& op, bool pooled) {
  const int lanes = pooled ? rows_per_pixel(op) : 1;
  std::ostringstream o;
  open_staged(o, op, pooled, lanes, "mma_conv", 1,
              std::string("  constexpr bool POOLED = ") + (pooled ? "true" : "false") + ";\n", "");
  o << R"src(    for (int u = warp; u < MT * NG; u += 8) {
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
        unsigned a[4];
        load_a(a, xs, ay, ax, aok, 16 * s + akh);
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
          unsigned b[4];
          load_b(b, brow, n, s);
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

/// Whether the second form (variant algo 1) runs `op` (pooled: with its pool inside): what
/// `fits` asks, and either no pool in the kernel, or a 2x2 max pool under no act or a relu.
[[nodiscard]] inline bool paired_fits(const OpDesc& op, bool pooled) {
  if (!fits(op)) {
    return false;
  }
  if (!pooled || !op.pool) {
    return true;
  }
  return op.pool->kind == OpKind::max_pool && op.pool->layer.kernel.h * op.pool->layer.kernel.w == 4 &&
         (op.act.kind == Act::none || op.act.kind == Act::relu);
}

/// The setup of the forms with paired_epilogue: the lane's g = lane/4 and t = lane%4, and
/// row_of(r, pix, q), the output pixel and window position of GEMM row r (with the pool, 4
/// outputs a tile of 16 rows, the window position the slower index).
[[nodiscard]] inline std::string pairs_setup() {
  return R"src(  const int g = lane >> 2;
  const int t = lane & 3;
  // GEMM row r: its output (pooled) pixel and window position. With the pool, 4 outputs a tile
  // of 16 rows, the window position the slower index.
  auto row_of = [](int r, int& pix, int& q) {
    if constexpr (L == 4) {
      pix = (r >> 4) * 4 + (r & 3);
      q = (r & 15) >> 2;
    } else {
      pix = r;
      q = 0;
    }
  };
)src";
}

/// The epilogue of the forms that take 2x2 max pools on pairs (`paired_source`,
/// `wgmma_source`), inside a unit's loop: bias, act and the pool (rows by window position) or
/// none, 32-bit stores; for the MC m-tiles from m0 whose sums acc[m][n][i] hold in the
/// mma.m16n8 layout (row g + 8·(i/2), channel (n0 + n)·8 + 2t + i%2).
[[nodiscard]] inline std::string paired_epilogue() {
  return R"src(      // acc[m][n][i]: row g + 8·(i/2) of m-tile m0 + m, channel (n0 + n)·8 + 2t + i%2.
      float bv[NT][2];
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int b = 0; b < 2; ++b) {
          const int c = (n0 + n) * 8 + 2 * t + b;
          bv[n][b] = bias != nullptr && c < K ? bias[c] : 0.0f;
        }
      }
#pragma unroll
      for (int m = 0; m < MC; ++m) {
        int pix[2];
        bool ok[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          int q;
          row_of((m0 + m) * 16 + g + 8 * h, pix[h], q);
          const int oy = (pix[h] / YW) * PSH - PPH + q / QW;
          const int ox = (pix[h] % YW) * PSW - PPW + q % QW;
          ok[h] = pix[h] < PIX && oy >= 0 && oy < OH && ox >= 0 && ox < OW;
        }
        if constexpr (L == 4) {
          unsigned pk[NT];
          max_pool4_pairs<T, NT, act_c.kind == Act::relu, (K < KP)>(pk, acc[m], bv, ok[0], ok[1],
                                                                    n0 * 8 + 2 * t, K);
          if (pix[0] < PIX) {
            T* yp = yi + pix[0] * YCP + n0 * 8 + 2 * t;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
              // Both halves of the warp hold every pooled pair: each stores half of the n-tiles.
              if ((lane < 16) == (n < (NT + 1) / 2)) {
                *reinterpret_cast<unsigned*>(yp + 8 * n) = pk[n];
              }
            }
          }
        } else {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (pix[h] < PIX) {
              T* yp = yi + pix[h] * YCP + n0 * 8 + 2 * t;
#pragma unroll
              for (int n = 0; n < NT; ++n) {
                const int c = (n0 + n) * 8 + 2 * t;
                const float v0 = c < K ? activate(act, acc[m][n][2 * h] + bv[n][0]) : 0.0f;
                const float v1 = c + 1 < K ? activate(act, acc[m][n][2 * h + 1] + bv[n][1]) : 0.0f;
                *reinterpret_cast<unsigned*>(yp + 8 * n) = pack2<T>(v0, v1);
              }
            }
          }
        }
      }
)src";
}

/// The second form's source (kernel `mma_conv_pairs`), from the first conv's tensor-core form
/// (generated_conv algo 1): each warp computes two 16-row m-tiles by up to 64 channels, so every
/// B-fragment loaded with ldmatrix serves two mma (6 ldmatrix a 16 mma instead of 5 a 8); with
/// a 2x2 max pool the GEMM rows are ordered by window position within each tile (4 pooled
/// outputs a tile: rows g and g + 8 of a lane and the lane 16 apart hold one output's window),
/// the window's max is taken on the raw sums plus bias, then on rounded pairs across lanes, with
/// the relu (exact: rounding, + bias and relu keep the order); the bias of the lane's channels
/// sits in registers and the pairs go out in 32-bit stores. Staging and the filter as `source`.
[[nodiscard]] inline std::string paired_source(const OpDesc& op, bool pooled) {
  const bool pool_in = pooled && op.pool.has_value();
  const int lanes = pool_in ? 4 : 1;
  const int mt = (pixels_out(op, pool_in) * lanes + 15) / 16;
  std::ostringstream o;
  open_staged(o, op, pool_in, lanes, "mma_conv_pairs", 2,
              "  constexpr int MT2 = " + std::to_string((mt + 1) / 2) + ";\n  constexpr int MC = 2;\n",
              pairs_setup());
  o << R"src(    for (int u = warp; u < MT2 * NG; u += 8) {
      const int m0 = (u / NG) * 2;   // first of the warp's two m-tiles
      const int n0 = (u % NG) * NT;  // first n-tile
      // The row whose address this lane gives to ldmatrix for A, in each m-tile.
      int ay[2], ax[2];
      bool aok[2];
#pragma unroll
      for (int m = 0; m < 2; ++m) {
        int pix, q;
        row_of((m0 + m) * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), pix, q);
        const int oy = (pix / YW) * PSH - PPH + q / QW;
        const int ox = (pix % YW) * PSW - PPW + q % QW;
        aok[m] = m0 + m < MT && pix < PIX && oy >= 0 && oy < OH && ox >= 0 && ox < OW;
        ay[m] = oy * SH - PH;
        ax[m] = ox * SW - PW;
      }
      const int akh = (lane >> 4) * 8;
      const T* brow = ws + ((n0 + (lane >> 4)) * 8 + (lane & 7)) * WS + ((lane >> 3) & 1) * 8;
      float acc[2][NT][4];
#pragma unroll
      for (int m = 0; m < 2; ++m) {
#pragma unroll
        for (int n = 0; n < NT; ++n) {
#pragma unroll
          for (int i = 0; i < 4; ++i) acc[m][n][i] = 0.0f;
        }
      }
#pragma unroll 2  // (fully unrolled: 255 registers and spills; by 2: 116, MNIST's conv4)
      for (int s = 0; s < KSTEPS; ++s) {
        unsigned a[2][4];
#pragma unroll
        for (int m = 0; m < 2; ++m) {
          load_a(a[m], xs, ay[m], ax[m], aok[m], 16 * s + akh);
        }
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
          unsigned b[4];
          load_b(b, brow, n, s);
#pragma unroll
          for (int m = 0; m < 2; ++m) {
            mma_16816<T>(acc[m][n], a[m][0], a[m][1], a[m][2], a[m][3], b[0], b[1]);
            if (n + 1 < NT) {
              mma_16816<T>(acc[m][n + 1], a[m][0], a[m][1], a[m][2], a[m][3], b[2], b[3]);
            }
          }
        }
      }
)src" << paired_epilogue() << R"src(    }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

/// Whether the current device runs sm_90a code (wgmma): compute capability 9.0. False without a
/// device. The third form (variant algo 2) runs where this holds and the second fits
/// (paired_fits: it shares that form's epilogue).
[[nodiscard]] inline bool wgmma_device() { return device_arch() == 90; }

/// Images the third form stages a block at once (H200, MNIST's conv4 at batch 4096: 1 took 104
/// µs, 2 96, 4 98; docs/benchmarks.md, session 15).
inline constexpr int wgmma_images = 2;

/// The third form's source (kernel `mma_conv_wgmma`, compiled for sm_90a): Hopper's warpgroup
/// MMA. A warpgroup (4 warps) computes 64 GEMM rows — one m-tile a warp, rows ordered as the
/// second form's — by up to 64 channels with one `wgmma.mma_async.m64nNk16` a k-step: A from
/// registers (each warp's 16 rows through ldmatrix, as before: the im2col gather stays a
/// per-lane address), B — the filter — read by the tensor cores from shared memory through a
/// matrix descriptor (core matrices, no swizzle), so no B fragment passes through registers.
/// A-fragments are double-buffered: the next k-step's ldmatrix is issued while the wgmma runs
/// (wait_group 1). Epilogue: the second form's (paired_epilogue, one m-tile).
[[nodiscard]] inline std::string wgmma_source(const OpDesc& op, bool pooled,
                                             int images = wgmma_images, int pitch = 0) {
  const bool pool_in = pooled && op.pool.has_value();
  const int lanes = pool_in ? 4 : 1;
  const int mt = (pixels_out(op, pool_in) * lanes + 15) / 16;
  const int nt = std::min(8, op.conv.kp / 8);
  std::ostringstream o;
  open_staged(o, op, pool_in, lanes, "mma_conv_wgmma", 2,
              "  constexpr int S = " + std::to_string(images) +
                  ";  // images staged at once\n  constexpr int MU = " +
                  std::to_string((images * mt + 3) / 4) + ";  // units of 4 m-tiles a group\n"
                  "  constexpr int MC = 1;\n",
              pairs_setup() + R"src(  // The filter's core matrices are read by the async proxy (wgmma).
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
)src",
              true, images, pitch);
  o << R"src(  // Groups of S images (the last may be short), strided over the blocks, each staged at once
  // (cp.async). (Session 15, H200, MNIST's conv4 at batch 4096: double-buffering the next group
  // was 11% slower — fewer blocks an SM; contiguous ranges of images a block, no faster.)
  const int groups = (batch + S - 1) / S;
  for (int grp = blockIdx.x; grp < groups; grp += gridDim.x) {
    const int img0 = grp * S;
    const int n_img = min(S, batch - img0);
    for (int i = threadIdx.x; i < n_img * XCH; i += 256) {
      const int im = i / XCH;
      const int j = i - im * XCH;
      const int p = j / (CP / 8);  // the image's pixel, stored WP pixels a row
      cp_async16(xs + (im * H * WP + (WP == W ? p : p / W * WP + p % W)) * XS + (j % (CP / 8)) * 8,
                 x + (static_cast<long long>(img0 + im) * H * W * CP + j * 8), true);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    // Units of 4 m-tiles (a warpgroup's 64 rows) over the group's S * MT; 2 warpgroups. (A
    // bound that is a constant: bounded by the short group's n_img, 11% slower in session 15.)
    for (int u = warp >> 2; u < MU * NG; u += 2) {
      // This warp's m-tile of the group's (the warpgroup's: 4 in a row), its image, and the
      // m-tile within the image (MT for none: no row valid, nothing stored).
      const int gm = (u / NG) * 4 + (warp & 3);
      const int im = gm / MT;
      const bool valid = im < n_img;
      const int m0 = valid ? gm - im * MT : MT;
      const int n0 = (u % NG) * NT;  // first n-tile
      const T* xi = xs + (valid ? im : 0) * H * WP * XS;
      T* yi = y + static_cast<long long>(valid ? img0 + im : 0) * (YH * YW * YCP);
      int ay, ax;
      bool aok;
      {
        int pix, q;
        row_of(m0 * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), pix, q);
        const int oy = (pix / YW) * PSH - PPH + q / QW;
        const int ox = (pix % YW) * PSW - PPW + q % QW;
        aok = m0 < MT && pix < PIX && oy >= 0 && oy < OH && ox >= 0 && ox < OW;
        ay = oy * SH - PH;
        ax = ox * SW - PW;
      }
      const int akh = (lane >> 4) * 8;
      float acc[1][NT][4];
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[0][n][i] = 0.0f;
      }
)src" << generated::wgmma_mainloop(nt, "acc[0]", "load_a(a[0], xi, ay, ax, aok, akh);",
                                  "load_a(a[(s + 1) & 1], xi, ay, ax, aok, 16 * (s + 1) + akh);")
    << paired_epilogue() << R"src(    }
    __syncthreads();  // the group's images are no longer read
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

/// Shared memory of the third form: `images` staged images, the zero pixel, the filter's core
/// matrices.
[[nodiscard]] inline std::int64_t wgmma_shared_bytes(const OpDesc& op, int images, int pitch = 0) {
  const ConvGeom& g = op.conv;
  return (std::int64_t{images} * g.h * (pitch > 0 ? pitch : g.w) + 1) * pixel_stride(op) * 2 +
         std::int64_t{g.kp} * ksteps(op) * 16 * 2;
}
/// The staged image's row pitch, pixels: W, or (`padded`: the wgmma form's math 1) W + 1 — on
/// MNIST's conv4 (14 wide, pixels 20 words apart, rows in pool-window order) a host count of its
/// ldmatrix phases goes from 1.48 wavefronts on average to 1.29.
[[nodiscard]] inline int image_pitch(const OpDesc& op, bool padded) { return op.conv.w + (padded ? 1 : 0); }

}  // namespace mma

template <DType P>
class MmaConv final : public generated::PoolingKernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "mma_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && mma::fits(op);
  }
  /// Each pool variant in the third form (algo 2: wgmma) where it fits and the GPU has wgmma,
  /// the second (algo 1: two m-tiles a warp) where it fits, then the first. On an H200, MNIST's
  /// conv4 + 2x2 max pool at batch 4096: see docs/cuda_backend.md (cuDNN + pool: 122 µs).
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    std::vector<Variant> out;
    const bool wgmma = mma::wgmma_device();
    for (Variant v : generated::pool_variants(name(), op)) {
      const bool pooled = this->pools(v, op);
      if (wgmma && mma::paired_fits(op, pooled)) {
        Variant w = v;
        w.algo = 2;
        out.push_back(w);
      }
      if (mma::paired_fits(op, pooled)) {
        Variant paired = v;
        paired.algo = 1;
        out.push_back(paired);
      }
      out.push_back(v);
    }
    return out;
  }
  /// A conv with its 2x2 max pool on wgmma where that form fits and the GPU has it, at batches
  /// that give every SM blocks of their own (two images a block): ahead of cuDNN, which cannot
  /// pool (the one shape timed, at batch 4096: 2026-12-01, docs/cuda_backend.md). Else as
  /// PoolingKernelTactic's (a fallback), in the second form where it fits.
  static constexpr int wgmma_claim_batch = 256;
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t ws,
                                               const Libraries& libs) const override {
    std::optional<Claim> c = generated::PoolingKernelTactic<P>::heuristic(op, batch, ws, libs);
    if (c && op.pool && batch >= wgmma_claim_batch && mma::paired_fits(op, true) &&
        mma::wgmma_device()) {
      c->rank = rank::special;
      c->variant = Variant{std::string(name()), 2, 0, 1};
    } else if (c && mma::paired_fits(op, c->variant.fuse != 0)) {
      c->variant.algo = 1;
    }
    return c;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const bool pooled = this->pools(v, op);
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    // Persistent blocks of 8 warps, each walking images (the third form: groups of images).
    const generated::Launch l =
        v.algo == 2
            ? generated::persistent_launch(
                  k, generated::device_sms(), 256,
                  static_cast<std::size_t>(mma::wgmma_shared_bytes(
                      op, mma::wgmma_images, mma::image_pitch(op, v.math == 1))),
                  (batch + mma::wgmma_images - 1) / mma::wgmma_images)
            : generated::persistent_launch(k, generated::device_sms(), 256,
                                           static_cast<std::size_t>(mma::shared_bytes(op)), batch);
    return std::make_unique<MmaStep>(op, w, io, batch, l, pooled, k, v.algo, v.math == 1);
  }

 protected:
  /// Without wgmma, slower than cuDNN on the shapes timed so far (docs/cuda_backend.md): below
  /// every other tactic's claim; measured tuning times it.
  [[nodiscard]] int claim_rank() const override { return rank::fallback + 1; }

 private:
  /// The kernel variant `v` compiles for `op`, checked: an algo this tactic has, in a form that
  /// fits the op, wgmma only on a GPU that runs it.
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo&) const override {
    const bool pooled = this->pools(v, op);
    STRATA_CHECK(v.algo >= 0 && v.algo <= 2,
                 "'" << op.label << "': mma_conv has no algo " << v.algo << " (0, 1 or 2)");
    STRATA_CHECK(v.algo == 0 || mma::paired_fits(op, pooled),
                 "'" << op.label << "': mma_conv algo " << v.algo << " does not fit this conv"
                     << (pooled ? " with its pool" : ""));
    STRATA_CHECK(v.algo != 2 || mma::wgmma_device(),
                 "'" << op.label << "': mma_conv algo 2 (wgmma) needs a GPU of compute capability "
                        "9.0 (sm_90a), and this device is not one");
    STRATA_CHECK(v.math == 0 || (v.math == 1 && v.algo == 2),
                 "'" << op.label << "': mma_conv has math 0, and math 1 (padded image rows) with "
                        "algo 2 only, not math " << v.math << " with algo " << v.algo);
    const std::string type(kernels::detail::rtc_type<T>());
    if (v.algo == 2) {
      return {mma::wgmma_source(op, pooled, mma::wgmma_images, mma::image_pitch(op, v.math == 1)),
              "strata_rtc::mma_conv_wgmma<" + type + ">", true};
    }
    if (v.algo == 1) {
      return {mma::paired_source(op, pooled), "strata_rtc::mma_conv_pairs<" + type + ">"};
    }
    return this->named(mma::source(op, pooled));
  }
  class MmaStep final : public generated::KernelStep<T> {
   public:
    MmaStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch,
            generated::Launch launch, bool pooled, cudaKernel_t k, int algo, bool padded)
        : generated::KernelStep<T>(op, w, io, launch, pooled, k, "tensor-core conv",
                                   algo == 2 && padded ? "wgmma, image rows padded, shapes compiled in; "
                                   : algo == 2         ? "wgmma, shapes compiled in; "
                                   : algo == 1 ? "mma.sync, two m-tiles a warp, shapes compiled in; "
                                               : "mma.sync, shapes compiled in; "),
          batch_(batch) {}
    void launch(cudaStream_t s, void*, std::size_t) override { this->run(s, batch_); }

   private:
    int batch_ = 1;
  };
};

}  // namespace strata::cuda::tactics
