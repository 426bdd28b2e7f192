#pragma once
/// Tactic `pooled_dense`: a network's head — the global average pool, flatten (a view) and the
/// dense layer, joined as one op by fold_pooled_dense ("avgpool+fc") — as one kernel at small
/// batches (16-bit NHWC storage, compute capability 9.0 on). Why: at batch 1 ResNet-18's head
/// ran as Strata's pool kernel (3.0 µs) and cuBLASLt's GEMM of one column (5.8 µs) on an H200
/// (session 19), each mostly the cost of a kernel in a graph; the map is 49 × 512 values and the
/// layer's weights 1 MB.
///
/// One thread-block cluster of `algo` blocks (8, or 16 where the GPU allows that non-portable
/// size) does everything, so that every read of the map comes before any write of the output —
/// the memory plan may put the output where the map was. Block r first asks L2 for its share
/// of the weight rows (prefetch), then averages its share of the channels over the map's pixels
/// for each image (threads in groups over the pixels, summed in shared memory), a cluster
/// barrier, then copies every block's averages into its own shared memory (distributed shared
/// memory) — the whole pooled vector, in f32 — and a second barrier. Then each warp takes output
/// rows in turn, a few at once: the lanes read a row's weights 16 bytes each (all of the rows'
/// loads in flight together), multiply them with every image's pooled vector, sum across the
/// warp, and lane b writes image b's output (bias, the layer's activation, slots from the
/// layer's outputs on as 0). The pool's result is not rounded to the storage type before the
/// dense layer, unlike the two-kernel path's.
///
/// Measured on an H200 (session 19): correct (GPU test "a network's head (global average pool +
/// dense) as one kernel" in tests/gpu/test_layers.cpp, rel. errors 3e-4 f16, 2e-3–3e-3 bf16
/// against the CPU) but no faster — ResNet-18's head at batch 1 in 7.9–8.2 µs against 8.3 for
/// the pool kernel + cuBLASLt (R1's median 126.6 µs under measured tuning, 126.0–126.2 before),
/// ResNet-50's 15.7, MobileNet-v2's 12.4: one cluster's 16 SMs, two cluster barriers and the
/// rounds of weight loads are a chain of latencies as long as the two launches it replaces. So
/// the heuristic does not claim it; measured tuning times 8 and 16 blocks at up to `max_batch`
/// images against the two-kernel path (a claim would also need limits: one cluster streaming a
/// large layer's weights would leave most SMs idle). Where the head is the network's last op,
/// `gap_dense` below runs it instead: a grid of independent blocks writing the caller's f32
/// output (4.3 µs for ResNet-18's head, no output step).
#include <cuda_runtime.h>

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/device.hpp"
#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"
#include "strata/cuda/tactics/normed_conv.hpp"

