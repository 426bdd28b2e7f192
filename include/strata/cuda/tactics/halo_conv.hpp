#pragma once
/// Tactic `halo_conv`: a 16-bit NHWC convolution of stride 1 whose output keeps its input's size
/// (odd kernel, padding (k − 1) / 2: DenseNet's 3×3 convs of 128 channels into 32) with few
/// output channels (at most 64), as an implicit GEMM on tensor cores in a kernel generated for
/// the op, writing its result straight into a concat's slice where it is one (16-byte aligned).
///
/// Persistent blocks of 8 warps, one an SM. The whole filter (taps × output channels × input
/// slots) is copied into shared memory once a block. A tile is G images × TR rows of the map at
/// full width; the block streams its tiles' input "halos" (the tile's rows and the rows and
/// columns around them that its taps read, zeros outside the map) through a ring of STAGES
/// buffers by cp.async, 32 channels at a time, so the copy of the next chunk — of this tile or
/// the next — runs while the tensor cores work on this one. Each warp computes m-tiles of 16
/// output pixels (warp w: w, w + 8, ...) × every output channel: per tap and 16-channel step one
/// ldmatrix per m-tile from the halo (a pixel's position plus the tap's offset) and two per pair
/// of n-tiles from the filter, mma.sync m16n8k16 with f32 accumulation. After a tile's last
/// chunk the epilogue adds the bias, applies the activation and stores channel pairs through
/// the output's (or the concat's) pixel and image strides.
///
/// Algo 2 (claimed since session 36) keeps the tiles, ring and filter but gives each warp 8 × 8
/// outputs and reads each halo row segment once for the taps of its column (namespace halo::seg);
/// math 1 runs algo 0 in blocks of 16 warps (measured tuning only).
///
/// Algo 1 (sm_90a) is the same on Hopper's warpgroup MMA, both operands read from shared memory
/// (namespace halo::wg): correct, and no faster on DenseNet-121 (H200, session 33), so offered to
/// measured tuning only.
///
/// Why: DenseNet-121's 58 bias-free 3×3 convs (128 → 32 channels) took 3,335 of its 10,714 µs at
/// batch 256 on an H200 (session 31) as cuDNN's conv into a staging area plus a copy into the
/// concatenation; at 32 output channels an implicit GEMM gathering each tap from memory reads
/// the input nine times, and cuDNN writes no slice.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/device.hpp"
#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"

