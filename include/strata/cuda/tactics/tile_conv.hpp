#pragma once
/// Tactic `tile_conv`: a 16-bit NHWC convolution (one group, channel slots in multiples of 8, no
/// residual) as an implicit GEMM on tensor cores, tile by tile, in a kernel generated for this
/// one op, with bias, activation and any max/avg pool fused — for maps too large for `mma_conv`
/// (which stages a whole image): ResNet's and DenseNet's stem, a 7×7/2 conv read space-to-depth
/// (4×4 taps over 16 slots) followed by a 3×3/2 max pool.
///
/// Persistent blocks of 8 warps: the filter is staged in shared memory once per block; then, tile
/// after tile, the input patch one tile of outputs reads (zero outside the image) is copied in
/// with cp.async, the warps compute the tile's conv outputs (each warp 32 rows × up to 64
/// channels: two m-tiles share each B fragment, eight n-tiles each A fragment; ldmatrix from
/// rows padded to an odd number of 16-byte chunks), bias and activation are applied and the
/// results stored in shared memory as the op would store them; then the block pools them from
/// there — every window position a tile's outputs need is inside its conv tile (so overlapping
/// windows recompute a border of conv outputs, never a stored map) — and writes the pooled map,
/// 16 bytes a thread; the next tile's patch is being copied in meanwhile. Tile sizes are chosen
/// on the host to fill whole rounds of the 8 warps (ResNet's stem: 7×8 pooled outputs from 15×17
/// conv outputs, 255 rows of 256).
///
/// Variants 3 to 5 run the tile's GEMM on Hopper's warpgroup MMA (`wgmma_gemm`, sm_90a): the
/// filter staged as wgmma's core matrices, units of 64 rows a warpgroup, one
/// `wgmma.m64n(8·NT)k16` a k-step with A from registers (ldmatrix, as above) and B read from
/// shared memory by descriptor — the layout and calls of mma_conv's third form. Algo 3 is the
/// single-buffered kernel, 4 reads the caller's input (as algo 2), 5 double-buffers the patch
/// (as algo 1). On an H200 (session 17) algo 3 ran ResNet-18's stem at batch 256 in 316 µs
/// where the mma.sync form took 411 (ptxas: 91 registers against 128), bound by shared memory.
///
/// Algos 6 and 7 (wgmma; 7 reads the caller's input) give a 3-channel stem read space-to-depth —
/// 12 real slots of 16 a pixel — a 12-slot patch: each pixel's 12 slots dense, so that a tap row
/// (KW pixels × 12 slots) is one contiguous run and k takes 12 k-steps of 16 instead of 16 (the
/// filter staged in the same order, slots 12-15 dropped). A run starting at an odd pixel is not
/// 16-byte aligned (24 bytes a pixel), so the patch is held twice: copy E with pixel p at p·12,
/// copy O at OOFF + (p + 1)·12, and a row reads the copy where its pixel starts aligned (OOFF
/// puts copy O's rows on other banks than copy E's: about 1.66 shared-memory wavefronts an
/// ldmatrix phase on ResNet's tile, where the 16-slot patch takes 1.44, for 12 k-steps instead
/// of 16). Written without a GPU (session 17; ptxas: 81 registers, no spills; the A addresses
/// checked against the 16-slot patch's values in a host simulation): not offered to tuning until
/// its GPU test ("12-slot patch") has passed and it has been timed.
///
/// Algos 8 and 9 (wgmma; 9 reads the caller's input) run that 12-slot stem with the operands
/// swapped — the output channels as wgmma's M, the tile's conv outputs as its N, both read from
/// shared memory by descriptor, no ldmatrix (tile::swap_of, below). On an H100 (session 54) algo
/// 9 ran ResNet-18's stem at batch 256 in 263.5 µs against algo 7's 300.7; the heuristic claims it.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <vector>
#include <sstream>
#include <string>

#include "strata/cuda/device.hpp"
#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"

namespace strata::cuda::tactics {

namespace tile {

inline constexpr int warps = 8;
/// Shared memory a block may take: two blocks an SM on sm_80/sm_90, and within what every GPU
/// since sm_70 lets one block opt into.
inline constexpr std::int64_t max_shared = 96 << 10;

using generated::odd_chunks;

/// A tile: `py` × `px` outputs (pooled outputs when the pool is fused) and what they need.
struct Tile {
  int py = 0, px = 0;  ///< outputs per tile, rows × columns
  int cr = 0, cc = 0;  ///< conv outputs the tile computes, rows × columns
  int ir = 0, ic = 0;  ///< input pixels it reads, rows × columns
  int m = 0;           ///< GEMM rows (cr·cc)
  int rounds = 0;      ///< rounds of the 8 warps over the tile's units
  int tiles = 0;       ///< tiles per image
  std::int64_t shared = 0;  ///< dynamic shared memory per block, bytes (one patch buffer)
  std::int64_t patch = 0;   ///< bytes of one patch buffer (a second one double-buffers)
};

/// Output channels (n-tiles of 8) a warp computes: all of them up to 64, else 64 at a time.
[[nodiscard]] inline int n_tiles(const ConvGeom& g) { return std::min(8, g.kp / 8); }
[[nodiscard]] inline int ksteps(const ConvGeom& g) { return (g.kh * g.kw * g.cp + 15) / 16; }

/// The tile of `py` × `px` outputs of `op` (pooled: with its pool).
[[nodiscard]] inline Tile make(const OpDesc& op, bool pooled, int py, int px) {
  const ConvGeom& g = op.conv;
  const kernels::PoolShape ps = kernels::conv_pool_shape(op, 0, g.kp, pooled);
  Tile t;
  t.py = py;
  t.px = px;
  t.cr = (py - 1) * ps.sh + ps.kh;
  t.cc = (px - 1) * ps.sw + ps.kw;
  t.ir = (t.cr - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  t.ic = (t.cc - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  t.m = t.cr * t.cc;
  const int mt = (t.m + 15) / 16;
  const int units = (mt + 1) / 2 * (g.kp / 8 / n_tiles(g));
  t.rounds = (units + warps - 1) / warps;
  t.tiles = ((ps.oh + py - 1) / py) * ((ps.ow + px - 1) / px);
  const std::int64_t xs = std::int64_t{t.ir} * t.ic + 1;  // the patch and a zero pixel
  t.patch = xs * odd_chunks(g.cp) * 2;
  t.shared = (std::int64_t{g.kp} * odd_chunks(16 * ksteps(g)) + xs * odd_chunks(g.cp) +
              std::int64_t{t.m} * odd_chunks(g.kp)) * 2;
  return t;
}

/// The tile of `op` (pooled: with its pool) of least `cost(tile)` within the shared-memory budget
/// and at most 4 warp rounds; larger tiles win ties. py = 0 when none fits.
template <class Cost>
[[nodiscard]] inline Tile least(const OpDesc& op, bool pooled, Cost cost) {
  const kernels::PoolShape ps = kernels::conv_pool_shape(op, 0, op.conv.kp, pooled);
  Tile best;
  long long best_cost = std::numeric_limits<long long>::max();
  for (int py = 1; py <= std::min(ps.oh, 32); ++py) {
    for (int px = 1; px <= std::min(ps.ow, 32); ++px) {
      const Tile t = make(op, pooled, py, px);
      if (t.shared > max_shared || t.rounds > 4) {
        continue;
      }
      const long long c = cost(t);
      if (c < best_cost || (c == best_cost && t.py * t.px > best.py * best.px)) {
        best = t;
        best_cost = c;
      }
    }
  }
  return best;
}

/// The tile shape with the least work per image — warp rounds (256 GEMM rows each) plus a
/// round's worth a tile for its copy-in and pooling.
[[nodiscard]] inline Tile choose(const OpDesc& op, bool pooled) {
  return least(op, pooled, [](const Tile& t) { return static_cast<long long>(t.tiles) * (t.rounds + 1); });
}

/// The tile shape for `images` images on `sms` SMs (variants with tile::math_small): the least
/// critical path — ceil(images × tiles / sms) tiles a block, each its warp rounds plus one for
/// its copy-in and pooling. choose() counts the work an image whatever the batch:
/// EfficientNet-B0's and MobileNetV2's 112×112 stem (3×3/2, 32 channels) takes tiles of 25×28
/// there, 20 an image — at batch 1, 20 of an H200's 132 SMs busy for 4 rounds each; here 1
/// round a tile over more blocks, 56 an image. On an H200 (session 30) the stem so tiled, reading
/// the caller's input, took 5.0–5.2 µs at batch 1 and 6.4–6.5 at batch 4 (the heuristic's plan
/// before it: 11.7–11.9 µs + a 3-µs input step at batch 1) — see heuristic().
[[nodiscard]] inline Tile choose_for(const OpDesc& op, bool pooled, int images, int sms) {
  const long long blocks = std::max(sms, 1);
  const long long n = std::max(images, 1);
  return least(op, pooled, [&](const Tile& t) { return (n * t.tiles + blocks - 1) / blocks * (t.rounds + 1); });
}

/// Variant math bits: 1, the patch's rows padded (patch_pitch); 2, tiles for one image on this
/// GPU's SMs (choose_for), for stems at small batches (claimed for unpooled ones: heuristic()).
inline constexpr int math_padded = 1;
inline constexpr int math_small = 2;
/// 4 (algo 9 only): the swapped form pipelined — tile t's GEMM in flight while the block pools
/// tile t - 1 and converts tile t + 1's patch into a second pair of planes (swap_pipe).
inline constexpr int math_pipelined = 4;
/// The most images a batch may have for math_small to be offered (and claimed).
inline constexpr int small_batch = 4;

/// Tiles of a batch from which the heuristic runs a pooled stem here (about 8 an SM on an H100).
inline constexpr long long claim_tiles = 1024;

using kernels::device_attribute;


/// The shared memory one block may opt into on the current device; 0 where no device answers.
[[nodiscard]] inline std::int64_t device_shared_optin() {
  return device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin).value_or(0);
}

/// Whether the kernel writes `op`'s concat slice itself: 16-byte aligned, whole groups of 8
/// slots, its own slots only (then its stores take the concat's pixel and image strides).
[[nodiscard]] inline bool writes_slice(const OpDesc& op) {
  return op.slice && op.slice->aligned && !op.slice->flatten && op.slice->write == op.conv.kp &&
         op.slice->strides.channel == 1 && op.slice->strides.pixel % 8 == 0;
}

/// Whether the kernel runs `op` (see the file comment); `pooled` with its fused pool. An op whose
/// result is a concat slice runs here only as it writes it: with its pool when it has one (the
/// unpooled variant's map would go to the pool kernel, which writes no slice).
[[nodiscard]] inline bool fits(const OpDesc& op, bool pooled) {
  const ConvGeom& g = op.conv;
  return gemm_conv(op) && (g.kp <= 64 || g.kp % 64 == 0) &&
         !op.has_residual && (!op.slice || writes_slice(op)) &&
         (!op.slice || pooled == op.pool.has_value()) && (!pooled || op.pool->out_cp == g.kp) &&
         choose(op, pooled).py > 0;
}
[[nodiscard]] inline bool fits(const OpDesc& op) { return fits(op, false) || fits(op, op.pool.has_value()); }

/// The wgmma form's GEMM of a tile (inside the kernel's tile loop; nothing where WG is false):
/// units of 64 GEMM rows (a warpgroup's: one m-tile of 16 a warp) × NT n-tiles over the block's
/// two warpgroups; per k-step each warp loads its A-fragment with ldmatrix from the patch (as
/// the mma.sync form does), and one `wgmma.mma_async.m64n(8·NT)k16` reads B — the filter's
/// core matrices — from shared memory through a descriptor. A-fragments are double-buffered (the
/// next k-step's ldmatrix is issued while the wgmma runs: wait_group 1). Bias, activation and
/// the store into the tile's conv outputs as the mma.sync form's.
[[nodiscard]] inline std::string wgmma_gemm(int nt) {
  std::ostringstream o;
  o << R"src(    if constexpr (WG && !SWAP) {
      constexpr int UNITS4 = (M + 63) / 64 * NG;  // warpgroup units of 64 rows
      for (int u = warp >> 2; u < UNITS4; u += 2) {
        const int mt = (u / NG) * 4 + (warp & 3);  // this warp's m-tile
        const int n0 = (u % NG) * NT;              // first n-tile
        const int pb = a_pixel(mt);
        auto load_a = [&](unsigned (&a)[4], int s) {
          ldsm4_at(a[0], a[1], a[2], a[3], a_address(pb, s));
        };
        float acc[NT][4];
#pragma unroll
        for (int n = 0; n < NT; ++n) {
#pragma unroll
          for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
        }
)src" << generated::wgmma_mainloop(nt, "acc", "load_a(a[0], 0);", "load_a(a[(s + 1) & 1], s + 1);")
    << R"src(        store_conv(acc, mt, n0);
      }
    }
)src";
  return o.str();
}

