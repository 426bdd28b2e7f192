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
  __syncthreads();
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
  return o.str();
}

}  // namespace pointwise

template <DType P>
class PointwiseMma final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "mma_conv1x1"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && storage_layout(P) == Layout::nhwc && pointwise::fits(op) &&
           generated::mma_sync_device();
  }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    if (!pointwise::claimed(op, batch)) {
      return std::nullopt;
    }
    return Claim{{std::string(name())}, rank::tailored};
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc&, int batch, std::size_t,
                                                const Libraries&) const override {
    if (batch < pointwise::min_batch) {
      return {};
    }
    return {Variant{std::string(name())}};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    const ConvGeom& g = op.conv;
    const long long pixels = static_cast<long long>(batch) * g.h * g.w;
    const long long blocks = (pixels + pointwise::rows - 1) / pointwise::rows * (g.kp / pointwise::chunk(g.kp));
    STRATA_CHECK(blocks < (1LL << 31), "'" << op.label << "': mma_conv1x1: " << blocks << " blocks");
    const auto grid = static_cast<unsigned>(blocks);
    const auto shared = static_cast<std::size_t>(pointwise::shared_bytes(op));
    generated::allow_shared(k, generated::device_sms().device, shared, op.label, "mma_conv1x1");
    const T* x = static_cast<const T*>(io.x);
    T* y = static_cast<T*>(io.y);
    const T* wt = w.weight.template as<const T>();
    const float* bias = w.bias_f32.template as<const float>();
    std::ostringstream what;
    what << "strata 1x1 conv on tensor cores (mma.sync; blocks of " << pointwise::rows << " pixels x "
         << pointwise::chunk(g.kp) << " output channels, shapes compiled in)";
    return kernel_step(what.str(), [=](cudaStream_t s) {
      rtc::launch_shared(k, grid, static_cast<unsigned>(pointwise::threads), shared, s, x, wt, bias, y, pixels);
    });
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v, const OpIo&) const override {
    STRATA_CHECK(v.algo == 0 && v.math == 0 && v.fuse == 0,
                 "'" << op.label << "': mma_conv1x1 has one form (algo 0); not " << to_string(v));
    return this->named(pointwise::source(op));
  }
};

}  // namespace strata::cuda::tactics
