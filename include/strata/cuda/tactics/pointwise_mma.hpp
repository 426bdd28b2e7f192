#pragma once
/// Tactic `mma_conv1x1`: a 16-bit NHWC 1×1 convolution of stride 1 (one group, no residual, no
/// pool) as a GEMM over the batch's pixels in a kernel generated for the op — every size a literal
/// — on tensor cores (mma.sync m16n8k16, f32 accumulation; the last 8 of a reduction 8 past a
/// multiple of 16 on m16n8k8). A block of 8 warps takes 128 pixels and a chunk of the output
/// channels (all of them up to 160, else the largest multiple of 8 up to 128 that divides the
/// slots): it copies the pixels' input rows and the chunk's filter rows into shared memory with
/// cp.async (rows past the batch's pixels zero), each warp computes 16 pixels × the chunk with
/// ldmatrix fragments, adds the bias, applies the activation, rounds to the storage type (0 in
/// the slots past the real channels) into a shared output tile, and the block stores the tile
/// in 16-byte words. The blocks of one pixel tile are adjacent in the grid, so the chunks after
/// the first read the tile from L2.
///
/// Why: an inverted-residual block's expansion (EfficientNet-B0's 24→144 at 56×56, 40→240 at
/// 28×28, ...) is a GEMM with a short reduction over a long pixel dimension — memory-bound. On
/// an H100 at batch 256 (session 65, ncu, each kernel alone) cuBLASLt's kernels for EfficientNet-B0's
/// fourteen expansions took about 893 µs, 24→144 at 56×56 204-210 µs each at 1.2 TB/s and 8.6% of
/// the SMs' throughput: about 2.6× their bytes at 3 TB/s.
///
/// Offered to measured tuning for the ops it fits at batches of 32 and more; the heuristic claims
/// it for inverted-residual expansions (pointwise::claimed) since its GPU test passed
/// (pointwise::gpu_tested, session 65) — which is how an expansion joined to the depthwise conv
/// after it (OpDesc::expand, run by depthwise_band after the heuristic's variant of the
/// expansion) gets it.
///
/// Algo 1 (session 66; pointwise::staged_source): any input slots — the reduction staged in
/// k-steps of 32 through a 4-stage cp.async ring —, a folded channel gate (OpDesc::gate: applied
/// to the A fragments, the product rounded as the channel-gate kernel stores it) and a residual;
/// claimed for EfficientNet-B0's gated projections on the 28×28 and 14×14 maps
/// (pointwise::staged_claimed), where it took 5.1's from 90 to 61 µs at batch 256 on an H100.
#include <cuda_runtime.h>

#include <cstdint>
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
#include "strata/cuda/tactics/kernel_ops.hpp"