namespace strata::cuda::tactics {

namespace halo {

inline constexpr int threads = 256;
inline constexpr int warps = threads / 32;
/// The wide form (algo 0, math 1): 16 warps a block, four a scheduler instead of two, to hide
/// the ldmatrix → mma latencies that one block of 8 warps an SM leaves exposed; the same filter
/// in shared memory, the same tiles where they divide as well (at most 128 registers a thread).
inline constexpr int wide_math = 1;
[[nodiscard]] inline int threads_of(int math) { return math == wide_math ? 2 * threads : threads; }
inline constexpr int chunk = 32;   ///< input slots a pipeline step
inline constexpr int hpitch = 40;  ///< elements a halo pixel takes (chunk + 8: 80 bytes)
inline constexpr int stages = 3;
/// Shared memory a block may take: the current device's opt-in (227 KiB on the H100 and H200,
/// 163 on the A100), or 227 KiB where no device answers (an engine cannot be built there).
inline constexpr std::int64_t max_shared = generated::hopper_max_shared;
[[nodiscard]] inline std::int64_t shared_budget() {
  return kernels::device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin).value_or(max_shared);
}

/// A tile shape for one op: G images × TR rows at full width, and what it takes.
struct Tile {
  int g = 0;        ///< images a tile
  int tr = 0;       ///< output rows a tile (of each image)
  int mt = 0;       ///< m-tiles of 16 output pixels
  int per_warp = 0; ///< m-tiles a warp at most
  int warps = 0;    ///< warps a block
  int hr = 0, hc = 0;  ///< the halo's rows (all G images) and columns
  std::int64_t shared = 0;  ///< bytes: the filter, then the ring
};

/// Tiles of `g` images × `tr` rows a batch takes on a map of `oh` rows (0 where no tile fits: tr 0).
[[nodiscard]] inline long long tile_count(int g, int tr, int oh, int batch) {
  return tr == 0 ? 0 : (std::int64_t{batch} + g - 1) / g * ((oh + tr - 1) / tr);
}

/// Filter row pitch (elements): the input slots padded to whole chunks, + 8 (an odd number of
/// 16-byte chunks, so that the 8 rows an ldmatrix reads fall in 8 bank groups).
[[nodiscard]] inline int filter_pitch(const ConvGeom& g) { return (g.cp + chunk - 1) / chunk * chunk + 8; }

[[nodiscard]] inline Tile make(const ConvGeom& c, int g, int tr, int nw = warps) {
  Tile t;
  t.g = g;
  t.tr = tr;
  t.warps = nw;
  t.mt = (g * tr * c.ow + 15) / 16;
  t.per_warp = (t.mt + nw - 1) / nw;
  t.hr = g * (tr + c.kh - 1);
  t.hc = c.ow + c.kw - 1;
  t.shared = std::int64_t{c.kh} * c.kw * c.kp * filter_pitch(c) * 2 +
             std::int64_t{stages} * t.hr * t.hc * hpitch * 2;
  return t;
}

/// Whether `op`'s shape is one the kernel computes (before the tile): a conv of stride 1 and
/// dilation 1 whose map keeps its size, one group, channel slots in 8s read as stored, 8 output
/// slots or up to 64 in 16s (n-tile pairs), nothing folded into it but its bias and activation.
[[nodiscard]] inline bool shape_fits(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return gemm_conv(op) && !g.s2d && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.kh % 2 == 1 && g.kw % 2 == 1 && g.kh <= 7 && g.kw <= 7 && g.ph == (g.kh - 1) / 2 &&
         g.pw == (g.kw - 1) / 2 && g.oh == g.h && g.ow == g.w && (g.kp == 8 || (g.kp % 16 == 0 && g.kp <= 64)) &&
         op.in_act.kind == Act::none && !op.has_residual && !op.pool && !op.gap && !op.gate &&
         !op.softmax && !op.side && !op.expand && !op.squeeze && !op.norm && !op.in_slice;
}

/// The tile of least estimated work an image (warp rounds of 16-row m-tiles, and half a unit a
/// halo pixel copied in) within the device's shared-memory budget (shared_budget) and 4 m-tiles
/// a warp (2 at 64 output slots: the accumulators); tr = 0 when none fits. Whole images stack
/// (G > 1) only when a tile takes the map's every row. `math`: the form's warps (threads_of).
[[nodiscard]] inline Tile choose(const OpDesc& op, int math = 0) {
  const ConvGeom& c = op.conv;
  const int nw = threads_of(math) / 32;
  const int max_per_warp = c.kp > 32 ? 2 : 4;
  const std::int64_t budget = std::min(shared_budget(), max_shared);
  Tile best;
  double best_cost = std::numeric_limits<double>::max();
  for (int g = 1; g <= 16; ++g) {
    for (int tr = 1; tr <= c.oh; ++tr) {
      if (g > 1 && tr < c.oh) {
        continue;
      }
      const Tile t = make(c, g, tr, nw);
      if (t.shared > budget || t.per_warp > max_per_warp) {
        continue;
      }
      const int tiles = (c.oh + tr - 1) / tr;  // an image group's
      const double cost = static_cast<double>(tiles) *
                          (t.per_warp * 16.0 * nw + 0.5 * t.hr * t.hc) / g;
      if (cost < best_cost - 1e-9 || (cost < best_cost + 1e-9 && t.mt > best.mt)) {
        best = t;
        best_cost = cost;
      }
    }
  }
  return best;
}

/// Whether the kernel writes `op`'s concat slice itself: its own slots only, pairs aligned.
[[nodiscard]] inline bool slice_fits(const OpDesc& op) { return !op.slice || generated::pair_slice_fits(op); }

[[nodiscard]] inline bool fits(const OpDesc& op) {
  return generated::mma_sync_device() && shape_fits(op) && slice_fits(op) && choose(op).tr > 0;
}

/// Tiles of a batch from which the heuristic runs an op here (about one an SM of the H100/H200).
/// Measured on an H200 (session 32, DenseNet-121 at batch 256, every 3×3 conv forced, against
/// the heuristic's cuDNN conv + copy into the slice in the same call): 56×56 maps (1,792 tiles)
/// 1,384 µs for the block's six convs against 1,594; 28×28 (512) 817 against 901; 14×14 (128)
/// 509 against 659; 7×7 (52 tiles of 5 images) 232 against 200.
inline constexpr long long claim_tiles = 128;
[[nodiscard]] inline long long tiles(const OpDesc& op, int batch, int math = 0) {
  const Tile t = choose(op, math);
  return tile_count(t.g, t.tr, op.conv.oh, batch);
}

/// The halo copy both forms generate: each thread's share of a ring stage's vectors (i = tid +
/// NTHREADS·u of the halo's HR × HC pixels × 4, 16 bytes each) — the same positions for every tile and
/// chunk, so what does not depend on the tile is worked out once: the vector's shared-memory byte
/// offset (`soff`, an expression of its pixel p and 8-channel group v), its element offset from
/// the tile's first row in the tile's first image, and (packed) its image in the tile, its row
/// relative to the tile's first, or 0 where its column is outside the map — and `load_step(s)`,
/// which copies step s (the block's tile s / NCH, chunk s % NCH) into its stage (`stage`: a
/// stage's bytes) as one cp.async group. `shuffled`: the packed word read through a shuffle to
/// itself, so that ptxas does not hoist what it gives out of the main loop (in the warpgroup
/// form it held 252 to 254 registers on tiles of several images, 128 this way). A step's
/// arithmetic is 32-bit but for the base pointer, and each vector's check one range test (its
/// row) and, where a tile stacks images, one compare (its image): a vector's copy took about 30
/// instructions with 64-bit tile arithmetic and a branch each (Nsight Compute: a third of the
/// mma.sync form's instructions). Expects in scope NTHREADS, HR, HC, HRI, H, W, CP, CH, PH, PW,
/// NCH, TPI, G, TR, STAGES, x, batch, tid, steps and ring_a.
[[nodiscard]] inline std::string copy_source(const char* soff, const char* stage, bool shuffled) {
  std::ostringstream o;
  o << R"src(  constexpr int NV = static_cast<int>(HR * HC * 4);
  constexpr int NU = static_cast<int>((NV + NTHREADS - 1) / NTHREADS);
  unsigned soff[NU];
  int goff[NU];
  int meta[NU];
#pragma unroll
  for (int u = 0; u < NU; ++u) {
    const int i = tid + u * static_cast<int>(NTHREADS);
    const int v = i & 3;
    const int p = (i < NV ? i : 0) >> 2;
    const int hr = p / static_cast<int>(HC);
    const int hc = p - hr * static_cast<int>(HC);
    const int gi = hr / HRI;
    const int dy = hr - gi * HRI - static_cast<int>(PH);  // row - the tile's first row
    const int xx = hc - static_cast<int>(PW);
    const bool live = i < NV && xx >= 0 && xx < W && v * 8 < CP;
    soff[u] = )src" << soff << R"src(;
    goff[u] = ((gi * static_cast<int>(H) + dy) * static_cast<int>(W) + xx) * static_cast<int>(CP) + v * 8;
    meta[u] = (gi << 24) | (live ? dy + 0x400000 : 0);  // (0: a row never in the map)
  }
  auto load_step = [&](int s) {
    if (s < steps) {
      const int tile = static_cast<int>(blockIdx.x) + (s / NCHI) * static_cast<int>(gridDim.x);
      const int ch = s % NCHI;
      const int img0 = (tile / TPI) * GI;
      const int r0 = (tile % TPI) * TRI;
      const T* base = x + (static_cast<long long>(img0) * (H * W) + r0 * W) * CP + ch * CHI;
      const unsigned st = ring_a + static_cast<unsigned>(s % static_cast<int>(STAGES)) * )src" << stage << R"src(;
#pragma unroll
      for (int u = 0; u < NU; ++u) {
        // (read by every lane: a shuffle under the branch below, which splits a warp where the
        // stage's last vectors end, waited forever for the lanes that skip it)
        const int mu = )src" << (shuffled ? "__shfl_sync(0xffffffffu, meta[u], tid & 31)" : "meta[u]") << R"src(;
        if (u < NU - 1 || NV % NTHREADS == 0 || tid + u * static_cast<int>(NTHREADS) < NV) {
          const int yy = r0 + (mu & 0xffffff) - 0x400000;
          const bool ok = static_cast<unsigned>(yy) < static_cast<unsigned>(H) && (GI == 1 || img0 + (mu >> 24) < batch) &&
                          (CP % CHI == 0 || ch * CHI + ((tid + u * static_cast<int>(NTHREADS)) & 3) * 8 < CP);
          asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                       :: "r"(st + soff[u]), "l"(ok ? base + goff[u] : x), "r"(ok ? 16 : 0) : "memory");
        }
      }
    }
    cp_async_commit();
  };
)src";
  return o.str();
}

/// The start both mma.sync forms share: the thread's place, the block's tiles and steps (tiles
/// blockIdx.x, + gridDim.x, ...; NCH steps each), and the filter's copy into shared memory
/// (row (tap, n) from filter row n's tap slice, zeros past the slots). Expects in scope
/// NTHREADS, G, TPI, NCH, TAPS, KP, FP, CP, fs, w and batch.
[[nodiscard]] inline std::string start_source() {
  return R"src(  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const long long groups = (batch + G - 1) / G;
  const long long tiles = groups * TPI;
  const long long mine = blockIdx.x < tiles ? (tiles - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
  const int steps = static_cast<int>(mine * NCH);
  // The filter, once: row (tap, n) from filter row n's tap slice (zeros past the slots).
  for (int i = tid; i < TAPS * KP * (FP / 8 - 1); i += static_cast<int>(NTHREADS)) {
    const int row = i / static_cast<int>(FP / 8 - 1);
    const int c8 = i % static_cast<int>(FP / 8 - 1);
    const int tap = row / static_cast<int>(KP);
    const int n = row % static_cast<int>(KP);
    const bool ok = c8 * 8 < CP;
    cp_async16(fs + row * FP + c8 * 8, ok ? w + (n * TAPS + tap) * CP + c8 * 8 : w, ok);
  }
)src";
}

