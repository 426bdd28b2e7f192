#pragma once
/// Tactic `stem_conv`: ResNet's stem — a 7×7/2 conv over 3 channels, read space-to-depth as 4×4
/// taps over 12 slots, with bias, activation and its 3×3/2 max pool — in one warp-specialized
/// kernel generated for the op, reading the caller's input itself (sm_90a).
///
/// tile_conv's swapped form (algo 9) computes tiles of 4×14 pooled outputs from 9×29 conv outputs:
/// the pool's overlapping windows recompute a conv row and column at every tile's edge (261 conv
/// outputs for 224 used), the GEMM's columns are padded past them (288), and the tile's phases —
/// copy-in, conversion, MMAs, staging, pool — follow each other in each block. Here a tile is two
/// whole conv rows (2j, 2j + 1) and yields pooled row j: the window's third row, 2j − 1, is the
/// previous tile's second row, whose three-column maxima the thread that pools them keeps (in
/// shared memory) — so no conv output is computed twice within a band of rows. The tile's GEMM is
/// tile_conv's swapped one over the patch's grid: output channels as wgmma's M (64), the two
/// rows' conv outputs as N (q = row · IC + column, IC = W + 3: 232 columns for 224 outputs on a
/// 224×224 input, m64n232k16), the patch as two planes (P0: slots 0-7 of a pixel; X: slots 8-11
/// of the pixel and the next), 12 k-steps.
///
/// 384 threads, one block an SM: warpgroup 0 produces — its first warp copies each tile's ten
/// rows of the caller's input (each channel's rows for C × H × W input, the pixel rows for
/// H × W × C) with bulk asynchronous copies (`cp.async.bulk`, counted in bytes on an mbarrier)
/// into one of two staging buffers, a tile ahead; the warpgroup rearranges them space-to-depth,
/// normalized and rounded to 16 bits, into one of NB plane buffers (fenced for the async proxy,
/// then an arrival on the buffer's *full* mbarrier). Warpgroups 1 and 2 consume: each owns
/// bands of pooled rows of an image (a unit; tile j of a band is pooled row j, a band not at the
/// image's top first computes the tile above it for its second row's maxima only) and issues its
/// tile's MMAs in turn with the other (named barriers), frees the buffer (*empty*) as soon as the
/// MMAs are done, stores its accumulators with the bias transposed (stmatrix) into its own
/// staging area, and pools from there, 8 channels (16 bytes) a thread and output.
///
/// On an H100 (session 57): correct — equal to tile_conv's swapped form to the bit on ResNet-18
/// at batch 256 and on a 64×80 stem from f32, f16 and 8-bit input — but not faster: 275.6 µs for
/// ResNet-18's stem at batch 256 against algo 9's 264.0. Nsight Compute: 64.4 M instructions
/// (algo 9: 98.7 M) and 32.8 M shared-memory wavefronts (38.9 M), but the warps stall mostly on
/// the long scoreboard (4.72 cycles an instruction): the producer converts a tile only once its
/// rows have landed, one tile ahead, and copies all ten of them each tile where four are new.
/// Not claimed; offered to measured tuning.
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
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"
#include "strata/cuda/tactics/tile_conv.hpp"

