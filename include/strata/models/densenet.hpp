#pragma once
/// torchvision's DenseNet-121 declared in Strata's DSL, with torchvision's state_dict names
/// ("features.conv0.weight", "features.denseblock1.denselayer1.norm1.weight",
/// "features.transition1.conv.weight", "features.norm5.bias", "classifier.weight").
#include <type_traits>
#include <utility>

#include "strata/core/fixed_string.hpp"
#include "strata/layers/activation.hpp"
#include "strata/layers/batch_norm.hpp"
#include "strata/layers/conv.hpp"
#include "strata/layers/dense.hpp"
#include "strata/layers/flatten.hpp"
#include "strata/layers/pool.hpp"
#include "strata/pipeline/pipeline.hpp"

namespace strata::models {

/// torchvision's _DenseLayer (growth rate Growth, bottleneck BnSize · Growth): its forward
/// concatenates what it is given with what it computes, so a dense block's running concatenation
/// is, layer by layer, x ← cat([x, layer(x)], 1). norm1, relu1, conv1 (1×1), norm2, relu2, conv2
/// (3×3) are named directly under the layer (named<"">: the concat adds no name part).
template <int Growth = 32, int BnSize = 4>
inline constexpr auto dense_layer =
    concat(identity,
           named<"">(named<"norm1">(batch_norm) | named<"relu1">(relu) |
                     named<"conv1">(conv<BnSize * Growth, 1, ConvOpts{.bias = false}>) |
                     named<"norm2">(batch_norm) | named<"relu2">(relu) |
                     named<"conv2">(conv<Growth, 3, ConvOpts{.padding = 1, .bias = false}>)));

/// torchvision's _DenseBlock of Layers dense layers, "denselayer1" … "denselayer<Layers>": C
/// channels in, C + Layers · Growth out.
template <int Layers, int Growth = 32>
constexpr auto dense_block() {
  static_assert(Layers >= 1, "dense_block: at least one layer");
  return []<std::size_t... I>(std::index_sequence<I...>) {
    return (named<numbered<"denselayer", static_cast<int>(I) + 1>>(dense_layer<Growth>) | ...);
  }(std::make_index_sequence<Layers>{});
}

/// torchvision's _Transition to Out channels: norm, relu, conv (1×1, no bias), pool (2×2 average).
template <int Out>
inline constexpr auto transition =
    named<"norm">(batch_norm) | named<"relu">(relu) |
    named<"conv">(conv<Out, 1, ConvOpts{.bias = false}>) | named<"pool">(avg_pool<2>);

/// torchvision.models.densenet121(): 7,978,856 parameters, input 3×224×224 (growth rate 32,
/// blocks of 6, 12, 24, 16 layers, 64 initial features, bottleneck 4 · 32). Its forward applies
/// F.relu, F.adaptive_avg_pool2d and flatten (no modules, so no names) before `classifier`.
inline constexpr auto densenet121 =
    input<3, 224, 224> |
    named<"features">(
        named<"conv0">(conv<64, 7, ConvOpts{.stride = 2, .padding = 3, .bias = false}>) |
        named<"norm0">(batch_norm) | named<"relu0">(relu) |
        named<"pool0">(max_pool<3, PoolOpts{.stride = 2, .padding = 1}>) |
        named<"denseblock1">(dense_block<6>()) | named<"transition1">(transition<128>) |
        named<"denseblock2">(dense_block<12>()) | named<"transition2">(transition<256>) |
        named<"denseblock3">(dense_block<24>()) | named<"transition3">(transition<512>) |
        named<"denseblock4">(dense_block<16>()) | named<"norm5">(batch_norm)) |
    relu | global_avg_pool | flatten | named<"classifier">(dense<1000>);

using DenseNet121 = std::remove_cv_t<decltype(densenet121)>;

}  // namespace strata::models