namespace strata::cuda::tactics {

namespace pointwise {

/// Threads a block (8 warps) and pixels a block (16 a warp).
inline constexpr int threads = 256;
inline constexpr int rows = 128;
/// The largest input slots (the reduction) the kernel takes, and its shared memory at most.
inline constexpr int most_slots = 256;
inline constexpr std::int64_t max_shared = 100 << 10;
/// The least batch at which it is offered (and claimed): the GEMM's pixels are the batch's.
inline constexpr int min_batch = 32;

/// Whether the GPU test of the kernel has passed with every fix in: the heuristic claims it
/// only then. (Session 65, H100: "mma_conv1x1: 1x1 convs as GEMMs over the batch's pixels on
/// tensor cores, forced" passed, 11 assertions, bf16 within 3.4e-3 of the CPU.)
inline constexpr bool gpu_tested = true;

/// Output channels a block for `kp` output slots: all of them up to 160, else the largest
/// multiple of 8 up to 128 dividing them.
[[nodiscard]] inline int chunk(int kp) {
  if (kp <= 160) {
    return kp;
  }
  for (int n = 128; n >= 8; n -= 8) {
    if (kp % n == 0) {
      return n;
    }
  }
  return 8;
}

/// Bytes of shared memory: the pixels' input rows, the chunk's filter rows, the output tile (rows
/// padded to an odd number of 16-byte words: ldmatrix's 8 rows in distinct bank groups).
[[nodiscard]] inline std::int64_t shared_bytes(const OpDesc& op) {
  const int k = generated::odd_chunks(op.conv.cp);
  const int nb = chunk(op.conv.kp);
  return std::int64_t{2} * rows * k + std::int64_t{2} * nb * k + std::int64_t{2} * rows * generated::odd_chunks(nb);
}

/// Whether the kernel runs `op`: a 16-bit NHWC 1×1 conv of stride 1, no padding, one group,
/// packed slots (input ≤ most_slots), nothing joined to it, no residual, pool, concat slice or
/// deferred activation on its input.
[[nodiscard]] inline bool fits(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return op.kind == OpKind::conv && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 &&
         g.pw == 0 && g.dh == 1 && g.dw == 1 && g.groups == 1 && g.packed && !g.s2d && g.cp % 8 == 0 &&
         g.kp % 8 == 0 && g.fcg == g.cp && g.kd == g.kp && g.cp <= most_slots && op.in_cp == g.cp &&
         op.out_cp == g.kp && g.oh == g.h && g.ow == g.w && !op.has_residual && !op.pool && !op.slice &&
         !op.in_slice && op.in_act.kind == Act::none && !op.gap && !op.gate && !op.softmax && !op.side &&
         !op.expand && !op.squeeze && !op.norm && !op.bottleneck && !op.excite && !op.tail && !op.project &&
         shared_bytes(op) <= max_shared;
}

/// Whether the heuristic claims `op` at `batch` (once gpu_tested): an inverted-residual block's
/// expansion — output channels at least six times the input's, input slots at most 192 — over at
/// least 32 K pixels. Measured on an H100 at batch 256 (session 65, heuristic plans, the claim
/// against cuBLASLt): EfficientNet-B0 4,983 / 5,033 → **4,764 / 4,747 µs**; its ten claimed
/// expansions per op (profile of the joined op) 2.1 513.7 → 420.4, 3.0 485.6 → 383.1, 3.1
/// 315.0 → 283.9, 4.0 148.3 → 125.8, 6.0 153.2 → 139.1, the 14×14 ones of 80 and 112 channels
/// within ±2.5; MobileNetV2 (its 14×14 expansions, 64→384 and 96→576) 2,621.8 → 2,647.2 — a
/// loss of 1% at 50 K pixels, where the 56×56 and 28×28 maps (200 K pixels and more) gain 15-21%.
/// (ResNet-50's layer1.0.downsample, 64→256 at 56×56, is a fourfold 1×1: not claimed, not timed.)
[[nodiscard]] inline bool claimed(const OpDesc& op, int batch) {
  return gpu_tested && fits(op) && batch >= min_batch && op.conv.k >= 6 * op.conv.c && op.conv.cp <= 192 &&
         chunk(op.conv.kp) >= 64 &&  // (not where the chunks would restage the pixels' rows many times)
         static_cast<std::int64_t>(batch) * op.conv.h * op.conv.w >= (std::int64_t{32} << 10);
}

/// The end of both forms' kernels: the output tile (os: ROWS rows of OP elements, NB of them the
/// chunk's outputs) stored in 16-byte words, rows past the batch's pixels left out.
inline constexpr const char* stored_tile = R"src(  __syncthreads();
  constexpr int OV = NB / 8;
  for (int i = threadIdx.x; i < ROWS * OV; i += NTHREADS) {
    const int r = i / OV;
    const int v = i % OV;
    if (p0 + r < pixels) {
      *reinterpret_cast<uint4*>(y + (p0 + r) * N + n0 + v * 8) = *reinterpret_cast<const uint4*>(os + r * OP + v * 8);
    }
  }
}
}  // namespace strata_rtc
)src";

