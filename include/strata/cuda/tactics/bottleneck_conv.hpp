#pragma once
/// Tactic `bottleneck_conv`: a DenseNet layer — the batch norm and ReLU over the block's running
/// concatenation, the 1×1 bottleneck conv (with the next batch norm and ReLU folded into it), and
/// the size-keeping k×k conv after it (OpDesc::bottleneck, fold_bottleneck_convs; 16-bit NHWC) —
/// as one kernel generated for the op, the bottleneck's output (four times the layer's growth, on
/// every pixel) kept in shared memory: never written nor read back, and the k×k conv's halo
/// already there.
///
/// A block takes G whole images (14×14 maps: one, 7×7: two) in 16 warps. First the 1×1 conv as a
/// GEMM over the tile's pixels (rows) and the bottleneck's slots, on mma.sync m16n8k16 with f32
/// accumulation: a ring of 3 to 6 reduction steps of 32 input slots (as many as fit) copied in by
/// cp.async, the raw
/// input rows beside the filter slice; each thread normalizes the 16-byte vectors it copied once
/// they land (the batch norm's scale folded into the filter as normed_conv's math 2 does: one
/// packed fma.rn.relu a channel pair), then one barrier a step. The warps split the slots 16 a
/// warp and the m-tiles between the rest. Its epilogue adds the bias, applies the activation,
/// rounds to the storage type (as the unfused path stores the map) and writes each pixel into a
/// map of the tile's images with a zero border of the k×k conv's padding (pixel rows padded to an
/// odd number of 16-byte chunks). The k×k conv's filter is then copied into the ring's space, and
/// the second GEMM reads its A rows from the map at each tap's offset: the warps split the m-tiles
/// in groups of up to 4 and the reduction (taps × 16-slot steps) in parts, the parts' partial sums
/// added in f32 through shared memory in a fixed order (deterministic), then the bias and the
/// activation, and 16-byte stores into the layer's channels of the concatenation.
///
/// Why: at batch 256 on an H200 (session 36) DenseNet-121's block 3 took 49 µs a layer for its
/// normed 1×1 conv and 19 for its 3×3 conv, block 4 about 25 and 12 — against a few µs of memory
/// traffic — the bottleneck's output written and read back, two launches, and the 1×1 conv's
/// 128-pixel blocks filling 1.5 waves of the GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/device.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/normed_conv.hpp"

namespace strata::cuda::tactics {

namespace bneck {

inline constexpr int threads = 512;
inline constexpr int warps = threads / 32;
inline constexpr int bk = 32;      ///< input slots a reduction step of the 1×1 conv
inline constexpr int pitch = 40;   ///< elements a staged row (bk + 8: 80 bytes)
/// The 1×1 conv's ring: as many steps as fit between these (one block an SM: the copies in
/// flight are all it has to hide the memory's latency with; 3 steps measured 1.5 µs a step on an
/// H200, session 37).
inline constexpr int min_stages = 3;
inline constexpr int max_stages = 6;
/// Shared memory a block may take: the device's opt-in, at most 227 KiB (the H100's and H200's).
inline constexpr std::int64_t max_shared = generated::hopper_max_shared;

/// A block's shape for one op: G images, the two GEMMs' warp splits, and the shared memory.
struct Plan {
  int g = 0;          ///< images a block
  int rows = 0;       ///< the tile's pixels (G · H · W)
  int mt = 0;         ///< m-tiles of 16 rows
  int wn1 = 0;        ///< 1×1 conv: warps across the bottleneck's slots (16 a warp)
  int wm1 = 0;        ///< 1×1 conv: warps down the m-tiles
  int mtw1 = 0;       ///< 1×1 conv: m-tiles a warp at most
  int ms = 0;         ///< k×k conv: groups of m-tiles
  int ks = 0;         ///< k×k conv: parts of the reduction
  int mtw2 = 0;       ///< k×k conv: m-tiles a group at most
  int kt = 0;         ///< 1×1 conv: reduction steps
  int stages = 0;     ///< 1×1 conv: its ring's steps (as many as fit, up to max_stages)
  std::int64_t map_bytes = 0;    ///< the tile's bottleneck map (with its border), or the partial sums
  std::int64_t ring_bytes = 0;   ///< the 1×1 conv's ring, or the k×k conv's filter
  std::int64_t shared = 0;
};

[[nodiscard]] inline std::int64_t shared_budget() { return generated::shared_budget(max_shared); }

/// The plan for `op` with `g` images a block; rows 0 where it does not fit.
[[nodiscard]] inline Plan plan(const OpDesc& op, int g) {
  Plan p;
  const OpDesc& b = *op.bottleneck;
  const ConvGeom& c = op.conv;
  const int kp1 = b.conv.kp;
  const int kp2 = c.kp;
  p.g = g;
  p.rows = g * c.h * c.w;
  p.mt = (p.rows + 15) / 16;
  p.wn1 = kp1 / 16;
  if (p.wn1 < 1 || p.wn1 > warps || warps % p.wn1 != 0) {
    return Plan{};
  }
  p.wm1 = warps / p.wn1;
  p.mtw1 = (p.mt + p.wm1 - 1) / p.wm1;
  const int nt2 = kp2 / 8;
  p.ms = 1;
  while (p.ms < warps && (p.mt + p.ms - 1) / p.ms * nt2 > 16) {
    p.ms *= 2;
  }
  p.ks = warps / p.ms;
  p.mtw2 = (p.mt + p.ms - 1) / p.ms;
  p.kt = (b.conv.cp + bk - 1) / bk;
  const std::int64_t mp = std::int64_t{p.mt} * 16;
  // (a stage's input rows: every warp's m-tiles whole, so that the MMA loop has no branch — the
  // rows past the tile's are never copied nor stored)
  const std::int64_t ma = std::int64_t{p.wm1} * p.mtw1 * 16;
  const std::int64_t map = std::int64_t{g} * (c.h + c.kh - 1) * (c.w + c.kw - 1) * (kp1 + 8) * 2;
  const std::int64_t partial = mp * (kp2 + 8) * 4;
  p.map_bytes = (std::max(map, partial) + 15) / 16 * 16;
  const std::int64_t filter = std::int64_t{c.kh} * c.kw * kp2 * (kp1 + 8) * 2;
  const std::int64_t cip = std::int64_t{p.kt} * bk;
  const std::int64_t rest = cip * 4 + std::int64_t{kp1} * 4 + std::int64_t{kp2} * 4;
  const std::int64_t budget = shared_budget();
  // The deepest ring that fits: a block alone on its SM keeps that many steps of copies in flight.
  for (int s = max_stages; s >= min_stages; --s) {
    const std::int64_t ring = std::int64_t{s} * (ma + kp1) * pitch * 2;
    const std::int64_t bytes = (std::max(ring, filter) + 15) / 16 * 16;
    if (p.map_bytes + bytes + rest <= budget) {
      p.stages = s;
      p.ring_bytes = bytes;
      break;
    }
  }
  p.shared = p.map_bytes + p.ring_bytes + rest;
  if (p.stages == 0 || p.mtw1 > 8 || p.mtw2 * nt2 > 16) {
    return Plan{};
  }
  return p;
}

/// Whether the kernel runs `op` (before the tile): a conv with a folded bottleneck whose 1×1 conv
/// normed_conv's folded form runs (its batch norm with a ReLU or none over every input slot, read
/// in 16-byte vectors), 32 to 256 bottleneck slots in 16s, the k×k conv's 16 to 64 output slots in
/// 16s over exactly the bottleneck's slots, its result (or concat slice) written in 16-byte
/// vectors; on a GPU of sm_80 on.
[[nodiscard]] inline bool shape_fits(const OpDesc& op) {
  if (!op.bottleneck || !generated::mma_sync_device()) {
    return false;
  }
  const OpDesc& b = *op.bottleneck;
  const ConvGeom& c = op.conv;
  const bool slice_ok = !op.slice || (op.slice->aligned && !op.slice->flatten && op.slice->strides.channel == 1 &&
                                      op.slice->c0 % 8 == 0 && op.slice->write == c.kp &&
                                      op.slice->strides.pixel % 8 == 0 && op.slice->strides.image % 8 == 0);
  return normed::fits(b) && normed::fold_fits(b) && !b.pool && !b.slice && b.conv.kp % 16 == 0 &&
         b.conv.kp >= 32 && b.conv.kp <= 256 && c.cp == b.conv.kp && op.in_cp == c.cp &&
         c.kp % 16 == 0 && c.kp <= 64 && c.kd == c.kp && c.fcg == c.cp && c.groups == 1 && c.sh == 1 &&
         c.sw == 1 && c.dh == 1 && c.dw == 1 && c.kh % 2 == 1 && c.kw % 2 == 1 && c.ph == c.kh / 2 &&
         c.pw == c.kw / 2 && c.oh == c.h && c.ow == c.w && !op.pool && !op.has_residual && !op.gap &&
         !op.gate && !op.side && !op.expand && !op.squeeze && !op.norm && !op.in_slice &&
         op.in_act.kind == Act::none && slice_ok;
}

/// The least images a block whose tile has 96 rows or more (DenseNet-121: 1 on 14×14 maps, 2 on
/// 7×7), or the most that fit below that; 0 where none fits.
[[nodiscard]] inline int choose_g(const OpDesc& op) {
  int best = 0;
  for (int g = 1; g <= 8; ++g) {
    if (plan(op, g).rows == 0) {
      break;
    }
    best = g;
    if (g * op.conv.h * op.conv.w >= 96) {
      break;
    }
  }
  return best;
}

[[nodiscard]] inline bool fits(const OpDesc& op) { return shape_fits(op) && choose_g(op) > 0; }

/// Blocks of a batch from which the heuristic runs an op here: about one an SM of the H100/H200 —
/// and only where a block stacks images (maps of fewer than 96 pixels). Measured on an H200
/// (session 37, DenseNet-121 at batch 256, against the unfused path in the same call): block 4's
/// 7×7 layers 491 µs against about 590 (the normed 1×1 conv, then cuDNN), block 3's 14×14 ones
/// 1,981 against 1,675 (one block of 16 warps an SM runs its phases one after the other).
inline constexpr long long claim_blocks = 128;
[[nodiscard]] inline bool claimed(const OpDesc& op, int batch) {
  if (!fits(op)) {
    return false;
  }
  const int g = choose_g(op);
  return g >= 2 && (std::int64_t{batch} + g - 1) / g >= claim_blocks;
}

/// Both forms' constants of what they read and write: the batch norm's input (XPIX, XIMG:
/// elements a pixel, an image — a concat's, read in place), the result's (YPIX, YIMG: a concat's
/// strides for a slice) and the three activations (NA: the batch norm's, folded; A1/act1 the 1×1
/// conv's; A2/act2 the k×k conv's).
inline void io_constants(std::ostringstream& o, const OpDesc& op) {
  const OpDesc& b = *op.bottleneck;
  const OpDesc& bn = *b.norm;
  const ConvGeom& c = op.conv;
  const normed::Source src = normed::source_of(bn);
  auto wide = [&](const char* name, long long v) { o << "  constexpr long long " << name << " = " << v << ";\n"; };
  wide("XPIX", src.pixel);  // the batch norm's input: elements a pixel, an image
  wide("XIMG", src.image);
  wide("YPIX", op.slice ? op.slice->strides.pixel : c.kp);  // the result (a concat's strides, for a slice)
  wide("YIMG", op.slice ? op.slice->strides.image : std::int64_t{c.h} * c.w * c.kp);
  o << "  constexpr Act NA = static_cast<Act>(" << static_cast<int>(bn.act.kind) << ");  // the batch norm's (folded)\n";
  generated::act_constants(o, "A1", "act1", b.act);
  generated::act_constants(o, "A2", "act2", op.act);
}

/// Both forms' 1×1 conv setup: `normalize(kt)` — the input vectors this thread copied for the
/// ring's step kt (stage kt % STAGES; the folded batch norm's pairs from nh at kt · BK), normalized
/// in place once they landed — and the warp's place (wm, wn: slots wn · 16 .. + 15 of m-tiles wm,
/// wm + WM1, ...), its lanes' ldmatrix addresses in a stage (A rows, then the filter's from MA),
/// its accumulators.
[[nodiscard]] inline const char* one_by_one_source() {
  return R"src(  // The vectors this thread copied for step kt, normalized in place once they landed.
  auto normalize = [&](int kt) {
    const unsigned st = ring_s + static_cast<unsigned>((kt % STAGES) * STAGE * 2);
#pragma unroll
    for (int u = 0; u < AU; ++u) {
      if (adst[u] != ~0u) {
        const unsigned f = nh_s + static_cast<unsigned>((kt * BK + ak[u]) * 4);  // (8 bytes a channel pair)
        uint4 v = lds16_at(st + adst[u]);
        const uint4 f0 = lds16_at(f);
        const uint4 f1 = lds16_at(f + 16);
        v.x = fold2<T, NA>(v.x, f0.x, f0.y);
        v.y = fold2<T, NA>(v.y, f0.z, f0.w);
        v.z = fold2<T, NA>(v.z, f1.x, f1.y);
        v.w = fold2<T, NA>(v.w, f1.z, f1.w);
        sts16_at(st + adst[u], v);
      }
    }
  };
  // The 1x1 conv: warp (wm, wn) computes slots wn * 16 .. + 15 of m-tiles wm, wm + WM1, ...
  const int wn = warp % WN1;
  const int wm = warp / WN1;
  // Its lane's ldmatrix addresses in a stage (bytes): A rows of its first m-tile, B rows.
  const unsigned a_lane = static_cast<unsigned>(((wm * 16 + (lane & 15)) * PITCH + (lane >> 4) * 8) * 2);
  const unsigned b_lane =
      static_cast<unsigned>(((MA + wn * 16 + (lane & 7) + ((lane >> 4) << 3)) * PITCH + ((lane >> 3) & 1) * 8) * 2);
  float acc[MTW1][2][4];
#pragma unroll
  for (int i = 0; i < MTW1; ++i) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
    }
  }
)src";
}

