#pragma once
/// Tactic `plane_conv` (sm_90a): a 16-bit NHWC convolution of stride 1 whose output keeps its
/// input's size (odd kernel, padding (k − 1) / 2) into 64 output slots — ResNet's 3×3 64 → 64
/// convs, with their bias, activation and residual add — as one warpgroup MMA per k-step with
/// the output channels as wgmma's M and the tile's output pixels as its N, both operands read
/// from shared memory by descriptor (no ldmatrix), in a kernel generated for the op.
///
/// The layout (the swapped stem's, tile_conv algo 8, carried to a conv of many channels): a tile
/// is TR output rows of one image at full width; its input patch — TR + KH − 1 rows of IC = W +
/// KW − 1 columns, the padding included as zeros — is held as CP / 8 planes, plane v the
/// patch's pixels in order with channels 8v..8v+7, 16 bytes a pixel. The tile's outputs are
/// numbered in the patch's grid, q = row · IC + column (the KW − 1 columns past W of each row
/// computed and never stored), so that for tap (ky, kx) the B operand of outputs q.. is the
/// patch from pixel q + ky · IC + kx on: 8 consecutive pixels of a plane are one core matrix (no
/// swizzle, K-major), core matrices a plane apart in k (two planes a k-step of 16 channels) and
/// 128 bytes apart in N, and a tap's shift is a change of the start address. The filter is held
/// as core matrices too (stage_filter's layout), read by descriptor. Each of the block's two
/// warpgroups takes NWG of the tile's columns in the patch's grid (the second from column NWG on),
/// at most 256 (wgmma's largest N): half the tile's columns up to its last stored output, (TR − 1)
/// · IC + W, rounded up to 8 — on ResNet's 56×56 maps 2 rows in 120 columns (pipelined) or 4 in
/// 232 (serial).
///
/// Persistent blocks of 8 warps (12 in the warp-specialized form), one an SM. The filter is copied in once a block and each tile's
/// patch by cp.async (zeros outside the map); after a tile's MMAs the accumulators, with the
/// bias (and the activation where no residual follows), are stored transposed (stmatrix .trans)
/// into the buffer the MMAs just read, then written out as 16-byte rows of 8 channels — the
/// residual, where the op has one, read the same way and added in f32 before the activation (the
/// conv's sum rounded to 16 bits first: one rounding more than a fused library conv). Forms (the
/// variant's math): 0, pipelined — three patch buffers and two accumulator sets, tile t + 1's
/// MMAs issued before tile t's outputs are staged and written out (4-row tiles on ResNet's 56×56
/// maps, 212 KB); 1, serial — two buffers, a tile's phases in turn (8-row tiles, 218 KB); 2, the
/// serial form with the residual's rows copied in with the patch; 3, warp-specialized (384
/// threads): a producer warpgroup copies patches into three buffers (four: algo 1) and two
/// consumer warpgroups take alternate tiles of their own, issuing their MMAs in turn, so that one
/// stages and writes out while the other's MMAs run (4-row tiles of 232 columns on ResNet's maps).
/// Measured and claimed (math 3): plane::claimed; docs/cuda_backend.md, "ResNet's 3×3 convs with
/// pixels as wgmma's N".
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

