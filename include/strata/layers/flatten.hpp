#pragma once
/// flatten: (C,H,W) → C·H·W features in PyTorch's NCHW order (c-major, then h, then w),
/// so a dense layer's weights exported from PyTorch line up whatever the memory layout.
#include "strata/layers/layer.hpp"

namespace strata {

/// nn.Flatten(): a view, no arithmetic. A flat input passes through unchanged.
struct Flatten : NodeBase {
  static constexpr LayerDesc desc{.kind = LayerKind::flatten};
  static constexpr Problem check(TensorSpec) { return Problem::none; }
  static constexpr TensorSpec out(TensorSpec in) {
    in.shape = features(static_cast<int>(in.shape.numel()));
    return in;
  }
  static constexpr ParamList params(TensorSpec) { return ParamList{}; }
  static constexpr std::int64_t flops(TensorSpec) { return 0; }
};
inline constexpr Flatten flatten{};

/// nn.Dropout(p): the identity at inference; present so an nn.Sequential maps one to one.
template <float P>
struct Dropout : NodeBase {
  static_assert(P >= 0.0f && P < 1.0f, "dropout: p must be in [0, 1)");
  static constexpr LayerDesc desc{.kind = LayerKind::dropout};
  static constexpr Problem check(TensorSpec) { return Problem::none; }
  static constexpr TensorSpec out(TensorSpec in) { return in; }
  static constexpr ParamList params(TensorSpec) { return ParamList{}; }
  static constexpr std::int64_t flops(TensorSpec) { return 0; }
};
/// `dropout<0.5f>` (identity at inference).
template <float P = 0.5f>
inline constexpr Dropout<P> dropout{};

}  // namespace strata