/// Both forms' k×k conv over the bottleneck map in shared memory: each lane's B-fragment rows
/// (b2_lane) in the filter [TAPS][KP2][W2PITCH], then the warp's 16-slot steps s0 .. s1 (tap s /
/// C16, slots (s % C16) * 16 ..) into acc2[MTW2][NT2] from its A rows at a2[] ([..][MW][MPITCH]
/// pixels at tap (0, 0)), no branch: m-tiles past the pixels read a clamped pixel, never stored.
[[nodiscard]] inline const char* kxk_steps_source() {
  return R"src(  const unsigned b2_lane = shared_address(w2s) +
                           static_cast<unsigned>((((lane & 7) + ((lane >> 4) << 3)) * W2PITCH + ((lane >> 3) & 1) * 8) * 2);
#pragma unroll 2
  for (int s = s0; s < s1; ++s) {
    const int tap = s / C16;
    const int c16 = s - tap * C16;
    const int ty = tap / KW;
    const unsigned toff = static_cast<unsigned>(((ty * MW + (tap - ty * KW)) * MPITCH + c16 * 16) * 2);
    const unsigned boff = b2_lane + static_cast<unsigned>((tap * KP2 * W2PITCH + c16 * 16) * 2);
    unsigned bq[NT2 / 2][4];
#pragma unroll
    for (int jj = 0; jj < NT2 / 2; ++jj) {
      ldsm4_at(bq[jj][0], bq[jj][1], bq[jj][2], bq[jj][3], boff + jj * 16 * W2PITCH * 2);
    }
    // (no branch: m-tiles past the tile's read pixel 0, their sums never stored)
    unsigned af[MTW2][4];
#pragma unroll
    for (int i = 0; i < MTW2; ++i) {
      ldsm4_at(af[i][0], af[i][1], af[i][2], af[i][3], a2[i] + toff);
    }
#pragma unroll
    for (int i = 0; i < MTW2; ++i) {
#pragma unroll
      for (int jj = 0; jj < NT2 / 2; ++jj) {
        mma_16816<T>(acc2[i][2 * jj], af[i][0], af[i][1], af[i][2], af[i][3], bq[jj][0], bq[jj][1]);
        mma_16816<T>(acc2[i][2 * jj + 1], af[i][0], af[i][1], af[i][2], af[i][3], bq[jj][2], bq[jj][3]);
      }
    }
  }
)src";
}

/// The kernel's source for `op` with `g` images a block (kernel `strata_rtc::bottleneck_conv<T>`).
[[nodiscard]] inline std::string source(const OpDesc& op, int g) {
  STRATA_CHECK(shape_fits(op), "bottleneck_conv: layer '" << op.label << "' is not a conv with a folded "
                                                             "bottleneck that the kernel runs");
  const Plan p = plan(op, g);
  STRATA_CHECK(p.rows > 0, "bottleneck_conv: layer '" << op.label << "': tiles of " << g
                                                      << " image(s) do not fit the kernel");
  const OpDesc& b = *op.bottleneck;
  const OpDesc& bn = *b.norm;
  const ConvGeom& c = op.conv;
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) { o << "  constexpr int " << name << " = " << v << ";\n"; };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "': tiles of " << g << " image(s), 16 warps.\n"
    << R"src(template <class T>
