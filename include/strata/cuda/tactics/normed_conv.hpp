#pragma once
/// Tactic `normed_conv`: a 1×1 conv with a folded batch norm before it (OpDesc::norm,
/// fold_normed_convs; 16-bit NHWC) — DenseNet's norm1 → relu1 → conv1, over the block's running
/// concatenation read in place, and its transitions' norm → relu → conv → 2×2 average pool,
/// writing the next block's first channels — as one GEMM on tensor cores in a kernel generated for the op:
/// the batch norm's scale and shift and its activation are applied to the input as it is loaded,
/// rounded to the storage type as the batch norm kernel would store it, so the normalized map
/// (as large as the concatenation read) is never written nor read back.
///
/// A block computes BM output pixels (128, or 64: algo 1) × BN output slots (up to 128): 8 warps
/// as 2 × 4, each BM/2 rows × BN/4 slots of m16n8k16 tiles (f32 accumulation). The reduction runs
/// in steps of 32 input slots, double-buffered: the next step's 16-byte input vectors are loaded
/// into registers and its filter slice copied in (cp.async) while the tensor cores work on this
/// one; the vectors are then normalized (x · scale + shift, the activation; slots past the real
/// channels as 0) and stored in shared memory. Rows are padded to 40 elements (80 bytes), so
/// the 8 rows an ldmatrix reads fall in 8 different bank groups. The epilogue adds the bias,
/// applies the conv's activation and stores channel pairs; with a 2×2 pool (fuse 1) the GEMM's
/// rows are ordered window by window (four rows a pooled pixel), each value is rounded as the
/// conv would store it, and the lane holding a window's first position reduces the four (from
/// the lanes 4, 8, 12 on, by shuffles) in the pool kernel's order and stores the pooled pair.
///
/// Algo 2 (algo 3: 64-pixel blocks; `math` 1: a ring of 3 steps of 64 slots) is pipelined: a
/// ring of 4 reduction steps of 32 slots copied in by cp.async, the raw input rows beside the
/// filter slice, one barrier a step; 4 × 2 warps, each normalizing the A fragments it reads with
/// ldmatrix (its lane's four channels a 16-slot step); without a pool the output tile goes out
/// through shared memory in 16-byte chunks. Claimed for unpooled ops (H200, session 32:
/// DenseNet-121's blocks 1–3 at batch 256, 8–15% faster than form 0). Each thread's copy
/// sources and shared-memory places are worked out once, the copies and ldmatrix take 32-bit
/// shared addresses (session 38: blocks 1 and 2 of DenseNet-121 at batch 256 8% and 12% faster).
/// (Blocks of 96 pixels, warps 2 × 4, were tried on DenseNet-121's 14×14 maps at batch 256, whose
/// 392 blocks of 128 leave a second wave of 128: 1,663 against 1,668 µs for block 3, not kept.)
///
/// Algo 4 (sm_90a; session 34, written without a GPU: offered to measured tuning on compute
/// capability 9.0, not claimed) is algo 2's ring on Hopper's warpgroup MMA: two warpgroups of 64
/// rows, each 16-slot step one `wgmma.m64n(BN)k16` with A from registers — each warp's ldmatrix
/// fragment normalized once (algo 2's 4 × 2 warps normalize every element twice, and Nsight
/// Compute counted 24 instructions an mma there) — and the filter slice, staged as core
/// matrices, by descriptor.
///
/// Fuse 2 (forms 0 and 1): an average pool after a conv without an activation is taken first,
/// on the input — it commutes with the 1×1 conv — so the GEMM runs over the pooled pixels, each
/// A element the window's four positions normalized and averaged as they are loaded. Claimed
/// for DenseNet's transitions in 64-pixel blocks (H200, session 35, batch 256: the three took
/// 531 µs against 1,159 with the pool in the epilogue).
///
/// Algo 5 (math 2, fuse 2; forceable only) runs the pool-first form on algo 2's ring: the
/// window's four positions staged a plane each, normalized and averaged by the thread that
/// copied them (form 1's arithmetic) before the step's barrier. Equal to form 1 to the bit and
/// slower on each transition (H200, session 39: 196 / 152 / 133 µs against 186 / 142 / 121).
///
/// Algo 6 (math 0, fuse 2): the pool taken first as a pass into the workspace (form 0's
/// normalization and averaging, each input element once) and one cuBLASLt GEMM over the pooled
/// map writing the result in place; claimed for transitions of more than 128 output slots, where
/// the joined forms normalize each element once a block of 128 slots (session 39: DenseNet-121's
/// transitions 2 and 3 at batch 256 134 and 76 µs against 142 and 121).
///
/// Math 2 (algo 2): the batch norm's scale folded into the filter, prepared per op from the
/// uploaded weights, so that the normalization is one packed `fma.rn.relu` a channel pair of the
/// A fragments (fold_scale). Session 35's Nsight Compute on algo 2 (DenseNet-121, batch 256): two
/// blocks an SM (registers), 0.6 instructions issued a cycle a scheduler, DRAM 25–40% busy —
/// the normalization's ~11 instructions a channel pair, done by both warps that read a fragment.
///
/// Why: DenseNet-121 at batch 256 spent 4.5 of its 12.1 ms (H200, session 8) in the 58 batch
/// norm + ReLU passes over the concatenations, each written for its 1×1 conv to read once.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/cublaslt.hpp"
#include "strata/cuda/device.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"
#include "strata/cuda/tactics/lt_matmul.hpp"