/// The kernel's source for `op` (kernel `strata_rtc::mma_conv1x1<T>`).
[[nodiscard]] inline std::string source(const OpDesc& op) {
  STRATA_CHECK(fits(op), "mma_conv1x1: not a plain 16-bit 1x1 conv it runs: '" << op.label << "'");
  const ConvGeom& g = op.conv;
  const int nb = chunk(g.kp);
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "': 1x1 conv " << g.c << "->" << g.k << " over " << g.h << "x" << g.w
    << " pixels an image.\n"
    << "template <class T>\n__global__ void __launch_bounds__(" << threads << ") mma_conv1x1(\n"
    << "    const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,\n"
    << "    T* __restrict__ y, long long pixels) {\n"
    << "  pdl_entry();  // (a programmatic dependent launch's wait; else nothing)\n";
  constant("K", g.cp);          // input slots: the reduction
  constant("XP", generated::odd_chunks(g.cp));
  constant("N", g.kp);          // output slots
  constant("KREAL", g.k);
  constant("NB", nb);           // output channels a block
  constant("NT", nb / 8);       // n-tiles a warp
  constant("OP", generated::odd_chunks(nb));
  constant("CHUNKS", g.kp / nb);
  constant("ROWS", rows);
  constant("NTHREADS", threads);
  generated::act_constant(o, op.act);
  o << R"src(  extern __shared__ __align__(16) unsigned char sm[];
  T* xs = reinterpret_cast<T*>(sm);       // [ROWS][XP]
  T* ws = xs + ROWS * XP;                 // [NB][XP]
  T* os = ws + NB * XP;                   // [ROWS][OP]
  const int chunk = static_cast<int>(blockIdx.x % CHUNKS);
  const long long p0 = static_cast<long long>(blockIdx.x / CHUNKS) * ROWS;
  const int n0 = chunk * NB;
  // The tile's input rows and the chunk's filter rows, 16 bytes a copy (rows past the pixels 0).
  constexpr int KV = K / 8;
  for (int i = threadIdx.x; i < ROWS * KV; i += NTHREADS) {
    const int r = i / KV;
    const int v = i % KV;
    const bool ok = p0 + r < pixels;
    cp_async16(xs + r * XP + v * 8, ok ? x + (p0 + r) * K + v * 8 : x, ok);
  }
  for (int i = threadIdx.x; i < NB * KV; i += NTHREADS) {
    const int r = i / KV;
    const int v = i % KV;
    cp_async16(ws + r * XP + v * 8, w + static_cast<long long>(n0 + r) * K + v * 8, true);
  }
  cp_async_commit();
  cp_async_wait<0>();
  __syncthreads();
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  float acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  }
  // A: rows 16 warp + lane % 16, columns k0 + 8 (lane / 16); B (x2: n-tile j's rows j·8 +
  // lane % 8, columns k0 + 8 ((lane / 8) % 2)).
  const unsigned xa = shared_address(xs + (16 * warp + lane % 16) * XP + 8 * (lane / 16));
  const unsigned wa = shared_address(ws + (lane % 8) * XP + 8 * ((lane / 8) % 2));
#pragma unroll
  for (int k0 = 0; k0 + 16 <= K; k0 += 16) {
    unsigned a0, a1, a2, a3;
    ldsm4_at(a0, a1, a2, a3, xa + 2 * k0);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      unsigned b0, b1;
      ldsm2_at(b0, b1, wa + 2 * (j * 8 * XP + k0));
      mma_16816<T>(acc[j], a0, a1, a2, a3, b0, b1);
    }
  }
  if constexpr (K % 16 == 8) {  // the last 8 of the reduction (m16n8k8)
    constexpr int k0 = K - 8;
    unsigned a0, a1;
    ldsm2_at(a0, a1, shared_address(xs + (16 * warp + lane % 16) * XP + k0));
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      unsigned b0;
      ldsm1_at(b0, shared_address(ws + (j * 8 + lane % 8) * XP + k0));
      mma_1688<T>(acc[j], a0, a1, b0);
    }
  }
  // Bias, activation, rounded to T, 0 past the real channels: the output tile in shared memory.
  const int g = lane / 4;
  const int t = lane % 4;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int c = n0 + 8 * j + 2 * t;
    const float b0 = bias != nullptr ? bias[c] : 0.0f;
    const float b1 = bias != nullptr ? bias[c + 1] : 0.0f;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float v0 = c < KREAL ? activate(act, acc[j][2 * h] + b0) : 0.0f;
      const float v1 = c + 1 < KREAL ? activate(act, acc[j][2 * h + 1] + b1) : 0.0f;
      *reinterpret_cast<unsigned*>(os + (16 * warp + g + 8 * h) * OP + 8 * j + 2 * t) = pack2<T>(v0, v1);
    }
  }
)src" << stored_tile;
  return o.str();
}


// ---- Algo 1: the reduction staged in k-steps (a projection's long one), a folded gate, a residual ----

/// Channels a k-step and stages of the ring (algo 1).
inline constexpr int step_k = 32;
inline constexpr int stages = 4;
/// Shared memory at most for algo 1: two blocks an SM on compute capability 9.0.
inline constexpr std::int64_t staged_max_shared = 113 << 10;

/// Whether the GPU test of algo 1 ("mma_conv1x1 algo 1: ...", tests/gpu/test_deploy_layers.cpp)
/// has passed: until then it is neither claimed nor offered to measured tuning, only forced.
/// (Session 66, H100: passed, 116 assertions, bf16 within 5.8e-3 of the CPU.)
inline constexpr bool staged_gpu_tested = true;