__global__ void __launch_bounds__(512, 1) bottleneck_conv(
    const T* __restrict__ x, const T* __restrict__ fold, const T* __restrict__ w1,
    const float* __restrict__ bias1, const T* __restrict__ w2, const float* __restrict__ bias2,
    T* __restrict__ y, int batch) {
  pdl_entry();
)src";
  constant("NTHREADS", threads);
  constant("G", g);
  constant("W", c.w);
  constant("HW", c.h * c.w);
  constant("MR", p.rows);       // the tile's pixels (rows of both GEMMs)
  constant("MT", p.mt);         // their m-tiles
  constant("MP", p.mt * 16);
  constant("MA", p.wm1 * p.mtw1 * 16);  // a stage's input rows (every warp's m-tiles whole)
  constant("C", bn.out_shape.c);  // channels the batch norm normalizes (the slots past them: 0)
  constant("CI", b.conv.cp);    // the 1x1 conv's input slots
  constant("KT", p.kt);         // its reduction steps of BK slots
  constant("CIP", p.kt * bk);
  constant("BK", bk);
  constant("PITCH", pitch);
  constant("STAGES", p.stages);
  constant("KP1", b.conv.kp);   // the bottleneck's slots (its filter's rows; the k x k conv's input slots)
  constant("K1", b.conv.k);
  constant("KW", c.kw);
  constant("PH", c.ph);
  constant("PW", c.pw);
  constant("TAPS", c.kh * c.kw);
  constant("MH", c.h + c.kh - 1);  // the map's rows and columns with the border
  constant("MW", c.w + c.kw - 1);
  constant("MPITCH", b.conv.kp + 8);  // a map pixel's elements (an odd number of 16-byte chunks)
  constant("KP2", c.kp);        // the k x k conv's output slots
  constant("K2", c.k);
  constant("W2PITCH", b.conv.kp + 8);
  constant("RPITCH", c.kp + 8);  // a row of partial sums (f32)
  constant("WN1", p.wn1);
  constant("WM1", p.wm1);
  constant("MTW1", p.mtw1);
  constant("MS", p.ms);
  constant("KS", p.ks);
  constant("MTW2", p.mtw2);
  constant("NT2", c.kp / 8);
  constant("K16", c.kh * c.kw * (b.conv.kp / 16));  // the k x k conv's 16-slot reduction steps
  constant("MAPB", static_cast<long long>(p.map_bytes));
  constant("RINGB", static_cast<long long>(p.ring_bytes));
  io_constants(o, op);
  o << R"src(  constexpr int STAGE = (MA + KP1) * PITCH;  // elements a stage: input rows, then filter rows
  constexpr int AV = MP * (BK / 8);             // input vectors a step
  constexpr int AU = (AV + NTHREADS - 1) / NTHREADS;
  constexpr int BV = KP1 * (BK / 8);            // filter vectors a step
  constexpr int BU = (BV + NTHREADS - 1) / NTHREADS;
  static_assert(MP * RPITCH * 4 <= MAPB && STAGES * STAGE * 2 <= RINGB && TAPS * KP2 * W2PITCH * 2 <= RINGB,
                "the shared-memory plan");
  static_assert(NT2 % 2 == 0, "n-tile pairs");
  extern __shared__ __align__(16) unsigned char smem[];
  T* map = reinterpret_cast<T*>(smem);            // [G][MH][MW][MPITCH]: the bottleneck's output
  float* red = reinterpret_cast<float*>(smem);    // [MP][RPITCH]: partial sums, once the map is read
  T* ring = reinterpret_cast<T*>(smem + MAPB);    // [STAGES][STAGE]
  T* w2s = ring;                                  // [TAPS][KP2][W2PITCH]: once the 1x1 conv is done
  uint2* nh = reinterpret_cast<uint2*>(smem + MAPB + RINGB);  // [CIP / 2] (beta pair, gamma pair)
  float* b1s = reinterpret_cast<float*>(nh + CIP / 2);         // [KP1]
  float* b2s = b1s + KP1;                                      // [KP2]
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const long long img0 = static_cast<long long>(blockIdx.x) * G;
  // The map's border (and the rows of images past the batch) as zeros; the folded batch norm's
  // pairs (0 past C) and the biases.
  for (int i = tid; i < MAPB / 16; i += NTHREADS) {
    reinterpret_cast<uint4*>(smem)[i] = make_uint4(0u, 0u, 0u, 0u);
  }
  for (int i = tid; i < CIP / 2; i += NTHREADS) {
    nh[i] = 2 * i < C ? reinterpret_cast<const uint2*>(fold)[i] : make_uint2(0u, 0u);
  }
  for (int i = tid; i < KP1; i += NTHREADS) {
    b1s[i] = bias1 != nullptr ? bias1[i] : 0.0f;
  }
  for (int i = tid; i < KP2; i += NTHREADS) {
    b2s[i] = bias2 != nullptr ? bias2[i] : 0.0f;
  }
  // This thread's input vectors: row r (pixel r of the tile), 8 slots from kc * 8 of each step —
  // its byte offset in a stage (~0: none), its source, its first slot; likewise its filter vectors.
  const unsigned ring_s = shared_address(ring);
  const unsigned nh_s = shared_address(nh);
  const T* src[AU];
  unsigned adst[AU];
  int ak[AU];
#pragma unroll
  for (int u = 0; u < AU; ++u) {
    const int i = tid + u * NTHREADS;
    const int r = i / (BK / 8);
    const int kc = i % (BK / 8);
    adst[u] = i < AV ? static_cast<unsigned>((r * PITCH + kc * 8) * 2) : ~0u;
    ak[u] = kc * 8;
    const int gi = r / HW;
    const long long img = img0 + gi;
    src[u] = i < AV && r < MR && img < batch ? x + img * XIMG + static_cast<long long>(r - gi * HW) * XPIX + kc * 8
                                             : nullptr;
  }
  const T* bsrc[BU];
  unsigned bdst[BU];
  int bk8[BU];
#pragma unroll
  for (int u = 0; u < BU; ++u) {
    const int i = tid + u * NTHREADS;
    const int n = i / (BK / 8);
    const int kc = i % (BK / 8);
    bdst[u] = i < BV ? static_cast<unsigned>(((MA + n) * PITCH + kc * 8) * 2) : ~0u;
    bk8[u] = kc * 8;
    bsrc[u] = w1 + static_cast<long long>(i < BV ? n : 0) * CI + kc * 8;
  }
  auto load_stage = [&](int kt) {
    if (kt < KT) {
      const unsigned st = ring_s + static_cast<unsigned>((kt % STAGES) * STAGE * 2);
#pragma unroll
      for (int u = 0; u < AU; ++u) {
        if (adst[u] != ~0u) {
          const bool ok = src[u] != nullptr && (CI % BK == 0 || kt * BK + ak[u] < CI);
          cp_async16_at(st + adst[u], ok ? src[u] + kt * BK : x, ok);
        }
      }
#pragma unroll
      for (int u = 0; u < BU; ++u) {
        if (bdst[u] != ~0u) {
          const bool ok = CI % BK == 0 || kt * BK + bk8[u] < CI;
          cp_async16_at(st + bdst[u], ok ? bsrc[u] + kt * BK : w1, ok);
        }
      }
    }
    cp_async_commit();
  };
)src" << one_by_one_source() << R"src(#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    load_stage(s);
  }
  __syncthreads();  // the pairs in (normalize reads them)
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<STAGES - 2>();
    normalize(kt);
    __syncthreads();  // step kt in and normalized for every thread; step kt - 1's stage free to refill
    load_stage(kt + STAGES - 1);
    const unsigned st = ring_s + static_cast<unsigned>((kt % STAGES) * STAGE * 2);
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      unsigned b0, b1, b2, b3;
      ldsm4_at(b0, b1, b2, b3, st + b_lane + ks * 32);
      // (no branch: a warp's m-tiles past the tile's read rows never copied, results never stored)
      unsigned af[MTW1][4];
#pragma unroll
      for (int i = 0; i < MTW1; ++i) {
        ldsm4_at(af[i][0], af[i][1], af[i][2], af[i][3], st + a_lane + (i * WM1 * 16 * PITCH * 2 + ks * 32));
      }
