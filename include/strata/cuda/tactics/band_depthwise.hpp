#pragma once
/// Tactic `depthwise_band`: a depthwise conv (3×3, 5×5, 7×7; 16-bit NHWC, dilation 1, stride 1
/// or 2) as one kernel generated for the op (every shape a literal, the activations on load and
/// in the epilogue compiled in). On an H200 it won all nine of EfficientNet-B0's 5×5 layers at
/// batch 256 (1.3-3.0x cuDNN with its activation passes) and at batch 1 (session 23), and every
/// 3×3 one of MobileNetV2 and EfficientNet-B0 at batch 256 (1.3-2.2x the channel-pair and strip
/// kernels, session 24). A block computes a band of output rows × columns for a chunk of channel
/// pairs: it stages the input patch the band reads in shared memory once —
/// the producer's deferred activation applied to each value once, as the unfused path would
/// store it — then each thread computes one channel pair (two channels as a 4-byte pair) of R
/// output rows × CW output columns: for each input row its strip reads it loads that row's
/// window of (CW − 1)·S + K pairs from shared memory into registers (as f32) and adds it into
/// every output row whose taps cover it; the pair's K·K filters and bias sit in registers.
///
/// Algo 1 (math M: M images a block; correct on an H200 in session 27, not yet timed; forceable only):
/// the chunk's filters — contiguous in memory — staged through shared memory by coalesced loads
/// and kept in registers for M images, whose patches the block stages and convolves in turn; the
/// same sums in the same order as algo 0. For small maps: on EfficientNet-B0's 7×7 stage a block
/// computes 49 pixels × 64 channels, and algo 0's 50 strided filter loads a thread (a warp's
/// load touching 32 lines) cost about as much as the convolution (features.6.1 at batch 256: 110
/// µs against a floor near 15).
///
/// Algos 3 and 4 (session 66): algo 0's and algo 2's kernels on the whole-map plan (whole_plan): a
/// block every output of its image for fewer channel pairs where the map fits one block of 256
/// threads — the 14×14 maps —, so that no input row is staged twice; claimed at batch 32 and up
/// (whole_claimed): EfficientNet-B0's 5.1/5.2 246.5 → 224.5 µs at batch 256 on an H100.
///
/// Why: EfficientNet-B0's nine 5×5 depthwise convs take a third of its time at batch 256 on an
/// H200 (2,525 of 7,690 µs, session 23), run as cuDNN's conv between two activation passes; the
/// kernels that read their window straight from memory (the strip and channel-pair kernels, fast
/// at 3×3) apply the producer's SiLU to each input value once per tap row and column that reads
/// it at 5×5 — about ten times — and lost to cuDNN there (session 22).
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
#include "strata/cuda/resources.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"

namespace strata::cuda::tactics {

namespace band {

/// Output rows and columns a thread computes.
inline constexpr int rows = 2;
inline constexpr int cols = 4;
/// Threads a block at most, and its shared memory (the patch) at most: within the default
/// limit, so that no opt-in is needed and several blocks share an SM.
inline constexpr int max_threads = 256;
inline constexpr std::int64_t max_shared = 48 << 10;

/// A block's shape for one op: pb channel pairs × strips of `rows` output rows × groups of
/// `cols` output columns, and what it stages.
struct Plan {
  int pb = 0;       ///< channel pairs a block (4, 8, 16 or 32: a divisor of the pairs)
  int strips = 0;   ///< row strips a block
  int groups = 0;   ///< column groups a block
  int th = 0, tw = 0;          ///< output rows × columns a block
  int rows_in = 0, cols_in = 0;  ///< the patch's input rows × columns
  int pitch = 0;    ///< 4-byte words a patch row (cols_in · pb, padded against bank conflicts)
  int tiles_y = 0, tiles_x = 0, chunks = 0;
  std::int64_t shared = 0;  ///< bytes of the patch
  [[nodiscard]] int threads() const { return pb * strips * groups; }
};

/// The bank conflicts of a warp's reads of one patch word each (its threads: pairs fastest,
/// then strips, then column groups) at patch pitch `pitch`: the most threads of a warp whose
/// words fall in one bank (1 = none).
[[nodiscard]] inline int conflicts(int pb, int strips, int s, int pitch) {
  int worst = 1;
  int count[32] = {};
  for (int t = 0; t < 32; ++t) {
    const int p = t % pb;
    const int g = t / pb;
    const int st = g % strips;
    const int cg = g / strips;
    const int word = st * rows * s * pitch + cg * cols * s * pb + p;
    worst = std::max(worst, ++count[word % 32]);
  }
  return worst;
}

/// The patch's pitch (a multiple of 4 words: 16-byte stores) with the fewest bank conflicts, its
/// input rows and columns, and its bytes, for plan `p`'s pb, strips and groups.
inline void patch_shape(const ConvGeom& g, Plan& p) {
  p.th = p.strips * rows;
  p.tw = p.groups * cols;
  p.rows_in = (p.th - 1) * g.sh + g.kh;
  p.cols_in = (p.tw - 1) * g.sw + g.kw;
  int best = -1;
  int best_c = 1 << 30;
  for (int pad = 0; pad < 32; pad += 4) {
    const int pitch = p.cols_in * p.pb + pad;
    const int c = conflicts(p.pb, p.strips, g.sh, pitch);
    if (c < best_c) {
      best_c = c;
      best = pitch;
    }
  }
  p.pitch = best;
  p.shared = std::int64_t{p.rows_in} * p.pitch * 4;
}

/// The whole-map block shape for `op` (algos 3 and 4): a block computes every output of its
/// image for pb channel pairs — strips and column groups across the whole map, the largest pb
/// (a divisor of the pairs) that leaves them within 256 threads and the patch within 48 KiB —
/// so that no input row is staged (and its producer's activation applied) by two bands. pb = 0
/// where no pb does.
[[nodiscard]] inline Plan whole_plan(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  Plan p;
  const int pairs = g.cp / 2;
  for (const int d : {32, 16, 8, 4}) {
    if (pairs % d != 0) {
      continue;
    }
    Plan q;
    q.pb = d;
    q.strips = (g.oh + rows - 1) / rows;
    q.groups = (g.ow + cols - 1) / cols;
    if (q.threads() > max_threads) {
      continue;
    }
    patch_shape(g, q);
    if (q.shared > max_shared) {
      continue;
    }
    q.tiles_y = 1;
    q.tiles_x = 1;
    q.chunks = pairs / q.pb;
    return q;
  }
  return p;
}

/// The block shape for `op` (pb = 0 where none fits); with `whole`, the whole-map one (whole_plan).
[[nodiscard]] inline Plan plan(const OpDesc& op, bool whole = false) {
  if (whole) {
    return whole_plan(op);
  }
  const ConvGeom& g = op.conv;
  Plan p;
  const int pairs = g.cp / 2;
  for (const int d : {32, 16, 8, 4}) {
    if (pairs % d == 0) {
      p.pb = d;
      break;
    }
  }
  if (p.pb == 0) {
    return p;
  }
  // Column groups across the map up to what leaves room for 4 strips (a band of 8 rows: a
  // band's input rows past its own, (K − S) of them, are staged by the next band too).
  p.groups = std::min((g.ow + cols - 1) / cols, std::max(1, max_threads / (p.pb * 4)));
  p.strips = std::max(1, std::min((g.oh + rows - 1) / rows, max_threads / (p.pb * p.groups)));
  for (;;) {
    patch_shape(g, p);
    if (p.shared <= max_shared) {
      break;
    }
    if (p.strips > 1) {
      p.strips = (p.strips + 1) / 2;
    } else if (p.groups > 1) {
      p.groups = (p.groups + 1) / 2;
    } else {
      p.pb = 0;  // (not for any map a depthwise conv of these taps has)
      return p;
    }
  }
  p.tiles_y = (g.oh + p.th - 1) / p.th;
  p.tiles_x = (g.ow + p.tw - 1) / p.tw;
  p.chunks = pairs / p.pb;
  return p;
}

/// Whether the kernel runs `op`: a depthwise conv Strata's depthwise kernels take
/// (depthwise_runs: dilation 1 here), its output's slots those of its input.
[[nodiscard]] inline bool fits(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return depthwise_runs(op) && g.dh == 1 && g.dw == 1 && g.cp == g.kp && g.cp % 8 == 0 &&
         plan(op).pb > 0;
}

/// Whether the tactic offers the kernel to measured tuning for `op`: every op it fits (3×3, 5×5
/// and 7×7 taps, all GPU-tested; 7×7 at 256 threads takes 127 registers for sm_90, no spills).
[[nodiscard]] inline bool offered(const OpDesc& op) { return fits(op); }

/// Whether the heuristic takes `op`: 5×5 at every batch (session 23, H200: it won all nine of
/// EfficientNet-B0's 5×5 layers at batch 256 and at batch 1); 3×3 at every batch with none, ReLU,
/// ReLU6 or SiLU on load (session 24, H200: every 3×3 forced onto it at batch 256, it beat the
/// channel-pair and strip kernels on all 17 of MobileNetV2's, 1.3-1.9x, and all 7 of
/// EfficientNet-B0's, 1.7-2.2x — those apply the activation on load to a value up to 4.5 times;
/// and measured tuning's trials at batch 1 picked it on every distinct 3×3 and 5×5 layer of both,
/// 3.2-6.3 µs against the block-per-tile kernel's 5.5-17.9); 7×7 and other activations on load
/// where measured tuning picks it.
[[nodiscard]] inline bool claimed(const OpDesc& op) {
  if (!offered(op)) {
    return false;
  }
  const ConvGeom& g = op.conv;
  const Act a = op.in_act.kind;
  const bool measured = a == Act::none || a == Act::relu || a == Act::clip || a == Act::silu;
  return g.kh == 5 || (g.kh == 3 && measured);
}

/// Pieces of the kernel's source (band::source), shared by its forms.
namespace text {
/// The constants derived and the shared patch.
inline constexpr const char* declarations = R"src(  constexpr int V = PB / 4;                // 16-byte vectors of a pixel's pairs
  constexpr int NR = (R - 1) * S + KS;       // input rows a strip reads
  constexpr int NC = (CW - 1) * S + KS;      // input columns a thread's window holds
  constexpr int ITEMS = ROWS_IN * COLS_IN * V;
  extern __shared__ __align__(16) unsigned xs[];  // [ROWS_IN][PITCH] pairs
)src";
/// The block's channel chunk, tile and image (algo 0: an image a block).
inline constexpr const char* decode = R"src(  long long b = blockIdx.x;
  const int chunk = static_cast<int>(b % CHUNKS);
  b /= CHUNKS;
  const int tx = static_cast<int>(b % TILES_X);
  b /= TILES_X;
  const int ty = static_cast<int>(b % TILES_Y);
  const long long img = b / TILES_Y;
  if (img >= batch) {
    return;
  }
)src";
/// The block's channel chunk, tile and first image (algos 1 and 2: IMGS images a block), before
/// the check that it has one.
inline constexpr const char* decode_images = R"src(  long long b = blockIdx.x;
  const int chunk = static_cast<int>(b % CHUNKS);
  b /= CHUNKS;
  const int tx = static_cast<int>(b % TILES_X);
  b /= TILES_X;
  const int ty = static_cast<int>(b % TILES_Y);
  const long long img0 = b / TILES_Y * IMGS;
)src";
/// Algo 1, under a programmatic dependent launch: the wait for the kernel before (whose output
/// the patch is), after the filters are staged, before the patch.
inline constexpr const char* wait = "  pdl_wait();\n";
/// The block's first channel.
inline constexpr const char* first_channel = R"src(  const int c0 = chunk * 2 * PB;  // the block's first channel
)src";
/// The tile's first output and input pixels; the producer's activation as staged.
inline constexpr const char* geometry = R"src(  const int oy0 = ty * TH;
  const int ox0 = tx * TW;
  const int iy0 = oy0 * S - PH;
  const int ix0 = ox0 * S - PW;
  // The patch, 16 bytes a copy, four in flight a thread; the producer's activation applied once
  // per value as the unfused path stores it (zero outside the map stays zero).
  const uint2 b2 = pair_act_bounds<IA, T>(in_act);
  auto act_pair = [&](unsigned u) { return pair_act_stored<IA, T>(u, in_act, b2.x, b2.y); };
)src";
/// Image img's patch into shared memory.
inline constexpr const char* patch = R"src(  const T* xi = x + img * (static_cast<long long>(H) * W * CP) + c0;
  for (int i0 = threadIdx.x; i0 < ITEMS; i0 += 4 * NTHREADS) {
    uint4 u[4];
    bool in[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int i = i0 + k * NTHREADS;
      const int v = i % V;
      const int px = i / V;
      const int iy = iy0 + px / COLS_IN;
      const int ix = ix0 + px % COLS_IN;
      u[k] = make_uint4(0u, 0u, 0u, 0u);
      in[k] = i < ITEMS && iy >= 0 && iy < H && ix >= 0 && ix < W;
      if (in[k]) {
        u[k] = *reinterpret_cast<const uint4*>(xi + (iy * W + ix) * CP + v * 8);
      }
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int i = i0 + k * NTHREADS;
      if (i < ITEMS) {
        const int v = i % V;
        const int px = i / V;
        if (in[k]) {  // (the padding stays 0 whatever the activation gives at 0)
          u[k] = make_uint4(act_pair(u[k].x), act_pair(u[k].y), act_pair(u[k].z), act_pair(u[k].w));
        }
        *reinterpret_cast<uint4*>(xs + (px / COLS_IN) * PITCH + (px % COLS_IN) * PB + v * 4) = u[k];
      }
    }
  }
)src";
/// This thread's channel pair, strip and column group.
inline constexpr const char* thread = R"src(  // This thread: pair p, strip st, column group cg; its filters and bias in registers.
  const int p = static_cast<int>(threadIdx.x) % PB;
  const int grp = static_cast<int>(threadIdx.x) / PB;
  const int st = grp % STRIPS;
  const int cg = grp / STRIPS;
  const int ch = c0 + 2 * p;
)src";
/// The pair's filters and bias into registers, from memory (algo 0).
inline constexpr const char* filters = R"src(  float wv[KS * KS][2];
#pragma unroll
  for (int t = 0; t < KS * KS; ++t) {
    wv[t][0] = ch < KREAL ? load(w + static_cast<long long>(ch) * (KS * KS) + t) : 0.0f;
    wv[t][1] = ch + 1 < KREAL ? load(w + static_cast<long long>(ch + 1) * (KS * KS) + t) : 0.0f;
  }
  const float2 bv = bias != nullptr ? *reinterpret_cast<const float2*>(bias + ch) : float2{0.0f, 0.0f};
)src";
/// The sums of image img: the window rows from the patch times the filters.
inline constexpr const char* compute = R"src(  float acc[R][CW][2];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int c = 0; c < CW; ++c) {
      acc[r][c][0] = 0.0f;
      acc[r][c][1] = 0.0f;
    }
  }
  const unsigned* base = xs + st * R * S * PITCH + cg * CW * S * PB + p;
