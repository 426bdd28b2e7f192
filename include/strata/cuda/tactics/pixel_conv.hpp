#pragma once
/// Tactic `pixel_conv1x1`: a 1×1 convolution of a 1×1 map — a squeeze-excite gate's two layers —
/// as one small kernel (a warp per output; 16-bit storage; storage.hpp's pixel_conv1x1_runs),
/// bias and any activation fused, and the producer's activation applied on load when
/// defer_activations moved it here. A GEMM library spends a launch on the product and, for
/// SiLU or a sigmoid, a second one on the activation; these layers are a few thousand
/// multiply-adds per image. At large batches a warp per output loses to a GEMM: variant fuse = 1
/// is the kernel, fuse = 2 the deferred activation in place then cuBLASLt (lt_conv1x1), and the
/// heuristic (fuse = 0) takes the kernel up to 2^20 multiply-adds at the batch being prepared.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/deferred_act.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"
#include "strata/cuda/tactics/lt_matmul.hpp"

namespace strata::cuda::tactics {

template <DType P>
class PixelConv1x1 final : public Tactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "pixel_conv1x1"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return P != DType::f32 && pixel_conv1x1_runs(op);
  }
  [[nodiscard]] bool reads_input_act() const override { return true; }
  /// Claimed where the kernel would run at `batch` (a deferred activation makes this the only
  /// usable tactic whatever the claim).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    return Claim{{std::string(name())}, small(op, batch) ? rank::tailored : rank::fallback};
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc&, int, std::size_t,
                                                const Libraries&) const override {
    return {Variant{std::string(name()), 0, 0, 1}, Variant{std::string(name()), 0, 0, 2}};
  }
  [[nodiscard]] static bool small(const OpDesc& op, int batch) {
    return static_cast<std::int64_t>(batch) * op.conv.kp * op.conv.cp <= (std::int64_t{1} << 20);
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    if (v.fuse == 2 || (v.fuse == 0 && !small(op, batch))) {
      OpDesc plain = op;
      plain.in_act = ActDesc{};
      static const LtConv1x1<P> lt;
      return std::make_unique<InPlaceThen<P>>(
          op, batch, io, lt.prepare(plain, Variant{std::string(lt.name())}, batch, w, io, lib));
    }
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