namespace strata::cuda::tactics {

namespace normed {

inline constexpr int threads = 256;
inline constexpr int bk = 32;     ///< input slots a reduction step
/// The most input slots the kernel stages the batch norm's scale and shift of (8 bytes a slot).
inline constexpr int max_slots = 2048;

/// A block's shape for one op.
struct Plan {
  int bm = 0;      ///< output pixels a block
  int bn = 0;      ///< output slots a block (32, 64 or 128)
  int n_blocks = 0;  ///< blocks across the output slots
  std::int64_t shared = 0;
};

/// Where the batch norm's input lies: elements from one pixel to the next and one image to the
/// next (a concat's, where it reads a slice of one in place).
struct Source {
  std::int64_t pixel = 0;
  std::int64_t image = 0;
};
[[nodiscard]] inline Source source_of(const OpDesc& bn) {
  if (bn.in_slice) {
    return {bn.in_slice->strides.pixel, bn.in_slice->strides.image};
  }
  return {bn.in_cp, std::int64_t{bn.in_shape.h} * bn.in_shape.w * bn.in_cp};
}

/// The fused pool the kernel takes in its epilogue: a 2×2 max or average pool of stride 2, no
/// padding, over a map of even sides (every window whole: DenseNet's transitions).
[[nodiscard]] inline bool pool_fits(const OpDesc& op) {
  if (!op.pool) {
    return true;
  }
  const LayerDesc& d = op.pool->layer;
  return (op.pool->kind == OpKind::avg_pool || op.pool->kind == OpKind::max_pool) &&
         d.kernel == HW{2} && d.stride == HW{2} && d.padding == HW{0} && d.dilation == HW{1} &&
         op.conv.oh % 2 == 0 && op.conv.ow % 2 == 0 && op.pool->out_shape.h == op.conv.oh / 2 &&
         op.pool->out_shape.w == op.conv.ow / 2 && op.pool->out_cp == op.conv.kp;
}

/// Whether `op`'s fused pool may be taken first, on the input (fuse 2): a 2×2 average pool the
/// kernel takes (pool_fits) after a conv with no activation of its own — the average commutes
/// with the 1×1 conv and its bias, so the GEMM runs over the pooled pixels (a quarter of the
/// rows, of the MMAs, of the filter's reads) and each A element is the window's four positions
/// normalized (each rounded to the storage type as the batch norm's kernel stores it), averaged
/// in f32 and rounded once more. DenseNet's transitions.
[[nodiscard]] inline bool pool_first_fits(const OpDesc& op) {
  return op.pool && op.pool->kind == OpKind::avg_pool && op.act.kind == Act::none && pool_fits(op);
}

/// Whether the kernel writes `op`'s result into its concat slice itself: every slot of the
/// result a real channel, written whole, 16-byte aligned (DenseNet's transitions write the next
/// block's first channels).
[[nodiscard]] inline bool slice_fits(const OpDesc& op) {
  return !op.slice || (op.slice->aligned && !op.slice->flatten && op.slice->strides.channel == 1 &&
                       op.slice->c0 % 8 == 0 && op.slice->write == op.conv.kp &&
                       op.conv.k == op.conv.kp && op.slice->strides.pixel % 8 == 0);
}

/// Whether the batch norm folded into `op` (OpDesc::norm) reads all of the conv's input slots
/// in 16-byte vectors — slots and strides in 8s, a concat's slice aligned — and the conv's result
/// has its slots. Also splitk_conv fuse 3's condition.
[[nodiscard]] inline bool input_fits(const OpDesc& op) {
  const OpDesc& bn = *op.norm;
  const Source s = source_of(bn);
  return bn.in_cp == op.conv.cp && op.out_cp == op.conv.kp && s.pixel % 8 == 0 && s.image % 8 == 0 &&
         (!bn.in_slice || (bn.in_slice->aligned && bn.in_slice->c0 % 8 == 0));
}

/// Whether the kernel runs `op`: a 1×1 conv with a folded batch norm (normed_conv_shape), its
/// input read in 16-byte vectors (slots and strides in 8s), at most max_slots input slots; any
/// fused pool a 2×2 one it takes (pool_fits), any concat slice one it writes (slice_fits); on
/// a GPU of sm_80 on.
[[nodiscard]] inline bool fits(const OpDesc& op) {
  if (!op.norm || !normed_conv_shape(op) || !pool_fits(op) || !slice_fits(op) ||
      !generated::mma_sync_device()) {
    return false;
  }
  return op.conv.cp <= max_slots && input_fits(op);
}

/// The warpgroup form (sm_90a): algo 2's ring, each warpgroup's 64 rows × the block's slots one
/// `wgmma` a 16-slot step, A from registers (normalized as loaded), the filter by descriptor;
/// `math` 1: blocks of at most 64 slots (twice the blocks where few pixels leave SMs idle).
inline constexpr int wgmma_algo = 4;
/// Algo 5: the pipelined form with the pool taken first (fuse 2, folded math 2 only): blocks of 64
/// pooled pixels, a ring of 3 steps of 32 slots, each step's input the window's four positions (a
/// plane each) copied in by cp.async; each thread normalizes and averages the vectors it copied
/// (form 1's arithmetic, to the bit) into the first plane before the step's barrier, so the warps
/// read normalized A fragments. For the transitions, whose form 1 holds a step's loads in
/// registers and waits for them at every step. Forceable only: equal to form 1 to the bit, and
/// slower (H200, session 39, DenseNet-121 b256: 196 / 152 / 133 µs against 186 / 142 / 121).
inline constexpr int pool_pipe_algo = 5;
/// Algo 6 (math 0, fuse 2): the pool taken first in two steps — a pass that normalizes the
/// window's four positions and averages them (form 0's arithmetic, to the bit) into a dense map of
/// the pooled pixels in the workspace, then one cuBLASLt GEMM over it (f32 accumulation, the bias
/// in its epilogue) writing the result, a concat slice in place. For the transitions of many
/// output channels, where the joined forms normalize and average every input element once for
/// each block of 128 output slots (DenseNet-121's third: four times).
inline constexpr int pass_gemm_algo = 6;

/// Whether form `algo`'s kernel does work before a programmatic dependent launch's wait: the
/// mma.sync ring forms (algos 2, 3 and 5) copy the filter's first STAGES − 1 steps first (weights
/// no kernel writes), then wait, then copy the input's; the other forms wait first thing.
[[nodiscard]] constexpr bool early_work(int algo) {
  return algo == 2 || algo == 3 || algo == pool_pipe_algo;
}

/// `math` 2 of the pipelined form (algo 2: its ring of 4 steps of 32 slots): the batch norm's
/// scale folded into the filter, so that the normalization is one packed `fma` a channel pair
/// (`fma.rn.relu` with a ReLU) on the tensor cores' own A fragments. Each input channel c takes
/// α = max(|s|, |f| · 2⁻¹⁴) (s, f: its scale and shift), the filter's column c is multiplied by α,
/// and the input is normalized as x · (s / α) + f / α in T — s / α is ±1 wherever |f / s| ≤ 2¹⁴, and
/// neither factor leaves T's range — so act(x · s + f) = α · act(x · s / α + f / α) for the ReLU
/// and for none. (Numerics: the sum rounded once in T where the batch norm's kernel rounds
/// x · s + f computed in f32; the filter rounded again.) For a batch norm with a ReLU or no
/// activation whose channels fill the input's slots.
inline constexpr int folded_math = 2;
/// `math` 3 (algo 2): the folded form in blocks of at most 64 output slots — twice the blocks,
/// for maps whose 128-pixel blocks fill the GPU less than twice. Offered to measured tuning, not
/// claimed: on DenseNet-121's block 3 at batch 256 (392 blocks of 128 slots on an H200's 132
/// SMs) its 24 layers took 1,391 µs against 1,190 in math 2 (session 35).
inline constexpr int folded_narrow_math = 3;
[[nodiscard]] constexpr bool folds(int math) { return math == folded_math || math == folded_narrow_math; }
/// The forms and maths there are: math 0 in algos 0 to 4 and 6, math 1 in algos 2 to 4, math 2 in
/// algos 0 to 2 and 5, math 3 in algo 2.
[[nodiscard]] constexpr bool form_exists(int algo, int math) {
  return (algo <= wgmma_algo && (math == 0 || (algo >= 2 && math == 1) || (algo <= 2 && math == folded_math) ||
                                 (algo == 2 && math == folded_narrow_math))) ||
         (algo == pool_pipe_algo && math == folded_math) || (algo == pass_gemm_algo && math == 0);
}
[[nodiscard]] inline bool fold_fits(const OpDesc& op) {
  return op.norm != nullptr && (op.norm->act.kind == Act::relu || op.norm->act.kind == Act::none) &&
         op.norm->out_shape.c == op.conv.cp;
}

/// The folded form's factors for one op: the filter (kp rows of cp, f32) with each column c
/// multiplied by α_c, and each channel's (s / α, f / α). An error names the layer where a
/// multiplied weight would leave T's range (`max_value`).
struct Folded {
  std::vector<float> filter;
  std::vector<float> beta;   ///< s / α a channel
  std::vector<float> gamma;  ///< f / α a channel
};
[[nodiscard]] inline Folded fold_scale(const std::vector<float>& filter, int kp, int cp,
                                       const std::vector<float>& scale, const std::vector<float>& shift,
                                       float max_value, const std::string& label) {
  STRATA_CHECK(filter.size() >= static_cast<std::size_t>(kp) * cp && scale.size() >= static_cast<std::size_t>(cp) &&
                   shift.size() >= static_cast<std::size_t>(cp),
               "normed_conv: layer '" << label << "': the filter or the batch norm's scale and shift are short");
  Folded f;
  f.filter.assign(filter.begin(), filter.begin() + static_cast<std::ptrdiff_t>(kp) * cp);
  f.beta.assign(static_cast<std::size_t>(cp), 0.0f);
  f.gamma.assign(static_cast<std::size_t>(cp), 0.0f);
  for (int c = 0; c < cp; ++c) {
    const float sc = scale[static_cast<std::size_t>(c)];
    const float sh = shift[static_cast<std::size_t>(c)];
    STRATA_CHECK(std::isfinite(sc) && std::isfinite(sh),
                 "normed_conv: layer '" << label << "': the batch norm's scale or shift of channel " << c
                                        << " is not finite");
    const float alpha = std::max(std::fabs(sc), std::fabs(sh) * 0x1p-14f);
    if (alpha > 0.0f) {
      f.beta[static_cast<std::size_t>(c)] = sc / alpha;
      f.gamma[static_cast<std::size_t>(c)] = sh / alpha;
    }
    for (int n = 0; n < kp; ++n) {
      float& wv = f.filter[static_cast<std::size_t>(n) * cp + c];
      wv *= alpha;
      STRATA_CHECK(std::fabs(wv) <= max_value,
                   "normed_conv: layer '" << label << "': its filter times the batch norm's scale ("
                                          << alpha << " for channel " << c << ") leaves the storage type's range "
                                          "at output channel " << n << "; force another math form for this layer");
    }
  }
  return f;
}

/// A pipelined form's reduction step and ring depth (algos 2 and 3: `math` 0, 32 slots × 4
/// stages, 1: 64 slots × 3 stages; algo 4: 32 × 4).
struct Pipeline {
  int step = bk;  ///< input slots a reduction step
  int stages = 2;
};
[[nodiscard]] inline Pipeline pipeline(int algo, int math) {
  if (algo < 2) {
    return {};
  }
  if (algo == pool_pipe_algo) {
    return Pipeline{32, 3};
  }
  return math == 1 && algo != wgmma_algo ? Pipeline{64, 3} : Pipeline{32, 4};  // (math 2: 32 x 4)
}

/// The block shape for `op` in form `algo` (0: 128 pixels a block, 1: 64; pipelined, with the
/// ring `math` says: 2, 128 pixels; 3, 64; 4, 128 pixels, and up to 64 slots with math 1).
[[nodiscard]] inline Plan plan(const OpDesc& op, int algo, int math = 0) {
  Plan p;
  p.bm = algo == 1 || algo == 3 || algo == pool_pipe_algo ? 64 : 128;
  const int kp = op.conv.kp;
  p.bn = kp >= 128 ? 128 : (kp + 31) / 32 * 32;
  if ((algo == wgmma_algo && math == 1) || math == folded_narrow_math) {
    p.bn = std::min(p.bn, 64);
  }
  p.n_blocks = (kp + p.bn - 1) / p.bn;
  const Pipeline r = pipeline(algo, math);
  const std::int64_t slots = (op.conv.cp + r.step - 1) / r.step * r.step;  // the scale and shift, padded
  // (algo 4: the filter slice as wgmma's core matrices, its rows unpadded)
  // (algo 5: the window's four positions, a plane of input rows each)
  const std::int64_t stage = algo == wgmma_algo ? std::int64_t{p.bm} * (r.step + 8) + std::int64_t{p.bn} * r.step
                             : algo == pool_pipe_algo ? std::int64_t{4 * p.bm + p.bn} * (r.step + 8)
                                                      : std::int64_t{p.bm + p.bn} * (r.step + 8);
  p.shared = std::int64_t{r.stages} * stage * 2 + std::int64_t{2} * slots * 4;
  return p;
}

/// Whether the heuristic claims `op` at `batch` (in form 0): where 128-pixel blocks give two
/// blocks an SM of the H100/H200 (132 SMs) or more. Measured on an H200 (session 31,
/// DenseNet-121, heuristic plans against the same plans with the batch norm's pass and cuBLASLt
/// forced): at batch 256 the joined ops took 5.08 ms where the pass and cuBLASLt took 6.62
/// (forward 10.84 ms against 12.30); at batch 1, with 64-pixel blocks (1 to 49 of them), 0.90 ms
/// against 0.36 (forward 1.30 ms against 0.74) — a few blocks each running the whole reduction.
[[nodiscard]] inline bool claimed(const OpDesc& op, int batch) {
  const std::int64_t pixels = std::int64_t{batch} * op.conv.h * op.conv.w;
  return fits(op) && (pixels + 127) / 128 * plan(op, 0).n_blocks >= 264;
}

/// Whether the heuristic claims `op` at batch 1, where normed::claimed does not: a 2×2 average
/// pool taken first (pool_first_fits) as the pass + cuBLASLt (algo 6; the heuristic checks its
/// workspace), or without a pool a short reduction (at most 256 input slots: 8 k-steps of 32) in
/// the folded pipelined form of 64-slot blocks (algo 2, math 3). DenseNet-121 at batch 1 on an
/// H200 (session 42, measured tuning's picks against the heuristic's plan of the batch norm's
/// pass + cuBLASLt, µs): the three transitions 5.8 / 5.8 / 6.4 in algo 6 against 11.6 / 11.4 /
/// 11.5; block 1's six layers (3,136 pixels, 64–224 slots) 4.1–6.6 in algo 2 math 3 (algo 1 at
/// 128 slots) against 5.7–6.8; block 2's first two (784 pixels, 128 and 160 slots) 4.8 and 5.2
/// (algo 1, algo 2 math 3) against 5.7 and 5.8, its next two went to cuBLASLt and cuDNN (5.7, 5.8 against 5.7, 6.0).
/// Longer reductions at batch 1 went to splitk_conv's fuse 3, which SplitkConv claims first.
[[nodiscard]] inline bool claimed_single(const OpDesc& op) {
  return fits(op) && (pool_first_fits(op) || (!op.pool && fold_fits(op) && op.conv.cp <= 256));
}

/// Text the pipelined forms (algos 2, 3 and 4) share, in the order the kernel has it.
namespace pipe {
/// The block's place (nb, m0, n0), the rows of the GEMM, each channel pair's scales and shifts
/// staged (nf), and this thread's input vectors (src, aoff). Expects tid, NB, BM, BN, AV, BK,
/// PITCH, CIP, C and the kernel's parameters in scope.
[[nodiscard]] inline std::string sources(bool folded = false) {
  std::string head = R"src(  const long long nb = blockIdx.x % NB;
  const long long m0 = (blockIdx.x / NB) * BM;
  const long long n0 = nb * BN;
  // (with a pool in the epilogue: OHW · 4 = HW; taken first, a row a pooled pixel)
  const long long rows = static_cast<long long>(batch) * (PF != 0 ? OHW : HW);
)src";
  head += folded ? R"src(  // (folded: `scale` holds a channel pair's (s / a, s' / a') and (f / a, f' / a') in T, 8 bytes a pair)
  uint2* nh = reinterpret_cast<uint2*>(nf);
  for (int i = tid; i < CIP / 2; i += 256) {
    nh[i] = 2 * i < C ? reinterpret_cast<const uint2*>(scale)[i] : make_uint2(0u, 0u);
  }
)src"
                 : R"src(  for (int i = tid; i < CIP / 2; i += 256) {  // a channel pair's scales and shifts, 0 past C
    const int c = 2 * i;
    nf[i] = make_float4(c < C ? scale[c] : 0.0f, c + 1 < C ? scale[c + 1] : 0.0f,
                        c < C ? shift[c] : 0.0f, c + 1 < C ? shift[c + 1] : 0.0f);
  }
)src";
  return head + R"src(  // This thread's input vectors: row r, 8 slots from kc·8 of each step.
  const T* src[AV];
  int aoff[AV];
