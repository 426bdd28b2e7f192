#pragma once
/// Tactic `depthwise_conv`: Strata's depthwise kernel for 16-bit NHWC storage (storage.hpp's
/// depthwise_runs says which convs): the producer's deferred activation (defer_activations)
/// applied as the input patch is staged, bias, residual and any activation fused — one pass.
/// Claimed up to 2^21 output values (a few blocks' worth of work, where cuDNN's kernels and a
/// separate activation pass cost launches and tails); above that cuDNN claims the op, after
/// prepare_step applies the deferred activation in place (the kernel measured 2-3x slower than
/// cuDNN at batch 256). Measured tuning times it against cuDNN.
#include <memory>
#include <optional>
#include <string>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

template <DType P>
class DepthwiseConv final : public Tactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "depthwise_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return P != DType::f32 && depthwise_runs(op);
  }
  [[nodiscard]] bool reads_input_act() const override { return true; }
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    const ConvGeom& cg = op.conv;
    const bool small =
        static_cast<std::int64_t>(batch) * cg.oh * cg.ow * cg.kp <= (std::int64_t{1} << 21);
    return Claim{{std::string(name())}, small ? rank::tailored : rank::fallback};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    return std::make_unique<DepthwiseStep>(op, w, io, batch);
  }

 private:
  class DepthwiseStep final : public Step {
   public:
    DepthwiseStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch)
        : in_act_(op.in_act), act_(op.act), w_(w), io_(io) {
      const ConvGeom& cg = op.conv;
      shape_ = {batch, cg.cp, cg.h,  cg.w,  cg.k,  cg.kd, cg.kp, cg.oh, cg.ow,     cg.kh,
                cg.kw, cg.sh, cg.sw, cg.ph, cg.pw, cg.dh, cg.dw, cg.groups, cg.fcg, 1};
      describe_ = "strata depthwise " + std::to_string(cg.kh) + "x" + std::to_string(cg.kw) +
                  (cg.sh > 1 ? " stride " + std::to_string(cg.sh) : std::string()) + " (" +
                  (op.in_act.kind != Act::none ? "the producer's activation on load, " : "") +
                  "bias" + (op.has_residual ? ", add" : "") + ", act fused)";
    }
    [[nodiscard]] std::string describe() const override { return describe_; }
    void launch(cudaStream_t s, void*, std::size_t) override {
      kernels::depthwise<T>(static_cast<const T*>(io_.x), w_.weight.template as<const T>(),
                            w_.bias_f32.template as<const float>(),
                            static_cast<const T*>(io_.z), static_cast<T*>(io_.y), shape_, in_act_,
                            act_, s);
    }

   private:
    ActDesc in_act_;
    ActDesc act_;
    const OpWeights& w_;
    OpIo io_;
    kernels::ConvShape shape_{};
    std::string describe_;
  };
};

}  // namespace strata::cuda::tactics