#pragma unroll
      for (int i = 0; i < MTW1; ++i) {
        mma_16816<T>(acc[i][0], af[i][0], af[i][1], af[i][2], af[i][3], b0, b1);
        mma_16816<T>(acc[i][1], af[i][0], af[i][1], af[i][2], af[i][3], b2, b3);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp past its last step: the ring is free
  // The k x k conv's filter into the ring's space: row (tap, n) from filter row n's tap slice.
  for (int i = tid; i < TAPS * KP2 * (KP1 / 8); i += NTHREADS) {
    const int row = i / (KP1 / 8);
    const int c8 = i % (KP1 / 8);
    const int tap = row / KP2;
    const int n = row % KP2;
    cp_async16(w2s + row * W2PITCH + c8 * 8, w2 + (static_cast<long long>(n) * TAPS + tap) * KP1 + c8 * 8, true);
  }
  cp_async_commit();
  // The bottleneck's output: bias, activation, rounded to T, into the map inside its border.
#pragma unroll
  for (int i = 0; i < MTW1; ++i) {
    const int mt = wm + i * WM1;
    if (mt < MT) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = mt * 16 + (lane >> 2) + 8 * h;
        if (r < MR) {
          const int gi = r / HW;
          const int p = r - gi * HW;
          const int yy = p / W;
          const int xx = p - yy * W;
          T* dst = map + ((gi * MH + yy + PH) * MW + xx + PW) * MPITCH;
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            const int n = wn * 16 + j * 8 + 2 * (lane & 3);
            const float v0 = activate_as<A1>(act1, acc[i][j][2 * h] + b1s[n]);
            const float v1 = activate_as<A1>(act1, acc[i][j][2 * h + 1] + b1s[n + 1]);
            *reinterpret_cast<unsigned*>(dst + n) = pack2<T>(n < K1 ? v0 : 0.0f, n + 1 < K1 ? v1 : 0.0f);
          }
        }
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the map and the filter in
  // The k x k conv: warp (mg, q) computes m-tiles mg, mg + MS, ... over part q of the reduction
  // (16-slot steps s: tap s / (KP1 / 16), slots (s % (KP1 / 16)) * 16 ..).
  const int mg = warp % MS;
  const int q = warp / MS;
  const int s0 = q * K16 / KS;
  const int s1 = (q + 1) * K16 / KS;
  int base[MTW2];  // the map pixel of this lane's A row at tap (0, 0)
#pragma unroll
  for (int i = 0; i < MTW2; ++i) {
    int r = (mg + i * MS) * 16 + (lane & 15);
    r = r < MR ? r : 0;  // (rows past the tile: any pixel, never stored)
    const int gi = r / HW;
    const int p = r - gi * HW;
    const int yy = p / W;
    base[i] = (gi * MH + yy) * MW + (p - yy * W);
  }
  float acc2[MTW2][NT2][4];
#pragma unroll
  for (int i = 0; i < MTW2; ++i) {
#pragma unroll
    for (int j = 0; j < NT2; ++j) {
      acc2[i][j][0] = acc2[i][j][1] = acc2[i][j][2] = acc2[i][j][3] = 0.0f;
    }
  }
  constexpr int C16 = KP1 / 16;
  // This lane's ldmatrix addresses (bytes) at tap (0, 0), slots 0..15: its A rows' map pixels, its B rows.
  const unsigned map_s = shared_address(map);
  unsigned a2[MTW2];
#pragma unroll
  for (int i = 0; i < MTW2; ++i) {
    a2[i] = map_s + static_cast<unsigned>((base[i] * MPITCH + (lane >> 4) * 8) * 2);
  }
)src" << kxk_steps_source() << R"src(  __syncthreads();  // the map read by every warp: its space takes the partial sums
  // The parts' partial sums added in a fixed order (part 0 stores, 1, 2, ... add).
#pragma unroll 1
  for (int part = 0; part < KS; ++part) {
    if (q == part) {
#pragma unroll
      for (int i = 0; i < MTW2; ++i) {
        const int mt = mg + i * MS;
        if (mt < MT) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int r = mt * 16 + (lane >> 2) + 8 * h;
#pragma unroll
            for (int j = 0; j < NT2; ++j) {
              float2* d = reinterpret_cast<float2*>(red + r * RPITCH + j * 8 + 2 * (lane & 3));
              float2 v = make_float2(acc2[i][j][2 * h], acc2[i][j][2 * h + 1]);
              if (part > 0) {
                const float2 o = *d;
                v.x = o.x + v.x;
                v.y = o.y + v.y;
              }
              *d = v;
            }
          }
        }
      }
    }
    __syncthreads();
  }
  // Bias, activation, rounded to T: 16-byte vectors into the result (the slots past K2 as 0).
  constexpr int CH2 = KP2 / 8;
  for (int i = tid; i < MR * CH2; i += NTHREADS) {
    const int r = i / CH2;
    const int ch = i - r * CH2;
    const int gi = r / HW;
    const long long img = img0 + gi;
    if (img < batch) {
      const float4 lo = *reinterpret_cast<const float4*>(red + r * RPITCH + ch * 8);
      const float4 hi = *reinterpret_cast<const float4*>(red + r * RPITCH + ch * 8 + 4);
      const float s[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
      unsigned o[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int n = ch * 8 + 2 * e;
        const float v0 = activate_as<A2>(act2, s[2 * e] + b2s[n]);
        const float v1 = activate_as<A2>(act2, s[2 * e + 1] + b2s[n + 1]);
        o[e] = pack2<T>(n < K2 ? v0 : 0.0f, n + 1 < K2 ? v1 : 0.0f);
      }
      *reinterpret_cast<uint4*>(y + img * YIMG + static_cast<long long>(r - gi * HW) * YPIX + ch * 8) =
          make_uint4(o[0], o[1], o[2], o[3]);
    }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

/// The cluster form (variant algo = cluster size 8 or 16, math = n-groups): one image a
/// thread-block cluster, for small batches, where the whole-image form's one block an image
/// leaves the GPU idle (DenseNet-121 at batch 1: one block per layer, 1.5 µs a reduction step).
///
/// Block r of an image's cluster of CS = NG · KG blocks works on two shares of the layer:
/// - the 1×1 conv: bottleneck slots ng·NW .. + NW (ng = r % NG, NW = KP1 / NG) over reduction
///   steps kg·KT/KG .. (kg + 1)·KT/KG (kg = r / NG) for every pixel of the image, its input
///   normalized as staged (the folded batch norm, as the whole-image form) — a partial sum in f32
///   in its shared memory. After a cluster barrier, block (ng, kg) adds up the KG partial sums of
///   its slots (in the order kg = 0, 1, ...) for the image rows of pixel group kg (RH rows from
///   kg·RH), adds the bias, applies the activation, rounds to T and stores the result into the
///   bottleneck map of every block of channel group ng whose rows it lies in or borders (the k×k
///   conv's halo): distributed shared memory, each block's map RH + kh - 1 rows with a zero border.
/// - the k×k conv: after a second barrier, block (cg = r % NG, pg = r / NG) computes the partial
///   sums of the output rows of pixel group pg over its map's NW channels (every tap), its warps
///   splitting m-tiles and parts of the reduction; after a third barrier each block of a pixel
///   group adds up its share of the group's pixels over the NG blocks and their parts (a fixed
///   order), adds the bias, applies the activation and stores 16-byte vectors into the result (or
///   the concat's slice); a fourth barrier keeps every block's shared memory until all are read.
/// Nothing of the layer but its result reaches memory; one launch. The filters (no kernel writes
/// them) are copied before the wait for the kernel before (programmatic dependent launches).
///
/// Bands (variant fuse = bands, 2 to 8; 0: one): a large map's image over several clusters, each
/// a band of BR output rows — its 1×1 conv over the band's rows and the k×k conv's halo rows
/// above and below it (computed by both bands they border), its pixel groups the band's rows
/// (the first also reducing the halo above, the last the halo below).
inline constexpr int cluster_max_stages = 8;

/// A block's shape in the cluster form of `op` with clusters of `cs` blocks in `ng` n-groups.
struct ClusterPlan {
  int cs = 0;     ///< blocks a cluster (an image, or a band of it)
  int bands = 0;  ///< clusters an image
  int br = 0;     ///< output rows a band
  int er = 0;     ///< rows of the 1x1 conv a band at most (its own and the k x k conv's halo)
  int ng = 0;     ///< n-groups: the bottleneck's slots split NG ways (and the k x k conv's reduction)
  int kg = 0;     ///< k-groups: the 1x1 conv's reduction split KG ways; also the pixel groups
  int nw = 0;     ///< a group's bottleneck slots (KP1 / NG)
  int mt = 0;     ///< the band's m-tiles of 16 pixels (of the 1x1 conv: er rows)
  int kt = 0;     ///< the 1x1 conv's reduction steps
  int spb = 0;    ///< a block's reduction steps at most
  int stages = 0; ///< its ring's steps
  int rh = 0;     ///< output rows a pixel group
  int wn1 = 0;    ///< 1x1 conv: warps across the group's slots (16 a warp)
  int wm1 = 0;    ///< 1x1 conv: warps down the m-tiles
  int mtw1 = 0;   ///< 1x1 conv: m-tiles a warp at most
  int mt2 = 0;    ///< k x k conv: m-tiles of a pixel group
  int ms2 = 0;    ///< k x k conv: warps down its m-tiles
  int ks2 = 0;    ///< k x k conv: parts of its reduction
  int mtw2 = 0;   ///< k x k conv: m-tiles a warp at most
  std::int64_t ring_bytes = 0;  ///< the ring, then the partial sums of either conv
  std::int64_t map_bytes = 0;   ///< the group's bottleneck map with its border and halo
  std::int64_t w2_bytes = 0;    ///< the k x k conv's filter, the group's slots
  std::int64_t shared = 0;
};

/// The cluster form's plan for `op` (a conv with a folded bottleneck: shape_fits) with clusters
/// of `cs` (8 or 16) blocks in `ng` n-groups, an image in `bands` clusters (1 to 8; none empty);
/// cs 0 where it does not fit.
[[nodiscard]] inline ClusterPlan cluster_plan(const OpDesc& op, int cs, int ng, int bands = 1) {
  ClusterPlan p;
  if (!op.bottleneck || (cs != 8 && cs != 16) || ng < 1 || cs % ng != 0 || bands < 1 || bands > 8) {
    return p;
  }
  const OpDesc& b = *op.bottleneck;
  const ConvGeom& c = op.conv;
  const int kp1 = b.conv.kp;
  const int kp2 = c.kp;
  if (kp1 % ng != 0 || (kp1 / ng) % 16 != 0) {
    return p;
  }
  ClusterPlan q;
  q.cs = cs;
  q.ng = ng;
  q.kg = cs / ng;
  q.nw = kp1 / ng;
  q.wn1 = q.nw / 16;
  if (q.wn1 > warps || warps % q.wn1 != 0) {
    return p;
  }
  q.wm1 = warps / q.wn1;
  q.bands = bands;
  q.br = (c.h + bands - 1) / bands;
  if ((bands - 1) * q.br >= c.h) {
    return p;  // (an empty band)
  }
  q.er = bands == 1 ? c.h : std::min(c.h, q.br + c.kh - 1);
  q.mt = (q.er * c.w + 15) / 16;
  q.mtw1 = (q.mt + q.wm1 - 1) / q.wm1;
  q.kt = (b.conv.cp + bk - 1) / bk;
  if (q.mtw1 > 8 || q.kt < q.kg) {
    return p;
  }
  q.spb = (q.kt + q.kg - 1) / q.kg;
  q.rh = (q.br + q.kg - 1) / q.kg;
  q.mt2 = (q.rh * c.w + 15) / 16;
  q.ms2 = 1;
  while (q.ms2 * 2 <= std::min(q.mt2, warps)) {
    q.ms2 *= 2;
  }
  q.ks2 = warps / q.ms2;
  q.mtw2 = (q.mt2 + q.ms2 - 1) / q.ms2;
  if (q.mtw2 * (kp2 / 8) > 16) {
    return p;
  }
  const std::int64_t mp = std::int64_t{q.mt} * 16;
  const std::int64_t stage = (mp + q.nw) * pitch * 2;
  const std::int64_t partial1 = mp * (q.nw + 4) * 4;
  const std::int64_t partial2 = std::int64_t{q.ks2} * q.mt2 * 16 * (kp2 + 4) * 4;
  q.map_bytes = (std::int64_t{q.rh + c.kh - 1} * (c.w + c.kw - 1) * (q.nw + 8) * 2 + 15) / 16 * 16;
  q.w2_bytes = (std::int64_t{c.kh} * c.kw * kp2 * (q.nw + 8) * 2 + 15) / 16 * 16;
  const std::int64_t rest = std::int64_t{q.spb} * bk * 4 + std::int64_t{q.nw} * 4 + std::int64_t{kp2} * 4;
  const std::int64_t budget = shared_budget();
  for (int s = std::min(cluster_max_stages, std::max(2, q.spb)); s >= 2; --s) {
    const std::int64_t ring = (std::max({s * stage, partial1, partial2}) + 15) / 16 * 16;
    if (ring + q.map_bytes + q.w2_bytes + rest <= budget) {
      q.stages = s;
      q.ring_bytes = ring;
      break;
    }
  }
  if (q.stages == 0) {
    return p;
  }
  q.shared = q.ring_bytes + q.map_bytes + q.w2_bytes + rest;
  return q;
}

/// The bands an image the cluster form is offered with for `op`: one, and on maps of 28×28 pixels
/// or more (DenseNet-121's blocks 1 and 2) also 2, 4 and 8 — more clusters an image, each reading
/// its band's rows of the input (and the halo's, twice).
[[nodiscard]] inline std::vector<int> cluster_bands(const OpDesc& op) {
  std::vector<int> v{1};
  if (std::int64_t{op.conv.h} * op.conv.w >= 784) {
    for (const int bands : {2, 4, 8}) {
      if ((bands - 1) * ((op.conv.h + bands - 1) / bands) < op.conv.h) {  // (no band empty)
        v.push_back(bands);
      }
    }
  }
  return v;
}

/// One cluster form: clusters of `cs` blocks in `ng` n-groups, an image in `bands` bands.
struct ClusterForm {
  int cs = 0;
  int ng = 0;
  int bands = 1;
};

/// The cluster forms offered for `op` that fit it (cluster_plan): 8 or 16 blocks, 2 or 4
/// n-groups, each of cluster_bands(op) (the device is not asked).
[[nodiscard]] inline std::vector<ClusterForm> cluster_forms(const OpDesc& op) {
  std::vector<ClusterForm> forms;
  for (const int bands : cluster_bands(op)) {
    for (const int cs : {8, 16}) {
      for (const int ng : {2, 4}) {
        if (cluster_plan(op, cs, ng, bands).cs > 0) {
          forms.push_back({cs, ng, bands});
        }
      }
    }
  }
  return forms;
}

/// Whether the tactic runs `op` on this device: the whole-image form fits (fits), or — compute
/// capability 9.0 on — some cluster form does (DenseNet-121's 28×28 and 56×56 layers fit that
/// form only).
[[nodiscard]] inline bool runs(const OpDesc& op) {
  return fits(op) || (shape_fits(op) && device_arch() >= 90 && !cluster_forms(op).empty());
}

/// The cluster form's kernel source for `op` (kernel `strata_rtc::bottleneck_conv<T>`, the
/// cluster size compiled in; compute capability 9.0 on).
[[nodiscard]] inline std::string cluster_source(const OpDesc& op, int cs, int ng, int bands = 1) {
  STRATA_CHECK(shape_fits(op), "bottleneck_conv: layer '" << op.label << "' is not a conv with a folded "
                                                             "bottleneck that the kernel runs");
  const ClusterPlan p = cluster_plan(op, cs, ng, bands);
  STRATA_CHECK(p.cs > 0, "bottleneck_conv: layer '" << op.label << "': clusters of " << cs << " blocks in "
                                                    << ng << " n-groups, " << bands
                                                    << " band(s) an image, do not fit the kernel");
  const OpDesc& b = *op.bottleneck;
  const OpDesc& bn = *b.norm;
  const ConvGeom& c = op.conv;
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) { o << "  constexpr int " << name << " = " << v << ";\n"; };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "': " << (bands > 1 ? "a band of an image" : "an image")
    << " a cluster of " << cs << " blocks, " << ng << " n-groups, 16 warps.\n"
    << R"src(#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
// Shared memory of the cluster's blocks (shared::cluster addresses).
__device__ __forceinline__ unsigned cl_map(unsigned local, unsigned rank) {
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(rank));
  return remote;
}
__device__ __forceinline__ float4 cl_ld4(unsigned a) {
  float4 v;
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(a) : "memory");
  return v;
}
__device__ __forceinline__ void cl_st4(unsigned a, uint4 v) {
  asm volatile("st.shared::cluster.v4.u32 [%0], {%1, %2, %3, %4};"
               :: "r"(a), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
#endif
template <class T>
__global__ void __cluster_dims__()src"
    << cs << R"src(, 1, 1) __launch_bounds__(512, 1) bottleneck_conv(
    const T* __restrict__ x, const T* __restrict__ fold, const T* __restrict__ w1,
    const float* __restrict__ bias1, const T* __restrict__ w2, const float* __restrict__ bias2,
    T* __restrict__ y, int batch) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  pdl_launch();
)src";
  constant("NTHREADS", threads);
  constant("CS", cs);
  constant("NG", ng);
  constant("KG", p.kg);
  constant("NW", p.nw);         // a group's bottleneck slots
  constant("H", c.h);
  constant("W", c.w);
  constant("BANDS", bands);     // clusters an image
  constant("BR", p.br);         // output rows a band
  constant("MT", p.mt);         // the band's m-tiles (of the 1x1 conv: its rows and the halo)
  constant("MP", p.mt * 16);
  constant("C", bn.out_shape.c);  // channels the batch norm normalizes (the slots past them: 0)
  constant("CI", b.conv.cp);    // the 1x1 conv's input slots
  constant("KT", p.kt);         // its reduction steps of BK slots
  constant("SPB", p.spb);       // a block's steps at most
  constant("BK", bk);
  constant("PITCH", pitch);
  constant("STAGES", p.stages);
  constant("MA", p.mt * 16);  // a stage's input rows (the image's m-tiles; the filter's rows after them)
  constant("KP1", b.conv.kp);
  constant("K1", b.conv.k);
  constant("KW", c.kw);
  constant("PH", c.ph);
  constant("PW", c.pw);
  constant("TAPS", c.kh * c.kw);
  constant("RH", p.rh);          // output rows a pixel group
  constant("LR", p.rh + c.kh - 1);  // the group's map rows (with the halo)
  constant("MW", c.w + c.kw - 1);   // the map's columns with the border
  constant("TD", (c.ph + p.rh - 1) / p.rh);  // pixel groups a map row's halo reaches
  constant("MPITCH", p.nw + 8);  // a map pixel's elements (an odd number of 16-byte chunks)
  constant("P1PITCH", p.nw + 4); // a row of the 1x1 conv's partial sums (f32)
  constant("KP2", c.kp);
  constant("K2", c.k);
  constant("W2PITCH", p.nw + 8);
  constant("P2PITCH", c.kp + 4); // a row of the k x k conv's partial sums (f32)
  constant("WN1", p.wn1);
  constant("WM1", p.wm1);
  constant("MTW1", p.mtw1);
  constant("MT2", p.mt2);
  constant("MP2", p.mt2 * 16);
  constant("MS2", p.ms2);
  constant("KS2", p.ks2);
  constant("MTW2", p.mtw2);
  constant("NT2", c.kp / 8);
  constant("K16", c.kh * c.kw * (p.nw / 16));  // the k x k conv's 16-slot steps over a group's slots
  constant("RINGB", static_cast<long long>(p.ring_bytes));
  constant("MAPB", static_cast<long long>(p.map_bytes));
  constant("W2B", static_cast<long long>(p.w2_bytes));
  io_constants(o, op);
  o << R"src(  constexpr int STAGE = (MP + NW) * PITCH;  // elements a stage: input rows, then filter rows
  constexpr int AV = MP * (BK / 8);             // input vectors a step
  constexpr int AU = (AV + NTHREADS - 1) / NTHREADS;
  constexpr int BV = NW * (BK / 8);             // filter vectors a step
  constexpr int BU = (BV + NTHREADS - 1) / NTHREADS;
  static_assert(STAGES >= 2 && STAGES * STAGE * 2 <= RINGB && MP * P1PITCH * 4 <= RINGB && KS2 * MP2 * P2PITCH * 4 <= RINGB,
                "the shared-memory plan");
  static_assert(LR * MW * MPITCH * 2 <= MAPB && TAPS * KP2 * W2PITCH * 2 <= W2B && NT2 % 2 == 0 && KT >= KG,
                "the shared-memory plan");
  extern __shared__ __align__(16) unsigned char smem[];
  T* ring = reinterpret_cast<T*>(smem);           // [STAGES][STAGE]
  float* red = reinterpret_cast<float*>(smem);    // [MP][P1PITCH], then [KS2][MP2][P2PITCH]: partial sums
  T* map = reinterpret_cast<T*>(smem + RINGB);    // [LR][MW][MPITCH]: the group's bottleneck map
  T* w2s = reinterpret_cast<T*>(smem + RINGB + MAPB);  // [TAPS][KP2][W2PITCH]
  uint2* nh = reinterpret_cast<uint2*>(smem + RINGB + MAPB + W2B);  // [SPB * BK / 2] (beta pair, gamma pair)
  float* b1s = reinterpret_cast<float*>(nh + SPB * BK / 2);          // [NW]
  float* b2s = b1s + NW;                                             // [KP2]
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const unsigned rank = blockIdx.x % static_cast<unsigned>(CS);  // (a cluster's blocks are consecutive)
  const unsigned cluster = blockIdx.x / static_cast<unsigned>(CS);
  const long long img = cluster / static_cast<unsigned>(BANDS);
  if (img >= batch) {  // (a whole cluster: the launch is batch x BANDS clusters)
    pdl_wait();
    return;
  }
  // The band's output rows b0 .. b1 - 1; its 1x1 conv's, e0 .. e1 - 1 (with the k x k conv's
  // halo rows: PH above, PH below, inside the image), ME pixels from pixel e0 * W of the image.
  const int b0 = static_cast<int>(cluster % static_cast<unsigned>(BANDS)) * BR;
  const int b1 = min(H, b0 + BR);
  const int e0 = max(0, b0 - PH);
  const int e1 = min(H, b1 + PH);
  const int ME = (e1 - e0) * W;
  const int ng = static_cast<int>(rank) % NG;  // the 1x1 conv's slot group; the k x k conv's channel group
  const int kg = static_cast<int>(rank) / NG;  // its reduction group; the pixel group of both
  const int ka = kg * KT / KG;
  const int steps = (kg + 1) * KT / KG - ka;
  const unsigned ring_s = shared_address(ring);
  const unsigned red_s = shared_address(red);
  const unsigned map_s = shared_address(map);
  const unsigned nh_s = shared_address(nh);
  // What no kernel writes, before the wait for the kernel before: the map's zeros (its border,
  // and rows past the image), the folded batch norm's pairs of this block's slots (0 past C),
  // the biases, the k x k conv's filter (row (tap, n): the group's slots) and the 1x1 conv's
  // filter rows of the first STAGES - 1 steps (one cp.async group, the oldest).
  for (int i = tid; i < MAPB / 16; i += NTHREADS) {
    reinterpret_cast<uint4*>(smem + RINGB)[i] = make_uint4(0u, 0u, 0u, 0u);
  }
  for (int i = tid; i < steps * BK / 2; i += NTHREADS) {
    const int pr = ka * BK / 2 + i;
    nh[i] = 2 * pr < C ? reinterpret_cast<const uint2*>(fold)[pr] : make_uint2(0u, 0u);
  }
  for (int i = tid; i < NW; i += NTHREADS) {
    b1s[i] = bias1 != nullptr ? bias1[ng * NW + i] : 0.0f;
  }
  for (int i = tid; i < KP2; i += NTHREADS) {
    b2s[i] = bias2 != nullptr ? bias2[i] : 0.0f;
  }
  for (int i = tid; i < TAPS * KP2 * (NW / 8); i += NTHREADS) {
    const int row = i / (NW / 8);
    const int c8 = i % (NW / 8);
    const int tap = row / KP2;
    const int n = row % KP2;
    cp_async16(w2s + row * W2PITCH + c8 * 8, w2 + (static_cast<long long>(n) * TAPS + tap) * KP1 + ng * NW + c8 * 8, true);
  }
  // This thread's input vectors: row r (pixel e0 * W + r of the image), 8 slots from kc * 8 of a
  // step — its byte offset in a stage (~0: none), its source (null past the band's pixels), its
  // first slot; likewise its filter vectors (rows ng * NW + n).
  const T* src[AU];
  unsigned adst[AU];
  int ak[AU];
