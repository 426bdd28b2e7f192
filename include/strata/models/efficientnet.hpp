#pragma once
/// torchvision's EfficientNet-B0 declared in Strata's DSL, with torchvision's state_dict names
/// ("features.0.0.weight", "features.2.1.block.2.fc1.weight", "classifier.1.bias").
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
#include "strata/pipeline/squeeze_excite.hpp"

namespace strata::models {

/// torchvision's MBConv(In → Out, kernel K, Stride, expand_ratio Expand) in its attribute `block`:
/// [1×1 expansion Conv2dNormActivation when Expand ≠ 1], K×K depthwise Conv2dNormActivation,
/// SqueezeExcitation(In·Expand, max(1, In/4), SiLU), 1×1 projection Conv2dNormActivation without
/// activation; SiLU throughout. The input is added (nothing after the add) when Stride is 1 and
/// In == Out; stochastic depth before the add is the identity at inference.
template <int In, int Out, int K, int Stride, int Expand>
constexpr auto mbconv() {
  constexpr int expanded = In * Expand;
  constexpr int squeeze = In / 4 > 1 ? In / 4 : 1;
  constexpr auto tail = conv_norm_act<expanded, K, Stride, expanded, silu> |
                        squeeze_excite<expanded, squeeze, silu> |
                        conv_norm_act<Out, 1, 1, 1, identity>;
  constexpr auto body = [&] {
    if constexpr (Expand != 1) {
      return named<"block">(conv_norm_act<expanded, 1, 1, 1, silu> | tail);
    } else {
      return named<"block">(tail);
    }
  }();
  if constexpr (Stride == 1 && In == Out) {
    return residual(body);
  } else {
    return sequential(body);
  }
}

/// One row (expand_ratio, kernel, stride, in, out, layers) of torchvision's B0 setting: an
/// nn.Sequential of N MBConv blocks, the first In → Out with stride S, the rest Out → Out.
template <int Expand, int K, int S, int In, int Out, int N>
constexpr auto mbconv_stage() {
  return sequential(stage<N>(mbconv<In, Out, K, S, Expand>(), mbconv<Out, Out, K, 1, Expand>()));
}

/// torchvision.models.efficientnet_b0(): 5,288,548 parameters, input 3×224×224; BatchNorm eps
/// 1e-5; classifier is Sequential(Dropout(0.2), Linear(1280, 1000)).
inline constexpr auto efficientnet_b0 =
    input<3, 224, 224> |
    named<"features">(conv_norm_act<32, 3, 2, 1, silu> |
                      mbconv_stage<1, 3, 1, 32, 16, 1>() |
                      mbconv_stage<6, 3, 2, 16, 24, 2>() |
                      mbconv_stage<6, 5, 2, 24, 40, 2>() |
                      mbconv_stage<6, 3, 2, 40, 80, 3>() |
                      mbconv_stage<6, 5, 1, 80, 112, 3>() |
                      mbconv_stage<6, 5, 2, 112, 192, 4>() |
                      mbconv_stage<6, 3, 1, 192, 320, 1>() |
                      conv_norm_act<1280, 1, 1, 1, silu>) |
    named<"avgpool">(global_avg_pool) | flatten |
    named<"classifier">(dropout<0.2f> | dense<1000>);

using EfficientNetB0 = std::remove_cv_t<decltype(efficientnet_b0)>;

}  // namespace strata::models
