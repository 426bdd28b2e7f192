#pragma once
/// Tactic `direct_conv`: Strata's direct NHWC convolution kernel (16-bit, and f32 values in tf32
/// engines, with FMA math), bias, residual and
/// any activation fused. It wins for first layers with few input channels (a short dot product
/// per output, where cuDNN's implicit GEMM works on the zero padding), and it is the fallback for
/// convolutions cuDNN has no algorithm for (grouped convs whose channels are not multiples of 8;
/// in tf32, grouped and dilated convs over NHWC f32 — H200, session 21).
/// For a conv with a fused max/avg pool it has two variants: the pooled epilogue (each thread
/// computes the conv outputs of one pooling window and writes only the pooled value) and the
/// plain conv, which prepare_step follows with the pool kernel.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

template <DType P>
class DirectConv final : public Tactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "direct_conv"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return storage_layout(P) == Layout::nhwc && op.kind == OpKind::conv;
  }
  /// Variant fuse = 1 pools in the kernel's epilogue; fuse = 0 writes the conv's map and leaves
  /// the pool to the pool kernel.
  [[nodiscard]] bool fuses_pool(const Variant& v) const override { return v.fuse != 0; }
  /// A first layer with few input channels (padded to 8) is claimed outright at small batches
  /// (up to 2^20 outputs; at the MNIST CNN's batch 4096 cuDNN is 9x faster: docs/cuda_backend.md),
  /// without pooling in the kernel (the pooled epilogue measured slower; measured tuning times
  /// both). Any other conv only as the fallback — so also a squeeze-excite gate's 1×1 of a 1×1
  /// map with a padded input (28 → 32 slots), which pixel_conv1x1 claims at small batches and the
  /// libraries at large ones (at batch 256 on an H200 this kernel took 19.5 µs where cuDNN with
  /// its activation pass took 9.8).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc& op, int batch, std::size_t,
                                               const Libraries&) const override {
    const ConvGeom& cg = op.conv;
    const std::int64_t outputs = static_cast<std::int64_t>(batch) * cg.kp * cg.oh * cg.ow;
    // (measured in 16-bit; in tf32 the kernel runs a thread an output in f32: the fallback only)
    const bool tiny_first = is_16bit(P) && cg.groups == 1 && cg.c < cg.cp && cg.window() <= 72 &&
                            outputs <= (std::int64_t{1} << 20) && !pixel_conv1x1_runs(op);
    return Claim{{std::string(name())}, tiny_first ? rank::tailored : rank::fallback};
  }
  /// Timed only where the dot product is short enough to stand a chance.
  [[nodiscard]] std::vector<Variant> candidates(const OpDesc& op, int, std::size_t,
                                                const Libraries&) const override {
    if (op.conv.window() > 576) {
      return {};
    }
    if (op.pool) {
      return {Variant{std::string(name())}, Variant{std::string(name()), 0, 0, 1}};
    }
    return {Variant{std::string(name())}};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant& v, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    return std::make_unique<DirectStep>(op, w, io, batch, fuses_pool(v));
  }

 private:
  class DirectStep final : public Step {
   public:
    DirectStep(const OpDesc& op, const OpWeights& w, const OpIo& io, int batch, bool pool)
        : act_(op.act), w_(w), io_(io), pooled_(pool && op.pool.has_value()) {
      const ConvGeom& cg = op.conv;
      const int creal = cg.groups == 1 ? cg.c : cg.fcg;
      shape_ = {batch, cg.cp, cg.h, cg.w, cg.k, cg.kd, cg.kp, cg.oh, cg.ow, cg.kh, cg.kw,
                cg.sh, cg.sw, cg.ph, cg.pw, cg.dh, cg.dw, cg.groups, cg.fcg, creal};
      if (pooled_) {
        pool_ = kernels::conv_pool_shape(op, batch, cg.kp);
      }
    }
    [[nodiscard]] std::string describe() const override {
      return pooled_ ? "strata conv_pool_direct (bias, add, act, pool fused)"
                     : "strata conv_direct (bias, add, act fused)";
    }
    void launch(cudaStream_t s, void*, std::size_t) override {
      const T* x = static_cast<const T*>(io_.x);
      const T* w = w_.weight.template as<const T>();
      const float* b = w_.bias_f32.template as<const float>();
      const T* z = static_cast<const T*>(io_.z);
      if (pooled_) {
        kernels::conv_pool_direct<T>(x, w, b, z, static_cast<T*>(io_.pooled), shape_, pool_, act_,
                                     s);
      } else {
        kernels::conv_direct<T>(x, w, b, z, static_cast<T*>(io_.y), shape_, act_, s);
      }
    }

   private:
    ActDesc act_;
    const OpWeights& w_;
    OpIo io_;
    bool pooled_ = false;
    kernels::ConvShape shape_{};
    kernels::PoolShape pool_{};
  };
};

}  // namespace strata::cuda::tactics