#pragma unroll
  for (int j = 0; j < NR; ++j) {
    float2 win[NC];
#pragma unroll
    for (int c = 0; c < NC; ++c) {
      const unsigned u = base[j * PITCH + c * PB];
      const T* h = reinterpret_cast<const T*>(&u);
      win[c] = float2{load(h), load(h + 1)};
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int ky = j - r * S;
      if (ky >= 0 && ky < KS) {
#pragma unroll
        for (int c = 0; c < CW; ++c) {
#pragma unroll
          for (int kx = 0; kx < KS; ++kx) {
            acc[r][c][0] += win[c * S + kx].x * wv[ky * KS + kx][0];
            acc[r][c][1] += win[c * S + kx].y * wv[ky * KS + kx][1];
          }
        }
      }
    }
  }
)src";
/// The outputs stored: bias, the residual, the activation (without a projection); `@EPILOGUE`
/// the lambda's body (store_text).
inline constexpr const char* store = R"src(  // Bias, the residual, the activation; the slots past the real channels as 0.
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int oy = oy0 + st * R + r;
#pragma unroll
    for (int c = 0; c < CW; ++c) {
      const int ox = ox0 + cg * CW + c;
      if (oy < OH && ox < OW) {
        pair_epilogue(y, z, ((img * OH + oy) * OW + ox) * CP + ch, ch, KREAL,
                      acc[r][c][0] + bv.x, acc[r][c][1] + bv.y, [&](float v0, float v1) {
@EPILOGUE                      });
      }
    }
  }
)src";
/// The stores' lambda: the activation.
inline constexpr const char* store_plain = R"src(                        return float2{activate_as<A>(act, v0), activate_as<A>(act, v1)};
)src";
/// Fuse 3's: the activation once a value, each thread adding up its pair's values as stored
/// (rounded to T; 0 in the slots past the real channels) into s0 and s1 (no residual: fuses_tail).
inline constexpr const char* store_summed = R"src(                        const float a0 = activate_as<A>(act, v0);
                        const float a1 = activate_as<A>(act, v1);
                        s0 += ch < KREAL ? as_stored<T>(a0) : 0.0f;
                        s1 += ch + 1 < KREAL ? as_stored<T>(a1) : 0.0f;
                        return float2{a0, a1};
)src";
/// The stores (text::store), with fuse 3's sums where `sums`.
[[nodiscard]] inline std::string store_text(bool sums) {
  std::string t = store;
  t.replace(t.find("@EPILOGUE"), 9, sums ? store_summed : store_plain);
  return sums ? "  // (fuse 3) the values as stored summed, a channel pair a thread\n  float s0 = 0.0f;\n  float s1 = 0.0f;\n" + t : t;
}
/// Algo 2 (pipelined): image im's patch copied into buffer `buf` of the two (cp.async, 16 bytes a
/// copy, zeros outside the map), as one copy group.
inline constexpr const char* stage = R"src(  auto stage = [&](long long im_img, unsigned* buf) {
    const T* xi = x + im_img * (static_cast<long long>(H) * W * CP) + c0;
    for (int i = threadIdx.x; i < ITEMS; i += NTHREADS) {
      const int v = i % V;
      const int px = i / V;
      const int iy = iy0 + px / COLS_IN;
      const int ix = ix0 + px % COLS_IN;
      const bool in = iy >= 0 && iy < H && ix >= 0 && ix < W;
      cp_async16(buf + (px / COLS_IN) * PITCH + (px % COLS_IN) * PB + v * 4,
                 in ? xi + (iy * W + ix) * CP + v * 8 : x, in);
    }
    cp_async_commit();
  };
)src";
/// Algo 2: the head of image img's turn — its patch in (each thread waits for its own copies,
/// applies the producer's activation to them in place: once a value, inside the map only, as
/// algo 0 stages it), a barrier (every copy and the previous image's reads of the other buffer
/// done), then the next image's copies issued into the other buffer.
inline constexpr const char* turn = R"src(    unsigned* const xb = xs + (im & 1) * (ROWS_IN * PITCH);
    cp_async_wait<0>();
    if constexpr (IA != Act::none) {
      for (int i = threadIdx.x; i < ITEMS; i += NTHREADS) {
        const int v = i % V;
        const int px = i / V;
        const int iy = iy0 + px / COLS_IN;
        const int ix = ix0 + px % COLS_IN;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) {  // (the padding stays 0)
          uint4* const q = reinterpret_cast<uint4*>(xb + (px / COLS_IN) * PITCH + (px % COLS_IN) * PB + v * 4);
          const uint4 u = *q;
          *q = make_uint4(act_pair(u.x), act_pair(u.y), act_pair(u.z), act_pair(u.w));
        }
      }
    }
    __syncthreads();
    if (im + 1 < IMGS && img + 1 < batch) {
      stage(img + 1, xs + ((im + 1) & 1) * (ROWS_IN * PITCH));
    }
)src";
}  // namespace text

