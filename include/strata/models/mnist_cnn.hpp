#pragma once
/// The canonical MNIST CNN (BENCHMARKS.md), written as the flat nn.Sequential it mirrors, so
/// its parameters are named "0.weight", "1.running_mean", ..., "11.bias".
#include "strata/layers/activation.hpp"
#include "strata/layers/batch_norm.hpp"
#include "strata/layers/conv.hpp"
#include "strata/layers/dense.hpp"
#include "strata/layers/flatten.hpp"
#include "strata/layers/pool.hpp"
#include "strata/layers/softmax.hpp"
#include "strata/pipeline/pipeline.hpp"

namespace strata::models {

/// 1×28×28 → 10 class probabilities; 421,834 parameters.
inline constexpr auto mnist_cnn = input<1, 28, 28>
    | conv<32, 3, ConvOpts{.padding = 1}> | batch_norm | relu | max_pool<2>
    | conv<64, 3, ConvOpts{.padding = 1}> | batch_norm | relu | max_pool<2>
    | flatten | dense<128> | relu | dense<10> | softmax;

using MnistCnn = std::remove_cv_t<decltype(mnist_cnn)>;

}  // namespace strata::models