/// Opens either form's kernel `strata_rtc::halo_conv<T>` for `op` (generated::open_kernel: the
/// signature and the op's shapes), then the constants both forms add — KREAL (output channels;
/// slots past them are written as 0), the tile (G images × TR rows, a halo of HR × HC pixels),
/// the chunking (CH slots a step, NCH steps a tile) and the result's pixel and image strides (a
/// concat's, for a slice) — and NTHREADS, the block's threads.
inline void open_kernel(std::ostringstream& o, const OpDesc& op, int g_images, int tr, int hr, int hc,
                        int nthreads = threads) {
  const ConvGeom& g = op.conv;
  generated::open_kernel(o, op, false, "halo_conv", "int batch", 1, "", nthreads);
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr long long " << name << " = " << v << ";\n";
  };
  constant("NTHREADS", nthreads);
  constant("KREAL", g.k);
  constant("G", g_images);
  constant("TR", tr);
  constant("HR", hr);
  constant("HC", hc);
  constant("CH", chunk);
  constant("NCH", (g.cp + chunk - 1) / chunk);
  o << "  constexpr int GI = " << g_images << ", TRI = " << tr << ", CHI = " << chunk
    << ", NCHI = " << (g.cp + chunk - 1) / chunk << ";  // (the same, for 32-bit arithmetic)\n";
  constant("YPIX", op.slice ? op.slice->strides.pixel : g.kp);
  constant("YIMG", op.slice ? op.slice->strides.image : std::int64_t{g.oh} * g.ow * g.kp);
}

/// The kernel's source for `op` (kernel `strata_rtc::halo_conv<T>`): blocks of 8 warps, or of 16
/// with `math` wide_math.
[[nodiscard]] inline std::string source(const OpDesc& op, int math = 0) {
  STRATA_CHECK(fits(op) && (math == 0 || math == wide_math) && choose(op, math).tr > 0,
               "halo_conv: layer '" << op.label
                                    << "' is not a stride-1, size-keeping conv of at most 64 "
                                       "output channels that the kernel runs in form math "
                                    << math);
  const ConvGeom& g = op.conv;
  const Tile t = choose(op, math);
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr long long " << name << " = " << v << ";\n";
  };
  open_kernel(o, op, t.g, t.tr, t.hr, t.hc, threads_of(math));
  constant("WARPS", t.warps);
  constant("MT", t.mt);     // m-tiles a tile
  constant("MTW", t.per_warp);
  constant("FP", filter_pitch(g));
  constant("HP", hpitch);
  constant("STAGES", stages);
  o << R"src(  constexpr int NT = static_cast<int>(KP / 8);   // n-tiles: every output slot
  constexpr int TAPS = static_cast<int>(KH * KW);
  constexpr int HS = static_cast<int>(HR * HC * HP);  // elements a ring stage
  constexpr int TPI = static_cast<int>((H + TR - 1) / TR);  // tiles an image group
  constexpr int HRI = static_cast<int>(TR + KH - 1);        // halo rows an image
  constexpr int TPIX = static_cast<int>(G * TR * W);        // pixels a tile
  static_assert(NT % 2 == 0 || NT == 1, "n-tiles in pairs");
  extern __shared__ __align__(16) unsigned char smem[];
  T* fs = reinterpret_cast<T*>(smem);  // [TAPS][KP][FP] the filter
  T* ring = fs + TAPS * KP * FP;        // [STAGES][HR][HC][HP] halo chunks
)src" << start_source() << R"src(  const unsigned ring_a = shared_address(ring);
  const unsigned fs_a = shared_address(fs);
  // This thread's share of a halo copy, and the copy of a step into its stage (copy_source):
  // a vector's 16 bytes at its pixel's HP slots.
)src" << copy_source("static_cast<unsigned>(p * HP + v * 8) * 2u", "(HS * 2u)", false) << R"src(  // This lane's A rows: for each of its warp's m-tiles, the halo byte offset of the pixel its
  // row (lane % 16) reads at tap (0, 0) and its k-half — the same for every tile. Its B rows:
  // the filter byte offset of its row and k-half within a tap's pair of n-tiles.
  unsigned hb[MTW];
#pragma unroll
  for (int j = 0; j < MTW; ++j) {
    const int p = (warp + j * static_cast<int>(WARPS)) * 16 + (lane & 15);
    const int q = p < TPIX ? p : 0;
    const int gi = q / static_cast<int>(TR * W);
    const int py = (q / static_cast<int>(W)) % static_cast<int>(TR);
    const int px = q % static_cast<int>(W);
    hb[j] = static_cast<unsigned>(((gi * HRI + py) * static_cast<int>(HC) + px) * static_cast<int>(HP) +
                                  (lane >> 4) * 8) * 2u;
  }
  const unsigned bl = static_cast<unsigned>(NT == 1 ? (lane & 7) * static_cast<int>(FP) + ((lane >> 3) & 1) * 8
                                                    : ((lane & 7) + ((lane >> 4) << 3)) * static_cast<int>(FP) +
                                                          ((lane >> 3) & 1) * 8) * 2u;
  float2 bv[NT];  // this lane's bias pairs, once
#pragma unroll
  for (int n = 0; n < NT; ++n) {
    bv[n] = bias != nullptr ? *reinterpret_cast<const float2*>(bias + n * 8 + 2 * (lane & 3)) : float2{0.0f, 0.0f};
  }
  float acc[MTW][NT][4];
#pragma unroll
  for (int j = 0; j < MTW; ++j) {
#pragma unroll
    for (int n = 0; n < NT; ++n) {
      acc[j][n][0] = acc[j][n][1] = acc[j][n][2] = acc[j][n][3] = 0.0f;
    }
  }
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    load_step(s);  // (the filter joins the first group)
  }
  for (int s = 0; s < steps; ++s) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // step s in for every thread; step s - 1's stage free to refill
    load_step(s + STAGES - 1);
    const int ch = s % NCHI;
    const unsigned ha = ring_a + static_cast<unsigned>(s % static_cast<int>(STAGES)) * (HS * 2u);
    const unsigned fa = fs_a + bl + static_cast<unsigned>(ch) * (CH * 2u);
#pragma unroll
    for (int tap = 0; tap < TAPS; ++tap) {
      constexpr unsigned ROWB = HC * HP * 2;  // bytes a halo row
      const unsigned toff = (tap / static_cast<int>(KW)) * ROWB + (tap % static_cast<int>(KW)) * (HP * 2u);
      const unsigned fb = fa + static_cast<unsigned>(tap * KP * FP * 2);
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {
        unsigned b[NT][2];
        if constexpr (NT == 1) {
          asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];"
                       : "=r"(b[0][0]), "=r"(b[0][1]) : "r"(fb + ks * 32u));
        } else {
#pragma unroll
          for (int n = 0; n < NT; n += 2) {
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                         : "=r"(b[n][0]), "=r"(b[n][1]), "=r"(b[n + 1][0]), "=r"(b[n + 1][1])
                         : "r"(fb + static_cast<unsigned>(n * 8 * FP * 2) + ks * 32u));
          }
        }
