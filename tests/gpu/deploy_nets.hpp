#pragma once
// The small networks of the deployment layers' GPU tests (test_deploy_layers.cpp,
// test_deploy_dense.cpp), shared by both translation units (two, so that they compile side by
// side: the one file was the slowest of the GPU tests to compile).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "forced.hpp"
#include "gpu_test.hpp"
#include "strata/models/densenet.hpp"
#include "strata/models/efficientnet.hpp"
#include "strata/models/mobilenet_v2.hpp"
#include "strata/models/resnet.hpp"

namespace strata_test::deploy {

using namespace strata;
using strata_test::check_all_precisions;

inline const std::vector<int> kBatches{1, 3, 17};
inline constexpr int kMax = 17;

// The three activations fused into convs (cuDNN conv + Strata epilogue; 16-bit 1x1 convs as
// cuBLASLt GEMMs with the activation after), stand-alone after a pool and a batch_norm, and after
// a dense layer.
inline constexpr auto act_net = input<5, 6, 7>
    | conv<12, 3, ConvOpts{.padding = 1}> | hardswish | conv<8, 1> | mish
    | conv<10, 1> | hardsigmoid | batch_norm | mish | max_pool<2> | hardswish
    | conv<9, 3, ConvOpts{.padding = 1}> | batch_norm | hardsigmoid
    | flatten | dense<6> | mish;
using ActNet = std::remove_cv_t<decltype(act_net)>;

// Bilinear with align_corners at factors (2, 3), nearest at 2, bilinear without align_corners
// at (3, 2); channels not a multiple of 8.
inline constexpr auto upsample_net = input<5, 4, 5> | conv<6, 1>
    | upsample<HW{2, 3}, UpsampleOpts{.mode = Interp::bilinear, .align_corners = true}>
    | conv<4, 3, ConvOpts{.padding = 1}> | upsample<2>
    | upsample<HW{3, 2}, UpsampleOpts{.mode = Interp::bilinear}> | conv<3, 1>;
using UpsampleNet = std::remove_cv_t<decltype(upsample_net)>;

// Adaptive average pooling 7x11 → 3x5 (overlapping windows), then up to 4x7 (repeated pixels),
// then 1x1 (global average pooling).
inline constexpr auto adaptive_net = input<6, 7, 11> | conv<10, 3, ConvOpts{.padding = 1}>
    | adaptive_avg_pool<3, 5> | conv<5, 1> | relu | adaptive_avg_pool<4, 7>
    | adaptive_avg_pool<1> | flatten | dense<3>;
using AdaptiveNet = std::remove_cv_t<decltype(adaptive_net)>;

// concat of identity (a copy), conv+bn+relu, max_pool and conv+sigmoid branches: 6 + 3 + 6 + 4 =
// 19 channels, every slice but the first at an offset that is not a multiple of 8; then a conv.
inline constexpr auto concat_net = input<5, 9, 9> | conv<6, 1>
    | concat(identity, conv<3, 3, ConvOpts{.padding = 1}> | batch_norm | relu,
             max_pool<3, PoolOpts{.stride = 1, .padding = 1}>, conv<4, 1> | sigmoid)
    | conv<7, 3, ConvOpts{.padding = 1}>;
using ConcatNet = std::remove_cv_t<decltype(concat_net)>;

// Slices on 8-channel boundaries (8 + 16 + 8), a conv+pool branch (the pool fused into the conv,
// writing the slice), a channel gate writing its slice, a concat as a residual's main branch,
// and a concat as the network's output.
inline constexpr auto concat_aligned_net = input<8, 6, 6>
    | concat(conv<8, 1>, conv<16, 3, ConvOpts{.padding = 1}> | relu,
             multiply(global_avg_pool | conv<8, 1> | sigmoid))
    | residual<relu>(concat(conv<12, 1>, conv<20, 3, ConvOpts{.padding = 1}> | max_pool<3, PoolOpts{.stride = 1, .padding = 1}>))
    | concat(conv<5, 1> | gelu, identity, avg_pool<3, PoolOpts{.stride = 1, .padding = 1}>);
using ConcatAlignedNet = std::remove_cv_t<decltype(concat_aligned_net)>;

// Nested concats (the inner one's slices move into the outer output) and flat concats: a dense
// layer and the identity over features; flatten of (C,H,W) tensors — a lone flatten (a copy) and
// a conv's output — into a flat concat (NHWC storage is rearranged into flatten order).
inline constexpr auto concat_flat_net = input<2, 5, 5>
    | concat(conv<3, 1>, concat(identity, avg_pool<3, PoolOpts{.stride = 1, .padding = 1}>))
    | conv<5, 1> | relu
    | concat(flatten, conv<2, 1> | flatten, global_avg_pool | flatten)
    | dense<9> | concat(dense<4> | tanh, identity) | dense<6>;
using ConcatFlatNet = std::remove_cv_t<decltype(concat_flat_net)>;

// Squeeze-excite as MobileNetV3 has it (hardswish before, hardsigmoid gate), and torchvision's
// default (relu, sigmoid) on 12 channels (not a multiple of 8).
inline constexpr auto se_net = input<4, 6, 6> | conv<16, 1> | batch_norm | hardswish
    | squeeze_excite<16, 8, relu, hardsigmoid> | conv<12, 3, ConvOpts{.padding = 1}>
    | squeeze_excite<12, 4> | conv<6, 1>;
using SeNet = std::remove_cv_t<decltype(se_net)>;

// Squeeze-excite gates for the one-kernel form (squeeze_excite): 2,056 channels (more than one
// round of 256 channel groups in the pool; SiLU deferred into fc2's read, as in EfficientNet) on
// a 5x5 map, whose pool a few blocks an image share; then 16 channels on a 2x2 map (a block an
// image).
inline constexpr auto se_wide_net = input<24, 5, 5> | conv<2056, 1> | silu
    | squeeze_excite<2056, 40, silu, sigmoid> | conv<16, 3, ConvOpts{.stride = 2}> | batch_norm
    | relu | squeeze_excite<16, 8, relu, hardsigmoid> | conv<10, 1>;
using SeWideNet = std::remove_cv_t<decltype(se_wide_net)>;

// conv_transpose: stride 2, output_padding 1, groups 2, dilation 2, padding 1, then batch_norm
// (folded) and hardswish; a rectangular kernel with stride (2, 1) and no bias, then mish; an
// output_padding below the dilation but not below the stride (1 and 1).
inline constexpr auto conv_transpose_net = input<4, 5, 6>
    | conv_transpose<6, 3, ConvTransposeOpts{.stride = 2, .padding = 1, .output_padding = 1,
                                             .dilation = 2, .groups = 2}>
    | batch_norm | hardswish
    | conv_transpose<5, HW{2, 3}, ConvTransposeOpts{.stride = HW{2, 1}, .bias = false}> | mish
    | conv_transpose<3, 3, ConvTransposeOpts{.padding = 1, .output_padding = 1, .dilation = 2}>;
using ConvTransposeNet = std::remove_cv_t<decltype(conv_transpose_net)>;

// DenseNet's pattern: each layer's input stays where it was written, as the first channels of
// its output (no copy), and the layer's pre-activation batch norm (or relu) reads it there; the
// first conv, each layer's last conv write their channels of one 40-channel tensor.
// The first two layers' last convs have no bias (torchvision's).
inline constexpr auto dense_block_net = input<3, 12, 12> | conv<16, 3, ConvOpts{.padding = 1}> | batch_norm | relu
    | concat(identity, batch_norm | relu | conv<16, 1> | batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1, .bias = false}>)
    | concat(identity, batch_norm | relu | conv<16, 1> | batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1, .bias = false}>)
    | concat(identity, relu | conv<16, 1> | relu | conv<8, 3, ConvOpts{.padding = 1}>)
    | batch_norm | relu | conv<8, 1> | avg_pool<2> | global_avg_pool | flatten | dense<5>;
