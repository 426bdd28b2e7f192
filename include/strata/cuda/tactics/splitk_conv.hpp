#pragma once
/// Tactic `splitk_conv`: a 16-bit conv of one group over packed channels as an implicit GEMM on
/// tensor cores (mma.sync m16n8k16, f32 accumulation) whose reduction — kh·kw·cp, 2,304 to 4,608
/// for ResNet's layer3/layer4 3×3 convs — is split over the GPU. Why: at batch 1 those convs have
/// 196 and 49 output pixels, so cuDNN's kernels run a few blocks, each streaming a large share of
/// the filter (layer4's 4.7 MB): 12.0–12.2 µs a conv on an H200 (session 18), where the filter
/// alone is ~1 µs of memory time. A block computes a 64-pixel × 64-channel tile over one slice
/// of the reduction: 32-wide k-steps staged with cp.async through 4 buffers (the A rows gathered
/// im2col-style, a tap's 8 channel slots a 16-byte copy, zeros in the padding; the B rows the
/// filter's (K, kh, kw, C) rows), 8 warps of 32 × 16 outputs, ldmatrix fragments. With one slice
/// it finishes the tile itself; with several, each writes its f32 partial tile into the
/// workspace and the last block of the tile to arrive (a per-tile counter) adds the slices in
/// slice order — the same sums whichever block arrives last —, adds the bias and residual,
/// applies the activation, writes the output (channel slots from K on as 0) and resets the
/// counter for the next launch.
///
/// That form (algo 0) ran correctly on an H200 but slower than cuDNN (session 19: ResNet-18's
/// layer4 3×3 convs at batch 1 in 14.4–15.3 µs against 11.9–12.0): the last block of a tile adds
/// up to 29 partial tiles alone, through L2. Algos 2, 4, 8 and 16 (compute capability 9.0 on)
/// make a tile's slices the blocks of one thread-block cluster of that size instead: each block
/// leaves its partial tile in its own shared memory, and after a cluster barrier each adds up
/// 1/size of the tile's rows over every block's shared memory (distributed shared memory, in
/// slice order) and finishes them — no workspace, no counters, the reduction spread over the
/// cluster. Measured tuning offers those where a batch's tiles leave most SMs idle; algo 0 only
/// runs forced (GPU test: "split-K convs" in tests/gpu/test_tiles.cpp). The heuristic claims
/// the clusters for convs with a window on small maps (claimed_cluster). Math 1 stages 8 k-steps
/// instead of 4 (80 KiB of dynamic shared memory), so a slice of up to 8 has every copy in flight.
/// Fuse 2 applies a folded channel gate as the input is staged, fuse 3 a folded batch norm
/// (DenseNet's norm1+relu1 before a 1x1 conv, over the concatenation read in place), fuse 4 (batch
/// 1, clusters) computes the gate of fuse 2 too, from its folded squeeze-excite op.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/normed_conv.hpp"

