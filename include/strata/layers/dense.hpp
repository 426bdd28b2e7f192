#pragma once
/// dense: fully connected layer, nn.Linear. Weight (out, in), bias (out). Needs a flat input.
#include "strata/layers/layer.hpp"

namespace strata {

/// Options of `dense`: the expected input features (0: take them from the input) and bias.
struct DenseOpts {
  int in_features = 0;
  bool bias = true;
};

/// A fully connected layer with `Out` output features.
template <int Out, DenseOpts O>
struct Dense : NodeBase {
  static_assert(Out > 0, "dense: the number of output features must be positive");
  static_assert(O.in_features >= 0, "dense: in_features must not be negative");
  static constexpr LayerDesc desc{.kind = LayerKind::dense, .out_channels = Out, .bias = O.bias,
                                  .in_features = O.in_features};

  static constexpr Problem check(TensorSpec in) {
    if (!in.shape.flat()) {
      return Problem::needs_flat_input;
    }
    if (O.in_features != 0 && O.in_features != in.shape.c) {
      return Problem::in_features_mismatch;
    }
    return Problem::none;
  }
  static constexpr TensorSpec out(TensorSpec in) {
    in.shape = features(Out);
    return in;
  }
  static constexpr ParamList params(TensorSpec in) {
    ParamList l;
    l.add({.suffix = "weight", .dims = {Out, in.shape.c}, .rank = 2});
    if (O.bias) {
      l.add({.suffix = "bias", .dims = {Out}, .rank = 1});
    }
    return l;
  }
  /// 2 × multiply-adds.
  static constexpr std::int64_t flops(TensorSpec in) { return 2 * static_cast<std::int64_t>(Out) * in.shape.c; }
};

/// `dense<128>`, `dense<10, DenseOpts{.in_features = 128, .bias = false}>`, as nn.Linear.
template <int Out, DenseOpts O = DenseOpts{}>
inline constexpr Dense<Out, O> dense{};

}  // namespace strata