#pragma unroll
        for (int j = 0; j < MTW; ++j) {
          if (warp + j * WARPS < MT) {
            unsigned a0, a1, a2, a3;
            asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                         : "=r"(a0), "=r"(a1), "=r"(a2), "=r"(a3) : "r"(ha + hb[j] + toff + ks * 32u));
#pragma unroll
            for (int n = 0; n < NT; ++n) {
              mma_16816<T>(acc[j][n], a0, a1, a2, a3, b[n][0], b[n][1]);
            }
          }
        }
      }
    }
    if (ch == NCH - 1) {  // the tile's last chunk: bias, activation, pairs stored; then zeros
      const int tile = static_cast<int>(blockIdx.x) + (s / NCHI) * static_cast<int>(gridDim.x);
      const long long img0 = static_cast<long long>(tile / TPI) * GI;
      const int r0 = (tile % TPI) * TRI;
#pragma unroll
      for (int j = 0; j < MTW; ++j) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int p = (warp + j * static_cast<int>(WARPS)) * 16 + (lane >> 2) + 8 * h;
          const int gi = p / static_cast<int>(TR * W);
          const int py = (p / static_cast<int>(W)) % static_cast<int>(TR);
          const int px = p % static_cast<int>(W);
          const long long img = img0 + gi;
          const int yy = r0 + py;
          const bool writes = p < TPIX && img < batch && yy < H;
#pragma unroll
          for (int n = 0; n < NT; ++n) {
            const int c = n * 8 + 2 * (lane & 3);
            const float v0 = activate(act, acc[j][n][2 * h] + bv[n].x);
            const float v1 = activate(act, acc[j][n][2 * h + 1] + bv[n].y);
            if (writes) {
              *reinterpret_cast<unsigned*>(y + img * YIMG + (static_cast<long long>(yy) * W + px) * YPIX + c) =
                  pack2<T>(c < KREAL ? v0 : 0.0f, c + 1 < KREAL ? v1 : 0.0f);
            }
            acc[j][n][2 * h] = 0.0f;
            acc[j][n][2 * h + 1] = 0.0f;
          }
        }
      }
    }
  }
  cp_async_wait<0>();
}
}  // namespace strata_rtc
)src";
  return o.str();
}

