#pragma once
/// conv_transpose: nn.ConvTranspose2d. Weight (C, O/groups, kh, kw) — input channels first, as
/// PyTorch stores it — and bias (O).
#include "strata/layers/layer.hpp"

namespace strata {

/// Options of `conv_transpose`, PyTorch's defaults: stride 1, padding 0, output_padding 0,
/// dilation 1, groups 1, bias on.
struct ConvTransposeOpts {
  HW stride{1};
  HW padding{0};
  HW output_padding{0};
  HW dilation{1};
  int groups = 1;
  bool bias = true;
};

/// Output size of a transposed convolution along one dimension, as PyTorch:
/// (in − 1)·s − 2p + d·(k − 1) + output_padding + 1.
[[nodiscard]] constexpr int transpose_out(int in, int k, int s, int p, int op, int d) {
  return (in - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

/// A transposed 2-D convolution with `Out` output channels and a `Kernel` window.
template <int Out, HW Kernel, ConvTransposeOpts O>
struct ConvTranspose : NodeBase {
  static_assert(Out > 0, "conv_transpose: the number of output channels must be positive");
  static_assert(Kernel.h > 0 && Kernel.w > 0, "conv_transpose: the kernel size must be positive");
  static_assert(O.stride.h > 0 && O.stride.w > 0, "conv_transpose: the stride must be positive");
  static_assert(O.padding.h >= 0 && O.padding.w >= 0,
                "conv_transpose: the padding must not be negative");
  static_assert(O.dilation.h > 0 && O.dilation.w > 0, "conv_transpose: the dilation must be positive");
  static_assert(O.groups > 0, "conv_transpose: groups must be positive");
  static_assert(Out % O.groups == 0,
                "conv_transpose: groups must divide the number of output channels");
  static_assert(O.output_padding.h >= 0 && O.output_padding.w >= 0 &&
                    (O.output_padding.h < O.stride.h || O.output_padding.h < O.dilation.h) &&
                    (O.output_padding.w < O.stride.w || O.output_padding.w < O.dilation.w),
                "conv_transpose: output_padding must be smaller than the stride or the dilation "
                "(PyTorch's rule)");

  static constexpr LayerDesc desc{.kind = LayerKind::conv_transpose, .out_channels = Out,
                                  .kernel = Kernel, .stride = O.stride, .padding = O.padding,
                                  .dilation = O.dilation, .groups = O.groups, .bias = O.bias,
                                  .output_padding = O.output_padding};

  static constexpr HW out_hw(Shape in) {
    return HW{transpose_out(in.h, Kernel.h, O.stride.h, O.padding.h, O.output_padding.h, O.dilation.h),
              transpose_out(in.w, Kernel.w, O.stride.w, O.padding.w, O.output_padding.w, O.dilation.w)};
  }
  static constexpr Problem check(TensorSpec in) {
    if (in.shape.flat()) {
      return Problem::needs_chw_input;
    }
    if (in.shape.c % O.groups != 0) {
      return Problem::transpose_groups_do_not_divide_input;
    }
    if (out_hw(in.shape).h <= 0 || out_hw(in.shape).w <= 0) {
      return Problem::transpose_no_output;
    }
    return Problem::none;
  }
  static constexpr TensorSpec out(TensorSpec in) {
    in.shape = chw(Out, out_hw(in.shape).h, out_hw(in.shape).w);
    return in;
  }
  static constexpr ParamList params(TensorSpec in) {
    ParamList l;
    l.add({.suffix = "weight", .dims = {in.shape.c, Out / O.groups, Kernel.h, Kernel.w}, .rank = 4});
    if (O.bias) {
      l.add({.suffix = "bias", .dims = {Out}, .rank = 1});
    }
    return l;
  }
  /// 2 × multiply-adds: every input pixel meets every tap of its group's output channels.
  static constexpr std::int64_t flops(TensorSpec in) {
    return 2 * in.shape.numel() * (Out / O.groups) * Kernel.h * Kernel.w;
  }
};

/// `conv_transpose<32, 2, ConvTransposeOpts{.stride = 2}>`, as nn.ConvTranspose2d(C, 32, 2, stride=2)
/// (U-Net's up-convolution).
template <int Out, HW Kernel, ConvTransposeOpts O = ConvTransposeOpts{}>
inline constexpr ConvTranspose<Out, Kernel, O> conv_transpose{};

}  // namespace strata
