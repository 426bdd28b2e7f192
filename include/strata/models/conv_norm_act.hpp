#pragma once
/// conv_norm_act: torchvision's Conv2dNormActivation (torchvision.ops.misc), the conv + batch norm
/// + activation nn.Sequential that MobileNet and EfficientNet are built from.
#include <type_traits>

#include "strata/layers/activation.hpp"
#include "strata/layers/batch_norm.hpp"
#include "strata/layers/conv.hpp"
#include "strata/pipeline/node.hpp"

namespace strata::models {

/// Conv2dNormActivation(in, Out, K, Stride, groups=Groups, activation_layer=Act) with
/// BatchNorm2d: an nn.Sequential of a bias-free K×K conv with padding (K − 1)/2, batch_norm and
/// `Act` (children "0", "1", "2"); `Act` = identity is activation_layer=None (children "0", "1").
template <int Out, int K, int Stride = 1, int Groups = 1, auto Act = relu>
inline constexpr auto conv_norm_act = [] {
  constexpr ConvOpts opts{.stride = Stride, .padding = (K - 1) / 2, .groups = Groups, .bias = false};
  constexpr auto conv_bn = conv<Out, K, opts> | batch_norm;
  if constexpr (std::is_same_v<std::remove_cvref_t<decltype(Act)>, Identity>) {
    return sequential(conv_bn);
  } else {
    return sequential(conv_bn | Act);
  }
}();

}  // namespace strata::models