// --- The warpgroup form (algo 1, sm_90a) ------------------------------------------------------
//
// The same tiles' halos, stored for wgmma: a chunk of 32 channels as four planes of 8, each
// plane the halo's pixels in order, 16 bytes a pixel. Then 8 consecutive pixels of a plane are
// one core matrix (no swizzle, K-major) and a patch of 8 × 8 output pixels (8 rows of 8 columns)
// is the A operand of one `wgmma.m64nKPk16` read straight from the halo through a descriptor:
// core matrices a halo row apart in M, a plane apart in K, and a tap's shift a change of the
// start address. The filter as core matrices too (8 output slots × 8 input slots, a tap's input
// slots in order, then the next 8 output slots). Both operands from shared memory: the warps
// issue the MMAs and nothing else. A map whose side is not a multiple of 8 takes an overlapping
// last patch (computed twice, written twice with the same values); a patch that reaches past
// a 7-wide map or its last row reads the next pixels of the halo (or the slack after it) into
// rows that are not written. Two warpgroups take the patches in turn; an odd last patch is split
// between them by output slots.
namespace wg {

inline constexpr int planes = chunk / 8;  ///< 8-channel planes a stage

/// Patch origins along one side of `n` outputs: 0, 8, ..., and n − 8 last when 8 does not
/// divide n (one origin, 0, when n ≤ 8).
[[nodiscard]] inline std::vector<int> origins(int n) {
  std::vector<int> o;
  if (n <= 8) {
    return {0};
  }
  for (int i = 0; i + 8 <= n; i += 8) {
    o.push_back(i);
  }
  if (n % 8 != 0) {
    o.push_back(n - 8);
  }
  return o;
}

struct Tile {
  int g = 0, tr = 0;   ///< images a tile, output rows a tile (of each image)
  int hr = 0, hc = 0;  ///< the halo's rows (all G images) and columns
  int rows = 0, cols = 0;  ///< patch origins an image: along its rows, along its columns
  int patches = 0;     ///< patches a tile (g · rows · cols)
  int per_wg = 0;      ///< patches a warpgroup at most (2 warpgroups)
  int stages = 0;
  std::int64_t plane = 0;   ///< bytes a plane of a stage (the halo's pixels + slack, 16 each)
  std::int64_t shared = 0;  ///< bytes: the filter, then the ring
};

/// Bytes of the filter as core matrices: taps × output slots × input slots in whole chunks.
[[nodiscard]] inline std::int64_t filter_bytes(const ConvGeom& c) {
  return std::int64_t{c.kh} * c.kw * c.kp * ((c.cp + chunk - 1) / chunk * chunk) * 2;
}

[[nodiscard]] inline Tile make(const ConvGeom& c, int g, int tr, int stages) {
  Tile t;
  t.g = g;
  t.tr = tr;
  t.hr = g * (tr + c.kh - 1);
  t.hc = c.ow + c.kw - 1;
  t.rows = static_cast<int>(origins(tr).size());
  t.cols = static_cast<int>(origins(c.ow).size());
  t.patches = g * t.rows * t.cols;
  t.per_wg = (t.patches + 1) / 2;
  t.stages = stages;
  // The last pixel a patch reads: its last row's last column at the last tap, past the halo
  // where a patch reaches over a short map (7 wide, or fewer than 8 rows in the last image).
  const int last_row = (g - 1) * (tr + c.kh - 1) + origins(tr).back() + 7 + c.kh - 1;
  const int last_col = origins(c.ow).back() + 7 + c.kw - 1;
  const std::int64_t pixels = std::max<std::int64_t>(std::int64_t{t.hr} * t.hc,
                                                     std::int64_t{last_row} * t.hc + last_col + 1);
  t.plane = (pixels * 16 + 127) / 128 * 128;
  t.shared = filter_bytes(c) + std::int64_t{stages} * planes * t.plane;
  return t;
}

/// Accumulators a thread may hold: 64 (a patch takes KP / 2 of them).
[[nodiscard]] inline int max_per_wg(const ConvGeom& c) { return std::max(1, 128 / c.kp); }

/// The tile of least estimated work an image (MMA rows, half a unit a halo pixel copied in and
/// 256 units a tile for its barriers and epilogue; a ring of 3 stages counted 10% dearer than
/// one of 4) within the shared-memory budget.
[[nodiscard]] inline Tile choose(const OpDesc& op) {
  const ConvGeom& c = op.conv;
  const std::int64_t budget = std::min(shared_budget(), max_shared);
  Tile best;
  double best_cost = std::numeric_limits<double>::max();
  for (int stages = 4; stages >= 3; --stages) {
    for (int g = 1; g <= 16; ++g) {
      for (int tr = 1; tr <= c.oh; ++tr) {
        if (g > 1 && tr < c.oh) {
          continue;
        }
        const Tile t = make(c, g, tr, stages);
        if (t.shared > budget || t.per_wg > max_per_wg(c)) {
          continue;
        }
        const int tiles = (c.oh + tr - 1) / tr;
        const double cost = static_cast<double>(tiles) * (t.patches * 64.0 + 0.5 * t.hr * t.hc + 256.0) / g *
                            (stages == 3 ? 1.1 : 1.0);
        if (cost < best_cost - 1e-9) {
          best = t;
          best_cost = cost;
        }
      }
    }
  }
  return best;
}

/// Whether the warpgroup form runs `op`: the shape, wgmma's output widths (8 to 64 slots in 8s)
/// and a tile within the budget. (The GPU is checked where the form is compiled: sm_90a.)
[[nodiscard]] inline bool fits(const OpDesc& op) {
  return shape_fits(op) && slice_fits(op) && op.conv.kp % 8 == 0 && op.conv.kp <= 64 && choose(op).tr > 0;
}

[[nodiscard]] inline long long tiles(const OpDesc& op, int batch) {
  const Tile t = choose(op);
  return tile_count(t.g, t.tr, op.conv.oh, batch);
}


/// The warpgroup form's source for `op` (kernel `strata_rtc::halo_conv<T>`, for sm_90a).
[[nodiscard]] inline std::string source(const OpDesc& op) {
  STRATA_CHECK(fits(op), "halo_conv: layer '" << op.label
                                               << "' is not a stride-1, size-keeping conv of 8 to 64 "
                                                  "output channels (in 8s) that the warpgroup form runs");
  const ConvGeom& g = op.conv;
  const Tile t = choose(op);
  const int nt = g.kp / 8;
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr long long " << name << " = " << v << ";\n";
  };
  open_kernel(o, op, t.g, t.tr, t.hr, t.hc);
  constant("RO", t.rows);   // patch origins an image along its rows, its columns
  constant("CO", t.cols);
  constant("LASTR", origins(t.tr).back());
  constant("LASTC", origins(g.ow).back());
  constant("NPATCH", t.patches);
  constant("PWG", t.per_wg);
  // An odd number of patches: the last one computed by both warpgroups, half the output slots
  // each, where the halves are whole n16 (otherwise both compute it whole, and write it twice).
  constant("SPLIT", t.patches % 2 == 1 && g.kp % 16 == 0 ? 1 : 0);
  constant("STAGES", t.stages);
  constant("PLANE", t.plane);  // bytes a plane of 8 channels (a stage has 4)
  constant("KCH8", (g.cp + chunk - 1) / chunk * (chunk / 8));  // 8-slot groups of a tap's input slots
  o << R"src(  constexpr int NT = static_cast<int>(KP / 8);
  constexpr int TAPS = static_cast<int>(KH * KW);
  constexpr int TPI = static_cast<int>((H + TR - 1) / TR);
  constexpr int HRI = static_cast<int>(TR + KH - 1);
  constexpr unsigned STAGE = static_cast<unsigned>(4 * PLANE);
  constexpr unsigned FBYTES = static_cast<unsigned>(TAPS * KP * KCH8 * 16);
  static_assert(FBYTES % 128 == 0 && PLANE % 128 == 0, "core matrices 128-byte aligned");
  // Descriptors (no swizzle, K-major): the halo's 8-pixel core matrices a row apart in M and a
  // plane apart in K; the filter's a tap's 8-slot groups apart in N and 128 bytes apart in K.
  constexpr unsigned long long DESC_A = (static_cast<unsigned long long>(PLANE >> 4) << 16) |
                                        (static_cast<unsigned long long>((HC * 16) >> 4) << 32);
  constexpr unsigned long long DESC_B = (static_cast<unsigned long long>(128 >> 4) << 16) |
                                        (static_cast<unsigned long long>((KCH8 * 128) >> 4) << 32);
  extern __shared__ __align__(128) unsigned char smem[];
  const unsigned fs_a = shared_address(smem);  // [TAPS][KP / 8][KCH8] core matrices
  const unsigned ring_a = fs_a + FBYTES;        // [STAGES][4 planes][pixels] 16 bytes each
  const int tid = static_cast<int>(threadIdx.x);
  const int wgi = tid >> 7;  // warpgroup
  const long long groups = (batch + G - 1) / G;
  const long long tiles = groups * TPI;
  const long long mine = blockIdx.x < tiles ? (tiles - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
  const int steps = static_cast<int>(mine * NCH);
  // The filter, once, as core matrices: (tap, slot n, 8 input slots) from filter row n.
  for (int i = tid; i < TAPS * KP * KCH8; i += 256) {
    const int k8 = i % static_cast<int>(KCH8);
    const int rest = i / static_cast<int>(KCH8);
    const int n = rest % static_cast<int>(KP);
    const int tap = rest / static_cast<int>(KP);
    const bool ok = k8 * 8 < CP;
    const unsigned dst = fs_a + static_cast<unsigned>(((tap * NT + (n >> 3)) * static_cast<int>(KCH8) + k8) * 128 + (n & 7) * 16);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :: "r"(dst), "l"(ok ? w + (n * TAPS + tap) * CP + k8 * 8 : w), "r"(ok ? 16 : 0) : "memory");
  }
  // This thread's share of a halo copy, and the copy of a step into its stage (copy_source):
  // a vector's 16 bytes into plane i % 4 at pixel i / 4.
)src" << copy_source("static_cast<unsigned>(v * PLANE + p * 16)", "STAGE", true) << R"src(  // This warpgroup's patches (wgi, wgi + 2, ...): image, first row and column in the tile.
  auto patch = [](int p, int& gi, int& row0, int& col0) {
    gi = p / static_cast<int>(RO * CO);
    const int r = p % static_cast<int>(RO * CO);
    const int ri = r / static_cast<int>(CO);
    const int ci = r % static_cast<int>(CO);
    row0 = ri == RO - 1 ? static_cast<int>(LASTR) : ri * 8;
    col0 = ci == CO - 1 ? static_cast<int>(LASTC) : ci * 8;
  };
  unsigned long long ad[PWG];  // A's descriptor at stage 0, tap (0, 0), the chunk's first plane
#pragma unroll
  for (int u = 0; u < PWG; ++u) {
    int gi, row0, col0;
    patch(min(wgi + 2 * u, static_cast<int>(NPATCH - 1)), gi, row0, col0);
    const unsigned a = ring_a + static_cast<unsigned>(((gi * HRI + row0) * static_cast<int>(HC) + col0) * 16);
    ad[u] = DESC_A | static_cast<unsigned long long>((a & 0x3FFFF) >> 4);
  }
  float acc[PWG][NT][4];
#pragma unroll
  for (int s = 0; s < STAGES - 2; ++s) {
    load_step(s);  // (the filter joins the first group)
  }
  for (int s = 0; s < steps; ++s) {
    cp_async_wait<STAGES - 3>();
    // The halo (and the filter) are read by the async proxy (wgmma).
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    __syncthreads();  // step s in for every thread; step s - 2's MMAs done everywhere
    load_step(s + STAGES - 2);
    const int ch = s % NCHI;
    const unsigned long long so = static_cast<unsigned long long>((s % static_cast<int>(STAGES)) * STAGE) >> 4;
    const unsigned long long bb = DESC_B | static_cast<unsigned long long>(((fs_a + ch * 4 * 128) & 0x3FFFF) >> 4);
    unsigned long long sa[PWG];  // this step's A descriptors at tap (0, 0)
#pragma unroll
    for (int u = 0; u < PWG; ++u) {
      sa[u] = ad[u] + so;
    }
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int tap = 0; tap < TAPS; ++tap) {
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {
        const unsigned long long db = bb + static_cast<unsigned long long>((tap * NT * KCH8 * 128 + ks * 256) >> 4);
        const unsigned aoff = static_cast<unsigned>(((tap / static_cast<int>(KW)) * HC + tap % static_cast<int>(KW)) * 16 + ks * 2 * PLANE);
        const int sc = tap == 0 && ks == 0 ? (ch != 0 ? 1 : 0) : 1;
#pragma unroll
        for (int u = 0; u < PWG; ++u) {  // (no branch on the warpgroup: a divergent path serializes wgmma)
          const unsigned long long da = sa[u] + (aoff >> 4);
          if (SPLIT && u == PWG - 1) {  // this warpgroup's half of the output slots
            const unsigned long long dh = db + static_cast<unsigned long long>(wgi) * ((NT / 2 * KCH8 * 128) >> 4);
            if constexpr (is_same<T, bf16>::value) {
              )src" << (nt % 2 == 0 ? generated::wgmma_ss_call(nt / 2, "bf16.bf16", "acc[u]", "dh") : std::string()) << R"src(            } else {
              )src" << (nt % 2 == 0 ? generated::wgmma_ss_call(nt / 2, "f16.f16", "acc[u]", "dh") : std::string()) << R"src(            }
          } else if constexpr (is_same<T, bf16>::value) {
            )src" << generated::wgmma_ss_call(nt, "bf16.bf16", "acc[u]") << R"src(          } else {
            )src" << generated::wgmma_ss_call(nt, "f16.f16", "acc[u]") << R"src(          }
        }
      }
      // A group a tap, the tap before it left in flight.
      asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
      asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
    }
    if (ch == NCH - 1) {  // the tile's last chunk: every MMA done, then bias, activation, pairs stored
      asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
      for (int u = 0; u < PWG; ++u) {
#pragma unroll
        for (int n = 0; n < NT; ++n) {
#pragma unroll
          for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(acc[u][n][i])::"memory");
        }
      }
      const int tile = static_cast<int>(blockIdx.x) + (s / NCHI) * static_cast<int>(gridDim.x);
      const long long img0 = static_cast<long long>(tile / TPI) * GI;
      const int r0 = (tile % TPI) * TRI;
      // The thread's coordinates read again here: worked out before the loop, the patches'
      // output positions were kept in registers through it (ptxas: 246 to 255 and spills, 140
      // this way).
      unsigned et;
      asm volatile("mov.u32 %0, %%tid.x;" : "=r"(et));
      const int lane = static_cast<int>(et & 31);
      const int wg = static_cast<int>(et >> 7);    // warpgroup
      const int wq = static_cast<int>((et >> 5) & 3);  // warp within it
#pragma unroll
      for (int u = 0; u < PWG; ++u) {
        int gi, row0, col0;
        patch(min(wg + 2 * u, static_cast<int>(NPATCH - 1)), gi, row0, col0);
        const int px = col0 + (lane >> 2);
        const long long img = img0 + gi;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int py = row0 + 2 * wq + h;
          const int yy = r0 + py;
          const bool writes = py < TR && px < W && img < batch && yy < H;
          const bool half = SPLIT && u == PWG - 1;  // n-tiles wg · NT / 2 on, in acc[u][0..NT / 2)
#pragma unroll
          for (int n = 0; n < (half ? NT / 2 : NT); ++n) {
            const int c = ((half ? wg * (NT / 2) : 0) + n) * 8 + 2 * (lane & 3);
            const float2 bv = bias != nullptr ? *reinterpret_cast<const float2*>(bias + c)
                                              : float2{0.0f, 0.0f};
            const float v0 = activate(act, acc[u][n][2 * h] + bv.x);
            const float v1 = activate(act, acc[u][n][2 * h + 1] + bv.y);
            if (writes) {
              *reinterpret_cast<unsigned*>(y + img * YIMG + (static_cast<long long>(yy) * W + px) * YPIX + c) =
                  pack2<T>(c < KREAL ? v0 : 0.0f, c + 1 < KREAL ? v1 : 0.0f);
            }
          }
        }
      }
    }
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
  cp_async_wait<0>();
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace wg

