#pragma once
/// squeeze_excite<C, S>: torchvision's SqueezeExcitation(C, S, activation, scale_activation) as a
/// channel gate, with its parameter names (fc1.weight, fc1.bias, fc2.weight, fc2.bias).
#include "strata/layers/activation.hpp"
#include "strata/layers/conv.hpp"
#include "strata/layers/pool.hpp"
#include "strata/pipeline/node.hpp"

namespace strata {

/// x · scale_activation(fc2(activation(fc1(avgpool(x))))), fc1 and fc2 1x1 convs with bias:
/// `squeeze_excite<96, 24>` (relu, sigmoid: torchvision's defaults),
/// `squeeze_excite<96, 24, relu, hardsigmoid>` (MobileNetV3). `Channels` is the input's channels.
template <int Channels, int Squeeze, auto Activation = relu, auto ScaleActivation = sigmoid>
inline constexpr auto squeeze_excite =
    multiply(named<"avgpool">(global_avg_pool) | named<"fc1">(conv<Squeeze, 1>) |
             named<"activation">(Activation) | named<"fc2">(conv<Channels, 1>) |
             named<"scale_activation">(ScaleActivation));

}  // namespace strata
