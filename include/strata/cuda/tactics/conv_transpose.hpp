#pragma once
/// Tactic `conv_transpose_direct`: nn.ConvTranspose2d (any kernel, stride, padding,
/// output_padding, dilation, groups; batch_norm folded into its weights and bias at load; any
/// activation) as Strata's direct gather kernel: one thread per output element sums the input
/// pixels whose scattered taps land on it. Every precision and layout; it writes a concat's
/// channel slice in place. The one way Strata runs a transposed convolution for now (cuDNN's
/// backward-data convolution would be the faster route for large layers: not done yet).
#include <memory>
#include <optional>
#include <string>

#include "strata/cuda/kernels.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"

namespace strata::cuda::tactics {

template <DType P>
class ConvTransposeDirect final : public KernelTactic<P> {
  using T = storage_t<P>;

 public:
  [[nodiscard]] std::string_view name() const override { return "conv_transpose_direct"; }
  [[nodiscard]] bool applicable(const OpDesc& op) const override {
    return op.kind == OpKind::conv_transpose;
  }
  [[nodiscard]] bool writes_slice(const OpDesc&) const override { return true; }
  /// Every transposed conv; below cudnn_conv_transpose's claim where that applies (measured).
  [[nodiscard]] std::optional<Claim> heuristic(const OpDesc&, int, std::size_t,
                                               const Libraries&) const override {
    return Claim{{std::string(this->name())}, rank::fallback};
  }
  [[nodiscard]] std::unique_ptr<Step> prepare(const OpDesc& op, const Variant&, int batch,
                                              const OpWeights& w, const OpIo& io,
                                              const Libraries&) const override {
    const bool nhwc = storage_layout(P) == Layout::nhwc;
    const Shape is = op.in_shape;
    const Shape os = op.out_shape;
    const LayerDesc& d = op.layer;
    const kernels::ConvTShape cs{batch,      is.c,       is.h,         is.w,         os.c,
                                 os.h,       os.w,       d.kernel.h,   d.kernel.w,   d.stride.h,
                                 d.stride.w, d.padding.h, d.padding.w, d.dilation.h, d.dilation.w,
                                 d.groups};
    const kernels::Strides xs = dense_strides<P>(op.in_cp, is.h * is.w);
    const OutView out = out_view<P>(op);
    const T* x = static_cast<const T*>(io.x);
    T* y = static_cast<T*>(io.y);
    const ActDesc act = op.act;
    return kernel_step("strata conv_transpose_direct (bias, act fused)", [=, &w](cudaStream_t s) {
      kernels::conv_transpose<T>(x, xs, w.weight.template as<const T>(),
                                 w.bias_f32.template as<const float>(), y, out.strides, cs,
                                 out.write, act, nhwc, s);
    });
  }
};

}  // namespace strata::cuda::tactics
