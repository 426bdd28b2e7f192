#pragma once
/// Tactic `expand_depthwise`: an inverted-residual block's 1×1 expansion and the depthwise conv
/// after it (OpDesc::expand, fold_expanded_depthwise; 16-bit NHWC) as one kernel generated for
/// the pair, the expanded map — six times the block's input in MobileNetV2 and EfficientNet —
/// never stored. A block takes a tile of output pixels of one image: it stages the input patch
/// the tile's windows read (every input channel, zero outside the map) in shared memory once,
/// then for each chunk of expanded channels it computes the chunk's expanded patch on tensor
/// cores (mma.sync m16n8k16, f32 accumulation; the expansion's weights for the next chunk
/// copied in meanwhile), adds the bias, applies the expansion's activation (or the one deferred
/// into the depthwise conv's read) and rounds to the storage type as the unfused path stores it,
/// zero outside the map — the depthwise conv's padding — and the depthwise conv reads it from
/// shared memory: each thread a channel pair of R output rows × 4 output columns, the window
/// rows in registers, as the band kernel does (band_depthwise.hpp).
///
/// Forms (Variant): algo 0, the above (measured, GPU-tested; offered and claimed); algo 1,
/// pipelined — the expansion of chunk c + 1 beside the depthwise conv of chunk c, the expanded
/// patch double-buffered, one barrier a chunk; math G, the chunks split over G blocks a tile.
/// Algo 1 and math passed their forced GPU tests in session 26 and were timed forced on every
/// joined op of MobileNetV2 and EfficientNet-B0 (H200): slower than the plain form wherever it is
/// claimed at batch 256, and than the unjoined pair at batch 1 but for MobileNetV2's features.2
/// (algo 1 math 2: 9.8 -> 6.0 µs); so only forced runs take them. Algo 2 (session 62): the plain
/// form compiled for one block an SM more (denser_blocks), forced only. Algo 4 (session 67,
/// written without a GPU): the plain form with the expansion's n-tiles split evenly over its
/// units (tiles_a_group), forced only. Fuse 1: the joined projection; fuse 3 (session 67): the
/// joined squeeze-excite op's channel sums, then depthwise_band's gate kernel.
///
/// Why: at batch 256 on an H200 (session 25's first profile) MobileNetV2's sixteen expansions
/// took 1,114 µs and its seventeen depthwise convs 1,500 of its 3,388 — the expanded map written
/// by one and read by the other (features.2's expansion alone wrote 616 MB in 410 µs). Joined,
/// the pair reads the block's input and writes the depthwise conv's output only.
#include <cuda_runtime.h>

#include <algorithm>
#include <initializer_list>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "strata/cuda/device.hpp"
#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/band_depthwise.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"

