#pragma once
/// torchvision's MobileNetV2 (width 1.0) declared in Strata's DSL, with torchvision's state_dict
/// names ("features.0.0.weight", "features.2.conv.1.0.weight", "classifier.1.bias").
#include <type_traits>

#include "strata/layers/activation.hpp"
#include "strata/layers/batch_norm.hpp"
#include "strata/layers/conv.hpp"
#include "strata/layers/dense.hpp"
#include "strata/layers/flatten.hpp"
#include "strata/layers/pool.hpp"
#include "strata/models/conv_norm_act.hpp"
#include "strata/models/stage.hpp"
#include "strata/pipeline/pipeline.hpp"

namespace strata::models {

/// torchvision's InvertedResidual(In, Out, Stride, expand_ratio=Expand) in its attribute `conv`:
/// [1×1 expansion Conv2dNormActivation when Expand ≠ 1], 3×3 depthwise Conv2dNormActivation,
/// 1×1 projection conv, batch_norm; ReLU6 throughout; the input is added (nothing after the add)
/// when Stride is 1 and In == Out.
template <int In, int Out, int Stride, int Expand>
constexpr auto inverted_residual() {
  constexpr int hidden = In * Expand;
  constexpr auto project = conv<Out, 1, ConvOpts{.bias = false}> | batch_norm;
  constexpr auto body = [&] {
    if constexpr (Expand != 1) {
      return named<"conv">(conv_norm_act<hidden, 1, 1, 1, relu6> |
                           conv_norm_act<hidden, 3, Stride, hidden, relu6> | project);
    } else {
      return named<"conv">(conv_norm_act<hidden, 3, Stride, hidden, relu6> | project);
    }
  }();
  if constexpr (Stride == 1 && In == Out) {
    return residual(body);
  } else {
    return sequential(body);
  }
}

/// One row (t, c, n, s) of torchvision's inverted_residual_setting: N blocks In → Out, the
/// first with stride S; spliced into `features`, each block is a child of its own.
template <int In, int Out, int N, int S, int T>
constexpr auto inverted_residual_stage() {
  return stage<N>(inverted_residual<In, Out, S, T>(), inverted_residual<Out, Out, 1, T>());
}

/// torchvision.models.mobilenet_v2(): 3,504,872 parameters, input 3×224×224. Its forward pools
/// with F.adaptive_avg_pool2d (no module, so no name) and flattens; classifier is
/// Sequential(Dropout(0.2), Linear(1280, 1000)).
inline constexpr auto mobilenet_v2 =
    input<3, 224, 224> |
    named<"features">(conv_norm_act<32, 3, 2, 1, relu6> |
                      inverted_residual_stage<32, 16, 1, 1, 1>() |
                      inverted_residual_stage<16, 24, 2, 2, 6>() |
                      inverted_residual_stage<24, 32, 3, 2, 6>() |
                      inverted_residual_stage<32, 64, 4, 2, 6>() |
                      inverted_residual_stage<64, 96, 3, 1, 6>() |
                      inverted_residual_stage<96, 160, 3, 2, 6>() |
                      inverted_residual_stage<160, 320, 1, 1, 6>() |
                      conv_norm_act<1280, 1, 1, 1, relu6>) |
    global_avg_pool | flatten | named<"classifier">(dropout<0.2f> | dense<1000>);

using MobileNetV2 = std::remove_cv_t<decltype(mobilenet_v2)>;

}  // namespace strata::models