/// Bytes of static shared memory algo 1 adds: the chunk's filters as f32.
[[nodiscard]] inline std::int64_t filter_bytes(const OpDesc& op, const Plan& p) {
  return std::int64_t{2} * p.pb * op.conv.kh * op.conv.kw * 4;
}

/// Whether algo 1 runs `op`: the patch and the filters within the default 48 KiB.
/// (Any op may be asked: the plan is made only for one the kernel fits.)
[[nodiscard]] inline bool fits_staged_filters(const OpDesc& op) {
  if (!fits(op)) {
    return false;
  }
  const Plan p = plan(op);
  return p.shared + filter_bytes(op, p) <= max_shared;
}

/// Whether algo 2 has passed its GPU tests with every fix in. (Session 64's first run passed it
/// on the test block — 2 and 4 images a block, fuses 1 and 0, f16 and bf16 — and failed
/// EfficientNet-B0's features.6.0 at launch: its two patches and the tail's static shared memory
/// passed 48 KiB without the opt-in, now always made. Session 65, H100: the GPU test "depthwise_band
/// algo 2: pipelined images, with and without the joined squeeze-excite op" passed, 76
/// assertions, f16 within 6.7e-4 and bf16 6.1e-3 of the CPU.)
inline constexpr bool pipelined_gpu_tested = true;

/// Whether measured tuning is offered algo 2 (pipelined: math M images a block, the next image's
/// patch copied in with cp.async while this one is computed) for `op` at `batch`: at batches of
/// 32 or more (tail_min_batch's engines), on compute capability 8.0 on (or without a device, as
/// the rtc tests plan). At batch 256 on an H100 (session 63's profile) EfficientNet-B0's
/// expansion + depthwise ops (cuBLASLt, then this kernel) moved their bytes at 1.0-1.5 TB/s; a
/// block of algo 0 loads its patch, then computes, then stores, with nothing of its own in flight
/// between.
[[nodiscard]] inline bool pipelined_offered(const OpDesc& op, int batch) {
  const int arch = device_arch();
  return pipelined_gpu_tested && fits(op) && batch >= tail_min_batch && (arch == 0 || arch >= 80);
}

/// The blocks an SM algo 2 is compiled for (__launch_bounds__): 4 for 3×3 taps and 3 for larger
/// ones (at most 64 and 85 registers a thread of 256; ptxas for sm_90 spilled none on
/// EfficientNet-B0's 3×3 and 5×5 convs, session 64 — at 2 blocks it took 96-127 registers), where
/// that many blocks' two patches fit an SM's 227 KiB; at least 2.
[[nodiscard]] inline int pipelined_min_blocks(const OpDesc& op, const Plan& p) {
  const int want = op.conv.kh == 3 ? 4 : 3;
  const std::int64_t fit = (std::int64_t{227} << 10) / (2 * p.shared + 4096);
  return static_cast<int>(std::max<std::int64_t>(2, std::min<std::int64_t>(want, fit)));
}

/// The images a block of algo 1 may take (math M: M images; 0 reads as 1).
[[nodiscard]] inline bool images_valid(int m) { return m == 0 || m == 1 || m == 2 || m == 4 || m == 8; }

/// Threads of fuse 3's gate kernel (a block an image).
inline constexpr int gate_threads = 256;
/// The least batch from which the heuristic claims fuse 3 (the sums form) for a joined
/// squeeze-excite op rather than fuse 1 (the tail form: the image's last block computes the gate):
/// the max batch from which the engine joins them at large batches (EngineOptions::tail_sums).
inline constexpr int sums_min_batch = tail_min_batch;

/// The most fc1 outputs (slots) the tail form computes, a thread each.
inline constexpr int tail_most_squeezed = 256;

/// Static shared memory the tail form adds (bytes): the block's channel sums by thread group,
/// the pooled vector, fc1's outputs.
[[nodiscard]] inline std::int64_t tail_bytes(const OpDesc& op, const Plan& p) {
  return std::int64_t{4} * (std::int64_t{p.threads()} * 2 + op.conv.cp + op.tail->squeeze->conv.kp) + 16;
}

/// Whether `op`'s joined squeeze-excite op (OpDesc::tail) is one the gate kernels compute from a
/// conv's channel sums (text::tail_gate): the conv adds no residual; fc1's filter rows are the
/// map's slots and fc2's are fc1's (at most tail_most_squeezed, a multiple of 8), fc2's outputs
/// the conv's channels in its slots. (The shapes alone: expand_depthwise's fuse 3 asks too.)
[[nodiscard]] inline bool tail_shapes_fit(const OpDesc& op) {
  if (!op.tail || !op.tail->squeeze || op.has_residual || op.z_offset >= 0) {
    return false;
  }
  const OpDesc& q = *op.tail;
  const OpDesc& f1 = *q.squeeze;
  return f1.conv.kh == 1 && f1.conv.kw == 1 && f1.conv.fcg == op.conv.cp &&
         f1.conv.kd >= f1.conv.k && f1.conv.kp % 8 == 0 && f1.conv.kp <= tail_most_squeezed &&
         q.conv.kh == 1 && q.conv.kw == 1 && q.conv.fcg == f1.conv.kp && q.conv.kd >= q.conv.k &&
         q.conv.k == op.conv.k && q.out_cp == op.conv.cp && op.conv.cp % 8 == 0;
}

/// Whether the kernel computes `op`'s joined squeeze-excite op (OpDesc::tail; variant fuse 1,
/// algo 0): the conv adds no residual; fc1's filter rows are the map's slots and fc2's are fc1's
/// (at most tail_most_squeezed, a multiple of 8), fc2's outputs the conv's channels in its
/// slots; the patch and the tail's shared memory within the default 48 KiB (with `whole`, the
/// whole-map plan's).
[[nodiscard]] inline bool fuses_tail(const OpDesc& op, bool whole = false) {
  if (!tail_shapes_fit(op) || !fits(op)) {
    return false;
  }
  const Plan p = plan(op, whole);
  return p.pb != 0 && p.shared + tail_bytes(op, p) <= max_shared;
}

/// Whether the heuristic claims algo 2 (4 images a block, the sums form) for `op` at `batch`: a
/// 5×5 depthwise conv of stride 1 (the shape measured) with its joined squeeze-excite op, where it is
/// offered and the sums form (fuse 3) is claimed. EfficientNet-B0 at batch 256 on an H100
/// (session 65, heuristic profiles of the joined ops, algo 0 fuse 3 against algo 2 math 4 fuse
/// 3): the stride-1 5×5 convs 338.7 → 314.6 µs (features.3.1), 189.0 → 173.1 (5.0), 273.3 →
/// 250.6 and 272.7 → 248.7 (5.1, 5.2), 138.4 → 133.1 (6.1, and 6.2/6.3 alike); the stride-2 5×5
/// convs split (3.0 476.1 → 467.0, 6.0 155.1 → 170.5) and every 3×3 lost 5-19 µs (features.1.0
/// 233.8 → 253.0, 4.0 149.9 → 167.9; why is not measured). The whole forward: 5,176.7 against
/// 5,200.7 µs with algo 2 forced on all fifteen.
[[nodiscard]] inline bool pipelined_claimed(const OpDesc& op, int batch) {
  return pipelined_offered(op, batch) && op.conv.kh == 5 && op.conv.kw == 5 && op.conv.sh == 1 &&
         op.conv.sw == 1 && fuses_tail(op) && batch >= sums_min_batch;
}

/// Whether the whole-map forms (algo 3: algo 0's kernel, algo 4: algo 2's, on whole_plan) run
/// `op` and differ from algos 0 and 2: its whole output map within one block's 256 threads for
/// some pb, where algo 0's plan cuts it into tiles. On EfficientNet-B0 that is the 14×14 maps
/// (features.4.x, 5.x: 8 channel pairs a block instead of 16 in two bands of 8 rows, whose 5×5
/// patches stage 24 input rows where the map has 18 — with the producer's SiLU applied to each
/// staged value); its 7×7 maps are one tile a block already.
[[nodiscard]] inline bool whole_fits(const OpDesc& op) {
  if (!fits(op)) {
    return false;
  }
  const Plan w = plan(op, true);
  const Plan p = plan(op);
  return w.pb > 0 && std::int64_t{w.tiles_y} * w.tiles_x < std::int64_t{p.tiles_y} * p.tiles_x;
}