namespace strata::cuda::tactics {

namespace stem {

inline constexpr int threads = 384;  ///< a producer and two consumer warpgroups
inline constexpr int kp = 64;        ///< output channels: one wgmma M
inline constexpr int ksteps = 12;    ///< 4 tap rows × (taps 0-1, taps 2-3, slots 8-11 of all 4)
inline constexpr int stage_pitch = kp + 8;  ///< elements a staged conv output (144 bytes)
inline constexpr int raw_rows = 10;  ///< input rows a tile reads: 2 conv rows' 5 space-to-depth rows
/// Patch buffers by algo: 3 (algo 0) or 4 (algo 1).
inline constexpr int max_algo = 1;
[[nodiscard]] inline int buffers(int algo) { return 3 + algo; }
/// Shared memory a block may take (the H100's and H200's opt-in).
inline constexpr std::int64_t max_shared = generated::hopper_max_shared;
inline constexpr std::int64_t barrier_bytes = 128;  ///< the mbarriers: full and empty a buffer, 2 staging

/// The caller's input as the kernel reads it (tile_conv's description of it: format, layout,
/// shape as declared; `used` and `staged` do not matter here).
using Input = tile::RawInput;
/// Bytes a staged row of `in`: a channel's row (C × H × W), a row of pixels (H × W × C).
[[nodiscard]] inline std::int64_t row_bytes(const Input& in) {
  return std::int64_t{in.shape.w} * input_format_size(in.format) * (in.hwc ? in.shape.c : 1);
}
/// Rows a tile stages: raw_rows, each channel's for C × H × W input.
[[nodiscard]] inline int staged_rows(const Input& in) { return raw_rows * (in.hwc ? 1 : in.shape.c); }

/// What a kernel for one op takes.
struct Geometry {
  int ic = 0;     ///< patch columns: the space-to-depth map's width (OW + 3)
  int nwg = 0;    ///< GEMM columns: the two rows' conv outputs in the patch's grid, a multiple of 8
  int plane = 0;  ///< pixels a plane (the 5-row patch, then slack only unstored columns read; ≡ 1 mod 8)
  int nb = 0;     ///< patch buffers
  std::int64_t buffer = 0;  ///< bytes a patch buffer (planes P0 and X)
  std::int64_t prev = 0;    ///< where a consumer's maxima of its last conv row start: after its staged outputs
  std::int64_t stage = 0;   ///< bytes a consumer's staged conv outputs, then those maxima (a pooled row's)
  std::int64_t raw = 0;     ///< bytes a staging buffer of the caller's rows
  std::int64_t shared = 0;  ///< the block's dynamic shared memory
};

[[nodiscard]] inline Geometry geometry(const OpDesc& op, const Input& in, int algo = 0) {
  const ConvGeom& g = op.conv;
  Geometry s;
  s.ic = g.w;
  s.nwg = (s.ic + g.ow + 7) / 8 * 8;
  // The last column, NWG − 1, reads up to pixel NWG − 1 + 3 · IC + 3 (X's second core matrix).
  const int pixels = std::max(5 * s.ic, s.nwg + 3 * s.ic + 3);
  s.plane = (pixels + 6) / 8 * 8 + 1;
  s.nb = buffers(algo);
  s.buffer = (std::int64_t{2} * s.plane * 16 + 127) / 128 * 128;
  s.prev = std::int64_t{s.nwg} * stage_pitch * 2;  // (144 bytes a column: 16-byte aligned)
  s.stage = (s.prev + std::int64_t{g.ow / 2} * kp * 2 + 127) / 128 * 128;
  s.raw = (std::int64_t{staged_rows(in)} * row_bytes(in) + 127) / 128 * 128;
  s.shared = std::int64_t{kp} * ksteps * 16 * 2 + s.nb * s.buffer + 2 * s.stage + 2 * s.raw + barrier_bytes;
  return s;
}

/// Whether `op` is the stem the kernel computes: a 3-channel conv read space-to-depth as 4×4 taps
/// over 12 slots (tile_conv's swapped geometry) into 64 channels, its bias and activation, and a
/// fused 3×3/2 max pool of padding 1 over an even map — nothing else fused, a dense output.
[[nodiscard]] inline bool shape_fits(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  if (!tile::swap_geometry(op) || g.k != kp || g.kp != kp || g.ph != 0 || g.pw != 0 ||
      g.w != g.ow + 3 || g.h != g.oh + 3 || g.oh % 2 != 0 || g.ow % 2 != 0 || g.ow + g.w > 256) {
    return false;
  }
  if (!op.pool || op.pool->kind != OpKind::max_pool || op.pool->out_cp != kp || op.has_residual || op.slice ||
      op.in_act.kind != Act::none || op.gap || op.gate || op.softmax || op.side || op.expand ||
      op.squeeze || op.norm || op.bottleneck || op.in_slice || op.excite || op.tail) {
    return false;
  }
  const kernels::PoolShape ps = kernels::conv_pool_shape(op, 0, g.kp, true);
  return ps.is_max && ps.kh == 3 && ps.kw == 3 && ps.sh == 2 && ps.sw == 2 && ps.ph == 1 &&
         ps.pw == 1 && ps.oh == g.oh / 2 && ps.ow == g.ow / 2;
}

/// Whether the kernel reads this input: 3 channels as declared, 2 × OH + 2·pad rows of it, each
/// staged row, a channel's plane and an image a whole number of 16-byte units (the bulk copies'
/// alignment), and its block's shared memory within max_shared.
[[nodiscard]] inline bool input_fits(const OpDesc& op, const Input& in, int algo = 0) {
  const Shape& s = in.shape;
  const std::int64_t image = std::int64_t{s.c} * s.h * s.w * input_format_size(in.format);
  const std::int64_t plane = in.hwc ? 0 : std::int64_t{s.h} * s.w * input_format_size(in.format);
  return s.c == 3 && row_bytes(in) % 16 == 0 && image % 16 == 0 && plane % 16 == 0 &&
         (in.format != InputFormat::u8_hwc || in.hwc) && geometry(op, in, algo).shared <= max_shared;
}

/// Bands of pooled rows an image is split into at `batch` for `consumers` warpgroups: the fewest
/// that give the least tiles a consumer (a band below the top computes one tile more).
[[nodiscard]] inline int bands(int rows, int batch, long long consumers) {
  int best = 1;
  long long best_cost = -1;
  for (int b = 1; b <= rows; ++b) {
    const long long units = static_cast<long long>(batch) * b;
    const long long per = (units + consumers - 1) / consumers;
    const int band = (rows + b - 1) / b;
    const long long cost = per * (band + (b > 1 ? 1 : 0));
    if (best_cost < 0 || cost < best_cost) {
      best = b;
      best_cost = cost;
    }
  }
  // (as many bands as rows of that height give: no band starting past the last row)
  const int bl = (rows + best - 1) / best;
  return (rows + bl - 1) / bl;
}

/// Tiles (two conv rows each) of a batch from which measured tuning times the stem here:
/// ResNet's at batch 8 on (56 tiles an image).
inline constexpr long long timed_tiles = 448;

/// The kernel's source (kernel `strata_rtc::stem_conv<T>`) for `op` reading input `in`.
[[nodiscard]] inline std::string source(const OpDesc& op, const Input& in, int algo = 0) {
  STRATA_CHECK(shape_fits(op), "stem_conv: layer '" << op.label
                                                    << "' is not a 3-channel 7x7/2 stem read space-to-depth "
                                                       "into 64 channels with a 3x3/2 max pool");
  STRATA_CHECK(algo >= 0 && algo <= max_algo,
               "stem_conv: algo " << algo << " is not one of its forms (0: 3 buffers, 1: 4) for layer '"
                                  << op.label << "'");
  STRATA_CHECK(input_fits(op, in, algo),
               "stem_conv: layer '" << op.label << "' cannot read the caller's input as given (3 channels, "
                                       "rows of whole 16-byte units, within the block's shared memory)");
  const ConvGeom& g = op.conv;
  const Geometry s = geometry(op, in, algo);
  const int nt = s.nwg / 8;
  std::ostringstream o;
  generated::open_kernel(o, op, true, "stem_conv",
                         "int batch, const void* __restrict__ raw, const float* __restrict__ affine, int nbd",
                         1, "", threads);
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  constant("IC", s.ic);
  constant("NWG", s.nwg);
  constant("PLANE", s.plane);
  constant("NB", s.nb);
  constant("BUFB", static_cast<int>(s.buffer));
  constant("STAGEB", static_cast<int>(s.stage));
  constant("PREVOFF", static_cast<int>(s.prev));
  constant("RAWB", static_cast<int>(s.raw));
  constant("KSTEPS", ksteps);
  constant("CTS", stage_pitch);
  constant("WROW", g.kh * g.kw * g.cp);
  // The caller's input: C × H × W (or H × W × C), its padding as declared (the space-to-depth
  // pixel (sy, sx) holds input rows 2sy − RPH + {0, 1}, columns 2sx − RPW + {0, 1}).
  const Shape& rs = in.shape;
  constant("RC", rs.c);
  constant("RH", rs.h);
  constant("RW", rs.w);
  constant("RPH", op.layer.padding.h);
  constant("RPW", op.layer.padding.w);
  constant("RROWS", staged_rows(in));
  constant("RROWB", static_cast<int>(row_bytes(in)));
  generated::source_constants(o, {true, in.format, in.hwc});  // RAW, Src, SRC_HWC
  const int es = input_format_size(in.format);
  o << "  constexpr long long RIMGB = " << std::int64_t{rs.c} * rs.h * rs.w * es << ";  // bytes an image\n"
    << "  constexpr long long RPLANEB = " << (in.hwc ? 0 : std::int64_t{rs.h} * rs.w * es)
    << ";  // bytes a channel's plane\n";
  // POST_ACT: the ReLU (ReLU6) after the max (tile_conv::post_activation: the same bits).
  const bool post_act = tile::post_activation(op, true);
  o << "  constexpr bool POST_ACT = " << (post_act ? "true" : "false") << ";\n"
    << "  constexpr bool POST_HI = " << (post_act && op.act.kind == Act::clip ? "true" : "false") << ";\n";
  o << R"src(  static_assert(KP == 64 && K == 64 && CP == 16 && KH == 4 && KW == 4 && NWG % 8 == 0 && NWG <= 256, "a 64-channel stem of 4x4 taps over 12 slots");
  static_assert(YH * 2 == OH && YW * 2 == OW && IC == W, "a 3x3/2 max pool of padding 1 over an even map");
  extern __shared__ __align__(128) unsigned char smem[];
  const unsigned wa = shared_address(smem);                                        // the filter as core matrices
  const unsigned xa = wa + static_cast<unsigned>(64 * KSTEPS * 16 * 2);            // NB plane buffers of BUFB bytes
  const unsigned sa0 = xa + static_cast<unsigned>(NB * BUFB);                      // 2 consumers' staging, STAGEB each
  const unsigned ra0 = sa0 + static_cast<unsigned>(2 * STAGEB);                    // 2 buffers of the caller's rows
  const unsigned full0 = ra0 + static_cast<unsigned>(2 * RAWB);                    // buffer b's planes written: full0 + 8b
  const unsigned empty0 = full0 + 8u * NB;                                         // buffer b free: empty0 + 8b
  const unsigned rfull0 = empty0 + 8u * NB;                                        // staging r's rows landed: rfull0 + 8r
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int role = warp >> 2;  // 0: the producer; 1, 2: the consumers
  // Bands: pooled rows [b · BL, min((b + 1) · BL, YH)) of an image; unit u = image u / nbd, band
  // u % nbd. Consumer g = 2 · blockIdx.x + w takes units g, g + G, ... (G = 2 · gridDim.x); a band
  // below the top starts one tile early (its tile's second conv row feeds the band's first window).
  const int bl = (YH + nbd - 1) / nbd;
  const long long units = static_cast<long long>(batch) * nbd;
  const long long G = 2ll * gridDim.x;
  struct Cursor {
    long long u;  // the unit
    int j;        // the tile: pooled row j (conv rows 2j, 2j + 1)
    int r0, r1;   // the band's pooled rows
  };
  auto start = [&](Cursor& c, long long u) {
    c.u = u;
    const int b = static_cast<int>(u % nbd);
    c.r0 = b * bl;
    c.r1 = min(c.r0 + bl, YH);
    c.j = b > 0 ? c.r0 - 1 : c.r0;
  };
  auto advance = [&](Cursor& c) {
    if (++c.j >= c.r1) {
      start(c, c.u + G);
    }
  };
  // Tiles of consumer w: its units' tiles in all.
  auto count_of = [&](int w) {
    int n = 0;
    for (long long u = 2ll * blockIdx.x + w; u < units; u += G) {
      const int b = static_cast<int>(u % nbd);
      const int r0 = b * bl;
      n += min(r0 + bl, YH) - (b > 0 ? r0 - 1 : r0);
    }
    return n;
  };
  const int n0 = count_of(0);
  const int n1 = count_of(1);
  const int nm = min(n0, n1);
  const int slots = n0 + n1;
  // Slot s (buffer s % NB) belongs to consumer s % 2 while both have tiles, then to the one left.
  auto owner = [&](int s) { return s < 2 * nm ? (s & 1) : (n0 > n1 ? 0 : 1); };
  // The slots in order, each consumer's tiles in order: a cursor per consumer.
  struct Walk {
    Cursor c0, c1;
    int s;
  };
  auto walk_start = [&](Walk& k) {
    start(k.c0, 2ll * blockIdx.x);
    start(k.c1, 2ll * blockIdx.x + 1);
    k.s = 0;
  };
  // The current slot's tile (its image and pooled row), then on to the next slot. (The cursor
  // chosen by a branch: an index into a pair would put the walk in local memory.)
  auto walk_next = [&](Walk& k, long long& img, int& j) {
    auto take = [&](Cursor& c) {
      img = c.u / nbd;
      j = c.j;
      advance(c);
    };
    if (owner(k.s) == 0) {
      take(k.c0);
    } else {
      take(k.c1);
    }
    ++k.s;
  };
  if (tid == 0) {
)src" << generated::init_buffer_barriers(R"src(    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(rfull0) : "memory");
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(rfull0 + 8u) : "memory");
)src") << R"src(  }
  // The planes' slack (read only by columns never stored) zero, once, in every buffer.
  for (int i = tid; i < NB * (BUFB / 16); i += 384) {
    const unsigned at = xa + static_cast<unsigned>(i) * 16u;
    asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};" ::"r"(at), "r"(0u) : "memory");
  }
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
  __syncthreads();
)src" << generated::wait_phase_lambda() << R"src(  if (role == 0) {
    // (64: at 56 the conversion spilled. setmaxnreg.inc takes registers only from those the
    // block's own warps released: 4 warps × (168 − 64) × 32 = 13,312, so the consumers ask for
    // 216, 8 × 48 × 32 = 12,288 — asking for more would wait for ever.)
    asm volatile("setmaxnreg.dec.sync.aligned.u32 64;" ::: "memory");
    const unsigned char* rin = static_cast<const unsigned char*>(raw);
    // The tile's rows of the caller's input into staging buffer r by bulk copies (warp 0): conv
    // rows 2j, 2j + 1 read space-to-depth rows 2j..2j + 4, input rows 4j − RPH .. 4j − RPH + 9;
    // rows outside the image are not copied (the conversion writes zeros for them). The bytes
    // are counted on rfull r.
    auto issue_rows = [&](long long img, int j, int r) {
      const int gy0 = 4 * j - RPH;
      const int lo = max(0, -gy0);
      const int hi = min(10, RH - gy0);
      const unsigned bar = rfull0 + 8u * r;
      if (lane == 0) {
        const unsigned bytes = static_cast<unsigned>((hi - lo) * (RROWS / 10) * RROWB);
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
      }
      __syncwarp();
      for (int i = lane; i < RROWS; i += 32) {
        const int rr = i % 10;  // (channel i / 10 for C x H x W input)
        if (rr >= lo && rr < hi) {
          const unsigned char* src = rin + img * RIMGB + (SRC_HWC ? 0 : (i / 10) * RPLANEB) +
                                     static_cast<long long>(gy0 + rr) * RROWB;
          const unsigned dst = ra0 + static_cast<unsigned>(r * RAWB + i * RROWB);
          asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                       ::"r"(dst), "l"(src), "r"(static_cast<unsigned>(RROWB)), "r"(bar) : "memory");
        }
      }
    };
    // The filter once, as wgmma's core matrices in the planes' k order (tile_conv's swapped
    // form): a tap row's k-steps (taps 0 and 1, slots 0-7), (taps 2 and 3, slots 0-7), (slots
    // 8-11 of taps 0, 1, 2, 3).
    Walk iw;  // the slots whose rows are copied (a tile ahead of the conversion)
    walk_start(iw);
    long long img = 0;
    int j = 0;
    if (warp == 0) {
      for (int r = 0; r < 2 && iw.s < slots; ++r) {
        walk_next(iw, img, j);
        issue_rows(img, j, r);
      }
    }
    T* ws = reinterpret_cast<T*>(smem);
)src" << tile::swap_filter("tid", 128) << R"src(    // The normalization (scale, shift) of each input channel.
    float scale[3] = {1.0f, 1.0f, 1.0f};
    float shift[3] = {0.0f, 0.0f, 0.0f};
    if (affine != nullptr) {
#pragma unroll
      for (int ci = 0; ci < 3; ++ci) {
        scale[ci] = affine[2 * ci];
        shift[ci] = affine[2 * ci + 1];
      }
    }
    Walk cw;  // the slots converted
    walk_start(cw);
    for (int s = 0; s < slots; ++s) {
      const int b = s % NB;
      const int r = s & 1;
      walk_next(cw, img, j);
      if (s >= NB) {
        wait_phase(empty0 + 8u * b, static_cast<unsigned>((s / NB - 1) & 1));
      }
      wait_phase(rfull0 + 8u * r, static_cast<unsigned>((s >> 1) & 1));
      // Space-to-depth pixel p = row · IC + column of the patch (rows 2j..2j + 4): slot
      // ch = channel · 4 + dy · 2 + dx holds input (channel, 2 · (2j + row) − RPH + dy,
      // 2 · column − RPW + dx), normalized; 0 outside the image.
      const unsigned char* rb = smem + (ra0 - wa) + r * RAWB;
      const int gy0 = 4 * j - RPH;
      const unsigned pb = xa + static_cast<unsigned>(b * BUFB);
      for (int p = tid; p < 5 * IC; p += 128) {
        const int pr = p / IC;
        const int pc = p - pr * IC;
        float v[12];
#pragma unroll
        for (int ch = 0; ch < 12; ++ch) {
          const int ci = ch / 4;
          const int rr = 2 * pr + (ch / 2) % 2;
          const int gx = 2 * pc - RPW + ch % 2;
          const bool in = static_cast<unsigned>(gy0 + rr) < static_cast<unsigned>(RH) && static_cast<unsigned>(gx) < static_cast<unsigned>(RW);
          const long long at = SRC_HWC ? (static_cast<long long>(rr) * RW + gx) * RC + ci : (static_cast<long long>(ci) * 10 + rr) * RW + gx;
          v[ch] = in ? fmaf(load(reinterpret_cast<const Src*>(rb) + at), scale[ci], shift[ci]) : 0.0f;
        }
        const unsigned lo0 = pack2<T>(v[0], v[1]), lo1 = pack2<T>(v[2], v[3]);
        const unsigned lo2 = pack2<T>(v[4], v[5]), lo3 = pack2<T>(v[6], v[7]);
        const unsigned x0 = pack2<T>(v[8], v[9]), x1 = pack2<T>(v[10], v[11]);
        const unsigned a0 = pb + static_cast<unsigned>(p) * 16u;
        const unsigned a1 = pb + static_cast<unsigned>(PLANE + p) * 16u;
        asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(a0), "r"(lo0), "r"(lo1), "r"(lo2), "r"(lo3) : "memory");
        asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(a1), "r"(x0), "r"(x1) : "memory");
        if (p > 0) {  // (the previous pixel's X holds this one's slots 8-11 second)
          asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(a1 - 8u), "r"(x0), "r"(x1) : "memory");
        }
      }
      // (the filter with the first buffer) written: visible to the async proxy, then counted
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
      asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(full0 + 8u * b) : "memory");
      // Every producer thread done with staging buffer r: the rows of slot s + 2 go there.
      asm volatile("bar.sync 5, 128;" ::: "memory");
      if (warp == 0 && iw.s < slots) {
        walk_next(iw, img, j);
        issue_rows(img, j, r);
      }
    }
    return;
  }
  // A consumer: its units' tiles, in turn with the other consumer's.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 216;" ::: "memory");
  const int wgi = role - 1;
  const int wr = warp & 3;          // this warp's channels: 16 · wr on
  const int ct = tid - 128 * role;  // this thread within its warpgroup
  constexpr int col0 = 0;
  const unsigned sa = sa0 + static_cast<unsigned>(wgi * STAGEB);
  float bv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    bv[h] = bias != nullptr ? bias[16 * wr + 8 * h + (lane >> 2)] : 0.0f;
  }
  float acc[NWG / 8][4];
  // A: k-steps 256 bytes apart, core matrices 128 bytes apart in k, a channel group's apart in M.
  constexpr unsigned long long DA = (static_cast<unsigned long long>(128 >> 4) << 16) |
                                    (static_cast<unsigned long long>((KSTEPS * 2 * 128) >> 4) << 32);
  // B: 8 pixels (128 bytes) a core matrix in N; in k, 16 bytes (the next tap's P0) or 32 (X).
  constexpr unsigned long long DB16 = (1ull << 16) | (static_cast<unsigned long long>(128 >> 4) << 32);
  constexpr unsigned long long DB32 = (2ull << 16) | (static_cast<unsigned long long>(128 >> 4) << 32);
  auto issue_gemm = [&](unsigned pa) {
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int s = 0; s < KSTEPS; ++s) {
      const int ky = s / 3;
      const int part = s % 3;
      const unsigned long long da = DA | static_cast<unsigned long long>(((wa + s * 256) & 0x3FFFF) >> 4);
      const unsigned bb = (part == 2 ? pa + PLANE * 16 : pa) + 16u * static_cast<unsigned>(col0 + ky * IC + (part == 1 ? 2 : 0));
      const unsigned long long db = (part == 2 ? DB32 : DB16) | static_cast<unsigned long long>((bb & 0x3FFFF) >> 4);
      const int sc = s == 0 ? 0 : 1;
      if constexpr (is_same<T, bf16>::value) {
        )src" << generated::wgmma_ss_call(nt, "bf16.bf16", "acc") << R"src(      } else {
        )src" << generated::wgmma_ss_call(nt, "f16.f16", "acc") << R"src(      }
    }
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
  };
  // Pooled outputs of a tile: YW pixels × 8 groups of 8 channels, 16 bytes each; this thread's
  // are i = ct + 128u. prev (in shared memory after the staged outputs: beside the accumulators
  // they would not fit in registers): entry i, the three-column maxima of this consumer's last
  // tile's second conv row there, read and rewritten by the same thread.
  constexpr int PI = YW * (KP / 8);
  constexpr int PU = (PI + 127) / 128;
  static_assert(PREVOFF + PI * 16 <= STAGEB, "the maxima after the staged outputs");
  const T* st = reinterpret_cast<const T*>(smem + (sa - wa));
  uint4* prev = reinterpret_cast<uint4*>(smem + (sa - wa) + PREVOFF);
  Cursor c;
  start(c, 2ll * blockIdx.x + wgi);
  const int mine = wgi == 0 ? n0 : n1;
  // Slot of this consumer's k-th tile.
  auto slot_of = [&](int k) { return k < nm ? 2 * k + wgi : nm + k; };
  for (int k = 0; k < mine; ++k) {
    const int s = slot_of(k);
    const int b = s % NB;
    const unsigned pa = xa + static_cast<unsigned>(b * BUFB);
    wait_phase(full0 + 8u * b, static_cast<unsigned>((s / NB) & 1));  // the planes (and the filter)
    if (s > 0 && owner(s - 1) != wgi) {  // this consumer's turn: the other's MMAs of slot s − 1 issued
      asm volatile("bar.sync %0, 256;" ::"r"(1 + wgi) : "memory");
    }
    issue_gemm(pa);
    if (s + 1 < slots && owner(s + 1) != wgi) {  // the other consumer's turn
      asm volatile("bar.arrive %0, 256;" ::"r"(2 - wgi) : "memory");
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
    for (int n = 0; n < NWG / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(acc[n][i])::"memory");
    }
    // The warpgroup's MMAs done with buffer b (each thread's own wait), and its last tile's
    // pooling done with the staging area: then b is free, and the staging is rewritten.
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(empty0 + 8u * b) : "memory");
    asm volatile("bar.sync %0, 128;" ::"r"(3 + wgi) : "memory");
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c0 = 16 * wr + 8 * h;
      auto val = [&](float a) { return POST_ACT ? a + bv[h] : activate(act, a + bv[h]); };
)src" << generated::stmatrix_trans_columns("sa") << R"src(    }
    asm volatile("bar.sync %0, 128;" ::"r"(3 + wgi) : "memory");
    // Pooled row j = max over conv rows 2j − 1 (prev; none above the image's top), 2j, 2j + 1 of
    // columns 2q − 1 .. 2q + 1. (A band's tile above its first row writes only prev.)
    const bool out = c.j >= c.r0;
    const bool top = c.j == 0;
    T* yr = y + (c.u / nbd * YH + c.j) * static_cast<long long>(YW * KP);