/// The pooling of a tile from its conv outputs in ct (or their copy out): one thread per output
/// pixel and 8 channels, `img` and `tile` (the tile's image and its index there) in scope — in
/// the tile loop, or in the pipelined loop's pool_tile (swap_pipe).
[[nodiscard]] inline std::string pool_loop() {
  return R"src(    // Pooling (or copying out) from ct: one thread per output pixel and 8 channels.
    T* yi = y + img * YIMG;
    for (int i = threadIdx.x; i < TPY * TPX * (KP / 8); i += 256) {
      const int c8 = (i % (KP / 8)) * 8;
      const int p = i / (KP / 8);
      const int ly = p / TPX;
      const int lx = p % TPX;
      const int py = (tile / TX) * TPY + ly;
      const int px = (tile % TX) * TPX + lx;
      if (py >= YH || px >= YW) {
        continue;
      }
      T* out = yi + (py * YW + px) * YPIX + c8;
      if constexpr (QH * QW == 1) {
        // (a 1x1 window may still have a stride: output (ly, lx) is conv output (ly·PSH, lx·PSW))
        *reinterpret_cast<uint4*>(out) =
            *reinterpret_cast<const uint4*>(ct + (ly * PSH * CROW + lx * PSW) * CTS + c8);
      } else {
        // Over each window position inside the conv's map, as the op stored it in ct: the max of
        // the values in pairs (exact in 16 bits), or their sum in f32.
        unsigned m[4] = {neg_inf2<T>(), neg_inf2<T>(), neg_inf2<T>(), neg_inf2<T>()};
        float v[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        // A window inside the conv's map reads every position unchecked (the checked form only
        // at the map's edges).
        auto window = [&](bool checked) {
#pragma unroll
          for (int qy = 0; qy < QH; ++qy) {
#pragma unroll
            for (int qx = 0; qx < QW; ++qx) {
              const int cy = py * PSH - PPH + qy;
              const int cx = px * PSW - PPW + qx;
              if (!checked || (cy >= 0 && cy < OH && cx >= 0 && cx < OW)) {
                const T* at = ct + ((ly * PSH + qy) * CROW + lx * PSW + qx) * CTS + c8;
                if constexpr (IS_MAX) {
                  const uint4 c = *reinterpret_cast<const uint4*>(at);
                  m[0] = max2<T>(m[0], c.x);
                  m[1] = max2<T>(m[1], c.y);
                  m[2] = max2<T>(m[2], c.z);
                  m[3] = max2<T>(m[3], c.w);
                } else {
                  float c[8];
                  load8(at, c);
#pragma unroll
                  for (int j = 0; j < 8; ++j) v[j] += c[j];
                }
              }
            }
          }
        };
        const int wy = py * PSH - PPH;
        const int wx = px * PSW - PPW;
        if (wy >= 0 && wy + QH <= OH && wx >= 0 && wx + QW <= OW) {
          window(false);
        } else {
          window(true);
        }
        if constexpr (IS_MAX) {
          if constexpr (POST_ACT) {  // the ReLU (ReLU6) after the max: pairs of +0.0 (and 6)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
              m[j] = max2<T>(m[j], 0u);
              if constexpr (POST_HI) {
                m[j] = min2<T>(m[j], pack2<T>(6.0f, 6.0f));
              }
            }
          }
          *reinterpret_cast<uint4*>(out) = make_uint4(m[0], m[1], m[2], m[3]);
        } else {
          const float d = pool_window(pool, py, px).divisor;
#pragma unroll
          for (int j = 0; j < 8; ++j) v[j] /= d;
          store8(out, v);
        }
      }
    }
)src";
}

/// The swapped form's GEMM of a tile (tile::swap_of; `nt` = NWG / 8 n-tiles a warpgroup): per
/// k-step one `wgmma.mma_async.m64n(8·nt)k16` with A, the filter's core matrices for 64
/// channels, and B, the planes xs from the k-step's pixel offset, both by descriptor, committed
/// as one group (`issue`); then (`finish`) the wait for it, bias and activation (POST_ACT: the
/// bias only) and the accumulators stored transposed with stmatrix — 8 channels of one conv
/// output a 16-byte row of ct, as store_conv stores them. `head` declares the warp's place and
/// the accumulators `acc`.
struct SwapGemm {
  std::string head, issue, finish;
};
[[nodiscard]] inline SwapGemm swap_gemm(int nt) {
  SwapGemm g;
  g.head = R"src(      const int wgi = warp >> 2;  // this warpgroup's columns: col0 = wgi · NWG on
      const int wr = warp & 3;    // this warp's channels: 16 · wr on
      const int col0 = wgi * NWG;
      float acc[NWG / 8][4];
)src";
  std::ostringstream o;
  o << R"src(#pragma unroll
      for (int n = 0; n < NWG / 8; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
      }
      const unsigned wa = shared_address(ws);
      const unsigned pa = shared_address(xs);  // plane P0; X at PLANE pixels on
      // A: k-steps 256 bytes apart, core matrices 128 bytes apart in k, a channel group's apart in M.
      constexpr unsigned long long DA = (static_cast<unsigned long long>(128 >> 4) << 16) |
                                        (static_cast<unsigned long long>((KSTEPS * 2 * 128) >> 4) << 32);
      // B: 8 pixels (128 bytes) a core matrix in N; in k, 16 bytes (the next tap's P0) or 32 (X).
      constexpr unsigned long long DB16 = (1ull << 16) | (static_cast<unsigned long long>(128 >> 4) << 32);
      constexpr unsigned long long DB32 = (2ull << 16) | (static_cast<unsigned long long>(128 >> 4) << 32);
      asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
      for (int s = 0; s < KSTEPS; ++s) {
        const int ky = s / 3;
        const int part = s % 3;
        const unsigned long long da = DA | static_cast<unsigned long long>(((wa + s * 256) & 0x3FFFF) >> 4);
        const unsigned b = (part == 2 ? pa + PLANE * 16 : pa) +
                           16u * static_cast<unsigned>(col0 + ky * IC + (part == 1 ? 2 : 0));
        const unsigned long long db = (part == 2 ? DB32 : DB16) | static_cast<unsigned long long>((b & 0x3FFFF) >> 4);
        const int sc = 1;
        if constexpr (is_same<T, bf16>::value) {
          )src" << generated::wgmma_ss_call(nt, "bf16.bf16", "acc") << R"src(        } else {
          )src" << generated::wgmma_ss_call(nt, "f16.f16", "acc") << R"src(        }
      }
      asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
)src";
  g.issue = o.str();
  g.finish = R"src(      asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
      for (int n = 0; n < NWG / 8; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(acc[n][i])::"memory");
      }
      // The accumulators stored transposed (generated::stmatrix_trans_columns).
      const unsigned cta = shared_address(ct);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int c0 = 16 * wr + 8 * h;  // this half's first channel (warp-uniform)
        if (c0 < KP) {
          const int k = c0 + (lane >> 2);
          const float b = k < K ? bias[k] : 0.0f;
          auto val = [&](float a) { return K == KP || k < K ? (POST_ACT ? a + b : activate(act, a + b)) : 0.0f; };
)src" + generated::stmatrix_trans_columns("cta") + R"src(        }
      }
)src";
  return g;
}
/// The swapped form's GEMM inline in the tile loop (head, issue, finish in one block).
[[nodiscard]] inline std::string swap_inline(int nt) {
  const SwapGemm g = swap_gemm(nt);
  return "    if constexpr (SWAP) {\n" + g.head + g.issue + g.finish + "    }\n";
}
/// The swapped form's filter staged in shared memory `ws` as 64 channels' core matrices (channels
/// past KP zero) in the planes' k order, by threads `first`, `first` + `stride`, ... (indented 4
/// spaces; tile_conv's swapped forms, stem_conv).
[[nodiscard]] inline std::string swap_filter(const char* first, int stride) {
  return std::string("    for (int i = ") + first + "; i < 64 * KSTEPS * 2; i += " + std::to_string(stride) + ") {\n" +
         R"src(      const int n = i / (KSTEPS * 2);
      const int c = i % (KSTEPS * 2);
      const int ky = c / 6;
      const int part = (c / 2) % 3;
      const int half = c % 2;
      float v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int kx = part < 2 ? 2 * part + half : 2 * half + j / 4;
        const int sl = part < 2 ? j : 8 + j % 4;
        v[j] = n < KP ? load(w + n * WROW + (ky * KW + kx) * CP + sl) : 0.0f;
      }
      store8(ws + ((n >> 3) * KSTEPS * 2 + c) * 64 + (n & 7) * 8, v);
    }
)src";
}
/// The pipelined swapped form's tile loop (math_pipelined; the caller's rows staged): per tile t,
/// its GEMM issued (asynchronous, over planes pb), then — the MMAs in flight — the previous
/// tile's conv outputs pooled from ct and the next tile's staged rows converted into the other
/// planes; a barrier (ct and the staged rows free, the planes written and fenced), the rows of
/// the tile after next copied in, the GEMM waited for and stored into ct, a barrier. The same
/// sums, conv outputs and pool as the unpipelined form (equal to it to the bit). Emitted instead
/// of the tile loop of source().
[[nodiscard]] inline std::string swap_pipe(int nt) {
  const SwapGemm g = swap_gemm(nt);
  return "  // PIPE: the tile loop (the unpipelined forms' is not emitted).\n" + g.head +
         "  auto swap_issue = [&](const T* xs) {\n" + g.issue + "  };\n" +
         "  auto swap_finish = [&]() {\n" + g.finish + "  };\n" +
         "  auto pool_tile = [&](long long t) {\n"
         "    const int img = static_cast<int>(t / TILES);\n"
         "    const int tile = static_cast<int>(t % TILES);\n" +
         pool_loop() + "  };\n" + R"src(  static_assert(PIPE && SWAP && RAW && RAW_STAGED, "PIPE: the swapped form from staged rows");
  long long tp = blockIdx.x;
  if (tp < total) {  // the first tile's patch (its rows were copied in above)
    cp_async_wait<0>();
    __syncthreads();
    convert_patch(tp, xs0);
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    __syncthreads();
    if (tp + gridDim.x < total) {
      load_patch(tp + gridDim.x, xs0);
    }
  }
  int pb = 0;          // tile tp's planes
  long long prev = -1;  // the tile whose conv outputs ct holds, not yet pooled
  for (; tp < total; tp += gridDim.x, pb ^= 1) {
    swap_issue(xs0 + pb * PATCH);
    if (prev >= 0) {
      pool_tile(prev);
    }
    const long long tn = tp + gridDim.x;
    if (tn < total) {
      cp_async_wait<0>();  // tile tn's rows
      __syncthreads();
      convert_patch(tn, xs0 + (pb ^ 1) * PATCH);
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    }
    __syncthreads();  // ct pooled, the staged rows converted, planes pb ^ 1 written
    if (tn + gridDim.x < total) {
      load_patch(tn + gridDim.x, xs0);
    }
    swap_finish();
    __syncthreads();  // ct holds tile tp
    prev = tp;
  }
  if (prev >= 0) {
    pool_tile(prev);
  }
)src";
}