/// Whether variant `v` is a whole-map form (algos 3 and 4), and the kernel it runs on that plan:
/// algo 0's (3), algo 2's (4), or its own algo.
[[nodiscard]] inline bool whole_form(const Variant& v) { return v.algo == 3 || v.algo == 4; }
[[nodiscard]] inline int kernel_form(const Variant& v) { return v.algo == 3 ? 0 : v.algo == 4 ? 2 : v.algo; }

/// Whether the whole-map forms have passed their GPU test ("depthwise_band algos 3 and 4: the whole
/// map a block", tests/gpu/test_deploy_layers.cpp): until then they are neither claimed nor
/// offered to measured tuning, only forced. (Session 66, H100: passed, 74 assertions, bf16 within
/// 3.5e-3 of the CPU.)
inline constexpr bool whole_gpu_tested = true;

/// Whether the heuristic runs `op` at `batch` on the whole-map form of the variant it claims
/// (algo 0 → 3, algo 2 → 4), once GPU-tested: wherever whole_fits, at batches of 32 and more (the
/// batch-1 plans, measured as they are, stay). Measured on an H100 at batch 256 (session 66,
/// per-op profiles, forced by label): EfficientNet-B0's 4.1/4.2 (3×3) algo 0 → 3 fuse 3 112.7 →
/// 106.1 µs, 5.0 algo 2 → 4 math 4 fuse 3 170.1 → 154.8, 5.1/5.2 246.5 → 224.5 (algo 3 there:
/// 167.3, 242.7); the forward 4,742 / 4,746 → 4,680 / 4,703 µs with 4.1–5.2 so; MobileNetV2's
/// seven 14×14 convs on algo 3, 2,660.8 / 2,661.1 → 2,659.5 / 2,659.1 (even).
[[nodiscard]] inline bool whole_claimed(const OpDesc& op, int batch) {
  return whole_gpu_tested && batch >= sums_min_batch && whole_fits(op);
}

namespace text {
/// The tail form's end (algo 0, fuse 1): the joined squeeze-excite op (OpDesc::tail). Each block
/// adds up each of its channels over its tile as stored (rounded to T), the thread groups in
/// order, and writes the sums to `part`; the last block of the image to arrive (the image's
/// counter) adds the tiles' sums — split over as many thread groups as the block holds copies of
/// the channels, each taking every PG-th tile, their sums then added in group order — the pool's
/// mean, rounded as the pool stores it —, computes fc1 (a warp an output, its lanes' sums added
/// by shuffles; a thread an output where the block is not whole warps: bias, activation,
/// rounded; the activation fc2 applies on load, rounded) and fc2 (a thread a slot: bias,
/// activation), stores the gate and sets the counter back to 0 for the next launch. (Session
/// 64: the pool and fc1 were a thread a channel and an output, 98 dependent loads a thread for
/// a 112x112 map's tiles and 144 for a 1,152-channel fc1 — the chain each image's last block
/// ran alone. Session 65: in fuse 3's gate kernel (FC1_PRELOAD) a lane issues all its loads of an
/// fc1 row before its first sum, and the pool's channels are unrolled by 4 — that kernel took
/// 22-23 µs for each 1,152-channel gate of EfficientNet-B0 at batch 256 on an H100, its fc1 rows
/// five loads in a row a lane; the sums are added in the same order. Inside the conv's kernel
/// (fuse 1) the loop stays: there the preload spilled under algo 2's launch bounds — a review's
/// ptxas, features.6.x algo 2 fuse 1, 0 → 32 bytes of spill stores.)
inline constexpr const char* tail_head = R"src(  {
    __shared__ float tl_red[NTHREADS / PB][2 * PB];
)src";
/// The pooled vector and fc1's outputs (fuse 1's last block, fuse 3's gate kernel).
inline constexpr const char* tail_vectors = R"src(    __shared__ float tl_pool[CP];
    __shared__ float tl_sq[SE_K1P];
)src";
/// (fuse 1) The block's sums of its pairs' outputs as stored, computed again from the sums.
inline constexpr const char* tail_sums = R"src(    __shared__ bool tl_last;
    float s0 = 0.0f;
    float s1 = 0.0f;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int oy = oy0 + st * R + r;
#pragma unroll
      for (int c = 0; c < CW; ++c) {
        const int ox = ox0 + cg * CW + c;
        if (oy < OH && ox < OW) {
          s0 += ch < KREAL ? as_stored<T>(activate_as<A>(act, acc[r][c][0] + bv.x)) : 0.0f;
          s1 += ch + 1 < KREAL ? as_stored<T>(activate_as<A>(act, acc[r][c][1] + bv.y)) : 0.0f;
        }
      }
    }
)src";
/// The thread groups' sums added in order, written to `part` (fuses 1 and 3).
inline constexpr const char* tail_part = R"src(    tl_red[grp][2 * p] = s0;
    tl_red[grp][2 * p + 1] = s1;
    __syncthreads();
    constexpr int TILES = TILES_Y * TILES_X;
    const long long tile = img * TILES + ty * TILES_X + tx;
    for (int c = threadIdx.x; c < 2 * PB; c += NTHREADS) {
      float t = 0.0f;
#pragma unroll 4
      for (int g = 0; g < NTHREADS / PB; ++g) t += tl_red[g][c];
      part[tile * CP + c0 + c] = t;
    }
)src";
/// (fuse 1) The image's counter: a block not its last leaves (@LEAVE: return, or continue to its next image).
inline constexpr const char* tail_last = R"src(    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
      tl_last = atomicAdd(&counters[img], 1u) == static_cast<unsigned>(CHUNKS * TILES - 1);
    }
    __syncthreads();
    if (!tl_last) {
      @LEAVE;
    }
    __threadfence();
)src";
/// The pool from the tiles' sums, fc1, fc2: the gate (the image's last block for fuse 1; the
/// gate kernel's block of the image for fuse 3).
inline constexpr const char* tail_gate = R"src(    // The pool: a channel's tile sums split over PG thread groups (tile g, g + PG, ...), whose
    // sums are then added in group order.
    constexpr int PG = CP < NTHREADS ? NTHREADS / CP : 1;
    if constexpr (PG > 1) {
      float* tl_acc = &tl_red[0][0];  // [PG][CP] (the block's sums above are read by now)
      const int c = static_cast<int>(threadIdx.x) % CP;
      const int q = static_cast<int>(threadIdx.x) / CP;
      if (q < PG) {
        float t = 0.0f;
        for (int i = q; i < TILES; i += PG) t += __ldcg(part + (img * TILES + i) * CP + c);
        tl_acc[q * CP + c] = t;
      }
      __syncthreads();
      if (static_cast<int>(threadIdx.x) < CP) {
        float t = 0.0f;
#pragma unroll
        for (int g = 0; g < PG; ++g) t += tl_acc[g * CP + threadIdx.x];
        tl_pool[threadIdx.x] = as_stored<T>(t / static_cast<float>(OH * OW));
      }
    } else {
#pragma unroll 4
      for (int c = threadIdx.x; c < CP; c += NTHREADS) {
        float t = 0.0f;
        for (int i = 0; i < TILES; ++i) t += __ldcg(part + (img * TILES + i) * CP + c);
        tl_pool[c] = as_stored<T>(t / static_cast<float>(OH * OW));
      }
    }
    __syncthreads();
    if constexpr (NTHREADS % 32 == 0) {  // fc1: a warp an output, 8 channels a lane at a time
      const int lane = static_cast<int>(threadIdx.x) % 32;
      for (int o = static_cast<int>(threadIdx.x) / 32; o < SE_K1P; o += NTHREADS / 32) {
        float a = 0.0f;
        if (o < SE_K1) {
          if constexpr (FC1_PRELOAD) {  // (the gate kernel: a lane's F1 loads of the row in flight together)
            constexpr int F1 = (CP + 255) / 256;
            float wv[F1][8];
#pragma unroll
            for (int f = 0; f < F1; ++f) {
              if (8 * lane + 256 * f < CP) {
                load8(sw1 + static_cast<long long>(o) * CP + 8 * lane + 256 * f, wv[f]);
              }
            }
#pragma unroll
            for (int f = 0; f < F1; ++f) {
              const int i = 8 * lane + 256 * f;
              if (i < CP) {
#pragma unroll
                for (int j = 0; j < 8; ++j) a += tl_pool[i + j] * wv[f][j];
              }
            }
          } else {  // (inside the conv's kernel, whose registers its launch bounds cap)
            for (int i = 8 * lane; i < CP; i += 256) {
              float wv[8];
              load8(sw1 + static_cast<long long>(o) * CP + i, wv);
#pragma unroll
              for (int j = 0; j < 8; ++j) a += tl_pool[i + j] * wv[j];
            }
          }
#pragma unroll
          for (int off = 16; off > 0; off /= 2) a += __shfl_xor_sync(0xffffffffu, a, off);
        }
        if (lane == 0) {
          tl_sq[o] = se_squeezed<T, SE_I2>(se_act1, se_in_act2, a, sb1, o, SE_K1);
        }
      }
    } else {  // (a thread an output)
      for (int o = threadIdx.x; o < SE_K1P; o += NTHREADS) {
        float a = 0.0f;
        if (o < SE_K1) {
          for (int i = 0; i < CP; i += 8) {
            float wv[8];
            load8(sw1 + static_cast<long long>(o) * CP + i, wv);
#pragma unroll
            for (int j = 0; j < 8; ++j) a += tl_pool[i + j] * wv[j];
          }
        }
        tl_sq[o] = se_squeezed<T, SE_I2>(se_act1, se_in_act2, a, sb1, o, SE_K1);
      }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < CP; c += NTHREADS) {  // fc2: the gate
      store(gate + img * CP + c, c < KREAL ? se_excited<SE_K1P>(se_act2, tl_sq, sw2, sb2, c) : 0.0f);
    }
)src";
/// (fuse 1) The counter set back to 0 for the next launch; the scope closed.
inline constexpr const char* tail_end = R"src(    if (threadIdx.x == 0) {
      counters[img] = 0u;  // for the next launch (stream-ordered after this one)
    }
  }
)src";

}  // namespace text