#pragma unroll
  for (int v = 0; v < AV; ++v) {
    const int id = tid + v * 256;
    const int r = id / (BK / 8);
    const int kc = id % (BK / 8);
    aoff[v] = r * PITCH + kc * 8;
    const long long m = m0 + r;
    src[v] = m >= rows ? nullptr
             : (PF != 0 ? x + normed_window<OHW, OW, W, XIMG, XPIX>(m) : x + normed_row<POOL, HW, W, OHW, OW, XIMG, XPIX>(m)) +
                   kc * 8;
  }
)src";
}
/// This thread's filter vectors — row n of the block's slots, 8 slots from kc · 8 of each step —
/// worked out once: their sources (bsrc, with bok and bkc for the range checks) and places in
/// shared memory (bdst: `dst`, an expression of n and kc). Expects tid, BV, BK, n0, KP, CI and w.
[[nodiscard]] inline std::string filter_vectors(const std::string& dst) {
  return R"src(  constexpr int BU = (BV + 255) / 256;  // filter vectors a thread a step (the last maybe partial)
  const T* bsrc[BU];
  unsigned bdst[BU];
  bool bok[BU];
  int bkc[BU];
#pragma unroll
  for (int u = 0; u < BU; ++u) {
    const int i = tid + u * 256;
    const int n = i / (BK / 8);
    const int kc = i % (BK / 8);
    bok[u] = i < BV && n0 + n < KP;
    bsrc[u] = bok[u] ? w + (n0 + n) * CI + kc * 8 : w;
    bdst[u] = )src" + dst + R"src(;
    bkc[u] = kc * 8;
  }
)src";
}
/// Step kt's filter vectors copied (cp.async) to bdst + `at` (filter rows past KP and slots past CI
/// as zeros).
[[nodiscard]] inline std::string filter_copies(const std::string& at) {
  return R"src(#pragma unroll
      for (int u = 0; u < BU; ++u) {
        if (BV % 256 == 0 || tid + u * 256 < BV) {
          const bool ok = bok[u] && (CI % BK == 0 || kt * static_cast<int>(BK) + bkc[u] < CI);
          cp_async16_at()src" + at + R"src( + bdst[u], ok ? bsrc[u] + kt * BK : w, ok);
        }
      }
)src";
}
/// The lambda load_stage(kt): step kt's input rows and filter slice copied into its stage (rows
/// past the batch, slots past CI and filter rows past KP as zeros), one cp.async group a call,
/// empty past the last step. `b_slot`: where the filter's vector (row n, 8 slots from kc · 8)
/// lies from the stage's filter part (an expression of n and kc). Each thread's vectors — their
/// sources and their places in a stage, as 32-bit shared addresses — are worked out once, so a
/// step's copy is a constant offset from them (expects ring, STAGE, aoff, src and the kernel's
/// parameters in scope; defines ring_s, the ring's shared address).
[[nodiscard]] inline std::string load_stage(const char* b_slot) {
  std::ostringstream o;
  o << R"src(  const unsigned ring_s = shared_address(ring);
  unsigned adst[AV];  // this thread's input vectors: bytes into a stage
  bool aok[AV];
  int akc[AV];
#pragma unroll
  for (int v = 0; v < AV; ++v) {
    adst[v] = static_cast<unsigned>(aoff[v]) * 2u;
    aok[v] = src[v] != nullptr;
    akc[v] = aoff[v] % PITCH;
  }
)src" << filter_vectors(std::string("static_cast<unsigned>(NPOS * BM * PITCH + ") + b_slot + ") * 2u")
    << R"src(  auto load_stage = [&](int kt, bool with_filter = true) {
    if (kt < KT) {
      const unsigned st = ring_s + static_cast<unsigned>((kt % STAGES) * STAGE) * 2u;
#pragma unroll
      for (int v = 0; v < AV; ++v) {
        const bool ok = aok[v] && (CI % BK == 0 || kt * static_cast<int>(BK) + akc[v] < CI);
#pragma unroll
        for (int q = 0; q < NPOS; ++q) {  // (plane q: window position q, row q / 2, column q % 2)
          cp_async16_at(st + adst[v] + static_cast<unsigned>(q * BM * PITCH) * 2u,
                        ok ? src[v] + ((q >> 1) * W + (q & 1)) * XPIX + kt * BK : x, ok);
        }
      }
      if (with_filter) {
      )src" << filter_copies("st") << R"src(      }
    }
    cp_async_commit();
  };
  // Step kt's filter slice alone (no commit): copied before a programmatic dependent launch's
  // wait, the filter being weights no kernel writes.
  auto load_filter = [&](int kt) {
    if (kt < KT) {
      const unsigned st = ring_s + static_cast<unsigned>((kt % STAGES) * STAGE) * 2u;
      )src" << filter_copies("st") << R"src(    }
  };
)src";
  return o.str();
}
/// The epilogue, through the end of the source: bias and the conv's activation; without a pool
/// the block's tile through shared memory (the ring) in 16-byte chunks, with one each value
/// rounded as stored and the window's four reduced by shuffles. Expects acc[MT][NT][4] with
/// warp (wm, wn)'s rows wm · WM + i · 16 + … and slots wn · WN + j · 8 + …
[[nodiscard]] inline const char* epilogue() {
  return R"src(  cp_async_wait<0>();  // (only empty groups remain)
  // Bias and the conv's activation. Without a pool the block's tile goes through shared memory
  // (the ring is free once every warp is past its last step) and out in 16-byte rows' chunks;
  // with one, as in the other forms: each value rounded as stored, the window's four (lanes 4
  // apart) reduced in the pool kernel's order by the lane of its first position.
  constexpr bool STAGED = POOL == 0 && KP % 8 == 0 && YPIX % 8 == 0 && YIMG % 8 == 0;
  constexpr int TP = BN + 8;  // the staged tile's pitch (elements)
  static_assert(!STAGED || BM * TP <= STAGES * STAGE, "the output tile fits the ring");
  if constexpr (STAGED) {
    __syncthreads();
  }
  T* tile = ring;
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = wm * WM + i * 16 + (lane >> 2) + 8 * h;
      const long long m = m0 + r;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int nl = wn * WN + j * 8 + 2 * (lane & 3);
        const int n = static_cast<int>(n0) + nl;
        const float2 bb = bias != nullptr && n < KP ? *reinterpret_cast<const float2*>(bias + n)
                                                    : float2{0.0f, 0.0f};
        float v0 = activate_as<A>(act, acc[i][j][2 * h] + bb.x);
        float v1 = activate_as<A>(act, acc[i][j][2 * h + 1] + bb.y);
        if constexpr (STAGED) {
          *reinterpret_cast<unsigned*>(tile + r * TP + nl) =
              pack2<T>(n < KREAL ? v0 : 0.0f, n + 1 < KREAL ? v1 : 0.0f);
        } else {
          normed_store<T, POOL, OHW, YIMG, YPIX, KREAL>(y, m, n, m < rows && n < KP, lane, v0, v1);
        }
      }
    }
  }
  if constexpr (STAGED) {
    __syncthreads();
    constexpr int CH = BN / 8;  // 16-byte chunks a row of the tile
    for (int i = tid; i < BM * CH; i += 256) {
      const int r = i / CH;
      const int ch = i % CH;
      const long long m = m0 + r;
      const long long n = n0 + ch * 8;
      if (m < rows && n < KP) {
        const long long img = m / OHW;
        const long long pix = m - img * OHW;
        *reinterpret_cast<uint4*>(y + img * YIMG + pix * YPIX + n) =
            *reinterpret_cast<const uint4*>(tile + r * TP + ch * 8);
      }
    }
  }
}
}  // namespace strata_rtc
)src";
}
}  // namespace pipe

/// The body of the warpgroup form (algo 4, sm_90a) after the op's constants, through the end
/// of the source: `nt` n-tiles of 8 slots a block (BN / 8). Two warpgroups of 64 rows each; the
/// ring of algo 2 (STAGES steps of BK slots by cp.async: the raw input rows padded to PITCH, then
/// the filter slice as wgmma's core matrices — no swizzle, K-major: 8 slots × 8 input slots, 128
/// contiguous bytes, a group of 8 slots' BK / 8 of them in k order, then the next group's), the
/// copy two steps ahead. A 16-slot step: each warp reads its 16 rows' A fragment with ldmatrix
/// and normalizes it (scale, shift, the activation, rounded to T, 0 past the channels — each
/// element once: one warp reads it), then one `wgmma.m64n(8·nt)k16` with A from those registers
/// (double-buffered: the next step's are loaded and normalized while this one's MMA runs) and the
/// filter by descriptor. The epilogue is algo 2's: bias, the conv's activation, through shared
/// memory in 16-byte chunks without a pool, the window's four reduced by shuffles with one.
inline void wgmma_body(std::ostringstream& o, int nt) {
  o << R"src(  constexpr int KT = static_cast<int>((CI + BK - 1) / BK);  // reduction steps
  constexpr int CIP = KT * static_cast<int>(BK);            // input slots, padded to steps
  constexpr int MT = 1;          // (the epilogue's: a warp's m-tiles)
  constexpr int WM = 16;         // rows a warp: warp w's from 16 · w (warpgroup w / 4's 64)
  constexpr int WN = 0;          // (every warp: all the block's slots)
  constexpr int NT = static_cast<int>(BN / 8);              // n-tiles: the wgmma's N / 8
  constexpr int KS = static_cast<int>(BK / 16);             // 16-slot steps a reduction step
  constexpr int AV = BM * (BK / 8) / 256;  // 16-byte input vectors a thread a step
  constexpr int BV = BN * (BK / 8);        // filter vectors a step
  constexpr int ABYTES = BM * PITCH * 2;   // a stage's input rows
  constexpr int STAGE = BM * PITCH + BN * BK;  // elements a stage: input rows, then the filter's core matrices
  constexpr int AHEAD = STAGES - 2;        // steps copied ahead (a stage is refilled two steps after it was read)
  static_assert(BM == 128 && AV >= 1 && BM * (BK / 8) % 256 == 0, "two warpgroups of 64 rows; whole input vectors a thread");
  static_assert(ABYTES % 128 == 0 && (STAGE * 2) % 128 == 0, "core matrices 128-byte aligned");
  // The filter's descriptor: core matrices 128 bytes apart in K, a group of 8 slots' BK / 8 apart in N.
  constexpr unsigned long long DESC_B = (static_cast<unsigned long long>(128 >> 4) << 16) |
                                        (static_cast<unsigned long long>((BK / 8 * 128) >> 4) << 32);
  extern __shared__ __align__(128) unsigned char smem[];
  T* ring = reinterpret_cast<T*>(smem);                           // [STAGES][STAGE]
  float4* nf = reinterpret_cast<float4*>(ring + STAGES * STAGE);  // [CIP / 2] (s, s', f, f')
  const unsigned ring_a = shared_address(ring);
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int wm = tid >> 5;
  const int wn = 0;
  const int wr = wm * WM;  // this warp's first row
)src" << pipe::sources()
    << "  // The filter slice as wgmma's core matrices (8 slots x 8 input slots, 128 bytes).\n"
    << pipe::load_stage("((n >> 3) * (BK / 8) + kc) * 64 + (n & 7) * 8") << generated::norm_pair_source()
    << R"src(  // 16-slot step q of the reduction (step q / KS, part q % KS): this warp's A fragment, normalized.
  auto load_a = [&](int q, unsigned (&af)[4]) {
    const int kt = q / KS;
    const int ks = q % KS;
    const T* a = ring + (kt % STAGES) * STAGE;
    ldmatrix_x4(af[0], af[1], af[2], af[3], a + (wr + (lane & 15)) * PITCH + ks * 16 + (lane >> 4) * 8);
    const int c = kt * static_cast<int>(BK) + ks * 16 + 2 * (lane & 3);  // channels c, c + 1, c + 8, c + 9
    const float4 lo = nf[c >> 1];
    const float4 hi = nf[(c >> 1) + 4];
    af[0] = norm2(af[0], lo.x, lo.y, lo.z, lo.w, c);
    af[1] = norm2(af[1], lo.x, lo.y, lo.z, lo.w, c);
    af[2] = norm2(af[2], hi.x, hi.y, hi.z, hi.w, c + 8);
    af[3] = norm2(af[3], hi.x, hi.y, hi.z, hi.w, c + 8);
  };
  float acc[MT][NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    acc[0][j][0] = acc[0][j][1] = acc[0][j][2] = acc[0][j][3] = 0.0f;
  }
#pragma unroll
  for (int s = 0; s < AHEAD; ++s) {
    load_stage(s);
  }
  static_assert(KS % 2 == 0, "a step's 16-slot parts alternate the A registers from a[0]");
  unsigned a[2][4];  // A fragments of 16-slot steps q (a[q & 1] = a[ks & 1]: KS even)
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<AHEAD - 1>();
    // The filter slice is read by the async proxy (wgmma).
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    // Step kt in for every thread; every MMA of step kt - 2 done (each thread waited for all but
    // its latest), so its stage may be refilled.
    __syncthreads();
    load_stage(kt + AHEAD);
    const unsigned long long bd =
        DESC_B | static_cast<unsigned long long>(((ring_a + (kt % STAGES) * (STAGE * 2) + ABYTES) & 0x3FFFF) >> 4);
    load_a(kt * KS, a[0]);  // (while the previous step's last MMA runs)
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      const int q = kt * KS + ks;
      const unsigned (&ar)[4] = a[ks & 1];
      const unsigned long long desc = bd + static_cast<unsigned long long>((ks * 256) >> 4);
      asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
      if constexpr (is_same<T, bf16>::value) {
        )src" << generated::wgmma_call(nt, "bf16.bf16", "acc[0]", "ar") << R"src(      } else {
        )src" << generated::wgmma_call(nt, "f16.f16", "acc[0]", "ar") << R"src(      }
      asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
      // This MMA left in flight, the one before it done: its A registers are free.
      asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
      if (ks + 1 < KS) {
        load_a(q + 1, a[(ks + 1) & 1]);
      }
    }
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(acc[0][j][i])::"memory");
  }
)src" << pipe::epilogue();
}