namespace strata::cuda::tactics {

namespace expand_dw {

/// Threads a block, and output columns a thread computes for its channel pair.
inline constexpr int threads = 256;
inline constexpr int cols = 4;
/// Shared memory a block at most: two blocks share an SM (227 KiB on the H100/H200).
inline constexpr std::int64_t max_shared = 112 << 10;

/// A block's shape for one op: its output tile, the patch it stages, the chunks of expanded
/// channels it runs the expansion in, and the depthwise conv's threads.
struct Plan {
  int th = 0, tw = 0;            ///< output rows × columns a block
  int rows = 0;                  ///< output rows a thread (R)
  int strips = 0, groups = 0;    ///< th / rows, tw / cols
  int rows_in = 0, cols_in = 0;  ///< the patch's input rows × columns
  int np = 0, mp = 0;            ///< patch pixels, and rounded up to 16 (the GEMM's rows)
  int ki = 0;                    ///< input slots (the GEMM's reduction, a multiple of 8)
  int xp = 0;                    ///< 16-bit elements a staged pixel row (odd 16-byte chunks)
  int nc = 0;                    ///< expanded channels a chunk (a multiple of 8, at most 64)
  int chunks = 0;
  int ep = 0;                    ///< 4-byte words an expanded pixel's row (padded: fewer conflicts)
  int tiles_y = 0, tiles_x = 0;
  /// With the projection joined (fuse 1; 0 without): its output slots, the pitches (16-bit
  /// elements) of the tile's depthwise outputs (ds) and of its weights (wps).
  int co = 0, dp = 0, wpp = 0;
  /// The cluster form (algo 3; 0 in the others): the chunks split over a cluster of `cluster`
  /// blocks a tile, `nmax` chunks a block at most (wpp: the pitch of those chunks' projection
  /// weights), the projection's partial sums exchanged in rows of `rp` floats.
  int cluster = 0, nmax = 0, rp = 0;
  /// The sums form (fuse 3; false in the others): a chunk's channel sums by thread group in
  /// shared memory after the expanded patch, [STRIPS · groups][NC] floats.
  bool sums = false;
  std::int64_t shared = 0;
  [[nodiscard]] int pairs() const { return nc / 2; }
  [[nodiscard]] int items() const { return pairs() * strips * groups; }
  /// The projection's units (m16n8 tiles of its output) a warp at most (fuse 1).
  [[nodiscard]] int units_a_warp() const { return (th * tw / 16 * (co / 8) + threads / 32 - 1) / (threads / 32); }
};

/// The most threads of a warp whose 4-byte words fall in one bank (1 = none): the depthwise
/// conv's first read of the expanded patch (threads: pairs fastest, then strips, then column
/// groups), plus the expansion's epilogue's stores (rows lane / 4, pairs lane % 4).
[[nodiscard]] inline int conflicts(const Plan& p, int s, int ep) {
  int worst_read = 1;
  int worst_store = 1;
  int read[32] = {};
  int store[32] = {};
  for (int t = 0; t < 32; ++t) {
    const int pr = t % p.pairs();
    const int g = t / p.pairs();
    const int st = g % p.strips;
    const int cg = g / p.strips;
    const long long word = (static_cast<long long>(st) * p.rows * s * p.cols_in + cg * cols * s) * ep + pr;
    worst_read = std::max(worst_read, ++read[word % 32]);
    worst_store = std::max(worst_store, ++store[((t / 4) * ep + t % 4) % 32]);
  }
  return worst_read + worst_store;
}

/// Whether `op`'s folded expansion is the network's stem (fold_stem_depthwise, EngineOptions::
/// stem_joins): a 2×2 conv over space-to-depth blocks of the caller's input (stem_expansion),
/// which the kernel stages itself — each patch pixel's four blocks of 16 slots, 64 a row, the
/// stem's filter rows as stored — instead of a 1×1 conv's input pixels.
[[nodiscard]] inline bool stem(const OpDesc& op) { return joined_stem(op); }

/// Whether the stem form (stem) has passed its GPU tests ("expand_depthwise with the stem: ..."
/// in tests/gpu/test_deploy_layers.cpp): until then the heuristic claims no joined stem and
/// measured tuning is offered none; a force runs it.
inline constexpr bool stem_gpu_tested = false;

/// Whether the kernel runs `op`: a depthwise conv with a folded expansion (fold_expanded_depthwise)
/// of dilation 1 whose output has its input's slots, the expansion a 1×1 GEMM over the same map —
/// or the network's stem over the input's space-to-depth blocks (fold_stem_depthwise), whose
/// output map is the depthwise conv's input.
[[nodiscard]] inline bool shapes_fit(const OpDesc& op) {
  if (!op.expand) {
    return false;
  }
  const ConvGeom& g = op.conv;
  const ConvGeom& e = op.expand->conv;
  const bool dw = depthwise_runs(op) && g.dh == 1 && g.dw == 1 && g.cp == g.kp && g.cp % 8 == 0 && op.in_cp == g.cp;
  if (stem(op)) {
    return dw && e.c == 12 && e.cp == 16 && e.kh == 2 && e.kw == 2 && e.sh == 1 && e.sw == 1 && e.ph == 0 &&
           e.pw == 0 && e.groups == 1 && e.packed && e.fcg == e.cp && e.kd == e.kp && e.kp == g.cp &&
           e.oh == g.h && e.ow == g.w;
  }
  return dw && e.kh == 1 && e.kw == 1 && e.sh == 1 && e.sw == 1 && e.ph == 0 &&
         e.pw == 0 && e.groups == 1 && e.packed && !e.s2d && e.cp % 8 == 0 && e.fcg == e.cp &&
         e.kd == e.kp && e.kp == g.cp && e.h == g.h && e.w == g.w;
}

/// Whether the kernel can also run `op`'s joined projection (OpDesc::project, fold_projected_depthwise):
/// a 1×1 GEMM over the depthwise conv's output slots into output slots in 8s.
[[nodiscard]] inline bool projection_fits(const OpDesc& op) {
  if (!op.project || !shapes_fit(op)) {
    return false;
  }
  const ConvGeom& q = op.project->conv;
  return q.cp == op.conv.kp && q.kp % 8 == 0 && q.kd == q.kp && q.fcg == q.cp && op.project->out_cp == q.kp;
}

/// Whether the joined projection's residual is the block's input as the kernel stages it (the
/// expansion's input, the same slots; stride 1, so each output pixel's input is in the patch):
/// the kernel then adds it from shared memory.
[[nodiscard]] inline bool residual_staged(const OpDesc& op) {
  const OpDesc& q = *op.project;
  const OpDesc& e = *op.expand;
  return !stem(op) && q.has_residual && q.z_offset >= 0 && q.z_offset == e.in_offset && q.z_id == e.in_id &&
         q.out_cp == e.in_cp && op.conv.sh == 1 && op.conv.sw == 1;
}

/// The block shape of output tiles `th`×`tw` and chunks of `nc` expanded channels for `op`
/// with `ebufs` expanded patches, with its joined projection where `project`, its chunks split
/// over a cluster of `cluster` blocks (the cluster form; 0: the others), within `limit` bytes of
/// shared memory (nc = 0 where none fits).
[[nodiscard]] inline Plan shaped(const OpDesc& op, int th, int tw, int nc, int ebufs, bool project,
                                 int cluster = 0, std::int64_t limit = max_shared, bool sums = false) {
  Plan q;
  q.sums = sums;
  const ConvGeom& g = op.conv;
  const ConvGeom& e = op.expand->conv;
  // (a multiple of 8: the last 8 of a reduction 8 past a multiple of 16 on m16n8k8; a stem's
  // row: its four taps' space-to-depth blocks, 64 slots)
  q.ki = stem(op) ? e.kh * e.kw * e.cp : e.cp;
  q.xp = generated::odd_chunks(q.ki);
  q.th = th;
  q.tw = tw;
  q.nc = nc;
  q.chunks = g.cp / nc;
  if (project) {
    q.co = op.project->conv.kp;
    q.wpp = generated::odd_chunks(g.cp);
  }
  if (cluster > 0) {  // (each block's share of the chunks, their projection weights alone)
    q.cluster = cluster;
    q.nmax = (q.chunks + cluster - 1) / cluster;
    q.wpp = generated::odd_chunks(q.nmax * nc);
    q.rp = q.co + (8 - q.co % 32 + 32) % 32;  // (a float2's rows on distinct bank quarters)
  }
  q.rows_in = (th - 1) * g.sh + g.kh;
  q.cols_in = (tw - 1) * g.sw + g.kw;
  q.np = q.rows_in * q.cols_in;
  q.mp = (q.np + 15) / 16 * 16;
  // Two output rows a thread, unless that leaves most threads without one.
  q.rows = q.pairs() * (th / 2) * (tw / cols) * 2 > threads ? 2 : 1;
  q.strips = th / q.rows;
  q.groups = tw / cols;
  // The projection's: the tile's depthwise outputs, its weights and bias (its f32 sums in
  // registers), and in the cluster form the tile's partial sums.
  q.dp = project ? generated::odd_chunks(nc) : 0;
  const std::int64_t joined =
      project ? std::int64_t{2} * th * tw * q.dp + std::int64_t{2} * q.co * q.wpp + std::int64_t{4} * q.co +
                    std::int64_t{4} * th * tw * q.rp
              : 0;
  const std::int64_t summed = sums ? std::int64_t{4} * q.strips * q.groups * nc : 0;
  // The expanded rows' pitch with the fewest conflicts (the narrowest of those) that fits — for a
  // stem, wide enough that the caller's input rows the tile reads fit the expanded patch's buffer
  // (stem_patch stages them there, in f32, before the expansion).
  const std::int64_t raw = stem(op) ? std::int64_t{4} * (e.c / 4) * (2 * q.rows_in + 2) * (2 * q.cols_in + 2) : 0;
  int best = 1 << 30;
  for (int ep = q.pairs(); ep < q.pairs() + 32; ++ep) {
    if (std::int64_t{4} * q.mp * ep < raw) {
      continue;
    }
    const int c = conflicts(q, g.sh, ep);
    const std::int64_t shared = std::int64_t{2} * q.mp * q.xp + std::int64_t{2} * 2 * nc * q.xp +
                                std::int64_t{4} * q.mp * ep * ebufs + joined + summed;
    if (c < best && shared <= limit) {
      best = c;
      q.ep = ep;
      q.shared = shared;
    }
  }
  if (q.ep == 0) {
    return Plan{};
  }
  q.tiles_y = (g.oh + th - 1) / th;
  q.tiles_x = (g.ow + tw - 1) / tw;
  return q;
}

/// The block shape for `op` with `ebufs` expanded patches (2: the pipelined form), and with its
/// joined projection where `project` (fuse 1: chunks of 16s, tiles of 16 pixels or more; nc = 0
/// where none fits) or its joined squeeze-excite op's sums where `sums` (fuse 3): the largest
/// tile whose chunks hold 32 channels or more, else the largest with any, the widest chunks first.
/// A joined stem (stem) tries tiles of 8×16 outputs first: its expansion is recomputed over the
/// tile's halo and staged from the caller's input, so a wider tile does less of both an output
/// (EfficientNet-B0's: 180 stem pixels for 128 outputs, against 100 for 64 at 8×8) — where a
/// thread still has one depthwise item (ITEMS <= threads) and the shared memory fits.
[[nodiscard]] inline Plan plan(const OpDesc& op, int ebufs = 1, bool project = false, bool sums = false) {
  if (!shapes_fit(op) || (project && !projection_fits(op)) || (sums && (project || !band::tail_shapes_fit(op)))) {
    return Plan{};
  }
  const int cp = op.conv.cp;
  const bool wide = stem(op);
  for (const int least : {32, 8}) {
    for (const auto& [th, tw] : {std::pair{8, 16}, {8, 8}, {4, 8}, {4, 4}, {2, 4}}) {
      if (tw == 16 && !wide) {
        continue;
      }
      for (int nc = 64; nc >= 8; nc -= 8) {
        if (cp % nc != 0 || nc < least || (project && (nc % 16 != 0 || th * tw % 16 != 0))) {
          continue;
        }
        if (const Plan q = shaped(op, th, tw, nc, ebufs, project, 0, max_shared, sums);
            q.nc > 0 && q.items() <= threads) {
          return q;
        }
      }
    }
  }
  return Plan{};
}

/// Whether the kernel runs `op` (a block shape fits), with its joined projection where `project`.
[[nodiscard]] inline bool fits(const OpDesc& op, bool project = false) {
  return plan(op, 1, project).nc > 0;
}

/// The expansion's n-tiles (8 expanded channels each) a unit of a warp's work computes at most:
/// 4 in the forms measured first, the last group taking the rest (a chunk of 48 channels: 4 and
/// 2 — and with 8 warps and 2 groups each warp always draws the same group, so that half the
/// warps did twice the other half's share: EfficientNet-B0's features.2.0 waited at the barrier
/// after the expansion in 17% of its warps' stall samples, H100, session 67's Nsight Compute).
/// Algo 4 (`balanced`) takes the unit size whose units (m-tiles × groups, dealt to the warps in
/// turn) give the busiest warp the least to issue — a k-step of a unit costed as its A fragment's
/// load (1) and each n-tile's B load and mma (2): from the even split of a chunk's n-tiles into
/// groups of up to 4 (48 channels: 3 and 3) down to 1, ties to the larger. features.2.0 (19
/// m-tiles, 6 n-tiles): 3, the busiest warp 35 against 45 at 4 (4 and 2); a stem's 8×16 tiles
/// (12 m-tiles, 4 n-tiles): 2, 15 against 18.
[[nodiscard]] inline int tiles_a_group(const Plan& p, bool balanced) {
  const int nt8 = p.nc / 8;
  const int groups = (nt8 + 3) / 4;
  if (!balanced) {
    return 4;
  }
  const int even = (nt8 + groups - 1) / groups;
  const int warps = threads / 32;
  const auto busiest = [&](int npg) {  // the busiest warp's cost a k-step with units of npg
    const int ng = (nt8 + npg - 1) / npg;
    int most = 0;
    for (int w = 0; w < warps; ++w) {
      int load = 0;
      for (int u = w; u < p.mp / 16 * ng; u += warps) {
        load += 1 + 2 * std::min(npg, nt8 - (u % ng) * npg);
      }
      most = std::max(most, load);
    }
    return most;
  };
  int best = even;
  for (int npg = even - 1; npg >= 1; --npg) {
    if (busiest(npg) < busiest(best)) {
      best = npg;
    }
  }
  return best;
}

/// Blocks an SM the kernel is compiled for (__launch_bounds__): 3 for 3×3 taps (85 registers a
/// thread: the filters, 2×4 outputs of a pair and a window row fit) where the shared memory of 3
/// fits an SM's 227 KiB, else 2.
[[nodiscard]] inline int min_blocks(const OpDesc& op, const Plan& p) {
  return op.conv.kh == 3 && 3 * (p.shared + 1024) <= (227 << 10) ? 3 : 2;
}

/// Algo 2: the plain form (algo 0) compiled for one block an SM more than min_blocks, where that
/// many blocks' shared memory fits an SM's 227 KiB — fewer registers a thread (64 at 4 blocks of
/// 256 threads: ptxas spilled 100 bytes a thread for features.3, sm_90, session 62) for a third more
/// warps to issue from. MobileNetV2's features.3 at batch 256 (H100, session 61, Nsight Compute)
/// issued on 66.8% of its cycles at 3 blocks an SM, limited by registers and shared memory; only
/// forced until timed.
[[nodiscard]] inline int denser_blocks(const OpDesc& op, const Plan& p) {
  const int b = min_blocks(op, p) + 1;
  return b * (p.shared + 1024) <= (227 << 10) ? b : 0;
}

/// Whether the heuristic runs `op`'s joined projection in the kernel too (fuse 1, where it claims
/// the op): a projection of up to 32 output slots whose block shape fits as many blocks an SM as
/// the plain form's. Measured on an H100 at batch 256 (session 58, MobileNetV2, against the plain
/// form with the projection on cuBLASLt after it): features.2 454.7 -> 421.4 µs, .3 487.0 ->
/// 431.0, .5 170.6 -> 161.8, .6 172.5 -> 161.9, but .7 (64 outputs: 32 of the projection's tiles
/// a chunk) 70.5 -> 106.1. Session 59 (H100): with the reduction's rows unpadded and the sums in
/// registers .4 keeps its 3 blocks an SM, 226.9 + 30.4 -> 248.0; .7 still loses (78.4 against
/// 62.3 + 7.6).
[[nodiscard]] inline bool projection_claimed(const OpDesc& op) {
  const Plan p = plan(op, 1, true);
  return p.nc > 0 && p.co <= 32 && min_blocks(op, p) == min_blocks(op, plan(op));
}

/// Whether the heuristic takes `op` at `batch`: where the kernel was measured faster than the
/// expansion on cuBLASLt and the band kernel after it (H200, batch 256, session 25, forced and
/// heuristic profiles of one lease): 3×3 taps with nothing, ReLU or ReLU6 applied to the
/// expanded map on maps of 28×28 and more (MobileNetV2's features.2–7: 689 -> 385, 419 -> 375,
/// 296 -> 230, 138 -> 129, 89 -> 63 µs), and any 3×3 of 112×112 (EfficientNet-B0's
/// features.2.0, SiLU: 786 -> 595) — and only with a thousand blocks or more (a block takes a
/// tile of an image through every chunk: at batch 1 the maps give too few). Elsewhere the kernel
/// recomputes too much of the expansion over the tile's halo (5×5 taps, 7×7 maps in 8×8 tiles)
/// or its activation (SiLU) for the traffic it saves (MobileNetV2's 14×14 stage: 145 against
/// 100 µs; its 7×7 one: 81 against 44); measured tuning times it everywhere it runs.
[[nodiscard]] inline bool claimed(const OpDesc& op, int batch) {
  if (stem(op) && !stem_gpu_tested) {  // (a joined stem: forced only until its GPU tests pass)
    return false;
  }
  const Plan p = plan(op);
  if (p.nc == 0 || std::int64_t{batch} * p.tiles_y * p.tiles_x < 1024) {
    return false;
  }
  const ConvGeom& g = op.conv;
  const Act a = op.in_act.kind != Act::none ? op.in_act.kind : op.expand->act.kind;
  const bool cheap = a == Act::none || a == Act::relu || a == Act::clip;
  return g.kh == 3 && (g.h >= 112 || (cheap && g.h >= 28));
}

/// Whether the kernel can compute `op`'s joined squeeze-excite op (OpDesc::tail, fold_tailed_gates;
/// fuse 3, the plain form): the gate kernel's shapes (band::tail_shapes_fit) and a block shape
/// with the chunks' sums beside the expanded patch.
[[nodiscard]] inline bool sums_fit(const OpDesc& op) { return plan(op, 1, false, true).nc > 0; }

/// Whether fuse 3 has passed its GPU tests (forced, "expand_depthwise fuse 3: ..." in
/// tests/gpu/test_deploy_layers.cpp): until then the heuristic does not claim it.
inline constexpr bool sums_gpu_tested = true;

/// Whether the heuristic runs `op`'s joined squeeze-excite op in the kernel too (fuse 3: each
/// block's channel sums of its tile as stored, then depthwise_band's gate kernel, a block an
/// image), where it claims the op at `batch` (claimed), the engine has joined the gate
/// (EngineOptions::tail_sums: max batch band::sums_min_batch and more) and the sums fit without
/// costing a block an SM. At batch
/// 256 the squeeze-excite kernel after this one read the whole 56×56×96 map of EfficientNet-B0's
/// features.2.0 back (59 µs of its 610, H100, session 65's Nsight Compute).
[[nodiscard]] inline bool sums_claimed(const OpDesc& op, int batch) {
  // (and only where the sums' table costs no block an SM: features.2.0 keeps its 3)
  return sums_gpu_tested && batch >= band::sums_min_batch && claimed(op, batch) && sums_fit(op) &&
         min_blocks(op, plan(op, 1, false, true)) == min_blocks(op, plan(op));
}

/// The cluster form (algo 3, fuse 1) for small batches, where a tile a block leaves most SMs
/// idle: the chunks of a tile split over a thread-block cluster of up to 16 blocks, each block
/// computing the expansion, the depthwise conv and the projection's partial sums of its chunks;
/// the partial sums then exchanged through distributed shared memory, each block finishing a
/// share of the tile's outputs (bias, residual, activation). Its shape is the variant's math:
/// 1000 · (t + 1) + nc, tile t of cluster_tiles, chunks of nc channels.
inline constexpr int cluster_tiles[3][2] = {{8, 8}, {4, 8}, {4, 4}};
inline constexpr int cluster_max = 16;
/// The shared memory a block of the cluster form may take (one block an SM).
inline constexpr std::int64_t cluster_shared = 227 << 10;
/// The projection's units a warp at most in the cluster form (its sums in registers).
inline constexpr int cluster_units = 8;

/// The cluster form's block shape for math `code` (nc = 0 where it does not fit).
[[nodiscard]] inline Plan cluster_plan(const OpDesc& op, int code) {
  const int t = code / 1000 - 1;
  const int nc = code % 1000;
  if (t < 0 || t > 2 || nc < 16 || nc > 64 || nc % 16 != 0 || !projection_fits(op) || stem(op) ||
      op.conv.cp % nc != 0) {
    return Plan{};
  }
  const int chunks = op.conv.cp / nc;
  const int per = (chunks + cluster_max - 1) / cluster_max;  // chunks a block at most
  const int cluster = (chunks + per - 1) / per;  // (an even split gives each block 1 .. per)
  const Plan p = shaped(op, cluster_tiles[t][0], cluster_tiles[t][1], nc, 1, true, cluster, cluster_shared);
  return p.nc > 0 && p.units_a_warp() <= cluster_units ? p : Plan{};
}

/// Blocks an SM the cluster form is compiled for: 2 where two blocks' shared memory fits.
[[nodiscard]] inline int cluster_blocks_an_sm(const Plan& p) {
  return 2 * (p.shared + 1024) <= (227 << 10) ? 2 : 1;
}

/// The cluster form's shape for `op` at `batch` on `sms` SMs (its math; 0 where none fits): the
/// fewest waves of blocks, each wave costed as a block's fixed latency (its copies, barriers
/// and the exchange: about 3,000 cycles) plus its arithmetic (the expansion and the projection
/// on tensor cores, the depthwise conv on the FMA pipes); ties to fewer blocks, then wider chunks.
/// With `tile` (0 to 2), the best of that tile's shapes.
[[nodiscard]] inline int cluster_choice(const OpDesc& op, int batch, int sms, int tile = -1) {
  int best = 0;
  double best_cost = 0.0;
  long long best_blocks = 0;
  for (int t = 0; t < 3; ++t) {
    if (tile >= 0 && t != tile) {
      continue;
    }
    for (int nc = 64; nc >= 16; nc -= 16) {
      const int code = 1000 * (t + 1) + nc;
      const Plan p = cluster_plan(op, code);
      if (p.nc == 0) {
        continue;
      }
      const long long blocks = static_cast<long long>(batch) * p.tiles_y * p.tiles_x * p.cluster;
      const long long waves = (blocks + std::max(sms, 1) - 1) / std::max(sms, 1);
      const double px = static_cast<double>(p.th) * p.tw;
      const double work = 3000.0 + p.nmax * (static_cast<double>(p.mp) * p.ki * p.nc / 256.0 +
                                              px * p.nc * op.conv.kh * op.conv.kw / 64.0 +
                                              px * p.nc * p.co / 256.0);
      const double cost = static_cast<double>(waves) * work;
      if (best == 0 || cost < best_cost - 1e-9 || (cost < best_cost + 1e-9 && blocks < best_blocks)) {
        best = code;
        best_cost = cost;
        best_blocks = blocks;
      }
    }
  }
  return best;
}

/// Whether the cluster form has a shape for `op` (a joined projection): where it does, the engine
/// joins the projection at max batches up to cluster_max_batch (fold_for_max_batch, on a device
/// with thread-block clusters).
[[nodiscard]] inline bool cluster_fits(const OpDesc& op) {
  return shapes_fit(op) && projection_fits(op) && cluster_choice(op, 1, 1) != 0;
}

/// The largest batch the heuristic runs the cluster form at. MobileNetV2 on an H100 (session 63,
/// strata_bench, every block in it, against the ops apart): batch 1 154.9 -> 105.5 µs, 2 169.6
/// -> 138.9, 4 195.8 -> 194.9 (no gain); with features.2-11 in it (a first run), 8 258.2 ->
/// 269.1 and 16 367.2 -> 384.9.
inline constexpr int cluster_max_batch = 2;

/// Whether the heuristic takes `op` at `batch` on `sms` SMs in the cluster form (its shape; 0:
/// not): a joined projection, at batches up to cluster_max_batch, where the plain form is not
/// claimed (too few tiles), in at most two waves of blocks.
[[nodiscard]] inline int cluster_claimed(const OpDesc& op, int batch, int sms) {
  if (!op.project || batch > cluster_max_batch || claimed(op, batch) || !projection_fits(op)) {
    return 0;
  }
  const int code = cluster_choice(op, batch, sms);
  if (code == 0) {
    return 0;
  }
  const Plan p = cluster_plan(op, code);
  const long long blocks = static_cast<long long>(batch) * p.tiles_y * p.tiles_x * p.cluster;
  return blocks <= 2LL * cluster_blocks_an_sm(p) * sms ? code : 0;
}

/// Pieces of the kernel's source (expand_dw::source), shared by its forms: the chunk's depthwise
/// filters into registers (defines ch, wv, bv for chunk c); the expansion of chunk c from weight
/// buffer @W into expanded buffer @E; the depthwise conv from expanded buffer @E, its epilogue
/// @STORE (store_text, or store_tile for the projection of chunk @PC: fuse 1); the constants
/// derived and the shared-memory layout.
namespace text {
inline constexpr const char* filters = R"src(    // The chunk's depthwise filters and bias into registers first: their loads' latency passes
    // while the expansion runs.
    const int ch = c * NC + 2 * p;
    float wv[KS * KS][2];
    float2 bv = float2{0.0f, 0.0f};
    if (has_item) {
#pragma unroll
      for (int t = 0; t < KS * KS; ++t) {
        wv[t][0] = ch < KREAL ? load(wd + static_cast<long long>(ch) * (KS * KS) + t) : 0.0f;
        wv[t][1] = ch + 1 < KREAL ? load(wd + static_cast<long long>(ch + 1) * (KS * KS) + t) : 0.0f;
      }
      if (bd != nullptr) {
        bv = *reinterpret_cast<const float2*>(bd + ch);
      }
    }
)src";
inline constexpr const char* expansion = R"src(    // The expanded patch of the chunk's channels: X · Wc on tensor cores, + bias, the
    // activations as stored, zero outside the map (the depthwise conv's padding). The warp's
    // units are warp, warp + NWARPS, ... (ku-th: warp + ku NWARPS); an ldmatrix address is the
    // lane's base (staging) plus the unit's and the k-step's offsets, a store the chunk's
    // expanded buffer's lane word (eo) plus the row's and the n-tile's.
    const unsigned wc16 = wb16 + 2u * ((@W) * (NC * XP));
    const unsigned wc8 = wb8 + 2u * ((@W) * (NC * XP));
    const unsigned eo = shared_address(@E) + 4u * ((lane >> 2) * EP + (lane & 3));
    for (int ku = 0; ku < UE; ++ku) {
      const int u = warp + ku * NWARPS;
      if (u >= MT * NG) {
        break;
      }
      const int mt = u / NG;
      const int ng = u % NG;
      float acc[4][4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
      }
      const unsigned am = 2u * (mt * 16 * XP);
      const unsigned bn = 2u * (ng * NPG * 8 * XP);
#pragma unroll
      for (int ks = 0; ks < KI / 16; ++ks) {
        unsigned a0, a1, a2, a3;
        ldsm4_at(a0, a1, a2, a3, xa16 + am + 32u * ks);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (j < NPG && ng * NPG + j < NT8) {
            unsigned b0, b1;
            ldsm2_at(b0, b1, wc16 + bn + 2u * (j * 8 * XP) + 32u * ks);
            mma_16816<T>(acc[j], a0, a1, a2, a3, b0, b1);
          }
        }
      }
      if constexpr (KI % 16 != 0) {  // the reduction's last 8 (input slots 8 past a multiple of 16)
        unsigned a0, a1;
        ldsm2_at(a0, a1, xa8 + am);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (j < NPG && ng * NPG + j < NT8) {
            unsigned b0;
            ldsm1_at(b0, wc8 + bn + 2u * (j * 8 * XP));
            mma_1688<T>(acc[j], a0, a1, b0);
          }
        }
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const bool in = ((inmask >> (2 * ku + h)) & 1u) != 0u;  // (the row in the map: staging)
        const unsigned ro = eo + 4u * ((mt * 16 + 8 * h) * EP);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int nt = ng * NPG + j;
          if (j < NPG && nt < NT8) {
            const int col = nt * 8 + 2 * (lane & 3);
            const float2 bb = be != nullptr ? *reinterpret_cast<const float2*>(be + c * NC + col)
                                            : float2{0.0f, 0.0f};
            unsigned v = pack2<T>(activate_as<EA>(ea, acc[j][2 * h] + bb.x),
                                  activate_as<EA>(ea, acc[j][2 * h + 1] + bb.y));
            v = pair_act_stored<IA, T>(v, in_act, b2.x, b2.y);
            sts32_at(ro + 16u * nt, in ? v : 0u);
          }
        }
      }
    }
)src";
inline constexpr const char* depthwise = R"src(    // The depthwise conv from it: a channel pair of R rows x CW columns of outputs a thread.
    if (has_item) {
      float acc[R][CW][2];
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int q = 0; q < CW; ++q) {
          acc[r][q][0] = 0.0f;
          acc[r][q][1] = 0.0f;
        }
      }
      const unsigned* base = @E + (st * R * S * COLS_IN + cg * CW * S) * EP + p;