/// The kernel's source for `op` (pooled: with its fused pool) with tile `t`; `double_buffer`: the
/// next tile's patch is copied into a second buffer while this one's GEMM runs (otherwise into
/// the only one, while this tile is pooled).
/// `raw` (a space-to-depth conv only): the patch is read from the caller's input itself — its
/// element type and layout, normalized — rearranged space-to-depth as the input step would.
struct RawInput {
  bool used = false;
  InputFormat format = InputFormat::f32;
  bool hwc = false;  ///< the caller's input is height × width × channels per image
  Shape shape{};     ///< as declared
  bool staged = true;  ///< rows staged in shared memory where a word size fits (raw_stage)
};
/// Whether `op` can take the 12-slot patch (algos 6 and 7): a stem read space-to-depth from 3
/// channels (12 real slots of 16), a stride-1 conv over those blocks, its tap rows a whole
/// number of k-steps (KW·12 slots a multiple of 16: a 7×7 or 8×8 stem's 4 taps; a 3×3 or 5×5
/// stem's 2 or 3 would read slots past a row's run — pixels never staged — into zero weights,
/// and stale NaN bits there would not stay zero).
[[nodiscard]] inline bool dense12_fits(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return g.s2d && g.cp == 16 && g.c == 12 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         (g.kw * 12) % 16 == 0;
}

/// Whether the kernel of `op` (`pooled`: with its pool) applies the op's activation after a max
/// pool rather than to each conv output: a pool of more than one position over a ReLU or a
/// ReLU6 (clip to [0, 6], exactly representable in f16 and bf16).
[[nodiscard]] inline bool post_activation(const OpDesc& op, bool pooled) {
  if (!pooled || !op.pool || op.pool->kind != OpKind::max_pool ||
      op.pool->layer.kernel.h * op.pool->layer.kernel.w < 2) {
    return false;
  }
  const ActDesc& a = op.act;
  return a.kind == Act::relu || (a.kind == Act::clip && a.alpha == 0.0f && a.beta == 6.0f);
}

/// What tile_conv's algo `a` is: 0 the mma.sync kernel, 1 its patch double-buffered, 2 reading
/// the caller's input; 3-5 the same three on wgmma; 6 wgmma with the 12-slot patch, 7 that reading
/// the caller's input; 8 the 12-slot stem with pixels as wgmma's N (`swap`, below), 9 that
/// reading the caller's input.
struct Form {
  bool wg = false, db = false, raw = false, d12 = false, swap = false;
};
[[nodiscard]] constexpr Form form_of(int a) {
  return {a >= 3, a == 1 || a == 5, a == 2 || a == 4 || a == 7 || a == 9, a >= 6, a == 8 || a == 9};
}
inline constexpr int last_algo = 9;

/// The swapped form (algos 8 and 9): a 4x4-tap 12-slot stem (ResNet's and DenseNet's 7x7/2 read
/// space-to-depth) whose GEMM takes the output channels as wgmma's M (64) and the tile's conv
/// outputs as its N, both operands read from shared memory by descriptor — no ldmatrix. The
/// tile's conv outputs are numbered in the patch's own grid (q = row · IC + column, the columns
/// past CC computed and never read), so that the B operand of tap (ky, kx) for outputs q.. is the
/// patch from pixel q + ky · IC + kx on: with the patch held as two planes of 16 bytes a pixel —
/// P0, slots 0-7; X, slots 8-11 of the pixel and of the next — a tap row is three k-steps, (P0 at
/// +0, P0 at +1), (P0 at +2, P0 at +3), (X at +0, X at +2): core matrices 16 or 32 bytes apart in
/// k, 128 in N. Each warpgroup takes half of the tile's outputs (NWG columns, at most
/// swap_max_n), and stores its accumulators transposed (stmatrix .trans) as the other forms do:
/// a row of 16-bit channels a conv output. On the H100 (session 54, Nsight Compute) algo 7 at
/// R2 b256 was bound by shared memory — 76% of L1's throughput, ldmatrix's A-fragments 6.6
/// wavefronts an instruction, the filter read by four wgmma units a tile — which this removes.
inline constexpr int swap_max_n = 160;  ///< a warpgroup's columns: 80 accumulators a thread
struct Swap {
  int nwg = 0;    ///< columns (conv outputs in the patch's grid) a warpgroup: a multiple of 8
  int plane = 0;  ///< pixels a plane (the patch, then slack that only unread columns read)
  std::int64_t shared = 0;  ///< the filter, the conv outputs and the planes (a pair, two if pipelined), bytes
};
/// (`pipelined`: math_pipelined, a second pair of planes.)
[[nodiscard]] inline Swap swap_of(const OpDesc& op, const Tile& t, bool pipelined = false) {
  const ConvGeom& g = op.conv;
  Swap s;
  const int nq = (t.cr - 1) * t.ic + t.cc;  // columns up to the tile's last conv output
  s.nwg = (nq + 15) / 16 * 8;
  s.plane = std::max(t.ir * t.ic, 2 * s.nwg + (g.kh - 1) * t.ic + g.kw) + 1;
  const int ksteps12 = g.kh * 3;
  s.shared = (std::int64_t{64} * ksteps12 * 16 + std::int64_t{2} * s.nwg * odd_chunks(g.kp) +
              std::int64_t{pipelined ? 4 : 2} * s.plane * 8) * 2;
  return s;
}
/// Whether `op` can take the swapped form: a 12-slot stem of 4x4 taps (ResNet's 7x7/2 read
/// space-to-depth) with at most 64 output channels (one wgmma M).
[[nodiscard]] inline bool swap_geometry(const OpDesc& op) {
  return dense12_fits(op) && op.conv.kh == 4 && op.conv.kw == 4 && op.conv.kp <= 64;
}
/// The swapped form's tile for `op` (`pooled`: with its pool): the least GEMM columns an image,
/// plus 96 a tile for its copy-in and pooling, with a warpgroup's columns within swap_max_n and
/// its shared memory within max_shared (the caller's staged rows come on top: fitted()); py = 0
/// when none fits. ResNet's stem at 224x224: 4x14 pooled outputs, 2 x 144 columns.
[[nodiscard]] inline Tile choose_swap(const OpDesc& op, bool pooled) {
  Tile best;
  if (!swap_geometry(op)) {
    return best;
  }
  const kernels::PoolShape ps = kernels::conv_pool_shape(op, 0, op.conv.kp, pooled);
  long long best_cost = std::numeric_limits<long long>::max();
  for (int py = 1; py <= std::min(ps.oh, 32); ++py) {
    for (int px = 1; px <= std::min(ps.ow, 32); ++px) {
      const Tile t = make(op, pooled, py, px);
      const Swap w = swap_of(op, t);
      if (w.nwg > swap_max_n || w.shared > max_shared) {
        continue;
      }
      const long long c = static_cast<long long>(t.tiles) * (2 * w.nwg + 96);
      if (c < best_cost || (c == best_cost && t.py * t.px > best.py * best.px)) {
        best = t;
        best_cost = c;
      }
    }
  }
  return best;
}

