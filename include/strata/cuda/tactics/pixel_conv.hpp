#pragma once
/// Tactic `pixel_conv1x1`: a 1×1 convolution of a 1×1 map — a squeeze-excite gate's two layers —
/// as one small kernel (a lane per 16-byte input vector of each output, up to a warp; 16-bit
/// storage; storage.hpp's pixel_conv1x1_runs),
/// bias and any activation fused, and the producer's activation applied on load when
/// defer_activations moved it here. A GEMM library spends a launch on the product and, for
/// SiLU or a sigmoid, a second one on the activation; these layers are a few thousand
/// multiply-adds per image. Claimed up to 2^20 multiply-adds: above, the kernel loses to a GEMM
/// (on an H200 at batch 256: 15.8-52.3 us against about 10), so cuBLASLt claims the op, after
/// prepare_step applies the deferred activation in place.
#include <memory>
#include <optional>
#include <string>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"

namespace strata::cuda::tactics {

template <DType P>
class PixelConv1x1 final : public Tactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "pixel_conv1x1"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return is_16bit(P) && pixel_conv1x1_runs(op);
  }
  [[nodiscard]] bool reads_input_act() const override { return true; }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    const bool small =
        static_cast<std::int64_t>(batch) * op.conv.kp * op.conv.cp <= (std::int64_t{1} << 20);
    return Claim{{std::string(name())}, small ? rank::tailored : rank::fallback};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const ConvGeom& cg = op.conv;
    const T* x = static_cast<const T*>(io.x);
    T* y = static_cast<T*>(io.y);
    const ActDesc in_act = op.in_act;
    const ActDesc act = op.act;
    const int cp = cg.cp;
    const int k = cg.k;
    const int kp = cg.kp;
    const OpWeights* ww = &w;
    return kernel_step(
        std::string("strata 1x1 conv of a 1x1 map (") +
            (in_act.kind != Act::none ? "the producer's activation on load, " : "") +
            "bias, act fused)",
        [=](cudaStream_t s) {
          kernels::pixel_conv1x1<T>(x, ww->weight.template as<const T>(),
                                    ww->bias_f32.template as<const float>(), y, batch, cp, k, kp,
                                    in_act, act, s);
        });
  }
};

}  // namespace strata::cuda::tactics
