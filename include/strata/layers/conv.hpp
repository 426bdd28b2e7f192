#pragma once
/// conv: 2-D convolution, PyTorch's nn.Conv2d. Weight (O, C/groups, kh, kw), bias (O).
#include "strata/layers/layer.hpp"

namespace strata {

/// Options of `conv`, PyTorch's defaults: stride 1, padding 0, dilation 1, groups 1, bias on.
struct ConvOpts {
  HW stride{1};
  HW padding{0};
  HW dilation{1};
  int groups = 1;
  bool bias = true;
};

/// A 2-D convolution with `Out` output channels and a `Kernel` (square or {h, w}) window.
template <int Out, HW Kernel, ConvOpts O>
struct Conv : NodeBase {
  static_assert(Out > 0, "conv: the number of output channels must be positive");
  static_assert(Kernel.h > 0 && Kernel.w > 0, "conv: the kernel size must be positive");
  static_assert(O.stride.h > 0 && O.stride.w > 0, "conv: the stride must be positive");
  static_assert(O.padding.h >= 0 && O.padding.w >= 0, "conv: the padding must not be negative");
  static_assert(O.dilation.h > 0 && O.dilation.w > 0, "conv: the dilation must be positive");
  static_assert(O.groups > 0, "conv: groups must be positive");
  static_assert(Out % O.groups == 0, "conv: groups must divide the number of output channels");

  static constexpr LayerDesc desc{.kind = LayerKind::conv, .out_channels = Out, .kernel = Kernel,
                                  .stride = O.stride, .padding = O.padding,
                                  .dilation = O.dilation, .groups = O.groups, .bias = O.bias};

  static constexpr Problem check(TensorSpec in) {
    if (in.shape.flat()) {
      return Problem::needs_chw_input;
    }
    if (in.shape.c % O.groups != 0) {
      return Problem::groups_do_not_divide_input;
    }
    if (window_out(in.shape.h, Kernel.h, O.stride.h, O.padding.h, O.dilation.h, false) <= 0 ||
        window_out(in.shape.w, Kernel.w, O.stride.w, O.padding.w, O.dilation.w, false) <= 0) {
      return Problem::window_larger_than_input;
    }
    return Problem::none;
  }
  static constexpr TensorSpec out(TensorSpec in) {
    in.shape = chw(Out, window_out(in.shape.h, Kernel.h, O.stride.h, O.padding.h, O.dilation.h, false),
                   window_out(in.shape.w, Kernel.w, O.stride.w, O.padding.w, O.dilation.w, false));
    return in;
  }
  static constexpr ParamList params(TensorSpec in) {
    ParamList l;
    l.add({.suffix = "weight", .dims = {Out, in.shape.c / O.groups, Kernel.h, Kernel.w}, .rank = 4});
    if (O.bias) {
      l.add({.suffix = "bias", .dims = {Out}, .rank = 1});
    }
    return l;
  }
  /// 2 × multiply-adds.
  static constexpr std::int64_t flops(TensorSpec in) {
    const Shape o = out(in).shape;
    return 2 * o.numel() * (in.shape.c / O.groups) * Kernel.h * Kernel.w;
  }
};

/// `conv<64, 3, ConvOpts{.stride = 2, .padding = 1, .bias = false}>`, as nn.Conv2d(_, 64, 3, 2, 1, bias=False).
template <int Out, HW Kernel, ConvOpts O = ConvOpts{}>
inline constexpr Conv<Out, Kernel, O> conv{};

}  // namespace strata