/// The patch's row pitch in pixels for `op` with tile `t`: t.ic, or (`padded`: variants of math
/// 1) the least pitch from t.ic on at which an ldmatrix phase that wraps from one conv-output row
/// to the next steps over the same banks as one within a row (SH·pitch − CC·SW pixels a multiple
/// of 32 words): ResNet's stem tile, 17 outputs a row over 20 pixels, takes a pitch of 25, and a
/// host count of its ldmatrix phases goes from 1.44 wavefronts on average to 1.03.
[[nodiscard]] inline int patch_pitch(const OpDesc& op, const Tile& t, bool padded) {
  const ConvGeom& g = op.conv;
  const int words = odd_chunks(g.cp) / 2;  // 4-byte words a staged 16-slot pixel
  if (padded) {
    for (int icp = t.ic; icp < t.ic + 32; ++icp) {
      if ((((g.sh * icp - t.cc * g.sw) * words) % 32 + 32) % 32 == 0) {
        return icp;
      }
    }
  }
  return t.ic;
}
/// Bytes of one patch buffer with row pitch `icp` — the kernel's PATCH (`source`): the pixels
/// and a zero pixel, XS slots each; or the 12-slot patch's two copies (copy O at OOFF, one pixel
/// on). Tile::patch is this at pitch t.ic, 16 slots.
[[nodiscard]] inline std::int64_t patch_bytes(const OpDesc& op, const Tile& t, int icp, bool d12) {
  const std::int64_t pixels = std::int64_t{t.ir} * icp;
  if (!d12) {
    return (pixels + 1) * odd_chunks(op.conv.cp) * 2;
  }
  const std::int64_t ooff = ((pixels + 1) * 12 + 63) / 64 * 64 + 8;
  return (ooff + (pixels + 2) * 12 + 7) / 8 * 8 * 2;
}

/// How a patch read from the caller's input is staged (`source`, RAW): rows of its raw elements
/// — each channel plane's rows for C × H × W input, the pixel rows for H × W × C — copied with
/// cp.async in words of `wb` bytes (16, 8 or 4: the largest that divides a row's and an image's
/// bytes; then no word straddles a row's end) into shared memory, `nw` words a row, then
/// rearranged space-to-depth from there; `wb` = 0: no word size fits, each element is read from
/// global memory as it is rearranged.
struct RawStage {
  int es = 0;                ///< bytes of an input element
  int wb = 0;                ///< bytes a word (0: not staged)
  int rows = 0;              ///< rows staged a tile
  int nw = 0;                ///< words a row
  std::int64_t bytes = 0;    ///< shared memory for them
};
[[nodiscard]] inline RawStage raw_stage(const Tile& t, const RawInput& raw) {
  RawStage r;
  if (!raw.used || !raw.staged) {
    return r;
  }
  const Shape& s = raw.shape;
  r.es = raw.format == InputFormat::f32 ? 4 : raw.format == InputFormat::f16 ? 2 : 1;
  const std::int64_t pix = raw.hwc ? std::int64_t{s.c} * r.es : r.es;  // bytes a pixel a row
  const std::int64_t row = s.w * pix;
  const std::int64_t plane = raw.hwc ? 0 : std::int64_t{s.h} * row;
  const std::int64_t image = std::int64_t{s.c} * s.h * s.w * r.es;
  for (const int wb : {16, 8, 4}) {
    if (row % wb == 0 && image % wb == 0 && plane % wb == 0) {
      r.wb = wb;
      break;
    }
  }
  if (r.wb == 0) {
    return r;
  }
  r.rows = (raw.hwc ? 1 : s.c) * 2 * t.ir;
  r.nw = static_cast<int>((2 * t.ic * pix + r.wb - 1) / r.wb + 1);
  r.bytes = std::int64_t{r.rows} * r.nw * r.wb;
  return r;
}
/// `raw` as the kernel reads it for `op` with tile `t`: its rows staged where the block may have
/// their shared memory besides the rest (`shared`, its patch buffers included) on this device,
/// element by element otherwise.
[[nodiscard]] inline RawInput fitted(RawInput raw, const Tile& t, std::int64_t shared) {
  raw.staged = true;
  const std::int64_t bytes = raw_stage(t, raw).bytes;
  if (bytes > 0 && shared + bytes > std::max(max_shared, device_shared_optin())) {
    raw.staged = false;
  }
  return raw;
}

[[nodiscard]] inline std::string source(const OpDesc& op, bool pooled, const Tile& t,
                                        bool double_buffer = false, RawInput raw = {},
                                        bool wgmma = false, bool dense12 = false, int icp = 0,
                                        bool swap = false, bool pipelined = false) {
  const ConvGeom& g = op.conv;
  STRATA_CHECK(!dense12 || (wgmma && dense12_fits(op)),
               "tile_conv: the 12-slot patch is for a wgmma stem read space-to-depth from 3 channels");
  STRATA_CHECK(!swap || (dense12 && swap_geometry(op) && (icp == 0 || icp == t.ic)),
               "tile_conv: the swapped form is for a 12-slot stem of 4x4 taps and at most 64 "
               "channels, its patch rows unpadded");
  STRATA_CHECK(!pipelined || (swap && raw.used && raw_stage(t, raw).wb > 0),
               "tile_conv: the pipelined swapped form reads the caller's input staged");
  const Swap sw = swap ? swap_of(op, t, pipelined) : Swap{};
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  generated::open_kernel(o, op, pooled, "tile_conv",
                         "int batch, const void* __restrict__ raw, const float* __restrict__ affine",
                         2);  // 128 registers a thread
  constant("TPY", t.py);
  constant("TPX", t.px);
  constant("CR", t.cr);
  constant("CC", t.cc);
  constant("IR", t.ir);
  constant("IC", t.ic);
  constant("ICP", icp > 0 ? icp : t.ic);  // the patch's row pitch, pixels (patch_pitch)
  constant("M", t.m);
  constant("TAPS", g.kh * g.kw);
  // D12 (a 3-channel stem read space-to-depth, on wgmma): the patch holds each pixel's 12 real
  // slots densely, twice (see the file comment), and k runs over (tap row, tap column, slot):
  // SPT k-steps a tap row of KW · 12 slots.
  o << "  constexpr bool D12 = " << (dense12 ? "true" : "false") << ";\n";
  constant("C12", 12);
  constant("SPT", (g.kw * 12 + 15) / 16);
  constant("KSTEPS", dense12 ? g.kh * ((g.kw * 12 + 15) / 16) : ksteps(g));
  constant("NT", n_tiles(g));
  constant("XS", odd_chunks(g.cp));
  constant("WS", odd_chunks(16 * ksteps(g)));
  constant("CTS", odd_chunks(g.kp));
  constant("WROW", g.kh * g.kw * g.cp);  // filter elements per output channel
  o << "  constexpr bool DB = " << (double_buffer ? "true" : "false") << ";\n"
    << "  constexpr bool WG = " << (wgmma ? "true" : "false") << ";  // warpgroup MMA (sm_90a)\n";
  // SWAP (tile::swap_of): channels as wgmma's M, the tile's conv outputs in the patch's grid as
  // its N — NWG columns a warpgroup —, the patch as planes P0 and X of PLANE pixels.
  o << "  constexpr bool SWAP = " << (swap ? "true" : "false") << ";\n";
  if (pipelined) {  // (the constant only where it is true: other kernels' text as before)
    o << "  constexpr bool PIPE = true;  // a second pair of planes; the loop of swap_pipe\n";
  }
  constant("NWG", swap ? sw.nwg : 8);
  constant("PLANE", swap ? sw.plane : 0);
  // The caller's input, when the patch is read from it: C × H × W as declared, its strides, and
  // the conv's own padding (the space-to-depth blocks start at -padding).
  const Shape rs = raw.shape;
  const long long rpix = raw.hwc ? rs.c : 1;
  const long long rch = raw.hwc ? 1 : static_cast<long long>(rs.h) * rs.w;
  const RawStage st = raw_stage(t, raw);
  o << "  constexpr bool RAW_STAGED = " << (st.wb > 0 ? "true" : "false") << ";\n";
  constant("RWB", st.wb > 0 ? st.wb : 16);
  constant("RROWS", st.rows);
  constant("RNW", st.nw);
  constant("RES", st.es > 0 ? st.es : 4);
  o << "  constexpr bool RAW = " << (raw.used ? "true" : "false") << ";\n"
    << "  using Src = "
    << (raw.format == InputFormat::f16 ? "f16" : raw.format == InputFormat::u8_hwc ? "unsigned char" : "float")
    << ";\n";
  constant("RC", rs.c);
  constant("RH", rs.h);
  constant("RW", rs.w);
  constant("RPH", op.layer.padding.h);
  constant("RPW", op.layer.padding.w);
  o << "  constexpr long long RPIX = " << rpix << ", RCH = " << rch
    << ", RIMG = " << static_cast<long long>(rs.c) * rs.h * rs.w << ";\n";
  // The output's pixel and image strides: a dense map's, or the concat's that the slice is of.
  const kernels::PoolShape ps = kernels::conv_pool_shape(op, 0, g.kp, pooled);
  // POST_ACT: a max pool over a ReLU or ReLU6 takes the activation after the max (max commutes
  // with them, and rounding to 16 bits commutes with both: the same output bit for bit), so
  // the tile's conv outputs are stored with the bias only — one activation a pooled output
  // and 8 channels instead of one a conv output and channel.
  const bool post_act = post_activation(op, pooled);
  o << "  constexpr bool POST_ACT = " << (post_act ? "true" : "false") << ";\n"
    << "  constexpr bool POST_HI = " << (post_act && op.act.kind == Act::clip ? "true" : "false")
    << ";  // ReLU6: also the min with 6\n";
  o << "  constexpr long long YPIX = " << (op.slice ? op.slice->strides.pixel : g.kp) << ";\n"
    << "  constexpr long long YIMG = "
    << (op.slice ? op.slice->strides.image : std::int64_t{ps.oh} * ps.ow * g.kp) << ";\n";
  o << R"src(  constexpr int TY = (YH + TPY - 1) / TPY;
  constexpr int TX = (YW + TPX - 1) / TPX;
  constexpr int TILES = TY * TX;
  constexpr int MU = ((M + 15) / 16 + 1) / 2;  // warp units of 32 rows
  constexpr int NG = KP / 8 / NT;              // groups of NT n-tiles
  constexpr int UNITS = MU * NG;
  constexpr int XCH = CP / 8;                  // 16-byte chunks of a pixel
  constexpr int WCH = KP * WS / 8;             // 16-byte chunks of the staged filter
  constexpr int ZERO = IR * ICP;               // the zero pixel after the patch
  // D12: copy E holds pixel p at p·C12, copy O at OOFF + (p + 1)·C12 (so that a pixel of odd
  // index starts 16-byte aligned there, and its rows fall on other banks than copy E's).
  // (the host sizes shared memory by the same arithmetic: tile::patch_bytes)
  constexpr int OOFF = ((IR * ICP + 1) * C12 + 63) / 64 * 64 + 8;
  constexpr int PATCH_D12 = (OOFF + (IR * ICP + 2) * C12 + 7) / 8 * 8;
  // (SWAP: planes P0 then X, 8 elements a pixel)
  constexpr int PATCH = SWAP ? 2 * PLANE * 8 : D12 ? PATCH_D12 : (IR * ICP + 1) * XS;  // elements of a patch buffer
  // Where the patch's pixel p (row p / IC, column p % IC) is stored: rows ICP pixels apart.
  auto slot = [&](int p) { return ICP == IC ? p : p / IC * ICP + p % IC; };
  // SWAP: the filter as 64 channels' core matrices (channels past KP zero); the conv outputs in
  // the patch's grid, 2 · NWG of them, a conv output (cy, cx) at cy · CROW + cx.
  constexpr int WSZ = SWAP ? 64 * KSTEPS * 16 : KP * WS;
  constexpr int MROWS = SWAP ? 2 * NWG : M;
  constexpr int CROW = SWAP ? IC : CC;
  extern __shared__ __align__(16) unsigned char smem[];
  T* ws = reinterpret_cast<T*>(smem);  // filter rows, WS apart
  T* ct = ws + WSZ;                    // the tile's conv outputs, CTS apart
  T* xs0 = ct + MROWS * CTS;           // patch buffers: pixels XS apart, then a zero pixel
  // The staged raw rows (RAW_STAGED), after the patch buffer(s).
)src" << (pipelined ? "  unsigned char* rs = reinterpret_cast<unsigned char*>(xs0 + 2 * PATCH);  // (PIPE)"
                       : "  unsigned char* rs = reinterpret_cast<unsigned char*>(xs0 + (DB ? 2 : 1) * PATCH);")
    << R"src(
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  // BZ (wgmma, one group of n-tiles): this lane's bias values, read once — the same channels in
  // every unit its warp computes (else store_conv reads them at each store).
  constexpr bool BZ = WG && KP / 8 / NT == 1;
  float bz[NT][2];