/// The kernel's source for `op` in form `algo` (and `math`, algo 2's ring; kernel
/// `strata_rtc::normed_conv<T>`); `pool_first`: the fused average pool taken on the input
/// (pool_first_fits; forms 0 and 1).
[[nodiscard]] inline std::string source(const OpDesc& op, int algo, int math = 0, bool pool_first = false) {
  STRATA_CHECK(algo >= 0 && algo <= pool_pipe_algo, "normed_conv: no form " << algo);
  STRATA_CHECK(form_exists(algo, math), "normed_conv: form " << algo << " has no math " << math);
  STRATA_CHECK(fits(op), "normed_conv: layer '" << op.label << "' is not a 1x1 conv with a folded batch norm it runs");
  STRATA_CHECK(!folds(math) || fold_fits(op),
               "normed_conv: layer '" << op.label << "': the folded form (math 2) takes a batch norm with a ReLU "
               "or no activation, over every slot of the conv's input");
  STRATA_CHECK(!pool_first || ((algo <= 1 || algo == pool_pipe_algo) && pool_first_fits(op)),
               "normed_conv: layer '" << op.label << "': the pool is taken first (on the input) in forms 0, 1 and 5, "
               "for a 2x2 average pool after a conv without an activation, not in form " << algo);
  STRATA_CHECK(algo != pool_pipe_algo || pool_first,
               "normed_conv: layer '" << op.label << "': form 5 takes the pool first (fuse 2)");
  const OpDesc& bn = *op.norm;
  const ConvGeom& g = op.conv;
  const Plan p = plan(op, algo, math);
  const Pipeline ring = pipeline(algo, math);
  const Source src = source_of(bn);
  // (the pool taken first: the epilogue stores the GEMM's rows, the pooled pixels, as they are)
  const int pool = !op.pool || pool_first ? 0 : op.pool->kind == OpKind::avg_pool ? 1 : 2;
  const Shape out = op.pool ? op.pool->out_shape : op.out_shape;  // the result's map
  const std::int64_t out_hw = std::int64_t{out.h} * out.w;
  const std::int64_t ypix = op.slice ? op.slice->strides.pixel : g.kp;
  const std::int64_t yimg = op.slice ? op.slice->strides.image : out_hw * g.kp;
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr long long " << name << " = " << v << ";\n";
  };
  const auto act = [&](const char* kind, const char* desc, const ActDesc& a) {
    generated::act_constants(o, kind, desc, a);
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "'" << (algo == 1 || algo == 3 || algo == pool_pipe_algo ? " (64-pixel blocks)" : "")
    << (algo == wgmma_algo ? " (wgmma)" : "")
    << (folds(math) ? " (the batch norm's scale folded into the filter)" : "")
    << (algo == wgmma_algo ? " (a ring of " + std::to_string(ring.stages) + " steps of " +
                                 std::to_string(ring.step) + " slots, " + std::to_string(ring.stages - 2) +
                                 " copied ahead)"
        : algo >= 2 ? " (pipelined: " + std::to_string(ring.stages) + " steps of " +
                          std::to_string(ring.step) + " slots in flight)"
                    : std::string())
    << (pool == 1 ? " (2x2 average pool)" : pool == 2 ? " (2x2 max pool)" : "")
    << (pool_first ? " (2x2 average pool, taken on the input)" : "") << ".\n"
    << R"src(// The input's element offset of GEMM row m: pixel m of the batch, or with a 2x2 pool (rows in
// windows of 4) position m % 4 of pooled pixel m / 4's window.
template <long long POOL, long long HW, long long W, long long OHW, long long OW, long long XIMG,
          long long XPIX>
__device__ __forceinline__ long long normed_row(long long m) {
  long long img, pix;
  if constexpr (POOL != 0) {
    const long long q = m >> 2;
    img = q / OHW;
    const long long pq = q - img * OHW;
    const long long py = pq / OW;
    const long long px = pq - py * OW;
    pix = (2 * py + ((m >> 1) & 1)) * W + 2 * px + (m & 1);
  } else {
    img = m / HW;
    pix = m - img * HW;
  }
  return img * XIMG + pix * XPIX;
}
// The input's element offset of the first position of pooled pixel q's 2x2 window.
template <long long OHW, long long OW, long long W, long long XIMG, long long XPIX>
__device__ __forceinline__ long long normed_window(long long q) {
  const long long img = q / OHW;
  const long long pq = q - img * OHW;
  const long long py = pq / OW;
  const long long px = pq - py * OW;
  return img * XIMG + (2 * py * W + 2 * px) * XPIX;
}
// (a + b + c + d) / 4 on channel pairs in T (the folded form's pool taken first): each quartered
// as it is added (fma by 0.25: the sum of four values up to 2^14 stays within f16's range; fma is
// the bf16x2 arithmetic sm_80 has).
template <class T>
__device__ __forceinline__ unsigned quarter_sum4(unsigned a, unsigned b, unsigned c, unsigned d) {
  unsigned s;
  if constexpr (is_same<T, bf16>::value) {
    asm("{ .reg .b32 q, z;\n mov.b32 q, 0x3E803E80;\n mov.b32 z, 0x80008000;\n fma.rn.bf16x2 %0, %1, q, z;\n"
        " fma.rn.bf16x2 %0, %2, q, %0;\n fma.rn.bf16x2 %0, %3, q, %0;\n fma.rn.bf16x2 %0, %4, q, %0; }"
        : "=r"(s) : "r"(a), "r"(b), "r"(c), "r"(d));
  } else {
    asm("{ .reg .b32 q, z;\n mov.b32 q, 0x34003400;\n mov.b32 z, 0x80008000;\n fma.rn.f16x2 %0, %1, q, z;\n"
        " fma.rn.f16x2 %0, %2, q, %0;\n fma.rn.f16x2 %0, %3, q, %0;\n fma.rn.f16x2 %0, %4, q, %0; }"
        : "=r"(s) : "r"(a), "r"(b), "r"(c), "r"(d));
  }
  return s;
}
// A 16-byte input vector (8 channels from an even one) in the folded form: each of its NP
// positions' channel pairs normalized (one packed fma, f[j]: pair j's (beta pair, gamma pair)), and
// with the pool taken first (NP = 4) the window's four averaged in T (quarter_sum4).
template <class T, Act NA, int NP>
__device__ __forceinline__ uint4 fold_vector(const uint4 (&raw)[NP], const uint2* f) {
  unsigned o[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint2 fj = f[j];
    unsigned t[NP];
#pragma unroll
    for (int p = 0; p < NP; ++p) {
      const unsigned u[4] = {raw[p].x, raw[p].y, raw[p].z, raw[p].w};
      t[p] = fold2<T, NA>(u[j], fj.x, fj.y);
    }
    if constexpr (NP == 1) {
      o[j] = t[0];
    } else {
      o[j] = quarter_sum4<T>(t[0], t[1], t[2], t[3]);
    }
  }
  return uint4{o[0], o[1], o[2], o[3]};
}
// Stores channel pair (v0, v1) of GEMM row m at slot n (the slots past KREAL as 0) where `writes`;
// with a 2x2 pool (POOL 1: average, 2: max; rows in windows of 4) each value is first rounded as
// the conv would store it, and the lane of a window's first position reduces the four (from the
// lanes 4, 8 and 12 on) in the pool kernel's order and stores the pooled pair.
template <class T, long long POOL, long long OHW, long long YIMG, long long YPIX, long long KREAL>
__device__ __forceinline__ void normed_store(T* __restrict__ y, long long m, int n, bool writes,
                                             int lane, float v0, float v1) {
  long long q = m;  // the result's pixel
  if constexpr (POOL != 0) {
    v0 = as_stored<T>(v0);
    v1 = as_stored<T>(v1);
    float w0[3], w1[3];
#pragma unroll
    for (int t = 0; t < 3; ++t) {
      w0[t] = __shfl_down_sync(0xffffffffu, v0, 4 * (t + 1));
      w1[t] = __shfl_down_sync(0xffffffffu, v1, 4 * (t + 1));
    }
    if constexpr (POOL == 1) {
      v0 = (((0.0f + v0) + w0[0]) + w0[1]) + w0[2];
      v1 = (((0.0f + v1) + w1[0]) + w1[1]) + w1[2];
      v0 = v0 / 4.0f;
      v1 = v1 / 4.0f;
    } else {
      v0 = fmaxf(fmaxf(fmaxf(v0, w0[0]), w0[1]), w0[2]);
      v1 = fmaxf(fmaxf(fmaxf(v1, w1[0]), w1[1]), w1[2]);
    }
    q = m >> 2;
    writes = writes && ((lane >> 2) & 3) == 0;
  }
  if (writes) {
    const long long img = q / OHW;
    const long long pix = q - img * OHW;
    *reinterpret_cast<unsigned*>(y + img * YIMG + pix * YPIX + n) =
        pack2<T>(n < KREAL ? v0 : 0.0f, n + 1 < KREAL ? v1 : 0.0f);
  }
}
)src"
    << "template <class T>\n__global__ void __launch_bounds__(" << threads << ", "
    << ((algo == 2 || algo == 3) && math == 1 ? 1 : 2) << ") normed_conv(\n"
    << "    const T* __restrict__ x, const float* __restrict__ scale,\n"
    << "    const float* __restrict__ shift, const T* __restrict__ w,\n"
    << "    const float* __restrict__ bias, T* __restrict__ y, int batch) {\n"
    << (early_work(algo) ? "  pdl_launch();  // (a programmatic dependent launch: its wait comes after the filter's first copies)\n"
                         : "  pdl_entry();  // (a programmatic dependent launch's wait; else nothing)\n");
  constant("HW", std::int64_t{g.h} * g.w);
  constant("W", g.w);
  constant("POOL", pool);   // 0: none; 1: 2x2 average; 2: 2x2 max (rows in windows of 4)
  constant("PF", pool_first ? 1 : 0);  // 1: the 2x2 average pool taken on the input (rows: pooled pixels)
  // input planes a ring stage: the window's four positions where the pipelined form (algo 5) takes the pool first
  constant("NPOS", algo == pool_pipe_algo ? 4 : 1);
  constant("FOLDED", folds(math) ? 1 : 0);  // the batch norm's scale folded into the filter
  constant("OHW", out_hw);  // the result's pixels an image (pooled, where there is a pool)
  constant("OW", out.w);
  constant("YPIX", ypix);   // the result: elements a pixel, an image (a concat's, for a slice)
  constant("YIMG", yimg);
  constant("XPIX", src.pixel);  // the batch norm's input: elements a pixel, an image
  constant("XIMG", src.image);
  constant("C", bn.out_shape.c);  // channels the batch norm normalizes; slots past them are 0
  constant("CI", g.cp);           // input slots (the reduction)
  constant("KP", g.kp);           // output slots (filter rows)
  constant("KREAL", g.k);         // output channels; the slots past them are written as 0
  constant("BM", p.bm);
  constant("BN", p.bn);
  constant("NB", p.n_blocks);
  constant("BK", ring.step);
  constant("PITCH", ring.step + 8);  // a staged row's elements (8 more: rows on other banks)
  if (algo >= 2) {
    constant("STAGES", ring.stages);
  }
  act("NA", "norm_act", bn.act);  // the batch norm's activation
  act("A", "act", op.act);        // the conv's
  if (algo == wgmma_algo) {
    wgmma_body(o, p.bn / 8);
    return o.str();
  }
  if (algo >= 2) {
    const bool pf = algo == pool_pipe_algo;  // (the pool taken first: each thread converts its own vectors)
    o << R"src(  // Pipelined (algo 2; 3 with 64-pixel blocks): a ring of STAGES reduction steps copied in by cp.async, the raw input
  // rows beside the filter slice; each warp normalizes the A fragments it reads (its lane's four
  // channels a 16-slot step: scale, shift, the activation, rounded to T, 0 past the channels),
  // so nothing waits on a register round trip between the loads and the tensor cores. Algo 5
  // (the pool taken first): the window's four positions a plane each, normalized and averaged
  // by the thread that copied them into the first plane before the step's barrier.
  constexpr int KT = static_cast<int>((CI + BK - 1) / BK);  // reduction steps
  constexpr int CIP = KT * static_cast<int>(BK);            // input slots, padded to steps
  constexpr int WM = BM / 4;     // rows a warp (4 warps down)
  constexpr int WN = BN / 2;     // slots a warp (2 warps across)
  constexpr int MT = WM / 16;    // its m-tiles
  constexpr int NT = WN / 8;     // its n-tiles (even: ldmatrix_x4 reads two)
  constexpr int AV = BM * (BK / 8) / 256;  // 16-byte input vectors a thread a step
  constexpr int BV = BN * (BK / 8);        // filter vectors a step
  // elements a stage: input rows (a plane of them each window position, the pool taken first), then filter rows
  constexpr int STAGE = (NPOS * BM + BN) * PITCH;
  static_assert(AV >= 1 && BM * (BK / 8) % 256 == 0, "whole input vectors a thread");
  static_assert(NT % 2 == 0 && MT >= 1, "warp tiles of whole m-tiles and n-tile pairs");
  extern __shared__ __align__(16) unsigned char smem[];
  T* ring = reinterpret_cast<T*>(smem);                           // [STAGES][STAGE]
  float4* nf = reinterpret_cast<float4*>(ring + STAGES * STAGE);  // [CIP / 2] (s, s', f, f')
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wm = warp >> 1;
  const int wn = warp & 1;
)src" << pipe::sources(folds(math)) << R"src(  // Step kt into its stage (rows past the batch and slots past CI as zeros); a group a call,
  // empty past the last step, so that waiting for STAGES - 2 pending groups means step kt is in.
)src" << pipe::load_stage("n * PITCH + kc * 8") << R"src()src" << generated::norm_pair_source() << R"src(  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
    }
  }
  // This lane's ldmatrix rows, bytes into a stage: A (row wm · WM + lane % 16, 8 slots from
  // (lane / 16) · 8) and B (the filter's row of slot wn · WN + lane % 8 + (lane / 16) · 8, 8 slots
  // from ((lane / 8) % 2) · 8).
  const unsigned a_lane = static_cast<unsigned>((wm * WM + (lane & 15)) * PITCH + (lane >> 4) * 8) * 2u;
  const unsigned b_lane = static_cast<unsigned>(NPOS * BM * PITCH + (wn * WN + (lane & 7) + ((lane >> 4) << 3)) * PITCH +
                                                ((lane >> 3) & 1) * 8) * 2u;
  // The filter's first STAGES - 1 steps (one group; the scales and shifts above are weights
  // too), then — once the kernel before this one has finished, under a programmatic dependent
  // launch — the input's, a group a step: waiting for STAGES - 2 pending groups before step kt
  // still means steps 0..kt are in.
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    load_filter(s);
  }
  cp_async_commit();
  pdl_wait();
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    load_stage(s, false);
  }
)src";
    if (pf) {  // (the conversion before each step's barrier reads the pairs other threads staged)
      o << "  __syncthreads();  // the scale and shift pairs in\n";
    }
    o << R"src(  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<STAGES - 2>();  // this thread's copies of step kt in
)src";
    if (pf) {
      o << R"src(    {  // Its vectors of step kt: the window's four positions normalized (one packed fma a channel
       // pair and position) and averaged in T as form 1 does it, into plane 0 where position 0 was.
      const unsigned sa = ring_s + static_cast<unsigned>((kt % STAGES) * STAGE) * 2u;
#pragma unroll
      for (int v = 0; v < AV; ++v) {
        const int k = kt * static_cast<int>(BK) + akc[v];
        uint4 q[4];
#pragma unroll
        for (int p = 0; p < 4; ++p) {
          q[p] = lds16_at(sa + adst[v] + static_cast<unsigned>(p * BM * PITCH) * 2u);
        }
        sts16_at(sa + adst[v], fold_vector<T, NA, 4>(q, nh + (k >> 1)));
      }
    }
)src";
    }
    o << R"src(    __syncthreads();  // step kt in for every thread; step kt - 1's stage free to refill
    load_stage(kt + STAGES - 1);
    const unsigned st = ring_s + static_cast<unsigned>((kt % STAGES) * STAGE) * 2u;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
)src";
    o << (pf ? ""
          : folds(math) ? R"src(      const int c = kt * BK + ks * 16 + 2 * (lane & 3);  // this lane's channels: c, c + 1, c + 8, c + 9
      const uint2 lo = nh[c >> 1];  // (folded: one packed fma a channel pair)
      const uint2 hi = nh[(c >> 1) + 4];
)src"
                      : R"src(      const int c = kt * BK + ks * 16 + 2 * (lane & 3);  // this lane's channels: c, c + 1, c + 8, c + 9
      const float4 lo = nf[c >> 1];
      const float4 hi = nf[(c >> 1) + 4];
)src")
      << R"src(      unsigned af[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        ldsm4_at(af[i][0], af[i][1], af[i][2], af[i][3], st + a_lane + (i * 16 * PITCH + ks * 16) * 2);
)src"
      << (pf ? "        // (normalized and pooled as staged)\n"
          : folds(math) ? R"src(        af[i][0] = fold2<T, NA>(af[i][0], lo.x, lo.y);
        af[i][1] = fold2<T, NA>(af[i][1], lo.x, lo.y);
        af[i][2] = fold2<T, NA>(af[i][2], hi.x, hi.y);
        af[i][3] = fold2<T, NA>(af[i][3], hi.x, hi.y);
)src"
                      : R"src(        af[i][0] = norm2(af[i][0], lo.x, lo.y, lo.z, lo.w, c);
        af[i][1] = norm2(af[i][1], lo.x, lo.y, lo.z, lo.w, c);
        af[i][2] = norm2(af[i][2], hi.x, hi.y, hi.z, hi.w, c + 8);
        af[i][3] = norm2(af[i][3], hi.x, hi.y, hi.z, hi.w, c + 8);
)src")
      << R"src(      }
