#pragma once
/// torchvision's ResNet-18 and ResNet-50 declared in Strata's DSL, with torchvision's
/// state_dict names ("layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.bias").
#include "strata/layers/activation.hpp"
#include "strata/layers/batch_norm.hpp"
#include "strata/layers/conv.hpp"
#include "strata/layers/dense.hpp"
#include "strata/layers/flatten.hpp"
#include "strata/layers/pool.hpp"
#include "strata/pipeline/pipeline.hpp"

namespace strata::models {

/// A 3×3 convolution without bias, padding 1 (torchvision's conv3x3).
template <int Out, int Stride = 1>
inline constexpr auto conv3x3 = conv<Out, 3, ConvOpts{.stride = Stride, .padding = 1, .bias = false}>;
/// A 1×1 convolution without bias (torchvision's conv1x1).
template <int Out, int Stride = 1>
inline constexpr auto conv1x1 = conv<Out, 1, ConvOpts{.stride = Stride, .bias = false}>;

/// torchvision's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); the
/// shortcut is conv1x1 + batch_norm ("downsample") when the shape changes.
template <int Planes, int Stride, bool Downsample>
constexpr auto basic_block() {
  constexpr auto main = named<"conv1">(conv3x3<Planes, Stride>) | named<"bn1">(batch_norm) | relu |
                        named<"conv2">(conv3x3<Planes>) | named<"bn2">(batch_norm);
  if constexpr (Downsample) {
    return residual<relu>(main, named<"downsample">(conv1x1<Planes, Stride> | batch_norm));
  } else {
    return residual<relu>(main);
  }
}

/// torchvision's Bottleneck (stride on the 3×3 conv, expansion 4).
template <int Planes, int Stride, bool Downsample>
constexpr auto bottleneck() {
  constexpr auto main = named<"conv1">(conv1x1<Planes>) | named<"bn1">(batch_norm) | relu |
                        named<"conv2">(conv3x3<Planes, Stride>) | named<"bn2">(batch_norm) | relu |
                        named<"conv3">(conv1x1<Planes * 4>) | named<"bn3">(batch_norm);
  if constexpr (Downsample) {
    return residual<relu>(main, named<"downsample">(conv1x1<Planes * 4, Stride> | batch_norm));
  } else {
    return residual<relu>(main);
  }
}

/// The stem shared by every torchvision ResNet: conv 7×7/2, batch_norm, relu, max_pool 3×3/2.
inline constexpr auto resnet_stem =
    named<"conv1">(conv<64, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}>) |
    named<"bn1">(batch_norm) | relu |
    named<"maxpool">(max_pool<3, PoolOpts{.stride = 2, .padding = 1}>);

/// torchvision.models.resnet18(): 11,689,512 parameters, input 3×224×224.
inline constexpr auto resnet18 =
    input<3, 224, 224> | resnet_stem |
    named<"layer1">(basic_block<64, 1, false>() | basic_block<64, 1, false>()) |
    named<"layer2">(basic_block<128, 2, true>() | basic_block<128, 1, false>()) |
    named<"layer3">(basic_block<256, 2, true>() | basic_block<256, 1, false>()) |
    named<"layer4">(basic_block<512, 2, true>() | basic_block<512, 1, false>()) |
    named<"avgpool">(global_avg_pool) | flatten | named<"fc">(dense<1000>);

/// torchvision.models.resnet50(): 25,557,032 parameters, input 3×224×224.
inline constexpr auto resnet50 =
    input<3, 224, 224> | resnet_stem |
    named<"layer1">(bottleneck<64, 1, true>() | bottleneck<64, 1, false>() |
                    bottleneck<64, 1, false>()) |
    named<"layer2">(bottleneck<128, 2, true>() | bottleneck<128, 1, false>() |
                    bottleneck<128, 1, false>() | bottleneck<128, 1, false>()) |
    named<"layer3">(bottleneck<256, 2, true>() | bottleneck<256, 1, false>() |
                    bottleneck<256, 1, false>() | bottleneck<256, 1, false>() |
                    bottleneck<256, 1, false>() | bottleneck<256, 1, false>()) |
    named<"layer4">(bottleneck<512, 2, true>() | bottleneck<512, 1, false>() |
                    bottleneck<512, 1, false>()) |
    named<"avgpool">(global_avg_pool) | flatten | named<"fc">(dense<1000>);

using ResNet18 = std::remove_cv_t<decltype(resnet18)>;
using ResNet50 = std::remove_cv_t<decltype(resnet50)>;

}  // namespace strata::models