#pragma unroll
  for (int u = 0; u < AU; ++u) {
    const int i = tid + u * NTHREADS;
    const int r = i / (BK / 8);
    const int kc = i % (BK / 8);
    adst[u] = i < AV ? static_cast<unsigned>((r * PITCH + kc * 8) * 2) : ~0u;
    ak[u] = kc * 8;
    src[u] = i < AV && r < ME ? x + img * XIMG + static_cast<long long>(e0 * W + r) * XPIX + kc * 8 : nullptr;
  }
  const T* bsrc[BU];
  unsigned bdst[BU];
  int bk8[BU];
#pragma unroll
  for (int u = 0; u < BU; ++u) {
    const int i = tid + u * NTHREADS;
    const int n = i / (BK / 8);
    const int kc = i % (BK / 8);
    bdst[u] = i < BV ? static_cast<unsigned>(((MP + n) * PITCH + kc * 8) * 2) : ~0u;
    bk8[u] = kc * 8;
    bsrc[u] = w1 + static_cast<long long>(ng * NW + (i < BV ? n : 0)) * CI + kc * 8;
  }
  // Step j of this block's (reduction step ka + j) into stage j % STAGES.
  auto stage_a = [&](int j) {
    const int kt = ka + j;
    const unsigned st = ring_s + static_cast<unsigned>((j % STAGES) * STAGE * 2);
#pragma unroll
    for (int u = 0; u < AU; ++u) {
      if (adst[u] != ~0u) {
        const bool ok = src[u] != nullptr && (CI % BK == 0 || kt * BK + ak[u] < CI);
        cp_async16_at(st + adst[u], ok ? src[u] + kt * BK : x, ok);
      }
    }
  };
  auto stage_b = [&](int j) {
    const int kt = ka + j;
    const unsigned st = ring_s + static_cast<unsigned>((j % STAGES) * STAGE * 2);
#pragma unroll
    for (int u = 0; u < BU; ++u) {
      if (bdst[u] != ~0u) {
        const bool ok = CI % BK == 0 || kt * BK + bk8[u] < CI;
        cp_async16_at(st + bdst[u], ok ? bsrc[u] + kt * BK : w1, ok);
      }
    }
  };
