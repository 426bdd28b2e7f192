#pragma once
/// upsample: nn.Upsample(scale_factor=s, mode='nearest' | 'bilinear', align_corners) with an
/// integer scale factor per dimension. No parameters.
#include "strata/layers/layer.hpp"

namespace strata {

/// Options of `upsample`: the interpolation, and for bilinear PyTorch's align_corners (true:
/// the corner pixels of input and output coincide; false: pixel centres are scaled).
struct UpsampleOpts {
  Interp mode = Interp::nearest;
  bool align_corners = false;
};

/// Upsampling (C,H,W) → (C, H·Scale.h, W·Scale.w).
template <HW Scale, UpsampleOpts O>
struct Upsample : NodeBase {
  static_assert(Scale.h > 0 && Scale.w > 0, "upsample: the scale factor must be positive");
  static_assert(!O.align_corners || O.mode == Interp::bilinear,
                "upsample: align_corners applies to bilinear interpolation only (as in PyTorch)");
  static constexpr LayerDesc desc{.kind = LayerKind::upsample, .scale = Scale, .interp = O.mode,
                                  .align_corners = O.align_corners};
  static constexpr Problem check(TensorSpec in) {
    return in.shape.flat() ? Problem::needs_chw_input : Problem::none;
  }
  static constexpr TensorSpec out(TensorSpec in) {
    in.shape = chw(in.shape.c, in.shape.h * Scale.h, in.shape.w * Scale.w);
    return in;
  }
  static constexpr ParamList params(TensorSpec) { return ParamList{}; }
  /// Nearest copies (0); bilinear weighs 4 pixels per output (4 multiply-adds).
  static constexpr std::int64_t flops(TensorSpec in) {
    return O.mode == Interp::nearest ? 0 : 8 * out(in).shape.numel();
  }
};

/// `upsample<2>` (nearest), `upsample<HW{2, 3}>`,
/// `upsample<2, UpsampleOpts{.mode = Interp::bilinear, .align_corners = true}>`, as
/// nn.Upsample(scale_factor=2) / nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True).
template <HW Scale, UpsampleOpts O = UpsampleOpts{}>
inline constexpr Upsample<Scale, O> upsample{};

}  // namespace strata