// --- The row-segment form (algo 2, mma.sync) ----------------------------------------------------
//
// The same tiles' halos, ring and resident filter as algo 0, but a warp's work is a unit of 8
// output columns × 8 output rows (an 8-column strip of 8 rows of one image; strips past the
// map's width and rows past the tile's are computed from whatever the buffer holds there and not
// written), as 4 m-tiles of two rows each. An m-tile's 16 GEMM rows need not be consecutive
// pixels: an ldmatrix reads 8-pixel row segments, and an MMA takes any two of them. So for each
// column shift kx of the taps the warp reads the unit's 8 + KH − 1 halo row segments once and
// each serves the KH taps of that column (row o at tap ky is segment o + ky); with the filter's
// KH fragments for that kx read once for the unit's 4 m-tiles, shared memory moves about 470
// bytes an m16n32k16 step against algo 0's 768 (A read once a tap an m-tile, B for 4 m-tiles).
namespace seg {

inline constexpr int unit_rows = 8;  ///< output rows a unit (4 m-tiles of 2 rows)
inline constexpr int unit_cols = 8;  ///< output columns a unit (an ldmatrix row segment)

struct Tile {
  int g = 0, tr = 0;        ///< images a tile, output rows a tile (of each image)
  int rg = 0, sw = 0;       ///< row groups of 8 a tile's image, strips of 8 columns
  int units = 0;            ///< g · rg · sw
  int per_warp = 0;         ///< units a warp at most
  int hr = 0, hc = 0;       ///< the halo's rows (all G images) and columns (as algo 0's)
  std::int64_t stage = 0;   ///< bytes a ring stage: the halo, then the slack its junk reads reach
  std::int64_t shared = 0;  ///< bytes: the filter, then the ring
};

[[nodiscard]] inline Tile make(const ConvGeom& c, int g, int tr) {
  Tile t;
  t.g = g;
  t.tr = tr;
  t.rg = (tr + unit_rows - 1) / unit_rows;
  t.sw = (c.ow + unit_cols - 1) / unit_cols;
  t.units = g * t.rg * t.sw;
  t.per_warp = (t.units + warps - 1) / warps;
  t.hr = g * (tr + c.kh - 1);
  t.hc = c.ow + c.kw - 1;
  // The farthest 16-byte vector a unit reads: the last image's last row group, its last segment
  // at the last column shift, the last strip's last pixel, the k-half at 8 of a 16-slot step.
  const std::int64_t last_pixel = (std::int64_t{g - 1} * (tr + c.kh - 1) + t.rg * unit_rows + c.kh - 2) * t.hc +
                                  t.sw * unit_cols + c.kw - 2;
  const std::int64_t reach = (last_pixel * hpitch + chunk - 8) * 2 + 16;
  t.stage = (std::max<std::int64_t>(std::int64_t{t.hr} * t.hc * hpitch * 2, reach) + 127) / 128 * 128;
  t.shared = std::int64_t{c.kh} * c.kw * c.kp * filter_pitch(c) * 2 + std::int64_t{stages} * t.stage;
  return t;
}

/// Units a warp at most: their accumulators (4 m-tiles × KP / 8 n-tiles × 4 each).
[[nodiscard]] inline int max_per_warp(const ConvGeom& c) { return c.kp > 32 ? 1 : 2; }

/// The tile of least estimated work an image (warp rounds of 64-pixel units, half a unit a halo
/// pixel copied in) within the shared-memory budget.
[[nodiscard]] inline Tile choose(const OpDesc& op) {
  const ConvGeom& c = op.conv;
  const std::int64_t budget = std::min(shared_budget(), max_shared);
  Tile best;
  double best_cost = std::numeric_limits<double>::max();
  for (int g = 1; g <= 16; ++g) {
    for (int tr = 1; tr <= c.oh; ++tr) {
      if (g > 1 && tr < c.oh) {
        continue;
      }
      const Tile t = make(c, g, tr);
      if (t.shared > budget || t.per_warp > max_per_warp(c)) {
        continue;
      }
      const int tiles = (c.oh + tr - 1) / tr;
      const double cost = static_cast<double>(tiles) *
                          (t.per_warp * 64.0 * warps + 0.5 * t.hr * t.hc) / g;
      if (cost < best_cost - 1e-9) {
        best = t;
        best_cost = cost;
      }
    }
  }
  return best;
}

[[nodiscard]] inline bool fits(const OpDesc& op) {
  return halo::fits(op) && choose(op).tr > 0;
}

[[nodiscard]] inline long long tiles(const OpDesc& op, int batch) {
  const Tile t = choose(op);
  return tile_count(t.g, t.tr, op.conv.oh, batch);
}

/// The row-segment form's source for `op` (kernel `strata_rtc::halo_conv<T>`).
[[nodiscard]] inline std::string source(const OpDesc& op) {
  STRATA_CHECK(fits(op), "halo_conv: layer '" << op.label
                                               << "' is not a stride-1, size-keeping conv of at most 64 "
                                                  "output channels that the row-segment form runs");
  const ConvGeom& g = op.conv;
  const Tile t = choose(op);
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr long long " << name << " = " << v << ";\n";
  };
  open_kernel(o, op, t.g, t.tr, t.hr, t.hc);
  constant("RG", t.rg);      // row groups of 8 a tile's image
  constant("NSTRIP", t.sw);  // strips of 8 columns
  constant("UNITS", t.units);
  constant("UPW", t.per_warp);
  constant("FP", filter_pitch(g));
  constant("HP", hpitch);
  constant("STAGES", stages);
  constant("STB", t.stage);  // bytes a ring stage
  o << R"src(  constexpr int NT = static_cast<int>(KP / 8);   // n-tiles: every output slot
  constexpr int TAPS = static_cast<int>(KH * KW);
  constexpr int SEGS = 8 + static_cast<int>(KH) - 1;     // row segments a unit reads a column shift
  constexpr int TPI = static_cast<int>((H + TR - 1) / TR);  // tiles an image group
  constexpr int HRI = static_cast<int>(TR + KH - 1);        // halo rows an image
  static_assert(NT % 2 == 0 || NT == 1, "n-tiles in pairs");
  static_assert(SEGS % 2 == 0, "segments in pairs (an odd kernel height)");
  extern __shared__ __align__(16) unsigned char smem[];
  T* fs = reinterpret_cast<T*>(smem);  // [TAPS][KP][FP] the filter
)src" << start_source() << R"src(  const unsigned fs_a = shared_address(fs);
  const unsigned ring_a = fs_a + static_cast<unsigned>(TAPS * KP * FP * 2);
  // This thread's share of a halo copy, and the copy of a step into its stage (copy_source).
)src" << copy_source("static_cast<unsigned>(p * HP + v * 8) * 2u", "static_cast<unsigned>(STB)", false) << R"src(  // This lane's A rows: for each of its warp's units, the halo byte offset of the pixel it reads
  // for segments 0 / 1 (matrices 0, 2 / 1, 3 of an ldmatrix) at column shift 0, and its k-half.
  // Its B rows: the filter byte offset of its row and k-half within a tap's pair of n-tiles.
  unsigned ub[UPW];
#pragma unroll
  for (int j = 0; j < UPW; ++j) {
    const int u = min(warp + j * 8, static_cast<int>(UNITS - 1));
    const int gi = u / static_cast<int>(RG * NSTRIP);
    const int rest = u % static_cast<int>(RG * NSTRIP);
    const int rg = rest / static_cast<int>(NSTRIP);
    const int st = rest % static_cast<int>(NSTRIP);
    ub[j] = static_cast<unsigned>(((gi * HRI + rg * 8 + ((lane >> 3) & 1)) * static_cast<int>(HC) + st * 8 + (lane & 7)) *
                                      static_cast<int>(HP) + (lane >> 4) * 8) * 2u;
  }
  const unsigned bl = static_cast<unsigned>(NT == 1 ? (lane & 7) * static_cast<int>(FP) + ((lane >> 3) & 1) * 8
                                                    : ((lane & 7) + ((lane >> 4) << 3)) * static_cast<int>(FP) +
                                                          ((lane >> 3) & 1) * 8) * 2u;
  float2 bv[NT];  // this lane's bias pairs, once
#pragma unroll
  for (int n = 0; n < NT; ++n) {
    bv[n] = bias != nullptr ? *reinterpret_cast<const float2*>(bias + n * 8 + 2 * (lane & 3)) : float2{0.0f, 0.0f};
  }
  float acc[UPW][4][NT][4];
#pragma unroll
  for (int j = 0; j < UPW; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        acc[j][i][n][0] = acc[j][i][n][1] = acc[j][i][n][2] = acc[j][i][n][3] = 0.0f;
      }
    }
  }
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    load_step(s);  // (the filter joins the first group)
  }
  for (int s = 0; s < steps; ++s) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // step s in for every thread; step s - 1's stage free to refill
    load_step(s + STAGES - 1);
    const int ch = s % NCHI;
    const unsigned ha = ring_a + static_cast<unsigned>(s % static_cast<int>(STAGES)) * static_cast<unsigned>(STB);
    const unsigned fa = fs_a + bl + static_cast<unsigned>(ch) * (CH * 2u);