/// The joined projection's form (fuse 2; algo 0): the pitch, in 16-bit elements, of a pixel's row
/// of the tile's depthwise outputs (ds) and of an output's row of the projection's weights — 16
/// bytes past the channels, so that ldmatrix's eight rows fall in distinct banks.
[[nodiscard]] inline int projection_pitch(const OpDesc& op) { return op.conv.cp + 8; }

/// Where the joined projection's weights start in shared memory (bytes, a multiple of 16): past
/// the patch, whose place the tile's depthwise outputs take once it is read.
[[nodiscard]] inline std::int64_t projection_weights_at(const OpDesc& op, const Plan& p) {
  return std::max(p.shared, std::int64_t{2} * p.th * p.tw * projection_pitch(op));
}

/// Dynamic shared memory of the joined projection's form (bytes): the patch or the depthwise
/// outputs, then the projection's weights and bias.
[[nodiscard]] inline std::int64_t projection_shared(const OpDesc& op, const Plan& p) {
  const int co = op.project->conv.kp;
  return projection_weights_at(op, p) + std::int64_t{2} * co * projection_pitch(op) + std::int64_t{4} * co;
}

/// The most output slots of a joined projection the kernel computes (fuse 2).
inline constexpr int most_projected = 64;

/// Whether the kernel computes `op`'s joined 1×1 projection (OpDesc::project, fold_projected_depthwise;
/// variant fuse 2, algo 0) — a depthwise conv without an expansion before it (MobileNetV2's
/// features.1): one chunk a block (all the channels: up to 64 slots, in 16s), whole warps, tiles
/// of a multiple of 16 pixels; the projection a 1×1 of stride 1 over the conv's map, nothing
/// deferred into its read, its filter rows the conv's slots, its outputs in 8s (at most
/// most_projected); the shared memory within the default 48 KiB.
[[nodiscard]] inline bool projection_fits(const OpDesc& op) {
  if (!op.project || op.expand || op.tail || !fits(op) || op.has_residual || op.z_offset >= 0) {
    return false;
  }
  const Plan p = plan(op);
  const OpDesc& q = *op.project;
  const ConvGeom& g = q.conv;
  // (whole warps: the projection's ldmatrix and mma.sync take all 32 lanes of each)
  return p.chunks == 1 && p.threads() % 32 == 0 && op.conv.cp % 16 == 0 &&
         (p.th * p.tw) % 16 == 0 && g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 &&
         g.ph == 0 && g.pw == 0 && g.groups == 1 && !g.s2d && g.h == op.conv.oh &&
         g.w == op.conv.ow && g.cp == op.conv.cp && g.fcg == g.cp && g.kd == g.kp &&
         g.kp % 8 == 0 && g.kp <= most_projected && q.out_cp == g.kp &&
         q.in_act.kind == Act::none && projection_shared(op, p) <= max_shared;
}

/// Whether fuse 2 has passed its GPU test ("an inverted-residual block as one kernel ...",
/// tests/gpu/test_deploy_layers.cpp, which forces it) and been timed: while false the heuristic
/// does not claim it, the engine joins no such projection by itself (fold_for_max_batch), and
/// the form runs only where EngineOptions::force names the joined op. Written in session 60,
/// when the device could not be started; timed in session 61 (H100, MobileNetV2 f16 at batch
/// 256: features.1 227.6 us joined against 288.5 apart) and its GPU test passed in session 62
/// (H100: a test network at batches 1, 3, 17 and 64 in f16 and bf16, MobileNetV2 at 5 and 1,
/// against the CPU).
inline constexpr bool projection_gpu_tested = true;

/// Whether the heuristic runs `op` with its joined projection (fuse 2): where it claims the
/// depthwise conv (claimed), 3×3 at stride 1, and the projection fits, once GPU-tested
/// (projection_gpu_tested).
/// MobileNetV2's features.1 at batch 256 (H100, session 59): the depthwise conv here and the
/// projection on cuBLASLt took 176.4 + 112.1 µs, a map of 32 channels on 112×112 written by one
/// and read back by the other, each near the copy bandwidth; joined, that map never leaves the
/// chip.
[[nodiscard]] inline bool projection_claimed(const OpDesc& op) {
  // (3×3 at stride 1: the taps and stride the GPU test runs it with)
  return projection_gpu_tested && projection_fits(op) && claimed(op) && op.conv.kh == 3 &&
         op.conv.sh == 1;
}

namespace text {
/// The joined projection's weights and bias into shared memory (fuse 2), behind the patch.
inline constexpr const char* projection_weights = R"src(  T* wps = reinterpret_cast<T*>(xs + XS_WORDS);           // [CO][WPP] the projection's weights
  float* pbs = reinterpret_cast<float*>(wps + CO * WPP);  // [CO] its bias
  for (int i = threadIdx.x; i < CO * (CP / 8); i += NTHREADS) {
    const int n = i / (CP / 8);
    const int kc = i % (CP / 8);
    *reinterpret_cast<uint4*>(wps + n * WPP + kc * 8) =
        *reinterpret_cast<const uint4*>(wp + static_cast<long long>(n) * CP + kc * 8);
  }
  for (int i = threadIdx.x; i < CO; i += NTHREADS) {
    pbs[i] = bp != nullptr ? bp[i] : 0.0f;
  }
)src";
/// The joined projection (fuse 2), after the sums: the tile's depthwise outputs — bias and
/// activation, rounded as the conv's output is stored, the slots past the real channels 0 — into
/// shared memory in the patch's place (ds: a pixel's channels a row), then on tensor cores a
/// warp's 16 pixels at a time times the projection's weights, + bias, + the residual, the
/// projection's activation, into the block's output.
/// (In the source: projection_outputs, generated::store_tile, projection.)
inline constexpr const char* projection_outputs = R"src(  __syncthreads();  // every thread's reads of the patch done: the depthwise outputs take its place
  {
    T* ds = reinterpret_cast<T*>(xs);  // [TH * TW][DP]
)src";
inline constexpr const char* projection = R"src(    __syncthreads();  // the tile's depthwise outputs in
    const int warp = static_cast<int>(threadIdx.x) / 32;
    const int lane = static_cast<int>(threadIdx.x) % 32;
    for (int mt = warp; mt < MT2; mt += NWARPS) {
      unsigned a[CP / 16][4];
#pragma unroll
      for (int ks = 0; ks < CP / 16; ++ks) {
        ldmatrix_x4(a[ks][0], a[ks][1], a[ks][2], a[ks][3],
                    ds + (mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * DP + ks * 16 + (lane >> 4) * 8);
      }
#pragma unroll
      for (int nt = 0; nt < NT2; ++nt) {
        float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int ks = 0; ks < CP / 16; ++ks) {
          unsigned b0, b1;
          ldmatrix_x2(b0, b1, wps + (nt * 8 + (lane & 7)) * WPP + ks * 16 + ((lane >> 3) & 1) * 8);
          mma_16816<T>(d, a[ks][0], a[ks][1], a[ks][2], a[ks][3], b0, b1);
        }
        const int col = nt * 8 + 2 * (lane & 3);
        const float2 bb = *reinterpret_cast<const float2*>(pbs + col);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int pix = mt * 16 + (lane >> 2) + 8 * h;
          const int oy = oy0 + pix / TW;
          const int ox = ox0 + pix % TW;
          if (oy < OH && ox < OW) {
            pair_epilogue(yp, zp, ((img * OH + oy) * OW + ox) * CO + col, col, KPR, d[2 * h] + bb.x,
                          d[2 * h + 1] + bb.y, [&](float u0, float u1) {
                            return float2{activate_as<PA>(pact, u0), activate_as<PA>(pact, u1)};
                          });
          }
        }
      }
    }
  }
)src";
}  // namespace text