#pragma unroll
      for (int j = 0; j < NR; ++j) {
        float2 win[NCW];
#pragma unroll
        for (int q = 0; q < NCW; ++q) {
          const unsigned u = base[(j * COLS_IN + q) * EP];
          const T* hv = reinterpret_cast<const T*>(&u);
          win[q] = float2{load(hv), load(hv + 1)};
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const int ky = j - r * S;
          if (ky >= 0 && ky < KS) {
#pragma unroll
            for (int q = 0; q < CW; ++q) {
#pragma unroll
              for (int kx = 0; kx < KS; ++kx) {
                acc[r][q][0] += win[q * S + kx].x * wv[ky * KS + kx][0];
                acc[r][q][1] += win[q * S + kx].y * wv[ky * KS + kx][1];
              }
            }
          }
        }
      }
@STORE    }
)src";
/// The depthwise conv's epilogue (in `depthwise`): into its output; `@EPILOGUE` the lambda's
/// body (store_text).
inline constexpr const char* store_loop = R"src(      // Bias, the residual, the activation; the slots past the real channels as 0.
@SUMS#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int oy = oy0 + st * R + r;
#pragma unroll
        for (int q = 0; q < CW; ++q) {
          const int ox = ox0 + cg * CW + q;
          if (oy < OH && ox < OW) {
            pair_epilogue(y, z, ((img * OH + oy) * OW + ox) * CP + ch, ch, KREAL,
                          acc[r][q][0] + bv.x, acc[r][q][1] + bv.y, [&](float v0, float v1) {
@EPILOGUE                          });
          }
        }
      }
)src";
/// The stores' lambda: the activation.
inline constexpr const char* store_plain = R"src(                            return float2{activate_as<A>(act, v0), activate_as<A>(act, v1)};
)src";
/// The stores (store_loop), with fuse 3's sums where `sums`: depthwise_band's lambda body
/// (band::text::store_summed — each thread adding up its pair's values as stored, rounded to T,
/// 0 in the slots past the real channels, into s0 and s1), which the thread then leaves in the
/// chunk's row of its thread group (red: [ITEMS / PAIRS][NC]).
[[nodiscard]] inline std::string store_text(bool sums) {
  std::string t = store_loop;
  t.replace(t.find("@EPILOGUE"), 9, sums ? band::text::store_summed : store_plain);
  t.replace(t.find("@SUMS"), 5, sums ? "      float s0 = 0.0f;  // (fuse 3) the values as stored summed, a channel pair a thread\n      float s1 = 0.0f;\n" : "");
  return sums ? t + "      red[(tid / PAIRS) * NC + 2 * p] = s0;\n      red[(tid / PAIRS) * NC + 2 * p + 1] = s1;\n" : t;
}
/// (fuse 3) Chunk @C's sums of the tile, its thread groups' added in order, into `part` — after
/// a barrier past the chunk's stores, before the next chunk's.
inline constexpr const char* chunk_sums = R"src(    if (tid < NC) {  // (fuse 3) chunk @C's channel sums of the tile
      float t = 0.0f;
