#pragma once
/// Tactic `generated_conv`: a convolution (16-bit NHWC, one group, no residual) with a short dot
/// product per output — the first layer of a gray or RGB network — as a kernel generated for
/// this one op: every shape, stride, padding, the activation and the fused max/avg pool are
/// literals in its source, which NVRTC compiles when the op is first prepared (cached on disk,
/// and in the process by source). Each warp takes units (an image, or a band of its output rows
/// at small batches) on its own: it stages the band's zero-padded input rows in its own shared
/// memory as f32 — from the caller's input itself, normalized, when the op reads the network's
/// input — then each lane computes 8 output channels of one output pixel, of every conv position
/// of a pooling window when the pool is fused, so the unpooled map is never stored. The filter is
/// staged once per (persistent) block; no barrier after that. Where the generic direct kernel
/// (direct_conv.hpp) spends its time on run-time index arithmetic and bounds checks, this one has
/// none left: the loops over taps, channels and window positions are unrolled, the padding is in
/// shared memory, and where every pooling window lies inside the conv's map the window's input
/// patch sits in registers.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/rtc/compiler.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

namespace generated {

/// Shared memory a generated conv's block holds at most, f32: the filter, and per warp a band of
/// the zero-padded image (the whole image when a warp takes whole images).
struct Staging {
  std::int64_t image_bytes = 0;
  std::int64_t filter_bytes = 0;
};

[[nodiscard]] inline Staging staging(const ConvGeom& g) {
  return {static_cast<std::int64_t>(g.h + 2 * g.ph) * (g.w + 2 * g.pw) * g.c * 4,
          static_cast<std::int64_t>(g.kh) * g.kw * g.c * g.kp * 4};
}

/// Elements of a shared-memory row of `elems` 16-bit values, padded to an odd number of 16-byte
/// chunks so that the 8 rows an ldmatrix reads fall in 8 different bank groups.
[[nodiscard]] inline int odd_chunks(int elems) { return (elems / 8) % 2 == 0 ? elems + 8 : elems; }

/// Whether a generated kernel is made for `op`: a 16-bit conv whose input channels are fewer
/// than their slots (a first layer: cuDNN's implicit GEMM would multiply the zero padding), one
/// group, no residual, not read space-to-depth, output slots in groups of 8, a dot product of at
/// most 72 terms (unrolled), and one warp's whole image, the filter and bias within 40 KiB of
/// shared memory.
[[nodiscard]] inline bool fits(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  const Staging s = staging(g);
  return op.kind == OpKind::conv && g.c < g.cp && g.groups == 1 && g.packed && !g.s2d &&
         !op.has_residual && g.kp % 8 == 0 && g.kh * g.kw * g.c <= 72 &&
         s.image_bytes + s.filter_bytes + std::int64_t{4} * g.kp <= (40 << 10);
}

/// A generated kernel's activation `a` as literals (its parameters exact): `act_c`, a constant
/// expression (for template arguments and `if constexpr`), and `act`, a local copy of its fields
/// that activate() takes. Passing the constexpr object itself made NVRTC (CUDA 13.0) keep it as
/// a weak global and switch on its kind at run time in every activate() call (dense_softmax:
/// 356 compares in its PTX instead of 16); a local built from constant fields folds.
inline void act_constant(std::ostringstream& o, const ActDesc& a) {
  o << "  constexpr ActDesc act_c{static_cast<Act>(" << static_cast<int>(a.kind) << "), "
    << std::hexfloat << a.alpha << "f, " << a.beta << "f};\n"
    << std::defaultfloat
    << "  const ActDesc act{act_c.kind, act_c.alpha, act_c.beta};\n";
}

/// Whether the current device runs what Strata's generated mma.sync kernels use (sm_80 on:
/// mma.sync in bf16, ldmatrix, cp.async, max.f16x2); true where no device answers (an engine
/// cannot be built there anyway).
[[nodiscard]] inline bool mma_sync_device() {
  return kernels::device_attribute(cudaDevAttrComputeCapabilityMajor).value_or(8) >= 8;
}

/// Activation `a` as two constants of a generated kernel: `constexpr Act <kind>` (for template
/// arguments: activate_as<kind>) and `const ActDesc <desc>` (its parameters exact), for a kernel
/// with more than one activation (expand_depthwise, normed_conv). Not constexpr: NVRTC keeps a
/// constexpr ActDesc whose address an inlined call takes as a weak global, and reads the kind
/// (activate(): a switch for every value) or the bounds from it (session 62's audit of every
/// generated kernel's PTX: EfficientNet-B0's squeeze-excite gates in splitk_conv fuse 4 and
/// depthwise_band fuse 1 switched on the kind; MobileNetV2's ReLU6 bounds were loaded).
inline void act_constants(std::ostringstream& o, const char* kind, const char* desc, const ActDesc& a) {
  o << "  constexpr Act " << kind << " = static_cast<Act>(" << static_cast<int>(a.kind) << ");\n"
    << "  const ActDesc " << desc << "{" << kind << ", " << std::hexfloat << a.alpha << "f, "
    << a.beta << "f};\n"
    << std::defaultfloat;
}

/// A folded squeeze-excite op's constants in a kernel that computes its gate (splitk_conv fuse 4,
/// depthwise_band fuse 1): `SE_K1` fc1's outputs and `SE_K1P` its slots (fc2's row); fc1's
/// activation (SE_A1, se_act1), the one fc2 applies on load (SE_I2, se_in_act2) and fc2's
/// (SE_A2, se_act2). `q` is the squeeze-excite op (its `squeeze`, fc1).
inline void excite_constants(std::ostringstream& o, const OpDesc& q) {
  const OpDesc& f1 = *q.squeeze;
  o << "  constexpr int SE_K1 = " << f1.conv.k << ", SE_K1P = " << f1.conv.kp
    << ";  // fc1's outputs (and slots: fc2's row)\n";
  act_constants(o, "SE_A1", "se_act1", f1.act);
  act_constants(o, "SE_I2", "se_in_act2", q.in_act);
  act_constants(o, "SE_A2", "se_act2", q.act);
}

/// A depthwise conv's epilogue where a 1×1 projection joins it in the same kernel
/// (expand_depthwise fuse 1, depthwise_band fuse 2): each thread's channel pair (ch, p) of R×CW
/// outputs (acc, its strip st and column group cg) — bias and activation, rounded to the storage
/// type as the depthwise conv's output is stored — into the tile's rows of the projection's input
/// (ds: a pixel's channels a row, DP elements apart; the slots past the real channels 0).
inline constexpr const char* store_tile = R"src(      // Bias, the activation, rounded as stored, into the projection's input rows.
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int q = 0; q < CW; ++q) {
          const float v0 = activate_as<A>(act, acc[r][q][0] + bv.x);
          const float v1 = activate_as<A>(act, acc[r][q][1] + bv.y);
          reinterpret_cast<unsigned*>(ds)[((st * R + r) * TW + cg * CW + q) * (DP / 2) + p] =
              pack2<T>(ch < KREAL ? v0 : 0.0f, ch + 1 < KREAL ? v1 : 0.0f);
        }
      }
)src";

/// The device functions of the kernels that compute a squeeze-excite op's gate from its pooled
/// vector (splitk_conv fuse 4, depthwise_band fuse 1), after excite_constants: fc1's output
/// finished from its sum and fc2's for one channel — the squeeze-excite kernel's arithmetic and
/// roundings.
inline constexpr const char* excite_helpers = R"src(// fc1's output o (of k1; 0 in the padding slots) from its sum: its bias and activation,
// rounded to T as fc1 stores it; then the activation fc2 applies as it loads it (I2), rounded.
template <class T, Act I2>
__device__ __forceinline__ float se_squeezed(ActDesc a1, ActDesc i2, float sum, const float* __restrict__ b1, int o,
                                             int k1) {
  float f = o < k1 ? as_stored<T>(activate(a1, sum + (b1 != nullptr ? b1[o] : 0.0f))) : 0.0f;
  if (I2 != Act::none) {
    f = as_stored<T>(activate(i2, f));
  }
  return f;
}
// Channel ch's gate, before it is stored: fc2's row ch (K1P slots) times the squeezed vector sq
// (shared memory), its bias and activation.
template <int K1P, class T>
__device__ __forceinline__ float se_excited(ActDesc a2, const float* sq, const T* __restrict__ w2,
                                            const float* __restrict__ b2, int ch) {
  float acc = 0.0f;
  for (int i = 0; i < K1P; i += 8) {
    float wv[8];
    load8(w2 + static_cast<long long>(ch) * K1P + i, wv);
#pragma unroll
    for (int j = 0; j < 8; ++j) acc += sq[i + j] * wv[j];
  }
  return activate(a2, acc + (b2 != nullptr ? b2[ch] : 0.0f));
}
)src";

