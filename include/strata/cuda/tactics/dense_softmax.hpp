#pragma once
/// Tactic `dense_softmax`: a dense layer of at most 32 outputs and the network's final
/// softmax/log_softmax folded into it (OpDesc::softmax, fold_final_softmax) as one kernel
/// generated for the op (every shape a literal), writing the caller's f32 output: the two
/// launches of cuBLASLt's GEMM and Strata's softmax kernel become one, and the logits never
/// reach memory. Eight lanes a row (image), a warp four rows at once: each lane multiplies its
/// share of the row's inputs (16-byte loads where the row length allows) with every output's
/// weights (converted to f32 into shared memory once a block when they fit 32 KiB, else read
/// through L1), the row's lanes sum each output with xor shuffles (each then holds every logit),
/// add the bias, apply the dense layer's activation and take the softmax in f32; lane o % 8
/// writes output o. (The first form, a warp a row with scalar loads, ran 0.4 µs slower than
/// cuBLASLt + the softmax kernel at M2's batch 4096 in f16 on an H200: ~950 instructions a row.)
///
/// Measured tuning times it against lt_dense + the softmax kernel (its GPU test, "a dense layer
/// and its folded softmax as one kernel" in test_layers.cpp, passed on an H200); the heuristic
/// does not claim it yet.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "strata/cuda/kernel_source.hpp"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/rtc/library.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"