namespace strata::cuda::tactics {

namespace splitk {

inline constexpr int tile_m = 64;  ///< output pixels a block
inline constexpr int tile_n = 64;  ///< output channel slots a block
inline constexpr int step_k = 32;  ///< reduction elements a k-step (a staged buffer)

/// Staged k-steps: 4 by default (static shared memory, 40 KiB), 8 for variants of math 1 (80
/// KiB dynamic: a slice of up to 8 k-steps has every copy in flight at once).
inline constexpr int default_stages = 4;
inline constexpr int deep_stages = 8;
/// Shared memory of one staged k-step (A and B rows of BK + 8 16-bit elements).
inline constexpr std::size_t stage_bytes = static_cast<std::size_t>(tile_m + tile_n) * (step_k + 8) * 2;

/// Whether the kernel runs `op` (P 16-bit): a GEMM-shaped conv (gemm_conv) not read space-to-depth.
[[nodiscard]] inline bool fits(const OpDesc& op) { return gemm_conv(op) && !op.conv.s2d; }

/// How a launch at one batch splits the work: tiles of tile_m × tile_n outputs, `splits`
/// slices of the reduction of `chunk` k-steps each (the last may be shorter).
struct Split {
  int m_tiles = 0;
  int n_tiles = 0;
  int k_steps = 0;  ///< k-steps of the whole reduction
  int splits = 1;
  int chunk = 0;    ///< k-steps a slice
  [[nodiscard]] long long tiles() const { return 1LL * m_tiles * n_tiles; }
  [[nodiscard]] long long blocks() const { return tiles() * splits; }
};

/// The tiles and k-steps of `op` at `batch`, unsplit.
[[nodiscard]] inline Split unsplit(const OpDesc& op, int batch) {
  const ConvGeom& g = op.conv;
  Split s;
  const long long pixels = 1LL * batch * g.oh * g.ow;
  s.m_tiles = static_cast<int>((pixels + tile_m - 1) / tile_m);
  s.n_tiles = (g.kp + tile_n - 1) / tile_n;
  s.k_steps = (g.kh * g.kw * g.cp + step_k - 1) / step_k;
  s.chunk = s.k_steps;
  return s;
}

/// The split of `op` at `batch` on a GPU of `sms` SMs for algo 0: enough slices for about two
/// blocks an SM, each at least two k-steps long.
[[nodiscard]] inline Split split(const OpDesc& op, int batch, int sms) {
  Split s = unsplit(op, batch);
  const long long tiles = s.tiles();
  const long long want = (2LL * std::max(sms, 1) + tiles - 1) / tiles;
  const int most = std::max(1, s.k_steps / 2);
  const int splits = static_cast<int>(std::clamp<long long>(want, 1, most));
  s.chunk = (s.k_steps + splits - 1) / splits;
  s.splits = (s.k_steps + s.chunk - 1) / s.chunk;
  return s;
}

/// Whether split `s` has a form of math 1 (deep_stages staged k-steps): slices longer than the
/// default's copies in flight.
[[nodiscard]] inline bool has_deep_form(const Split& s) { return s.chunk > default_stages; }

/// Cluster sizes (the variants' algos): a tile's slices, one block each, in one cluster. 16 is
/// a non-portable size (the kernel opts in; Hopper allows it).
inline constexpr int cluster_sizes[] = {2, 4, 8, 16};

[[nodiscard]] inline bool cluster_size(int algo) {
  return std::find(std::begin(cluster_sizes), std::end(cluster_sizes), algo) != std::end(cluster_sizes);
}

/// The split of `op` at `batch` over clusters of `cs` blocks: every tile in `cs` slices of the
/// same length (the last ones shorter, or empty where the k-steps run out).
[[nodiscard]] inline Split cluster_split(const OpDesc& op, int batch, int cs) {
  Split s = unsplit(op, batch);
  s.splits = cs;
  s.chunk = (s.k_steps + cs - 1) / cs;
  return s;
}

/// Whether measured tuning times split `s` over clusters of `cs` on `sms` SMs: the unsplit
/// tiles fill at most half the SMs, the split ones at most two blocks an SM, and every slice has
/// at least two k-steps.
[[nodiscard]] inline bool offers(const Split& s, int sms, int cs) {
  return 2 * s.tiles() <= sms && s.blocks() <= 2LL * sms && s.k_steps >= 2 * cs;
}

/// Whether measured tuning times clusters of `cs` for `op` at `batch` on `sms` SMs (offers).
[[nodiscard]] inline bool offers_cluster(const OpDesc& op, int batch, int sms, int cs) {
  return offers(cluster_split(op, batch, cs), sms, cs);
}

/// The cluster size the heuristic claims `op` at `batch` with on `sms` SMs, or 0 for none: a
/// conv with a window (not 1×1: cuBLASLt and cuDNN ran those faster) whose tiles fill at most an
/// eighth of the SMs, the largest of 16, 8, 4 that keeps to a block an SM with slices of at least
/// 4 k-steps (2 in clusters of 16). ResNet-18 at batch 1 on an H200 (session 19, measured tuning's trials, µs): layer3's
/// 3×3 convs (16 tiles) 6.2 / 8.2 / 8.0 at 8 slices against cuDNN's 6.8 / 8.8 / 8.6; layer4's
/// (8 tiles) 7.3 and 9.5–9.7 at 16 against cuDNN's heuristic pick's 8.3 and 11.9–12.0. Clusters
/// of 16 with slices of 3 k-steps (until session 42 at least 4): DenseNet-121's 3×3 convs of
/// blocks 3 and 4 at batch 1 (36 k-steps over 4 and 1 tiles) took 4.8–4.9 and 4.6–4.8 µs in
/// clusters of 16 against 5.4–5.5 and 5.3–5.4 in clusters of 8 (H200, session 42, measured
/// tuning against the heuristic's plan; the forward 560.3 µs with the other batch-1 rules of
/// session 42), and the forward at batch 2 (blocks 3 and 4 at 16) 689.2 µs against 709.1 with
/// them forced onto clusters of 8, at batch 8 (block 4) 1,009.8 against 1,019.4; smaller
/// clusters keep 4 (not measured shorter).
/// ResNet's claims keep their sizes (their slices at 16 are 4 k-steps or more); U-Net's
/// bottleneck.conv3 and dec3.conv0 (36 k-steps, 2 and 4 tiles at batch 1) move from 8 to 16 as
/// DenseNet's do — not measured there.
[[nodiscard]] inline int claimed_cluster(const OpDesc& op, int batch, int sms) {
  if (op.conv.kh * op.conv.kw == 1) {
    return 0;
  }
  const Split u = unsplit(op, batch);
  const long long tiles = u.tiles();
  if (tiles * 8 > sms) {
    return 0;
  }
  for (const int cs : {16, 8, 4}) {
    if (tiles * cs <= sms && u.k_steps >= (cs == 16 ? 2 : 4) * cs) {
      return cs;
    }
  }
  return 0;
}

/// Whether the kernel computes `op`'s side conv (OpDesc::side) in its launch (variant fuse 1):
/// its input's channel slots a whole number of k-steps, so the centre tap's are k-steps of their
/// own.
[[nodiscard]] inline bool fuses_side(const OpDesc& op) {
  return op.side != nullptr && op.conv.cp % step_k == 0 && op.side->conv.cp == op.conv.cp &&
         op.side->conv.kd == op.side->conv.kp;
}

/// Whether the kernel applies `op`'s folded channel gate as it stages its input (variant fuse 2):
/// a 1x1 conv of stride 1 (its A chunks a pixel's channels) with a gate and no side conv.
[[nodiscard]] inline bool fuses_gate(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return op.gate.has_value() && op.side == nullptr && g.kh == 1 && g.kw == 1 && g.sh == 1 &&
         g.sw == 1 && g.ph == 0 && g.pw == 0;
}

/// Whether the kernel writes `op`'s result into its concat slice itself (OpDesc::slice): the
/// slice's own slots, unit channel stride, channel pairs 4-byte aligned — DenseNet's 3x3 convs
/// writing their 32 channels of the block's concatenation. Every form writes through the same
/// epilogue, so all of them do. Not with a fused pool: the kernel writes the unpooled map, which
/// the pool step after it reads dense (the slice is the pooled result's: DenseNet's transitions).
[[nodiscard]] inline bool slice_fits(const OpDesc& op) { return !op.pool && generated::pair_slice_fits(op); }

/// Whether the kernel applies `op`'s folded batch norm (OpDesc::norm: DenseNet's norm1+relu1
/// before each layer's 1x1 conv1) as it stages its input (variant fuse 3): a 1x1 conv of stride 1
/// (normed_conv_shape) with no pool, concat slice, side conv or gate of its own, whose batch norm
/// reads all of the conv's input slots in 16-byte vectors (a concat's channels in place).
[[nodiscard]] inline bool fuses_norm(const OpDesc& op) {
  return op.norm && normed_conv_shape(op) && !op.pool && !op.slice && !op.side && !op.gate && !op.squeeze &&
         !op.expand && !op.bottleneck && !op.has_residual && normed::input_fits(op);
}

/// Whether the heuristic claims `op` at batch 1 on `sms` SMs in clusters of 4 (with 8 staged
/// k-steps, math 1, where a slice is longer than 4) where its tiles fill more than an eighth of
/// the SMs (so claimed_cluster does not): a conv with a window that writes a concat's slice
/// (slice_fits), which the library convs write into a staging area and a copy moves — two
/// launches. DenseNet-121's 3×3 convs of
/// block 1 at batch 1 (49 tiles, 36 k-steps): 8.9–9.0 µs against cuDNN + the copy's 9.4–9.5 (H200,
/// session 42, measured tuning's pick against the heuristic's plan).
[[nodiscard]] inline bool slice_claimed(const OpDesc& op, int batch, int sms) {
  return batch == 1 && slice_fits(op) && op.conv.kh * op.conv.kw > 1 &&
         unsplit(op, batch).tiles() * 8 > sms && offers_cluster(op, batch, sms, 4);
}

/// The cluster size the heuristic claims fuse 3 with for `op` at batch 1 on `sms` SMs, or 0 for
/// none: the largest of 8 and 4 that tuning is offered (offers_cluster), where the batch norm
/// fuses (fuses_norm). DenseNet-121 at batch 1 on an H200 (session 42, measured tuning's picks
/// against the heuristic's plan of the batch norm's pass + cuBLASLt, µs a layer's op): clusters
/// of 8 won 28 of the 32 layers with 16–31 k-steps (blocks 3 and 4: 5.0–6.4 against 5.7–6.9),
/// clusters of 4 8 of the 16 with 8–15 (blocks 2 and 3: 5.1–6.1 against 5.7–6.5), the pass +
/// cuBLASLt or cuDNN the others (margins not recorded: the tuning cache keeps winners only);
/// below 8 k-steps (no clusters of 4 offered) normed_conv and the libraries won. Clusters of 16
/// (32 k-steps on) were not offered there: not claimed.
[[nodiscard]] inline int claimed_norm_cluster(const OpDesc& op, int sms) {
  if (!fuses_norm(op)) {
    return 0;
  }
  for (const int cs : {8, 4}) {
    if (offers_cluster(op, 1, sms, cs)) {
      return cs;
    }
  }
  return 0;
}

/// Whether measured tuning times fuse 2 in clusters of `cs` for `op` at `batch` on `sms` SMs: the
/// gate fuses, no more slices than k-steps (cluster_split rounds a slice's k-steps up, so the
/// last slices may still be empty: 5 k-steps over 4 leave one idle), and the split tiles keep to
/// two blocks an SM.
[[nodiscard]] inline bool offers_gate(const OpDesc& op, int batch, int sms, int cs) {
  const Split u = unsplit(op, batch);
  return fuses_gate(op) && cs <= u.k_steps && u.tiles() * cs <= 2LL * sms;
}

/// The cluster size the heuristic claims fuse 2 with for `op` at batch 1 on `sms` SMs (0: the
/// workspace form — SplitkConv::heuristic claims it only where its split fits the workspace): the
/// largest of 16, 8, 4 that tuning is offered (features.3.0 takes 4 where 8 measured faster, 5.1
/// against 4.5 µs: a rule by k-steps, not a table). From
/// EfficientNet-B0's sixteen projections at batch 1 on an H200 (session 28, each form forced on
/// all sixteen; µs a projection against the heuristic's channel gate or scaled weights + cuBLASLt,
/// 5.7–7.3): algo 0 won where the reduction is 1 or 3 k-steps (features.1.0 4.3, features.2.0
/// 4.4), clusters of 4 at 5 k-steps over 49 tiles (features.2.1 6.0), of 8 at 8–15 k-steps
/// (4.6–5.4) and of 16 from 21 k-steps on (5.1–5.8); all sixteen this way sum to about 84 µs
/// against 105. At batch 32 every form lost (the channel gate + cuBLASLt took 7.8–20.9 µs, the
/// workspace form 11.5–36.1): no claim past batch 1.
[[nodiscard]] inline int claimed_gate_cluster(const OpDesc& op, int sms) {
  for (const int cs : {16, 8, 4}) {
    if (offers_gate(op, 1, sms, cs)) {
      return cs;
    }
  }
  return 0;
}

/// The split of `op` (joined to a side conv) at `batch` over clusters of `cs` blocks when the
/// launch computes the side conv too (variant fuse 1): the side conv's n-tiles after the conv's.
[[nodiscard]] inline Split side_split(const OpDesc& op, int batch, int cs) {
  Split s = cluster_split(op, batch, cs);
  s.n_tiles += (op.side->conv.kp + tile_n - 1) / tile_n;
  return s;
}

/// Whether measured tuning times fuse 1 in clusters of `cs` for `op` at `batch` on `sms` SMs:
/// the side conv fuses, and the joined tiles pass the same bounds (offers).
[[nodiscard]] inline bool offers_side(const OpDesc& op, int batch, int sms, int cs) {
  return fuses_side(op) && offers(side_split(op, batch, cs), sms, cs);
}

/// The cluster size the heuristic claims fuse 1 with for `op` at `batch` on `sms` SMs, or 0: the
/// largest of 16, 8, 4, 2 that tuning is offered (two blocks an SM at most) with slices of at
/// least 4 k-steps.
[[nodiscard]] inline int claimed_side_cluster(const OpDesc& op, int batch, int sms) {
  for (const int cs : {16, 8, 4, 2}) {
    if (offers_side(op, batch, sms, cs) && side_split(op, batch, cs).chunk >= 4) {
      return cs;
    }
  }
  return 0;
}

/// The most channel slots of a block's slice where the kernel computes a folded squeeze-excite
/// op (fuse 4): four k-steps (the pool's threads take 8 slots each: at most 16 such chunks), and
/// fc1's most output slots there (a thread each).
inline constexpr int excite_most_slots = 4 * step_k;
inline constexpr int excite_most_squeezed = 256;

/// The channel slots of a block's slice of `op` (a 1x1 conv: its k-steps' elements) at batch 1 in
/// clusters of `cs`.
[[nodiscard]] inline int excite_slice_slots(const OpDesc& op, int cs) {
  return cluster_split(op, 1, cs).chunk * step_k;
}

/// Whether the kernel computes `op`'s folded squeeze-excite op (OpDesc::excite) in clusters of
/// `cs` (variant fuse 4, batch 1): the gate folds (fuses_gate); fc1's filter rows are the map's
/// slots and fc2's are fc1's (at most excite_most_squeezed), fc2's outputs the conv's channels;
/// a block's slice of the channels at most excite_most_slots.
[[nodiscard]] inline bool fuses_excite(const OpDesc& op, int cs) {
  if (!fuses_gate(op) || !op.excite || !op.excite->squeeze || cs < 2) {
    return false;
  }
  const OpDesc& q = *op.excite;
  const OpDesc& f1 = *q.squeeze;
  return f1.conv.kh == 1 && f1.conv.kw == 1 && f1.conv.fcg == op.conv.cp &&
         f1.conv.kd >= f1.conv.k && f1.conv.kp % 8 == 0 && f1.conv.kp <= excite_most_squeezed &&
         q.conv.kh == 1 && q.conv.kw == 1 && q.conv.fcg == f1.conv.kp && q.conv.kd >= q.conv.k &&
         q.conv.k == op.conv.c && op.conv.cp % 8 == 0 &&
         excite_slice_slots(op, cs) <= excite_most_slots;
}

/// The most bytes of the map a block pools where the heuristic claims fuse 4 and where measured
/// tuning is offered it (each of a projection's clusters pools its slices of the whole map):
/// EfficientNet-B0's 28x28 maps in slices of 64 slots (98 KiB) and its 14x14 and 7x7 ones (at
/// most 25 KiB), not 56x56 ones (392 KiB and more). Session 52 (H200, batch 1): offered on the
/// thirteen gates this admits, measured tuning kept fuse 4 on all thirteen (256.2 µs against the
/// heuristic's 259.0 with the eleven 14x14 and 7x7 ones claimed, 32 KiB then); the forced GPU
/// test had run the two 28x28 ones in the clusters the heuristic now claims them with.
inline constexpr std::int64_t excite_pool_bytes_max = 128 << 10;

/// The bytes of the map a block of `op` pools in clusters of `cs` (fuse 4).
[[nodiscard]] inline std::int64_t excite_pool_bytes(const OpDesc& op, int cs) {
  return std::int64_t{op.conv.h} * op.conv.w * excite_slice_slots(op, cs) * 2;
}

/// Whether the heuristic claims fuse 4 for `op` at batch 1 in clusters of `cs` (those it claims
/// fuse 2 with, claimed_gate_cluster): the squeeze-excite op folds in (fuses_excite) and a block's
/// share of the pool is at most excite_pool_bytes_max.
[[nodiscard]] inline bool excite_claimed(const OpDesc& op, int cs) {
  return fuses_excite(op, cs) && excite_pool_bytes(op, cs) <= excite_pool_bytes_max;
}

/// Bytes of the f32 partial sums at split `s` (none with one slice).
[[nodiscard]] inline std::size_t partial_bytes(const OpDesc& op, int batch, const Split& s) {
  if (s.splits <= 1) {
    return 0;
  }
  return static_cast<std::size_t>(s.splits) * static_cast<std::size_t>(batch) * op.conv.oh *
         op.conv.ow * op.conv.kp * sizeof(float);
}

/// The kernel's source for `op` (kernel `strata_rtc::splitk_conv<T>`): with `cluster` 0 the
/// slices meet through the workspace and the tiles' counters, else a tile's `cluster` slices are
/// one cluster's blocks (`splits` must then be `cluster`). `stages` k-steps staged: the default's
/// buffers are static shared memory, more are dynamic (stage_bytes each, opted into).
[[nodiscard]] inline std::string source(const OpDesc& op, int cluster = 0, int stages = default_stages,
                                        bool side = false, bool gated = false, bool normed = false,
                                        bool excited = false) {
  STRATA_CHECK(!excited || (gated && cluster > 1 && op.excite),
               "splitk_conv: a folded squeeze-excite op is computed with its gate, in a cluster");
  std::ostringstream o;
  generated::open_kernel(o, op, false, "splitk_conv",
                         normed ? "int batch, const T* __restrict__ z, float* __restrict__ part, "
                                  "unsigned* __restrict__ counters, int splits, int chunk, "
                                  "const float* __restrict__ nscale, const float* __restrict__ nshift"
                         : side ? "int batch, const T* __restrict__ z, float* __restrict__ part, "
                                "unsigned* __restrict__ counters, int splits, int chunk, "
                                "const T* __restrict__ w2, const float* __restrict__ bias2, "
                                "T* __restrict__ y2"
                         : excited ? "int batch, const T* __restrict__ z, float* __restrict__ part, "
                                     "unsigned* __restrict__ counters, int splits, int chunk, "
                                     "const T* __restrict__ sw1, const float* __restrict__ sb1, "
                                     "const T* __restrict__ sw2, const float* __restrict__ sb2"
                         : gated ? "int batch, const T* __restrict__ z, float* __restrict__ part, "
                                   "unsigned* __restrict__ counters, int splits, int chunk, "
                                   "const T* __restrict__ gate"
                                 : "int batch, const T* __restrict__ z, float* __restrict__ part, "
                                   "unsigned* __restrict__ counters, int splits, int chunk",
                         2,
                         cluster > 0 ? "__cluster_dims__(" + std::to_string(cluster) + ", 1, 1) "
                                     : std::string(),
                         256, true, excited ? generated::excite_helpers : "");
  if (side) {  // the side conv (OpDesc::side): its output slots and channels, its activation
    const OpDesc& d = *op.side;
    o << "  constexpr int SKP = " << d.conv.kp << ", SK = " << d.conv.k << ";\n"
      << "  constexpr ActDesc act2_c{static_cast<Act>(" << static_cast<int>(d.act.kind) << "), "
      << std::hexfloat << d.act.alpha << "f, " << d.act.beta << "f};\n"
      << std::defaultfloat << "  const ActDesc act2{act2_c.kind, act2_c.alpha, act2_c.beta};\n";
  } else {
    o << "  constexpr int SKP = 0, SK = 0;  // (no side conv)\n"
      << "  const T* const w2 = nullptr;\n  const float* const bias2 = nullptr;\n"
      << "  T* const y2 = nullptr;\n  const ActDesc act2 = act;\n";
  }
  // The folded gate (OpDesc::gate; fuse 2): x is the map before the multiply, and each staged
  // A chunk is multiplied by its image's gate and rounded to T in place — the product the
  // channel-gate kernel would have stored.
  o << "  constexpr bool GATED = " << (gated ? "true" : "false") << ";\n";
  if (!gated || excited) {
    o << "  const T* const gate = nullptr;" << (excited ? "  // (computed here: fuse 4)" : "") << "\n";
  }
  // The folded squeeze-excite op (OpDesc::excite; fuse 4): fc1's outputs, the slots of a block's
  // slice of the channels (a 1x1 conv: its k-steps' slots) and their 8-slot chunks rounded up to
  // a power of 2 (the pool's threads), the three activations.
  if (excited) {
    const int slots = excite_slice_slots(op, cluster);
    int qn = 1;
    while (qn * 8 < slots) {
      qn *= 2;
    }
    generated::excite_constants(o, *op.excite);
    o << "  constexpr int SE_SLOTS = " << slots << ", SE_QN = " << qn
      << ";  // a slice's slots; its 8-slot chunks, rounded up to a power of 2\n";
  }
  // A concat's slice written in place (slice_fits): the slice's elements a pixel and an image.
  if (slice_fits(op)) {
    o << "  constexpr long long YPIX = " << op.slice->strides.pixel << ", YIMG = " << op.slice->strides.image
      << ";  // (y: the concat's slice)\n";
  }
  // The folded batch norm (OpDesc::norm; fuse 3): x is the batch norm's input — a concat's
  // channels read in place, XPIX elements a pixel and XIMG an image — and each staged A chunk is
  // normalized in place as the batch norm's kernel computes it (x · scale + shift, its
  // activation, rounded to T; slots past the channels 0).
  if (normed) {
    const normed::Source src = normed::source_of(*op.norm);
    o << "  constexpr long long XPIX = " << src.pixel << ", XIMG = " << src.image
      << ";  // (x: the batch norm's input)\n";
    generated::act_constants(o, "NA", "norm_act", op.norm->act);
    o << "  static_assert(KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0,\n"
      << "                \"splitk_conv: a folded batch norm with a 1x1 conv of stride 1 only\");\n";
  }
  o << "  constexpr int BM = " << tile_m << ", BN = " << tile_n << ", BK = " << step_k << ";\n"
    << "  constexpr int CS = " << cluster << ";  // a tile's slices in one cluster (0: none)\n"
    << "  constexpr int CSN = CS > 0 ? CS : 1;  // (a divisor)\n"
    << "  constexpr int ST = " << stages << ";  // staged k-steps (ST - 1 in flight)\n"
    << (stages == default_stages
            ? "  __shared__ __align__(16) T as_s[ST * BM * (BK + 8)];\n"
              "  __shared__ __align__(16) T bs_s[ST * BN * (BK + 8)];\n"
              "  T* const as = as_s;\n"
              "  T* const bs = bs_s;\n"
            : "  extern __shared__ __align__(16) unsigned char staged[];  // (dynamic: over 48 KiB)\n"
              "  T* const as = reinterpret_cast<T*>(staged);\n"
              "  T* const bs = as + ST * BM * (BK + 8);\n")
    << R"src(
  constexpr int PITCH = BK + 8;  // 16-bit elements a staged row: 80 bytes, 8 rows on 8 bank groups
  constexpr int KTOT = KH * KW * CP;  // the reduction (the filter's row)
  constexpr int KSTEPS = (KTOT + BK - 1) / BK;
  constexpr int NT = (KP + BN - 1) / BN;
  // A side conv's tiles come after the conv's: its filter is the centre tap's CP slots of the
  // reduction (k-steps TC·CP/BK on; CP % BK == 0), split over the cluster's slices.
  constexpr int NT2 = (SKP + BN - 1) / BN;
  constexpr int TC = (KH / 2) * KW + KW / 2;
  static_assert(NT2 == 0 || (CS > 1 && CP % BK == 0 && PH == (KH / 2) * DH && PW == (KW / 2) * DW),
                "splitk_conv: a side conv needs a cluster and the centre tap's k-steps");
  static_assert(!GATED || (KH == 1 && KW == 1 && SH == 1 && SW == 1 && NT2 == 0),
                "splitk_conv: a folded gate with a 1x1 conv of stride 1 only");
  __shared__ bool last;
  const int M = batch * OH * OW;
  const int MT = (M + BM - 1) / BM;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  static_assert(CS == 0, "splitk_conv: clusters need compute capability 9.0");
#endif
  // A cluster's blocks are consecutive: block rank r of the cluster is slice r of its tile.
  const int tile = static_cast<int>(CS > 0 ? blockIdx.x / CSN : blockIdx.x % static_cast<unsigned>(MT * NT));
  const int slice = static_cast<int>(CS > 0 ? blockIdx.x % CSN : blockIdx.x / static_cast<unsigned>(MT * NT));
  const int m0 = (tile % MT) * BM;
  const bool on_side = tile / MT >= NT;  // (the whole block's: uniform)
  const int n0 = (on_side ? tile / MT - NT : tile / MT) * BN;
  const int NOUT = on_side ? SKP : KP;  // this tile's output slots a pixel
  // This slice's k-steps: of the reduction, or of the centre tap's for a side tile.
  constexpr int SIDE0 = TC * CP / BK;
  constexpr int SIDE_STEPS = CP / BK;
  const int s0 = on_side ? SIDE0 + slice * ((SIDE_STEPS + CSN - 1) / CSN) : slice * chunk;
  const int s_end = on_side ? min(SIDE0 + SIDE_STEPS, s0 + (SIDE_STEPS + CSN - 1) / CSN)
                            : min(KSTEPS, s0 + chunk);
  const int steps = max(0, s_end - s0);
  // This thread's staged row (a pixel of A, a filter row of B) and its 8 slots of a k-step.
  const int lr = threadIdx.x >> 2;
  const int lc = (threadIdx.x & 3) * 8;
  const int pix = m0 + lr;
  const bool pix_ok = pix < M;
  const int ox = pix_ok ? pix % OW : 0;
  const int oy = pix_ok ? (pix / OW) % OH : 0;
  const int img = pix_ok ? pix / (OW * OH) : 0;
  const int n_row = n0 + lr;
  const bool n_ok = n_row < NOUT;
  auto stage_a = [&](int step, int buf) {
    const int k = step * BK + lc;  // a multiple of 8: one tap's slots (CP % 8 == 0)
    bool va = pix_ok && k < KTOT;
    const T* ga = x;
    if (va) {
      const int tap = k / CP;
      const int c = k - tap * CP;
      const int iy = oy * SH - PH + (tap / KW) * DH;
      const int ix = ox * SW - PW + (tap % KW) * DW;
      va = iy >= 0 && iy < H && ix >= 0 && ix < W;
      )src" << (normed ? "ga = va ? x + static_cast<long long>(img) * XIMG +\n"
                         "                   (static_cast<long long>(iy) * W + ix) * XPIX + c : x;"
                       : "ga = va ? x + ((static_cast<long long>(img) * H + iy) * W + ix) * CP + c : x;")
    << R"src(
    }
    cp_async<16>(as + (buf * BM + lr) * PITCH + lc, ga, va);
  };
  auto stage_b = [&](int step, int buf) {  // (the filter: written by no kernel)
    const int k = step * BK + lc;
    const bool vb = n_ok && k < KTOT;
    const T* gb = on_side ? w2 + static_cast<long long>(n_row) * CP + (k - TC * CP)
                          : w + static_cast<long long>(n_row) * KTOT + k;
    cp_async<16>(bs + (buf * BN + lr) * PITCH + lc, vb ? gb : w, vb);
  };
  auto stage = [&](int step, int buf) {
    stage_a(step, buf);
    stage_b(step, buf);
  };
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int wm = (warp & 1) * 32;   // the warp's 32 rows
  const int wn = (warp >> 1) * 16;  // and 16 columns
  float acc[2][2][4];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    }
  }
  // The filter's first ST - 1 k-steps copied in one group before the wait for the kernel before
  // (a programmatic dependent launch: while it finishes), then the input's, a group a step — the
  // filter's group the oldest, so complete whenever step 0's is.