#pragma unroll
  for (int n = 0; n < NT; ++n) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int k = n * 8 + (lane & 3) * 2 + j;
      bz[n][j] = BZ && k < K ? bias[k] : 0.0f;
    }
  }
  // The filter once per block (generated::stage_filter) — for wgmma as its core matrices,
  // within the same KP * WS elements — and the zero pixel.
  if constexpr (SWAP) {
    // wgmma's A: core matrices as stage_filter's for 64 channels, in the planes' k order — a tap
    // row's k-steps (taps 0 and 1, slots 0-7), (taps 2 and 3, slots 0-7), (slots 8-11 of taps
    // 0, 1, 2, 3).
)src" << swap_filter("threadIdx.x", 256) << R"src(    // the planes' slack (read by unread columns only) zero, once — before any thread's cp.async
    // of the first patch can land there (the barrier)
    for (int i = threadIdx.x; i < )src" << (pipelined ? "2 * " : "") << R"src(PATCH / 8; i += 256) {
      reinterpret_cast<uint4*>(xs0)[i] = make_uint4(0u, 0u, 0u, 0u);
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    __syncthreads();
  } else if constexpr (WG && D12) {
    // Core matrices as stage_filter's, k = (tap row, SPT·16 slots: tap column · 12 + slot).
    for (int i = threadIdx.x; i < KP * KSTEPS * 2; i += 256) {
      const int n = i / (KSTEPS * 2);
      const int c = i % (KSTEPS * 2);
      float v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int k = c * 8 + j;
        const int e = k % (SPT * 16);
        v[j] = e < KW * C12 ? load(w + n * WROW + ((k / (SPT * 16)) * KW + e / C12) * CP + e % C12) : 0.0f;
      }
      store8(ws + ((n >> 3) * KSTEPS * 2 + c) * 64 + (n & 7) * 8, v);
    }
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  } else if constexpr (WG) {
)src" << generated::stage_filter(true) << R"src(    // The filter's core matrices are read by the async proxy (wgmma).
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  } else {
)src" << generated::stage_filter(false) << R"src(  }
  for (int i = threadIdx.x; i < (D12 ? 0 : (DB ? 2 : 1) * (XS / 8)); i += 256) {
    reinterpret_cast<uint4*>(xs0 + (i / (XS / 8)) * PATCH + ZERO * XS)[i % (XS / 8)] =
        make_uint4(0u, 0u, 0u, 0u);
  }
  static_assert(!D12 || !RAW || RAW_STAGED, "the 12-slot patch reads the caller's input staged only");
  static_assert(!D12 || (WG && CP == 16 && C == 12 && SH == 1 && SW == 1), "D12: a wgmma stem over 3 channels space-to-depth");
  const long long total = static_cast<long long>(batch) * TILES;
  // The raw input's bytes a pixel within a row, a row, a channel plane (C × H × W input).
  constexpr long long RPIXB = (RPIX == 1 ? 1 : RC) * RES;
  constexpr long long RROWB = RW * RPIXB;
  constexpr long long RPLANEB = RPIX == 1 ? RH * RROWB : 0;
  // Where tile t's patch starts in the (space-to-depth) input, and its raw rows' first element.
  auto patch_y = [&](long long t) { return ((static_cast<int>(t % TILES) / TX) * TPY * PSH - PPH) * SH - PH; };
  auto patch_x = [&](long long t) { return ((static_cast<int>(t % TILES) % TX) * TPX * PSW - PPW) * SW - PW; };
  // The first raw word a staged row holds (the word of the patch's first element; floor).
  auto first_word = [&](int rx0) {
    const long long b0 = rx0 * RPIXB;
    return (b0 >= 0 ? b0 : b0 - (RWB - 1)) / RWB;
  };
  // Rearranges tile t's staged raw rows space-to-depth into the patch xs (RAW_STAGED), as
  // space_to_depth8 does (normalized; 0 outside the image and past the input's channels): a
  // thread a patch pixel, its CP slots unrolled (slot ch: channel ch/4, row ch/2%2, column ch%2
  // of the 2×2 block), so every address is the pixel's base plus a constant; the bounds checked
  // only where the tile's raw rows reach past the image.
  // (a space-to-depth input has fewer than 8 channels)
  float scale[8] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  float shift[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  if (RAW && affine != nullptr) {
#pragma unroll
    for (int ci = 0; ci < 8; ++ci) {
      if (ci < RC) {
        scale[ci] = affine[2 * ci];
        shift[ci] = affine[2 * ci + 1];
      }
    }
  }
  auto convert_patch = [&](long long t, T* xs) {
    if constexpr (RAW && RAW_STAGED) {  // (nothing compiled for other kernels)
      const int ry0 = 2 * patch_y(t) - RPH;
      const int rx0 = 2 * patch_x(t) - RPW;
      const int skew = static_cast<int>(rx0 * RPIXB - first_word(rx0) * RWB);  // in [0, RWB)
      const bool inside = ry0 >= 0 && ry0 + 2 * IR <= RH && rx0 >= 0 && rx0 + 2 * IC <= RW;
      constexpr int RSTRIDE = RNW * RWB;  // bytes a staged row
      for (int p = threadIdx.x; p < IR * IC; p += 256) {
        const int py = p / IC;
        const int px = p % IC;
        const unsigned char* base = rs + (2 * py) * RSTRIDE + skew + 2 * px * RPIXB;
        float v[CP];
        // A pixel whose 2x2 block is inside the image reads every slot unchecked (most of them:
        // the checked form only where the block crosses the image's edge).
        auto fill = [&](bool checked) {
#pragma unroll
          for (int ch = 0; ch < CP; ++ch) {
            const int ci = ch / 4;
            const int dy = (ch / 2) % 2;
            const int dx = ch % 2;
            v[ch] = 0.0f;
            if (ci < RC) {
              const int gy = ry0 + 2 * py + dy;
              const int gx = rx0 + 2 * px + dx;
              if (!checked || (gy >= 0 && gy < RH && gx >= 0 && gx < RW)) {
                const unsigned char* at = base + (RPIX == 1 ? ci * 2 * IR : 0) * RSTRIDE +
                                          dy * RSTRIDE + dx * RPIXB + (RPIX == 1 ? 0 : ci * RES);
                v[ch] = fmaf(load(reinterpret_cast<const Src*>(at)), scale[ci], shift[ci]);
              }
            }
          }
        };
        const int by = ry0 + 2 * py;
        const int bx = rx0 + 2 * px;
        if (inside || (by >= 0 && by + 1 < RH && bx >= 0 && bx + 1 < RW)) {
          fill(false);
        } else {
          fill(true);
        }
        if constexpr (SWAP) {
          // P0: slots 0-7; X: slots 8-11 here and, as the previous pixel's second half, there.
          float lo[8];
#pragma unroll
          for (int j = 0; j < 8; ++j) lo[j] = v[j];
          store8(xs + p * 8, lo);
          const uint2 u = make_uint2(pack2<T>(v[8], v[9]), pack2<T>(v[10], v[11]));
          *reinterpret_cast<uint2*>(xs + PLANE * 8 + p * 8) = u;
          if (p > 0) {
            *reinterpret_cast<uint2*>(xs + PLANE * 8 + (p - 1) * 8 + 4) = u;
          }
        } else if constexpr (D12) {
#pragma unroll
          for (int q = 0; q < C12 / 4; ++q) {
            const uint2 u = make_uint2(pack2<T>(v[4 * q], v[4 * q + 1]), pack2<T>(v[4 * q + 2], v[4 * q + 3]));
            *reinterpret_cast<uint2*>(xs + slot(p) * C12 + 4 * q) = u;
            *reinterpret_cast<uint2*>(xs + OOFF + (slot(p) + 1) * C12 + 4 * q) = u;
          }
        } else {
#pragma unroll
          for (int c8 = 0; c8 < CP; c8 += 8) {
            float w8[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) w8[j] = v[c8 + j];
            store8(xs + slot(p) * XS + c8, w8);
          }
        }
      }
    }
  };
  // Copies the input patch of tile `t` into `xs` (zero outside the image), one cp.async group;
  // RAW_STAGED: its raw rows into rs instead (convert_patch rearranges them).
  auto load_patch = [&](long long t, T* xs) {
    const int img = static_cast<int>(t / TILES);
    const int iy0 = patch_y(t);
    const int ix0 = patch_x(t);
    if constexpr (RAW && RAW_STAGED) {
      const int ry0 = 2 * iy0 - RPH;
      const long long w0 = first_word(2 * ix0 - RPW);
      const unsigned char* ri = static_cast<const unsigned char*>(raw) + img * (RIMG * RES);
      for (int i = threadIdx.x; i < RROWS * RNW; i += 256) {
        const int row = i / RNW;
        const int gy = ry0 + row % (2 * IR);
        const long long w = w0 + i % RNW;
        const bool in = gy >= 0 && gy < RH && w >= 0 && w < RROWB / RWB;
        const unsigned char* src = ri + (RPIX == 1 ? (row / (2 * IR)) * RPLANEB : 0) + gy * RROWB + w * RWB;
        cp_async<RWB>(rs + i * RWB, in ? src : ri, in);
      }
      cp_async_commit();
    } else if constexpr (RAW) {
      // Space-to-depth from the caller's input, as the input step's kernel does it (a block
      // outside the stored map is 0).
      const Src* ri = static_cast<const Src*>(raw) + img * RIMG;
      for (int i = threadIdx.x; i < IR * IC * XCH; i += 256) {
        const int p = i / XCH;
        const int gy = iy0 + p / IC;
        const int gx = ix0 + p % IC;
        float v[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        if (gy >= 0 && gy < H && gx >= 0 && gx < W) {
          space_to_depth8(ri, Strides{RIMG, RPIX, RCH}, RC, RH, RW, RPH, RPW, gy, gx,
                          (i % XCH) * 8, affine, v);
        }
        store8(xs + slot(p) * XS + (i % XCH) * 8, v);
      }
    } else {
      const T* xi = x + static_cast<long long>(img) * H * W * CP;
      if constexpr (SWAP) {
        // A pixel's slots 0-7 into P0, 8-11 into X (twice: its own entry and the previous one's).
        for (int p = threadIdx.x; p < IR * IC; p += 256) {
          const int gy = iy0 + p / IC;
          const int gx = ix0 + p % IC;
          const bool in = gy >= 0 && gy < H && gx >= 0 && gx < W;
          const T* src = in ? xi + (static_cast<long long>(gy) * W + gx) * CP : x;
          cp_async<16>(xs + p * 8, src, in);
          cp_async<8>(xs + PLANE * 8 + p * 8, in ? src + 8 : x, in);
          if (p > 0) {
            cp_async<8>(xs + PLANE * 8 + (p - 1) * 8 + 4, in ? src + 8 : x, in);
          }
        }
      } else if constexpr (D12) {
        // A pixel's 12 real slots as three 8-byte pieces, into both copies.
        for (int i = threadIdx.x; i < IR * IC * (C12 / 4); i += 256) {
          const int p = i / (C12 / 4);
          const int q = i % (C12 / 4);
          const int gy = iy0 + p / IC;
          const int gx = ix0 + p % IC;
          const bool in = gy >= 0 && gy < H && gx >= 0 && gx < W;
          const T* src = in ? xi + (static_cast<long long>(gy) * W + gx) * CP + 4 * q : x;
          cp_async<8>(xs + slot(p) * C12 + 4 * q, src, in);
          cp_async<8>(xs + OOFF + (slot(p) + 1) * C12 + 4 * q, src, in);
        }
      } else {
        for (int i = threadIdx.x; i < IR * IC * XCH; i += 256) {
          const int p = i / XCH;
          const int gy = iy0 + p / IC;
          const int gx = ix0 + p % IC;
          const bool in = gy >= 0 && gy < H && gx >= 0 && gx < W;
          cp_async16(xs + slot(p) * XS + (i % XCH) * 8,
                     in ? xi + (static_cast<long long>(gy) * W + gx) * CP + (i % XCH) * 8 : x, in);
        }
      }
      cp_async_commit();
    }
  };
  if (blockIdx.x < total) {
    load_patch(blockIdx.x, xs0);
  }
)src";
  if (pipelined) {  // its own tile loop (swap_pipe) instead of the one below
    o << swap_pipe(sw.nwg / 8);
  } else {
    o << R"src(  int buf = 0;  // the patch buffer of tile t
  for (long long t = blockIdx.x; t < total; t += gridDim.x, buf ^= (DB ? 1 : 0)) {
    const T* xs = xs0 + buf * PATCH;
    cp_async_wait<0>();
    if constexpr (SWAP && !(RAW && RAW_STAGED)) {
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // the planes, read by wgmma
    }
    // The patch is in; the previous tile's pooling no longer reads ct, its GEMM no longer the
    // other buffer.
    __syncthreads();
    if constexpr (RAW && RAW_STAGED) {
      convert_patch(t, const_cast<T*>(xs));  // from the staged raw rows
      if constexpr (SWAP) {
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
      }
      __syncthreads();
    }
    // EARLY: the next tile's raw rows go into their own buffer (rs), free once convert_patch has
    // read them — so they are copied in during this tile's GEMM and pooling, not its pooling only.
    constexpr bool EARLY = RAW && RAW_STAGED;
    if ((DB || EARLY) && t + gridDim.x < total) {
      load_patch(t + gridDim.x, xs0 + (DB ? (buf ^ 1) * PATCH : 0));  // in flight during this GEMM
    }
    // The patch pixel of the GEMM row whose address this lane gives to ldmatrix for A in m-tile
    // mt: row lane%8 of matrix lane/8 (matrices: rows 0-7 / 8-15 x k 0-7 / 8-15).
    auto a_pixel = [&](int mt) {
      int r = mt * 16 + (lane & 7) + 8 * ((lane >> 3) & 1);
      r = r < M ? r : 0;
      return (r / CC) * SH * ICP + (r % CC) * SW;
    };
    const int akh = (lane >> 4) * 8;  // this lane's k-half for A
    const unsigned xsa = shared_address(xs);  // the patch's 32-bit shared address
    // Where this lane's ldmatrix reads A at k-step s for the row at patch pixel pb (a 32-bit
    // shared address): its k (tap and channel; with slots in 16s a k-step is one tap, known
    // here), or the zero pixel.
    auto a_address = [&](int pb, int s) -> unsigned {
      if constexpr (D12) {
        // k-step s: tap row s / SPT, slots (s % SPT)·16 + akh.. of that row's run of KW pixels
        // from patch pixel p — read from the copy where p starts 16-byte aligned.
        const int p = pb + (s / SPT) * DH * ICP;
        return xsa + 2u * static_cast<unsigned>(((p & 1) != 0 ? OOFF + (p + 1) * C12 : p * C12) + (s % SPT) * 16 + akh);
      }
      const int k = 16 * s + akh;
      const int tap = CP % 16 == 0 ? 16 * s / CP : k / CP;
      const int c = CP % 16 == 0 ? 16 * s % CP + akh : k % CP;
      const int off = (tap / KW) * DH * ICP + (tap % KW) * DW;
      return xsa + 2u * static_cast<unsigned>(tap < TAPS ? (pb + off) * XS + c : ZERO * XS);
    };
    // Stores m-tile mt's accumulators of n-tiles n0.. (acc[n][i]: row lane/4 + 8·(i/2),
    // channel (n0 + n)·8 + 2·(lane%4) + i%2) into the tile's conv outputs, bias and activation
    // applied, as the op stores its output (channels past K as 0; POST_ACT: the bias only).
    auto store_conv = [&](const float (&acc)[NT][4], int mt, int n0) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = mt * 16 + (lane >> 2) + 8 * h;
        if (r < M) {
#pragma unroll
          for (int n = 0; n < NT; ++n) {
            const int k = (n0 + n) * 8 + (lane & 3) * 2;
            float v[2];
#pragma unroll
            for (int j = 0; j < 2; ++j) {
              const float b = BZ ? bz[n][j] : bias[k + j];
              v[j] = K == KP || k + j < K ? (POST_ACT ? acc[n][2 * h + j] + b
                                                      : activate(act, acc[n][2 * h + j] + b))
                                          : 0.0f;
            }
            *reinterpret_cast<unsigned*>(ct + r * CTS + k) = pack2<T>(v[0], v[1]);
          }
        }
      }
    };
)src" << wgmma_gemm(n_tiles(g))
    << (swap ? swap_inline(sw.nwg / 8) : std::string()) << R"src(    for (int u = WG ? UNITS : warp; u < UNITS; u += 8) {
      const int mu = u / NG;
      const int n0 = (u % NG) * NT;  // first n-tile
      const int pb[2] = {a_pixel(2 * mu), a_pixel(2 * mu + 1)};
      // For B: row lane%8 (an output channel) of matrix lane/8 (n-tile +lane/16, k-half lane/8%2).
      const unsigned brow =
          shared_address(ws) + 2u * static_cast<unsigned>(((n0 + (lane >> 4)) * 8 + (lane & 7)) * WS + ((lane >> 3) & 1) * 8);
      float acc[2][NT][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
#pragma unroll
        for (int n = 0; n < NT; ++n) {
#pragma unroll
          for (int i = 0; i < 4; ++i) acc[mi][n][i] = 0.0f;
        }
      }
      // Each k-step loads all its fragments (two A, NT B), then issues its mma: the loads are in
      // flight together rather than each waiting on the one before. Unrolled by 2: the next
      // k-step's loads overlap this one's mma within 128 registers (fully unrolled, ptxas wants
      // 190 and spills at 128).