#pragma unroll 4
      for (int g = 0; g < ITEMS / PAIRS; ++g) t += red[g * NC + tid];
      part[(img * (TILES_Y * TILES_X) + ty * TILES_X + tx) * CP + (@C) * NC + tid] = t;
    }
)src";
/// The depthwise conv's epilogue where the projection joins (fuse 1): generated::store_tile.
inline constexpr const char* store_tile = generated::store_tile;
/// The projection's output pair (tile pixel `pix`, output slots `col`, `col` + 1; at (oy, ox)),
/// its sums and bias in v0, v1: + the residual (from the staged patch where it is the block's
/// input, RES_XS), the projection's activation, into the block's output (the plain form's last
/// chunk and the cluster form's exchange; @FINISH in those texts).
inline constexpr const char* finish = R"src(              if constexpr (RES_XS) {  // (the residual: the block's input, staged as the patch)
                const unsigned zr = *reinterpret_cast<const unsigned*>(xs + ((pix / TW + PH) * COLS_IN + pix % TW + PW) * XP + col);
                const T* zh = reinterpret_cast<const T*>(&zr);
                v0 += load(zh);
                v1 += load(zh + 1);
              }
              pair_epilogue(yp, RES_XS ? nullptr : zp, ((img * OH + oy) * OW + ox) * CO + col, col, KPR, v0, v1,
                            [&](float a, float b) {
                              return float2{activate_as<PA>(pact, a), activate_as<PA>(pact, b)};
                            });
)src";
/// The projection's part of chunk @PC (fuse 1), after a barrier: the tile's depthwise outputs
/// (ds, TH·TW pixels × NC) times the projection's weights of the chunk's channels on tensor cores,
/// added to the thread's f32 sums (pacc: UPW fragments of four a thread, in registers); after the
/// last chunk (@LAST), + bias, + the residual (from the staged patch where it is the block's
/// input, RES_XS), the projection's activation, into the block's output.
inline constexpr const char* projection = R"src(    // (the units from the last warp on: the expansion's start from the first)
#pragma unroll
    for (int i = 0; i < UPW; ++i) {
      const int u = NWARPS - 1 - warp + i * NWARPS;
      if (u < MT2 * NT2) {
        const int mt = u / NT2;
        const int nt = u % NT2;
#pragma unroll
        for (int ks = 0; ks < NC / 16; ++ks) {
          unsigned a0, a1, a2, a3, b0, b1;
          ldmatrix_x4(a0, a1, a2, a3, ds + (mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * DP + ks * 16 + (lane >> 4) * 8);
          ldmatrix_x2(b0, b1, wps + (nt * 8 + (lane & 7)) * WPP + @PC * NC + ks * 16 + ((lane >> 3) & 1) * 8);
          mma_16816<T>(pacc[i], a0, a1, a2, a3, b0, b1);
        }
        if constexpr (@LAST) {
          const int col = nt * 8 + 2 * (lane & 3);
          const float2 bb = *reinterpret_cast<const float2*>(pbs + col);
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int pix = mt * 16 + (lane >> 2) + 8 * h;
            const int oy = oy0 + pix / TW;
            const int ox = ox0 + pix % TW;
            if (oy < OH && ox < OW) {
              float v0 = pacc[i][2 * h] + bb.x;
              float v1 = pacc[i][2 * h + 1] + bb.y;
@FINISH            }
          }
        }
      }
    }
)src";

/// The cluster form's end: the block's partial sums of the tile's projection (its chunks) into
/// `red`; a cluster barrier; then each block finishes its share of the tile's output pairs, the
/// cluster's partial sums added in rank order (the same order in every block: deterministic),
/// + bias, + the residual (from the staged patch where it is the block's input), the
/// projection's activation, into the block's output; no block leaves while another may still
/// read its sums.
inline constexpr const char* exchange = R"src(#pragma unroll
  for (int i = 0; i < UPW; ++i) {
    const int u = NWARPS - 1 - warp + i * NWARPS;
    if (u < MT2 * NT2) {
      const int col = (u % NT2) * 8 + 2 * (lane & 3);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int pix = (u / NT2) * 16 + (lane >> 2) + 8 * h;
        *reinterpret_cast<float2*>(red + pix * RP + col) = make_float2(pacc[i][2 * h], pacc[i][2 * h + 1]);
      }
    }
  }
  cluster_barrier();  // every block's partial sums written
  {
    constexpr int OUT_PAIRS = TH * TW * (CO / 2);
    constexpr int SHARE = (OUT_PAIRS + GROUPS - 1) / GROUPS;
    const int end = min((gc + 1) * SHARE, OUT_PAIRS);
    for (int e = gc * SHARE + tid; e < end; e += NTHREADS) {
      const int pix = e / (CO / 2);
      const int col = (e % (CO / 2)) * 2;
      const int oy = oy0 + pix / TW;
      const int ox = ox0 + pix % TW;
      if (oy < OH && ox < OW) {
        float v0 = 0.0f;
        float v1 = 0.0f;
#pragma unroll
        for (int q = 0; q < GROUPS; ++q) {
          const float2 v = cluster_load2(red + pix * RP + col, static_cast<unsigned>(q));
          v0 += v.x;
          v1 += v.y;
        }
        const float2 bb = *reinterpret_cast<const float2*>(pbs + col);
        v0 += bb.x;
        v1 += bb.y;
@FINISH      }
    }
  }
  cluster_reads_done();  // no block leaves while another may still read its sums
)src";