/// Whether a kernel storing channel pairs (4 bytes) writes `op`'s concat slice itself: the
/// slice's own slots (write == kp), unit channel stride, not flattened, its pairs 4-byte aligned
/// (first channel, pixel and image strides even). halo_conv, splitk_conv.
[[nodiscard]] inline bool pair_slice_fits(const OpDesc& op) {
  return op.slice.has_value() && !op.slice->flatten && op.slice->strides.channel == 1 &&
         op.slice->write == op.conv.kp && op.slice->c0 % 2 == 0 && op.slice->strides.pixel % 2 == 0 &&
         op.slice->strides.image % 2 == 0;
}
/// The lambda norm2 of the kernels that apply a folded batch norm as they load (normed_conv,
/// splitk_conv fuse 3): a channel pair normalized as the batch norm's kernel computes it
/// (x · scale + shift, norm_act, rounded to T, 0 past the C channels). Expects T, C and norm_act
/// in scope.
[[nodiscard]] inline const char* norm_pair_source() {
  return R"src(  // A channel pair of an A fragment, normalized as the batch norm's kernel computes it.
  auto norm2 = [&](unsigned r, float sa, float sb, float fa, float fb, int c) -> unsigned {
    const T* h = reinterpret_cast<const T*>(&r);
    float t0 = load(h);
    float t1 = load(h + 1);
    t0 *= sa;
    t1 *= sb;
    t0 += fa;
    t1 += fb;
    return pack2<T>(c < C ? activate(norm_act, t0) : 0.0f, c + 1 < C ? activate(norm_act, t1) : 0.0f);
  };
)src";
}
/// The "+f" operands of a generated `wgmma` statement: accumulators `acc`[n][i], n < nt, i < 4
/// (%0 to %(4·nt − 1)).
[[nodiscard]] inline std::string wgmma_accumulators(int nt, const std::string& acc) {
  std::ostringstream w;
  for (int i = 0; i < 4 * nt; ++i) {
    w << (i ? ", " : "") << "\"+f\"(" << acc << "[" << i / 4 << "][" << i % 4 << "])";
  }
  return w.str();
}
/// The opening of a generated `wgmma.mma_async.sync.aligned.m64n(8·nt)k16.f32.<types>` asm
/// statement: the predicate p set from operand %`scale` (scale-d), the mnemonic and the
/// accumulators' list.
[[nodiscard]] inline std::string wgmma_opening(int nt, const char* types, int scale) {
  std::ostringstream w;
  w << "asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %" << scale
    << ", 0;\\nwgmma.mma_async.sync.aligned.m64n" << 8 * nt << "k16.f32." << types << " {";
  for (int i = 0; i < 4 * nt; ++i) {
    w << (i ? ", " : "") << "%" << i;
  }
  w << "}";
  return w.str();
}

/// The statement of one `wgmma.mma_async.sync.aligned.m64n(8·nt)k16.f32.<types>` (types
/// "f16.f16" or "bf16.bf16") in a generated kernel: f32 accumulators `acc`[n][i] (n < nt, i < 4:
/// the m16n8 C-fragment layout of each warp's 16 rows, per n-tile) updated in place, A from the
/// four registers `a`[0..3] (the m16k16 A-fragment layout), B from shared memory through the
/// 64-bit descriptor `desc`; scale-d 1 (accumulate), no negation, B not transposed (K-major).
[[nodiscard]] inline std::string wgmma_call(int nt, const char* types, const std::string& acc,
                                            const std::string& a) {
  std::ostringstream w;
  w << wgmma_opening(nt, types, 4 * nt + 5) << ", {%" << 4 * nt << ", %" << 4 * nt + 1 << ", %"
    << 4 * nt + 2 << ", %" << 4 * nt + 3 << "}, %" << 4 * nt + 4
    << ", p, 1, 1, 0;\\n}\\n\"\n            : " << wgmma_accumulators(nt, acc)
    << "\n            : \"r\"(" << a << "[0]), \"r\"(" << a << "[1]), \"r\"(" << a
    << "[2]), \"r\"(" << a << "[3]), \"l\"(desc), \"r\"(1));\n";
  return w.str();
}

/// The same with both operands in shared memory (descriptors `da` and `db`; K-major, neither
/// transposed), scale-d from the int `sc` (0: overwrite — a tile's first k-step).
[[nodiscard]] inline std::string wgmma_ss_call(int nt, const char* types, const std::string& acc,
                                               const char* db = "db") {
  std::ostringstream w;
  w << wgmma_opening(nt, types, 4 * nt + 2) << ", %" << 4 * nt << ", %" << 4 * nt + 1
    << ", p, 1, 1, 0, 0;\\n}\\n\"\n              : " << wgmma_accumulators(nt, acc)
    << "\n              : \"l\"(da), \"l\"(" << db << "), \"r\"(sc));\n";
  return w.str();
}

/// A warp's share of a warpgroup's m64 accumulators `acc`[n][i] (channels as wgmma's M: channel
/// 16·wr + lane/4 + 8·(i/2), column col0 + 8·n + 2·(lane%4) + i%2) stored transposed into shared
/// memory for one 8-channel half h: n-tiles in pairs by stmatrix .x2 .trans (lane l gives row l%8
/// of matrix l/8: the column whose 8 channels that row holds), an odd last one by .x1 — a column's
/// 8 channels a 16-byte row at `base` + 2 · (column · CTS + c0). Expects in scope T, NWG, CTS, lane,
/// col0, h, c0 and `val(a)`, the value stored for an accumulator (tile_conv's swapped forms,
/// plane_conv).
[[nodiscard]] inline std::string stmatrix_trans_columns(const char* base) {
  return std::string(R"src(#pragma unroll
          for (int n = 0; n < NWG / 8; n += 2) {
            const unsigned r0 = pack2<T>(val(acc[n][2 * h]), val(acc[n][2 * h + 1]));
            const int col = col0 + 8 * (n + ((lane >> 3) & 1)) + (lane & 7);
            const unsigned at = )src") + base + R"src( + 2u * static_cast<unsigned>(col * CTS + c0);
            if (n + 1 < NWG / 8) {
              const unsigned r1 = pack2<T>(val(acc[n + 1][2 * h]), val(acc[n + 1][2 * h + 1]));
              asm volatile("stmatrix.sync.aligned.m8n8.x2.trans.shared.b16 [%0], {%1, %2};" ::"r"(at), "r"(r0), "r"(r1) : "memory");
            } else {
              asm volatile("stmatrix.sync.aligned.m8n8.x1.trans.shared.b16 [%0], {%1};" ::"r"(at), "r"(r0) : "memory");
            }
          }
)src";
}

/// Shared memory a block may opt into on sm_90 (the H100's and H200's 227 KiB): the budget of the
/// kernels sized for it (plane_conv, halo_conv, bottleneck_conv, stem_conv).
inline constexpr std::int64_t hopper_max_shared = 227 << 10;

/// Thread 0's initialization of NB pairs of mbarriers — full0 + 8b and empty0 + 8b, 128 arrivals
/// each (a warpgroup's threads) — then `extra` (more inits), then the fence that makes them visible
/// (the warp-specialized kernels: plane_conv math 3, stem_conv). Indented 4 spaces, inside the
/// caller's `if (tid == 0) {`.
[[nodiscard]] inline std::string init_buffer_barriers(const std::string& extra = "") {
  return std::string(R"src(#pragma unroll
    for (int b = 0; b < NB; ++b) {
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 128;" ::"r"(full0 + 8u * b) : "memory");
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 128;" ::"r"(empty0 + 8u * b) : "memory");
    }
)src") + extra + R"src(    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
)src";
}
/// `wait_phase(bar, parity)`: waits for the phase of parity `parity` of the mbarrier at shared
/// address `bar` to complete (try_wait in a loop). Indented 2 spaces.
[[nodiscard]] inline const char* wait_phase_lambda() {
  return R"src(  auto wait_phase = [](unsigned bar, unsigned parity) {
    unsigned done = 0;
    do {
      asm volatile("{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\tselp.u32 %0, 1, 0, p;\n}"
                   : "=r"(done)
                   : "r"(bar), "r"(parity)
                   : "memory");
    } while (done == 0);
  };
)src";
}

/// Shared memory a block of a kernel sized up to `cap` bytes may take: the current device's
/// opt-in, at most `cap` (`cap` where no device answers).
[[nodiscard]] inline std::int64_t shared_budget(std::int64_t cap) {
  return std::min<std::int64_t>(kernels::device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin).value_or(cap), cap);
}