using DenseBlockNet = std::remove_cv_t<decltype(dense_block_net)>;

// DenseNet's head in small: the last block's concatenation (20 channels in 24 slots), a batch norm
// and ReLU over it, the global average pool and the classifier (fold_normed_pooled_dense).
inline constexpr auto norm_head_net = input<3, 10, 10> | conv<12, 3, ConvOpts{.padding = 1}>
    | concat(identity, batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1}>)
    | batch_norm | relu | global_avg_pool | flatten | dense<7>;
using NormHeadNet = std::remove_cv_t<decltype(norm_head_net)>;

// Batch norms folded into 1x1 convs with a fused 2x2 pool (normed_conv fuse 1): each reads a
// concat's identity channels in place (so its input stays live and the fold is made), ReLU6 into
// a 24-channel conv + max pool, hardswish over 40 slots (a partial reduction step) into a
// bias-free 8-channel conv + average pool; 12x10 maps (pooled 6x5: 120 rows an image).
inline constexpr auto pooled_norm_net = input<8, 12, 10> | conv<16, 1>
    | concat(identity, batch_norm | relu6 | conv<24, 1> | max_pool<2> | upsample<2>)
    | concat(identity, batch_norm | hardswish | conv<8, 1, ConvOpts{.bias = false}> | avg_pool<2> | upsample<2>)
    | conv<4, 1>;
using PooledNormNet = std::remove_cv_t<decltype(pooled_norm_net)>;