/// Output channels a block for `kp` output slots (algo 1): all of them up to 128, else the largest
/// multiple of 16 up to 128 dividing them (two warps share a pixel row's channels), else of 8.
[[nodiscard]] inline int staged_chunk(int kp) {
  if (kp <= 128) {
    return kp;
  }
  for (int n = 128; n >= 16; n -= 16) {
    if (kp % n == 0) {
      return n;
    }
  }
  for (int n = 120; n > 8; n -= 16) {  // (the odd multiples of 8: kp is not a multiple of 16)
    if (kp % n == 0) {
      return n;
    }
  }
  return 8;
}

/// Pixel rows a block for variant math `m` of algo 1: 128 (math 0) or 64 (math 1).
[[nodiscard]] inline int staged_rows(int m) { return m == 1 ? 64 : 128; }

/// Warps across a block's output channels (algo 1): two where the chunk is a multiple of 16 (a
/// warp then takes rows/4 pixels x half the chunk), else one (rows/8 pixels x the chunk).
[[nodiscard]] inline int staged_warps_n(int nb) { return nb % 16 == 0 ? 2 : 1; }

/// Whether algo 1 has a form with `tile_rows` pixel rows for `kp` output slots: each warp at least 16
/// rows.
[[nodiscard]] inline bool staged_rows_fit(int kp, int tile_rows) {
  return tile_rows / (8 / staged_warps_n(staged_chunk(kp))) >= 16;
}

/// The most images `tile_rows` consecutive pixels span, `hw` pixels an image.
[[nodiscard]] inline int images_spanned(int tile_rows, std::int64_t hw) {
  return static_cast<int>(1 + (tile_rows - 1 + hw - 1) / hw);
}

/// The reduction's slots rounded up to whole k-steps (algo 1: the gate's rows in shared memory).
[[nodiscard]] inline int staged_k(int cp) { return (cp + step_k - 1) / step_k * step_k; }

/// Bytes of shared memory of algo 1 with `tile_rows` pixel rows: the ring's stages (the pixels' and
/// the chunk's filter rows of a k-step, rows padded to 5 16-byte words), and a folded gate's
/// values for the images the rows span. (The output tile reuses the ring.)
[[nodiscard]] inline std::int64_t staged_shared_bytes(const OpDesc& op, int tile_rows) {
  const std::int64_t ring = std::int64_t{2} * stages * (tile_rows + staged_chunk(op.conv.kp)) * (step_k + 8);
  const std::int64_t gate =
      op.gate ? std::int64_t{2} * images_spanned(tile_rows, std::int64_t{op.conv.h} * op.conv.w) * (staged_k(op.conv.cp) + 8) : 0;
  const std::int64_t out = std::int64_t{2} * tile_rows * generated::odd_chunks(staged_chunk(op.conv.kp));
  return (ring > out ? ring : out) + gate;
}

/// Whether algo 1 runs `op` with `tile_rows` pixel rows: a 16-bit NHWC 1×1 conv of stride 1, no
/// padding, one group, packed slots, its output whole (no concat slice), with or without a
/// residual and a folded channel gate (OpDesc::gate: applied to the staged input) — nothing else
/// joined to it, no pool or deferred activation on its input.
[[nodiscard]] inline bool staged_fits(const OpDesc& op, int tile_rows = 128) {
  const ConvGeom& g = op.conv;
  return op.kind == OpKind::conv && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 &&
         g.pw == 0 && g.dh == 1 && g.dw == 1 && g.groups == 1 && g.packed && !g.s2d && g.cp % 8 == 0 &&
         g.kp % 8 == 0 && g.fcg == g.cp && g.kd == g.kp && op.in_cp == g.cp && op.out_cp == g.kp &&
         g.oh == g.h && g.ow == g.w && !op.pool && !op.slice && !op.in_slice && op.in_act.kind == Act::none &&
         !op.gap && !op.softmax && !op.side && !op.expand && !op.squeeze && !op.norm && !op.bottleneck &&
         !op.excite && !op.tail && !op.project && staged_rows_fit(g.kp, tile_rows) &&
         staged_shared_bytes(op, tile_rows) <= staged_max_shared;
}