/// The projection's buffers after the expanded patch (fuse 1; the cluster form's partial sums
/// after them), and the thread's f32 sums.
inline constexpr const char* projection_buffers = R"src(  T* ds = reinterpret_cast<T*>(es + MP * EP);                     // [TH * TW][DP] depthwise outputs
  T* wps = ds + TH * TW * DP;                                      // [CO][WPP] the projection's weights
  float* pbs = reinterpret_cast<float*>(wps + CO * WPP);           // [CO] its bias
  // The projection's f32 sums: UPW fragments a thread (its warp's units), through every chunk.
  float pacc[UPW][4];
#pragma unroll
  for (int i = 0; i < UPW; ++i) {
    pacc[i][0] = pacc[i][1] = pacc[i][2] = pacc[i][3] = 0.0f;
  }
)src";
inline constexpr const char* declarations = R"src(  static_assert(KI == CI && KI % 8 == 0, "the reduction: the staged input's slots, unpadded");
  constexpr int KC = KI / 8;          // 16-byte chunks of a staged pixel row
  constexpr int MT = MP / 16;          // the expansion's m-tiles (patch pixels)
  constexpr int NT8 = NC / 8;          // its n-tiles (a chunk's expanded channels)
  constexpr int NG = (NT8 + NPG - 1) / NPG;  // groups of NPG (at most 4) n-tiles a warp computes at once
  constexpr int NWARPS = NTHREADS / 32;
  constexpr int NR = (R - 1) * S + KS;   // patch rows a thread's outputs read
  constexpr int NCW = (CW - 1) * S + KS; // patch columns a thread's window holds
  constexpr int UE = (MT * NG + NWARPS - 1) / NWARPS;  // the expansion's units a warp at most
  static_assert(2 * UE <= 32, "the expansion's rows in the map: a bit each of a 32-bit mask");
  extern __shared__ __align__(16) unsigned char smem[];
  T* xs = reinterpret_cast<T*>(smem);                              // [MP][XP] the input patch
  T* ws = xs + MP * XP;                                            // [2][NC][XP] weight chunks
  unsigned* es = reinterpret_cast<unsigned*>(ws + 2 * NC * XP);    // [MP][EP] expanded pairs
)src";
/// The block's image and tile (after `long long b = blockIdx.x;` and any other index taken off).
inline constexpr const char* tile = R"src(  const int tx = static_cast<int>(b % TILES_X);
  b /= TILES_X;
  const int ty = static_cast<int>(b % TILES_Y);
  const long long img = b / TILES_Y;
  if (img >= batch) {
    pdl_wait();  // (every thread waits before it returns: see pdl_wait)
    return;
  }
)src";
/// The weights of chunk @C and the patch staged (cp.async), and the thread's depthwise item.
inline constexpr const char* staging = R"src(  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int oy0 = ty * TH;
  const int ox0 = tx * TW;
  const int iy0 = oy0 * S - PH;
  const int ix0 = ox0 * S - PW;
  // The expansion's weights of chunk c into buffer `buf` (KI = CI: the reduction unpadded).
  auto load_weights = [&](int c, int buf) {
    T* dst = ws + buf * (NC * XP);
    for (int i = tid; i < NC * KC; i += NTHREADS) {
      const int n = i / KC;
      const int kc = i % KC;
      cp_async16(dst + n * XP + kc * 8, we + static_cast<long long>(c * NC + n) * CI + kc * 8, true);
    }
  };
  load_weights(@C, 0);
  // (Under a programmatic dependent launch the kernel has started before the one before it has
  // finished: the expansion's weights above, which no kernel writes, are copied first; the input
  // only once that kernel's writes are visible.)
  pdl_wait();
@PATCH  cp_async_commit();
  const uint2 b2 = pair_act_bounds<IA, T>(in_act);
  // This thread's part of the depthwise conv (at most one item a chunk: ITEMS <= NTHREADS):
  // channel pair p of the chunk, strip st, column group cg.
  static_assert(ITEMS <= NTHREADS, "one depthwise item a thread");
  const bool has_item = tid < ITEMS;
  const int p = tid % PAIRS;
  const int st = (tid / PAIRS) % STRIPS;
  const int cg = (tid / PAIRS) / STRIPS;
  // The expansion's addresses as 32-bit shared-memory offsets, the lane's part worked out once:
  // its ldmatrix rows of the patch (16-column k-steps; the last 8) and of the weights' buffer 0.
  const unsigned xa16 = shared_address(xs) + 2u * (((lane & 7) + ((lane >> 3) & 1) * 8) * XP + (lane >> 4) * 8);
  const unsigned xa8 = shared_address(xs) + 2u * ((lane & 15) * XP + KI - 8);
  const unsigned wb16 = shared_address(ws) + 2u * ((lane & 7) * XP + ((lane >> 3) & 1) * 8);
  const unsigned wb8 = shared_address(ws) + 2u * ((lane & 7) * XP + KI - 8);
  // Which of the lane's expanded rows lie in the map (bit 2 ku + h: row 16 mt + lane / 4 + 8 h
  // of the warp's unit ku), the same for every chunk: the rest are stored as 0.
  unsigned inmask = 0u;
  for (int ku = 0; ku < UE; ++ku) {
    const int u = warp + ku * NWARPS;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = (u / NG) * 16 + (lane >> 2) + 8 * h;
      const int iy = iy0 + row / COLS_IN;
      const int ix = ix0 + row % COLS_IN;
      if (u < MT * NG && row < NP && iy >= 0 && iy < H && ix >= 0 && ix < W) {
        inmask |= 1u << (2 * ku + h);
      }
    }
  }
)src";

/// The patch staging's (in `staging`, @PATCH): every input slot of each pixel, zero outside the map.
inline constexpr const char* patch = R"src(  // The patch: every input slot of each pixel, zero outside the map.
  const T* xi = x + img * (static_cast<long long>(H) * W * CI);
  for (int i = tid; i < MP * KC; i += NTHREADS) {
    const int r = i / KC;
    const int kc = i % KC;
    const int iy = iy0 + r / COLS_IN;
    const int ix = ix0 + r % COLS_IN;
    const bool v = r < NP && iy >= 0 && iy < H && ix >= 0 && ix < W;
    cp_async16(xs + r * XP + kc * 8, v ? xi + (static_cast<long long>(iy) * W + ix) * CI + kc * 8 : xi, v);
  }
)src";
/// A stem's patch (stem: fold_stem_depthwise): each patch pixel — a pixel of the stem's output,
/// the depthwise conv's input — gets its 2x2 taps' space-to-depth blocks of 16 slots (tap t at
/// 16 t, the order of the stem's filter rows; slot (c, dy, dx) at 4 c + 2 dy + dx), converted as
/// the input step would (normalized, 0 outside the image and past its channels), rounded to T. In
/// two steps: the caller's input rows the tile reads — RPR x RPC values of each of its RC
/// channels from row 2 iy0 - RPH, column 2 ix0 - RPW — into f32 in the expanded patch's buffer
/// (free until the expansion), one value a thread at a time, consecutive threads along a row;
/// then, after a barrier, each (patch pixel, tap) item's 16 slots from there. A pixel outside the
/// stem's map (the depthwise conv's padding) or past NP is staged anyway or as 0: its expanded
/// row is stored as 0 (inmask).
inline constexpr const char* stem_patch = R"src(  // The patch: each stem output pixel's four space-to-depth blocks, from the caller's input.
  constexpr int RPR = 2 * ROWS_IN + 2;  // the input rows and columns the tile's blocks cover
  constexpr int RPC = 2 * COLS_IN + 2;
  static_assert(RC * RPR * RPC <= MP * EP, "the input's rows within the expanded patch's buffer");
  static_assert(SCP == 16 && KI == 4 * SCP && RC * 4 <= SCP, "four taps of 16-slot blocks a row");
  float* raw = reinterpret_cast<float*>(es);
  {
    const Src* xi = static_cast<const Src*>(xr) + img * RIMG;
    const int gy0 = 2 * iy0 - RPH;
    const int gx0 = 2 * ix0 - RPW;
    for (int i = tid; i < RC * RPR * RPC; i += NTHREADS) {
      const int c = i / (RPR * RPC);
      const int ry = (i / RPC) % RPR;
      const int rx = i % RPC;
      const int gy = gy0 + ry;
      const int gx = gx0 + rx;
      raw[i] = gy >= 0 && gy < RH && gx >= 0 && gx < RW
                   ? normalize(load(xi + (static_cast<long long>(gy) * RW + gx) * RPIX + c * RCH), affine, c)
                   : 0.0f;
    }
  }
  __syncthreads();  // the input's rows in
  for (int i = tid; i < MP * 4; i += NTHREADS) {
    const int r = i / 4;
    const int tap = i % 4;
    float v[16];
    if (r < NP) {
      const float* at = raw + (2 * (r / COLS_IN + tap / 2)) * RPC + 2 * (r % COLS_IN + tap % 2);
#pragma unroll
      for (int ch = 0; ch < 16; ++ch) {  // slot ch: channel ch / 4, row ch / 2 % 2, column ch % 2
        v[ch] = ch / 4 < RC ? at[(ch / 4) * (RPR * RPC) + ((ch / 2) % 2) * RPC + ch % 2] : 0.0f;
      }
    } else {
#pragma unroll
      for (int ch = 0; ch < 16; ++ch) {
        v[ch] = 0.0f;
      }
    }
    float lo[8];
    float hi[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      lo[k] = v[k];
      hi[k] = v[8 + k];
    }
    store8(xs + r * XP + tap * 16, lo);
    store8(xs + r * XP + tap * 16 + 8, hi);
  }
)src";

/// The head of a chunk's step (after `filters`): the next chunk's expansion weights copied in
/// while this one runs, then the barrier after which the patch and this chunk's weights are in
/// and the last chunk's reads done — chunk @K of @N (the block's), `c` its index among all.
inline constexpr const char* next_chunk = R"src(    if (@K + 1 < @N) {  // the next chunk's weights copied in while this one runs
      load_weights(c + 1, (@K + 1) & 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // the patch and this chunk's weights in; the last chunk's reads done
)src";

