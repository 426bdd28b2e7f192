#pragma once
/// batch_norm: inference-mode nn.BatchNorm2d: y = (x - running_mean) / sqrt(running_var + eps)
/// * weight + bias, per channel. Folded into a preceding conv at load time.
#include "strata/layers/layer.hpp"

namespace strata {

/// Batch normalisation over channels with the given epsilon (PyTorch's default 1e-5).
template <float Eps>
struct BatchNorm : NodeBase {
  static_assert(Eps > 0.0f, "batch_norm: eps must be positive");
  static constexpr LayerDesc desc{.kind = LayerKind::batch_norm, .eps = Eps};

  static constexpr Problem check(TensorSpec in) {
    return in.shape.flat() ? Problem::needs_chw_input : Problem::none;
  }
  static constexpr TensorSpec out(TensorSpec in) { return in; }
  static constexpr ParamList params(TensorSpec in) {
    const std::int64_t c = in.shape.c;
    ParamList l;
    l.add({.suffix = "weight", .dims = {c}, .rank = 1});
    l.add({.suffix = "bias", .dims = {c}, .rank = 1});
    l.add({.suffix = "running_mean", .dims = {c}, .rank = 1, .learnable = false});
    l.add({.suffix = "running_var", .dims = {c}, .rank = 1, .learnable = false});
    l.add({.suffix = "num_batches_tracked", .rank = 0, .learnable = false, .optional = true,
           .integer = true});
    return l;
  }
  static constexpr std::int64_t flops(TensorSpec in) { return 2 * in.shape.numel(); }
};

/// nn.BatchNorm2d with eps 1e-5.
inline constexpr BatchNorm<1e-5f> batch_norm{};
/// nn.BatchNorm2d with another eps: `batch_norm_eps<1e-3f>`.
template <float Eps>
inline constexpr BatchNorm<Eps> batch_norm_eps{};

}  // namespace strata