/// The loop of a generated conv's 256 threads that stage its filter in shared memory `ws` once a
/// block, zero past the last tap (the last k-step's B must not be NaN): as rows of WS elements
/// (WCH 16-byte chunks in all), or as wgmma's core matrices (no swizzle, K-major: 8 channels × 8
/// k-slots, 128 contiguous bytes; a channel group's KSTEPS · 2 of them in k order, then the next
/// group's). Expects in scope KP, KSTEPS, WROW (filter elements per output channel), WS, WCH and
/// the filter `w` (rows of WROW).
[[nodiscard]] inline const char* stage_filter(bool core_matrices) {
  return core_matrices ? R"src(  for (int i = threadIdx.x; i < KP * KSTEPS * 2; i += 256) {
    const int n = i / (KSTEPS * 2);
    const int c = i % (KSTEPS * 2);
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (c * 8 < WROW) {
      v = *reinterpret_cast<const uint4*>(w + n * WROW + c * 8);
    }
    *reinterpret_cast<uint4*>(ws + ((n >> 3) * KSTEPS * 2 + c) * 64 + (n & 7) * 8) = v;
  }
)src"
                       : R"src(  for (int i = threadIdx.x; i < WCH; i += 256) {
    const int n = i / (WS / 8);
    const int k = (i % (WS / 8)) * 8;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (k < WROW) {
      v = *reinterpret_cast<const uint4*>(w + n * WROW + k);
    }
    *reinterpret_cast<uint4*>(ws + n * WS + k) = v;
  }
)src";
}

/// The k-loop of a conv's GEMM on wgmma for one warpgroup unit (mma_conv's third form,
/// tile_conv's algo 3): per k-step one `wgmma.mma_async.m64n(8·nt)k16` with A from registers —
/// double-buffered, the next k-step's loaded (`load_next`, a statement filling `a[(s + 1) & 1]`)
/// while this one's MMA runs (wait_group 1) — and B, the filter, read from shared memory as
/// core matrices (no swizzle, K-major: 8 channels × 8 k-slots, 128 contiguous bytes; a channel
/// group's KSTEPS · 2 of them in k order, then the next group's) through a descriptor: address,
/// leading (K) byte offset 128, stride (N) byte offset a channel group's matrices. Expects in
/// scope T, KSTEPS, `ws` (the core matrices), `n0` (the unit's first n-tile) and the zeroed f32
/// accumulators `acc`[n][i]; `first_load` fills `a[0]`. Ends with every MMA complete.
[[nodiscard]] inline std::string wgmma_mainloop(int nt, const std::string& acc,
                                                const std::string& first_load,
                                                const std::string& load_next) {
  std::ostringstream o;
  o << R"src(      const unsigned wb = shared_address(ws) + n0 * (KSTEPS * 2 * 128);
      constexpr unsigned long long DESC_OFFSETS =
          (static_cast<unsigned long long>(128 >> 4) << 16) |
          (static_cast<unsigned long long>((KSTEPS * 2 * 128) >> 4) << 32);
      unsigned a[2][4];
      )src" << first_load << R"src(
#pragma unroll
      for (int s = 0; s < KSTEPS; ++s) {
        const unsigned (&ar)[4] = a[s & 1];
        const unsigned long long desc =
            DESC_OFFSETS | static_cast<unsigned long long>(((wb + s * 256) & 0x3FFFF) >> 4);
        asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
        if constexpr (is_same<T, bf16>::value) {
          )src" << wgmma_call(nt, "bf16.bf16", acc, "ar") << R"src(        } else {
          )src" << wgmma_call(nt, "f16.f16", acc, "ar") << R"src(        }
        asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
        if (s + 1 < KSTEPS) {
          asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
          )src" << load_next << R"src(
        }
      }
      asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) asm volatile("" : "+f"()src" << acc << R"src([n][i])::"memory");
      }
)src";
  return o.str();
}

/// Opens the kernel `kernel` generated for `op`: Strata's kernel source, the signature (x, w,
/// bias, y, then `params`) and the op's shapes as constants — input H, W, CP, C, FCG; filter KH,
/// KW; strides SH, SW, padding PH, PW, dilation DH, DW; output OH, OW, K, KP; the pool's window
/// QH, QW, stride PSH, PSW, padding PPH, PPW, output YH, YW, IS_MAX and all of it as the
/// PoolShape `pool` (with `pooled`; else a 1x1 window over the conv's map) — and the activation
/// `act`. Blocks of `threads` threads (256 unless said), registers limited so that `min_blocks`
/// fit an SM; `attrs` goes before the launch bounds (a `__cluster_dims__(...)`, say). With
/// `early_work` the kernel opens with pdl_launch only, and calls pdl_wait itself once it has done
/// what needs nothing an earlier kernel wrote (else pdl_entry, both, first thing). `helpers`:
/// device functions written before the kernel (excite_helpers).
inline void open_kernel(std::ostringstream& o, const OpDesc& op, bool pooled, const char* kernel,
                        const char* params, int min_blocks = 1, const std::string& attrs = "",
                        int threads = 256, bool early_work = false, const char* helpers = "") {
  const ConvGeom& g = op.conv;
  auto constant = [&](const char* name, long long v) {
    o << "  constexpr int " << name << " = " << v << ";\n";
  };
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n" << helpers
    << "// Generated for '" << op.label << "'.\n"
    << "template <class T>\n__global__ void " << attrs << "__launch_bounds__(" << threads << ", " << min_blocks
    << ") " << kernel
    << "(\n"
    << "    const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ bias,\n"
    << "    T* __restrict__ y, " << params << ") {\n"
    << (early_work ? "  pdl_launch();  // (a programmatic dependent launch: its wait comes after the filter's first copies)\n"
                   : "  pdl_entry();  // (a programmatic dependent launch's wait; else nothing)\n");
  constant("H", g.h);
  constant("W", g.w);
  constant("CP", g.cp);
  constant("C", g.c);
  constant("FCG", g.fcg);
  constant("KH", g.kh);
  constant("KW", g.kw);
  constant("SH", g.sh);
  constant("SW", g.sw);
  constant("PH", g.ph);
  constant("PW", g.pw);
  constant("DH", g.dh);
  constant("DW", g.dw);
  constant("OH", g.oh);
  constant("OW", g.ow);
  constant("K", g.k);
  constant("KP", g.kp);
  // The fused pool's window (a 1x1 window over the conv's map without one).
  const kernels::PoolShape ps = kernels::conv_pool_shape(op, 0, g.kp, pooled);
  constant("QH", ps.kh);  // conv positions per pooled output
  constant("QW", ps.kw);
  constant("PSH", ps.sh);
  constant("PSW", ps.sw);
  constant("PPH", ps.ph);
  constant("PPW", ps.pw);
  constant("YH", ps.oh);
  constant("YW", ps.ow);
  o << "  constexpr bool IS_MAX = " << (ps.is_max ? "true" : "false") << ";\n"
    << "  constexpr PoolShape pool = " << kernels::source_literal(ps) << ";\n";
  act_constant(o, op.act);
}

/// Where a generated conv reads its input: the network's input in storage form (the input
/// step's output), or the caller's input itself (`raw`: its element type, layout and the
/// normalization applied as it is staged, so the network needs no input step).
struct Source {
  bool raw = false;
  InputFormat format = InputFormat::f32;
  bool hwc = false;  ///< the caller's input is height × width × channels per image
};

/// Where a generated kernel reads its input, as constants of its source: RAW (the caller's input
/// itself), its element type Src and SRC_HWC.
inline void source_constants(std::ostringstream& o, const Source& src) {
  o << "  constexpr bool RAW = " << (src.raw ? "true" : "false") << ";\n"
    << "  using Src = "
    << (src.format == InputFormat::f16 ? "f16"
        : src.format == InputFormat::u8_hwc ? "unsigned char" : "float") << ";\n"
    << "  constexpr bool SRC_HWC = " << (src.hwc ? "true" : "false") << ";\n";
}

/// The input patch a thread keeps in registers when every pooling window lies inside the conv's
/// map (no pool padding, no partial windows): rows × columns × channels of the padded input that
/// the window's conv positions read.
struct Patch {
  int rows = 0;
  int cols = 0;
  [[nodiscard]] bool used(const ConvGeom& g) const { return rows > 0 && rows * cols * g.c <= 64; }
};
[[nodiscard]] inline Patch patch(const OpDesc& op, bool pooled) {
  const ConvGeom& g = op.conv;
  const kernels::PoolShape p = kernels::conv_pool_shape(op, 0, g.kp, pooled);
  const bool inside = p.ph == 0 && p.pw == 0 && (p.oh - 1) * p.sh + p.kh <= g.oh &&
                      (p.ow - 1) * p.sw + p.kw <= g.ow;
  if (!inside) {
    return {};
  }
  return {(p.kh - 1) * g.sh + (g.kh - 1) * g.dh + 1, (p.kw - 1) * g.sw + (g.kw - 1) * g.dw + 1};
}