#pragma unroll
      for (int j = 0; j < NT; j += 2) {
        unsigned b0, b1, b2, b3;
        ldsm4_at(b0, b1, b2, b3, st + b_lane + (j * 8 * PITCH + ks * 16) * 2);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          mma_16816<T>(acc[i][j], af[i][0], af[i][1], af[i][2], af[i][3], b0, b1);
          mma_16816<T>(acc[i][j + 1], af[i][0], af[i][1], af[i][2], af[i][3], b2, b3);
        }
      }
    }
  }
)src" << pipe::epilogue();
    return o.str();
  }
  o << R"src(  constexpr int KT = static_cast<int>((CI + BK - 1) / BK);  // reduction steps
  constexpr int CIP = KT * static_cast<int>(BK);            // input slots, padded to steps
  constexpr int WM = BM / 2;     // rows a warp (2 warps down)
  constexpr int WN = BN / 4;     // slots a warp (4 warps across)
  constexpr int MT = WM / 16;    // its m-tiles
  constexpr int NT = WN / 8;     // its n-tiles
  constexpr int AV = BM * (BK / 8) / 256;  // 16-byte input vectors a thread a step
  constexpr int BV = BN * (BK / 8);        // filter vectors a step
  static_assert(AV >= 1 && BM * (BK / 8) % 256 == 0, "whole input vectors a thread");
  extern __shared__ __align__(16) unsigned char smem[];
  T* as = reinterpret_cast<T*>(smem);          // [2][BM][PITCH] normalized input
  T* bs = as + 2 * BM * PITCH;                 // [2][BN][PITCH] filter slice
  float* ss = reinterpret_cast<float*>(bs + 2 * BN * PITCH);  // [CIP] scale, then [CIP] shift
  float* sh = ss + CIP;
  const unsigned as_s = shared_address(as);  // (32-bit shared addresses of both buffers)
  const unsigned bs_s = shared_address(bs);
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wm = warp >> 2;
  const int wn = warp & 3;
  const long long nb = blockIdx.x % NB;
  const long long m0 = (blockIdx.x / NB) * BM;
  const long long n0 = nb * BN;
  // (with a pool in the epilogue: OHW · 4 = HW; taken first, a row a pooled pixel)
  const long long rows = static_cast<long long>(batch) * (PF != 0 ? OHW : HW);
  constexpr bool FOLD = FOLDED != 0;  // (math 2: `scale` holds the channel pairs' (s / a, f / a) in T)
  uint2* nh = reinterpret_cast<uint2*>(ss);
  if constexpr (FOLD) {
    for (int i = tid; i < CIP / 2; i += 256) {
      nh[i] = 2 * i < C ? reinterpret_cast<const uint2*>(scale)[i] : make_uint2(0u, 0u);
    }
  } else {
    for (int i = tid; i < CIP; i += 256) {
      ss[i] = i < C ? scale[i] : 0.0f;
      sh[i] = i < C ? shift[i] : 0.0f;
    }
  }
  // This thread's input vectors: row r, 8 slots from kc·8 of each step.
  const T* src[AV];
  int arow[AV];
  int akc[AV];
#pragma unroll
  for (int v = 0; v < AV; ++v) {
    const int id = tid + v * 256;
    arow[v] = id / (BK / 8);
    akc[v] = id % (BK / 8);
    const long long m = m0 + arow[v];
    src[v] = m >= rows ? nullptr
             : PF != 0 ? x + normed_window<OHW, OW, W, XIMG, XPIX>(m)
                       : x + normed_row<POOL, HW, W, OHW, OW, XIMG, XPIX>(m);
  }
  // The input vectors (with the pool taken first, the window's four positions').
  constexpr int NP = PF != 0 ? 4 : 1;
  uint4 raw[AV][NP];
  auto load_a = [&](int kt) {
#pragma unroll
    for (int v = 0; v < AV; ++v) {
      const int k = kt * BK + akc[v] * 8;
#pragma unroll
      for (int p = 0; p < NP; ++p) {
        const long long at = (p >> 1) * W * XPIX + (p & 1) * XPIX + k;
        raw[v][p] = src[v] != nullptr && k < CI ? *reinterpret_cast<const uint4*>(src[v] + at)
                                                : uint4{0u, 0u, 0u, 0u};
      }
    }
  };
  // The batch norm as its kernel computes it (x · scale, + shift, the activation, 0 past the
  // channels), rounded to T, into buffer `buf`; with the pool taken first, the window's four
  // so rounded, averaged in the pool kernel's order and rounded again.
  auto store_a = [&](int kt, int buf) {
#pragma unroll
    for (int v = 0; v < AV; ++v) {
      const int k = kt * BK + akc[v] * 8;
      unsigned o[4];
      if constexpr (FOLD) {  // one packed fma a channel pair and position, the window's four summed in T
        const uint4 fv = fold_vector<T, NA, NP>(raw[v], nh + (k >> 1));
        o[0] = fv.x;
        o[1] = fv.y;
        o[2] = fv.z;
        o[3] = fv.w;
      } else {
      const float4 sa = *reinterpret_cast<const float4*>(ss + k);
      const float4 sb = *reinterpret_cast<const float4*>(ss + k + 4);
      const float4 fa = *reinterpret_cast<const float4*>(sh + k);
      const float4 fb = *reinterpret_cast<const float4*>(sh + k + 4);
      const float sc[8] = {sa.x, sa.y, sa.z, sa.w, sb.x, sb.y, sb.z, sb.w};
      const float sf[8] = {fa.x, fa.y, fa.z, fa.w, fb.x, fb.y, fb.z, fb.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = k + 2 * j;
        float s0 = 0.0f;
        float s1 = 0.0f;
#pragma unroll
        for (int p = 0; p < NP; ++p) {
          const unsigned u[4] = {raw[v][p].x, raw[v][p].y, raw[v][p].z, raw[v][p].w};
          const T* h = reinterpret_cast<const T*>(&u[j]);
          float t0 = load(h);
          float t1 = load(h + 1);
          t0 *= sc[2 * j];
          t1 *= sc[2 * j + 1];
          t0 += sf[2 * j];
          t1 += sf[2 * j + 1];
          t0 = activate(norm_act, t0);
          t1 = activate(norm_act, t1);
          if constexpr (NP == 1) {
            s0 = t0;
            s1 = t1;
          } else {
            s0 += as_stored<T>(t0);
            s1 += as_stored<T>(t1);
          }
        }
        if constexpr (NP != 1) {
          s0 = s0 / 4.0f;
          s1 = s1 / 4.0f;
        }
        o[j] = pack2<T>(c < C ? s0 : 0.0f, c + 1 < C ? s1 : 0.0f);
      }
      }
      const bool live = src[v] != nullptr;  // rows past the batch: zeros (never stored)
      sts16_at(as_s + 2u * static_cast<unsigned>((buf * BM + arow[v]) * PITCH + akc[v] * 8),
               live ? uint4{o[0], o[1], o[2], o[3]} : uint4{0u, 0u, 0u, 0u});
    }
  };
  // (the filter's vectors: their places in buffer 0)
)src" << pipe::filter_vectors("bs_s + 2u * static_cast<unsigned>(n * PITCH + kc * 8)") << R"src(  auto load_b = [&](int kt, int buf) {
    )src" << pipe::filter_copies("static_cast<unsigned>(buf * BN * PITCH) * 2u") << R"src(  };
  // This lane's ldmatrix rows in buffer 0: A (row wm · WM + lane % 16, 8 slots from (lane / 16)
  // · 8), B (the filter's row of slot wn · WN + lane % 8, 8 slots from ((lane / 8) % 2) · 8).
  const unsigned a_lane = as_s + 2u * static_cast<unsigned>((wm * WM + (lane & 15)) * PITCH + (lane >> 4) * 8);
  const unsigned b_lane = bs_s + 2u * static_cast<unsigned>((wn * WN + (lane & 7)) * PITCH + ((lane >> 3) & 1) * 8);
  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
    }
  }
  load_a(0);
  load_b(0, 0);
  cp_async_commit();
  __syncthreads();  // the scale and shift in
  store_a(0, 0);
  cp_async_wait<0>();
  __syncthreads();
  for (int kt = 0; kt < KT; ++kt) {
    const int cur = kt & 1;
    if (kt + 1 < KT) {  // the next step's input into registers, its filter slice copied in
      load_a(kt + 1);
      load_b(kt + 1, cur ^ 1);
      cp_async_commit();
    }
    const unsigned a = a_lane + static_cast<unsigned>(cur * BM * PITCH) * 2u;
    const unsigned b = b_lane + static_cast<unsigned>(cur * BN * PITCH) * 2u;
#pragma unroll
    for (int ks = 0; ks < BK / 16; ++ks) {
      unsigned af[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        ldsm4_at(af[i][0], af[i][1], af[i][2], af[i][3], a + (i * 16 * PITCH + ks * 16) * 2);
      }
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        unsigned b0, b1;
        ldsm2_at(b0, b1, b + (j * 8 * PITCH + ks * 16) * 2);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          mma_16816<T>(acc[i][j], af[i][0], af[i][1], af[i][2], af[i][3], b0, b1);
        }
      }
    }
    if (kt + 1 < KT) {
      store_a(kt + 1, cur ^ 1);
      cp_async_wait<0>();
    }
    __syncthreads();
  }
  // Bias, the conv's activation, channel pairs stored (the slots past the real channels as 0);
  // with a pool, each value rounded as stored, then the window's four (lanes 4 apart) reduced in
  // the pool kernel's order by the lane of its first position, which stores the pair.
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const long long m = m0 + wm * WM + i * 16 + (lane >> 2) + 8 * h;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int n = static_cast<int>(n0) + wn * WN + j * 8 + 2 * (lane & 3);
        const float2 bb = bias != nullptr && n < KP ? *reinterpret_cast<const float2*>(bias + n)
                                                    : float2{0.0f, 0.0f};
        float v0 = activate_as<A>(act, acc[i][j][2 * h] + bb.x);
        float v1 = activate_as<A>(act, acc[i][j][2 * h + 1] + bb.y);
        normed_store<T, POOL, OHW, YIMG, YPIX, KREAL>(y, m, n, m < rows && n < KP, lane, v0, v1);
      }
    }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

