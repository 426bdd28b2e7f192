#pragma once
/// Tactics for the ops Strata always runs with its own kernels, one launch each:
/// `pointwise` (a stand-alone batch_norm, activation or residual add), `pool` (max/avg pooling
/// with PyTorch's window rules, global average pooling) and `softmax` (softmax/log_softmax in
/// f32; a final one writes the caller's f32 output itself).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"

namespace strata::cuda::tactics {

/// A step that is one call of a Strata kernel launcher, described by `what`.
template <class Launch>
class KernelStep final : public Step {
 public:
  KernelStep(std::string what, Launch launch) : what_(std::move(what)), launch_(std::move(launch)) {}
  [[nodiscard]] std::string describe() const override { return what_; }
  void launch(cudaStream_t s, void*, std::size_t) override { launch_(s); }

 private:
  std::string what_;
  Launch launch_;
};

template <class Launch>
[[nodiscard]] std::unique_ptr<Step> kernel_step(std::string what, Launch launch) {
  return std::make_unique<KernelStep<Launch>>(std::move(what), std::move(launch));
}

/// The shared shape of the single-kernel tactics: the one way to run their ops.
template <DType P>
class KernelTactic : public Tactic<P> {
 public:
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return Claim{{std::string(this->name())}, rank::only};
  }
};

/// `pointwise`: y = act(x·scale + shift + z) per channel slot.
template <DType P>
class Pointwise final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "pointwise"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::batch_norm || op.kind == OpKind::activation ||
           op.kind == OpKind::add;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const int hw = op.out_shape.h * op.out_shape.w;
    const std::int64_t total = static_cast<std::int64_t>(batch) * op.out_cp * hw;
    const bool nhwc = storage_layout(P) == Layout::nhwc;
    return kernel_step("strata pointwise", [=, &w](cudaStream_t s) {
      kernels::pointwise<T>(static_cast<const T*>(io.x), static_cast<const T*>(io.z),
                            static_cast<T*>(io.y), w.scale_f32.template as<const float>(),
                            w.shift_f32.template as<const float>(), op.act, total, op.out_cp, hw,
                            op.out_shape.c, nhwc, s);
    });
  }
};

/// `pool`: max/avg pooling and global average pooling.
template <DType P>
class Pool final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "pool"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::max_pool || op.kind == OpKind::avg_pool ||
           op.kind == OpKind::global_avg_pool;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights&, const OpIo& io,
                                              const Libraries&) const override {
    const bool nhwc = storage_layout(P) == Layout::nhwc;
    const T* x = static_cast<const T*>(io.x);
    T* y = static_cast<T*>(io.y);
    const Shape is = op.in_shape;
    if (op.kind == OpKind::global_avg_pool) {
      const int cp = op.in_cp;
      return kernel_step("strata global_avg_pool", [=](cudaStream_t s) {
        kernels::global_avg_pool<T>(x, y, batch, cp, is.h * is.w, nhwc, s);
      });
    }
    const LayerDesc& d = op.layer;
    const kernels::PoolShape ps{batch, op.in_cp, is.h, is.w, op.out_shape.h, op.out_shape.w,
                                d.kernel.h, d.kernel.w, d.stride.h, d.stride.w, d.padding.h,
                                d.padding.w, op.kind == OpKind::max_pool, d.count_include_pad};
    return kernel_step("strata pool", [=](cudaStream_t s) { kernels::pool<T>(x, y, ps, nhwc, s); });
  }
};

/// `softmax`: softmax/log_softmax over channels, f32 arithmetic.
template <DType P>
class Softmax final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "softmax"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::softmax || op.kind == OpKind::log_softmax;
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights&, const OpIo& io,
                                              const Libraries&) const override {
    const bool nhwc = storage_layout(P) == Layout::nhwc;
    const Shape is = op.in_shape;
    const int hw = is.h * is.w;
    const kernels::Strides xs =
        nhwc ? kernels::nhwc_strides(op.in_cp, hw) : kernels::nchw_strides(op.in_cp, hw);
    const bool log = op.kind == OpKind::log_softmax;
    const T* x = static_cast<const T*>(io.x);
    if (op.writes_user_output) {
      float* out = io.user_out;
      return kernel_step("strata softmax (f32, into the output)", [=](cudaStream_t s) {
        kernels::softmax<T, float>(x, xs, out, kernels::nchw_strides(is.c, hw), batch, is.c, is.c,
                                   hw, log, s);
      });
    }
    const int ocp = op.out_cp;
    const kernels::Strides ys = nhwc ? kernels::nhwc_strides(ocp, hw) : kernels::nchw_strides(ocp, hw);
    T* y = static_cast<T*>(io.y);
    return kernel_step("strata softmax", [=](cudaStream_t s) {
      kernels::softmax<T, T>(x, xs, y, ys, batch, is.c, ocp, hw, log, s);
    });
  }
};

}  // namespace strata::cuda::tactics