/// Whether the heuristic claims algo 1 (math 0) for `op` at `batch`, once GPU-tested: a 1×1 conv
/// with a folded channel gate (no gating pass, no per-image weights) of at least 32 output slots
/// over at least 48 K pixels. Measured on an H100 at batch 256 (session 66, per-op profiles of
/// EfficientNet-B0's gated projections, algo 1 math 0 forced on all sixteen against the
/// heuristic's channel gate or per-image weights + cuBLASLt): it won on the 28×28 and 14×14 maps
/// of 40–112 output channels — features.3.0 52.2 → 43.0 µs, 3.1 69.4 → 61.3, 4.0 27.0 → 20.4,
/// 4.1/4.2 53 → 44, 5.0 54.2 → 44.4, 5.1/5.2 90 → 61 — and lost where the outputs are 16 or 24
/// channels of a large map (1.0 117.7 → 209.1, 2.0 83.5 → 115.4, 2.1 123.2 → 139.7) and on the
/// 7×7 maps at 12.5 K pixels (6.0 24.4 → 25.5, 6.1–6.3 39.7 → 41.9, 7.0 53.0 → 62.0); math 1 lost
/// to math 0 everywhere it ran. (Expansions: offered to measured tuning, not claimed — not timed.)
[[nodiscard]] inline bool staged_claimed(const OpDesc& op, int batch) {
  return staged_gpu_tested && batch >= min_batch && staged_fits(op, 128) && op.gate.has_value() &&
         op.conv.kp >= 32 && static_cast<std::int64_t>(batch) * op.conv.h * op.conv.w >= (std::int64_t{48} << 10);
}