/// Device functions the pass kernels share (algo 6's pool pass, normed_head's): a 16-byte vector's
/// scales and shifts, and one value normalized as the batch norm's kernel stores it.
inline constexpr const char* pass_helpers = R"src(// A 16-byte vector's 8 scales and shifts from slot k (0 past the C channels): four 16-byte loads
// where every slot is a channel (`scale` and `shift` hold C floats, 16-byte aligned), else one a channel.
template <long long C, long long CI>
__device__ __forceinline__ void vector_factors(const float* __restrict__ scale, const float* __restrict__ shift,
                                               int k, float (&sc)[8], float (&sf)[8]) {
  if constexpr (C == CI) {
    const float4 a = *reinterpret_cast<const float4*>(scale + k);
    const float4 b = *reinterpret_cast<const float4*>(scale + k + 4);
    const float4 e = *reinterpret_cast<const float4*>(shift + k);
    const float4 f = *reinterpret_cast<const float4*>(shift + k + 4);
    sc[0] = a.x; sc[1] = a.y; sc[2] = a.z; sc[3] = a.w; sc[4] = b.x; sc[5] = b.y; sc[6] = b.z; sc[7] = b.w;
    sf[0] = e.x; sf[1] = e.y; sf[2] = e.z; sf[3] = e.w; sf[4] = f.x; sf[5] = f.y; sf[6] = f.z; sf[7] = f.w;
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      sc[j] = k + j < C ? scale[k + j] : 0.0f;
      sf[j] = k + j < C ? shift[k + j] : 0.0f;
    }
  }
}
// x · s + f and the batch norm's activation NA (activate's own SiLU, as the batch norm's kernel
// computes it; any other kind fixed at compile time), rounded to T as that kernel stores it.
template <class T, Act NA>
__device__ __forceinline__ float normed_stored(ActDesc a, float x, float s, float f) {
  float t = x * s;
  t += f;
  if constexpr (NA == Act::silu) {
    t = activate(a, t);
  } else {
    t = activate_as<NA>(a, t);
  }
  return as_stored<T>(t);
}
)src";

/// Whether algo 6 runs `op`: a 1×1 conv with a folded batch norm it runs (fits) whose 2×2 average
/// pool may be taken first (pool_first_fits), its result one matrix of evenly spaced pixels (its
/// own tensor, or a concat's slice: an image's pixels follow on from the last image's) 16-byte
/// aligned, as cuBLASLt writes it.
[[nodiscard]] inline bool pass_gemm_fits(const OpDesc& op) {
  if (!fits(op) || !pool_first_fits(op)) {
    return false;
  }
  const std::int64_t ohw = std::int64_t{op.pool->out_shape.h} * op.pool->out_shape.w;
  const std::int64_t ypix = op.slice ? op.slice->strides.pixel : op.conv.kp;
  const std::int64_t yimg = op.slice ? op.slice->strides.image : ohw * op.conv.kp;
  return yimg == ohw * ypix && ypix % 8 == 0 && op.conv.cp % 8 == 0;
}

/// Bytes of algo 6's pooled map at `batch` (the pass's output, the GEMM's input), in the step's
/// scratch past cuBLASLt's workspace.
[[nodiscard]] inline std::size_t pass_gemm_scratch(const OpDesc& op, int batch, std::size_t element_bytes) {
  return static_cast<std::size_t>(batch) * op.pool->out_shape.h * op.pool->out_shape.w * op.conv.cp * element_bytes;
}

/// Whether algo 6 runs `op` at `batch` within a workspace of `ws_limit` bytes (cuBLASLt's and the
/// pooled map).
[[nodiscard]] inline bool pass_gemm_runs(const OpDesc& op, int batch, std::size_t ws_limit, std::size_t element_bytes) {
  return pass_gemm_fits(op) && lt_workspace + pass_gemm_scratch(op, batch, element_bytes) <= ws_limit;
}

/// Algo 6's pass for `op` (pass_gemm_fits): the kernel `strata_rtc::normed_conv<T>`(x, scale,
/// shift, y, batch), a thread a 16-byte vector (8 slots) of a pooled pixel — the window's four
/// positions read where the batch norm's input lies (a concat's slice in place), each normalized
/// as the batch norm's kernel computes it (x · scale, + shift, the activation; 0 past the
/// channels) and rounded to T, the four summed in f32 in the pool kernel's order, quartered and
/// rounded — written densely (CI slots a pooled pixel) for the GEMM that follows.
[[nodiscard]] inline std::string pool_pass_source(const OpDesc& op) {
  STRATA_CHECK(fits(op), "normed_conv: layer '" << op.label << "' is not a 1x1 conv with a folded batch norm it runs");
  STRATA_CHECK(pass_gemm_fits(op), "normed_conv: layer '" << op.label << "': algo 6 takes a 2x2 average pool first, "
               "after a conv without an activation, and writes evenly spaced pixels; this op's are not");
  const OpDesc& bn = *op.norm;
  const ConvGeom& g = op.conv;
  const Source src = source_of(bn);
  const Shape out = op.pool->out_shape;
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr long long " << name << " = " << v << ";\n";
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n" << pass_helpers
    << "// Generated for '" << op.label << "': its batch norm and 2x2 average pool, taken first, into a dense map "
       "of the pooled pixels for the GEMM.\n"
    << "template <class T>\n__global__ void __launch_bounds__(256) normed_conv(\n"
    << "    const T* __restrict__ x, const float* __restrict__ scale, const float* __restrict__ shift,\n"
    << "    T* __restrict__ y, int batch) {\n"
    << "  pdl_entry();\n";
  constant("W", g.w);
  constant("OHW", std::int64_t{out.h} * out.w);  // pooled pixels an image
  constant("OW", out.w);
  constant("XPIX", src.pixel);  // the batch norm's input: elements a pixel, an image
  constant("XIMG", src.image);
  constant("C", bn.out_shape.c);  // channels the batch norm normalizes; slots past them are 0
  constant("CI", g.cp);           // slots a pixel (the GEMM's reduction)
  generated::act_constants(o, "NA", "norm_act", bn.act);
  o << R"src(  constexpr long long VECS = CI / 8;  // 16-byte vectors a pooled pixel
  const long long i = static_cast<long long>(blockIdx.x) * 256 + threadIdx.x;
  if (i >= static_cast<long long>(batch) * OHW * VECS) {
    return;
  }
  const long long q = i / VECS;  // the pooled pixel
  const int k = static_cast<int>(i - q * VECS) * 8;
  const long long img = q / OHW;
  const long long pq = q - img * OHW;
  const long long py = pq / OW;
  const long long px = pq - py * OW;
  const T* s = x + img * XIMG + (2 * py * W + 2 * px) * XPIX + k;
  uint4 raw[4];
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    raw[p] = *reinterpret_cast<const uint4*>(s + (p >> 1) * W * XPIX + (p & 1) * XPIX);
  }
  float sc[8], sf[8];
  vector_factors<C, CI>(scale, shift, k, sc, sf);
  unsigned o[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int c = k + 2 * j;
    const float sc0 = sc[2 * j];
    const float sc1 = sc[2 * j + 1];
    const float sf0 = sf[2 * j];
    const float sf1 = sf[2 * j + 1];
    float s0 = 0.0f;
    float s1 = 0.0f;
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      const unsigned u[4] = {raw[p].x, raw[p].y, raw[p].z, raw[p].w};
      const T* h = reinterpret_cast<const T*>(&u[j]);
      s0 += normed_stored<T, NA>(norm_act, load(h), sc0, sf0);
      s1 += normed_stored<T, NA>(norm_act, load(h + 1), sc1, sf1);
    }
    s0 = s0 / 4.0f;
    s1 = s1 / 4.0f;
    o[j] = pack2<T>(c < C ? s0 : 0.0f, c + 1 < C ? s1 : 0.0f);
  }
  *reinterpret_cast<uint4*>(y + q * CI + k) = uint4{o[0], o[1], o[2], o[3]};
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace normed