#pragma unroll
    for (int kx = 0; kx < static_cast<int>(KW); ++kx) {
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {
        unsigned b[KH][NT][2];  // the KH taps of this column shift
#pragma unroll
        for (int ky = 0; ky < static_cast<int>(KH); ++ky) {
          const unsigned fb = fa + static_cast<unsigned>((ky * static_cast<int>(KW) + kx) * KP * FP * 2) + ks * 32u;
          if constexpr (NT == 1) {
            asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];"
                         : "=r"(b[ky][0][0]), "=r"(b[ky][0][1]) : "r"(fb));
          } else {
#pragma unroll
            for (int n = 0; n < NT; n += 2) {
              asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                           : "=r"(b[ky][n][0]), "=r"(b[ky][n][1]), "=r"(b[ky][n + 1][0]), "=r"(b[ky][n + 1][1])
                           : "r"(fb + static_cast<unsigned>(n * 8 * FP * 2)));
            }
          }
        }
#pragma unroll
        for (int j = 0; j < UPW; ++j) {
          if (warp + j * 8 < UNITS) {
            unsigned lo[SEGS], hi[SEGS];  // segment q's k-halves 0-7 and 8-15
#pragma unroll
            for (int q = 0; q < SEGS; q += 2) {
              asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                           : "=r"(lo[q]), "=r"(lo[q + 1]), "=r"(hi[q]), "=r"(hi[q + 1])
                           : "r"(ha + ub[j] + static_cast<unsigned>((q * static_cast<int>(HC) + kx) * HP * 2) + ks * 32u));
            }
#pragma unroll
            for (int ky = 0; ky < static_cast<int>(KH); ++ky) {
#pragma unroll
              for (int i = 0; i < 4; ++i) {  // m-tile i: output rows 2i (GEMM rows 0-7) and 2i + 1
#pragma unroll
                for (int n = 0; n < NT; ++n) {
                  mma_16816<T>(acc[j][i][n], lo[2 * i + ky], lo[2 * i + 1 + ky], hi[2 * i + ky], hi[2 * i + 1 + ky],
                               b[ky][n][0], b[ky][n][1]);
                }
              }
            }
          }
        }
      }
    }
    if (ch == NCH - 1) {  // the tile's last chunk: bias, activation, pairs stored; then zeros
      const int tile = static_cast<int>(blockIdx.x) + (s / NCHI) * static_cast<int>(gridDim.x);
      const long long img0 = static_cast<long long>(tile / TPI) * GI;
      const int r0 = (tile % TPI) * TRI;
#pragma unroll
      for (int j = 0; j < UPW; ++j) {
        const int u = warp + j * 8;
        const int gi = u / static_cast<int>(RG * NSTRIP);
        const int rest = u % static_cast<int>(RG * NSTRIP);
        const int rg = rest / static_cast<int>(NSTRIP);
        const int px = (rest % static_cast<int>(NSTRIP)) * 8 + (lane >> 2);
        const long long img = img0 + gi;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int py = rg * 8 + 2 * i + h;
            const int yy = r0 + py;
            const bool writes = u < UNITS && py < TR && px < W && img < batch && yy < H;
#pragma unroll
            for (int n = 0; n < NT; ++n) {
              const int c = n * 8 + 2 * (lane & 3);
              const float v0 = activate(act, acc[j][i][n][2 * h] + bv[n].x);
              const float v1 = activate(act, acc[j][i][n][2 * h + 1] + bv[n].y);
              if (writes) {
                *reinterpret_cast<unsigned*>(y + img * YIMG + (static_cast<long long>(yy) * W + px) * YPIX + c) =
                    pack2<T>(c < KREAL ? v0 : 0.0f, c + 1 < KREAL ? v1 : 0.0f);
              }
              acc[j][i][n][2 * h] = 0.0f;
              acc[j][i][n][2 * h + 1] = 0.0f;
            }
          }
        }
      }
    }
  }
  cp_async_wait<0>();
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace seg