#pragma unroll
  for (int j = 0; j < STAGES - 1; ++j) {
    if (j < steps) stage_b(j);
  }
  cp_async_commit();
  pdl_wait();
#pragma unroll
  for (int j = 0; j < STAGES - 1; ++j) {
    if (j < steps) stage_a(j);
    cp_async_commit();
  }
)src" << one_by_one_source() << R"src(  __syncthreads();  // the pairs in (normalize reads them)
#pragma unroll 1
  for (int j = 0; j < steps; ++j) {
    cp_async_wait<STAGES - 2>();
    normalize(j);
    __syncthreads();  // step j in and normalized for every thread; step j - 1's stage free to refill
    if (j + STAGES - 1 < steps) {
      stage_a(j + STAGES - 1);
      stage_b(j + STAGES - 1);
    }
    cp_async_commit();
    const unsigned st = ring_s + static_cast<unsigned>((j % STAGES) * STAGE * 2);
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      unsigned b0, b1, b2, b3;
      ldsm4_at(b0, b1, b2, b3, st + b_lane + ks * 32);
#pragma unroll
      for (int i = 0; i < MTW1; ++i) {
        if (wm + i * WM1 < MT) {  // (the warp's: uniform)
          unsigned af[4];
          ldsm4_at(af[0], af[1], af[2], af[3], st + a_lane + (i * WM1 * 16 * PITCH * 2 + ks * 32));
          mma_16816<T>(acc[i][0], af[0], af[1], af[2], af[3], b0, b1);
          mma_16816<T>(acc[i][1], af[0], af[1], af[2], af[3], b2, b3);
        }
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp past its last step (the ring free); the filters in
  // This block's partial sums of the 1x1 conv, [MP][P1PITCH] in the ring's space.
#pragma unroll
  for (int i = 0; i < MTW1; ++i) {
    const int mt = wm + i * WM1;
    if (mt < MT) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = mt * 16 + (lane >> 2) + 8 * h;
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int n = wn * 16 + j * 8 + 2 * (lane & 3);
          *reinterpret_cast<float2*>(red + r * P1PITCH + n) = make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
        }
      }
    }
  }
  cluster_barrier();  // every block's partial sums written, every map's zeros in
  // Pixel group kg: the band's output rows g0 .. g1 - 1.
  const int g0 = min(b1, b0 + kg * RH);
  const int g1 = min(b1, b0 + (kg + 1) * RH);
  // The bottleneck of pixel group kg's rows (the first group's also the halo above the band, the
  // last's the halo below), the group's slots: the KG partial sums added in order, the bias, the
  // activation, rounded to T, 8 slots a vector into the map of every block of channel group ng
  // that holds the row (its own rows or its halo).
  {
    constexpr int CH1 = NW / 8;
    const int y0 = kg == 0 ? e0 : g0;
    const int np = max(0, (kg == KG - 1 ? e1 : g1) - y0) * W;
    for (int e = tid; e < np * CH1; e += NTHREADS) {
      const int pix = y0 * W + e / CH1;  // (of the image)
      const int ch = e % CH1;
      const unsigned off = red_s + static_cast<unsigned>(((pix - e0 * W) * P1PITCH + ch * 8) * 4);
      float s[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int q = 0; q < KG; ++q) {
        const unsigned a = cl_map(off, static_cast<unsigned>(q * NG + ng));
        const float4 lo = cl_ld4(a);
        const float4 hi = cl_ld4(a + 16);
        s[0] += lo.x; s[1] += lo.y; s[2] += lo.z; s[3] += lo.w;
        s[4] += hi.x; s[5] += hi.y; s[6] += hi.z; s[7] += hi.w;
      }
      unsigned v[4];
#pragma unroll
      for (int e2 = 0; e2 < 4; ++e2) {
        const int n = ch * 8 + 2 * e2;
        const int gn = ng * NW + n;
        const float v0 = activate_as<A1>(act1, s[2 * e2] + b1s[n]);
        const float v1 = activate_as<A1>(act1, s[2 * e2 + 1] + b1s[n + 1]);
        v[e2] = pack2<T>(gn < K1 ? v0 : 0.0f, gn + 1 < K1 ? v1 : 0.0f);
      }
      const int yy = pix / W - b0;  // (the band's row: -PH .. BR + PH - 1)
      const int xx = pix - (yy + b0) * W;
      const int t0 = yy / RH;
#pragma unroll
      for (int dt = -TD; dt <= TD; ++dt) {
        const int t = t0 + dt;
        const int ly = yy - t * RH + PH;  // the row in group t's map
        if (t >= 0 && t < KG && ly >= 0 && ly < LR) {
          const unsigned d = map_s + static_cast<unsigned>(((ly * MW + xx + PW) * MPITCH + ch * 8) * 2);
          cl_st4(cl_map(d, static_cast<unsigned>(t * NG + ng)), make_uint4(v[0], v[1], v[2], v[3]));
        }
      }
    }
  }
  cluster_barrier();  // every map complete; every block's partial sums read
  // The k x k conv of pixel group kg's output rows over channel group ng (the map's slots):
  // warp (mg, q) computes m-tiles mg, mg + MS2, ... over part q of the 16-slot steps (step s:
  // tap s / (NW / 16), slots (s % (NW / 16)) * 16 ..).
  const int oy0 = g0;
  const int m2 = (g1 - g0) * W;  // the group's output pixels
  const int mg = warp % MS2;
  const int q2 = warp / MS2;
  const int s0 = q2 * K16 / KS2;
  const int s1 = (q2 + 1) * K16 / KS2;
  float acc2[MTW2][NT2][4];