/// The folded form's weights for `op` on the device (math 2; fold_scale): the filter with each
/// input channel's column times α, and each channel pair's (s / α, s' / α', f / α, f' / α') in T,
/// made from the uploaded filter and the batch norm's f32 scale and shift.
namespace normed {
struct FoldedBuffers {
  std::shared_ptr<DeviceBuffer> filter;
  std::shared_ptr<DeviceBuffer> pairs;
};
template <DType P>
[[nodiscard]] FoldedBuffers upload_folded(const OpDesc& op, const DeviceBuffer& weight, const float* scale,
                                             const float* shift) {
  const int kp = op.conv.kp;
  const int cp = op.conv.cp;
  std::vector<std::uint16_t> bits(static_cast<std::size_t>(kp) * cp);
  std::vector<float> sc(static_cast<std::size_t>(cp)), sh(static_cast<std::size_t>(cp));
  STRATA_CHECK(weight.bytes() >= bits.size() * 2, "cuda::Engine: layer '" << op.label << "': normed_conv "
               "math 2: the filter holds " << weight.bytes() << " bytes, not " << kp << " rows of " << cp);
  STRATA_CUDA_CHECK(cudaMemcpy(bits.data(), weight.get(), bits.size() * 2, cudaMemcpyDeviceToHost));
  STRATA_CUDA_CHECK(cudaMemcpy(sc.data(), scale, sc.size() * 4, cudaMemcpyDeviceToHost));
  STRATA_CUDA_CHECK(cudaMemcpy(sh.data(), shift, sh.size() * 4, cudaMemcpyDeviceToHost));
  std::vector<float> f32(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i) {
    f32[i] = P == DType::f16 ? half_to_float(bits[i]) : bf16_to_float(bits[i]);
  }
  const Folded fold = fold_scale(f32, kp, cp, sc, sh, P == DType::f16 ? 65504.0f : 3.0e38f, op.label);
  const std::vector<std::uint8_t> wb = detail::to_device_bits<P>(fold.filter);
  std::vector<float> pairs(static_cast<std::size_t>(cp) * 2);  // (β, β', γ, γ') a channel pair
  for (int c = 0; c + 1 < cp; c += 2) {
    const std::size_t at = static_cast<std::size_t>(c) * 2;
    pairs[at] = fold.beta[static_cast<std::size_t>(c)];
    pairs[at + 1] = fold.beta[static_cast<std::size_t>(c) + 1];
    pairs[at + 2] = fold.gamma[static_cast<std::size_t>(c)];
    pairs[at + 3] = fold.gamma[static_cast<std::size_t>(c) + 1];
  }
  const std::vector<std::uint8_t> fb = detail::to_device_bits<P>(pairs);
  FoldedBuffers out;
  out.filter = std::make_shared<DeviceBuffer>(detail::upload(wb.data(), wb.size()));
  out.pairs = std::make_shared<DeviceBuffer>(detail::upload(fb.data(), fb.size()));
  return out;
}

/// The batch norm's scale and shift (f32, on the device) of `op`'s folded batch norm (OpDesc::norm)
/// for a tactic that applies it (normed_head, gap_dense fuse 1): from `io`, or an error naming the
/// layer and what is missing.
struct NormFactors {
  const float* scale = nullptr;
  const float* shift = nullptr;
};
[[nodiscard]] inline NormFactors norm_factors(const OpDesc& op, const OpIo& io) {
  STRATA_CHECK(op.norm && io.norm_x != nullptr && io.norm_weights != nullptr,
               "cuda::Engine: layer '" << op.label << "' without its batch norm's buffers (its input, scale and shift)");
  const NormFactors f{io.norm_weights->scale_f32.template as<const float>(),
                      io.norm_weights->shift_f32.template as<const float>()};
  STRATA_CHECK(f.scale != nullptr && f.shift != nullptr,
               "cuda::Engine: layer '" << op.label << "': the batch norm '" << op.norm->label
                                       << "' has no scale and shift on the device");
  return f;
}

/// Whether gap_source's kernel runs `op`: a dense layer with a folded global average pool and
/// batch norm (fold_normed_pooled_dense) over the same map, read in 16-byte vectors, its input one
/// vector of at least the map's slots an image, no deferred activation nor input slice.
[[nodiscard]] inline bool head_fits(const OpDesc& op) {
  if (op.kind != OpKind::dense || !op.norm || !op.gap || op.in_act.kind != Act::none || op.in_slice) {
    return false;
  }
  const OpDesc& bn = *op.norm;
  const Source src = source_of(bn);
  return op.gap->in_cp == bn.in_cp && op.gap->in_shape.h == bn.in_shape.h && op.gap->in_shape.w == bn.in_shape.w &&
         bn.in_cp % 8 == 0 && op.in_cp % 8 == 0 && op.in_cp >= bn.in_cp && op.dense_kin == op.in_cp &&
         src.pixel % 8 == 0 && src.image % 8 == 0 && (!bn.in_slice || bn.in_slice->c0 % 8 == 0);
}

/// The kernel `strata_rtc::normed_head<T>`(x, scale, shift, y, batch) of a dense op with a folded
/// global average pool and batch norm (fold_normed_pooled_dense: DenseNet's norm5 and ReLU before
/// its head): a thread a 16-byte vector (8 slots) of an image's pooled vector, summing the map's
/// pixels where the batch norm's input lies (a concat in place), each normalized as the batch
/// norm's kernel computes it (x · scale, + shift, the activation) and rounded to T, in f32, times
/// 1 / (H·W), rounded; 0 past the channels — the dense layer's input as the pool kernel writes it.
[[nodiscard]] inline std::string gap_source(const OpDesc& op) {
  STRATA_CHECK(head_fits(op), "normed gap: layer '" << op.label << "' is not a dense layer with a folded global "
                                                      "average pool and batch norm over 16-byte vectors");
  const OpDesc& bn = *op.norm;
  const Source src = source_of(bn);
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr long long " << name << " = " << v << ";\n";
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n" << pass_helpers
    << "// Generated for a network's head: its batch norm and global average pool, into the dense layer's input\n"
    << "// (no label here: the op is prepared with and without a folded softmax, the same kernel).\n"
    << "template <class T>\n__global__ void __launch_bounds__(64) normed_head(\n"
    << "    const T* __restrict__ x, const float* __restrict__ scale, const float* __restrict__ shift,\n"
    << "    T* __restrict__ y, int batch) {\n"
    << "  pdl_entry();\n";
  constant("HW", std::int64_t{bn.in_shape.h} * bn.in_shape.w);
  constant("XPIX", src.pixel);  // the batch norm's input: elements a pixel, an image
  constant("XIMG", src.image);
  constant("C", bn.out_shape.c);  // channels; slots past them are 0
  constant("CI", bn.in_cp);       // the map's slots
  constant("YIMG", op.in_cp);     // the dense layer's input slots an image
  generated::act_constants(o, "NA", "norm_act", bn.act);
  o << R"src(  constexpr long long VECS = YIMG / 8;  // 16-byte vectors of an image's result
  const long long i = static_cast<long long>(blockIdx.x) * 64 + threadIdx.x;
  if (i >= static_cast<long long>(batch) * VECS) {
    return;
  }
  const long long img = i / VECS;
  const int k = static_cast<int>(i - img * VECS) * 8;
  T* out = y + img * YIMG + k;
  if (k >= CI) {
    *reinterpret_cast<uint4*>(out) = uint4{0u, 0u, 0u, 0u};
    return;
  }
  float sc[8], sf[8];
  vector_factors<C, CI>(scale, shift, k, sc, sf);
  float s[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const T* p = x + img * XIMG + k;
#pragma unroll 7
  for (long long q = 0; q < HW; ++q) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p + q * XPIX);
    const unsigned u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const T* h = reinterpret_cast<const T*>(&u[j / 2]) + (j & 1);
      s[j] += normed_stored<T, NA>(norm_act, load(h), sc[j], sf[j]);
    }
  }
  constexpr float inv = 1.0f / static_cast<float>(HW);
  unsigned o[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int c = k + 2 * j;
    o[j] = pack2<T>(c < C ? s[2 * j] * inv : 0.0f, c + 1 < C ? s[2 * j + 1] * inv : 0.0f);
  }
  *reinterpret_cast<uint4*>(out) = uint4{o[0], o[1], o[2], o[3]};
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace normed