/// Algo 1's source for `op` with `tile_rows` pixel rows (kernel `strata_rtc::mma_conv1x1<T>`): the
/// pixels' input rows and the chunk's filter rows of each k-step of 32 channels copied into a ring
/// of 4 stages by cp.async (channels past the input's slots, and rows past the batch's pixels,
/// zero), one barrier a k-step; a folded gate's values for the images the tile spans copied once,
/// and each A fragment multiplied by its pixel's image's gate in the fragment's registers (a
/// packed fma with -0: the product rounded to T, exactly what the channel-gate kernel stores);
/// the epilogue adds the bias and the residual (staged through shared memory), applies the
/// activation, and stores the tile in 16-byte words.
[[nodiscard]] inline std::string staged_source(const OpDesc& op, int tile_rows) {
  STRATA_CHECK(staged_fits(op, tile_rows), "mma_conv1x1: not a 16-bit 1x1 conv its algo 1 runs with " << tile_rows
                                          << " pixel rows a block: '" << op.label << "'");
  const ConvGeom& g = op.conv;
  const int nb = staged_chunk(g.kp);
  const int wn = staged_warps_n(nb);
  const int hw = g.h * g.w;
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "': 1x1 conv " << g.c << "->" << g.k << " over " << g.h << "x" << g.w
    << " pixels an image" << (op.gate ? ", its input gated per image and channel" : "")
    << (op.has_residual ? ", plus a residual" : "") << "; the reduction in k-steps.\n"
    << "template <class T>\n__global__ void __launch_bounds__(" << threads << ", 2) mma_conv1x1(\n"
    << "    const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,\n"
    << "    const T* __restrict__ gate, const T* z, T* y, int images) {\n"
    << "  pdl_entry();  // (a programmatic dependent launch's wait; else nothing)\n";
  constant("K", g.cp);  // input slots: the reduction
  constant("KS", staged_k(g.cp) / step_k);  // k-steps
  constant("BK", step_k);
  constant("ST", stages);
  constant("AP", step_k + 8);  // a staged row's elements (5 16-byte words: ldmatrix's rows apart)
  constant("N", g.kp);
  constant("KREAL", g.k);
  constant("NB", nb);
  constant("CHUNKS", g.kp / nb);
  constant("ROWS", tile_rows);
  constant("WN", wn);                          // warps across the chunk
  constant("WM", tile_rows / (8 / wn));             // pixel rows a warp
  constant("MT", tile_rows / (8 / wn) / 16);        // m-tiles a warp
  constant("NT", nb / wn / 8);                 // n-tiles a warp
  constant("OP", generated::odd_chunks(nb));
  constant("HW", hw);
  constant("IMGS", op.gate ? images_spanned(tile_rows, hw) : 0);
  constant("GP", staged_k(g.cp));  // a gate row's elements in shared memory
  constant("GPP", staged_k(g.cp) + 8);  // and its pitch (16 bytes over: two images' rows on other banks)
  constant("NTHREADS", threads);
  o << "  constexpr bool GATED = " << (op.gate ? "true" : "false") << ";\n"
    << "  constexpr bool RESIDUAL = " << (op.has_residual ? "true" : "false") << ";\n";
  generated::act_constant(o, op.act);
  o << R"src(  static_assert(MT >= 1 && NT >= 1 && WM % 16 == 0 && NB % (8 * WN) == 0, "mma_conv1x1: tile");
  extern __shared__ __align__(16) unsigned char sm[];
  T* const ring = reinterpret_cast<T*>(sm);                // ST x ([ROWS][AP] then [NB][AP])
  constexpr int STAGE = (ROWS + NB) * AP;                  // elements a stage
  constexpr int RING = ST * STAGE > ROWS * OP ? ST * STAGE : ROWS * OP;
  T* const gs = ring + RING;                               // [IMGS][GPP]: the tile's images' gates
  T* const os = ring;                                      // [ROWS][OP]: the output tile (after the ring)
  const int chunk = static_cast<int>(blockIdx.x % CHUNKS);
  const long long p0 = static_cast<long long>(blockIdx.x / CHUNKS) * ROWS;
  const long long pixels = static_cast<long long>(images) * HW;
  const int n0 = chunk * NB;
  const long long img0 = p0 / HW;
  // k-step s's copies into stage `buf`: the tile's input rows, then the chunk's filter rows.
  constexpr int KV = BK / 8;
  auto stage_copies = [&](int buf, int s) {
    T* const as = ring + buf * STAGE;
    T* const bs = as + ROWS * AP;
    const int k0 = s * BK;
    for (int i = threadIdx.x; i < ROWS * KV; i += NTHREADS) {
      const int r = i / KV;
      const int k = k0 + (i % KV) * 8;
      const bool ok = p0 + r < pixels && k < K;
      cp_async16(as + r * AP + (i % KV) * 8, ok ? x + (p0 + r) * K + k : x, ok);
    }
    for (int i = threadIdx.x; i < NB * KV; i += NTHREADS) {
      const int r = i / KV;
      const int k = k0 + (i % KV) * 8;
      const bool ok = k < K;
      cp_async16(bs + r * AP + (i % KV) * 8, ok ? w + static_cast<long long>(n0 + r) * K + k : w, ok);
    }
  };
  if constexpr (GATED) {  // the gates of the images the tile spans (zeros past the batch and K)
    constexpr int GV = GP / 8;
    for (int i = threadIdx.x; i < IMGS * GV; i += NTHREADS) {
      const int r = i / GV;
      const int k = (i % GV) * 8;
      const bool ok = img0 + r < images && k < K;
      cp_async16(gs + r * GPP + k, ok ? gate + (img0 + r) * K + k : gate, ok);
    }
  }
#pragma unroll
  for (int s = 0; s < ST - 1; ++s) {
    if (s < KS) {
      stage_copies(s, s);
    }
    cp_async_commit();
  }
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int wr = (warp / WN) * WM;   // the warp's first pixel row in the tile
  const int wc = (warp % WN) * (NB / WN);  // and its first output channel in the chunk
  const int g = lane / 4;
  const int t = lane % 4;
  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
    }
  }
  // A (ldmatrix x4): rows wr + 16 i + lane % 16, columns 8 (lane / 16) of a k16 step; B (x4 for
  // n-tiles j and j + 1: rows wc + 8 j + 8 (lane / 16) + lane % 8, columns 8 ((lane / 8) % 2); x2
  // for a last odd one).
  const unsigned ring_a = shared_address(ring);
  const unsigned a_lane = ring_a + 2u * ((wr + lane % 16) * AP + 8 * (lane / 16));
  const unsigned b_lane = ring_a + 2u * (ROWS * AP + (wc + 8 * (lane / 16) + lane % 8) * AP + 8 * ((lane / 8) % 2));
  const unsigned b_lane2 = ring_a + 2u * (ROWS * AP + (wc + lane % 8) * AP + 8 * ((lane / 8) % 2));
  // The gate rows of this thread's fragment rows (g and g + 8 of each m-tile), columns 2t.
  unsigned gate_row[MT][2];
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = wr + 16 * i + g + 8 * h;
      const int local = GATED ? static_cast<int>((p0 + r) / HW - img0) : 0;
      gate_row[i][h] = shared_address(gs) + 2u * (local * GPP + 2 * t);
    }
  }
#pragma unroll 1
  for (int s = 0; s < KS; ++s) {
    cp_async_wait<ST - 2>();  // k-step s's copies have landed (this thread's) ...
    __syncthreads();          // ... and everyone's; every warp is past k-step s - 1's reads
    {
      const int next = s + ST - 1;
      if (next < KS) {
        stage_copies(next % ST, next);
      }
      cp_async_commit();
    }
    const unsigned stage_off = 2u * static_cast<unsigned>((s % ST) * STAGE);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      unsigned a[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        ldsm4_at(a[i][0], a[i][1], a[i][2], a[i][3], a_lane + stage_off + 2u * (16 * i * AP + kk));
      }
      if constexpr (GATED) {  // each pair times its pixel's image's gate, rounded to T (fma with -0)
        const unsigned gk = 2u * (s * BK + kk);
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          const unsigned q[4] = {lds32_at(gate_row[i][0] + gk), lds32_at(gate_row[i][1] + gk),
                                 lds32_at(gate_row[i][0] + gk + 16u), lds32_at(gate_row[i][1] + gk + 16u)};
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            a[i][e] = fold2<T, Act::none>(a[i][e], q[e], 0x80008000u);  // a·g + (-0): the product in T
          }
        }
      }