#pragma unroll
  for (int i = 0; i < ST - 1; ++i) {
    if (i < steps) stage_b(s0 + i, i);
  }
  cp_async_commit();
)src";
  if (excited) {  // (weights no kernel writes: while the kernel before this one finishes)
    o << R"src(  // This block's slice of the channels, slots [c0, c0 + nch) (a 1x1 conv: a k-step's elements
  // are channel slots; nch 0 or less: an empty slice).
  const int c0 = s0 * BK;
  const int nch = min(KTOT, s_end * BK) - c0;
  // The squeeze-excite op's weights this block reads asked into L1: fc1's columns of its slice
  // (a thread a row), fc2's rows of its slice's channels.
  for (int r = threadIdx.x; r < SE_K1 && nch > 0; r += blockDim.x) {
    prefetch_row(sw1 + static_cast<long long>(r) * CP + c0, static_cast<long long>(nch) * sizeof(T));
  }
  prefetch_l1(sw2 + static_cast<long long>(c0) * SE_K1P,
              static_cast<long long>(max(0, min(C - c0, nch))) * SE_K1P * sizeof(T));
)src";
  }
  o << R"src(  pdl_wait();
#pragma unroll
  for (int i = 0; i < ST - 1; ++i) {
    if (i < steps) stage_a(s0 + i, i);
    cp_async_commit();
  }
)src";
  o << (excited ? R"src(  // The folded squeeze-excite op (OpDesc::excite; fuse 4; batch 1, every pixel image 0's), while
  // the first k-steps' copies are in flight: this block pools its slice of the channels, slots
  // [c0, c0 + nch), over the whole map (x: the map the gate multiplies) — a thread 8 slots of
  // every (256 / SE_QN)-th pixel, the pixel lanes added in a warp, then the warps in order —,
  // rounded to T as the pool stores it; adds fc1's products over its slice (a thread an output);
  // after a cluster barrier every block adds the cluster's sums in rank order, finishes fc1 (its
  // bias, activation, rounding, the activation deferred into fc2's read) and computes fc2 for its
  // slice's slots (a thread a slot, fc2's row-major weights) — the gate, rounded to T as the
  // squeeze-excite kernel stores it, in shared memory, where the staged chunks read it.
  static_assert(SE_QN <= 32 && 32 % SE_QN == 0 && SE_SLOTS <= 8 * SE_QN && SE_K1P <= 256,
                "splitk_conv: a slice's chunks a power of 2 up to 32, fc1's slots a thread each");
  __shared__ __align__(16) T se_gate[SE_SLOTS];
  {
    __shared__ __align__(16) float se_pool[SE_SLOTS];
    __shared__ float se_red[8][8 * SE_QN];
    __shared__ float se_part[SE_K1P];
    __shared__ float se_sq[SE_K1P];
    constexpr int PL = 256 / SE_QN;  // pixel lanes
    const int sq = threadIdx.x % SE_QN;
    const int sp = threadIdx.x / SE_QN;
    float sum[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    if (sq * 8 < nch) {
#pragma unroll 4
      for (int p = sp; p < H * W; p += PL) {
        float v[8];
        load8(x + static_cast<long long>(p) * CP + c0 + sq * 8, v);
#pragma unroll
        for (int j = 0; j < 8; ++j) sum[j] += v[j];
      }
    }
#pragma unroll
    for (int d = SE_QN; d < 32; d <<= 1) {
#pragma unroll
      for (int j = 0; j < 8; ++j) sum[j] += __shfl_xor_sync(0xffffffffu, sum[j], d);
    }
    if (lane < SE_QN) {
#pragma unroll
      for (int j = 0; j < 8; ++j) se_red[warp][sq * 8 + j] = sum[j];
    }
    __syncthreads();
    for (int c = threadIdx.x; c < nch; c += blockDim.x) {
      float t = 0.0f;
#pragma unroll
      for (int q = 0; q < 8; ++q) t += se_red[q][c];
      se_pool[c] = as_stored<T>(t / static_cast<float>(H * W));
    }
    __syncthreads();
    if (threadIdx.x < SE_K1P) {  // fc1's products over this slice
      const int o = threadIdx.x;
      float acc = 0.0f;
      if (o < SE_K1) {
        for (int i = 0; i < nch; i += 8) {
          float wv[8];
          load8(sw1 + static_cast<long long>(o) * CP + c0 + i, wv);
#pragma unroll
          for (int j = 0; j < 8; ++j) acc += se_pool[i + j] * wv[j];
        }
      }
      se_part[o] = acc;
    }
    cluster_barrier();  // every block's sums of fc1 written
    if (threadIdx.x < SE_K1P) {
      const int o = threadIdx.x;
      float v[CS];
#pragma unroll
      for (int r = 0; r < CS; ++r) v[r] = cluster_load(&se_part[o], static_cast<unsigned>(r));
      float acc = 0.0f;
#pragma unroll
      for (int r = 0; r < CS; ++r) acc += v[r];
      se_sq[o] = se_squeezed<T, SE_I2>(se_act1, se_in_act2, acc, sb1, o, SE_K1);
    }
    __syncthreads();
    for (int c = threadIdx.x; c < nch; c += blockDim.x) {  // fc2: this slice's gate
      store(se_gate + c, c0 + c < C ? se_excited<SE_K1P>(se_act2, se_sq, sw2, sb2, c0 + c) : 0.0f);
    }
    __syncthreads();
  }
  // The gate of this thread's staged A chunk for k-step `step`, from the slice's (zeros where the
  // chunk is zeros), one k-step ahead of its use.
  auto gate_chunk = [&](int step) {
    const int k = step * BK + lc;
    return pix_ok && k < KTOT ? *reinterpret_cast<const uint4*>(se_gate + (k - c0))
                              : make_uint4(0u, 0u, 0u, 0u);
  };
)src" : R"src(  // The gate of this thread's staged A chunk (its pixel's image, the chunk's 8 channels) for
  // k-step `step`, as loaded (zeros where the chunk is zeros), one k-step ahead of its use.
  auto gate_chunk = [&](int step) {
    const int k = step * BK + lc;
    return GATED && pix_ok && k < KTOT
               ? *reinterpret_cast<const uint4*>(gate + static_cast<long long>(img) * CP + k)
               : make_uint4(0u, 0u, 0u, 0u);
  };
)src")
    << R"src(  uint4 g_next = make_uint4(0u, 0u, 0u, 0u);
  if (GATED && steps > 0) {
    g_next = gate_chunk(s0);
  }
)src";
  if (normed) {
    o << generated::norm_pair_source()
      << R"src(  // The batch norm's scale and shift of this thread's staged A chunk (8 slots) for
  // k-step `step`, one k-step ahead of their use (the arrays padded to the slots, 16-byte aligned).
  float4 ns_next[2] = {}, nf_next[2] = {};
  auto norm_chunk = [&](int step) {
    const int k = step * BK + lc;
    if (pix_ok && k < KTOT) {
      ns_next[0] = *reinterpret_cast<const float4*>(nscale + k);
      ns_next[1] = *reinterpret_cast<const float4*>(nscale + k + 4);
      nf_next[0] = *reinterpret_cast<const float4*>(nshift + k);
      nf_next[1] = *reinterpret_cast<const float4*>(nshift + k + 4);
    }
  };
  if (steps > 0) {
    norm_chunk(s0);
  }
)src";
  }
  o << R"src(  for (int i = 0; i < steps; ++i) {
    cp_async_wait<ST - 2>();  // step i's copies have landed (this thread's)
    if constexpr (GATED) {  // this thread's chunk times the gate, rounded to T, in place
      const uint4 g = g_next;
      if (i + 1 < steps) {
        g_next = gate_chunk(s0 + i + 1);
      }
      const int i0_k = (s0 + i) * BK + lc;  // the chunk's first channel slot (a 1x1 conv)
      uint4* a = reinterpret_cast<uint4*>(as + ((i % ST) * BM + lr) * PITCH + lc);
      uint4 v = *a;
      unsigned* vw = reinterpret_cast<unsigned*>(&v);
      const unsigned* gw = reinterpret_cast<const unsigned*>(&g);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const T* xv = reinterpret_cast<const T*>(&vw[j]);
        const T* gv = reinterpret_cast<const T*>(&gw[j]);
        const int ch = i0_k + 2 * j;  // (channel slots from C on: 0, as channel_gate8 writes them)
        vw[j] = pack2<T>(ch < C ? load(xv) * load(gv) : 0.0f, ch + 1 < C ? load(xv + 1) * load(gv + 1) : 0.0f);
      }
      *a = v;
    }
)src";
  if (normed) {
    o << R"src(    {  // this thread's chunk normalized as the batch norm's kernel computes it, in place
      const float sc[8] = {ns_next[0].x, ns_next[0].y, ns_next[0].z, ns_next[0].w,
                           ns_next[1].x, ns_next[1].y, ns_next[1].z, ns_next[1].w};
      const float sf[8] = {nf_next[0].x, nf_next[0].y, nf_next[0].z, nf_next[0].w,
                           nf_next[1].x, nf_next[1].y, nf_next[1].z, nf_next[1].w};
      if (i + 1 < steps) {
        norm_chunk(s0 + i + 1);
      }
      const int i0_k = (s0 + i) * BK + lc;  // the chunk's first channel slot (a 1x1 conv)
      if (pix_ok && i0_k < KTOT) {  // (rows past the pixels and slots past the reduction stay 0)
        uint4* a = reinterpret_cast<uint4*>(as + ((i % ST) * BM + lr) * PITCH + lc);
        uint4 v = *a;
        unsigned* vw = reinterpret_cast<unsigned*>(&v);
#pragma unroll
        for (int j = 0; j < 4; ++j) {  // (channel slots from C on: 0, as the batch norm writes them)
          vw[j] = norm2(vw[j], sc[2 * j], sc[2 * j + 1], sf[2 * j], sf[2 * j + 1], i0_k + 2 * j);
        }
        *a = v;
      }
    }
)src";
  }
  o << R"src(    __syncthreads();          // everyone's; and every warp is done with step i - 1's buffer
    if (i + ST - 1 < steps) stage(s0 + i + ST - 1, (i + ST - 1) % ST);
    cp_async_commit();
    const T* A = as + (i % ST) * BM * PITCH;
    const T* B = bs + (i % ST) * BN * PITCH;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      unsigned a[2][4], b[2][2];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        ldmatrix_x4(a[mi][0], a[mi][1], a[mi][2], a[mi][3],
                    A + (wm + mi * 16 + (lane & 15)) * PITCH + kk + (lane >> 4) * 8);
      }
      ldmatrix_x4(b[0][0], b[0][1], b[1][0], b[1][1],
                  B + (wn + (lane & 7) + ((lane >> 4) << 3)) * PITCH + kk + ((lane >> 3) & 1) * 8);
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
#pragma unroll
        for (int ni = 0; ni < 2; ++ni) {
          mma_16816<T>(acc[mi][ni], a[mi][0], a[mi][1], a[mi][2], a[mi][3], b[ni][0], b[ni][1]);
        }
      }
    }
  }
  cp_async_wait<0>();
  // The output pair (row, col), (row, col + 1): bias, residual, activation, stored (channel
  // slots from K on written as 0, as every conv kernel of Strata's writes them).
  auto finish = [&](int row, int col, float v0, float v1) {
    if (NT2 > 0 && on_side) {  // the side conv's: its bias and activation, no residual
      v0 += bias2[col];
      v1 += bias2[col + 1];
      *reinterpret_cast<unsigned*>(y2 + static_cast<long long>(row) * SKP + col) =
          pack2<T>(col < SK ? activate(act2, v0) : 0.0f, col + 1 < SK ? activate(act2, v1) : 0.0f);
      return;
    }
    v0 += bias[col];
    v1 += bias[col + 1];
    const long long at = static_cast<long long>(row) * KP + col;
    if (z != nullptr) {
      v0 += load(z + at);
      v1 += load(z + at + 1);
    }
)src" << (slice_fits(op) ? "    const long long yat = static_cast<long long>(row / (OH * OW)) * YIMG +\n"
                           "                          static_cast<long long>(row % (OH * OW)) * YPIX + col;\n"
                           "    *reinterpret_cast<unsigned*>(y + yat) ="
                         : "    *reinterpret_cast<unsigned*>(y + at) =")
    << R"src(
        pack2<T>(col < K ? activate(act, v0) : 0.0f, col + 1 < K ? activate(act, v1) : 0.0f);
  };
  // (for_each_pair: each of this thread's C-fragment pairs inside the output)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (CS > 1) {
    // The partial tile in this block's staging buffers (now free), then each block adds up its
    // share of the rows over the cluster's blocks, slice by slice.
    constexpr int RP = BN + 8;                // floats a row (rows on staggered bank groups)
    constexpr int ROWS = (BM + CSN - 1) / CSN;  // rows a block finishes
    static_assert(sizeof(float) * BM * RP <= sizeof(T) * ST * BM * PITCH, "splitk_conv: the partial tile fits");
    float* red = reinterpret_cast<float*>(as);
    __syncthreads();  // every warp done with the staged buffers
    for_each_pair<2, 2>(wm, wn, BM, BN, [&](int mi, int ni, int h, int r, int c) {
      *reinterpret_cast<float2*>(red + r * RP + c) = make_float2(acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1]);
    });
    cluster_barrier();  // every slice's partial tile written
    for (int p = threadIdx.x; p < ROWS * (BN / 2); p += blockDim.x) {
      const int r = slice * ROWS + p / (BN / 2);
      const int c = (p % (BN / 2)) * 2;
      if (r < BM && m0 + r < M && n0 + c < NOUT) {
        float v0 = 0.0f;
        float v1 = 0.0f;
#pragma unroll
        for (int q = 0; q < CS; ++q) {
          const float2 v = cluster_load2(red + r * RP + c, static_cast<unsigned>(q));
          v0 += v.x;
          v1 += v.y;
        }
        finish(m0 + r, n0 + c, v0, v1);
      }
    }
    cluster_reads_done();  // no block leaves while another may still read its shared memory
    return;
  }