/// Fuse 3's second kernel, `strata_rtc::depthwise_band_gate<T>` (a source of its own):
/// a block of 256 threads an image adds up the tiles' sums the conv's blocks wrote to `part` —
/// the pool's mean, rounded as the pool stores it —, computes fc1 and fc2 as the tail form's last
/// block does (text::tail_gate) and stores the gate: `tiles` sums of each channel an image, in
/// part[(img * tiles + tile) * CP + c] (this kernel's blocks, or expand_depthwise fuse 3's).
[[nodiscard]] inline std::string gate_source_for(const OpDesc& op, std::int64_t tiles) {
  STRATA_CHECK(tail_shapes_fit(op) && tiles > 0, "depthwise_band: no squeeze-excite op computed for '" << op.label << "'");
  std::ostringstream o;
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n" << generated::excite_helpers;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  o << "// The gate of '" << op.tail->label << "' from the sums of '" << op.tail_conv_label << "'.\n"
    << "template <class T>\n__global__ void __launch_bounds__(" << gate_threads << ") depthwise_band_gate(\n"
    << "    const float* __restrict__ part, const T* __restrict__ sw1, const float* __restrict__ sb1,\n"
    << "    const T* __restrict__ sw2, const float* __restrict__ sb2, T* __restrict__ gate, int batch) {\n"
    << "  pdl_entry();  // (a programmatic dependent launch's wait; else nothing)\n";
  constant("CP", op.conv.cp);
  constant("KREAL", op.conv.k);
  constant("OH", op.conv.oh);
  constant("OW", op.conv.ow);
  constant("TILES", tiles);
  constant("NTHREADS", gate_threads);
  generated::excite_constants(o, *op.tail);
  o << "  constexpr bool FC1_PRELOAD = true;  // (fc1's row loads in flight together)\n";
  o << R"src(  const long long img = blockIdx.x;
  if (img >= batch) {
    return;
  }
  {
    __shared__ float tl_red[1][NTHREADS];
)src" << text::tail_vectors << text::tail_gate << "  }\n}\n}  // namespace strata_rtc\n";
  return o.str();
}
/// band::gate_source_for with this kernel's tiles an image (`whole`: the whole-map plan's).
[[nodiscard]] inline std::string gate_source(const OpDesc& op, bool whole = false) {
  STRATA_CHECK(fuses_tail(op, whole), "depthwise_band: no squeeze-excite op computed for '" << op.label << "'");
  const Plan p = plan(op, whole);  // (its tiles: the sums' count an image)
  return gate_source_for(op, std::int64_t{p.tiles_y} * p.tiles_x);
}

/// The kernel's source for `op` (kernel `strata_rtc::depthwise_band<T>`): algo 0, the filters
/// read from memory by each thread, an image a block (GPU-verified, claimed); algo 1, the chunk's
/// filters staged through shared memory by coalesced loads and `images` images a block, the
/// filters loaded once for all of them — the same sums in the same order (written after session
/// 26's last GPU run: forceable only).
[[nodiscard]] inline std::string source(const OpDesc& op, int algo = 0, int images = 1, bool tail = false,
                                       bool project = false, bool sums = false, bool whole = false) {
  const ConvGeom& g = op.conv;
  const Plan p = plan(op, whole);
  STRATA_CHECK(p.pb > 0, "depthwise_band: no block shape for '" << op.label << "'");
  STRATA_CHECK(!sums || tail, "depthwise_band: the sums form (fuse 3) is a tail form");
  // The joined squeeze-excite op's text after the stores: fuse 1 the tail (the block's sums, the
  // image's last block the gate; a block not the last leaves by `leave`), fuse 3 the block's sums
  // of the values as stored (store_summed) into `part`, the gate by a second kernel.
  const auto tail_text = [&](const std::string& leave) -> std::string {
    if (!tail) {
      return "";
    }
    if (sums) {
      return std::string(text::tail_head) + text::tail_part + "  }\n";
    }
    std::string last = text::tail_last;
    last.replace(last.find("@LEAVE"), 6, leave);
    return std::string(text::tail_head) + text::tail_vectors + text::tail_sums + text::tail_part + last +
           text::tail_gate + text::tail_end;
  };
  const std::string store = text::store_text(sums);
  STRATA_CHECK(!tail || ((algo == 0 || algo == 2) && fuses_tail(op, whole)),
               "depthwise_band: no squeeze-excite op computed for '" << op.label << "'");
  STRATA_CHECK(!project || (algo == 0 && !tail && !whole && projection_fits(op)),
               "depthwise_band: no joined projection computed for '" << op.label << "'");
  STRATA_CHECK(!whole || algo == 0 || algo == 2, "depthwise_band: no whole-map form of algo " << algo);
  STRATA_CHECK(algo == 0 || (algo == 1 && images >= 1 && fits_staged_filters(op)) || (algo == 2 && images >= 1),
               "depthwise_band: no form " << algo << " with " << images << " images a block for '"
                                          << op.label << "'");
  std::ostringstream o;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n" << (tail ? generated::excite_helpers : "")
    << "// Generated for '" << op.label << "'" << (whole ? " (the whole map a block)" : "")
    << (algo == 0 ? std::string()
                  : (algo == 2 ? " (pipelined, " : " (filters staged, ") + std::to_string(images) +
                        (images == 1 ? " image" : " images") + " a block)")
    << ".\n"
    << "template <class T>\n__global__ void __launch_bounds__(" << p.threads()
    // (algo 1 at 7x7 keeps 98 filter values live across its image loop: one block an SM's
    // registers, not two)
    << ", " << (algo == 1 && g.kh == 7 ? 1 : algo == 2 ? pipelined_min_blocks(op, p) : 2) << ") depthwise_band(\n"
    << "    const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,\n"
    << "    T* __restrict__ y, const T* __restrict__ z, int batch"
    << (tail ? ",\n    float* __restrict__ part, unsigned* __restrict__ counters, const T* __restrict__ sw1,\n"
               "    const float* __restrict__ sb1, const T* __restrict__ sw2, const float* __restrict__ sb2,\n"
               "    T* __restrict__ gate"
             : "")
    << (project ? ",\n    const T* __restrict__ wp, const float* __restrict__ bp, T* __restrict__ yp,\n"
                  "    const T* __restrict__ zp"
                : "")
    << ") {\n"
    << (algo != 1 ? "  pdl_entry();  // (a programmatic dependent launch's wait; else nothing)\n"
                  : "  pdl_launch();  // (a programmatic dependent launch: its wait comes after the filters' staging)\n");
  constant("H", g.h);
  constant("W", g.w);
  constant("CP", g.cp);
  constant("KREAL", g.k);  // channels with filters; the slots past them are written as 0
  constant("OH", g.oh);
  constant("OW", g.ow);
  constant("KS", g.kh);
  constant("S", g.sh);
  constant("PH", g.ph);
  constant("PW", g.pw);
  constant("PB", p.pb);
  constant("R", rows);
  constant("CW", cols);
  constant("STRIPS", p.strips);
  constant("TH", p.th);
  constant("TW", p.tw);
  constant("ROWS_IN", p.rows_in);
  constant("COLS_IN", p.cols_in);
  constant("PITCH", p.pitch);
  constant("TILES_Y", p.tiles_y);
  constant("TILES_X", p.tiles_x);
  constant("CHUNKS", p.chunks);
  constant("NTHREADS", p.threads());
  o << "  constexpr Act IA = static_cast<Act>(" << static_cast<int>(op.in_act.kind) << ");\n"
    << "  const ActDesc in_act{IA, " << std::hexfloat << op.in_act.alpha << "f, "
    << op.in_act.beta << "f};\n"
    << "  constexpr Act A = static_cast<Act>(" << static_cast<int>(op.act.kind) << ");\n"
    << "  const ActDesc act{A, " << op.act.alpha << "f, " << op.act.beta << "f};\n"
    << std::defaultfloat;
  if (tail) {
    generated::excite_constants(o, *op.tail);
    o << "  constexpr bool FC1_PRELOAD = false;  // (fc1's loads a row's group at a time: the launch bounds cap the registers)\n";
  }
  if (project) {  // the joined projection's (fuse 2)
    const OpDesc& q = *op.project;
    constant("CO", q.conv.kp);   // its output slots
    constant("KPR", q.conv.k);   // its real channels
    constant("DP", projection_pitch(op));
    constant("WPP", projection_pitch(op));
    constant("MT2", p.th * p.tw / 16);  // its m-tiles (the tile's pixels)
    constant("NT2", q.conv.kp / 8);     // its n-tiles
    constant("NWARPS", p.threads() / 32);
    // 4-byte words of the patch or, once it is read, the depthwise outputs (whichever is larger)
    constant("XS_WORDS", projection_weights_at(op, p) / 4);
    o << "  constexpr Act PA = static_cast<Act>(" << static_cast<int>(q.act.kind) << ");\n"
      << "  const ActDesc pact{PA, " << std::hexfloat << q.act.alpha << "f, " << q.act.beta
      << "f};\n"
      << std::defaultfloat;
  }
  if (algo == 0) {  // (the text measured in sessions 23-25)
    // (Waits first thing: its filters loaded into registers before the patch — to copy them
    // before a programmatic dependent launch's wait — kept them live across the patch's loop,
    // 56 -> 72-80 registers a 3x3 thread and 80-85 -> 102-107 a 5x5 one (ptxas, sm_90): a block
    // an SM fewer.)
    o << text::declarations << text::decode << text::first_channel << text::geometry
      << (project ? text::projection_weights : "") << text::patch << text::thread << text::filters
      << "  __syncthreads();\n" << text::compute
      << (project ? std::string(text::projection_outputs) + generated::store_tile + text::projection
                  : std::string(store))
      << tail_text("return") << "}\n}  // namespace strata_rtc\n";
    return o.str();
  }
  if (algo == 2) {  // pipelined: `images` images a block, the next one's patch copied meanwhile
    constant("IMGS", images);
    std::string compute = text::compute;
    const std::string from = "const unsigned* base = xs + ";
    compute.replace(compute.find(from), from.size(), "const unsigned* base = xb + ");
    o << text::declarations << text::decode_images << R"src(  if (img0 >= batch) {
    return;
  }
)src" << text::first_channel << text::geometry << text::stage << "  stage(img0, xs);\n"
      << text::thread << R"src(#pragma unroll 1
  for (int im = 0; im < IMGS; ++im) {
    const long long img = img0 + im;
    if (img >= batch) {
      break;
    }
)src" << text::turn << text::filters << compute << store
      << tail_text("continue") /* (a block not the image's last goes on to its next image) */
      << "  }\n}\n}  // namespace strata_rtc\n";
    return o.str();
  }
  constant("IMGS", images);
  o << text::declarations << "  __shared__ float wsf[2 * PB * KS * KS];  // the chunk's filters, channel-major\n"
    << text::decode_images << R"src(  if (img0 >= batch) {
    pdl_wait();  // (every thread waits before it returns: see pdl_wait)
    return;
  }
)src" << text::first_channel << R"src(  // The chunk's filters (contiguous in memory) by coalesced loads into shared memory once, then
  // each pair's into registers: for every image of the block.
  for (int e = threadIdx.x; e < 2 * PB * KS * KS; e += NTHREADS) {
    wsf[e] = c0 + e / (KS * KS) < KREAL ? load(w + static_cast<long long>(c0) * (KS * KS) + e) : 0.0f;
  }
)src" << text::wait << text::geometry << text::thread << R"src(  __syncthreads();
  float wv[KS * KS][2];
#pragma unroll
  for (int t = 0; t < KS * KS; ++t) {
    wv[t][0] = wsf[(2 * p) * (KS * KS) + t];
    wv[t][1] = wsf[(2 * p + 1) * (KS * KS) + t];
  }
  const float2 bv = bias != nullptr ? *reinterpret_cast<const float2*>(bias + ch) : float2{0.0f, 0.0f};
  for (int im = 0; im < IMGS; ++im) {
    const long long img = img0 + im;
    if (img >= batch) {
      break;
    }
    if (im > 0) {
      __syncthreads();  // the previous image's reads of the patch are done
    }
)src" << text::patch << "  __syncthreads();\n" << text::compute << store << "  }\n}\n}  // namespace strata_rtc\n";
  return o.str();
}