#pragma unroll
  for (int i = 0; i < MTW2; ++i) {
#pragma unroll
    for (int j = 0; j < NT2; ++j) {
      acc2[i][j][0] = acc2[i][j][1] = acc2[i][j][2] = acc2[i][j][3] = 0.0f;
    }
  }
  constexpr int C16 = NW / 16;
  unsigned a2[MTW2];
#pragma unroll
  for (int i = 0; i < MTW2; ++i) {
    int r = (mg + i * MS2) * 16 + (lane & 15);
    r = r < m2 ? r : 0;  // (rows past the group's pixels: any pixel, never stored)
    const int ly = r / W;
    a2[i] = map_s + static_cast<unsigned>(((ly * MW + (r - ly * W)) * MPITCH + (lane >> 4) * 8) * 2);
  }
)src" << kxk_steps_source() << R"src(  // Part q2's partial sums, [KS2][MP2][P2PITCH] in the ring's space (the 1x1 conv's partial sums
  // read by every block: the barrier above).
#pragma unroll
  for (int i = 0; i < MTW2; ++i) {
    const int mt = mg + i * MS2;
    if (mt < MT2) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = mt * 16 + (lane >> 2) + 8 * h;
#pragma unroll
        for (int j = 0; j < NT2; ++j) {
          *reinterpret_cast<float2*>(red + (q2 * MP2 + r) * P2PITCH + j * 8 + 2 * (lane & 3)) =
              make_float2(acc2[i][j][2 * h], acc2[i][j][2 * h + 1]);
        }
      }
    }
  }
  cluster_barrier();  // every block's partial sums written
  // This block's share of its pixel group's outputs: the NG blocks' parts added in order (block
  // by block, part by part), the bias, the activation, rounded to T: 16-byte vectors into the
  // result (the slots past K2 as 0).
  {
    constexpr int CH2 = KP2 / 8;
    const int i0 = ng * m2 / NG;
    const int i1 = (ng + 1) * m2 / NG;
    for (int e = tid; e < (i1 - i0) * CH2; e += NTHREADS) {
      const int i = i0 + e / CH2;
      const int ch = e % CH2;
      float s[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 1
      for (int g = 0; g < NG; ++g) {
#pragma unroll
        for (int part = 0; part < KS2; ++part) {
          const unsigned a = cl_map(red_s + static_cast<unsigned>(((part * MP2 + i) * P2PITCH + ch * 8) * 4),
                                    static_cast<unsigned>(kg * NG + g));
          const float4 lo = cl_ld4(a);
          const float4 hi = cl_ld4(a + 16);
          s[0] += lo.x; s[1] += lo.y; s[2] += lo.z; s[3] += lo.w;
          s[4] += hi.x; s[5] += hi.y; s[6] += hi.z; s[7] += hi.w;
        }
      }
      unsigned v[4];
#pragma unroll
      for (int e2 = 0; e2 < 4; ++e2) {
        const int n = ch * 8 + 2 * e2;
        const float v0 = activate_as<A2>(act2, s[2 * e2] + b2s[n]);
        const float v1 = activate_as<A2>(act2, s[2 * e2 + 1] + b2s[n + 1]);
        v[e2] = pack2<T>(n < K2 ? v0 : 0.0f, n + 1 < K2 ? v1 : 0.0f);
      }
      *reinterpret_cast<uint4*>(y + img * YIMG + static_cast<long long>(oy0 * W + i) * YPIX + ch * 8) =
          make_uint4(v[0], v[1], v[2], v[3]);
    }
  }
  // Every block's partial sums read before any block leaves (its shared memory goes with it):
  // the arrive relaxed — nothing written here is read after it.
  cluster_reads_done();
#else
  static_assert(sizeof(T) == 0, "bottleneck_conv's cluster form: compute capability 9.0 on");
#endif
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace bneck

template <DType P>
class BottleneckConv final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "bottleneck_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && bneck::runs(op);
  }
  [[nodiscard]] bool fuses_bottleneck(const Variant&) const override { return true; }
  [[nodiscard]] bool writes_slice(const OpDesc& op) const override {
    return op.slice.has_value() && bneck::runs(op);
  }
  /// Claimed ahead of the two ops' kernels (rank joins) where a block stacks images and a batch
  /// gives bneck::claim_blocks blocks or more (bneck::claimed), with the least images a block whose
  /// tile has 96 rows (bneck::choose_g); offered to measured tuning wherever it runs.
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    if (!bneck::claimed(op, batch)) {
      return std::nullopt;
    }
    Claim c;
    c.variant.tactic = std::string(name());
    c.variant.math = bneck::choose_g(op) - 1;
    c.rank = rank::joins;
    return c;
  }
  /// Offered to measured tuning: tiles of 1, 2 and 4 images where they fit (`math` = images - 1);
  /// at batches up to bottleneck_cluster_max_batch on compute capability 9.0 on, also the cluster
  /// form — an image (or a band of it: `fuse` bands, bneck::cluster_bands) a cluster of 8 or 16
  /// blocks (`algo`) in 2 or 4 n-groups (`math`) — where it fits (bneck::cluster_plan).
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries&) const override {
    std::vector<Variant> v;
    if (!bneck::shape_fits(op)) {
      return v;
    }
    for (const int g : {1, 2, 4}) {
      if (bneck::plan(op, g).rows > 0) {
        v.push_back(Variant{std::string(name()), 0, g - 1});
      }
    }
    if (batch <= bottleneck_cluster_max_batch && device_arch() >= 90) {
      for (const bneck::ClusterForm& f : bneck::cluster_forms(op)) {
        v.push_back(Variant{std::string(name()), f.cs, f.ng, f.bands > 1 ? f.bands : 0});
      }
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    STRATA_CHECK(v.algo == 0 || device_arch() >= 90,
                 "cuda::Engine: layer '" << op.label << "': bottleneck_conv algo " << v.algo
                                         << " runs thread-block clusters (compute capability 9.0 on)");
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    STRATA_CHECK(io.bottleneck_norm_x != nullptr && io.bottleneck_weights != nullptr &&
                     io.bottleneck_norm_weights != nullptr,
                 "cuda::Engine: layer '" << op.label << "': bottleneck_conv without its bottleneck's buffers");
    const OpDesc& b = *op.bottleneck;
    const float* scale = io.bottleneck_norm_weights->scale_f32.template as<const float>();
    const float* shift = io.bottleneck_norm_weights->shift_f32.template as<const float>();
    STRATA_CHECK(scale != nullptr && shift != nullptr,
                 "cuda::Engine: layer '" << op.label << "': the batch norm '" << b.norm->label
                                         << "' has no scale and shift on the device");
    // The 1x1 conv's filter with the batch norm's scale folded in, and the (s / α, f / α) pairs.
    const normed::FoldedBuffers folded = normed::upload_folded<P>(b, io.bottleneck_weights->weight, scale, shift);
    const std::shared_ptr<DeviceBuffer> fw = folded.filter;
    const std::shared_ptr<DeviceBuffer> ff = folded.pairs;
    const T* x = static_cast<const T*>(io.bottleneck_norm_x);
    const T* pairs = ff->template as<const T>();
    const T* w1 = fw->template as<const T>();
    const float* bias1 = io.bottleneck_weights->bias_f32.template as<const float>();
    const T* w2 = w.weight.template as<const T>();
    const float* bias2 = w.bias_f32.template as<const float>();
    T* y = static_cast<T*>(io.y);
    const int device = generated::device_sms().device;
    // Whole images a block (algo 0: tiles of math + 1), or an image a cluster of algo blocks.
    long long blocks = 0;
    std::size_t shared = 0;
    std::ostringstream how;
    if (v.algo == 0) {
      const int g = v.math + 1;
      blocks = (static_cast<long long>(batch) + g - 1) / g;
      shared = static_cast<std::size_t>(bneck::plan(op, g).shared);
      generated::allow_shared(k, device, shared, op.label, "bottleneck_conv");
      how << "shared memory; mma.sync, 16 warps; tiles of " << g << " image(s)";
    } else {
      const bneck::ClusterPlan p = bneck::cluster_plan(op, v.algo, v.math, std::max(1, v.fuse));
      blocks = static_cast<long long>(batch) * p.bands * v.algo;
      shared = static_cast<std::size_t>(p.shared);
      generated::allow_shared(k, device, shared, op.label, "bottleneck_conv");
      generated::allow_cluster(k, device, v.algo, op.label, name());
      generated::check_clusters_fit(k, v.algo, bneck::threads, shared, op.label, "bottleneck_conv");
      how << "distributed shared memory; mma.sync, "
          << (p.bands > 1 ? "a band of " + std::to_string(p.br) + " rows of an image" : std::string("an image"))
          << " a cluster of " << v.algo << " blocks of 16 warps: " << p.ng << " groups of " << p.nw << " slots x "
          << p.kg << " of the reduction and of the rows";
    }
    STRATA_CHECK(blocks <= 0x7fffffffLL, "cuda::Engine: layer '" << op.label << "': bottleneck_conv would launch "
                                                                 << blocks << " blocks at batch " << batch);
    std::ostringstream what;
    what << "strata bottleneck + conv (the batch norm, the 1x1 conv and the " << op.conv.kh << "x" << op.conv.kw
         << " conv as one kernel, the bottleneck's " << b.conv.k << " channels kept in " << how.str()
         << (op.slice ? ", writing channels " + std::to_string(op.slice->c0) + ".." +
                            std::to_string(op.slice->c0 + op.conv.k - 1) + " of a concat"
                      : std::string())
         << (b.norm->in_slice ? ", reading channels 0.." + std::to_string(b.norm->in_shape.c - 1) +
                                    " of the concat in place"
                              : std::string())
         << ", shapes compiled in)";
    const unsigned grid = static_cast<unsigned>(blocks);
    return kernel_step(what.str(), [=](cudaStream_t s) {
      (void)fw;  // (owned by the step)
      (void)ff;
      rtc::launch_shared(k, grid, static_cast<unsigned>(bneck::threads), shared, s, x, pairs, w1, bias1, w2,
                         bias2, y, batch);
    });
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v, const OpIo&) const override {
    STRATA_CHECK((v.algo == 0 && v.fuse == 0 && v.math >= 0 && v.math < 8) ||
                     ((v.algo == 8 || v.algo == 16) && (v.math == 2 || v.math == 4) &&
                      (v.fuse == 0 || v.fuse == 2 || v.fuse == 4 || v.fuse == 8)),
                 "'" << op.label << "': bottleneck_conv has tiles of 1 to 8 images (algo 0, math 0 to 7, fuse 0) and "
                                    "an image, or bands of it, a cluster of 8 or 16 blocks (algo 8 or 16) in 2 or 4 "
                                    "n-groups (math 2 or 4) — fuse 0 one band, 2, 4 or 8 bands; not "
                     << to_string(v));
    STRATA_CHECK(bneck::shape_fits(op), "'" << op.label << "': bottleneck_conv runs a conv with a folded bottleneck "
                                                           "(fold_bottleneck_convs) of the shapes it takes");
    if (v.algo != 0) {
      const int bands = std::max(1, v.fuse);
      STRATA_CHECK(bneck::cluster_plan(op, v.algo, v.math, bands).cs > 0,
                   "'" << op.label << "': bottleneck_conv's cluster form does not fit this layer as " << to_string(v)
                       << " (the 1x1 conv's reduction steps at least the k-groups, no band empty, the warps' tiles "
                          "and the shared memory within bounds)");
      return this->named(bneck::cluster_source(op, v.algo, v.math, bands));
    }
    return this->named(bneck::source(op, v.math + 1));
  }
};

}  // namespace strata::cuda::tactics