#endif
  if (splits == 1) {
    for_each_pair<2, 2>(m0 + wm, n0 + wn, M, KP, [&](int mi, int ni, int h, int row, int col) {
      finish(row, col, acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1]);
    });
    return;
  }
  // This slice's partial tile, then the tile's counter; the last block to arrive adds the
  // slices in slice order and finishes the tile.
  float* mine = part + static_cast<long long>(slice) * M * KP;
  for_each_pair<2, 2>(m0 + wm, n0 + wn, M, KP, [&](int mi, int ni, int h, int row, int col) {
    *reinterpret_cast<float2*>(mine + static_cast<long long>(row) * KP + col) =
        make_float2(acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1]);
  });
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(&counters[tile], 1u) == static_cast<unsigned>(splits - 1);
  }
  __syncthreads();
  if (!last) {
    return;
  }
  __threadfence();
  // Slice by slice, all of this thread's pairs at once (8 loads in flight, not one).
  float sum[2][2][4] = {};
#pragma unroll 2
  for (int q = 0; q < splits; ++q) {
    const float* pq = part + static_cast<long long>(q) * M * KP;
    for_each_pair<2, 2>(m0 + wm, n0 + wn, M, KP, [&](int mi, int ni, int h, int row, int col) {
      const float2 p = __ldcg(reinterpret_cast<const float2*>(pq + static_cast<long long>(row) * KP + col));
      sum[mi][ni][2 * h] += p.x;
      sum[mi][ni][2 * h + 1] += p.y;
    });
  }
  for_each_pair<2, 2>(m0 + wm, n0 + wn, M, KP, [&](int mi, int ni, int h, int row, int col) {
    finish(row, col, sum[mi][ni][2 * h], sum[mi][ni][2 * h + 1]);
  });
  if (threadIdx.x == 0) {
    counters[tile] = 0u;  // for the next launch (stream-ordered after this one)
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace splitk

template <DType P>
class SplitkConv final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "splitk_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && splitk::fits(op);
  }
  /// Fuse 1: the op's side conv (OpDesc::side) computed by the same launch — its tiles after the
  /// conv's, over the centre tap's k-steps (splitk::fuses_side). ResNet-18 at batch 1 on an H200
  /// (session 21, forced, f16): the three joined ops 6.6 / 7.8 / 7.6 µs in clusters of 4, 4, 8
  /// against 8.8 / 9.3 / 10.3 for the downsample and the conv as two launches; the whole network
  /// 117.6 µs against 123.0.
  [[nodiscard]] bool fuses_side(const Variant& v) const override { return v.fuse == 1; }
  /// Fuse 2: the op's folded channel gate (OpDesc::gate: a squeeze-excite gate's multiply, folded
  /// into the 1x1 projection after it) applied as the kernel stages its input — the map times
  /// its image's gate, rounded to the storage type as the channel-gate kernel stores it — so the
  /// product is never stored and the op is one launch (written in session 28 for
  /// EfficientNet-B0's sixteen projections at small batches, where the multiply, or the weights
  /// scaled per image, is a launch of its own: 5.7-7.3 µs an op at batch 1 on an H200). Correct
  /// on an H200 (session 28: forced against the CPU, and equal to the bit with the channel-gate
  /// kernel before the same split-K conv); claimed at batch 1 (splitk::claimed_gate_cluster),
  /// offered to measured tuning at every batch.
  [[nodiscard]] bool fuses_gate(const Variant& v) const override { return v.fuse == 2 || v.fuse == 4; }
  /// Fuse 4 (batch 1, clusters): fuse 2, and the gate itself computed by the clusters — the op's
  /// folded squeeze-excite op (OpDesc::excite: EfficientNet's pool, fc1 and fc2 before its
  /// projection) — so that the gate is one launch fewer: each block pools its slice of the
  /// channels over the whole map, adds fc1's products over it, a cluster barrier shares those,
  /// and each block finishes fc1 and computes its slice's gate from fc2 (splitk::source). Written
  /// in session 51 for EfficientNet-B0 at batch 1, whose sixteen gates were a launch each of
  /// 6.2–8.3 µs (H200, session 28) before projections of 4.6–5.8; GPU-tested in session 52 (H200),
  /// where claimed on the eleven 14x14 and 7x7 gates it took EfficientNet-B0's heuristic forward
  /// at batch 1 from 280.1 to 259.0 µs, and measured tuning, offered it on thirteen gates (the
  /// 28x28 ones too), kept it on all thirteen (256.2 µs) — so the heuristic claims those thirteen
  /// (splitk::excite_claimed).
  [[nodiscard]] bool fuses_excite(const Variant& v) const override { return v.fuse == 4; }
  /// Fuse 3: the op's folded batch norm (OpDesc::norm: DenseNet's norm1+relu1 before each
  /// layer's 1x1 conv1, over the block's running concatenation read in place) applied as the
  /// kernel stages its input — each 8-slot chunk normalized in shared memory by the thread that
  /// copied it, as the batch norm's kernel computes it — so the normalized map is never stored
  /// and the op is one launch. For small batches, where the pass and the GEMM are two launches of
  /// a few microseconds each over a map of a few hundred pixels (DenseNet-121 at batch 1: 58 such
  /// layers) and normed_conv's blocks of 64 or 128 pixels leave the GPU idle. Written in session
  /// 41; on an H200 in session 42 equal to the pass + the same split-K conv within 2.2e-4 (GPU
  /// tests), offered to measured tuning, and claimed at batch 1 where it won there
  /// (splitk::claimed_norm_cluster): with normed_conv's batch-1 claims and the clusters of 16,
  /// DenseNet-121's heuristic forward took 560.3 µs against 621.7 (measured tuning's: 561.8).
  [[nodiscard]] bool fuses_norm(const Variant& v) const override { return v.fuse == 3; }
  /// A concat's slice written in place, by every form (splitk::slice_fits): DenseNet-121's 3x3
  /// convs at batch 1, claimed here in blocks 2 to 4, were each a conv into the staging area and
  /// a copy into the slice — 52 launches of the forward's. Without the copies (session 42, H200)
  /// the heuristic's forward took 621.7 µs against 706.5 (session 40).
  [[nodiscard]] bool writes_slice(const OpDesc& op) const override { return splitk::slice_fits(op); }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t ws_limit,
                                               const Libraries&) const override {
    if (device_arch() < 90 || !applicable(op)) {
      return std::nullopt;  // (clusters: compute capability 9.0 on)
    }
    const int sms = generated::device_sms().sms;
    if (splitk::fuses_gate(op)) {  // (a 1x1 conv: no other claim of this tactic's)
      // (At rank joins: generated_conv's claim on a conv with padded input slots, tailored - 1,
      // ties it and comes first in the registry — a gated conv with C < CP stays there.)
      const int cs = batch == 1 ? splitk::claimed_gate_cluster(op, sms) : 0;
      if (batch != 1 || (cs == 0 && !gate_workspace_fits(op, batch, sms, ws_limit))) {
        return std::nullopt;
      }
      if (cs != 0 && splitk::excite_claimed(op, cs)) {  // the gate computed here too: a launch fewer
        return Claim{Variant{std::string(name()), cs, 0, 4}, rank::joins - 1};
      }
      return Claim{Variant{std::string(name()), cs, 0, 2}, rank::joins};
    }
    if (const int side = splitk::claimed_side_cluster(op, batch, sms); side != 0) {
      return Claim{Variant{std::string(name()), side, 0, 1}, rank::joins};
    }
    if (batch == 1) {  // the batch norm applied as staged: one launch (ahead of normed_conv's claim)
      if (const int cs = splitk::claimed_norm_cluster(op, sms); cs != 0) {
        return Claim{Variant{std::string(name()), cs, 0, 3}, rank::joins};
      }
    }
    if (splitk::slice_claimed(op, batch, sms)) {  // (8 staged k-steps where a slice has more than 4)
      const bool deep = splitk::has_deep_form(splitk::cluster_split(op, batch, 4));
      return Claim{Variant{std::string(name()), 4, deep ? 1 : 0, 0}, rank::special};
    }
    const int cs = splitk::claimed_cluster(op, batch, sms);
    if (cs == 0) {
      return std::nullopt;
    }
    return Claim{Variant{std::string(name()), cs, 0, 0}, rank::special};
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t ws_limit,
                                                const Libraries&) const override {
    std::vector<Variant> v;
    if (device_arch() < 90) {  // (no clusters; none without a device)
      return v;
    }
    const int sms = generated::device_sms().sms;
    const bool norm = splitk::fuses_norm(op);  // the batch norm applied as staged (fuse 3) too
    if (norm && splitk::partial_bytes(op, batch, splitk::split(op, batch, sms)) <= ws_limit) {
      v.push_back(Variant{std::string(name()), 0, 0, 3});  // (the slices met in the workspace)
    }
    if (gate_workspace_fits(op, batch, sms, ws_limit)) {
      v.push_back(Variant{std::string(name()), 0, 0, 2});  // the gate applied as staged, the
                                                           // slices met in the workspace
    }
    for (const int cs : splitk::cluster_sizes) {
      if (splitk::offers_cluster(op, batch, sms, cs)) {
        // (slices longer than the default's copies in flight: also all, up to 8, at once — math 1)
        const bool deep = splitk::has_deep_form(splitk::cluster_split(op, batch, cs));
        for (const int fuse : {0, 3}) {
          if (fuse == 0 || norm) {
            v.push_back(Variant{std::string(name()), cs, 0, fuse});
            if (deep) {
              v.push_back(Variant{std::string(name()), cs, 1, fuse});
            }
          }
        }
      }
      if (splitk::offers_gate(op, batch, sms, cs)) {
        v.push_back(Variant{std::string(name()), cs, 0, 2});  // the gate applied as staged
        if (batch == 1 && splitk::fuses_excite(op, cs) &&  // and computed here
            splitk::excite_pool_bytes(op, cs) <= splitk::excite_pool_bytes_max) {
          v.push_back(Variant{std::string(name()), cs, 0, 4});
        }
      }
      if (splitk::offers_side(op, batch, sms, cs)) {  // the side conv in the same launch
        v.push_back(Variant{std::string(name()), cs, 0, 1});
        if (splitk::has_deep_form(splitk::side_split(op, batch, cs))) {
          v.push_back(Variant{std::string(name()), cs, 1, 1});
        }
      }
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const generated::DeviceSms d = generated::device_sms();
    const bool clustered = v.algo != 0;
    STRATA_CHECK(!clustered || device_arch() >= 90,
                 "cuda::Engine: layer '" << op.label << "': splitk_conv algo " << v.algo
                                         << " runs thread-block clusters (compute capability 9.0 "
                                            "on)");
    if (clustered) {
      generated::allow_cluster(k, d.device, v.algo, op.label, name());
    }
    const bool side = v.fuse == 1;
    STRATA_CHECK(!side || (io.side_y != nullptr && io.side_weights != nullptr),
                 "cuda::Engine: layer '" << op.label
                                         << "': splitk_conv without its side conv's buffers");
    const bool excited = v.fuse == 4;
    const bool gated = v.fuse == 2 || excited;
    STRATA_CHECK(!gated || (io.gate_x != nullptr && (excited || io.gate != nullptr)),
                 "cuda::Engine: layer '" << op.label
                                         << "': splitk_conv fuse 2 without the gate's map or gate");
    STRATA_CHECK(!excited || (io.excite.weights != nullptr && io.excite.squeeze_weights != nullptr),
                 "cuda::Engine: layer '" << op.label
                                         << "': splitk_conv fuse 4 without its squeeze-excite op's weights");
    STRATA_CHECK(!excited || batch == 1,
                 "cuda::Engine: layer '" << op.label << "': splitk_conv fuse 4 computes the gate of "
                                            "one image (batch 1), not " << batch);
    const bool normed = v.fuse == 3;
    STRATA_CHECK(!normed || (io.norm_x != nullptr && io.norm_weights != nullptr &&
                             io.norm_weights->scale_f32.get() != nullptr &&
                             io.norm_weights->shift_f32.get() != nullptr),
                 "cuda::Engine: layer '" << op.label
                                         << "': splitk_conv fuse 3 without its batch norm's input, "
                                            "scale or shift");
    const splitk::Split s = side        ? splitk::side_split(op, batch, v.algo)
                            : clustered ? splitk::cluster_split(op, batch, v.algo)
                                        : splitk::split(op, batch, d.sms);
    // The deep form's staged k-steps: dynamic shared memory beyond the default 48 KiB.
    const std::size_t shared =
        stages(v) == splitk::default_stages ? 0 : splitk::stage_bytes * static_cast<std::size_t>(stages(v));
    generated::allow_shared(k, d.device, shared, op.label, "splitk_conv math 1");
    STRATA_CHECK(s.blocks() <= 0x7fffffffLL,
                 "cuda::Engine: layer '" << op.label << "': splitk_conv would launch " << s.blocks()
                                         << " blocks at batch " << batch);
    std::ostringstream how;
    how << "mma.sync, tiles of " << splitk::tile_m << "x" << splitk::tile_n << ", "
        << stages(v) << " staged k-steps, "
        << (s.splits > 1 ? std::to_string(s.splits) + " slices of " + std::to_string(s.chunk) +
                               " k-steps" +
                               (clustered ? " in a cluster, added in distributed shared memory"
                                          : "")
                         : std::string("the reduction unsplit"))
        << ", shapes compiled in; " << (side ? "the side conv's tiles after the conv's, " : "")
        << (excited ? "the squeeze-excite op's pool, fc1 and fc2 computed by each cluster for its "
                      "slices (fc1's sums shared in distributed shared memory), "
                    : "")
        << (gated ? "the gate applied as the input is staged, " : "")
        << (normed ? "the batch norm applied as the input is staged, " : "")
        << (splitk::slice_fits(op) ? "writing channels " + std::to_string(op.slice->c0) + ".." +
                                         std::to_string(op.slice->c0 + op.conv.k - 1) + " of a concat, "
                                   : std::string())
        << (op.has_residual ? "residual, " : "");
    return std::make_unique<SplitStep>(op, w, io, batch, s, clustered, shared, k, how.str(), side,
                                       gated, normed, excited);
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v, const OpIo&) const override {
    STRATA_CHECK(applicable(op), "cuda::Engine: layer '" << op.label << "': splitk_conv runs a "
                                                            "16-bit conv of one group over packed "
                                                            "channels");
    STRATA_CHECK((v.algo == 0 || splitk::cluster_size(v.algo)) && (v.math == 0 || v.math == 1) &&
                     (v.fuse >= 0 && v.fuse <= 4),
                 "cuda::Engine: layer '" << op.label << "': splitk_conv has algo 0 (slices met "
                                            "through a workspace) and algos 2, 4, 8, 16 (slices "
                                            "in a cluster of that size), math 0 (4 staged "
                                            "k-steps) or 1 (8), fuse 0, 1 (the side conv too), "
                                            "2 (the folded gate applied as staged), 3 (the "
                                            "folded batch norm applied as staged) or 4 (fuse 2, "
                                            "the gate's squeeze-excite op computed too); not "
                                         << to_string(v));
    if (v.fuse == 3) {
      STRATA_CHECK(splitk::fuses_norm(op),
                   "cuda::Engine: layer '" << op.label << "': splitk_conv fuse 3 applies a folded "
                                              "batch norm to a 1x1 conv of stride 1 (no pool, slice, "
                                              "side conv or gate) that reads its input in 16-byte "
                                              "vectors, and this op is not one; not "
                                           << to_string(v));
      return this->named(splitk::source(op, v.algo, stages(v), false, false, true));
    }
    if (v.fuse == 4) {
      STRATA_CHECK(splitk::fuses_excite(op, v.algo),
                   "cuda::Engine: layer '" << op.label << "': splitk_conv fuse 4 computes a folded "
                                              "squeeze-excite op (fc1 of at most "
                                           << splitk::excite_most_squeezed
                                           << " slots) and applies its gate to a 1x1 conv of stride "
                                              "1 in a cluster whose blocks' slices have at most "
                                           << splitk::excite_most_slots
                                           << " channel slots, and this op or cluster is not one; not "
                                           << to_string(v));
      return this->named(splitk::source(op, v.algo, stages(v), false, true, false, true));
    }
    if (v.fuse == 2) {
      STRATA_CHECK(splitk::fuses_gate(op),
                   "cuda::Engine: layer '" << op.label << "': splitk_conv fuse 2 applies a folded "
                                              "channel gate to a 1x1 conv of stride 1, and this "
                                              "op has none; not "
                                           << to_string(v));
      return this->named(splitk::source(op, v.algo, stages(v), false, true));
    }
    if (v.fuse == 1) {
      STRATA_CHECK(splitk::fuses_side(op) && v.algo > 1,
                   "cuda::Engine: layer '" << op.label << "': splitk_conv fuse 1 computes a side "
                                              "conv (ResNet's downsample joined to its block's "
                                              "first conv) in a cluster (algo 2 to 16), its input "
                                              "channel slots a multiple of "
                                           << splitk::step_k << "; not " << to_string(v));
      return this->named(splitk::source(op, v.algo, stages(v), true));
    }
    // (a conv whose side conv, or gate, runs as a step of its own: the kernel of the conv alone)
    return this->named(splitk::source(op.side ? side_main(op) : op.gate ? gate_conv(op) : op,
                                      v.algo, stages(v)));
  }
  /// Whether fuse 2's workspace form runs `op` at `batch` within `ws_limit` bytes of workspace
  /// (its slices' partial tiles: splitk::split on `sms` SMs).
  [[nodiscard]] static bool gate_workspace_fits(const OpDesc& op, int batch, int sms,
                                                std::size_t ws_limit) {
    return splitk::fuses_gate(op) &&
           splitk::partial_bytes(op, batch, splitk::split(op, batch, sms)) <= ws_limit;
  }
  [[nodiscard]] static int stages(const Variant& v) {
    return v.math == 1 ? splitk::deep_stages : splitk::default_stages;
  }

  class SplitStep final : public generated::KernelStep<T> {
   public:
    SplitStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch, splitk::Split s,
              bool clustered, std::size_t shared, cudaKernel_t k, const std::string& how, bool side,
              bool gated, bool normed, bool excited)
        : generated::KernelStep<T>(op, w, gated ? gated_io(io) : normed ? normed_io(io) : io,
                                   generated::Launch{static_cast<unsigned>(s.blocks()), 256, shared},
                                   false, k, "split-K conv", how.c_str()),
          batch_(batch), split_(s), z_(static_cast<const T*>(io.z)),
          side_(side),
          gate_(gated && !excited ? static_cast<const T*>(io.gate) : nullptr),
          excited_(excited),
          sw1_(excited ? io.excite.squeeze_weights->weight.template as<const T>() : nullptr),
          sb1_(excited ? io.excite.squeeze_weights->bias_f32.template as<const float>() : nullptr),
          sw2_(excited ? io.excite.weights->weight.template as<const T>() : nullptr),
          sb2_(excited ? io.excite.weights->bias_f32.template as<const float>() : nullptr),
          w2_(side_ ? io.side_weights->weight.template as<const T>() : nullptr),
          bias2_(side_ ? io.side_weights->bias_f32.template as<const float>() : nullptr),
          y2_(side_ ? static_cast<T*>(io.side_y) : nullptr),
          nscale_(normed ? io.norm_weights->scale_f32.template as<const float>() : nullptr),
          nshift_(normed ? io.norm_weights->shift_f32.template as<const float>() : nullptr),
          partial_(clustered ? 0 : splitk::partial_bytes(op, batch, s)),
          // (each launch's last block of a tile sets its counter back to 0)
          counters_(zeroed_device_buffer(
              s.splits > 1 && !clustered ? static_cast<std::size_t>(s.tiles()) * sizeof(unsigned) : 0)) {}
    [[nodiscard]] std::size_t workspace_bytes() const override { return partial_; }
    void launch(cudaStream_t s, void* ws, std::size_t ws_bytes) override {
      STRATA_CHECK(ws_bytes >= partial_, "splitk_conv: a workspace of " << ws_bytes << " bytes, "
                                                                        << partial_ << " needed");
      if (excited_) {
        this->run(s, batch_, z_, static_cast<float*>(ws), counters_.template as<unsigned>(),
                  split_.splits, split_.chunk, sw1_, sb1_, sw2_, sb2_);
      } else if (side_) {
        this->run(s, batch_, z_, static_cast<float*>(ws), counters_.template as<unsigned>(),
                  split_.splits, split_.chunk, w2_, bias2_, y2_);
      } else if (nscale_ != nullptr) {
        this->run(s, batch_, z_, static_cast<float*>(ws), counters_.template as<unsigned>(),
                  split_.splits, split_.chunk, nscale_, nshift_);
      } else if (gate_ != nullptr) {
        this->run(s, batch_, z_, static_cast<float*>(ws), counters_.template as<unsigned>(),
                  split_.splits, split_.chunk, gate_);
      } else {
        this->run(s, batch_, z_, static_cast<float*>(ws), counters_.template as<unsigned>(),
                  split_.splits, split_.chunk);
      }
    }

   private:
    /// The kernel's x for a folded gate: the map before the multiply.
    static OpIo gated_io(OpIo io) {
      io.x = io.gate_x;
      return io;
    }
    /// The kernel's x for a folded batch norm: the batch norm's input (a concat's channels).
    static OpIo normed_io(OpIo io) {
      io.x = io.norm_x;
      return io;
    }
    int batch_ = 1;
    splitk::Split split_;
    const T* z_ = nullptr;
    bool side_ = false;  ///< the launch computes the side conv too (its tiles after the conv's)
    const T* gate_ = nullptr;  ///< fuse 2: the folded gate, (n, cp)
    bool excited_ = false;     ///< fuse 4: the squeeze-excite op's weights (fc1's, fc2's: row-major)
    const T* sw1_ = nullptr;
    const float* sb1_ = nullptr;
    const T* sw2_ = nullptr;
    const float* sb2_ = nullptr;
    const T* w2_ = nullptr;
    const float* bias2_ = nullptr;
    T* y2_ = nullptr;
    const float* nscale_ = nullptr;  ///< fuse 3: the batch norm's scale and shift (f32, a slot each)
    const float* nshift_ = nullptr;
    std::size_t partial_ = 0;
    DeviceBuffer counters_;
  };
};

}  // namespace strata::cuda::tactics
