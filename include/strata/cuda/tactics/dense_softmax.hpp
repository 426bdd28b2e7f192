#pragma once
/// Tactic `dense_softmax`: a dense layer of at most 32 outputs and the network's final
/// softmax/log_softmax folded into it (OpDesc::softmax, fold_final_softmax) as one kernel
/// generated for the op (every shape a literal), writing the caller's f32 output: the two
/// launches of cuBLASLt's GEMM and Strata's softmax kernel become one, and the logits never
/// reach memory. A warp per row (image): each lane multiplies its share of the row's inputs
/// with every output's weights (read through L1/L2: N × KIN values of the storage type), the
/// warp sums each output with xor shuffles (every lane then holds every logit), adds the bias,
/// applies the dense layer's activation and takes the softmax in f32; lane o writes output o.
///
/// Not among measured tuning's candidates and not claimed by the heuristic until its GPU test
/// ("a dense layer and its softmax as one kernel", test_layers.cpp) has passed on a GPU and it
/// has been timed: it runs only where a tuning cache names it.
#include <cuda_runtime.h>

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

/// Whether the kernel runs `op`: a dense layer with its folded softmax, at most 32 outputs.
[[nodiscard]] inline bool fits(const OpDesc& op) {
  return op.kind == OpKind::dense && op.softmax.has_value() && !op.has_residual &&
         op.layer.out_channels >= 1 && op.layer.out_channels <= max_outputs && op.dense_kin > 0;
}

/// The kernel's source for `op` (kernel `strata_rtc::dense_softmax<T>`).
[[nodiscard]] inline std::string source(const OpDesc& op) {
  std::ostringstream o;
  o << kernels::kernel_source() << "\nnamespace strata_rtc {\n"
    << "// Generated for '" << op.label << "'.\n"
    << "template <class T>\n__global__ void __launch_bounds__(256) dense_softmax(\n"
    << "    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,\n"
    << "    float* __restrict__ y, int rows) {\n"
    << "  constexpr int KIN = " << op.dense_kin << ";  // inputs a row (storage slots)\n"
    << "  constexpr int N = " << op.layer.out_channels << ";  // outputs\n"
    << "  constexpr bool LOG = " << (op.softmax->kind == OpKind::log_softmax ? "true" : "false")
    << ";\n";
  generated::act_constant(o, op.act);
  o << R"src(  const int lane = threadIdx.x & 31;
  const long long warps = static_cast<long long>(gridDim.x) * (blockDim.x / 32);
  for (long long r = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
       r < rows; r += warps) {
    const T* xr = x + r * KIN;
    float acc[N];
#pragma unroll
    for (int o = 0; o < N; ++o) acc[o] = 0.0f;
    for (int k = lane; k < KIN; k += 32) {
      const float xv = load(xr + k);
#pragma unroll
      for (int o = 0; o < N; ++o) acc[o] += xv * load(w + o * KIN + k);
    }
    // Every lane: every output's sum, its bias and activation, then the softmax's max and sum.
    float mx = -__int_as_float(0x7f800000);
#pragma unroll
    for (int o = 0; o < N; ++o) {
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) acc[o] += __shfl_xor_sync(0xffffffffu, acc[o], off);
      acc[o] = activate(act, acc[o] + load(bias + o));
      mx = fmaxf(mx, acc[o]);
    }
    float sum = 0.0f;
    float mine = 0.0f;  // this lane's output's logit (lane < N)
#pragma unroll
    for (int o = 0; o < N; ++o) {
      sum += expf(acc[o] - mx);
      mine = o == lane ? acc[o] : mine;
    }
    if (lane < N) {
      const float z = mine - mx;
      y[r * N + lane] = LOG ? z - logf(sum) : expf(z) / sum;
    }
  }
}
}  // namespace strata_rtc
)src";
  return o.str();
}

}  // namespace dense_softmax

template <DType P>
class DenseSoftmax final : public Tactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "dense_softmax"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return dense_softmax::fits(op);
  }
  [[nodiscard]] bool fuses_softmax(const Variant&) const override { return true; }
  /// No claim and no candidates yet (see the file comment).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return std::nullopt;
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc&, int, std::size_t,
                                                const Libraries&) const override {
    return {};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    STRATA_CHECK(v.algo == 0, "'" << op.label << "': dense_softmax has no algo " << v.algo);
    STRATA_CHECK(dense_softmax::fits(op), "'" << op.label
                                              << "': dense_softmax runs a dense layer of at most "
                                              << dense_softmax::max_outputs
                                              << " outputs with its softmax folded in");
    const cudaKernel_t k = generated::kernel(
        dense_softmax::source(op),
        "strata_rtc::dense_softmax<" + std::string(kernels::detail::rtc_type<T>()) + ">");
    const generated::Launch l =
        generated::persistent_launch(k, generated::device_sms(), 256, 0, (batch + 7) / 8);
    const T* x = static_cast<const T*>(io.x);
    const T* wt = static_cast<const T*>(w.weight.get());
    const T* b = static_cast<const T*>(w.bias.get());
    float* y = io.user_out;
    const int n = op.layer.out_channels;
    std::ostringstream what;
    what << "strata dense+" << op_kind_name(op.softmax->kind) << " " << op.dense_kin << "->" << n
         << " (one kernel, shapes compiled in; f32 into the output)";
    return kernel_step(what.str(), [=](cudaStream_t s) {
      rtc::launch(k, l.grid, l.block, s, x, wt, b, y, batch);
    });
  }
};

}  // namespace strata::cuda::tactics