namespace plane {

inline constexpr int threads = 256;  ///< two warpgroups
inline constexpr int max_n = 256;    ///< a warpgroup's GEMM columns: wgmma's largest N
/// ... in the pipelined form, whose two accumulator sets take NWG / 2 registers each: above 128
/// ptxas spills (a 56×56 map from 16 slots at 232 columns: 1,988 bytes, every wgmma serialized).
inline constexpr int pipelined_max_n = 128;
inline constexpr int kp = 64;        ///< output slots: one wgmma M
inline constexpr int stage_pitch = kp + 8;  ///< elements a staged output pixel (144 bytes: 8 rows of stmatrix in 8 bank groups)
/// Shared memory a block may take (the H100's and H200's opt-in).
inline constexpr std::int64_t max_shared = generated::hopper_max_shared;
/// The forms (a variant's math): the pipelined form (0) holds three patch buffers — tiles t (its
/// outputs staged), t + 1 (its MMAs), t + 2 (copied in) —, the serial one (1) two; the serial one
/// with the residual staged (2: ops with a residual only) copies each tile's rows of the residual
/// into its buffer with the patch, so that the write-out reads them from shared memory.
inline constexpr int serial_math = 1;
inline constexpr int staged_math = 2;
/// The warp-specialized form (3): a producer warpgroup copies patches into three buffers (each
/// tile's copy completing on an mbarrier), two consumer warpgroups take alternate tiles of their
/// own, each a whole tile's columns, and issue their MMAs in turn — one warpgroup's MMAs run
/// while the other stages and writes out its last tile (a ping-pong, 384 threads).
inline constexpr int specialized_math = 3;
inline constexpr int last_math = specialized_math;
/// The specialized form's algo: its patch buffers, 3 (algo 0) or 4 (algo 1; smaller tiles, the
/// producer further ahead). The other forms have algo 0 only.
inline constexpr int max_algo = 1;
/// Patch buffers of a form (math) and algo: the pipelined form 3, the serial ones 2, the
/// specialized one 3 + algo.
[[nodiscard]] inline int buffers(int math, int algo = 0) {
  if (math == specialized_math) return 3 + algo;
  return math == 0 ? 3 : 2;
}
[[nodiscard]] inline int block_threads(int math) { return math == specialized_math ? 384 : threads; }
/// Bytes after the buffers in the specialized form: its mbarriers (a full and an empty one a buffer).
inline constexpr std::int64_t barrier_bytes = 64;

/// A tile shape for one op and what it takes.
struct Tile {
  int rw = 0;      ///< output rows a warpgroup
  int tr = 0;      ///< output rows a tile (two warpgroups; one in the specialized form, tr = rw)
  int ic = 0;      ///< patch columns: W + KW − 1
  int pr = 0;      ///< patch rows: TR + KH − 1
  int nwg = 0;     ///< GEMM columns a warpgroup (a multiple of 8)
  int plane = 0;   ///< pixels a plane: the patch, then the slack only unstored columns read (≡ 1 mod 8)
  int tpi = 0;     ///< tiles an image
  std::int64_t buffer = 0;  ///< bytes a patch buffer (its planes, or the staged outputs where more; then the residual's rows, staged_math)
  std::int64_t zoff = 0;    ///< where a buffer's residual rows start (staged_math), bytes
  std::int64_t shared = 0;  ///< bytes: the filter, then the buffers (buffers())
  int nb = 0;      ///< patch buffers
};

[[nodiscard]] inline int ksteps(const ConvGeom& g) { return g.kh * g.kw * g.cp / 16; }
[[nodiscard]] inline std::int64_t filter_bytes(const ConvGeom& g) {
  return std::int64_t{kp} * ksteps(g) * 16 * 2;
}

[[nodiscard]] inline Tile make(const ConvGeom& g, int rw, int math, int algo = 0) {
  Tile t;
  const bool one = math == specialized_math;  // a warpgroup's own tiles
  const int wgs = one ? 1 : 2;
  t.rw = rw;
  t.tr = wgs * rw;
  t.ic = g.w + g.kw - 1;
  t.pr = t.tr + g.kh - 1;
  // The warpgroups' columns, NWG each, cover the tile's outputs up to its last row's last stored
  // column: (TR − 1) · IC + W of them, halved where two warpgroups share the tile, rounded up to
  // 8 (the second warpgroup's start, NWG, falls inside a row where W + KW − 1 does not divide
  // evenly).
  t.nwg = ((((t.tr - 1) * t.ic + g.ow) + wgs - 1) / wgs + 7) / 8 * 8;
  // The last column (wgs·NWG − 1) reads up to pixel wgs·NWG − 1 + (KH − 1)·IC + KW − 1; the stored
  // outputs never read past the patch (row TR − 1, column W − 1 reads pixel PR·IC − 1 at most).
  const int reach = wgs * t.nwg + (g.kh - 1) * t.ic + g.kw - 1;
  const int pixels = std::max(t.pr * t.ic, reach);
  t.plane = (pixels + 6) / 8 * 8 + 1;  // (an odd number of 16-byte units: a pixel's 8 planes in 8 bank groups)
  const std::int64_t planes = std::int64_t{g.cp / 8} * t.plane * 16;
  const std::int64_t staged = std::int64_t{wgs} * t.nwg * stage_pitch * 2;
  t.buffer = (std::max(planes, staged) + 127) / 128 * 128;
  t.zoff = t.buffer;
  if (math == staged_math) {
    t.buffer += (std::int64_t{t.tr} * g.ow * kp * 2 + 127) / 128 * 128;
  }
  t.tpi = (g.oh + t.tr - 1) / t.tr;
  t.nb = buffers(math, algo);
  t.shared = filter_bytes(g) + t.nb * t.buffer + (one ? barrier_bytes : 0);
  return t;
}

/// Whether `op`'s shape is one the kernel computes: a conv of stride 1 and dilation 1 whose map
/// keeps its size (odd kernel of at most 7, "same" padding), one group, input slots in 16s read
/// as stored, 64 output slots, its bias, activation and residual add fused and nothing else.
[[nodiscard]] inline bool shape_fits(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return gemm_conv(op) && !g.s2d && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.kh % 2 == 1 && g.kw % 2 == 1 && g.kh <= 7 && g.kw <= 7 && g.ph == (g.kh - 1) / 2 &&
         g.pw == (g.kw - 1) / 2 && g.oh == g.h && g.ow == g.w && g.kp == kp && g.cp % 16 == 0 &&
         op.in_act.kind == Act::none && !op.pool && !op.gap && !op.gate && !op.softmax &&
         !op.side && !op.expand && !op.squeeze && !op.norm && !op.bottleneck && !op.in_slice &&
         !op.slice && !op.writes_user_output && (!op.has_residual || op.z_offset >= 0);
}

/// The tile of least estimated work an image (GEMM columns, and half a unit a patch pixel copied
/// in), its warpgroup's columns within max_n (within pipelined_max_n for the pipelined form's
/// two accumulator sets) and its shared memory within the device's opt-in; rw = 0 when none fits.
[[nodiscard]] inline Tile choose(const OpDesc& op, int math = 0, int algo = 0) {
  const ConvGeom& g = op.conv;
  const std::int64_t budget = generated::shared_budget(max_shared);
  Tile best;
  double best_cost = std::numeric_limits<double>::max();
  const int wgs = math == specialized_math ? 1 : 2;
  for (int rw = 1; rw <= (g.oh + wgs - 1) / wgs; ++rw) {
    const Tile t = make(g, rw, math, algo);
    if (t.nwg > (math == 0 ? pipelined_max_n : max_n) || t.shared > budget) {
      break;  // (both grow with rw)
    }
    const double cost = static_cast<double>(t.tpi) * ((t.tr / t.rw) * t.nwg + 0.5 * t.pr * t.ic);
    if (cost < best_cost - 1e-9) {
      best = t;
      best_cost = cost;
    }
  }
  return best;
}

[[nodiscard]] inline bool fits(const OpDesc& op) {
  return device_arch() == 90 && shape_fits(op) && choose(op).rw > 0;  // (the serial form's tile fits where this one's does)
}

/// Tiles of a batch.
[[nodiscard]] inline long long tiles(const OpDesc& op, int batch, int math = 0, int algo = 0) {
  return static_cast<long long>(batch) * choose(op, math, algo).tpi;
}

/// Tiles of a batch (the warp-specialized form's, 4-row tiles on ResNet's maps) from which the
/// heuristic runs a conv here — about 15 an SM of the H100 (measured at 3,584: ResNet's 56×56
/// maps at batch 256).
inline constexpr long long claim_tiles = 2048;
/// The form the heuristic claims: the warp-specialized one over three buffers.
inline constexpr int claim_math = specialized_math;
/// Whether the heuristic claims `op` at `batch` (in form claim_math): a conv of at least 3×3 taps
/// on a map of at least 56×56 (the size measured), from claim_tiles tiles, with its residual add
/// or without. On an H100 (session 56, R2 at batch 256, f16, the forward's per-op profile, two
/// calls): ResNet-18's layer1 conv1s (3×3 64 → 64, bias and ReLU) took 122.5-124.1 µs in the
/// warp-specialized form against 141.7-144.8 in the pipelined form (math 0, claimed in session
/// 55) and cuDNN's fused conv's 144.2-145.4; its conv2s (bias, the residual, ReLU) 147.0-151.7
/// with the residual's first half loaded under the MMAs, against cuDNN's 165.5-165.9 (183.2-184.3
/// before that preload). The forward: 1,932-1,941 µs with all four on it, 1,978-1,986 with the
/// conv1s only, 1,999-2,008 with session 55's claim (alternating, one call).
[[nodiscard]] inline bool claimed(const OpDesc& op, int batch) {
  return fits(op) && choose(op, claim_math).rw > 0 && op.conv.kh >= 3 && op.conv.kw >= 3 &&
         op.conv.h >= 56 && op.conv.w >= 56 && tiles(op, batch, claim_math) >= claim_tiles;
}

/// Generated text shared by the forms' kernels (the statements as the GPU-run forms have them).
/// Tile t's patch into buffer b by cp.async, `stride` threads from thread `tid` on: pixel p =
/// row · IC + column of the patch, plane v, 16 bytes each; zeros outside the map.
[[nodiscard]] inline std::string copy_patch(int stride) {
  return R"src(      const int img = static_cast<int>(t / TPI);
      const int y0 = static_cast<int>(t % TPI) * TR - PH;
      const T* base = x + static_cast<long long>(img) * (H * W * CP);
      const unsigned sb = xa + static_cast<unsigned>(b) * static_cast<unsigned>(BUFB);
      for (int i = tid; i < PR * IC * NPL; i += )src" + std::to_string(stride) + R"src() {
        const int v = i % NPL;
        const int p = i / NPL;
        const int rr = p / IC;
        const int yy = y0 + rr;
        const int xx = p - rr * IC - PW;
        const bool ok = static_cast<unsigned>(yy) < static_cast<unsigned>(H) && static_cast<unsigned>(xx) < static_cast<unsigned>(W);
        cp_async16_at(sb + static_cast<unsigned>(v * PLANE + p) * 16u, ok ? base + (yy * W + xx) * CP + v * 8 : x, ok);
      }
)src";
}
/// The filter into shared memory at wa as core matrices by cp.async (`stride` threads, the
/// statements indented by `indent`).
[[nodiscard]] inline std::string copy_filter(int stride, int indent) {
  const std::string i(static_cast<std::size_t>(indent), ' ');
  return i + "for (int i = tid; i < KP * KSTEPS * 2; i += " + std::to_string(stride) + ") {\n" + i +
         "  const int n = i / (KSTEPS * 2);\n" + i + "  const int c = i % (KSTEPS * 2);\n" + i +
         "  cp_async16_at(wa + static_cast<unsigned>(((n >> 3) * KSTEPS * 2 + c) * 64 + (n & 7) * 8) * 2u, w + n * WROW + c * 8, true);\n" +
         i + "}\n";
}
/// The descriptors' constant fields and `issue_gemm(pa, acc)`: a tile's MMAs over the patch at pa
/// into the accumulators acc (an Acc), from the warpgroup's column col0 on (`nt` n-tiles of 8).
[[nodiscard]] inline std::string issue_gemm(int nt) {
  std::ostringstream o;
  o << R"src(  // A: k-steps 256 bytes apart, core matrices 128 bytes apart in k, a channel group's apart in M.
  constexpr unsigned long long DA = (static_cast<unsigned long long>(128 >> 4) << 16) |
                                    (static_cast<unsigned long long>((KSTEPS * 2 * 128) >> 4) << 32);
  // B: core matrices a plane apart in k, 8 pixels (128 bytes) apart in N.
  constexpr unsigned long long DB = (static_cast<unsigned long long>(PLANE) << 16) |
                                    (static_cast<unsigned long long>(128 >> 4) << 32);
  // A tile's MMAs over the patch at pa: per k-step (tap, 16 input slots) one wgmma, A the
  // filter's core matrices, B the two planes of those slots from the tap's pixel offset on;
  // committed as one group, in flight until wait_gemm().
  auto issue_gemm = [&](unsigned pa, Acc& acc) {
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int s = 0; s < KSTEPS; ++s) {
      const int tap = s / CPS;
      const int j = s % CPS;
      const int ky = tap / KW;
      const int kx = tap % KW;
      const unsigned long long da = DA | static_cast<unsigned long long>(((wa + s * 256) & 0x3FFFF) >> 4);
      const unsigned bb = pa + 16u * static_cast<unsigned>(2 * j * PLANE + col0 + ky * IC + kx);
      const unsigned long long db = DB | static_cast<unsigned long long>((bb & 0x3FFFF) >> 4);
      const int sc = s == 0 ? 0 : 1;
      if constexpr (is_same<T, bf16>::value) {
        )src" << generated::wgmma_ss_call(nt, "bf16.bf16", "acc") << R"src(      } else {
        )src" << generated::wgmma_ss_call(nt, "f16.f16", "acc") << R"src(      }
    }
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
  };
)src";
  return o.str();
}