template <DType P>
class NormedConv final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "normed_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && normed::fits(op);
  }
  [[nodiscard]] bool fuses_norm(const Variant&) const override { return true; }
  /// A fused 2×2 pool is taken in the epilogue (fuse 1) or, an average pool after a conv
  /// without an activation, on the input (fuse 2: the GEMM over the pooled pixels); the unpooled
  /// map is never stored.
  [[nodiscard]] bool fuses_pool(const Variant& v) const override { return v.fuse == 1 || v.fuse == 2; }
  [[nodiscard]] bool writes_slice(const OpDesc& op) const override {
    return op.slice.has_value() && normed::fits(op);
  }
  /// The ops normed::claimed names (large batches), ahead of the libraries with the batch norm as
  /// a pass of its own: in the pipelined form (algo 2, 4 steps of 32 slots) without a pool, in
  /// form 0 with one. On an H200 (session 32, DenseNet-121 at batch 256, forced plans in one
  /// call): the layers' joined ops of blocks 1, 2 and 3 took 1,418, 1,365 and 1,402 µs in algo 2
  /// against 1,657, 1,463 and 1,482 in algo 0; the two pooled transitions 744 against 727; algo
  /// 2's 3-step ring of 64 slots (math 1) and the 64-pixel blocks (algo 3) lost to both.
  /// Algos 0, 1 and 2 are offered to measured tuning everywhere it runs, the warpgroup form (algo
  /// 4) on a GPU of compute capability 9.0 (algo 3 and math 1 are forceable only).
  /// The pool taken first where the joined form would normalize and average each input element
  /// for two or more blocks of output slots (more than 128 of them) runs as the pass and cuBLASLt
  /// (algo 6): on an H200 (session 39, DenseNet-121 at batch 256) transitions 2 and 3 took 134
  /// and 76 µs so against 142 and 121 in form 1 math 2, transition 1 (128 slots) 261 against 186;
  /// with the pass's 16-byte loads (session 40) 94 and 56, transition 1 183.5 against 187.0 but
  /// the forward 7 µs slower, so form 1 keeps it.
  ///
  /// At batch 1 on a GPU of compute capability 9.0 on (normed::claimed_single; measured on an
  /// H200 only): the transitions' pass + cuBLASLt (algo 6, the pool taken first), the other joined
  /// ops the folded pipelined form in 64-slot blocks (algo 2, math 3) — where splitk_conv's fuse
  /// 3, claimed first at the same rank, does not take them.
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t ws_limit,
                                               const Libraries&) const override {
    Claim c;
    c.variant.tactic = std::string(name());
    c.rank = rank::joins;
    if (batch == 1 && !normed::claimed(op, batch)) {
      if (device_arch() < 90 || !normed::claimed_single(op)) {  // (measured on an H200 only)
        return std::nullopt;
      }
      if (op.pool) {
        if (!normed::pass_gemm_runs(op, batch, ws_limit, sizeof(T))) {
          return std::nullopt;
        }
        c.variant.algo = normed::pass_gemm_algo;
        c.variant.fuse = 2;
        return c;
      }
      c.variant.algo = 2;
      c.variant.math = op.conv.kp > 64 ? normed::folded_narrow_math : normed::folded_math;
      return c;
    }
    if (!normed::claimed(op, batch)) {
      return std::nullopt;
    }
    c.variant.fuse = !op.pool ? 0 : normed::pool_first_fits(op) ? 2 : 1;
    if (c.variant.fuse == 2 && normed::plan(op, 1).n_blocks >= 2 && normed::pass_gemm_runs(op, batch, ws_limit, sizeof(T))) {
      c.variant.algo = normed::pass_gemm_algo;
      return c;
    }
    // (the pool taken first: 64-pixel blocks, twice the blocks over a quarter of the rows)
    c.variant.algo = !op.pool ? 2 : c.variant.fuse == 2 ? 1 : 0;
    if ((!op.pool || c.variant.fuse == 2) && normed::fold_fits(op)) {  // the scale folded into the filter
      c.variant.math = normed::folded_math;
    }
    return c;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t ws_limit,
                                                const Libraries&) const override {
    if (!normed::fits(op)) {
      return {};
    }
    Variant a{std::string(name())};
    a.fuse = op.pool ? 1 : 0;
    Variant b = a;
    b.algo = 1;
    Variant c = a;
    c.algo = 2;
    std::vector<Variant> v{a, b, c};
    if (normed::fold_fits(op)) {  // algo 2 with the scale folded into the filter (and 64-slot blocks)
      Variant f = c;
      f.math = normed::folded_math;
      v.push_back(f);
      if (op.conv.kp > 64) {
        f.math = normed::folded_narrow_math;
        v.push_back(f);
      }
    }
    if (normed::pool_first_fits(op)) {  // the pool taken first: forms 0 and 1
      Variant f = a;
      f.fuse = 2;
      v.push_back(f);
      f.algo = 1;
      v.push_back(f);
      if (normed::fold_fits(op)) {  // (and with the scale folded)
        f.math = normed::folded_math;
        v.push_back(f);
      }
      if (normed::pass_gemm_runs(op, batch, ws_limit, sizeof(T))) {  // the pass, then cuBLASLt
        Variant g = a;
        g.algo = normed::pass_gemm_algo;
        g.fuse = 2;
        v.push_back(g);
      }
    }
    if (device_arch() == 90) {  // the warpgroup form (sm_90a), both block widths: offered, not yet claimed
      Variant d = a;
      d.algo = normed::wgmma_algo;
      v.push_back(d);
      if (op.conv.kp > 64) {  // (up to 64 slots, math 1 is math 0)
        d.math = 1;
        v.push_back(d);
      }
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    STRATA_CHECK(io.norm_x != nullptr && io.norm_weights != nullptr,
                 "cuda::Engine: layer '" << op.label << "': normed_conv without its batch norm's buffers");
    if (v.algo == normed::pass_gemm_algo) {  // the pass, then cuBLASLt's GEMM
      const float* sc = io.norm_weights->scale_f32.template as<const float>();
      const float* sf = io.norm_weights->shift_f32.template as<const float>();
      STRATA_CHECK(sc != nullptr && sf != nullptr && io.pooled != nullptr,
                   "cuda::Engine: layer '" << op.label << "': the batch norm '" << op.norm->label
                                           << "' has no scale and shift on the device, or the op no pooled output");
      const ConvGeom& g = op.conv;  // (kernel_of's pool_pass_source checked pass_gemm_fits)
      const std::int64_t cols = std::int64_t{batch} * op.pool->out_shape.h * op.pool->out_shape.w;
      const long long blocks = (cols * (g.cp / 8) + 255) / 256;  // (a thread a 16-byte vector)
      STRATA_CHECK(blocks < (1LL << 31), "cuda::Engine: layer '" << op.label << "': normed_conv algo 6's pass "
                                                                 "would launch " << blocks << " blocks");
      const auto grid = static_cast<unsigned>(blocks);
      const T* x = static_cast<const T*>(io.norm_x);
      LtPrologue pass{[=](cudaStream_t s, void* pooled) {
                        rtc::launch(k, grid, 256u, s, x, sc, sf, static_cast<T*>(pooled), batch);
                      },
                      "strata batch norm + 2x2 average pool pass (the pool taken first, into a map of the "
                      "pooled pixels)"};
      OpIo gio = io;  // (the GEMM's output: the pooled result, a concat's slice in place)
      gio.x = nullptr;
      gio.y = io.pooled;
      gio.z = nullptr;
      return std::make_unique<LtMatmulStep<P>>(
          op, w, gio, lib, batch, g.cp, g.kp, cols, 0, 1, normed::pass_gemm_scratch(op, batch, sizeof(T)),
          StridedColumns{}, Gather::subsample, 0, std::move(pass), op.slice ? op.slice->strides.pixel : g.kp);
    }
    const normed::Plan p = normed::plan(op, v.algo, v.math);
    const normed::Pipeline ring = normed::pipeline(v.algo, v.math);
    // (the pool taken first: a row a pooled pixel)
    const long long rows = static_cast<long long>(batch) * op.conv.h * op.conv.w / (v.fuse == 2 ? 4 : 1);
    const long long blocks = (rows + p.bm - 1) / p.bm * p.n_blocks;
    STRATA_CHECK(blocks < (1LL << 31), "cuda::Engine: layer '" << op.label << "': normed_conv would launch "
                                                               << blocks << " blocks at batch " << batch);
    const std::size_t shared = static_cast<std::size_t>(p.shared);
    generated::allow_shared(k, generated::device_sms().device, shared, op.label, "normed_conv");
    const T* x = static_cast<const T*>(io.norm_x);
    const float* scale = io.norm_weights->scale_f32.template as<const float>();  // (math 2: replaced below)
    const float* shift = io.norm_weights->shift_f32.template as<const float>();
    STRATA_CHECK(scale != nullptr && shift != nullptr,
                 "cuda::Engine: layer '" << op.label << "': the batch norm '" << op.norm->label
                                         << "' has no scale and shift on the device");
    const T* wt = w.weight.template as<const T>();
    const float* bias = w.bias_f32.template as<const float>();
    T* y = static_cast<T*>(op.pool ? io.pooled : io.y);
    // The folded form (math 2): the filter times each channel's α and the (s / α, f / α) pairs
    // in T, made here from the uploaded weights, owned by the step.
    std::shared_ptr<DeviceBuffer> folded_w, folded_f;
    if (normed::folds(v.math)) {
      normed::FoldedBuffers fb = normed::upload_folded<P>(op, w.weight, scale, shift);
      folded_w = std::move(fb.filter);
      folded_f = std::move(fb.pairs);
      wt = folded_w->template as<const T>();
      scale = folded_f->template as<const float>();  // (the kernel reads it as T pairs)
    }
    std::ostringstream what;
    what << "strata batch norm + 1x1 conv (the norm and its activation applied as the input is "
            "loaded, "
         << (v.algo == normed::wgmma_algo ? "wgmma" : "mma.sync")
         << (normed::folds(v.math) ? ", the norm's scale folded into the filter: one fma a channel pair" : "")
         << "; blocks of "
         << p.bm << " pixels x " << p.bn << " channels"
         << (v.algo == normed::wgmma_algo
                 ? ", a ring of " + std::to_string(ring.stages) + " steps of " + std::to_string(ring.step) +
                       " input channels, " + std::to_string(ring.stages - 2) + " copied ahead"
             : v.algo >= 2 ? ", pipelined: " + std::to_string(ring.stages) + " steps of " +
                                 std::to_string(ring.step) + " input channels in flight"
                           : std::string())
         << (op.pool ? std::string(", its 2x2 ") +
                           (op.pool->kind == OpKind::avg_pool ? "average" : "max") + " pool" +
                           (v.fuse == 2 ? " taken first, on the input (the conv over the pooled pixels)" : "")
                     : std::string())
         << (op.slice ? ", writing channels " + std::to_string(op.slice->c0) + ".." +
                            std::to_string(op.slice->c0 + op.conv.k - 1) + " of a concat"
                      : std::string())
         << (op.norm->in_slice ? ", reading channels 0.." + std::to_string(op.norm->in_shape.c - 1) +
                                     " of the concat in place"
                               : std::string())
         << ", shapes compiled in)";
    const unsigned grid = static_cast<unsigned>(blocks);
    return kernel_step(what.str(), [=](cudaStream_t s) {
      (void)folded_w;  // (owned by the step)
      (void)folded_f;
      rtc::launch_shared(k, grid, static_cast<unsigned>(normed::threads), shared, s, x, scale,
                         shift, wt, bias, y, batch);
    });
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo&) const override {
    STRATA_CHECK(v.algo >= 0 && v.algo <= normed::pass_gemm_algo,
                 "'" << op.label << "': normed_conv has no algo " << v.algo);
    STRATA_CHECK(normed::form_exists(v.algo, v.math),
                 "'" << op.label << "': normed_conv has math 0 in algos 0 to 4 and 6, math 1 in algos 2 to 4, math 2 "
                        "in algos 0 to 2 and 5 and math 3 in algo 2 only, not math " << v.math << " in algo " << v.algo);
    if (v.algo == normed::pass_gemm_algo) {
      STRATA_CHECK(v.fuse == 2 && v.math == 0,
                   "'" << op.label << "': normed_conv algo 6 takes a 2x2 average pool first (fuse 2), in math 0");
      return this->named(normed::pool_pass_source(op));  // (which says why where it cannot run the op)
    }
    STRATA_CHECK(!normed::folds(v.math) || normed::fold_fits(op),
                 "'" << op.label << "': normed_conv math 2 folds the scale of a batch norm with a ReLU or no "
                        "activation over every input slot into the filter, and this op's is not one");
    STRATA_CHECK(op.pool ? v.fuse == 1 || v.fuse == 2 : v.fuse == 0,
                 "'" << op.label << "': normed_conv runs "
                     << (op.pool ? "a conv with its fused pool as fuse 1 (in the epilogue) or 2 (on the input)"
                                 : "a conv without a pool as fuse 0"));
    STRATA_CHECK(v.fuse != 2 || ((v.algo <= 1 || v.algo == normed::pool_pipe_algo) && normed::pool_first_fits(op)),
                 "'" << op.label << "': normed_conv takes the pool first (fuse 2) in algos 0, 1 and 5, for a 2x2 "
                        "average pool after a conv without an activation");
    STRATA_CHECK(v.algo != normed::pool_pipe_algo || v.fuse == 2,
                 "'" << op.label << "': normed_conv algo 5 takes the pool first (fuse 2)");
    STRATA_CHECK(normed::fits(op), "'" << op.label
                                       << "': normed_conv runs a 1x1 conv (stride 1, one group, "
                                          "no residual or pool) with a folded batch norm");
    if (v.algo != normed::wgmma_algo) {
      return this->named(normed::source(op, v.algo, v.math, v.fuse == 2));
    }
    STRATA_CHECK(device_arch() == 90,
                 "'" << op.label << "': normed_conv algo 4 (wgmma) needs a GPU of compute capability "
                                    "9.0 (sm_90a), and this device is not one");
    KernelSource ks = this->named(normed::source(op, v.algo, v.math));
    ks.arch_specific = true;
    return ks;
  }
};


/// `normed_head`: a network's head with its batch norm folded in (fold_normed_pooled_dense:
/// DenseNet's norm5 and ReLU, the global average pool and the classifier, 16-bit NHWC) as two
/// steps: the batch norm and the pool in one kernel generated for the op (normed::gap_source: the
/// normalized map, as large as the batch norm's input, never written) into the dense layer's
/// input slot, then lt_dense's cuBLASLt GEMM. gap_dense fuse 1 applies the batch norm in its one
/// kernel too; every other tactic runs it first, into the pool's map. GPU test: "a batch norm
/// before the head's global average pool: …".
template <DType P>
class NormedHead final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "normed_head"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override { return is_16bit(P) && normed::head_fits(op); }
  [[nodiscard]] bool fuses_norm(const Variant&) const override { return true; }
  [[nodiscard]] bool fuses_gap(const Variant&) const override { return true; }
  /// Claimed above batch 1, ahead of lt_dense's two steps after the batch norm's pass: on an H200
  /// (session 40, DenseNet-121 f16 at batch 256) the head took 11.3 µs so against 35.6 (the pass,
  /// the pool kernel and cuBLASLt), the forward 6,800 against 6,819. At batch 1 gap_dense claims
  /// the head (fuse 1: the batch norm, the pool and the classifier in one kernel).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t, const Libraries&) const override {
    if (batch == 1 || !applicable(op)) {
      return std::nullopt;
    }
    Claim c;
    c.rank = rank::tailored;
    c.variant.tactic = std::string(name());
    return c;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc&, int, std::size_t, const Libraries&) const override {
    return {};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch, const OpWeights& w,
                                              const OpIo& io, const Libraries& lib) const override {
    STRATA_CHECK(v.algo == 0 && v.math == 0 && v.fuse == 0,
                 "cuda::Engine: layer '" << op.label << "': normed_head has one form (algo 0)");
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const normed::NormFactors nf = normed::norm_factors(op, io);
    const float* scale = nf.scale;
    const float* shift = nf.shift;
    OpDesc dense = norm_main(op);  // (the dense layer alone, under its own label)
    dense.gap.reset();
    dense.label = dense.label.substr(op.gap->label.size() + 1);
    OpIo dio = io;
    dio.gap_in = nullptr;
    dio.norm_x = nullptr;
    dio.norm_weights = nullptr;
    auto gemm = std::make_unique<LtMatmulStep<P>>(dense, w, dio, lib, batch, dense.dense_kin, dense.out_cp, batch,
                                                  static_cast<std::int64_t>(batch) * dense.out_cp, 1, 0);
    const long long threads = static_cast<long long>(batch) * (op.in_cp / 8);
    const auto grid = static_cast<unsigned>((threads + 63) / 64);
    const T* x = static_cast<const T*>(io.norm_x);
    T* y = static_cast<T*>(const_cast<void*>(io.x));
    std::vector<std::unique_ptr<Step>> parts;
    parts.push_back(kernel_step(
        "strata batch norm + global_avg_pool (the map normalized as it is averaged, shapes compiled in)",
        [=](cudaStream_t s) { rtc::launch(k, grid, 64u, s, x, scale, shift, y, batch); }));
    parts.push_back(std::move(gemm));
    return std::make_unique<StepSequence>(std::move(parts));
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant&, const OpIo&) const override {
    STRATA_CHECK(applicable(op), "'" << op.label << "': normed_head runs a 16-bit dense layer with a folded global "
                                        "average pool and batch norm (fold_normed_pooled_dense)");
    return this->named(normed::gap_source(op));
  }
};

}  // namespace strata::cuda::tactics
