#pragma once
/// softmax and log_softmax over features (flat input) or channels (C,H,W input: per pixel),
/// as nn.Softmax(dim=1) / nn.LogSoftmax(dim=1). Computed in f32 on every backend.
#include "strata/layers/layer.hpp"

namespace strata {

/// softmax (`K` = LayerKind::softmax) or log_softmax over dimension 1.
template <LayerKind K>
struct Softmax : NodeBase {
  static constexpr LayerDesc desc{.kind = K};
  static constexpr Problem check(TensorSpec) { return Problem::none; }
  static constexpr TensorSpec out(TensorSpec in) { return in; }
  static constexpr ParamList params(TensorSpec) { return ParamList{}; }
  static constexpr std::int64_t flops(TensorSpec in) { return 3 * in.shape.numel(); }
};
inline constexpr Softmax<LayerKind::softmax> softmax{};
inline constexpr Softmax<LayerKind::log_softmax> log_softmax{};

}  // namespace strata