namespace strata::cuda::tactics {

namespace dense_softmax {

/// The most outputs the kernel takes (one lane each).
inline constexpr int max_outputs = 32;

/// The longest input row the kernel takes: each lane holds its share of a row in registers (64
/// values at 512 inputs over 8 lanes).
inline constexpr int max_inputs = 512;

/// Whether the kernel runs `op`: a dense layer with its folded softmax, at most 32 outputs and
/// 512 inputs.
[[nodiscard]] inline bool fits(const OpDesc& op) {
  return op.kind == OpKind::dense && op.softmax.has_value() && !op.has_residual &&
         op.layer.out_channels >= 1 && op.layer.out_channels <= max_outputs && op.dense_kin > 0 &&
         op.dense_kin <= max_inputs;
}

/// The kernel's source for `op` (kernel `strata_rtc::dense_softmax<T>`).
[[nodiscard]] inline std::string source(const OpDesc& op) {
  std::ostringstream o;
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "'.\n"
    << "template <class T>\n__global__ void __launch_bounds__(128) dense_softmax(\n"
    << "    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,\n"
    << "    float* __restrict__ y, int rows) {\n"
    << "  pdl_entry();\n"
    << "  constexpr int KIN = " << op.dense_kin << ";  // inputs a row (storage slots)\n"
    << "  constexpr int N = " << op.layer.out_channels << ";  // outputs\n"
    << "  constexpr bool LOG = " << (op.softmax->kind == OpKind::log_softmax ? "true" : "false")
    << ";\n";
  generated::act_constant(o, op.act);
  o << R"src(  constexpr int BLOCK = 128;      // threads a block (the launch's)
  constexpr int L = 8;            // lanes a row: a warp takes 4 rows at once
  constexpr int RPW = 32 / L;
  constexpr int V = KIN % 8 == 0 ? 8 : 1;  // inputs a load: 8 (16 or 32 bytes) where rows allow
  constexpr int ITERS = (KIN + L * V - 1) / (L * V);
  // The weights as f32 in shared memory when they fit 32 KiB, else read through L1.
  constexpr bool SMEM_W = N * KIN * 4 <= 32768;
  __shared__ __align__(16) float sw[SMEM_W ? N * KIN : 4];
  __shared__ float sb[N];
  const int lane = threadIdx.x & 31;
  const int sub = lane % L;  // this lane's share of the row
  const long long stride = static_cast<long long>(gridDim.x) * (BLOCK / 32) * RPW;
  // The same r0 for the whole warp (its shuffles see all lanes).
  long long r0 = (static_cast<long long>(blockIdx.x) * (BLOCK / 32) + threadIdx.x / 32) * RPW;
  // This lane's inputs of its row, loaded before the weights are staged: one wait for both.
  float xv[ITERS][8];
  auto fetch = [&](long long first) {
    const long long r = first + lane / L;
    if (r < rows) {
      const T* xr = x + r * KIN;
#pragma unroll
      for (int it = 0; it < ITERS; ++it) {
        const int k0 = sub * V + it * L * V;
        if (KIN % (L * V) == 0 || k0 < KIN) {
          if constexpr (V == 8 && is_same<T, float>::value) {
            load8f(reinterpret_cast<const float*>(xr + k0), xv[it]);
          } else if constexpr (V == 8) {
            load8(xr + k0, xv[it]);
          } else {
            xv[it][0] = load(xr + k0);
          }
        }
      }
    }
  };
  fetch(r0);
  if constexpr (SMEM_W) {
#pragma unroll
    for (int i = 0; i < (N * KIN + BLOCK - 1) / BLOCK; ++i) {
      const int e = threadIdx.x + i * BLOCK;
      if ((N * KIN) % BLOCK == 0 || e < N * KIN) {
        sw[e] = load(w + e);
      }
    }
  }
  if (threadIdx.x < N) {
    sb[threadIdx.x] = bias != nullptr ? load(bias + threadIdx.x) : 0.0f;
  }
  __syncthreads();
  for (; r0 < rows; r0 += stride) {
    const long long r = r0 + lane / L;
    const bool live = r < rows;
    float acc[N];
#pragma unroll
    for (int o = 0; o < N; ++o) acc[o] = 0.0f;
    if (live) {
#pragma unroll
      for (int it = 0; it < ITERS; ++it) {
        const int k0 = sub * V + it * L * V;
        if (KIN % (L * V) != 0 && k0 >= KIN) {
          break;
        }
#pragma unroll
        for (int o = 0; o < N; ++o) {
          if constexpr (SMEM_W && V == 8) {
#pragma unroll
            for (int i = 0; i < 8; i += 4) {
              const float4 wv = *reinterpret_cast<const float4*>(sw + o * KIN + k0 + i);
              acc[o] += xv[it][i] * wv.x + xv[it][i + 1] * wv.y + xv[it][i + 2] * wv.z +
                        xv[it][i + 3] * wv.w;
            }
          } else {
#pragma unroll
            for (int i = 0; i < V; ++i) {
              acc[o] += xv[it][i] * (SMEM_W ? sw[o * KIN + k0 + i] : load(w + o * KIN + k0 + i));
            }
          }
        }
      }
    }
    if (r0 + stride < rows) {
      fetch(r0 + stride);  // the next rows' inputs in flight during this row's softmax
    }
    // Each row's L lanes sum every output (xor offsets below L stay within the row's lanes):
    // every lane of the row then holds every logit; bias, activation, softmax in f32.
    float mx = -__int_as_float(0x7f800000);
#pragma unroll
    for (int o = 0; o < N; ++o) {
#pragma unroll
      for (int off = L / 2; off > 0; off >>= 1) acc[o] += __shfl_xor_sync(0xffffffffu, acc[o], off);
      acc[o] = activate(act, acc[o] + sb[o]);
      mx = fmaxf(mx, acc[o]);
    }
    float sum = 0.0f;
#pragma unroll
    for (int o = 0; o < N; ++o) {
      sum += expf(acc[o] - mx);
    }
    if (live) {
      const float lsum = logf(sum);
#pragma unroll
      for (int o = 0; o < N; ++o) {
        if (o % L == sub) {
          const float z = acc[o] - mx;
          y[r * N + o] = LOG ? z - lsum : expf(z) / sum;
        }
      }
    }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace dense_softmax

template <DType P>
class DenseSoftmax final : public generated::GeneratingTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "dense_softmax"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return dense_softmax::fits(op);
  }
  [[nodiscard]] bool fuses_softmax(const Variant&) const override { return true; }
  /// No claim yet (see the file comment).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return std::nullopt;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc&, int, std::size_t,
                                                const Libraries&) const override {
    return {Variant{std::string(name())}};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const cudaKernel_t k = generated::kernel(kernel_of(op, v, io));
    // Every row at once, 16 a block of 128 threads (the kernel strides by the grid beyond 2^31
    // blocks): each row's work is one chain of latencies (loads, shuffles, exp), so rows queued
    // behind each other on fewer resident warps would cost their chains one after another.
    const unsigned grid =
        static_cast<unsigned>(std::min<long long>((batch + 15) / 16, 0x7fffffffLL));
    const T* x = static_cast<const T*>(io.x);
    const T* wt = static_cast<const T*>(w.weight.get());
    const T* b = static_cast<const T*>(w.bias.get());
    float* y = io.user_out;
    const int n = op.layer.out_channels;
    std::ostringstream what;
    what << "strata dense+" << op_kind_name(op.softmax->kind) << " " << op.dense_kin << "->" << n
         << " (one kernel, shapes compiled in; f32 into the output)";
    return kernel_step(what.str(), [=](cudaStream_t s) {
      rtc::launch(k, grid, 128u, s, x, wt, b, y, batch);
    });
  }

 private:
  /// The kernel variant `v` compiles for `op`, checked: algo 0, an op the kernel takes.
  [[nodiscard]] KernelSource kernel_of(const OpDesc& op, const Variant& v,
                                       const OpIo&) const override {
    STRATA_CHECK(v.algo == 0, "'" << op.label << "': dense_softmax has no algo " << v.algo);
    STRATA_CHECK(dense_softmax::fits(op), "'" << op.label
                                              << "': dense_softmax runs a dense layer of at most "
                                              << dense_softmax::max_outputs << " outputs and "
                                              << dense_softmax::max_inputs
                                              << " inputs with its softmax folded in");
    return this->named(dense_softmax::source(op));
  }
};

}  // namespace strata::cuda::tactics