#pragma unroll 2
      for (int s = 0; s < KSTEPS; ++s) {
        unsigned a[2][4];
        unsigned b[NT][2];
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
          ldsm4_at(a[mi][0], a[mi][1], a[mi][2], a[mi][3], a_address(pb[mi], s));
        }
#pragma unroll
        for (int n = 0; n < NT; n += 2) {
          if (n + 1 < NT) {
            ldsm4_at(b[n][0], b[n][1], b[n + 1][0], b[n + 1][1], brow + 2u * (n * 8 * WS + 16 * s));
          } else {
            ldsm2_at(b[n][0], b[n][1], brow + 2u * (n * 8 * WS + 16 * s));
          }
        }
#pragma unroll
        for (int n = 0; n < NT; ++n) {
#pragma unroll
          for (int mi = 0; mi < 2; ++mi) {
            mma_16816<T>(acc[mi][n], a[mi][0], a[mi][1], a[mi][2], a[mi][3], b[n][0], b[n][1]);
          }
        }
      }
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        store_conv(acc[mi], 2 * mu + mi, n0);
      }
    }
    __syncthreads();  // ct holds the tile's conv outputs; xs is free
    const int img = static_cast<int>(t / TILES);
    const int tile = static_cast<int>(t % TILES);
    if (!DB && !EARLY && t + gridDim.x < total) {
      load_patch(t + gridDim.x, xs0);  // in flight while this tile is pooled
    }
)src" << pool_loop() << "  }\n";
  }
  o << R"src(}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace tile