/// `stage_out(pa, acc)`: a tile's accumulators, with the bias (and the activation where no
/// residual follows), stored transposed into the buffer at pa (its MMAs done with it).
[[nodiscard]] inline std::string stage_out() {
  return std::string(R"src(  // Tile t's accumulators, with the bias (and the activation where no residual follows), stored
  // into the buffer at pa (its MMAs done with it).
  auto stage_out = [&](unsigned pa, const Acc& acc) {
    // (generated::stmatrix_trans_columns: a column — output pixel in the patch's grid — a row)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int c0 = 16 * wr + 8 * h;
      const int k = c0 + (lane >> 2);
      auto val = [&](float a) { return K == KP || k < K ? (HAS_Z ? a + bv[h] : activate(act, a + bv[h])) : 0.0f; };
)src") + generated::stmatrix_trans_columns("pa") + R"src(    }
  };
)src";
}

/// The body of the warp-specialized form's kernel (math 3), after source()'s constants: 384
/// threads; warpgroup 0 the producer, 1 and 2 the consumers of alternate tiles (`nt` n-tiles of
/// 8 columns a tile).
inline void specialized_body(std::ostringstream& o, int nt) {
  o << R"src(  constexpr int NPL = CP / 8;   // input planes
  constexpr int CPS = CP / 16;  // k-steps a tap
  constexpr int WROW = KH * KW * CP;  // a filter row (output channel): taps × input slots
  static_assert(KP == 64 && NWG % 8 == 0 && NWG <= 256 && TR == RW, "one wgmma M of 64 channels, N <= 256, a warpgroup's own tiles");
  extern __shared__ __align__(128) unsigned char smem[];
  const unsigned wa = shared_address(smem);  // the filter as core matrices (stage_filter's layout)
  const unsigned xa = wa + static_cast<unsigned>(KP * KSTEPS * 16 * 2);  // NB buffers of BUFB bytes
  const unsigned full0 = xa + static_cast<unsigned>(NB * BUFB);  // buffer b's patch landed: full0 + 8b
  const unsigned empty0 = full0 + 8u * NB;                       // buffer b free again: empty0 + 8b
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int role = warp >> 2;  // 0: the producer; 1, 2: the consumers
  const long long total = static_cast<long long>(batch) * TPI;
  // This block's tiles j = 0, 1, ...: tile blockIdx.x + j · gridDim.x, in buffer j % NB, taken by
  // consumer j % 2.
  const int count = static_cast<long long>(blockIdx.x) < total
                        ? static_cast<int>((total - 1 - static_cast<long long>(blockIdx.x)) / gridDim.x) + 1
                        : 0;
  if (tid == 0) {
)src" << generated::init_buffer_barriers() << R"src(  }
  __syncthreads();
  // Waits for the phase of parity `parity` of the mbarrier at `bar` to complete.
)src" << generated::wait_phase_lambda() << R"src(  if (role == 0) {
    // The producer: the filter with the first patch, then tile j's patch (zeros outside the map)
    // into buffer j % NB once the consumer of tile j − NB has freed it; each thread's copies of a
    // tile counted on the buffer's full barrier as they land (cp.async.mbarrier.arrive .noinc:
    // the barrier expects the 128 arrivals). Its registers given to the consumers.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 56;" ::: "memory");
)src" << copy_filter(128, 4) << R"src(    for (int j = 0; j < count; ++j) {
      const int b = j % NB;
      if (j >= NB) {
        wait_phase(empty0 + 8u * b, static_cast<unsigned>((j / NB - 1) & 1));
      }
      const long long t = static_cast<long long>(blockIdx.x) + static_cast<long long>(j) * gridDim.x;
)src" << copy_patch(128) << R"src(      asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(full0 + 8u * b) : "memory");
    }
    asm volatile("cp.async.wait_all;" ::: "memory");
    return;
  }
  // A consumer: tiles j ≡ wgi (mod 2), the whole tile's NWG columns its GEMM's N.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 224;" ::: "memory");
  const int wgi = role - 1;
  const int wr = warp & 3;          // this warp's channels: 16 · wr on
  const int ct = tid - 128 * role;  // this thread within its warpgroup
  constexpr int col0 = 0;
  float bv[2];  // this lane's two channels' biases (halves h: 16·wr + 8h + lane/4)
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int k = 16 * wr + 8 * h + (lane >> 2);
    bv[h] = bias != nullptr && k < K ? bias[k] : 0.0f;
  }
  using Acc = float[NWG / 8][4];
  Acc acc;