/// The projection's weights (fuse 1) — of each output row @KC 16-byte chunks from column 0@FROM
/// (all of them in the plain form, the block's chunks' in the cluster form) — and its bias, in a
/// copy group of their own (waited for with the first chunk's).
inline constexpr const char* projection_weights = R"src(  // The projection's weights (the block's columns) and bias, in a copy group of their own
  // (waited for with the first chunk's).
  for (int i = tid; i < CO * @KC; i += NTHREADS) {
    const int r = i / @KC;
    const int kc = i % @KC;
    cp_async16(wps + r * WPP + kc * 8, wp + static_cast<long long>(r) * CP@FROM + kc * 8, true);
  }
  for (int i = tid; i < CO / 4; i += NTHREADS) {  // (zeros without a bias)
    cp_async16(pbs + 4 * i, bp != nullptr ? static_cast<const void*>(bp + 4 * i) : wp, bp != nullptr);
  }
  cp_async_commit();
)src";

/// `t` with each key of `subs` replaced by its text.
[[nodiscard]] inline std::string with(
    std::string t, std::initializer_list<std::pair<const char*, std::string>> subs) {
  for (const auto& [key, value] : subs) {
    const std::string k(key);
    for (std::size_t at = t.find(k); at != std::string::npos; at = t.find(k, at + value.size())) {
      t.replace(at, k.size(), value);
    }
  }
  return t;
}
}  // namespace text

/// The kernel's source for `op` (kernel `strata_rtc::expand_depthwise<T>`): form `algo` (0: a
/// chunk's expansion, then its depthwise conv, two barriers a chunk; 1: pipelined — the expansion
/// of chunk c + 1 beside the depthwise conv of chunk c, the expanded patch double-buffered, one
/// barrier a chunk; 2: the plain form for denser_blocks blocks an SM; 3: the cluster form, with
/// the projection, `groups` then its shape, cluster_plan's code), the chunks split over
/// `groups` blocks a tile (0 or 1: a block takes them all); 4: the plain form with the
/// expansion's n-tiles split evenly over its groups (tiles_a_group; written in session 67
/// without a GPU, forced only); with the joined squeeze-excite op's channel sums where `sums`
/// (fuse 3: the plain form, algo 0, 2 or 4; the gate is band::gate_source_for's kernel). For a
/// joined stem (stem: the plain form, algo 0, 2 or 4, with or without the projection or the sums)
/// `raw` says what the caller's input is — the kernel then takes it (`xr`) and its normalization
/// (`affine`, may be null) in place of `x`.
struct RawInput {
  InputFormat format = InputFormat::f32;
  bool hwc = false;  ///< height × width × channels per image (u8 input always is)
  Shape shape{};     ///< as declared
};
[[nodiscard]] inline std::string source(const OpDesc& op, int algo = 0, int groups = 0,
                                       bool project = false, bool sums = false,
                                       const std::optional<RawInput>& raw = std::nullopt) {
  const ConvGeom& g = op.conv;
  const OpDesc& ex = *op.expand;
  const bool st = stem(op);
  STRATA_CHECK(st == raw.has_value(), "expand_depthwise: '" << op.label << "'"
                                          << (st ? " reads the caller's input through its stem, which was not described"
                                                 : " has no stem to read the caller's input"));
  STRATA_CHECK(algo >= 0 && algo <= 4, "expand_depthwise: no form " << algo);
  const bool balanced = algo == 4;
  STRATA_CHECK(!balanced || groups <= 1, "expand_depthwise: algo 4 is the plain form (a block takes every chunk)");
  if (balanced) {
    algo = 0;
  }
  const bool clustered = algo == 3;
  STRATA_CHECK(!clustered || project, "expand_depthwise: the cluster form (algo 3) computes the projection");
  const Plan p = clustered ? cluster_plan(op, groups) : plan(op, algo == 1 ? 2 : 1, project, sums);
  STRATA_CHECK(clustered || (groups >= 0 && groups <= p.chunks),
               "expand_depthwise: " << groups << " chunk groups for " << p.chunks << " chunks");
  const bool split = !clustered && groups > 1;
  const bool plain = (algo == 0 || algo == 2) && !split;  // the form measured first (session 25)
  STRATA_CHECK(!project || plain || clustered,
               "expand_depthwise: the projection joins the plain form or the cluster form only");
  STRATA_CHECK(!sums || (plain && !project),
               "expand_depthwise: the squeeze-excite op's sums (fuse 3) join the plain form without a projection");
  STRATA_CHECK(!st || plain, "expand_depthwise: a joined stem runs the plain form (algo 0, 2 or 4, math 0)");
  STRATA_CHECK(p.nc > 0, "expand_depthwise: no block shape for '" << op.label << "'"
                             << (project ? " with its projection" : "")
                             << (clustered ? " in the cluster form's shape " + std::to_string(groups) : std::string()));
  STRATA_CHECK(algo != 2 || (!split && denser_blocks(op, p) > 0),
               "expand_depthwise: algo 2 (one block an SM more) for '"
                   << op.label << "': " << (split ? "the chunks split over blocks"
                                                  : "that many blocks' shared memory exceeds an SM's"));
  const int blocks = clustered ? cluster_blocks_an_sm(p) : algo == 2 ? denser_blocks(op, p) : min_blocks(op, p);
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  const auto act = [&](const char* kind, const char* desc, const ActDesc& a) {
    generated::act_constants(o, kind, desc, a);
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "'"
    << (plain && algo == 0 ? "" : clustered ? " (the cluster form, shape " + std::to_string(groups) + ")"
                                            : " (form " + std::to_string(algo) + ", " + std::to_string(groups) + " chunk groups)")
    << (balanced ? " (the expansion's n-tiles split evenly over its groups)" : "")
    << (project ? " (with the projection)" : "") << (sums ? " (with the squeeze-excite op's sums)" : "") << ".\n"
    << "template <class T>\n__global__ void "
    << (clustered ? "__cluster_dims__(" + std::to_string(p.cluster) + ", 1, 1) " : std::string())
    << "__launch_bounds__(" << threads << ", " << blocks << ") expand_depthwise(\n"
    << (st ? "    const void* __restrict__ xr, const float* __restrict__ affine, const T* __restrict__ we,\n"
             "    const float* __restrict__ be,\n"
           : "    const T* __restrict__ x, const T* __restrict__ we, const float* __restrict__ be,\n")
    << "    const T* __restrict__ wd, const float* __restrict__ bd, T* __restrict__ y,\n"
    << "    const T* __restrict__ z, int batch"
    << (sums ? ", float* __restrict__ part" : "")
    << (project ? ",\n    const T* __restrict__ wp, const float* __restrict__ bp, T* __restrict__ yp,\n"
                  "    const T* __restrict__ zp"
                : "")
    << ") {\n"
    << "  pdl_launch();  // (a programmatic dependent launch: its wait comes after the first weights' copies)\n";
  constant("H", g.h);
  constant("W", g.w);
  constant("CI", p.ki);        // the expansion's filter row: its input slots (a stem's four taps')
  constant("KI", p.ki);
  constant("XP", p.xp);
  constant("CP", g.cp);        // expanded slots: the depthwise conv's input and output
  constant("KREAL", g.k);      // channels with filters; the slots past them are written as 0
  constant("OH", g.oh);
  constant("OW", g.ow);
  constant("KS", g.kh);
  constant("S", g.sh);
  constant("PH", g.ph);
  constant("PW", g.pw);
  constant("TH", p.th);
  constant("TW", p.tw);
  constant("R", p.rows);
  constant("CW", cols);
  constant("STRIPS", p.strips);
  constant("ROWS_IN", p.rows_in);
  constant("COLS_IN", p.cols_in);
  constant("NP", p.np);
  constant("MP", p.mp);
  constant("NC", p.nc);
  constant("NPG", tiles_a_group(p, balanced));  // the expansion's n-tiles a unit of work at most
  constant("CHUNKS", p.chunks);
  constant("EP", p.ep);
  constant("PAIRS", p.pairs());
  constant("ITEMS", p.items());
  constant("TILES_Y", p.tiles_y);
  constant("TILES_X", p.tiles_x);
  constant("NTHREADS", threads);
  if (clustered) {
    constant("GROUPS", p.cluster);  // the cluster's blocks: a tile's chunk groups
    constant("NMAX", p.nmax);
    constant("RP", p.rp);
  } else if (!plain) {
    constant("GROUPS", std::max(groups, 1));
  }
  if (st) {  // the caller's input: C x H x W as declared, its strides, the stem's own padding
    const Shape& rs = raw->shape;
    STRATA_CHECK(4 * rs.c == ex.conv.c, "expand_depthwise: '" << op.label << "': the caller's input has " << rs.c
                                                            << " channels, its stem reads " << ex.conv.c / 4);
    o << "  using Src = "
      << (raw->format == InputFormat::f16 ? "f16" : raw->format == InputFormat::u8_hwc ? "unsigned char" : "float")
      << ";\n";
    constant("SCP", ex.conv.cp);  // a space-to-depth block's slots
    constant("RC", rs.c);
    constant("RH", rs.h);
    constant("RW", rs.w);
    constant("RPH", ex.layer.padding.h);
    constant("RPW", ex.layer.padding.w);
    o << "  constexpr long long RPIX = " << (raw->hwc ? rs.c : 1) << ", RCH = "
      << (raw->hwc ? 1LL : static_cast<long long>(rs.h) * rs.w)
      << ", RIMG = " << static_cast<long long>(rs.c) * rs.h * rs.w << ";\n";
  }
  act("EA", "ea", ex.act);      // the expansion's own activation (in its epilogue)
  act("IA", "in_act", op.in_act);  // the one deferred into the depthwise conv's read
  act("A", "act", op.act);
  if (project) {
    constant("CO", p.co);      // the projection's output slots
    constant("KPR", op.project->conv.k);  // its real channels
    constant("DP", p.dp);
    constant("WPP", p.wpp);
    constant("MT2", p.th * p.tw / 16);  // its m-tiles (the tile's pixels)
    constant("NT2", p.co / 8);          // its n-tiles
    constant("UPW", p.units_a_warp());  // its units (16 pixels x 8 outputs) a warp at most
    act("PA", "pact", op.project->act);
    o << "  constexpr bool RES_XS = " << (residual_staged(op) ? "true" : "false")
      << ";  // the residual read from the staged patch (the block's input, stride 1)\n";
  }
  const std::string ebuf = algo == 1 ? "(es + (k & 1) * (MP * EP))" : "es";
  if (plain) {
    o << text::declarations;
    if (project) {
      o << text::projection_buffers;
    }
    if (sums) {
      o << "  float* red = reinterpret_cast<float*>(es + MP * EP);  // [ITEMS / PAIRS][NC] (fuse 3) a chunk's sums\n";
    }
    o << "  long long b = blockIdx.x;\n" << text::tile << text::with(text::staging, {{"@C", "0"}, {"@PATCH", st ? text::stem_patch : text::patch}});
    if (project) {
      o << text::with(text::projection_weights, {{"@KC", "(CP / 8)"}, {"@FROM", ""}});
    }
    o << "  for (int c = 0; c < CHUNKS; ++c) {\n"
      << text::filters << text::with(text::next_chunk, {{"@K", "c"}, {"@N", "CHUNKS"}})
      << (project ? "    if (c > 0) {  // the last chunk's depthwise outputs (ds) into the projection's sums\n" +
                        text::with(text::projection, {{"@FINISH", text::finish}, {"@PC", "(c - 1)"}, {"@LAST", "false"}}) + "    }\n"
                  : std::string())
      << (sums ? "    if (c > 0) {\n" + text::with(text::chunk_sums, {{"@C", "c - 1"}}) + "    }\n" : std::string())
      << text::with(text::expansion, {{"@W", "c & 1"}, {"@E", "es"}})
      << "    __syncthreads();  // the expanded patch in" << (project ? "; ds read" : "") << (sums ? "; the sums read" : "") << "\n"
      << text::with(text::depthwise, {{"@STORE", project ? std::string(text::store_tile) : text::store_text(sums)}, {"@E", "es"}})
      << "  }\n";
    if (sums) {
      o << "  __syncthreads();  // the last chunk's sums in\n" << text::with(text::chunk_sums, {{"@C", "CHUNKS - 1"}});
    }
    if (project) {
      o << "  __syncthreads();  // the last chunk's depthwise outputs in\n  {\n"
        << text::with(text::projection, {{"@FINISH", text::finish}, {"@PC", "(CHUNKS - 1)"}, {"@LAST", "true"}}) << "  }\n";
    }
    o << "}\n}  // namespace strata_rtc\n";
    return o.str();
  }
  if (clustered) {
    // The cluster form: the tile's blocks (one cluster, ranks = chunk groups) take chunks
    // c0 .. c0 + n - 1 each — the plain form's loop over them, with the projection weights of
    // those chunks alone (column k NC of wps: chunk c0 + k) — then exchange the projection's
    // partial sums.
    o << text::declarations << text::projection_buffers
      << "  float* red = pbs + CO;  // [TH * TW][RP] the tile's partial sums (this block's chunks)\n"
      << R"src(  long long b = blockIdx.x;
  const int gc = static_cast<int>(b % GROUPS);  // (the rank in the cluster: clusters along x)
  b /= GROUPS;
)src" << text::tile << R"src(  const int c0 = gc * CHUNKS / GROUPS;  // (an even split: every block has 1 .. NMAX chunks)
  const int n = (gc + 1) * CHUNKS / GROUPS - c0;
)src" << text::with(text::staging, {{"@C", "c0"}, {"@PATCH", text::patch}})
      << text::with(text::projection_weights, {{"@KC", "(n * NC / 8)"}, {"@FROM", " + c0 * NC"}}) << R"src(  for (int k = 0; k < n; ++k) {
    const int c = c0 + k;
)src" << text::filters << text::with(text::next_chunk, {{"@K", "k"}, {"@N", "n"}}) << R"src(    if (k > 0) {  // the last chunk's depthwise outputs (ds) into the projection's sums
)src" << text::with(text::projection, {{"@FINISH", text::finish}, {"@PC", "(k - 1)"}, {"@LAST", "false"}}) << "    }\n"
      << text::with(text::expansion, {{"@W", "k & 1"}, {"@E", "es"}})
      << "    __syncthreads();  // the expanded patch in; ds read\n"
      << text::with(text::depthwise, {{"@STORE", text::store_tile}, {"@E", "es"}})
      << "  }\n  __syncthreads();  // the last chunk's depthwise outputs in\n  {\n"
      << text::with(text::projection, {{"@FINISH", text::finish}, {"@PC", "(n - 1)"}, {"@LAST", "false"}}) << "  }\n"
      << text::with(text::exchange, {{"@FINISH", text::finish}}) << "}\n}  // namespace strata_rtc\n";
    return o.str();
  }
  // The other forms: the block's chunks c0 .. c0 + n - 1 (chunk groups fastest in the grid, so
  // that the blocks of one tile run together and share its patch in L2); algo 1's expanded
  // patches one after the other from `es` on.
  o << text::declarations << R"src(  long long b = blockIdx.x;
  const int gc = static_cast<int>(b % GROUPS);
  b /= GROUPS;
)src" << text::tile << R"src(  const int c0 = gc * CHUNKS / GROUPS;  // (an even split: every group has a chunk or more)
  const int n = (gc + 1) * CHUNKS / GROUPS - c0;
  if (n <= 0) {
    pdl_wait();  // (every thread waits before it returns: see pdl_wait)
    return;
  }
)src" << text::with(text::staging, {{"@C", "c0"}, {"@PATCH", text::patch}});
  if (algo == 0) {
    o << "  for (int k = 0; k < n; ++k) {\n    const int c = c0 + k;\n" << text::filters
      << text::with(text::next_chunk, {{"@K", "k"}, {"@N", "n"}}) << text::with(text::expansion, {{"@W", "k & 1"}, {"@E", "es"}})
      << "    __syncthreads();  // the expanded patch in\n"
      << text::with(text::depthwise, {{"@STORE", text::store_text(false)}, {"@E", "es"}})
      << "  }\n}\n}  // namespace strata_rtc\n";
    return o.str();
  }
  // Pipelined: chunk 0's expansion first; then in step k the filters of chunk k, one barrier
  // (expanded buffer k & 1 complete, the weights of chunk k + 1 in, the reads of step k - 1
  // done), the weights of chunk k + 2 into the buffer chunk k's expansion has finished with, the
  // expansion of chunk k + 1 into the other expanded buffer, and the depthwise conv of chunk k.
  o << R"src(  if (n > 1) {
    load_weights(c0 + 1, 1);
    cp_async_commit();
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
  __syncthreads();  // the patch and the first chunk's weights in
  {
    const int c = c0;
    const int k = -1;  // (expanded buffer (k + 1) & 1 = 0)
)src" << text::with(text::expansion, {{"@W", "0"}, {"@E", "(es + ((k + 1) & 1) * (MP * EP))"}}) << R"src(  }
  for (int k = 0; k < n; ++k) {
    const int c = c0 + k;
)src" << text::filters << R"src(    if (k + 1 < n) {
      cp_async_wait<0>();  // the weights of chunk k + 1
    }
    __syncthreads();
    if (k + 2 < n) {
      load_weights(c + 2, k & 1);
      cp_async_commit();
    }
    if (k + 1 < n) {
      const int c = c0 + k + 1;
)src" << text::with(text::expansion, {{"@W", "(k + 1) & 1"}, {"@E", "(es + ((k + 1) & 1) * (MP * EP))"}})
    << "    }\n" << text::with(text::depthwise, {{"@STORE", text::store_text(false)}, {"@E", ebuf}})
    << "  }\n}\n}  // namespace strata_rtc\n";
  return o.str();
}

}  // namespace expand_dw