template <DType P>
class TileConv final : public generated::PoolingKernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "tile_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && tile::fits(op);
  }
  [[nodiscard]] bool writes_slice(const OpDesc& op) const override { return tile::writes_slice(op); }
  /// Timed on first convs only — read space-to-depth, or of at most 16 input slots. On an H200
  /// it lost everywhere else it was timed, by 1.6-5.8x (ResNet-18's 3x3 64->64: 716 µs against
  /// cuDNN's 124; its 1x1 downsample 107 against cuBLASLt's 66; MNIST's 3x3 32->64 + pool 229
  /// against 123); offered on every conv it fits, DenseNet-121's measured tuning (a compile per
  /// shape) did not finish in 100 s.
  [[nodiscard]] bool timed(const OpDesc& op, int) const override {
    return op.conv.s2d || op.conv.cp <= 16;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries&) const override {
    // Variants: fuse = 1 pools in the kernel; algo = 1 double-buffers the patch, where the
    // device lets a block have the second buffer; algo = 2 (a first conv read space-to-depth)
    // stages the patch from the caller's input itself, so the network needs no input step;
    // algo = 3, 4, 5: the same three on wgmma, on a GPU that runs it (sm_90a).
    std::vector<Variant> v;
    if (!generated::mma_sync_device()) {
      return v;
    }
    const std::int64_t optin = tile::device_shared_optin();
    const bool wgmma = device_arch() == 90;
    for (const bool pooled : {true, false}) {
      if ((pooled && !op.pool) || !tile::fits(op, pooled)) {
        continue;
      }
      const int fuse = pooled ? 1 : 0;
      const tile::Tile t = tile::choose(op, pooled);
      for (const int wg : {0, 3}) {
        if (wg != 0 && !wgmma) {
          continue;
        }
        v.push_back(Variant{std::string(name()), wg, 0, fuse});
        if (t.shared + t.patch <= optin) {
          v.push_back(Variant{std::string(name()), wg == 0 ? 1 : 5, 0, fuse});
        }
        if (op.conv.s2d) {
          // reads the caller's input, space-to-depth as it stages the patch
          v.push_back(Variant{std::string(name()), wg == 0 ? 2 : 4, 0, fuse});
        }
      }
      if (op.conv.s2d && batch <= tile::small_batch) {
        // a stem at a small batch: tiles for one image on this GPU (math 2), from the input
        // step's map and from the caller's input
        for (const int wg : {0, 3}) {
          if (wg == 0 || wgmma) {
            v.push_back(Variant{std::string(name()), wg, tile::math_small, fuse});
            v.push_back(Variant{std::string(name()), wg == 0 ? 2 : 4, tile::math_small, fuse});
          }
        }
      }
      if (wgmma && tile::dense12_fits(op)) {
        // the 12-slot patch with padded rows (math 1): from the input step's map, and from the
        // caller's input itself (staged)
        v.push_back(Variant{std::string(name()), 6, 1, fuse});
        // (In bf16 too since session 54: withdrawn in session 33 after a forced check gave 0.043
        // against the CPU on a DenseNet-style stem, every stem form gives that net the same
        // error — H100, session 54 —, and algo 7 equals algo 6 to the bit in bf16 there.)
        v.push_back(Variant{std::string(name()), 7, 1, fuse});
      }
      if (wgmma && tile::choose_swap(op, pooled).py > 0) {
        // the swapped form (pixels as wgmma's N): from the input step's map, and from the
        // caller's input (in bf16 too since session 55, its bf16 form equal to algo 8's to the
        // bit on the GPU)
        v.push_back(Variant{std::string(name()), 8, 0, fuse});
        v.push_back(Variant{std::string(name()), 9, 0, fuse});
      }
    }
    return v;
  }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t ws,
                                               const Libraries& lib) const override {
    const std::vector<Variant> v = candidates(op, batch, ws, lib);
    if (v.empty()) {
      return std::nullopt;
    }
    Claim c;
    // A space-to-depth stem, with its pool (ResNet's) or not (MobileNetV2's, EfficientNet's 3x3/2),
    // ahead of cuDNN's conv (+ the pool kernel) at every batch: at 256, which gives tiles for
    // every SM many times over, it beat them on an H200 (docs/cuda_backend.md); at batch 1 (56
    // tiles) the mma.sync form reading the caller's input ran ResNet-18's stem in 8 µs against
    // cuDNN's 17 + 3 µs of input step (H200, session 18), MobileNetV2's in 7.9 against cuDNN's
    // 11.4 (session 22's measured trials, which at batch 256 gave the wgmma form 215 µs and
    // cuDNN's best 410, each with the input step). Also where the stem writes a concat's slice
    // itself (DenseNet's, which cuDNN's conv + the pool kernel write through a copy): at batch
    // 256 DenseNet-121's stem took 313 µs on algo 7 math 1 against 914 µs for cuDNN's conv, the
    // pool and the copy, + 83 µs of input step; the forward 9,062 µs against 9,751 (H200,
    // session 33, outputs within 2.0e-4, argmax equal).
    const int fuse = v.front().fuse;  // (pooled variants come first)
    const bool claim = op.conv.s2d;  // (one writing a slice is offered only where it writes it)
    c.rank = claim ? rank::special : claim_rank();
    const bool big = static_cast<long long>(batch) * tile::choose(op, fuse != 0).tiles >=
                     tile::claim_tiles;
    // From 1,024 tiles on sm_90a: a 3-channel stem whose taps fill the 12-slot patch takes algo
    // 7 with padded patch rows, which reads the caller's input itself (ResNet-18's stem at batch
    // 256: 352 µs and no input step, against algo 3's 319 µs + 83 µs of input step; H200,
    // session 18; where the input cannot be staged, algo 7 reads the input step's map), else the
    // wgmma form (algo 3: 316 µs against the mma.sync form's 411, session 17) — for an unpooled
    // stem algo 4 below since session 62. Below that, and off sm_90a, the mma.sync form reading
    // the caller's input (algo 2) for a stem.
    auto offered = [&](int algo, int math) {
      return std::find(v.begin(), v.end(), Variant{std::string(name()), algo, math, fuse});
    };
    // (Other convs, claimed below every other tactic: the wgmma form where it is offered.)
    // From 1,024 tiles, ahead of algo 7: the swapped form reading the caller's input (algo 9) —
    // ResNet-18's stem at batch 256 on an H100 (session 54, heuristic plan, alternating runs on
    // two leases): 263.5 µs against algo 7's 300.7, R2 2,054-2,065 -> 2,012-2,028 µs; outputs
    // 2.6e-4 apart on ResNet-18 (argmax equal), observed equal to the bit on a 224x224 stem of
    // 16 channels (the sums' order differs, so not in general). DenseNet-121's stem (the same
    // shapes, writing its concat slice) takes it too; not yet timed there.
    const auto swapped = offered(9, 0);
    const auto d12 = offered(7, 1);
    const auto wg = offered(3, 0);
    const auto raw = offered(2, 0);
    // From 1,024 tiles, a stem without its pool in the kernel (fuse 0: MobileNetV2's and
    // EfficientNet's 3x3/2, or a pooled stem whose pooled form does not fit) where neither of
    // those two fits: the wgmma form reading the caller's input (algo 4), ahead of algo 3 after
    // the input step — MobileNetV2 at batch 256 on an H100 (session 62, heuristic plan, the stem
    // forced, whole forward median): 2,869.8 -> 2,843.9 µs, the stem 202.3 µs against the input
    // step's 99.1 + algo 3's 127.7; algo 2 (mma.sync) 2,852.9, algo 5 2,908.0. Timed at batch 256
    // on the H100 only (EfficientNet-B0's stem read 200.9 µs claimed, not compared); on an H200
    // in session 22, with the kernels of then, algo 3 and its input step had won (215 against
    // 224-229 µs) — not timed there since.
    const auto raw_wg = offered(4, 0);
    // An unpooled stem at batches <= tile::small_batch: tiles for one image on this GPU's SMs
    // (math 2), reading the caller's input, on wgmma where the GPU has it (algo 4), else mma.sync
    // (algo 2) — ahead of generated_conv's claim (rank::tailored - 1), which ran these stems
    // before. H200, session 30, whole forward (f16, heuristic, stem forced), µs: EfficientNet-B0
    // b1 317.0 -> 307.8 (stem 11.9 + 3.1 input step -> 5.1), b2 372.7 -> 354.5, b4 401.5 -> 399.3;
    // MobileNetV2 b1 176.8 -> 167.9, b2 202.6 -> 184.9, b4 219.4 -> 217.8. Algo 2 math 2 ran
    // within 0.3 µs of algo 4; the forms reading the input step's map (algos 0, 3) 1.5-2 µs
    // behind.
    auto small = offered(4, tile::math_small);
    if (small == v.end()) {
      small = offered(2, tile::math_small);
    }
    if (claim && fuse == 0 && batch <= tile::small_batch && small != v.end()) {
      c.variant = *small;
      c.rank = rank::tailored - 2;
    } else if (claim && big && swapped != v.end()) {
      c.variant = *swapped;
    } else if (claim && big && d12 != v.end()) {
      c.variant = *d12;
    } else if (claim && big && fuse == 0 && raw_wg != v.end()) {
      c.variant = *raw_wg;
    } else if (claim && !(big && wg != v.end()) && raw != v.end()) {
      c.variant = *raw;
    } else if (wg != v.end()) {
      c.variant = *wg;
    } else {
      c.variant = v.front();
    }
    return c;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const bool pooled = this->pools(v, op);
    const tile::Tile t = tile_of(op, pooled, v);
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const tile::Form f = tile::form_of(v.algo);
    const bool wg = f.wg;
    const bool db = f.db;
    const Sizes z = sizes(op, v, io, t);
    const tile::RawInput& raw = z.raw;
    const generated::Launch l = generated::persistent_launch(
        k, generated::device_sms(), 256, static_cast<std::size_t>(z.shared),
        static_cast<long long>(batch) * t.tiles);
    std::ostringstream how;
    how << (wg ? "wgmma" : "mma.sync") << ", tiles of " << t.py << "x" << t.px
        << (pooled ? " pooled" : "")
        << " outputs" << (db ? ", patch double-buffered" : "") << (f.d12 ? ", 12-slot patch" : "")
        << ((v.math & tile::math_small) != 0 ? " (sized for a small batch)" : "")
        << ((v.math & tile::math_padded) != 0 ? ", patch rows " + std::to_string(tile::patch_pitch(op, t, true)) + " pixels apart" : "")
        << (f.swap ? ", pixels as wgmma's N (" + std::to_string(tile::swap_of(op, t).nwg) + " a warpgroup)" : "")
        << (v.math == tile::math_pipelined ? ", pipelined" : "")
        << ", shapes compiled in; "
        << (raw.used ? "reads the caller's input" : "");
    if (raw.used) {
      const tile::RawStage st = tile::raw_stage(t, raw);
      how << (st.wb > 0 ? " (staged in " + std::to_string(st.wb) + "-byte words); " : " (element by element); ");
    }
    return std::make_unique<TileStep>(op, w, io, batch, l, pooled, k, how.str(),
                                      raw.used ? io.net_input : nullptr,
                                      raw.used ? io.net_input_affine : nullptr);
  }

 protected:
  /// Elsewhere than a pooled space-to-depth stem, below every other tactic's claim: measured
  /// tuning times it against cuDNN.
  [[nodiscard]] int claim_rank() const override { return rank::fallback + 2; }

 private:
  /// The kernel variant `v` compiles for `op` on buffers `io`, checked: a form that fits the op,
  /// an algo this tactic has, wgmma only on a GPU that runs it, the caller's input only where
  /// the op reads it space-to-depth, the second patch buffer only where the device allows it.
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo& io) const override {
    const bool pooled = this->pools(v, op);
    const bool pipelined = v.math == tile::math_pipelined;
    STRATA_CHECK(v.math >= 0 && (v.math <= (tile::math_padded | tile::math_small) || (pipelined && v.algo == 9)),
                 "cuda::Engine: layer '" << op.label << "': tile_conv has no math " << v.math
                                         << (v.math == tile::math_pipelined ? " for algo " + std::to_string(v.algo) : std::string())
                                         << " (bits: 1, patch rows padded; 2, tiles for a small "
                                            "batch; 4 alone, algo 9 pipelined)");
    // (the swapped form's own conditions first: its tile is none where they fail)
    STRATA_CHECK(!tile::form_of(v.algo).swap || ((v.math == 0 || pipelined) && tile::swap_geometry(op)),
                 "cuda::Engine: layer '" << op.label << "': tile_conv algo " << v.algo
                                         << " (pixels as wgmma's N) is for a 3-channel stem of "
                                            "4x4 taps space-to-depth (a 7x7/2 conv) with at most "
                                            "64 output channels, math 0 (or 4 for algo 9)");
    const tile::Tile t = tile_of(op, pooled, v);
    STRATA_CHECK(t.py > 0 && tile::fits(op, pooled),
                 "cuda::Engine: layer '" << op.label << "': tile_conv cannot run it"
                                         << (pooled ? " with its pool" : ""));
    STRATA_CHECK(v.algo >= 0 && v.algo <= tile::last_algo,
                 "cuda::Engine: layer '" << op.label << "': tile_conv has no algo " << v.algo
                                         << " (0 to " << tile::last_algo << ")");
    const tile::Form f = tile::form_of(v.algo);
    STRATA_CHECK(!f.wg || device_arch() == 90,
                 "cuda::Engine: layer '" << op.label << "': tile_conv algo " << v.algo
                                         << " (wgmma) needs a GPU of compute capability 9.0 "
                                            "(sm_90a), and this device is not one");
    STRATA_CHECK(!f.d12 || tile::dense12_fits(op),
                 "cuda::Engine: layer '" << op.label << "': tile_conv algo " << v.algo
                                         << " (the 12-slot patch) is for a stem read "
                                            "space-to-depth from 3 channels");
    const Sizes z = sizes(op, v, io, t);
    STRATA_CHECK(!pipelined || (z.raw.used && tile::raw_stage(t, z.raw).wb > 0),
                 "cuda::Engine: layer '" << op.label << "': tile_conv algo 9 math 4 (pipelined) "
                                            "reads the caller's input staged in shared memory, "
                                            "and this input cannot be (its rows' bytes, or the "
                                            "block's shared memory)");
    STRATA_CHECK(!z.raw.used || (op.conv.s2d && io.net_input != nullptr),
                 "cuda::Engine: layer '" << op.label << "': tile_conv reads the caller's input "
                                            "only in a first conv read space-to-depth");
    STRATA_CHECK(z.shared <= tile::max_shared || z.shared <= tile::device_shared_optin(),
                 "cuda::Engine: layer '" << op.label << "': tile_conv algo " << v.algo << " needs "
                                         << z.shared << " bytes of shared memory a block, more than "
                                            "this GPU allows");
    // (an unused input's format and shape stay out of the source: one program for every input)
    KernelSource ks = this->named(tile::source(op, pooled, t, f.db, z.raw.used ? z.raw : tile::RawInput{},
                                               f.wg, f.d12, tile::patch_pitch(op, t, (v.math & tile::math_padded) != 0),
                                               f.swap, pipelined));
    ks.arch_specific = f.wg;
    return ks;
  }
  /// The tile variant `v` runs `op` with (`pooled`: with its fused pool): choose()'s, or with
  /// tile::math_small the one for a single image on this GPU's SMs.
  [[nodiscard]] static tile::Tile tile_of(const OpDesc& op, bool pooled, const Variant& v) {
    if (tile::form_of(v.algo).swap) {
      return tile::choose_swap(op, pooled);
    }
    return (v.math & tile::math_small) != 0
               ? tile::choose_for(op, pooled, 1, generated::device_sms().sms)
               : tile::choose(op, pooled);
  }
  /// The caller's input as variant `v` reads it, and the block's shared memory.
  struct Sizes {
    tile::RawInput raw;
    std::int64_t shared = 0;
  };
  [[nodiscard]] static Sizes sizes(const OpDesc& op, const Variant& v, const OpIo& io, const tile::Tile& t) {
    const tile::Form f = tile::form_of(v.algo);
    // (t.shared holds one 16-slot patch at pitch t.ic: the buffers this form has instead)
    const std::int64_t patches =
        f.swap ? tile::swap_of(op, t, v.math == tile::math_pipelined).shared
               : t.shared - t.patch +
                     (f.db ? 2 : 1) * tile::patch_bytes(op, t, tile::patch_pitch(op, t, (v.math & tile::math_padded) != 0), f.d12);
    Sizes z;
    z.raw = tile::fitted({f.raw, io.net_input_format, io.net_input_hwc, io.net_input_shape}, t, patches);
    if (f.d12 && z.raw.used && tile::raw_stage(t, z.raw).wb == 0) {
      // the 12-slot patch reads the caller's input only staged: else the input step's map
      // (algo 6's kernel; the step then does not read the network's input)
      z.raw = tile::RawInput{};
    }
    z.shared = patches + tile::raw_stage(t, z.raw).bytes;
    return z;
  }
  class TileStep final : public generated::KernelStep<T> {
   public:
    TileStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch,
             generated::Launch launch, bool pooled, cudaKernel_t k, const std::string& how,
             const void* raw, const float* affine)
        : generated::KernelStep<T>(op, w, io, launch, pooled, k, "tiled tensor-core conv",
                                   how.c_str()),
          batch_(batch), raw_(raw), affine_(affine) {}
    void launch(cudaStream_t s, void*, std::size_t) override {
      this->run(s, batch_, raw_, affine_);
    }
    [[nodiscard]] bool reads_network_input() const override { return raw_ != nullptr; }

   private:
    int batch_ = 1;
    const void* raw_ = nullptr;       ///< the caller's input, when this step reads it
    const float* affine_ = nullptr;   ///< its normalization, or null
  };
};

}  // namespace strata::cuda::tactics