#pragma unroll
  for (int n = 0; n < NWG / 8; ++n) {
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
  }
)src" << issue_gemm(nt) << R"src()src" << stage_out() << R"src(  // Tile t's rows out of the buffer at pa, 8 channels (16 bytes) a thread and step (128 threads
  // a step: this thread's channels 8v..8v+7 in each), the residual — its rows loaded into zr
  // while the tile's MMAs ran — added first.
  constexpr int WO = TR * OW * (KP / 8);  // 16-byte rows out
  constexpr int WU = (WO + 127) / 128;     // a thread's steps
  const int v = ct % (KP / 8);
  auto place = [&](long long t, int u, long long& off, int& so) {
    const int img = static_cast<int>(t / TPI);
    const int r0 = static_cast<int>(t % TPI) * TR;
    const int i = ct + u * 128;
    const int p = i / (KP / 8);
    const int r = p / OW;
    const int c = p - r * OW;
    off = (static_cast<long long>(img) * OH + r0 + r) * (OW * KP) + c * KP + v * 8;
    so = (r * IC + c) * CTS + v * 8;
    return i < WO && r0 + r < OH;
  };
  // (the residual in two halves of ZH steps: the first loaded under the MMAs, the second after
  // the first is written out — beside the accumulators, the whole would not fit in 168 registers)
  constexpr int ZH = (WU + 1) / 2;
  uint4 zr[HAS_Z ? ZH : 1];
  auto load_z = [&](long long t, int u0) {
    if constexpr (HAS_Z) {
#pragma unroll
      for (int u = 0; u < ZH; ++u) {
        long long off;
        int so;
        if (u0 + u < WU && place(t, u0 + u, off, so)) {
          zr[u] = __ldg(reinterpret_cast<const uint4*>(z + off));
        }
      }
    }
  };
  auto write_out = [&](long long t, unsigned pa) {
    const T* st = reinterpret_cast<const T*>(smem + (pa - wa));
#pragma unroll
    for (int u = 0; u < WU; ++u) {
      if (HAS_Z && u == ZH) {
        load_z(t, ZH);
      }
      long long off;
      int so;
      if (place(t, u, off, so)) {
        if constexpr (HAS_Z) {
          float a[8], zz[8];
          load8(st + so, a);
          load8(reinterpret_cast<const T*>(&zr[u % ZH]), zz);
#pragma unroll
          for (int e = 0; e < 8; ++e) a[e] = K == KP || v * 8 + e < K ? activate(act, a[e] + zz[e]) : 0.0f;
          store8(y + off, a);
        } else {
          *reinterpret_cast<uint4*>(y + off) = *reinterpret_cast<const uint4*>(st + so);
        }
      }
    }
  };
  for (int j = wgi; j < count; j += 2) {
    const int b = j % NB;
    const long long t = static_cast<long long>(blockIdx.x) + static_cast<long long>(j) * gridDim.x;
    const unsigned pa = xa + static_cast<unsigned>(b) * static_cast<unsigned>(BUFB);
    wait_phase(full0 + 8u * b, static_cast<unsigned>((j / NB) & 1));  // the patch (and the filter) landed
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");      // ... for the MMAs' reads
    if (j > 0) {  // this consumer's turn: the other's MMAs of tile j − 1 issued (named barrier 1 + wgi)
      asm volatile("bar.sync %0, 256;" ::"r"(1 + wgi) : "memory");
    }
    issue_gemm(pa, acc);
    if (j + 1 < count) {  // the other consumer's turn for tile j + 1
      asm volatile("bar.arrive %0, 256;" ::"r"(2 - wgi) : "memory");
    }
    load_z(t, 0);  // (in flight under the MMAs)
    asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
    for (int n = 0; n < NWG / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(acc[n][i])::"memory");
    }
    asm volatile("bar.sync %0, 128;" ::"r"(3 + wgi) : "memory");  // the warpgroup's MMAs done with buffer b
    stage_out(pa, acc);
    asm volatile("bar.sync %0, 128;" ::"r"(3 + wgi) : "memory");
    write_out(t, pa);
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(empty0 + 8u * b) : "memory");  // buffer b free
  }
}
}  // namespace strata_rtc
)src";
}