/// Floats of shared memory a warp stages for one unit when an image's output rows are split in
/// `splits` bands: the most padded input rows any band reads, × padded width × channels (the
/// kernel's own arithmetic, band by band).
[[nodiscard]] inline int band_floats(const OpDesc& op, bool pooled, int splits) {
  const ConvGeom& g = op.conv;
  const kernels::PoolShape p = kernels::conv_pool_shape(op, 0, g.kp, pooled);
  int rows = 0;
  for (int part = 0; part < splits; ++part) {
    const int r0 = part * p.oh / splits;
    const int r1 = (part + 1) * p.oh / splits;
    if (r1 <= r0) {
      continue;
    }
    const int cy0 = std::min(std::max(r0 * p.sh - p.ph, 0), g.oh - 1);
    const int cy1 = std::min(std::max((r1 - 1) * p.sh - p.ph + p.kh - 1, 0), g.oh - 1);
    rows = std::max(rows, (cy1 - cy0) * g.sh + (g.kh - 1) * g.dh + 1);
  }
  return rows * (g.w + 2 * g.pw) * g.c;
}

/// The kernel's source for `op` (pooled: with its fused pool), reading its input from `src`.
[[nodiscard]] inline std::string source(const OpDesc& op, bool pooled, Source src = {}) {
  std::ostringstream o;
  open_kernel(o, op, pooled, "generated_conv",
              "int splits, long long units, const void* __restrict__ raw, "
              "const float* __restrict__ affine, int band_floats");
  const Patch pt = patch(op, pooled);
  const bool use_patch = pt.used(op.conv);
  source_constants(o, src);
  o << "  constexpr bool PATCH = " << (use_patch ? "true" : "false") << ";\n"
    << "  constexpr int PR = " << (use_patch ? pt.rows : 1) << ";\n"
    << "  constexpr int PC = " << (use_patch ? pt.cols : 1) << ";\n";
  o << R"src(  constexpr int WP = W + 2 * PW;
  constexpr int TAPS = KH * KW;
  constexpr int KG = KP / 8;
  __shared__ float4 sw4[TAPS * C * KP / 4];
  __shared__ float sb[KP];
  extern __shared__ float bands[];  // one band of padded input rows per warp (band_floats each)
  float* swf = reinterpret_cast<float*>(sw4);
  // The filter, read in its own order (coalesced): rows (KP, TAPS, FCG), channels >= C skipped;
  // staged once per block, the only barrier of the kernel.
  for (int e = threadIdx.x; e < KP * TAPS * FCG; e += blockDim.x) {
    const int c = e % FCG;
    if (c < C) {
      const int tap = (e / FCG) % TAPS;
      const int k = e / (FCG * TAPS);
      swf[(tap * C + c) * KP + k] = load(w + e);
    }
  }
  for (int k = threadIdx.x; k < KP; k += blockDim.x) {
    sb[k] = bias != nullptr && k < K ? bias[k] : 0.0f;
  }
  __syncthreads();
  // Each warp takes units (image, band of output rows) in turn, on its own: it stages the band's
  // padded input rows in its own shared memory, then its lanes compute the band's outputs. At
  // small batches an image's rows spread over several units.
  const int lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  float* sx = bands + (threadIdx.x >> 5) * band_floats;
  for (long long unit = static_cast<long long>(blockIdx.x) * warps + (threadIdx.x >> 5);
       unit < units; unit += static_cast<long long>(gridDim.x) * warps) {
  const long long img = unit / splits;
  const int part = static_cast<int>(unit % splits);
  const int r0 = part * YH / splits;
  const int r1 = (part + 1) * YH / splits;
  // Padded input rows read by output rows [r0, r1): conv rows of their pooling windows, clamped.
  const int cy0 = min(max(r0 * PSH - PPH, 0), OH - 1);
  const int cy1 = min(max((r1 - 1) * PSH - PPH + QH - 1, 0), OH - 1);
  const int iy0 = cy0 * SH;
  const int iy1 = cy1 * SH + (KH - 1) * DH + 1;
  const T* xi = x + img * (H * W * CP);
  const Src* ri = static_cast<const Src*>(raw) + img * (H * W * C);
  __syncwarp();  // the previous unit's band is no longer read
#pragma unroll 4
  for (int e = lane; e < (iy1 - iy0) * WP * C; e += 32) {
    const int c = e % C;
    const int px = (e / C) % WP - PW;
    const int py = iy0 + e / (C * WP) - PH;
    float v = 0.0f;
    if (py >= 0 && py < H && px >= 0 && px < W) {
      if constexpr (RAW) {  // the caller's input, normalized and rounded as the input step would
        v = as_stored<T>(normalize(
            load(ri + (SRC_HWC ? (py * W + px) * C + c : (c * H + py) * W + px)), affine, c));
      } else {
        v = load(xi + (py * W + px) * CP + c);
      }
    }
    sx[e] = v;
  }
  __syncwarp();
  for (int item = r0 * YW * KG + lane; item < r1 * YW * KG; item += 32) {
    const int k0 = (item % KG) * 8;
    const int pix = item / KG;
    const int py = pix / YW;
    const int px = pix % YW;
    const int oy0 = py * PSH - PPH;
    const int ox0 = px * PSW - PPW;
    float v[QH * QW][8];
#pragma unroll
    for (int q = 0; q < QH * QW; ++q) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        v[q][j] = sb[k0 + j];
      }
    }
    // Where every window position is inside the conv's map (PATCH), the padded input the
    // window reads is loaded once into registers; each tap's 8 weights are read once for all of
    // the window either way.
    float p[PR][PC][C];
    if constexpr (PATCH) {
#pragma unroll
      for (int r = 0; r < PR; ++r) {
#pragma unroll
        for (int cc = 0; cc < PC; ++cc) {
#pragma unroll
          for (int c = 0; c < C; ++c) {
            p[r][cc][c] = sx[((oy0 * SH - iy0 + r) * WP + ox0 * SW + cc) * C + c];
          }
        }
      }
    }
#pragma unroll
    for (int tap = 0; tap < TAPS; ++tap) {
      const int ky = tap / KW;
      const int kx = tap % KW;
#pragma unroll
      for (int c = 0; c < C; ++c) {
        const float4 w0 = sw4[((tap * C + c) * KP + k0) / 4];
        const float4 w1 = sw4[((tap * C + c) * KP + k0) / 4 + 1];
#pragma unroll
        for (int q = 0; q < QH * QW; ++q) {
          float xv;
          if constexpr (PATCH) {
            xv = p[(q / QW) * SH + ky * DH][(q % QW) * SW + kx * DW][c];
          } else {
            // A window position outside the conv's output is computed on a clamped one (a row
            // of this band) and ignored below.
            const int oy = min(max(oy0 + q / QW, cy0), cy1);
            const int ox = min(max(ox0 + q % QW, 0), OW - 1);
            xv = sx[((oy * SH + ky * DH - iy0) * WP + ox * SW + kx * DW) * C + c];
          }
          v[q][0] += xv * w0.x; v[q][1] += xv * w0.y; v[q][2] += xv * w0.z; v[q][3] += xv * w0.w;
          v[q][4] += xv * w1.x; v[q][5] += xv * w1.y; v[q][6] += xv * w1.z; v[q][7] += xv * w1.w;
        }
      }
    }
    float out[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      out[j] = pool_start(pool);
    }
#pragma unroll
    for (int q = 0; q < QH * QW; ++q) {
      const int oy = oy0 + q / QW;
      const int ox = ox0 + q % QW;
      if (PATCH || (oy >= 0 && oy < OH && ox >= 0 && ox < OW)) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          out[j] = pool_add(pool, out[j], activate(act, v[q][j]));
        }
      }
    }
    const float divisor = IS_MAX ? 1.0f : pool_window(pool, py, px).divisor;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      out[j] = k0 + j < K ? (IS_MAX ? out[j] : out[j] / divisor) : 0.0f;
    }
    store8(y + ((img * YH + py) * YW + px) * KP + k0, out);
  }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

/// The tensor-core form of a generated conv (variant algo 1): the pool's window positions per
/// pooled output (1 without a pool), the reduction length (taps × input channels, packed densely
/// rather than in channel slots), its k-steps of 16 and the output's n-tiles of 8.
struct MmaShape {
  int window = 1;
  int reduction = 0;
  int ksteps = 0;
  int ntiles = 0;
};
[[nodiscard]] inline MmaShape mma_shape(const OpDesc& op, bool pooled) {
  const ConvGeom& g = op.conv;
  const kernels::PoolShape p = kernels::conv_pool_shape(op, 0, g.kp, pooled);
  MmaShape m;
  m.window = p.kh * p.kw;
  m.reduction = g.kh * g.kw * g.c;
  m.ksteps = (m.reduction + 15) / 16;
  m.ntiles = g.kp / 8;
  return m;
}

/// Whether the tensor-core form serves `op` (pooled: with its pool inside): what `fits` asks, a
/// pool window of 1 or 4 positions (a 2x2 window's meet in one thread's two accumulator rows and
/// one shuffle; the DSL's windows are square), and the filter within 16 k-step × n-tile fragments, which each lane keeps in
/// registers for the whole kernel.
[[nodiscard]] inline bool mma_fits(const OpDesc& op, bool pooled) {
  if (!fits(op)) {
    return false;
  }
  const MmaShape m = mma_shape(op, pooled && op.pool.has_value());
  return (m.window == 1 || m.window == 4) && m.ksteps * m.ntiles <= 16;
}

