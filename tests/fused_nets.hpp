#pragma once
// Networks shared by the rtc tests (the generated fused kernel's source) and the GPU tests (the
// kernel run against the CPU reference).
#include <type_traits>

#include "strata/strata.hpp"

namespace strata_test {

// The tiled fused kernel's cases (EngineOptions::fused_tiled): a first conv with dilation and a
// 3x3 ceil-mode pool, a tensor-core conv with a ceil-mode average pool that does not count
// padding, a 1x1 conv with no pool, a stride-2 tensor-core conv whose 3x3 map leaves 7 of 16
// blocks without a rectangle, three dense layers and a log_softmax.
inline constexpr auto tiled_net = strata::input<3, 23, 19>
    | strata::conv<16, 3, strata::ConvOpts{.padding = 2, .dilation = 2}> | strata::relu
    | strata::max_pool<3, strata::PoolOpts{.stride = 2, .padding = 1, .ceil_mode = true}>
    | strata::conv<32, 3, strata::ConvOpts{.padding = 1}> | strata::batch_norm | strata::silu
    | strata::avg_pool<2, strata::PoolOpts{.ceil_mode = true, .count_include_pad = false}>
    | strata::conv<16, 1> | strata::gelu
    | strata::conv<32, 3, strata::ConvOpts{.stride = 2, .padding = 1}> | strata::relu
    | strata::flatten | strata::dense<40> | strata::relu | strata::dense<24> | strata::tanh
    | strata::dense<7> | strata::log_softmax;
using TiledNet = std::remove_cv_t<decltype(tiled_net)>;

// The tiled form with one conv (no tensor-core stage: its map is the last and the region a block
// reads is its rectangle), an input of 286 floats (not a multiple of 4: the host path's copy
// one float a load) and a softmax.
inline constexpr auto tiled_one_conv_net = strata::input<2, 13, 11>
    | strata::conv<24, 3, strata::ConvOpts{.padding = 1}> | strata::batch_norm | strata::relu
    | strata::max_pool<2> | strata::flatten | strata::dense<10> | strata::softmax;
using TiledOneConvNet = std::remove_cv_t<decltype(tiled_one_conv_net)>;

}  // namespace strata_test