/// The kernel's source for `op` (kernel `strata_rtc::plane_conv<T>`) in form `math`.
[[nodiscard]] inline std::string source(const OpDesc& op, int math = 0, int algo = 0) {
  STRATA_CHECK(math >= 0 && math <= last_math && (math != staged_math || op.has_residual) &&
                   algo >= 0 && (algo == 0 || (math == specialized_math && algo <= max_algo)),
               "plane_conv: form math " << math << ", algo " << algo << " is not one of its forms for layer '" << op.label
                                        << "' (0 pipelined, 1 serial, 2 serial with the residual staged: "
                                           "ops with a residual only, 3 warp-specialized over 3 buffers, or 4 with algo 1)");
  const bool pipelined = math == 0;
  STRATA_CHECK(shape_fits(op) && choose(op, math, algo).rw > 0,
               "plane_conv: layer '" << op.label
                                     << "' is not a stride-1, size-keeping conv of 64 output slots "
                                        "from input slots in 16s whose tile fits this GPU's shared memory");
  const ConvGeom& g = op.conv;
  const Tile t = choose(op, math, algo);
  const int nt = t.nwg / 8;
  std::ostringstream o;
  generated::open_kernel(o, op, false, "plane_conv", "int batch, const T* __restrict__ z", 1, "",
                         block_threads(math));
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  constant("RW", t.rw);
  constant("TR", t.tr);
  constant("IC", t.ic);
  constant("PR", t.pr);
  constant("NWG", t.nwg);
  constant("PLANE", t.plane);
  constant("TPI", t.tpi);
  constant("BUFB", static_cast<long long>(t.buffer));
  constant("KSTEPS", ksteps(g));
  constant("CTS", stage_pitch);
  o << "  constexpr bool HAS_Z = " << (op.has_residual ? "true" : "false") << ";\n"
    << "  constexpr bool PIPELINED = " << (pipelined ? "true" : "false") << ";\n"
    << "  constexpr bool Z_STAGED = " << (math == staged_math ? "true" : "false") << ";\n";
  constant("ZOFF", static_cast<long long>(t.zoff));
  if (math == specialized_math) {
    o << "  constexpr int NB = " << t.nb << ";  // patch buffers\n";
    specialized_body(o, nt);
    return o.str();
  }
  o << R"src(  constexpr int NPL = CP / 8;   // input planes
  constexpr int CPS = CP / 16;  // k-steps a tap
  constexpr int WROW = KH * KW * CP;  // a filter row (output channel): taps × input slots
  static_assert(KP == 64 && NWG % 8 == 0 && NWG <= 256, "one wgmma M of 64 channels, N <= 256");
  extern __shared__ __align__(128) unsigned char smem[];
  T* ws = reinterpret_cast<T*>(smem);  // the filter as core matrices (stage_filter)
  const unsigned wa = shared_address(ws);
  const unsigned xa = wa + static_cast<unsigned>(KP * KSTEPS * 16 * 2);  // `buffers` buffers of BUFB bytes
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int wgi = warp >> 2;  // this warpgroup's columns: col0 = wgi · NWG on
  const int wr = warp & 3;    // this warp's channels: 16 · wr on
  const int col0 = wgi * NWG;
  const long long total = static_cast<long long>(batch) * TPI;
  // The copy of tile t's patch into buffer b: pixel p = row · IC + column of the patch, plane v,
  // 16 bytes each; zeros outside the map. One cp.async group (empty past the last tile).
  auto load_tile = [&](long long t, int b) {
    if (t < total) {
)src" << copy_patch(256) << R"src(      if constexpr (Z_STAGED) {  // the tile's rows of the residual, 16 bytes each, in order
        const int r0 = static_cast<int>(t % TPI) * TR;
        const T* zb = z + (static_cast<long long>(img) * OH + r0) * (OW * KP);
        for (int i = tid; i < TR * OW * (KP / 8); i += 256) {
          const bool ok = r0 + i / (OW * (KP / 8)) < OH;
          cp_async16_at(sb + static_cast<unsigned>(ZOFF) + static_cast<unsigned>(i) * 16u, ok ? zb + i * 8 : z, ok);
        }
      }
    }
    cp_async_commit();
  };
  // The filter as core matrices (8 channels × 8 k-slots, 128 contiguous bytes; a channel group's
  // KSTEPS · 2 of them in k order, then the next group's), by cp.async with the first patch.
)src" << copy_filter(256, 2) << R"src(  load_tile(blockIdx.x, 0);
  load_tile(static_cast<long long>(blockIdx.x) + gridDim.x, 1);
  // This lane's two channels (halves h = 0, 1: 16·wr + 8h + lane/4) and their biases.
  float bv[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int k = 16 * wr + 8 * h + (lane >> 2);
    bv[h] = bias != nullptr && k < K ? bias[k] : 0.0f;
  }
  // The accumulators: two sets in the pipelined form (tile t's staged out while tile t + 1's
  // MMAs run into the other), one in the serial form.
  using Acc = float[NWG / 8][4];
  Acc acc0, acc1;
#pragma unroll
  for (int n = 0; n < NWG / 8; ++n) {
#pragma unroll
    for (int i = 0; i < 4; ++i) acc0[n][i] = acc1[n][i] = 0.0f;
  }
)src" << issue_gemm(nt) << R"src(  // The MMAs into acc done (`pending`: the group issued after them may still run).
  auto wait_gemm = [&](Acc& acc, bool pending) {
    if (pending) {
      asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
    } else {
      asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
    }
#pragma unroll
    for (int n = 0; n < NWG / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) asm volatile("" : "+f"(acc[n][i])::"memory");
    }
  };
  auto buffer = [&](int b) { return xa + static_cast<unsigned>(b) * static_cast<unsigned>(BUFB); };
)src" << stage_out() << R"src(  // Tile t's rows out of the buffer at pa: 8 channels (16 bytes) a thread and step, the residual
  // (read WB steps at a time, its loads in flight together) added first.
  auto write_out = [&](long long t, unsigned pa) {
    {
      const int img = static_cast<int>(t / TPI);
      const int r0 = static_cast<int>(t % TPI) * TR;
      const T* st = reinterpret_cast<const T*>(smem + (pa - wa));
      constexpr int WO = TR * OW * (KP / 8);     // 16-byte rows out
      constexpr int WU = (WO + 255) / 256;        // a thread's steps
      constexpr int WB = 4;
      auto place = [&](int u, long long& off, int& so) {
        const int i = tid + u * 256;
        const int v = i % (KP / 8);
        const int p = i / (KP / 8);
        const int r = p / OW;
        const int c = p - r * OW;
        off = (static_cast<long long>(img) * OH + r0 + r) * (OW * KP) + c * KP + v * 8;
        so = (r * IC + c) * CTS + v * 8;
        return i < WO && r0 + r < OH;
      };
#pragma unroll
      for (int u0 = 0; u0 < WU; u0 += WB) {
        uint4 zr[WB];
        if constexpr (HAS_Z && !Z_STAGED) {
#pragma unroll
          for (int u = 0; u < WB; ++u) {
            long long off;
            int so;
            if (u0 + u < WU && place(u0 + u, off, so)) {
              zr[u] = __ldg(reinterpret_cast<const uint4*>(z + off));
            }
          }
        }
#pragma unroll
        for (int u = 0; u < WB; ++u) {
          long long off;
          int so;
          if (u0 + u < WU && place(u0 + u, off, so)) {
            if constexpr (HAS_Z) {
              float a[8], zz[8];
              load8(st + so, a);
              if constexpr (Z_STAGED) {
                load8(st + ZOFF / 2 + (tid + (u0 + u) * 256) * 8, zz);
              } else {
                load8(reinterpret_cast<const T*>(&zr[u]), zz);
              }
              const int v = (tid + (u0 + u) * 256) % (KP / 8);
#pragma unroll
              for (int e = 0; e < 8; ++e) a[e] = K == KP || v * 8 + e < K ? activate(act, a[e] + zz[e]) : 0.0f;
              store8(y + off, a);
            } else {
              *reinterpret_cast<uint4*>(y + off) = *reinterpret_cast<const uint4*>(st + so);
            }
          }
        }
      }
    }
  };
  long long t = blockIdx.x;
  if constexpr (PIPELINED) {
    // Over three buffers and two accumulator sets: tile t + 1's MMAs are issued before tile t's
    // outputs are staged and written out, and the patch of tile t + 2 is copied in meanwhile.
    if (t < total) {
      cp_async_wait<1>();  // the filter and the first tile's patch in; the second's may be in flight
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
      __syncthreads();
      issue_gemm(xa, acc0);
    }
    // A tile with a next one: the next tile's MMAs issued, then this tile's waited for, staged
    // and written out. The last tile: its MMAs waited for, staged and written out. (Each path
    // waits on a fixed count of MMA groups: ptxas serializes every wgmma otherwise.)
    auto step = [&](long long t, int b, Acc& cur, Acc& nxt) {
      const int b1 = b == 2 ? 0 : b + 1;    // tile t + 1's buffer
      const int b2 = b1 == 2 ? 0 : b1 + 1;  // tile t + 2's: tile t − 1's, its outputs written out
      cp_async_wait<0>();  // tile t + 1's patch in
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
      __syncthreads();  // ... for every thread; tile t − 1's outputs out of buffer b2
      issue_gemm(buffer(b1), nxt);
      load_tile(t + 2ll * gridDim.x, b2);
      wait_gemm(cur, true);
      __syncthreads();  // both warpgroups' MMAs of tile t done with buffer b: it takes the staged outputs
      stage_out(buffer(b), cur);
      __syncthreads();
      write_out(t, buffer(b));
    };
    auto last = [&](long long t, int b, Acc& cur) {
      wait_gemm(cur, false);
      __syncthreads();
      stage_out(buffer(b), cur);
      __syncthreads();
      write_out(t, buffer(b));
    };
    // Two tiles a loop turn, so that each accumulator set is named statically. (Written as one
    // lambda called twice, ptxas lays the loop out differently: the GPU-run machine code is this.)
    for (int b = 0; t < total;) {
      if (t + gridDim.x >= total) {
        last(t, b, acc0);
        break;
      }
      step(t, b, acc0, acc1);
      t += gridDim.x;
      b = b == 2 ? 0 : b + 1;
      if (t + gridDim.x >= total) {
        last(t, b, acc1);
        break;
      }
      step(t, b, acc1, acc0);
      t += gridDim.x;
      b = b == 2 ? 0 : b + 1;
    }
  } else {
    // Over two buffers, the phases of a tile in turn: its MMAs, its outputs staged and written
    // out, then the patch of the tile after next copied into its buffer (the next tile's copied
    // in meanwhile).
    for (int b = 0; t < total; t += gridDim.x, b ^= 1) {
      cp_async_wait<1>();  // this tile's patch in (the filter with the first); the next may be in flight
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
      __syncthreads();
      issue_gemm(buffer(b), acc0);
      wait_gemm(acc0, false);
      __syncthreads();  // both warpgroups' MMAs done with buffer b: it takes the staged outputs
      stage_out(buffer(b), acc0);
      __syncthreads();
      write_out(t, buffer(b));
      __syncthreads();  // buffer b free
      load_tile(t + 2ll * gridDim.x, b);
    }
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");  // (none in flight: the last tile issues none)
  cp_async_wait<0>();
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace plane

template <DType P>
class PlaneConv final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "plane_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && plane::fits(op);
  }
  /// Claimed (the warp-specialized form, ahead of the libraries) where plane::claimed says;
  /// offered to measured tuning in its pipelined, serial and warp-specialized forms wherever they
  /// run. (The serial form with the residual staged, math 2, and the warp-specialized form over
  /// four buffers, algo 1, run only forced.)
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    if (!plane::claimed(op, batch)) {
      return std::nullopt;
    }
    Claim c;
    c.variant.tactic = std::string(name());  // (in steps: g++ 12 warns of a maybe-uninitialized string otherwise)
    c.variant.math = plane::claim_math;
    c.rank = rank::tailored;
    return c;
  }
  /// Timed by measured tuning where the batch gives the pipelined form 4 tiles an SM of the H100
  /// or more (a block's tiles pipeline against each other; at a tile or two an SM the filter's
  /// copy and the pipeline's fill are most of the time).
  [[nodiscard]] bool timed(const OpDesc& op, int batch) const override {
    return plane::tiles(op, batch) >= 512;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    if (!plane::fits(op)) {
      return {};
    }
    std::vector<Variant> v{Variant{std::string(name())}, Variant{std::string(name()), 0, plane::serial_math}};
    if (plane::choose(op, plane::specialized_math).rw > 0) {
      v.push_back(Variant{std::string(name()), 0, plane::specialized_math});
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const bool pipelined = v.math == 0;
    const plane::Tile t = plane::choose(op, v.math, v.algo);
    const generated::DeviceSms d = generated::device_sms();
    const long long tiles = static_cast<long long>(batch) * t.tpi;
    const unsigned grid = static_cast<unsigned>(std::max<long long>(1, std::min<long long>(tiles, d.sms)));
    const std::size_t shared = static_cast<std::size_t>(t.shared);
    generated::allow_shared(k, d.device, shared, op.label, "plane_conv");
    STRATA_CHECK(!op.has_residual || io.z != nullptr,
                 "cuda::Engine: layer '" << op.label << "': plane_conv was given no residual to add");
    const T* x = static_cast<const T*>(io.x);
    const T* wt = w.weight.template as<const T>();
    const float* bias = w.bias_f32.template as<const float>();
    const T* z = op.has_residual ? static_cast<const T*>(io.z) : nullptr;
    T* y = static_cast<T*>(io.y);
    std::ostringstream what;
    what << "strata plane conv (wgmma, output channels as M and " << t.nwg
         << " output pixels a warpgroup as N, both from shared memory by descriptor; tiles of "
         << t.tr << " rows, the input patch as " << op.conv.cp / 8 << " planes of 8 channels, "
         << (pipelined ? std::string("pipelined over 3 buffers")
             : v.math == plane::specialized_math
                 ? "warp-specialized: a producer warpgroup copying into " + std::to_string(t.nb) +
                       " buffers, two consumers taking turns"
                 : std::string("the phases in turn over 2 buffers"))
         << (v.math == plane::staged_math ? ", the residual's rows copied in with the patch" : "") << "; bias"
         << (op.has_residual ? ", add" : "")
         << ", act fused; shapes compiled in)";
    return kernel_step(what.str(), [=](cudaStream_t s) {
      rtc::launch_shared(k, grid, static_cast<unsigned>(plane::block_threads(v.math)), shared, s, x, wt, bias, y, batch, z);
    });
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo&) const override {
    STRATA_CHECK(v.math >= 0 && v.math <= plane::last_math && v.fuse == 0 &&
                     (v.math != plane::staged_math || op.has_residual) &&
                     (v.algo == 0 || (v.math == plane::specialized_math && v.algo > 0 && v.algo <= plane::max_algo)),
                 "'" << op.label << "': plane_conv has four forms (algo 0, fuse 0; math 0 pipelined, "
                                    "math 1 serial, math 2 serial with the residual staged — for a "
                                    "conv with a residual —, math 3 warp-specialized over 3 buffers, "
                                    "or algo 1 over 4), not "
                     << to_string(v));
    STRATA_CHECK(device_arch() == 90,
                 "'" << op.label << "': plane_conv (wgmma) needs a GPU of compute capability 9.0 "
                                    "(sm_90a), and this device is not one");
    KernelSource ks = this->named(plane::source(op, v.math, v.algo));
    ks.arch_specific = true;
    return ks;
  }
};

}  // namespace strata::cuda::tactics