/// The joined squeeze-excite op's side of a step that computes its sums (depthwise_band fuses 1
/// and 3, expand_depthwise fuse 3), set up once in prepare(): its two 1x1 layers' weights and the
/// gate's slot (OpIo::tail), the buffer `part` of `tiles` f32 sums of each channel slot an image,
/// and fuse 3's second launch (the gate kernel, gate_source_for's, a block an image).
template <class T>
struct GateSums {
  std::shared_ptr<DeviceBuffer> part;
  const T* sw1 = nullptr;
  const float* sb1 = nullptr;
  const T* sw2 = nullptr;
  const float* sb2 = nullptr;
  T* gate = nullptr;

  [[nodiscard]] float* sums() const { return part->template as<float>(); }
  /// The gate kernel `kg` over `batch` images, after the conv's blocks have written `part`.
  void launch_gate(cudaKernel_t kg, int batch, cudaStream_t s) const {
    rtc::launch_shared(kg, static_cast<unsigned>(batch), static_cast<unsigned>(gate_threads), 0, s,
                       static_cast<const float*>(sums()), sw1, sb1, sw2, sb2, gate, batch);
  }
};
/// GateSums for `op` at `batch` (`who`: the tactic and form, for the error where the engine gave
/// the step no squeeze-excite buffers).
template <class T>
[[nodiscard]] GateSums<T> gate_sums(const OpDesc& op, const OpIo::Excite& e, int batch, std::int64_t tiles,
                                    const std::string& who) {
  STRATA_CHECK(e.weights != nullptr && e.squeeze_weights != nullptr && e.gate != nullptr && op.tail &&
                   op.tail->squeeze,
               "cuda::Engine: layer '" << op.label << "': " << who << " without the squeeze-excite op's buffers");
  GateSums<T> g;
  g.part = std::make_shared<DeviceBuffer>(static_cast<std::size_t>(batch) * static_cast<std::size_t>(tiles) *
                                          static_cast<std::size_t>(op.conv.cp) * sizeof(float));
  g.sw1 = e.squeeze_weights->weight.template as<const T>();
  g.sb1 = e.squeeze_weights->bias_f32.template as<const float>();
  g.sw2 = e.weights->weight.template as<const T>();
  g.sb2 = e.weights->bias_f32.template as<const float>();
  g.gate = static_cast<T*>(e.gate);
  return g;
}
/// How a step's description names the joined squeeze-excite op: "; the squeeze-excite op after
/// it (pool, 1x1 k->s, 1x1 s->k" (the caller closes the parenthesis with how it is computed).
[[nodiscard]] inline std::string gate_text(const OpDesc& op) {
  const OpDesc& f1 = *op.tail->squeeze;
  return "; the squeeze-excite op after it (pool, 1x1 " + std::to_string(op.conv.k) + "->" +
         std::to_string(f1.conv.k) + ", 1x1 " + std::to_string(f1.conv.k) + "->" + std::to_string(op.tail->conv.k);
}
/// Fuse 3's words for how the gate is computed (after gate_text).
inline constexpr const char* gate_by_kernel = ") computed from the blocks' channel sums by a second kernel, a block an image";

}  // namespace band