/// Blocks of 256 threads the tensor-core form asks to fit an SM (its register bound): 4 (at most
/// 64 registers) when the filter fragments, accumulators and tap offsets take at most 32 of
/// them — MNIST's first conv: 69 registers at 3 blocks took 101 µs at batch 4096 on an H200, 64
/// at 4 blocks 75 µs (one round of images for the resident warps instead of two) —, else 2.
[[nodiscard]] inline int mma_min_blocks(const MmaShape& m) {
  return 2 * m.ksteps * m.ntiles + 4 * m.ntiles + 4 * m.ksteps <= 32 ? 4 : 2;
}

/// 16-bit elements of shared memory a warp of the tensor-core form stages: its whole zero-padded
/// image (NHWC, the input's C channels, no slots), rounded up to 16 bytes.
[[nodiscard]] inline int mma_image_elems(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return ((g.h + 2 * g.ph) * (g.w + 2 * g.pw) * g.c + 7) / 8 * 8;
}

/// Whether max(act(x + b)) over a window equals act(max(x) + b) exactly, so that the tensor-core
/// form pools the raw sums first and applies bias and activation once per pooled output: a max
/// pool and an activation that never decreases (none, relu, clip, leaky_relu with slope ≥ 0).
[[nodiscard]] inline bool pool_before_act(const OpDesc& op, bool pooled) {
  if (!pooled || !op.pool || op.pool->kind != OpKind::max_pool) {
    return false;
  }
  switch (op.act.kind) {
    case Act::none:
    case Act::relu:
    case Act::clip:
      return true;
    case Act::leaky_relu:
      return op.act.alpha >= 0.0f;
    default:
      return false;
  }
}

/// The tensor-core form's source (kernel `generated_conv_mma`): an implicit GEMM per image on
/// mma.sync m16n8k16 with f32 accumulation. Each warp takes units (an image, or a range of its
/// row tiles at small batches) on its own and stages the unit's whole padded image in its shared
/// memory, as 16-bit values with the input's own channels only (a gray first layer reduces over
/// 9 taps, not 9 × 8 channel slots). A-fragments are read from there with per-lane offsets of
/// (tap, channel) computed once; the filter's B-fragments and the bias stay in registers. GEMM
/// rows are conv positions ordered by window position, then pooled output: a tile of 16 rows
/// holds 4 pooled outputs of a 2x2 window (16 conv positions without a pool), whose positions
/// meet in one thread (rows g and g + 8) and the lane 16 apart. Pairs of channels are stored with 32-bit stores.
[[nodiscard]] inline std::string mma_source(const OpDesc& op, bool pooled, Source src = {}) {
  std::ostringstream o;
  const ConvGeom& g = op.conv;
  const kernels::PoolShape p = kernels::conv_pool_shape(op, 0, g.kp, pooled);
  const MmaShape m = mma_shape(op, pooled);
  open_kernel(o, op, pooled, "generated_conv_mma",
              "int splits, long long units, const void* __restrict__ raw, "
              "const float* __restrict__ affine",
              mma_min_blocks(m));
  const int rows_per_tile = 16 / m.window;
  const int np = p.oh * p.ow;
  const bool inside = p.ph == 0 && p.pw == 0 && (p.oh - 1) * p.sh + p.kh <= g.oh &&
                      (p.ow - 1) * p.sw + p.kw <= g.ow;
  source_constants(o, src);
  o << "  constexpr int QQ = " << m.window << ";\n"
    << "  constexpr int KR = " << m.reduction << ";\n"
    << "  constexpr int KS = " << m.ksteps << ";\n"
    << "  constexpr int NT = " << m.ntiles << ";\n"
    << "  constexpr int IMG = " << mma_image_elems(op) << ";\n"
    << "  // every row of every tile a valid conv position of a pooled output\n"
    << "  constexpr bool ALL_VALID = "
    << (inside && np % rows_per_tile == 0 ? "true" : "false") << ";\n"
    << "  constexpr bool POOL_FIRST = " << (pool_before_act(op, pooled) ? "true" : "false")
    << ";\n"
    << "  // a max pool then no act or relu: the window's max and the relu on rounded pairs\n"
    << "  constexpr bool PACKED_MAX = "
    << (pool_before_act(op, pooled) && (op.act.kind == Act::none || op.act.kind == Act::relu)
            ? "true"
            : "false")
    << ";\n";
  o << R"src(  constexpr int WP = W + 2 * PW;
  constexpr int TAPS = KH * KW;
  constexpr int RPT = 16 / QQ;  // pooled outputs per tile of 16 rows
  constexpr int NP = YH * YW;
  constexpr int TILES = (NP + RPT - 1) / RPT;
  extern __shared__ unsigned short images[];  // per warp: its padded image, IMG elements
  const int lane = threadIdx.x & 31;
  const int g = lane >> 2;
  const int t = lane & 3;
  const int warps = blockDim.x >> 5;
  unsigned short* sx = images + (threadIdx.x >> 5) * IMG;
  for (int e = lane; e < IMG; e += 32) {
    sx[e] = 0;  // the padding, never written again
  }
  // B-fragments of the filter (rows (KP, TAPS, FCG)): lane (g, t) holds, for n-tile j and k-step
  // s, output channel 8j + g at reductions 16s + 2t, +1 and 16s + 2t + 8, +9; zero past KR.
  const unsigned short* w16 = reinterpret_cast<const unsigned short*>(w);
  unsigned bf[KS][NT][2];
#pragma unroll
  for (int s = 0; s < KS; ++s) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        unsigned pair = 0;
#pragma unroll
        for (int b = 0; b < 2; ++b) {
          const int kc = 16 * s + 2 * t + 8 * h + b;
          const unsigned bits =
              kc < KR ? w16[((8 * j + g) * TAPS + kc / C) * FCG + kc % C] : 0u;
          pair |= bits << (16 * b);
        }
        bf[s][j][h] = pair;
      }
    }
  }
  float bv[NT][2];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int b = 0; b < 2; ++b) {
      const int c = 8 * j + 2 * t + b;
      bv[j][b] = bias != nullptr && c < K ? bias[c] : 0.0f;
    }
  }
  // Offsets into the padded image of this lane's A columns (reductions 16s + 2t + {0, 1, 8, 9}),
  // relative to a row's first tap; -1: past KR (zero).
  int koff[KS][4];