/// The form the heuristic claims: the row-segment one (algo 2) where it fits, else algo 0.
/// Measured on an H200 (session 36, DenseNet-121 at batch 256, each form forced on every 3x3
/// conv, same call): blocks 1 / 2 / 3 1,213 / 736 / 464 µs against 1,322 / 780 / 484 for algo 0
/// (forward 7,342 against 7,482); on the 7x7 maps of block 4 (not claimed) 269 against cuDNN's
/// 200.
[[nodiscard]] inline int claimed_algo(const OpDesc& op) { return seg::fits(op) ? 2 : 0; }
/// Only where the op writes a concat's slice, which the libraries do through a copy: on ResNet's
/// 3×3 64 → 64 convs (no slice), claimed by mistake in session 32, it took 234 µs a conv at
/// batch 256 where cuDNN's fused conv takes about 145 (R2 2,193 µs against 2,047–2,075; H200,
/// session 33) — and where the claimed form's tiles number claim_tiles or more.
[[nodiscard]] inline bool claimed(const OpDesc& op, int batch) {
  if (!op.slice.has_value() || !fits(op)) {
    return false;
  }
  return (claimed_algo(op) == 2 ? seg::tiles(op, batch) : tiles(op, batch)) >= claim_tiles;
}

}  // namespace halo

template <DType P>
class HaloConv final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "halo_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && halo::fits(op);
  }
  [[nodiscard]] bool writes_slice(const OpDesc& op) const override {
    return op.slice.has_value() && halo::fits(op);
  }
  /// Claimed ahead of the libraries where the conv writes a concat slice (they write none: a copy
  /// follows them) and the claimed form (halo::claimed_algo: by row segments where it fits, else
  /// the mma.sync form of 8 warps) gives halo::claim_tiles tiles or more; offered to measured
  /// tuning wherever it runs.
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    if (!halo::claimed(op, batch)) {
      return std::nullopt;
    }
    Claim c;
    c.variant.tactic = std::string(name());
    c.variant.algo = halo::claimed_algo(op);
    c.rank = rank::tailored;
    return c;
  }
  /// Offered to measured tuning: the mma.sync form in blocks of 8 warps and of 16 (math 1), its
  /// row-segment form (algo 2), and the warpgroup form (algo 1) on a GPU of compute capability 9.0.
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    if (!halo::fits(op)) {
      return {};
    }
    std::vector<Variant> v{Variant{std::string(name())}};
    if (halo::choose(op, halo::wide_math).tr > 0) {
      v.push_back(Variant{std::string(name()), 0, halo::wide_math});
    }
    if (halo::seg::fits(op)) {
      v.push_back(Variant{std::string(name()), 2});
    }
    if (device_arch() == 90 && halo::wg::fits(op)) {
      v.push_back(Variant{std::string(name()), 1});
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const bool wgmma = v.algo == 1;
    const bool segs = v.algo == 2;
    const halo::Tile t = halo::choose(op, v.math);
    const halo::wg::Tile tw = wgmma ? halo::wg::choose(op) : halo::wg::Tile{};
    const halo::seg::Tile ts = segs ? halo::seg::choose(op) : halo::seg::Tile{};
    const generated::DeviceSms d = generated::device_sms();
    const long long tiles = wgmma  ? halo::wg::tiles(op, batch)
                            : segs ? halo::seg::tiles(op, batch)
                                   : halo::tiles(op, batch, v.math);
    const unsigned nthreads = static_cast<unsigned>(v.algo == 0 ? halo::threads_of(v.math) : halo::threads);
    const unsigned grid = static_cast<unsigned>(std::max<long long>(1, std::min<long long>(tiles, d.sms)));
    const std::size_t shared = static_cast<std::size_t>(wgmma ? tw.shared : segs ? ts.shared : t.shared);
    generated::allow_shared(k, d.device, shared, op.label, "halo_conv");
    const T* x = static_cast<const T*>(io.x);
    const T* wt = w.weight.template as<const T>();
    const float* bias = w.bias_f32.template as<const float>();
    T* y = static_cast<T*>(io.y);
    std::ostringstream what;
    what << "strata halo conv (" << (wgmma ? "wgmma" : "mma.sync") << ", " << nthreads / 32 << " warps"
         << "; the filter in shared memory, tiles of " << (wgmma ? tw.g : segs ? ts.g : t.g) << " image(s) x "
         << (wgmma ? tw.tr : segs ? ts.tr : t.tr) << " rows"
         << (wgmma ? " in " + std::to_string(tw.patches) + " patches of 8 x 8"
             : segs ? " in " + std::to_string(ts.units) + " units of 8 x 8, each halo row segment read once for its " +
                          std::to_string(op.conv.kh) + " taps"
                    : std::string())
         << ", their halos streamed " << halo::chunk
         << " channels at a time"
         << (op.slice ? ", writing channels " + std::to_string(op.slice->c0) + ".." +
                            std::to_string(op.slice->c0 + op.conv.k - 1) + " of a concat"
                      : std::string())
         << ", shapes compiled in)";
    return kernel_step(what.str(), [=](cudaStream_t s) {
      rtc::launch_shared(k, grid, nthreads, shared, s, x, wt, bias, y, batch);
    });
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo&) const override {
    STRATA_CHECK(((v.algo == 0 && (v.math == 0 || v.math == halo::wide_math)) ||
                  ((v.algo == 1 || v.algo == 2) && v.math == 0)) &&
                     v.fuse == 0,
                 "'" << op.label << "': halo_conv has four forms (algo 0: mma.sync in 8 warps, math 1 "
                                    "in 16; algo 1: wgmma; algo 2: mma.sync by row segments; fuse 0), not "
                     << to_string(v));
    if (v.algo == 0) {
      return this->named(halo::source(op, v.math));
    }
    if (v.algo == 2) {
      return this->named(halo::seg::source(op));
    }
    STRATA_CHECK(device_arch() == 90,
                 "'" << op.label << "': halo_conv algo 1 (wgmma) needs a GPU of compute capability "
                                    "9.0 (sm_90a), and this device is not one");
    KernelSource ks = this->named(halo::wg::source(op));
    ks.arch_specific = true;
    return ks;
  }
};

}  // namespace strata::cuda::tactics
