#pragma once
/// Tactic `depthwise_conv`: the depthwise convs of 16-bit NHWC storage (storage.hpp's
/// depthwise_runs says which), including those whose producer's activation defer_activations
/// moved into their read (this is the one tactic that runs such an op). Two ways:
///  - kernel (variant fuse = 1): Strata's depthwise kernel, the producer's activation applied as
///    the input patch is staged, bias, residual and any activation fused — one pass. It wins at
///    small batches (a few blocks' worth of work, where cuDNN's kernels and a separate
///    activation pass cost launches and tails);
///  - cudnn (fuse = 2): the producer's activation applied in place (the input's only reader is
///    this op), then cuDNN's convolution with its epilogue — what runs without the deferral
///    (where cuDNN has no algorithm — channels not a multiple of 8 — the kernel runs).
/// The heuristic (fuse = 0) takes the kernel up to 2^21 output values and cuDNN above; measured
/// tuning times both.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/cudnn_conv.hpp"
#include "strata/cuda/tactics/deferred_act.hpp"

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
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return Claim{{std::string(name())}, rank::tailored};
  }
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc&, int, std::size_t,
                                                const Libraries&) const override {
    return {Variant{std::string(name()), 0, 0, 1}, Variant{std::string(name()), 0, 0, 2}};
  }
  /// Whether the kernel (rather than cuDNN) runs `op` at `batch` when variant `v` leaves it to
  /// the heuristic.
  [[nodiscard]] static bool kernel_at(const OpDesc& op, const Variant& v, int batch) {
    if (v.fuse != 0) {
      return v.fuse == 1;
    }
    const ConvGeom& cg = op.conv;
    return static_cast<std::int64_t>(batch) * cg.oh * cg.ow * cg.kp <= (std::int64_t{1} << 21);
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries& lib) const override {
    if (kernel_at(op, v, batch)) {
      return std::make_unique<DepthwiseStep>(op, w, io, batch);
    }
    OpDesc plain = op;
    plain.in_act = ActDesc{};
    static const CudnnConv<P> cudnn;
    // cuDNN's choice within 64 MiB at this batch: the engine's workspace is sized from the
    // steps planned at construction (max_batch among them), whose needs bound smaller batches'.
    const auto claim = cudnn.heuristic(plain, batch, std::size_t{64} << 20, lib);
    if (!claim) {  // (channels not a multiple of 8: cuDNN has no NHWC algorithm)
      return std::make_unique<DepthwiseStep>(op, w, io, batch);
    }
    return std::make_unique<InPlaceThen<P>>(op, batch, io,
                                            cudnn.prepare(plain, claim->variant, batch, w, io, lib));
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