template <DType P>
class ExpandDepthwise final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "expand_depthwise"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && expand_dw::fits(op);
  }
  [[nodiscard]] bool reads_input_act() const override { return true; }
  [[nodiscard]] bool fuses_expand(const Variant&) const override { return true; }
  /// Fuse 1: the joined projection too (OpDesc::project).
  [[nodiscard]] bool fuses_project(const Variant& v) const override { return v.fuse == 1; }
  /// Fuse 3: the joined squeeze-excite op (OpDesc::tail) as depthwise_band's fuse 3 computes it —
  /// each block's channel sums of its tile as stored, then the gate kernel, a block an image.
  [[nodiscard]] bool fuses_tail(const Variant& v) const override { return v.fuse == 3; }
  /// The ops expand_dw::claimed names, ahead of the depthwise kernels with the expansion as a
  /// step of its own — with the projection where it is joined and fits (fuse 1), with the
  /// squeeze-excite op's sums where it is joined (fuse 3, expand_dw::sums_claimed); offered to
  /// measured tuning on every op it runs, with and without them.
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    if (!expand_dw::claimed(op, batch)) {
      // (at small batches, a joined projection: the cluster form — clusters need 9.0 on)
      if (op.project && device_arch() >= 90) {
        if (const int code = expand_dw::cluster_claimed(op, batch, generated::device_sms().sms); code != 0) {
          return Claim{{std::string(name()), 3, code, 1}, rank::joins};
        }
      }
      return std::nullopt;
    }
    const int fuse = expand_dw::projection_claimed(op) ? 1 : expand_dw::sums_claimed(op, batch) ? 3 : 0;
    return Claim{{std::string(name()), 0, 0, fuse}, rank::joins};
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries&) const override {
    if (!expand_dw::fits(op) || (expand_dw::stem(op) && !expand_dw::stem_gpu_tested)) {
      return {};  // (a joined stem: forced only until its GPU tests pass)
    }
    std::vector<Variant> v{Variant{std::string(name())}};
    if (expand_dw::fits(op, true)) {
      v.push_back(Variant{std::string(name()), 0, 0, 1});
    }
    if (expand_dw::sums_gpu_tested && batch >= band::sums_min_batch && expand_dw::sums_fit(op)) {
      v.push_back(Variant{std::string(name()), 0, 0, 3});
    }
    // The cluster form, each tile's best shape: at the batches the engine joins blocks for it
    // (larger ones measured slower than the ops apart on an H100, session 63).
    if (op.project && batch <= expand_dw::cluster_max_batch && device_arch() >= 90) {
      const int sms = generated::device_sms().sms;
      for (int t = 0; t < 3; ++t) {
        if (const int code = expand_dw::cluster_choice(op, batch, sms, t); code != 0) {
          v.push_back(Variant{std::string(name()), 3, code, 1});
        }
      }
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    STRATA_CHECK(v.algo != 3 || device_arch() >= 90,
                 "cuda::Engine: layer '" << op.label
                                         << "': expand_depthwise algo 3 runs thread-block clusters, "
                                            "which need compute capability 9.0 or later");
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    STRATA_CHECK(io.expand_x != nullptr && io.expand_weights != nullptr,
                 "cuda::Engine: layer '" << op.label
                                         << "': expand_depthwise without its expansion's buffers");
    const bool project = v.fuse == 1;
    STRATA_CHECK(!project || (io.project.y != nullptr && io.project.weights != nullptr),
                 "cuda::Engine: layer '" << op.label
                                         << "': expand_depthwise fuse 1 without its projection's buffers");
    const bool sums = v.fuse == 3;
    const bool clustered = v.algo == 3;
    const expand_dw::Plan p = clustered ? expand_dw::cluster_plan(op, v.math)
                                        : expand_dw::plan(op, v.algo == 1 ? 2 : 1, project, sums);
    const int dense = v.algo == 2 ? expand_dw::denser_blocks(op, p) : 0;
    const int groups = clustered ? p.cluster : std::max(v.math, 1);
    const std::size_t shared = static_cast<std::size_t>(p.shared);
    const int device = generated::device_sms().device;
    if (clustered) {
      generated::allow_cluster(k, device, p.cluster, op.label, "expand_depthwise algo 3");
    }
    generated::allow_shared(k, device, shared, op.label, "expand_depthwise");
    if (clustered) {
      generated::check_clusters_fit(k, p.cluster, expand_dw::threads, shared, op.label, "expand_depthwise algo 3");
    }
    const long long blocks = static_cast<long long>(batch) * p.tiles_y * p.tiles_x * groups;
    STRATA_CHECK(blocks < (1LL << 31), "cuda::Engine: layer '" << op.label
                                           << "': expand_depthwise would launch " << blocks
                                           << " blocks at batch " << batch);
    const unsigned grid = static_cast<unsigned>(blocks);
    const T* x = static_cast<const T*>(io.expand_x);
    // (a joined stem: the caller's input and its normalization in x's place, kernel_of checked)
    const bool stem = expand_dw::stem(op);
    const void* xr = io.net_input;
    const float* affine = io.net_input_affine;
    const T* we = io.expand_weights->weight.template as<const T>();
    const float* be = io.expand_weights->bias_f32.template as<const float>();
    const T* wd = w.weight.template as<const T>();
    const float* bd = w.bias_f32.template as<const float>();
    T* y = static_cast<T*>(io.y);
    const T* z = static_cast<const T*>(io.z);
    const T* wp = project ? io.project.weights->weight.template as<const T>() : nullptr;
    const float* bp = project ? io.project.weights->bias_f32.template as<const float>() : nullptr;
    T* yp = static_cast<T*>(io.project.y);
    const T* zp = static_cast<const T*>(io.project.z);
    const ConvGeom& g = op.conv;
    std::ostringstream what;
    what << (stem ? "strata stem+depthwise " : "strata expand+depthwise ") << g.kh << "x" << g.kw
         << (g.sh > 1 ? " stride " + std::to_string(g.sh) : std::string())
         << (stem ? " (the stem, " + std::to_string(op.expand->layer.kernel.h) + "x" +
                        std::to_string(op.expand->layer.kernel.w) + " stride " +
                        std::to_string(op.expand->layer.stride.h) + " over the input's " +
                        std::to_string(op.expand->conv.c / 4) +
                        " channels, on tensor cores from the caller's input as it is, converted as it is staged; "
                        "its map kept in shared memory; tiles of "
                  : std::string(" (the 1x1 expansion on tensor cores, its map kept in shared memory; tiles of "))
         << p.th << "x" << p.tw << " outputs, " << p.nc << " channels a pass"
         << (v.algo == 1 ? ", pipelined" : "")
         << (v.algo == 2 ? ", compiled for " + std::to_string(dense) + " blocks an SM" : "")
         << (v.algo == 4 ? ", the expansion's n-tiles split evenly over its warps' units" : "")
         << (groups > 1 ? ", the chunks over " + std::to_string(groups) + " blocks a tile" +
                              (clustered ? " (a cluster: the projection's sums exchanged on chip)" : "")
                        : "")
         << (project ? ", the 1x1 projection after it on tensor cores too: " +
                           std::to_string(op.project->conv.c) + "->" + std::to_string(op.project->conv.k) +
                           (op.project->has_residual ? " + residual" : "") + ", the depthwise conv's output kept on chip"
                     : std::string())
         << ", shapes compiled in)";
    // The kernel's launch: its arguments, then any of fuse 1's or fuse 3's.
    const unsigned nthreads = static_cast<unsigned>(expand_dw::threads);
    const auto conv = [=](cudaStream_t s, auto... more) {
      if (stem) {
        rtc::launch_shared(k, grid, nthreads, shared, s, xr, affine, we, be, wd, bd, y, z, batch, more...);
      } else {
        rtc::launch_shared(k, grid, nthreads, shared, s, x, we, be, wd, bd, y, z, batch, more...);
      }
    };
    if (sums) {  // the joined squeeze-excite op: its weights, the gate's slot, the sums
      const band::GateSums<T> gs = band::gate_sums<T>(op, io.tail, batch, std::int64_t{p.tiles_y} * p.tiles_x,
                                                      "expand_depthwise fuse 3");
      what << band::gate_text(op) << band::gate_by_kernel;
      const cudaKernel_t kg = generated::kernel(gate_kernel_of(op));
      return kernel_step(
          what.str(),
          [=](cudaStream_t s) {
            conv(s, gs.sums());
            gs.launch_gate(kg, batch, s);
          },
          false, stem);
    }
    // (fuse 1's kernel takes the projection's buffers after the others)
    const auto step = [&](auto... projection) {
      return kernel_step(what.str(), [=](cudaStream_t s) { conv(s, projection...); }, false, stem);
    };
    return project ? step(wp, bp, yp, zp) : step();
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo& io) const override {
    STRATA_CHECK(v.algo >= 0 && v.algo <= 4,
                 "'" << op.label << "': expand_depthwise has no algo " << v.algo);
    STRATA_CHECK(v.algo != 4 || v.math == 0,
                 "'" << op.label << "': expand_depthwise algo 4 (the plain form, the expansion's n-tiles "
                                    "balanced) takes every chunk in a block: math 0");
    STRATA_CHECK(v.fuse == 0 || v.fuse == 1 || v.fuse == 3,
                 "'" << op.label << "': expand_depthwise has no fuse " << v.fuse);
    if (v.algo == 3) {  // the cluster form: the projection joined, the shape in math
      STRATA_CHECK(v.fuse == 1 && expand_dw::projection_fits(op),
                   "'" << op.label
                       << "': expand_depthwise algo 3 (the cluster form) computes a joined 1x1 "
                          "projection (fuse 1, fold_projected_depthwise)");
      STRATA_CHECK(expand_dw::cluster_plan(op, v.math).nc > 0,
                   "'" << op.label << "': expand_depthwise algo 3 has no shape " << v.math
                       << " (math: 1000 (t + 1) + nc, tile t of 8x8, 4x8, 4x4 and chunks of nc = 16, "
                          "32, 48 or 64 channels dividing its slots, within an SM's shared memory)");
      return this->named(expand_dw::source(op, 3, v.math, true));
    }
    const bool plain = (v.algo == 0 || v.algo == 2 || v.algo == 4) && v.math == 0;
    STRATA_CHECK(v.fuse != 3 || (plain && expand_dw::sums_fit(op)),
                 "'" << op.label
                     << "': expand_depthwise fuse 3 (the squeeze-excite op's sums) runs the plain form "
                        "(algo 0, 2 or 4, math 0) of a depthwise conv with a joined squeeze-excite op "
                        "(fold_tailed_gates) whose gate kernel and block shape fit");
    STRATA_CHECK(v.fuse != 1 || (plain && expand_dw::fits(op, true)),
                 "'" << op.label
                     << "': expand_depthwise fuse 1 (the projection joined) runs the plain form "
                        "(algo 0, 2 or 4, math 0) of a depthwise conv with a joined 1x1 projection "
                        "(fold_projected_depthwise) whose block shape fits");
    STRATA_CHECK(expand_dw::fits(op), "'" << op.label
                                          << "': expand_depthwise runs a depthwise conv of "
                                             "dilation 1 with a folded 1x1 expansion");
    std::optional<expand_dw::RawInput> raw;
    if (expand_dw::stem(op)) {  // (a joined stem: the caller's input read as it is)
      STRATA_CHECK(v.algo != 1 && v.math == 0,
                   "'" << op.label << "': expand_depthwise with a joined stem runs the plain form (algo 0, 2 "
                                      "or 4, math 0)");
      STRATA_CHECK(io.net_input != nullptr,
                   "'" << op.label << "': expand_depthwise with a joined stem reads the caller's input itself "
                                      "(OpIo::net_input), which this step was not given");
      raw = expand_dw::RawInput{io.net_input_format, io.net_input_hwc, io.net_input_shape};
    }
    const expand_dw::Plan p = expand_dw::plan(op, v.algo == 1 ? 2 : 1, false, v.fuse == 3);
    STRATA_CHECK(p.nc > 0, "'" << op.label
                               << "': expand_depthwise's pipelined form (algo 1) finds no block "
                                  "shape within its shared memory");
    STRATA_CHECK(v.math >= 0 && v.math <= p.chunks,
                 "'" << op.label << "': expand_depthwise math " << v.math << " splits "
                     << p.chunks << " chunks of " << p.nc << " channels over more blocks than "
                     << "there are chunks");
    return this->named(expand_dw::source(op, v.algo, v.math, v.fuse == 1, v.fuse == 3, raw));
  }
  /// Fuse 3's gate kernel (band::gate_source_for, this kernel's tiles an image).
  [[nodiscard]] std::vector<KernelSource> more_kernels(const OpDesc& op, const Variant& v,
                                                       const OpIo&) const override {
    if (v.fuse != 3) {
      return {};
    }
    return {gate_kernel_of(op)};
  }
  [[nodiscard]] KernelSource gate_kernel_of(const OpDesc& op) const {
    const expand_dw::Plan p = expand_dw::plan(op, 1, false, true);
    return {band::gate_source_for(op, std::int64_t{p.tiles_y} * p.tiles_x),
            std::string("strata_rtc::depthwise_band_gate<") + kernels::detail::rtc_type<storage_t<P>>() + ">"};
  }
};

}  // namespace strata::cuda::tactics