#pragma unroll
    for (int u = 0; u < PU; ++u) {
      const int i = ct + 128 * u;
      if (PI % 128 == 0 || i < PI) {
        const int q = i >> 3;
        const int v8 = (i & 7) * 8;
        unsigned hm[2][4];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
#pragma unroll
          for (int e = 0; e < 4; ++e) hm[r][e] = neg_inf2<T>();
#pragma unroll
          for (int d = -1; d <= 1; ++d) {
            const int cx = 2 * q + d;
            if (cx >= 0) {
              const uint4 a = *reinterpret_cast<const uint4*>(st + (r * IC + cx) * CTS + v8);
              hm[r][0] = max2<T>(hm[r][0], a.x);
              hm[r][1] = max2<T>(hm[r][1], a.y);
              hm[r][2] = max2<T>(hm[r][2], a.z);
              hm[r][3] = max2<T>(hm[r][3], a.w);
            }
          }
        }
        uint4 pv = make_uint4(neg_inf2<T>(), neg_inf2<T>(), neg_inf2<T>(), neg_inf2<T>());
        if (!top) {
          pv = prev[i];
        }
        unsigned m[4] = {max2<T>(max2<T>(pv.x, hm[0][0]), hm[1][0]), max2<T>(max2<T>(pv.y, hm[0][1]), hm[1][1]),
                         max2<T>(max2<T>(pv.z, hm[0][2]), hm[1][2]), max2<T>(max2<T>(pv.w, hm[0][3]), hm[1][3])};
        prev[i] = make_uint4(hm[1][0], hm[1][1], hm[1][2], hm[1][3]);
        if (out) {
          if constexpr (POST_ACT) {  // the ReLU (ReLU6) after the max
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              m[e] = max2<T>(m[e], 0u);
              if constexpr (POST_HI) {
                m[e] = min2<T>(m[e], pack2<T>(6.0f, 6.0f));
              }
            }
          }
          *reinterpret_cast<uint4*>(yr + q * KP + v8) = make_uint4(m[0], m[1], m[2], m[3]);
        }
      }
    }
    advance(c);
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace stem