namespace strata::cuda::tactics {

namespace pooled_dense {

/// The most images a launch takes (each block keeps every image's pooled vector).
inline constexpr int max_batch = 4;
/// The most channel slots of the map (4 images × 2,048 floats: 32 KiB of shared memory).
inline constexpr int max_inputs = 2048;
/// Threads a block.
inline constexpr int threads = 256;

/// Whether the kernel runs `op`: a dense layer with a folded global average pool over a map of
/// at most max_inputs channel slots (in 8s), no residual, no folded softmax.
[[nodiscard]] inline bool fits_head(const OpDesc& op) {
  return op.kind == OpKind::dense && op.gap.has_value() && !op.softmax && !op.has_residual &&
         op.in_act.kind == Act::none && op.gap->in_cp % 8 == 0 && op.gap->in_cp <= max_inputs &&
         op.dense_kin == op.gap->in_cp && op.layer.out_channels >= 1 &&
         op.out_cp >= op.layer.out_channels && op.gap->in_shape.h * op.gap->in_shape.w >= 1;
}
/// ... and no activation deferred into the pool's read (this kernel sums the map as stored).
[[nodiscard]] inline bool fits(const OpDesc& op) {
  return fits_head(op) && op.gap->in_act.kind == Act::none;
}

/// Whether `cluster` is one of the variants' sizes.
[[nodiscard]] inline bool cluster_size(int cluster) { return cluster == 8 || cluster == 16; }

/// The kernel's source for `op` with clusters of `cluster` blocks (kernel
/// `strata_rtc::pooled_dense<T>`).
[[nodiscard]] inline std::string source(const OpDesc& op, int cluster) {
  std::ostringstream o;
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "'.\n"
    << "template <class T>\n__global__ void __cluster_dims__(" << cluster << ", 1, 1) __launch_bounds__("
    << threads << ", 1) pooled_dense(\n"
    << "    const T* x, const T* __restrict__ w, const T* __restrict__ bias,\n"
    << "    T* y, int batch) {\n"
    << "  // (x and y not __restrict__: y may lie over x, every read of x before the first cluster barrier)\n"
    << "  constexpr int HW = " << op.gap->in_shape.h * op.gap->in_shape.w << ";  // pixels averaged\n"
    << "  constexpr int CP = " << op.gap->in_cp << ";  // channel slots (= the layer's inputs)\n"
    << "  constexpr int N = " << op.layer.out_channels << ";  // outputs\n"
    << "  constexpr int OUT_CP = " << op.out_cp << ";  // output slots (N on: 0)\n"
    << "  constexpr int CL = " << cluster << ";  // blocks (one cluster)\n"
    << "  constexpr int BMAX = " << max_batch << ";\n"
    << "  constexpr int threads = " << threads << ";  // (the launch's)\n";
  generated::act_constant(o, op.act);
  o << R"src(#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int CPB = (CP + CL - 1) / CL;         // channels a block averages
  constexpr int PG = CPB >= 256 ? 1 : 256 / CPB;  // thread groups over the pixels
  constexpr int RPB = (OUT_CP + CL - 1) / CL;     // output slots a block finishes
  constexpr int KI = (CP + 255) / 256;            // 16-byte loads a lane makes of a row
  constexpr int RW = KI >= 8 ? 2 : 4;             // rows a warp has in flight at once
  static_assert(CPB * PG <= 256, "pooled_dense: a partial sum a thread");
  __shared__ float part[BMAX * 256];
  __shared__ float mine[BMAX * CPB];
  __shared__ __align__(16) float full[BMAX * CP];
  const int r = static_cast<int>(blockIdx.x);  // (the grid is one cluster: its rank)
  const int o0 = r * RPB;
  const int o1 = min(OUT_CP, o0 + RPB);
  // This block's weight rows on their way to L2 while the map is averaged (before waiting for
  // the kernel before this one: the weights do not depend on it).
  if (min(N, o1) > o0) {
    const char* wb = reinterpret_cast<const char*>(w + static_cast<long long>(o0) * CP);
    const long long bytes = static_cast<long long>(min(N, o1) - o0) * CP * sizeof(T);
    for (long long off = threadIdx.x * 128LL; off < bytes; off += threads * 128LL) {
      asm volatile("prefetch.global.L2 [%0];" ::"l"(wb + off));
    }
  }
  pdl_entry();
  // This block's channels [c0, c0 + CPB) of each image, averaged: PG groups of threads over
  // the pixels, then the groups' sums added.
  const int c0 = r * CPB;
  for (int i = threadIdx.x; i < batch * CPB * PG; i += threads) {
    const int b = i / (CPB * PG);
    const int pg = (i / CPB) % PG;
    const int c = c0 + i % CPB;
    float s = 0.0f;
    if (c < CP) {
      const T* xb = x + static_cast<long long>(b) * HW * CP + c;
      for (int p = pg; p < HW; p += PG) {
        s += load(xb + static_cast<long long>(p) * CP);
      }
    }
    part[i] = s;
  }
  __syncthreads();
  for (int j = threadIdx.x; j < batch * CPB; j += threads) {
    const int b = j / CPB;
    const int cc = j % CPB;
    float s = 0.0f;
    for (int pg = 0; pg < PG; ++pg) {
      s += part[(b * PG + pg) * CPB + cc];
    }
    mine[j] = s * (1.0f / HW);
  }
  cluster_barrier();  // every block's averages written
  for (int j = threadIdx.x; j < batch * CP; j += threads) {
    const int b = j / CP;
    const int c = j % CP;
    full[j] = cluster_load(&mine[b * CPB + c % CPB], static_cast<unsigned>(c / CPB));
  }
  cluster_reads_done();  // the whole vector here; no block reads another's shared memory after this
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  for (int base = o0 + warp * RW; base < o1; base += (threads / 32) * RW) {
    uint4 raw[RW][KI];
#pragma unroll
    for (int q = 0; q < RW; ++q) {
      const int o = base + q;
#pragma unroll
      for (int t = 0; t < KI; ++t) {
        const int k = lane * 8 + t * 256;
        raw[q][t] = o < min(N, o1) && k < CP
                        ? *reinterpret_cast<const uint4*>(w + static_cast<long long>(o) * CP + k)
                        : make_uint4(0u, 0u, 0u, 0u);
      }
    }
#pragma unroll
    for (int q = 0; q < RW; ++q) {
      const float mine_v = row_dots_by_lane<T, BMAX>(raw[q], full, CP, lane, batch);  // image lane's
      const int o = base + q;
      if (o < o1 && lane < batch) {
        const float v = o < N ? activate(act, mine_v + (bias != nullptr ? load(bias + o) : 0.0f)) : 0.0f;
        store(y + static_cast<long long>(lane) * OUT_CP + o, v);
      }
    }
  }
#endif
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace pooled_dense

namespace gap_dense {

/// The most images a launch takes (each block keeps every image's pooled vector).
inline constexpr int max_batch = 4;
/// Threads a block (8 warps).
inline constexpr int threads = 256;
/// The variants' output rows a block (algo).
inline constexpr int rows_per_block[] = {8, 16, 32};

/// 16-byte loads a lane makes of one weight row of `cp` slots of `bytes`-byte elements.
[[nodiscard]] constexpr int loads_a_row(int cp, int bytes) { return (cp * bytes / 16 + 31) / 32; }

/// Whether the kernel runs `op` in storage of `bytes`-byte elements: a dense layer whose result
/// is the network's output (it writes the caller's f32 output), with a folded global average
/// pool over a map of at most pooled_dense::max_inputs channel slots, no residual, no folded
/// softmax. An activation deferred into the pool's read (GapPrologue::in_act: MobileNetV2's
/// ReLU6) is applied to each value, rounded as stored, as the map is summed.
[[nodiscard]] inline bool fits(const OpDesc& op, int bytes) {
  return pooled_dense::fits_head(op) && op.net_output && !op.writes_user_output &&
         op.out_shape.h == 1 && op.out_shape.w == 1 && (op.gap->in_cp * bytes) % 16 == 0;
}

/// Whether the kernel applies `op`'s folded batch norm (fold_normed_pooled_dense: DenseNet's norm5
/// and ReLU before its head) to the map as it averages it (variant fuse 1): normed_head's
/// conditions (normed::head_fits: the batch norm's input over the pool's map, read in 16-byte
/// vectors, a concat in place) on a head the kernel runs.
[[nodiscard]] inline bool fuses_norm(const OpDesc& op, int bytes) {
  // (not with an activation deferred into the pool's read: the normalized value replaces it;
  // fold_normed_pooled_dense makes no such head either)
  return fits(op, bytes) && normed::head_fits(op) && op.gap->in_act.kind == Act::none;
}

/// Whether a block of `rows` output rows (8 or more, in 8s) keeps each warp's rows in registers
/// (at most 16 16-byte loads a lane).
[[nodiscard]] inline bool rows_fit(const OpDesc& op, int bytes, int rows) {
  return rows >= 8 && rows % 8 == 0 && rows / 8 * loads_a_row(op.gap->in_cp, bytes) <= 16;
}

/// The kernel's source for `op` with `rows` output rows a block (kernel
/// `strata_rtc::gap_dense<T>`); with `norm` (fuses_norm) the kernel takes the batch norm's
/// input `x` (its pixels XPIX elements apart, its images XIMG) and its scale and shift, and
/// sums each value normalized as the batch norm's kernel stores it (normed_stored: the pass's
/// arithmetic and rounding) — the sums of the pass + this kernel, in the same order.
[[nodiscard]] inline std::string source(const OpDesc& op, int rows, bool norm = false) {
  STRATA_CHECK(!norm || fuses_norm(op, 2), "gap_dense: layer '" << op.label << "' has no batch norm it applies as "
                                                                   "the map is averaged");
  std::ostringstream o;
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n" << (norm ? normed::pass_helpers : "")
    << "// Generated for '" << op.label << "'.\n"
    << "template <class T>\n__global__ void __launch_bounds__(" << threads << ") gap_dense(\n"
    << "    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,\n"
    << (norm ? "    const float* __restrict__ scale, const float* __restrict__ shift,\n" : "")
    << "    float* __restrict__ out, int batch) {\n"
    << "  constexpr int HW = " << op.gap->in_shape.h * op.gap->in_shape.w << ";  // pixels averaged\n"
    << "  constexpr int CP = " << op.gap->in_cp << ";  // channel slots (= the layer's inputs)\n"
    << "  constexpr int N = " << op.layer.out_channels << ";  // outputs\n"
    << "  constexpr int RPB = " << rows << ";  // output rows a block\n"
    << "  constexpr int BMAX = " << max_batch << ";\n"
    << "  constexpr int threads = " << threads << ";  // (the launch's)\n";
  generated::act_constant(o, op.act);
  // Where image b's pixel p starts, the values summed, and (with the batch norm) each column's
  // scales and shifts.
  std::string image = "static_cast<long long>(b) * HW * CP", pixel = "static_cast<long long>(p) * CP";
  std::string value = "load(h + e)", factors;
  if (op.gap->in_act.kind != Act::none) {  // (the producer's activation, deferred into this read)
    // (its kind fixed at compile time and its desc const, act_constants: activate() on a
    // constexpr ActDesc kept it a weak global and switched on its kind at run time for every
    // value, which took MobileNetV2's head at batch 1 from about 6 to 42.5 µs — H100, session 62)
    generated::act_constants(o, "GIA", "gap_in_act", op.gap->in_act);
    value = "as_stored<T>(activate_as<GIA>(gap_in_act, load(h + e)))";
  }
  if (norm) {
    const OpDesc& bn = *op.norm;
    const normed::Source src = normed::source_of(bn);
    o << "  constexpr long long XPIX = " << src.pixel << ", XIMG = " << src.image
      << ";  // the batch norm's input: elements a pixel, an image\n"
      << "  constexpr long long C = " << bn.out_shape.c << ";  // channels; slots past them summed as 0\n";
    generated::act_constants(o, "NA", "norm_act", bn.act);
    image = "static_cast<long long>(b) * XIMG";
    pixel = "static_cast<long long>(p) * XPIX";
    // (slots past the channels 0, as the pass writes them: not act(0) — a sigmoid's 0.5 — nor
    // whatever the input holds there)
    value = "(C == CP || col * V + e < C ? normed_stored<T, NA>(norm_act, load(h + e), sc[e], sf[e]) : 0.0f)";
    factors = "      float sc[V], sf[V];\n      vector_factors<C, CP>(scale, shift, col * V, sc, sf);\n";
  }
  o << R"src(  constexpr int V = 16 / static_cast<int>(sizeof(T));  // elements a 16-byte load
  constexpr int COLS = CP / V;                      // 16-byte columns of a pixel
  constexpr int PG = COLS >= threads ? 1 : threads / COLS;  // thread groups over the pixels
  constexpr int KI = (COLS + 31) / 32;              // 16-byte loads a lane makes of a row
  constexpr int RW = RPB / (threads / 32);          // rows a warp
  static_assert(CP % V == 0 && RW >= 1 && RW * KI <= 16, "gap_dense: the shapes it was made for");
  __shared__ __align__(16) float pooled[BMAX * CP];
  __shared__ __align__(16) float part[PG > 1 ? PG * CP : 1];
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int o0 = static_cast<int>(blockIdx.x) * RPB + warp * RW;  // this warp's first row
  // This warp's weight rows, in registers before waiting for the kernel before this one (the
  // weights do not depend on it): every load in flight while the map is averaged.
  uint4 raw[RW][KI];
#pragma unroll
  for (int q = 0; q < RW; ++q) {
#pragma unroll
    for (int t = 0; t < KI; ++t) {
      const int col = lane + 32 * t;
      raw[q][t] = o0 + q < N && col < COLS
                      ? *reinterpret_cast<const uint4*>(w + static_cast<long long>(o0 + q) * CP + col * V)
                      : make_uint4(0u, 0u, 0u, 0u);
    }
  }
  pdl_entry();
  // Every image's map averaged in f32 (each block the whole map, from L2): thread t sums 16-byte
  // column t % COLS over pixels t / COLS, t / COLS + PG, ...; the groups' sums added after.
  for (int b = 0; b < batch; ++b) {
    const T* xb = x + )src" << image << R"src(;
    for (int col = static_cast<int>(threadIdx.x) % (PG > 1 ? COLS : threads); col < COLS;
         col += (PG > 1 ? COLS : threads)) {
      const int g = PG > 1 ? static_cast<int>(threadIdx.x) / COLS : 0;
)src" << factors << R"src(      float s[V];
#pragma unroll
      for (int e = 0; e < V; ++e) s[e] = 0.0f;
      if (g < PG) {
#pragma unroll 7
        for (int p = g; p < HW; p += PG) {
          const uint4 v = *reinterpret_cast<const uint4*>(xb + )src" << pixel << R"src( + col * V);
          const T* h = reinterpret_cast<const T*>(&v);
#pragma unroll
          for (int e = 0; e < V; ++e) s[e] += )src" << value << R"src(;
        }
      }
      float* dst = PG > 1 ? part + g * CP : pooled + b * CP;
      if (g < PG) {
#pragma unroll
        for (int e = 0; e < V; ++e) dst[col * V + e] = PG > 1 ? s[e] : s[e] * (1.0f / HW);
      }
    }
    if (PG > 1) {
      __syncthreads();
      for (int c = threadIdx.x; c < CP; c += threads) {
        float s = 0.0f;
#pragma unroll
        for (int g = 0; g < PG; ++g) s += part[g * CP + c];
        pooled[b * CP + c] = s * (1.0f / HW);
      }
      __syncthreads();  // (part is the next image's)
    }
  }
  __syncthreads();
  // Each warp's rows: the lanes' products summed across the warp; lane b writes image b's output.
#pragma unroll
  for (int q = 0; q < RW; ++q) {
    const float mine = row_dots_by_lane<T, BMAX>(raw[q], pooled, CP, lane, batch);  // image lane's
    const int o = o0 + q;
    if (o < N && lane < batch) {
      out[static_cast<long long>(lane) * N + o] =
          activate(act, mine + (bias != nullptr ? load(bias + o) : 0.0f));
    }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace gap_dense

template <DType P>
class PooledDense final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "pooled_dense"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && pooled_dense::fits(op);
  }
  [[nodiscard]] bool fuses_gap(const Variant&) const override { return true; }
  /// No claim: on an H200 it tied the pool kernel + cuBLASLt (see the file comment).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return std::nullopt;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries&) const override {
    if (device_arch() < 90 || batch > pooled_dense::max_batch || !applicable(op)) {
      return {};
    }
    return {Variant{std::string(name()), 8, 0, 0}, Variant{std::string(name()), 16, 0, 0}};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    STRATA_CHECK(batch <= pooled_dense::max_batch,
                 "cuda::Engine: layer '" << op.label << "': pooled_dense runs at most "
                                         << pooled_dense::max_batch << " images a launch, not "
                                         << batch);
    STRATA_CHECK(device_arch() >= 90, "cuda::Engine: layer '"
                                          << op.label << "': pooled_dense runs a thread-block "
                                                         "cluster (compute capability 9.0 on)");
    STRATA_CHECK(io.gap_in != nullptr, "cuda::Engine: layer '" << op.label
                                                               << "': pooled_dense without the map");
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    generated::allow_cluster(k, generated::device_sms().device, v.algo, op.label, name());
    const T* x = static_cast<const T*>(io.gap_in);
    const T* wt = static_cast<const T*>(w.weight.get());
    const T* b = static_cast<const T*>(w.bias.get());
    T* y = static_cast<T*>(io.y);
    const auto grid = static_cast<unsigned>(v.algo);
    std::ostringstream what;
    what << "strata global_avg_pool+dense " << op.gap->in_shape.h << "x" << op.gap->in_shape.w
         << "x" << op.gap->in_cp << "->" << op.layer.out_channels << " (one kernel, a cluster of "
         << v.algo << " blocks, shapes compiled in)";
    return kernel_step(what.str(), [=](cudaStream_t s) {
      rtc::launch(k, grid, static_cast<unsigned>(pooled_dense::threads), s, x, wt, b, y, batch);
    });
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo&) const override {
    STRATA_CHECK(pooled_dense::cluster_size(v.algo) && v.math == 0 && v.fuse == 0,
                 "cuda::Engine: layer '" << op.label << "': pooled_dense has algos 8 and 16 (the "
                                                        "cluster's blocks), math and fuse 0; not "
                                         << to_string(v));
    STRATA_CHECK(applicable(op), "cuda::Engine: layer '"
                                     << op.label << "': pooled_dense runs a 16-bit dense layer "
                                                    "with its global average pool folded in, "
                                                    "at most "
                                     << pooled_dense::max_inputs << " inputs, no residual");
    return this->named(pooled_dense::source(op, v.algo));
  }
};


/// Tactic `gap_dense`: a network's head ("avgpool+fc", folded by fold_pooled_dense) when it is
/// the network's last op, as one kernel over a grid of independent blocks (16-bit NHWC storage,
/// any GPU, at most gap_dense::max_batch images) that writes the caller's f32 output itself — so
/// the plan has no output step. Each block averages the whole map itself (from L2; ResNet-18's
/// is 49 × 512 values) and computes `algo` output rows (8, 16 or 32; 8 warps, each its rows'
/// weights in registers, loaded before the kernel waits for the one before it). The map is
/// read by every block and the output is not in the arena, so no block's write can overwrite
/// what another still reads. The pooled vector and the output are not rounded to the storage
/// type, unlike the two-kernel path's. Measured on an H200 (session 20): ResNet-18's head at
/// batch 1 4.3 µs where the pool kernel + cuBLASLt + the output step took 8.0 + 2.5 (the
/// forward 131.6 → 126.6 µs under the heuristic), ResNet-50's 8.4, MobileNet-v2's 5.8; hence the
/// heuristic's claim at batch 1 (maps up to ResNet-50's); measured tuning times it up to
/// max_batch images. f32 (NCHW storage) is not this kernel's.
/// Fuse 1 (gap_dense::fuses_norm): the head's folded batch norm (fold_normed_pooled_dense:
/// DenseNet's norm5 and ReLU) applied to the map as it is averaged — the batch norm's pass (a
/// launch of its own before fuse 0) and the normalized map gone; each value normalized and
/// rounded as the pass stores it, summed in the same order (DenseNet-121 at batch 1 on an H100,
/// session 53: 9.7e-7 from fuse 0's output in f16, 0 in bf16; the head 6.4 µs in the profile
/// against the pass + fuse 0's 8.5). Claimed at batch 1 (normed_head's two launches claim the
/// head above it).
template <DType P>
class GapDense final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;
  static constexpr int bytes = static_cast<int>(sizeof(T));
  /// The largest map (pixels × channel slots) the heuristic claims the head for.
  static constexpr int claim_limit = 7 * 7 * 2048;

 public:
  [[nodiscard]] std::string_view name() const override { return "gap_dense"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && gap_dense::fits(op, bytes);  // (NHWC: the 16-bit storage)
  }
  [[nodiscard]] bool fuses_gap(const Variant&) const override { return true; }
  [[nodiscard]] bool fuses_norm(const Variant& v) const override { return v.fuse == 1; }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    // Measured at batch 1 only (ResNet-18/50's and MobileNet-v2's heads); each block averages
    // the whole map, so not past ResNet-50's 7×7×2,048 a block either. Above: tuning's.
    if (batch > 1 || !applicable(op) || claim_limit < op.gap->in_shape.h * op.gap->in_shape.w * op.gap->in_cp) {
      return std::nullopt;
    }
    Claim c;
    c.rank = rank::tailored;
    c.variant.tactic = std::string(name());
    c.variant.algo = 8;
    c.variant.fuse = gap_dense::fuses_norm(op, bytes) ? 1 : 0;  // (the batch norm too)
    return c;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int batch, std::size_t,
                                                const Libraries&) const override {
    std::vector<Variant> v;
    if (batch <= gap_dense::max_batch && applicable(op)) {
      const bool norm = gap_dense::fuses_norm(op, bytes);
      for (const int rows : gap_dense::rows_per_block) {
        if (gap_dense::rows_fit(op, bytes, rows)) {
          v.push_back(Variant{std::string(name()), rows, 0, 0});
          if (norm) {
            v.push_back(Variant{std::string(name()), rows, 0, 1});
          }
        }
      }
    }
    return v;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    STRATA_CHECK(batch <= gap_dense::max_batch,
                 "cuda::Engine: layer '" << op.label << "': gap_dense runs at most "
                                         << gap_dense::max_batch << " images a launch, not " << batch);
    const bool norm = v.fuse == 1;
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));  // (first: it refuses a wrong fuse by name)
    STRATA_CHECK(norm || io.gap_in != nullptr,
                 "cuda::Engine: layer '" << op.label << "': gap_dense without the pool's map");
    STRATA_CHECK(io.user_out != nullptr, "cuda::Engine: layer '" << op.label << "': gap_dense without the output");
    const normed::NormFactors nf = norm ? normed::norm_factors(op, io) : normed::NormFactors{};  // (checks norm_x)
    const float* scale = nf.scale;
    const float* shift = nf.shift;
    const T* x = static_cast<const T*>(norm ? io.norm_x : io.gap_in);
    const T* wt = static_cast<const T*>(w.weight.get());
    const T* b = static_cast<const T*>(w.bias.get());
    float* out = io.user_out;
    const auto grid = static_cast<unsigned>((op.layer.out_channels + v.algo - 1) / v.algo);
    std::ostringstream what;
    what << "strata " << (norm ? "batch norm + " : "") << "global_avg_pool+dense " << op.gap->in_shape.h << "x"
         << op.gap->in_shape.w << "x" << op.gap->in_cp << "->" << op.layer.out_channels << " (one kernel, "
         << (norm ? "the map normalized as it is averaged, " : "")
         << (op.gap->in_act.kind != Act::none ? "the producer's activation applied as it is averaged, " : "")
         << grid << " blocks of " << v.algo
         << " rows, shapes compiled in; into the output, f32)";
    const auto threads = static_cast<unsigned>(gap_dense::threads);
    if (norm) {
      return kernel_step(
          what.str(),
          [=](cudaStream_t s) { rtc::launch(k, grid, threads, s, x, wt, b, scale, shift, out, batch); }, true);
    }
    return kernel_step(
        what.str(), [=](cudaStream_t s) { rtc::launch(k, grid, threads, s, x, wt, b, out, batch); },
        true);  // (the caller's output: no output step)
  }

 private:
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo&) const override {
    STRATA_CHECK(applicable(op), "cuda::Engine: layer '"
                                     << op.label << "': gap_dense runs a dense layer with its "
                                                    "global average pool folded in, whose result "
                                                    "is the network's output, at most "
                                     << pooled_dense::max_inputs << " inputs, no residual");
    STRATA_CHECK(gap_dense::rows_fit(op, bytes, v.algo) && v.math == 0 && (v.fuse == 0 || v.fuse == 1),
                 "cuda::Engine: layer '" << op.label << "': gap_dense has algos 8, 16 and 32 (rows "
                                                        "a block, where a warp's rows fit its "
                                                        "registers), math 0, fuse 0 and 1; not "
                                         << to_string(v));
    STRATA_CHECK(v.fuse == 0 || gap_dense::fuses_norm(op, bytes),
                 "cuda::Engine: layer '" << op.label << "': gap_dense fuse 1 applies a batch norm folded into the "
                                                        "head (fold_normed_pooled_dense) as the map is averaged; "
                                                        "this op has none it can read");
    return this->named(gap_dense::source(op, v.algo, v.fuse == 1));
  }
};

}  // namespace strata::cuda::tactics