template <DType P>
class DepthwiseBand final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "depthwise_band"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && band::fits(op);
  }
  [[nodiscard]] bool reads_input_act() const override { return true; }
  /// Fuse 1 (algo 0, batch 1 where the fold is made): the squeeze-excite op joined after the conv
  /// (OpDesc::tail, fold_tailed_gates) computed by the same launch — each block's channel sums
  /// over its tile, the image's last block the pool's mean, fc1 and fc2 (band::text::tail) — so
  /// that EfficientNet-B0's 112×112 and 56×56 gates, which the projections' clusters do not
  /// compute (splitk_conv fuse 4), are a launch fewer each (GPU-tested and timed in session 53,
  /// H100: EfficientNet-B0 at batch 1 256.5 -> 250.7 us, heuristic plans).
  /// Fuse 3 (algo 0 or 2; at large batches): the same op as two launches — the conv's blocks
  /// write their channel sums of the values as stored (band::text::store_summed) without waiting
  /// on one another, then a kernel a block an image adds them up and computes the gate
  /// (band::gate_source). At batch 256 the tail form's fence and counter cost more than the pool
  /// they save (H100, session 64: EfficientNet-B0 5,329 -> 5,942 µs with fuse 1 on its fifteen
  /// band convs).
  [[nodiscard]] bool fuses_tail(const Variant& v) const override { return v.fuse == 1 || v.fuse == 3; }
  /// Fuse 2 (algo 0, at large batches where the fold is made): the 1×1 projection joined after a
  /// depthwise conv without an expansion (OpDesc::project, fold_projected_depthwise: MobileNetV2's
  /// features.1) computed by the same launch on tensor cores from the tile's depthwise outputs in
  /// shared memory (band::text::projection), so that the conv's output map is never stored.
  /// Claimed since its GPU test passed (band::projection_gpu_tested, session 62) wherever the
  /// engine makes the join — an engine of max batch 32 or more, at every batch it runs; timed at
  /// batch 256 only (features.1 227.7 µs against 288.5 apart, H100).
  [[nodiscard]] bool fuses_project(const Variant& v) const override { return v.fuse == 2; }
  /// The ops band::claimed names, ahead of cuDNN and its activation passes and of the depthwise
  /// tactic's kernels (its claim wins their tie: it comes first in the registry). On an H200
  /// (session 23, measured tuning's trials) it won all nine of EfficientNet-B0's 5×5 layers at
  /// batch 256 (67-252 µs against cuDNN's 142-623 with its passes) and at batch 1 (4.5-6.7 µs
  /// against the block-per-tile kernel's 9.4-21.1).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    if (!band::claimed(op)) {
      return std::nullopt;
    }
    // (algos 0 and 2 become 3 and 4, the whole map a block, where whole_claimed and the joined
    // squeeze-excite op, if any, fits the whole-map plan too)
    const bool tail = band::fuses_tail(op);
    const bool whole = band::whole_claimed(op, batch) && (!tail || band::fuses_tail(op, true));
    if (band::pipelined_claimed(op, batch)) {  // the sums form, 4 images a block pipelined
      return Claim{Variant{std::string(name()), whole ? 4 : 2, 4, 3}, rank::joins};
    }
    if (tail) {  // the joined squeeze-excite op: in the same launch, or the sums
      return Claim{Variant{std::string(name()), whole ? 3 : 0, 0, batch >= band::sums_min_batch ? 3 : 1},
                   rank::joins};
    }
    if (band::projection_claimed(op)) {  // the joined projection in the same launch
      return Claim{Variant{std::string(name()), 0, 0, 2}, rank::joins};
    }
    return Claim{Variant{std::string(name()), whole ? 3 : 0}, rank::tailored};
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries&) const override {
    if (!band::offered(op)) {
      return {};
    }
    std::vector<Variant> out{Variant{std::string(name())}};
    const bool tail = band::fuses_tail(op);
    if (tail) {
      out.push_back(Variant{std::string(name()), 0, 0, 1});
      if (batch >= band::sums_min_batch) {
        out.push_back(Variant{std::string(name()), 0, 0, 3});
      }
    } else if (band::projection_fits(op)) {
      out.push_back(Variant{std::string(name()), 0, 0, 2});
    }
    if (band::pipelined_offered(op, batch)) {  // algo 2: 2 and 4 images a block, the sums form too
      for (const int m : {2, 4}) {
        out.push_back(Variant{std::string(name()), 2, m, tail ? 3 : 0});
      }
    }
    if (band::whole_gpu_tested && band::whole_fits(op)) {  // algos 3 and 4: the whole map a block
      const bool whole_tail = tail && band::fuses_tail(op, true);
      const bool whole_sums = whole_tail && batch >= band::sums_min_batch;
      out.push_back(Variant{std::string(name()), 3, 0, whole_sums ? 3 : 0});
      if (band::pipelined_offered(op, batch)) {
        for (const int m : {2, 4}) {
          out.push_back(Variant{std::string(name()), 4, m, whole_sums ? 3 : 0});
        }
      }
    }
    return out;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const bool whole = band::whole_form(v);  // (algo 0's and 2's kernels on the whole-map plan)
    const int form = band::kernel_form(v);
    const band::Plan p = band::plan(op, whole);
    const int images = form == 1 || form == 2 ? std::max(v.math, 1) : 1;
    const long long blocks = static_cast<long long>((batch + images - 1) / images) * p.tiles_y *
                             p.tiles_x * p.chunks;
    STRATA_CHECK(blocks < (1LL << 31), "'" << op.label << "': depthwise_band: " << blocks
                                           << " blocks");
    const unsigned grid = static_cast<unsigned>(blocks);
    const unsigned threads = static_cast<unsigned>(p.threads());
    const std::size_t shared = static_cast<std::size_t>(
        v.fuse == 2 ? band::projection_shared(op, p) : form == 2 ? 2 * p.shared : p.shared);
    if (form == 2) {  // (its two patches, beside the tail's static shared memory, may pass 48 KiB)
      generated::allow_shared(k, generated::device_sms().device, shared, op.label, "depthwise_band algo 2");
    }
    const T* x = static_cast<const T*>(io.x);
    const T* z = static_cast<const T*>(io.z);
    T* y = static_cast<T*>(io.y);
    const T* wt = w.weight.template as<const T>();
    const float* bias = w.bias_f32.template as<const float>();
    const ConvGeom& g = op.conv;
    std::ostringstream what;
    what << "strata depthwise " << g.kh << "x" << g.kw
         << (g.sh > 1 ? " stride " + std::to_string(g.sh) : std::string()) << " ("
         << (op.in_act.kind != Act::none ? "the producer's activation applied once as the band is "
                                           "staged, "
                                         : "")
         << "bias" << (op.has_residual ? ", add" : "") << ", act fused; bands of " << p.th << "x"
         << p.tw << " outputs x " << 2 * p.pb << " channels a block, " << band::rows << "x"
         << band::cols << " outputs of a channel pair a thread, shapes compiled in"
         << (whole ? "; the whole map a block" : "")
         << (form == 1 ? "; filters staged in shared memory, " + std::to_string(images) +
                               (images == 1 ? " image" : " images") + " a block"
             : form == 2 ? "; pipelined: " + std::to_string(images) +
                                 (images == 1 ? " image" : " images") +
                                 " a block, the next one's patch copied in while this one is computed"
                           : std::string())
         << ")";
    if (v.fuse == 1 || v.fuse == 3) {  // the joined squeeze-excite op: its weights, the gate's slot, the sums
      const band::GateSums<T> gs = band::gate_sums<T>(op, io.tail, batch, std::int64_t{p.tiles_y} * p.tiles_x,
                                                      "depthwise_band fuse " + std::to_string(v.fuse));
      // (fuse 1: the images' counters, which each image's last block sets back to 0)
      const auto counters = std::make_shared<DeviceBuffer>(
          v.fuse == 1 ? zeroed_device_buffer(static_cast<std::size_t>(batch) * sizeof(unsigned)) : DeviceBuffer());
      what << band::gate_text(op)
           << (v.fuse == 3 ? band::gate_by_kernel : ") computed by each image's last block from the blocks' channel sums");
      const auto conv = [=](cudaStream_t s) {
        rtc::launch_shared(k, grid, threads, shared, s, x, wt, bias, y, z, batch, gs.sums(),
                           counters->template as<unsigned>(), gs.sw1, gs.sb1, gs.sw2, gs.sb2, gs.gate);
      };
      if (v.fuse == 3) {
        const cudaKernel_t kg = generated::kernel(gate_kernel_of(op, whole));
        return kernel_step(what.str(), [=](cudaStream_t s) {
          conv(s);
          gs.launch_gate(kg, batch, s);
        });
      }
      return kernel_step(what.str(), conv);
    }
    if (v.fuse == 2) {  // the joined projection: its weights, bias, output and residual
      const OpIo::Project& pr = io.project;
      STRATA_CHECK(pr.weights != nullptr && pr.y != nullptr,
                   "'" << op.label << "': depthwise_band fuse 2 without its projection's buffers");
      const T* wp = pr.weights->weight.template as<const T>();
      const float* bp = pr.weights->bias_f32.template as<const float>();
      T* yp = static_cast<T*>(pr.y);
      const T* zp = static_cast<const T*>(pr.z);
      const OpDesc& q = *op.project;
      what << "; the 1x1 projection after it on tensor cores in the same block (" << q.conv.c << "->"
           << q.conv.k << (q.has_residual ? " + residual" : "")
           << "), the depthwise conv's output kept on chip";
      return kernel_step(what.str(), [=](cudaStream_t s) {
        rtc::launch_shared(k, grid, threads, shared, s, x, wt, bias, y, z, batch, wp, bp, yp, zp);
      });
    }
    return kernel_step(what.str(), [=](cudaStream_t s) {
      rtc::launch_shared(k, grid, threads, shared, s, x, wt, bias, y, z, batch);
    });
  }

 private:
  /// The kernel variant `v` compiles for `op`, checked: algo 0 (math 0), or algo 1 with math
  /// 0, 1, 2, 4 or 8 images a block where the filters fit beside the patch; an op the kernel
  /// takes.
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo&) const override {
    STRATA_CHECK(((v.algo == 0 || v.algo == 3) && v.math == 0) ||
                     ((v.algo == 1 || v.algo == 2 || v.algo == 4) && band::images_valid(v.math)),
                 "'" << op.label << "': depthwise_band has algos 0 and 3 (math 0), and algos 1, 2 and 4 with "
                                    "math 0, 1, 2, 4 or 8 (images a block; 0 reads as 1); not "
                                 << to_string(v));
    const bool whole = band::whole_form(v);
    const int form = band::kernel_form(v);
    STRATA_CHECK(!whole || band::whole_fits(op),
                 "'" << op.label << "': depthwise_band algos 3 and 4 (the whole map a block) run a map whose "
                                    "outputs one block of 256 threads covers, where algo 0 cuts it into "
                                    "tiles; not this op's (" << to_string(v) << ")");
    STRATA_CHECK(v.fuse == 0 || v.fuse == 2 ||
                     ((v.fuse == 1 || v.fuse == 3) && ((form == 0 && v.math == 0) || form == 2) &&
                      band::fuses_tail(op, whole)),
                 "'" << op.label << "': depthwise_band has fuses 1 and 3 (algo 0 or 2) only for a depthwise "
                                    "conv with a squeeze-excite op joined after it that it computes; not "
                     << to_string(v));
    STRATA_CHECK(form != 2 || device_arch() == 0 || device_arch() >= 80,
                 "'" << op.label << "': depthwise_band algo 2 copies its patches with cp.async "
                                    "(compute capability 8.0 on)");
    STRATA_CHECK(v.fuse != 2 || (v.algo == 0 && v.math == 0 && band::projection_fits(op)),
                 "'" << op.label << "': depthwise_band has fuse 2 (algo 0) only for a depthwise conv "
                                    "without an expansion, with a joined 1x1 projection "
                                    "(fold_projected_depthwise) it computes; not "
                     << to_string(v));
    STRATA_CHECK(band::fits(op), "'" << op.label
                                     << "': depthwise_band runs a depthwise conv of dilation 1 "
                                        "whose output has its input's channel slots");
    STRATA_CHECK(v.algo != 1 || band::fits_staged_filters(op),
                 "'" << op.label << "': depthwise_band algo 1: the patch and the filters need more "
                                    "than 48 KiB of shared memory");
    return this->named(band::source(op, form, std::max(v.math, 1), v.fuse == 1 || v.fuse == 3,
                                    v.fuse == 2, v.fuse == 3, whole));
  }
  /// Fuse 3's gate kernel (band::gate_source).
  [[nodiscard]] std::vector<KernelSource> more_kernels(const OpDesc& op, const Variant& v,
                                                       const OpIo&) const override {
    if (v.fuse != 3) {
      return {};
    }
    return {gate_kernel_of(op, band::whole_form(v))};
  }
  [[nodiscard]] KernelSource gate_kernel_of(const OpDesc& op, bool whole) const {
    return {band::gate_source(op, whole), std::string("strata_rtc::depthwise_band_gate<") +
                                       kernels::detail::rtc_type<storage_t<P>>() + ">"};
  }
};

}  // namespace strata::cuda::tactics