#pragma unroll
  for (int s = 0; s < KS; ++s) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int kc = 16 * s + 2 * t + (i & 1) + 8 * (i >> 1);
      const int tap = kc / C;
      koff[s][i] = kc < KR ? (((tap / KW) * DH) * WP + (tap % KW) * DW) * C + kc % C : -1;
    }
  }
  __syncwarp();
  for (long long unit = static_cast<long long>(blockIdx.x) * warps + (threadIdx.x >> 5);
       unit < units; unit += static_cast<long long>(gridDim.x) * warps) {
  const long long img = unit / splits;
  const int part = static_cast<int>(unit % splits);
  const int t0 = part * TILES / splits;
  const int t1 = (part + 1) * TILES / splits;
  __syncwarp();  // the previous unit's image is no longer read
  {
    const T* xi = x + img * (H * W * CP);
    const Src* ri = static_cast<const Src*>(raw) + img * (H * W * C);
#pragma unroll 4
    for (int e = lane; e < H * W * C; e += 32) {
      const int c = e % C;
      const int px = (e / C) % W;
      const int py = e / (C * W);
      float v;
      if constexpr (RAW) {  // the caller's input, normalized and rounded as the input step would
        v = normalize(load(ri + (SRC_HWC || C == 1 ? e : (c * H + py) * W + px)), affine, c);
      } else {
        v = load(xi + (py * W + px) * CP + c);
      }
      store(reinterpret_cast<T*>(sx + ((py + PH) * WP + px + PW) * C + c), v);
    }
  }
  __syncwarp();
  // This lane's two rows, g and g + 8: window position q (the same every tile) and pooled output
  // P = tile · RPT + row % RPT, whose pooled row and column (py, px) advance by RPT a tile
  // without a division. Where RPT divides 8 (a 2x2 window: 4 pooled outputs a tile) both rows
  // have the same P, kept once (PR = 1).
  constexpr int PR = 8 % RPT == 0 ? 1 : 2;
  int py[PR];
  int px[PR];
#pragma unroll
  for (int r = 0; r < PR; ++r) {
    const int P = t0 * RPT + (g + 8 * r) % RPT;
    py[r] = P / YW;
    px[r] = P % YW;
  }
  T* const yimg = y + img * (NP * KP) + 2 * t;  // this image's output, this lane's channels
  for (int tile = t0; tile < t1; ++tile) {
    int base[2];
    bool valid[2];
    int pout[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = g + 8 * r;
      const int q = row / RPT;
      pout[r] = tile * RPT + row % RPT;
      int oy = py[r % PR] * PSH - PPH + q / QW;
      int ox = px[r % PR] * PSW - PPW + q % QW;
      if constexpr (ALL_VALID) {  // every window inside the map, every tile full
        valid[r] = true;
      } else {
        valid[r] = pout[r] < NP && oy >= 0 && oy < OH && ox >= 0 && ox < OW;
        oy = min(max(oy, 0), OH - 1);
        ox = min(max(ox, 0), OW - 1);
      }
      base[r] = (oy * SH * WP + ox * SW) * C;
    }
#pragma unroll
    for (int r = 0; r < PR; ++r) {  // the next tile's (px < YW, RPT % YW < YW: one wrap at most)
      px[r] += RPT % YW;
      py[r] += RPT / YW;
      if (px[r] >= YW) {
        px[r] -= YW;
        ++py[r];
      }
    }
    float d[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.0f;
    }
#pragma unroll
    for (int s = 0; s < KS; ++s) {
      unsigned a[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {  // a0: row g, cols 2t..; a1: row g+8; a2, a3: cols 2t+8..
        const int r = i & 1;
        const int h = i >> 1;
        const int o0 = koff[s][2 * h];
        const int o1 = koff[s][2 * h + 1];
        const unsigned lo = o0 >= 0 ? sx[base[r] + o0] : 0u;
        const unsigned hi = o1 >= 0 ? sx[base[r] + o1] : 0u;
        a[i] = lo | (hi << 16);
      }
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        mma_16816<T>(d[j], a[0], a[1], a[2], a[3], bf[s][j][0], bf[s][j][1]);
      }
    }
    // The epilogue: d[j][0..1] row g, d[j][2..3] row g + 8, channels 8j + 2t and + 1.
    if constexpr (QQ == 1) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        if (ALL_VALID || pout[r] < NP) {
          T* yp = yimg + pout[r] * KP;
#pragma unroll
          for (int j = 0; j < NT; ++j) {
            float v[2];
#pragma unroll
            for (int b = 0; b < 2; ++b) {
              v[b] = 8 * j + 2 * t + b < K ? activate(act, d[j][2 * r + b] + bv[j][b]) : 0.0f;
            }
            *reinterpret_cast<unsigned*>(yp + 8 * j) = pack2<T>(v[0], v[1]);
          }
        }
      }
    } else {
      const int P = pout[0];
      const float divisor = IS_MAX ? 1.0f : pool_window(pool, min(P, NP - 1) / YW,
                                                        min(P, NP - 1) % YW).divisor;
      unsigned pk[NT];  // the pooled pairs of channels 8j + 2t, + 1, as stored
      if constexpr (PACKED_MAX) {
        // (kernel_source.hpp: bias added to each position's sum in f32, the window's max and
        // the relu on the rounded pairs, two channels an instruction)
        max_pool4_pairs<T, NT, act_c.kind == Act::relu, (K < KP)>(pk, d, bv, valid[0], valid[1],
                                                                  2 * t, K);
      } else {
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          float v[2];
#pragma unroll
          for (int b = 0; b < 2; ++b) {
            float m;
            if constexpr (POOL_FIRST) {  // max of the raw sums, then bias and activation once
              const float ninf = -__int_as_float(0x7f800000);
              m = fmaxf(valid[0] ? d[j][b] : ninf, valid[1] ? d[j][2 + b] : ninf);
              m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 16));
              m = activate(act, m + bv[j][b]);
            } else {
              const float e0 = valid[0] ? activate(act, d[j][b] + bv[j][b]) : pool_start(pool);
              const float e1 = valid[1] ? activate(act, d[j][2 + b] + bv[j][b]) : pool_start(pool);
              m = pool_add(pool, e0, e1);
              m = pool_add(pool, m, __shfl_xor_sync(0xffffffffu, m, 16));
              if constexpr (!IS_MAX) {
                m /= divisor;
              }
            }
            v[b] = 8 * j + 2 * t + b < K ? m : 0.0f;
          }
          pk[j] = pack2<T>(v[0], v[1]);
        }
      }
      if (ALL_VALID || P < NP) {
        T* yp = yimg + P * KP;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
          // Both halves of the warp hold every pooled value: each stores half of the n-tiles.
          if ((lane < 16) == (j < (NT + 1) / 2)) {
            *reinterpret_cast<unsigned*>(yp + 8 * j) = pk[j];
          }
        }
      }
    }
  }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

namespace detail {
/// A generated kernel's identity: architecture, whether for its own features (sm_90a), the
/// instantiation's name and the source (one source serves f16 and bf16).
using KernelKey = std::tuple<int, bool, std::string, std::string>;
/// Programs compiled by precompile() and not yet loaded by kernel(), and the lock of both.
struct KernelStore {
  std::mutex mutex;
  std::map<KernelKey, rtc::Compiled> compiled;
  std::set<KernelKey> loaded;  ///< loaded by kernel(): precompile() skips them
};
inline KernelStore& kernel_store() {
  static auto* s = new KernelStore();  // never freed (see kernel())
  return *s;
}
}  // namespace detail

/// The loaded kernel `k` (compiled by NVRTC — or earlier by precompile() —, or read from the
/// disk cache), kept for the life of the program per source and architecture. Thread-safe.
[[nodiscard]] inline cudaKernel_t kernel(const KernelSource& k) {
  static std::mutex mutex;
  // Never freed: unloading at exit could run after the CUDA runtime has shut down.
  static auto* loaded = new std::map<detail::KernelKey, std::unique_ptr<rtc::Library>>();
  const int arch = rtc::current_arch();
  const std::lock_guard lock(mutex);
  detail::KernelKey key{arch, k.arch_specific, k.name, k.source};
  auto it = loaded->find(key);
  if (it == loaded->end()) {
    const std::vector<std::string> names{k.name};
    std::optional<rtc::Compiled> done;
    {
      detail::KernelStore& store = detail::kernel_store();
      const std::lock_guard store_lock(store.mutex);
      if (auto c = store.compiled.find(key); c != store.compiled.end()) {
        done = std::move(c->second);
        store.compiled.erase(c);
      }
    }
    it = loaded
             ->emplace(key, std::make_unique<rtc::Library>(
                                done ? std::move(*done)
                                     : rtc::compile(k.source, "strata_generated_conv", names, arch,
                                                    rtc::default_cache_dir(), k.arch_specific),
                                names))
             .first;
    detail::KernelStore& store = detail::kernel_store();
    const std::lock_guard store_lock(store.mutex);
    store.loaded.insert(key);
    store.compiled.erase(key);  // (a precompile() that raced this one: its copy is not needed)
  }
  return it->second->kernel(k.name);
}

/// Compiles `sources` for compute capability `arch` side by side, on up to `threads` threads
/// (NVRTC compiles one program on one core; at most 16 by default, for the memory each compile
/// takes), reading and writing the disk cache `cache_dir` as
/// rtc::compile does, and keeps the results for kernel() to load: an engine's generated kernels
/// — or every candidate measured tuning is about to time — then cost the longest compile rather
/// than their sum. Sources already compiled or loaded, and repeats, are skipped; a source that
/// fails to compile is left for kernel() to compile again and report where it is used. Returns
/// how many programs it compiled or read.
inline int precompile(const std::vector<KernelSource>& sources, int arch,
                      const std::filesystem::path& cache_dir = rtc::default_cache_dir(),
                      unsigned threads = std::min(std::thread::hardware_concurrency(), 16u)) {
  std::vector<const KernelSource*> todo;
  {
    detail::KernelStore& store = detail::kernel_store();
    const std::lock_guard lock(store.mutex);
    std::set<detail::KernelKey> seen;
    for (const KernelSource& k : sources) {
      detail::KernelKey key{arch, k.arch_specific, k.name, k.source};
      if (!store.compiled.contains(key) && !store.loaded.contains(key) &&
          seen.insert(std::move(key)).second) {
        todo.push_back(&k);
      }
    }
  }
  std::atomic<std::size_t> next{0};
  std::atomic<int> done{0};
  auto work = [&] {
    for (std::size_t i = next++; i < todo.size(); i = next++) {
      const KernelSource& k = *todo[i];
      try {
        rtc::Compiled c = rtc::compile(k.source, "strata_generated_conv", {k.name}, arch,
                                       cache_dir, k.arch_specific);
        detail::KernelKey key{arch, k.arch_specific, k.name, k.source};
        detail::KernelStore& store = detail::kernel_store();
        const std::lock_guard lock(store.mutex);
        if (!store.loaded.contains(key) && store.compiled.emplace(std::move(key), std::move(c)).second) {
          ++done;
        }
      } catch (const std::exception&) {
        // (kernel() compiles it again where it is used, and reports the error there)
      }
    }
  };
  const std::size_t n = std::min<std::size_t>(std::max(threads, 1u), todo.size());
  std::vector<std::thread> pool;
  pool.reserve(n);
  for (std::size_t t = 1; t < n; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no more threads: those started, and this one, share the rest
    }
  }
  work();
  for (std::thread& t : pool) {
    t.join();
  }
  return done.load();
}