#pragma unroll
      for (int j = 0; j + 1 < NT; j += 2) {
        unsigned b0, b1, b2, b3;
        ldsm4_at(b0, b1, b2, b3, b_lane + stage_off + 2u * (8 * j * AP + kk));
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          mma_16816<T>(acc[i][j], a[i][0], a[i][1], a[i][2], a[i][3], b0, b1);
          mma_16816<T>(acc[i][j + 1], a[i][0], a[i][1], a[i][2], a[i][3], b2, b3);
        }
      }
      if constexpr (NT % 2 == 1) {
        unsigned b0, b1;
        ldsm2_at(b0, b1, b_lane2 + stage_off + 2u * (8 * (NT - 1) * AP + kk));
#pragma unroll
        for (int i = 0; i < MT; ++i) {
          mma_16816<T>(acc[i][NT - 1], a[i][0], a[i][1], a[i][2], a[i][3], b0, b1);
        }
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every warp is past the ring: the output tile takes its place
  if constexpr (RESIDUAL) {  // the residual's tile, where the output tile goes (rows past the pixels 0)
    constexpr int OV = NB / 8;
    for (int i = threadIdx.x; i < ROWS * OV; i += NTHREADS) {
      const int r = i / OV;
      const int v = i % OV;
      const bool ok = p0 + r < pixels;
      cp_async16(os + r * OP + v * 8, ok ? z + (p0 + r) * N + n0 + v * 8 : z, ok);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
  }
  // Bias (and the residual: each pair read where this thread writes it), activation, rounded to
  // T, 0 past the real channels.
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int col = wc + 8 * j + 2 * t;
    const int c = n0 + col;
    const float b0 = bias != nullptr ? bias[c] : 0.0f;
    const float b1 = bias != nullptr ? bias[c + 1] : 0.0f;
#pragma unroll
    for (int i = 0; i < MT; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        unsigned* const at = reinterpret_cast<unsigned*>(os + (wr + 16 * i + g + 8 * h) * OP + col);
        float r0 = 0.0f, r1 = 0.0f;
        if constexpr (RESIDUAL) {
          const T* zv = reinterpret_cast<const T*>(at);
          r0 = load(zv);
          r1 = load(zv + 1);
        }
        const float v0 = c < KREAL ? activate(act, acc[i][j][2 * h] + b0 + r0) : 0.0f;
        const float v1 = c + 1 < KREAL ? activate(act, acc[i][j][2 * h + 1] + b1 + r1) : 0.0f;
        *at = pack2<T>(v0, v1);
      }
    }
  }
)src" << stored_tile;
  return o.str();
}

}  // namespace pointwise