// A U-Net step: down, up by conv_transpose, concat with the skip, conv.
inline constexpr auto unet_net = input<3, 8, 8> | conv<8, 3, ConvOpts{.padding = 1}> | relu
    | concat(identity, max_pool<2> | conv<12, 3, ConvOpts{.padding = 1}> | relu
                           | conv_transpose<6, 2, ConvTransposeOpts{.stride = 2}> | relu)
    | conv<4, 3, ConvOpts{.padding = 1}>;
using UnetNet = std::remove_cv_t<decltype(unet_net)>;

// MBConv-like blocks for Strata's depthwise kernel: a 1x1 expansion + SiLU (20 channels: 24 slots)
// whose activation moves into the 3x3 depthwise conv's read; a squeeze-excite gate over a 56x56
// map (its global pool split over blocks at small batches); a hardswish expansion into a 5x5
// stride-2 depthwise conv (40 channels: a partial 32-channel chunk); a ReLU6 1x1 into a 7x7
// dilation-2 depthwise conv with the residual added; a grouped (not depthwise) conv; a pool.
inline constexpr auto depthwise_net = input<6, 56, 56>
    | conv<20, 1> | batch_norm | silu
    | conv<20, 3, ConvOpts{.padding = 1, .groups = 20}> | batch_norm | silu
    | multiply(global_avg_pool | conv<6, 1> | silu | conv<20, 1> | sigmoid)
    | conv<40, 1> | hardswish
    | conv<40, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 40}> | relu6
    | residual(conv<40, 1> | relu6 | conv<40, 7, ConvOpts{.padding = 6, .dilation = 2, .groups = 40}>)
    | conv<16, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 8}>
    | global_avg_pool | flatten | dense<5>;
using DepthwiseNet = std::remove_cv_t<decltype(depthwise_net)>;

// A deferred activation with f(0) != 0 (hardsigmoid(0) = 0.5) into a padded depthwise conv — the
// padding must stay 0 — and a gate whose second 1x1 is large enough at batch 400 (400·64·64
// multiply-adds, over 2^20) to run as cuBLASLt after the first one's SiLU applied in place.
inline constexpr auto deferred_net = input<8, 20, 20>
    | conv<64, 1> | hardsigmoid
    | conv<64, 3, ConvOpts{.padding = 1, .groups = 64}> | relu
    | multiply(global_avg_pool | conv<64, 1> | silu | conv<64, 1> | sigmoid)
    | conv<8, 1>;
using DeferredNet = std::remove_cv_t<decltype(deferred_net)>;

// Two DenseNet-style layers for the joined bottleneck kernel (bottleneck_conv): a 10x9 map (90
// pixels: two images a block, the batch's last block half empty), 40 input slots (a partial
// reduction step) read in place, a 32-slot bottleneck into a 5x5 conv with a bias and a ReLU of
// its own; then a batch norm without an activation over 56 slots, a 64-slot bottleneck into a 3x3
// conv; each conv writing its 16 channels of a concat.
inline constexpr auto bottleneck_net = input<8, 10, 9> | conv<40, 1>
    | concat(identity, batch_norm | relu | conv<32, 1> | batch_norm | relu | conv<16, 5, ConvOpts{.padding = 2}> | relu)
    | concat(identity, batch_norm | conv<64, 1> | relu | conv<16, 3, ConvOpts{.padding = 1}>)
    | conv<8, 1>;
using BottleneckNet = std::remove_cv_t<decltype(bottleneck_net)>;

// Two DenseNet-style layers for bottleneck_conv's cluster form (an image a cluster): a 7x11 map
// (77 pixels: 5 m-tiles; 7 rows in pixel groups of 1, 2 or 4 rows — in clusters of 16 with 2
// n-groups the eighth group is empty and the 5x5 conv's halo reaches two groups away), 264 and
// 280 input slots (9 reduction steps, the last one partial), 64-slot bottlenecks (n-groups of 32
// or 16 slots), a 5x5 conv with a ReLU of its own after a ReLU batch norm, then a batch norm
// without an activation and a 3x3 conv; each writing its 16 channels of a concat.
inline constexpr auto cluster_bneck_net = input<8, 7, 11> | conv<264, 1>
    | concat(identity, batch_norm | relu | conv<64, 1> | batch_norm | relu | conv<16, 5, ConvOpts{.padding = 2}> | relu)
    | concat(identity, batch_norm | conv<64, 1> | relu | conv<16, 3, ConvOpts{.padding = 1}>)
    | conv<8, 1>;
using ClusterBneckNet = std::remove_cv_t<decltype(cluster_bneck_net)>;

template <class Net, DType P>
std::string describe(int batch) {
  cuda::EngineOptions opt;
  opt.max_batch = batch;
  const auto w = Weights<Net>::random(1);
  return cuda::Engine<Net, P>(w, opt).describe(batch);
}

}  // namespace strata_test::deploy