/// A conv op's variants for a tactic that can pool in its kernel: with the pool inside (fuse =
/// 1) then without; one variant when the op has no pool.
[[nodiscard]] inline std::vector<Variant> pool_variants(std::string_view tactic, const OpDesc& op) {
  if (op.pool) {
    return {Variant{std::string(tactic), 0, 0, 1}, Variant{std::string(tactic)}};
  }
  return {Variant{std::string(tactic)}};
}

/// The current device and its number of SMs.
struct DeviceSms {
  int device = 0;
  int sms = 0;
};
[[nodiscard]] inline DeviceSms device_sms() {
  DeviceSms d;
  STRATA_CUDA_CHECK(cudaGetDevice(&d.device));
  STRATA_CUDA_CHECK(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, d.device));
  return d;
}

/// Lets kernel `k` take `shared` bytes of dynamic shared memory a block on device `device` (the
/// opt-in beyond the default 48 KiB; nothing for 0); an error naming the layer (`label`) and what
/// stages them (`what`: "splitk_conv math 1") where the GPU allows fewer.
inline void allow_shared(cudaKernel_t k, int device, std::size_t shared, const std::string& label,
                         const std::string& what) {
  if (shared == 0) {
    return;
  }
  const cudaError_t e = cudaKernelSetAttributeForDevice(
      k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared), device);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    STRATA_CHECK(false, "cuda::Engine: layer '" << label << "': " << what << " stages " << shared
                                                << " bytes of shared memory a block, more than "
                                                   "this GPU allows ("
                                                << cudaGetErrorString(e) << ")");
  }
}

/// Lets kernel `k` (its clusters compiled in, `__cluster_dims__`) run clusters of `cluster` blocks
/// on device `device`: above the portable 8 it opts into the non-portable sizes (Hopper allows
/// 16), or throws naming `label` and `tactic` where the GPU does not allow them.
inline void allow_cluster(cudaKernel_t k, int device, int cluster, const std::string& label,
                          std::string_view tactic) {
  if (cluster <= 8) {
    return;
  }
  const cudaError_t e =
      cudaKernelSetAttributeForDevice(k, cudaFuncAttributeNonPortableClusterSizeAllowed, 1, device);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    STRATA_CHECK(false, "cuda::Engine: layer '" << label << "': " << tactic << " runs clusters of "
                                                << cluster << " blocks, which this GPU does not "
                                                   "allow ("
                                                << cudaGetErrorString(e) << ")");
  }
}

/// A cluster's blocks run at once on one GPU processing cluster: throws naming `label` and
/// `tactic` where no cluster of `cluster` blocks of `threads` threads and `shared` bytes of
/// dynamic shared memory fits this GPU (a smaller part, a MIG slice) rather than fail at launch.
inline void check_clusters_fit(cudaKernel_t k, int cluster, int threads, std::size_t shared,
                               const std::string& label, std::string_view tactic) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(cluster));
  config.blockDim = dim3(static_cast<unsigned>(threads));
  config.dynamicSmemBytes = shared;
  int clusters = 0;
  const cudaError_t e = cudaOccupancyMaxActiveClusters(&clusters, reinterpret_cast<const void*>(k), &config);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
  }
  STRATA_CHECK(e != cudaSuccess || clusters > 0,
               "cuda::Engine: layer '" << label << "': " << tactic << "'s clusters of " << cluster << " blocks of "
                                       << shared << " bytes of shared memory each do not fit this GPU at once");
}

/// How a generated kernel is launched: `grid` blocks of `block` threads, `shared` bytes of dynamic
/// shared memory per block.
struct Launch {
  unsigned grid = 1;
  unsigned block = 256;
  std::size_t shared = 0;
};

/// Persistent blocks of kernel `k` on device `d`: `block` threads and `shared` dynamic bytes each
/// (above 48 KiB the kernel opts into the device's whole allowance: a kernel that serves several
/// shapes must not keep the limit of the last one prepared), as many as CUDA's occupancy
/// calculator says are resident at once (1 per SM if it cannot say), at most `blocks`.
[[nodiscard]] inline Launch persistent_launch(cudaKernel_t k, const DeviceSms& d, unsigned block,
                                              std::size_t shared, long long blocks) {
  if (shared > (48u << 10)) {
    int optin = 0;
    STRATA_CUDA_CHECK(
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, d.device));
    STRATA_CHECK(shared <= static_cast<std::size_t>(optin),
                 "a kernel needs " << shared << " bytes of shared memory a block, more than this "
                                   << "GPU's " << optin);
    STRATA_CUDA_CHECK(cudaKernelSetAttributeForDevice(
        k, cudaFuncAttributeMaxDynamicSharedMemorySize, optin, d.device));
  }
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, reinterpret_cast<const void*>(k),
                                                    static_cast<int>(block), shared) != cudaSuccess ||
      per_sm < 1) {
    (void)cudaGetLastError();
    per_sm = 1;
  }
  return {static_cast<unsigned>(std::min<long long>(blocks, 1LL * per_sm * d.sms)), block, shared};
}

/// A step that launches a kernel generated for one conv op (generated_conv, mma_conv): what it
/// says in describe() and the op's input, filter, bias and output (or pooled output) pointers.
template <class T>
class KernelStep : public Step {
 public:
  /// `what`: "generated conv"; `how`: what the description's parentheses start with.
  KernelStep(const OpDesc& op, const OpWeights& w, const OpIo& io, Launch launch, bool pooled,
             cudaKernel_t k, const char* what, const char* how)
      : w_(w), io_(io), launch_(launch), pooled_(pooled), kernel_(k) {
    const ConvGeom& g = op.conv;
    std::ostringstream d;
    // (a conv read space-to-depth as declared, then as it runs)
    d << "strata " << what << " ";
    if (g.s2d) {
      d << op.layer.kernel.h << "x" << op.layer.kernel.w << "/" << op.layer.stride.h << " "
        << g.c / 4 << "->" << g.k << " (space-to-depth: " << g.kh << "x" << g.kw << " " << g.c
        << "->" << g.k << ")";
    } else {
      d << g.kh << "x" << g.kw << " " << g.c << "->" << g.k;
    }
    if (pooled_) {
      d << " + " << (op.pool->kind == OpKind::max_pool ? "max" : "avg") << "_pool "
        << op.pool->layer.kernel.h << "x" << op.pool->layer.kernel.w;
    }
    d << " (" << how << "bias, act" << (pooled_ ? ", pool" : "") << " fused)";
    what_ = d.str();
  }
  [[nodiscard]] std::string describe() const override { return what_; }

 protected:
  /// Launches the kernel on `s` with (x, w, bias, y, then `args`).
  template <class... Args>
  void run(cudaStream_t s, Args... args) const {
    const T* x = static_cast<const T*>(io_.x);
    T* y = static_cast<T*>(pooled_ ? io_.pooled : io_.y);
    rtc::launch_shared(kernel_, launch_.grid, launch_.block, launch_.shared, s, x,
                       w_.weight.template as<const T>(), w_.bias_f32.template as<const float>(),
                       y, args...);
  }

 private:
  const OpWeights& w_;
  OpIo io_;
  Launch launch_;
  bool pooled_ = false;
  cudaKernel_t kernel_ = nullptr;
  std::string what_;
};

/// What the tactics of generated conv kernels share: variant fuse = 1 pools in the kernel (the
/// pooled map only is written), fuse = 0 writes the conv's map and leaves the pool to the pool
/// kernel; measured tuning times both; the heuristic claims the op at `claim_rank()`, pooling in
/// the kernel where a pool is fused.
/// A tactic whose kernels are generated for the op and compiled (NVRTC) when it prepares a
/// step: kernel_of() says which, checked (it throws where the variant cannot run the op), and
/// is what both prepare() compiles and kernel_sources() reports ahead of time.
template <DType P>
class GeneratingTactic : public Tactic<P> {
 public:
  [[nodiscard]] bool compiles_kernels() const final { return true; }
  [[nodiscard]] std::vector<KernelSource> kernel_sources(const OpDesc& op, const Variant& v,
                                                         const OpIo& io) const final {
    try {
      std::vector<KernelSource> out{kernel_of(op, v, io)};
      for (KernelSource& k : more_kernels(op, v, io)) {
        out.push_back(std::move(k));
      }
      return out;
    } catch (const Error&) {
      return {};  // (prepare() says why)
    }
  }