template <DType P>
class PointwiseMma final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "mma_conv1x1"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && storage_layout(P) == Layout::nhwc &&
           (pointwise::fits(op) || staged_runs(op, 128) || staged_runs(op, 64)) && generated::mma_sync_device();
  }
  /// Whether algo 1 runs `op` with `tile_rows` pixel rows on this device: it fits, and its shared
  /// memory is within the device's opt-in limit (99 KiB on compute capability 8.6 and 8.9; no
  /// device: as fitted).
  [[nodiscard]] static bool staged_runs(const OpDesc& op, int tile_rows) {
    return pointwise::staged_fits(op, tile_rows) &&
           pointwise::staged_shared_bytes(op, tile_rows) <=
               kernels::device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin).value_or(1 << 30);
  }
  /// Algo 1 applies a folded channel gate itself (OpIo::gate_x, OpIo::gate).
  [[nodiscard]] bool fuses_gate(const Variant& v) const override { return v.algo == 1; }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    if (pointwise::staged_claimed(op, batch)) {
      return Claim{Variant{std::string(name()), 1, 0}, rank::tailored};
    }
    if (!pointwise::claimed(op, batch)) {
      return std::nullopt;
    }
    return Claim{{std::string(name())}, rank::tailored};
  }
  /// Algo 0 at batches of 32 and more where it fits; algo 1 (math 0: 128 pixel rows a block, math
  /// 1: 64) wherever it fits, once GPU-tested (pointwise::staged_gpu_tested).
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries&) const override {
    std::vector<Variant> v;
    if (batch >= pointwise::min_batch && pointwise::fits(op)) {
      v.push_back(Variant{std::string(name())});
    }
    if (pointwise::staged_gpu_tested) {
      for (const int m : {0, 1}) {
        if (staged_runs(op, pointwise::staged_rows(m))) {
          v.push_back(Variant{std::string(name()), 1, m});
        }
      }
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const ConvGeom& g = op.conv;
    const long long pixels = static_cast<long long>(batch) * g.h * g.w;
    const T* wt = w.weight.template as<const T>();
    const float* bias = w.bias_f32.template as<const float>();
    T* y = static_cast<T*>(io.y);
    std::ostringstream what;
    if (v.algo == 1) {
      const int rows = pointwise::staged_rows(v.math);
      const int nb = pointwise::staged_chunk(g.kp);
      const long long blocks = (pixels + rows - 1) / rows * (g.kp / nb);
      STRATA_CHECK(blocks < (1LL << 31), "'" << op.label << "': mma_conv1x1: " << blocks << " blocks");
      const auto grid = static_cast<unsigned>(blocks);
      const auto shared = static_cast<std::size_t>(pointwise::staged_shared_bytes(op, rows));
      generated::allow_shared(k, generated::device_sms().device, shared, op.label, "mma_conv1x1");
      const bool gated = op.gate.has_value();
      STRATA_CHECK(!gated || (io.gate_x != nullptr && io.gate != nullptr),
                   "'" << op.label << "': mma_conv1x1 algo 1: the folded gate's map and gate are not given");
      STRATA_CHECK(!op.has_residual || io.z != nullptr, "'" << op.label << "': mma_conv1x1 algo 1: no residual given");
      const T* x = static_cast<const T*>(gated ? io.gate_x : io.x);
      const T* gate = gated ? static_cast<const T*>(io.gate) : nullptr;
      const T* z = op.has_residual ? static_cast<const T*>(io.z) : nullptr;
      what << "strata 1x1 conv on tensor cores (mma.sync; k-steps of " << pointwise::step_k << " channels in "
           << pointwise::stages << " stages, blocks of " << rows << " pixels x " << nb << " output channels"
           << (gated ? ", the gate applied to the staged input" : "") << (op.has_residual ? ", the residual added" : "")
           << ", shapes compiled in)";
      return kernel_step(what.str(), [=](cudaStream_t s) {
        rtc::launch_shared(k, grid, static_cast<unsigned>(pointwise::threads), shared, s, x, wt, bias, gate, z, y,
                           batch);
      });
    }
    const long long blocks = (pixels + pointwise::rows - 1) / pointwise::rows * (g.kp / pointwise::chunk(g.kp));
    STRATA_CHECK(blocks < (1LL << 31), "'" << op.label << "': mma_conv1x1: " << blocks << " blocks");
    const auto grid = static_cast<unsigned>(blocks);
    const auto shared = static_cast<std::size_t>(pointwise::shared_bytes(op));
    generated::allow_shared(k, generated::device_sms().device, shared, op.label, "mma_conv1x1");
    const T* x = static_cast<const T*>(io.x);
    what << "strata 1x1 conv on tensor cores (mma.sync; blocks of " << pointwise::rows << " pixels x "
         << pointwise::chunk(g.kp) << " output channels, shapes compiled in)";
    return kernel_step(what.str(), [=](cudaStream_t s) {
      rtc::launch_shared(k, grid, static_cast<unsigned>(pointwise::threads), shared, s, x, wt, bias, y, pixels);
    });
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v, const OpIo&) const override {
    if (v.algo == 1) {
      STRATA_CHECK(v.fuse == 0 && (v.math == 0 || v.math == 1) &&
                       pointwise::staged_fits(op, pointwise::staged_rows(v.math)),
                   "'" << op.label << "': mma_conv1x1 algo 1 (the reduction staged) runs a 16-bit 1x1 conv of "
                          "stride 1 (a folded gate and a residual allowed, nothing else joined) in blocks of 128 "
                          "(math 0) or 64 (math 1) pixels within "
                       << (pointwise::staged_max_shared >> 10) << " KiB of shared memory; not " << to_string(v));
      return this->named(pointwise::staged_source(op, pointwise::staged_rows(v.math)));
    }
    STRATA_CHECK(v.algo == 0 && v.math == 0 && v.fuse == 0,
                 "'" << op.label << "': mma_conv1x1 has algo 0 (the reduction whole in shared memory) and 1 "
                        "(staged: math 0 or 1); not " << to_string(v));
    return this->named(pointwise::source(op));
  }
};

}  // namespace strata::cuda::tactics