template <DType P>
class StemConv final : public generated::PoolingKernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "stem_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && stem::shape_fits(op);
  }
  /// Not claimed: on an H100 (session 57, R2 at batch 256, f16, f32 input) it ran ResNet-18's
  /// stem in 275.6 µs against tile_conv algo 9's 264.0 (the per-op profile; the forward 1,960.0
  /// against 1,959.6, outputs equal to the bit). Offered to measured tuning on sm_90a from
  /// stem::timed_tiles tiles, in both its forms (the caller's input must suit it: prepare()
  /// refuses it otherwise).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return std::nullopt;
  }
  [[nodiscard]] bool timed(const OpDesc& op, int batch) const override { return timeable(op, batch); }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    if (!stem::shape_fits(op) || device_arch() != 90) {
      return {};
    }
    return {Variant{std::string(name()), 0, 0, 1}, Variant{std::string(name()), 1, 0, 1}};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const stem::Input in = input_of(io);
    const stem::Geometry s = stem::geometry(op, in, v.algo);
    const generated::DeviceSms d = generated::device_sms();
    const long long consumers = 2ll * d.sms;
    const int nbd = stem::bands(op.conv.oh / 2, batch, consumers);
    const long long units = static_cast<long long>(batch) * nbd;
    const unsigned grid = static_cast<unsigned>(std::max<long long>(1, std::min<long long>((units + 1) / 2, d.sms)));
    const std::size_t shared = static_cast<std::size_t>(s.shared);
    generated::allow_shared(k, d.device, shared, op.label, "stem_conv");
    STRATA_CHECK(reinterpret_cast<std::uintptr_t>(io.net_input) % 16 == 0,
                 "cuda::Engine: layer '" << op.label << "': stem_conv reads the caller's input by 16-byte "
                                            "copies, and the input buffer is not 16-byte aligned");
    const T* wt = w.weight.template as<const T>();
    const float* bias = w.bias_f32.template as<const float>();
    STRATA_CHECK(io.pooled != nullptr,
                 "cuda::Engine: layer '" << op.label << "': stem_conv writes the pooled map, and none was given");
    T* y = static_cast<T*>(io.pooled);
    const void* raw = io.net_input;
    const float* affine = io.net_input_affine;
    std::ostringstream what;
    what << "strata stem conv (wgmma, 64 output channels as M and two conv rows (" << s.nwg
         << " columns) as N; warp-specialized: a producer warpgroup copying the caller's rows in by "
            "bulk copies and rearranging them space-to-depth into "
         << s.nb << " buffers, two consumers taking turns, each pooling its own bands of rows ("
         << nbd << " an image); bias, act and the 3x3/2 max pool fused; reads the caller's input)";
    return kernel_step(
        what.str(),
        [=](cudaStream_t st) {
          rtc::launch_shared(k, grid, static_cast<unsigned>(stem::threads), shared, st,
                             static_cast<const T*>(nullptr), wt, bias, y, batch, raw, affine, nbd);
        },
        false, true);  // (reads the caller's input: the network has no input step)
  }

 protected:
  [[nodiscard]] int claim_rank() const override { return rank::fallback + 3; }  // (no claim: heuristic() above)

 private:
  [[nodiscard]] static bool timeable(const OpDesc& op, int batch) {
    return stem::shape_fits(op) && device_arch() == 90 &&
           static_cast<long long>(batch) * (op.conv.oh / 2) >= stem::timed_tiles;
  }
  [[nodiscard]] static stem::Input input_of(const OpIo& io) {
    return stem::Input{true, io.net_input_format, io.net_input_hwc, io.net_input_shape};
  }
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v, const OpIo& io) const override {
    STRATA_CHECK(v.fuse == 1 && v.math == 0 && v.algo >= 0 && v.algo <= stem::max_algo,
                 "'" << op.label << "': stem_conv has two forms (fuse 1, math 0; algo 0 over 3 "
                                    "buffers, algo 1 over 4), not " << to_string(v));
    STRATA_CHECK(device_arch() == 90,
                 "'" << op.label << "': stem_conv (wgmma, bulk copies) needs a GPU of compute "
                                    "capability 9.0 (sm_90a), and this device is not one");
    STRATA_CHECK(io.net_input != nullptr,
                 "'" << op.label << "': stem_conv reads the caller's input, and this op is not given it");
    KernelSource ks = this->named(stem::source(op, input_of(io), v.algo));
    ks.arch_specific = true;
    return ks;
  }
};

}  // namespace strata::cuda::tactics