 protected:
  [[nodiscard]] virtual KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                               const OpIo& io) const = 0;
  /// Kernels a variant launches after kernel_of's, each a source of its own (none by default).
  [[nodiscard]] virtual std::vector<KernelSource> more_kernels(const OpDesc&, const Variant&,
                                                               const OpIo&) const {
    return {};
  }
  /// The kernel `strata_rtc::<name><T>` of generated source `src`, for the storage type T.
  [[nodiscard]] KernelSource named(std::string src) const {
    return {std::move(src), "strata_rtc::" + std::string(this->name()) + "<" +
                                kernels::detail::rtc_type<storage_t<P>>() + ">"};
  }
};

template <DType P>
class PoolingKernelTactic : public GeneratingTactic<P> {
 public:
  [[nodiscard]] bool fuses_pool(const Variant& v) const override { return v.fuse != 0; }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int, std::size_t,
                                               const Libraries&) const override {
    Claim c;  // (built in steps: g++ 12 warns of a maybe-uninitialized string otherwise)
    c.rank = claim_rank();
    c.variant.tactic = std::string(this->name());
    c.variant.fuse = op.pool ? 1 : 0;
    return c;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    return pool_variants(this->name(), op);
  }

 protected:
  [[nodiscard]] virtual int claim_rank() const = 0;
  /// Whether variant `v` of `op` pools in the kernel.
  [[nodiscard]] bool pools(const Variant& v, const OpDesc& op) const {
    return this->fuses_pool(v) && op.pool.has_value();
  }
};

}  // namespace generated

template <DType P>
class GeneratedConv final : public generated::PoolingKernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "generated_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && generated::fits(op);
  }
  /// As PoolingKernelTactic's, but a squeeze-excite gate's 1×1 of a 1×1 map only as the fallback:
  /// pixel_conv1x1 claims those at small batches, the libraries at large ones (a warp an image
  /// here: at batch 256 on an H200, 49 µs where cuBLASLt with its activation pass took 10).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t ws,
                                               const Libraries& libs) const override {
    std::optional<Claim> c = generated::PoolingKernelTactic<P>::heuristic(op, batch, ws, libs);
    if (c && pixel_conv1x1_runs(op)) {
      c->rank = rank::fallback;
    }
    if (c && generated::mma_fits(op, c->variant.fuse != 0)) {
      c->variant.algo = 1;  // tensor cores
    }
    return c;
  }
  /// Each pool variant on tensor cores (algo 1) where that form fits, and on f32 FMAs (algo 0).
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    std::vector<Variant> out;
    for (Variant v : generated::pool_variants(name(), op)) {
      if (generated::mma_fits(op, this->pools(v, op))) {
        Variant m = v;
        m.algo = 1;
        out.push_back(m);
      }
      out.push_back(v);
    }
    return out;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const bool pooled = this->pools(v, op);
    const bool raw = io.net_input != nullptr;
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    if (v.algo == 1) {
      return prepare_mma(op, pooled, raw, batch, w, io, k);
    }
    // Units (image, band of output rows) go to warps: at small batches an image's rows split so
    // that there are about 8 units per SM; blocks of up to 8 warps (fewer where the units are
    // few, so that they spread over the SMs), each warp with its own band of staged input.
    const generated::DeviceSms d = generated::device_sms();
    const int rows = pooled ? op.pool->out_shape.h : op.conv.oh;
    const int splits = std::clamp((8 * d.sms + batch - 1) / batch, 1, rows);
    const long long units = static_cast<long long>(batch) * splits;
    const int band = generated::band_floats(op, pooled, splits);
    const auto band_bytes = static_cast<std::size_t>(band) * sizeof(float);
    const int by_smem = static_cast<int>(std::max<std::size_t>((160u << 10) / band_bytes, 1));
    const int warps = static_cast<int>(
        std::clamp<long long>((units + d.sms - 1) / d.sms, 1, std::min(8, by_smem)));
    const std::size_t shared = band_bytes * static_cast<std::size_t>(warps);
    // Persistent blocks (the filter is staged once per block).
    const generated::Launch l = generated::persistent_launch(
        k, d, static_cast<unsigned>(32 * warps), shared, (units + warps - 1) / warps);
    return std::make_unique<GeneratedStep>(op, w, io, splits, units, l, band, pooled, k, raw);
  }

 protected:
  /// Ahead of the generic direct kernel.
  [[nodiscard]] int claim_rank() const override { return rank::tailored - 1; }

 private:
  /// The kernel variant `v` compiles for `op` on buffers `io` — the network's input read as the
  /// caller gave it (no input step) where this op reads it —, checked: an algo this tactic has,
  /// in a form that fits the op.
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo& io) const override {
    const bool pooled = this->pools(v, op);
    const generated::Source src{io.net_input != nullptr, io.net_input_format, io.net_input_hwc};
    STRATA_CHECK(v.algo == 0 || v.algo == 1,
                 "'" << op.label << "': generated_conv has no algo " << v.algo << " (0 or 1)");
    if (v.algo == 0) {
      return this->named(generated::source(op, pooled, src));
    }
    STRATA_CHECK(generated::mma_fits(op, pooled),
                 "'" << op.label << "': generated_conv algo 1 (tensor cores) does not fit this "
                                    "conv" << (pooled ? " with its pool" : ""));
    return {generated::mma_source(op, pooled, src),
            "strata_rtc::generated_conv_mma<" + std::string(kernels::detail::rtc_type<T>()) + ">"};
  }
  /// The tensor-core form: persistent blocks of 8 warps, as many as fit the SMs; at batches
  /// below the resident warps an image's row tiles split over several warps (each stages the
  /// whole image: at most 20 KiB), never into more units than one round of resident warps.
  [[nodiscard]] std::unique_ptr<Step> prepare_mma(const OpDesc& op, bool pooled, bool raw,
                                                  int batch, const OpWeights& w, const OpIo& io,
                                                  cudaKernel_t k) const {
    const generated::DeviceSms d = generated::device_sms();
    constexpr unsigned kWarps = 8;
    const std::size_t shared =
        static_cast<std::size_t>(generated::mma_image_elems(op)) * 2 * kWarps;
    const generated::MmaShape m = generated::mma_shape(op, pooled);
    const kernels::PoolShape ps = kernels::conv_pool_shape(op, 0, op.conv.kp, pooled);
    const int tiles = (ps.oh * ps.ow + 16 / m.window - 1) / (16 / m.window);
    const generated::Launch all = generated::persistent_launch(
        k, d, 32 * kWarps, shared, static_cast<long long>(batch) * tiles);
    const long long resident = static_cast<long long>(all.grid) * kWarps;
    const int splits = static_cast<int>(std::clamp<long long>(resident / batch, 1, tiles));
    const long long units = static_cast<long long>(batch) * splits;
    generated::Launch l = all;
    l.grid = static_cast<unsigned>(std::min<long long>(all.grid, (units + kWarps - 1) / kWarps));
    return std::make_unique<MmaStep>(op, w, io, splits, units, l, pooled, k, raw);
  }

  class MmaStep final : public generated::KernelStep<T> {
   public:
    MmaStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int splits, long long units,
            generated::Launch launch, bool pooled, cudaKernel_t k, bool raw)
        : generated::KernelStep<T>(op, w, io, launch, pooled, k, "generated conv",
                                   raw ? "tensor cores, shapes compiled in; reads the caller's "
                                         "input; "
                                       : "tensor cores, shapes compiled in; "),
          splits_(splits), units_(units), raw_(raw ? io.net_input : nullptr),
          affine_(raw ? io.net_input_affine : nullptr) {}
    void launch(cudaStream_t s, void*, std::size_t) override {
      this->run(s, splits_, units_, raw_, affine_);
    }
    [[nodiscard]] bool reads_network_input() const override { return raw_ != nullptr; }

   private:
    int splits_ = 1;
    long long units_ = 1;
    const void* raw_ = nullptr;
    const float* affine_ = nullptr;
  };

  class GeneratedStep final : public generated::KernelStep<T> {
   public:
    GeneratedStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int splits,
                  long long units, generated::Launch launch, int band, bool pooled, cudaKernel_t k,
                  bool raw)
        : generated::KernelStep<T>(op, w, io, launch, pooled, k, "generated conv",
                                   raw ? "shapes compiled in; reads the caller's input; "
                                       : "shapes compiled in; "),
          splits_(splits), units_(units), band_(band), raw_(raw ? io.net_input : nullptr),
          affine_(raw ? io.net_input_affine : nullptr) {}
    void launch(cudaStream_t s, void*, std::size_t) override {
      this->run(s, splits_, units_, raw_, affine_, band_);
    }
    [[nodiscard]] bool reads_network_input() const override { return raw_ != nullptr; }

   private:
    int splits_ = 1;       ///< bands of output rows per image
    long long units_ = 1;  ///< batch × splits
    int band_ = 0;         ///< floats per warp's band
    const void* raw_ = nullptr;       ///< the caller's input, when this step reads it
    const float* affine_ = nullptr;   ///< its normalization, or null
  };
};

}  // namespace strata::cuda::tactics
