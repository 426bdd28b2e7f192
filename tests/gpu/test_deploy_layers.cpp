// The layers of deployment networks (MobileNet, Inception, U-Net) on the GPU against the CPU
// reference, in f32, f16 and bf16 at batches 1, 3 and 17, outputs poisoned before each run:
// hardswish/hardsigmoid/mish, upsample, adaptive_avg_pool, concat (channel slices at offsets and
// of sizes that are not multiples of 8, nested, flat, with a fused conv+pool branch, inside a
// residual), channel gates (squeeze-excite), conv_transpose with every option.
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

namespace {

using namespace strata;
using strata_test::check_all_precisions;

const std::vector<int> kBatches{1, 3, 17};
constexpr int kMax = 17;

// The three activations fused into convs (cuDNN conv + Strata epilogue; 16-bit 1x1 convs as
// cuBLASLt GEMMs with the activation after), stand-alone after a pool and a batch_norm, and after
// a dense layer.
constexpr auto act_net = input<5, 6, 7>
    | conv<12, 3, ConvOpts{.padding = 1}> | hardswish | conv<8, 1> | mish
    | conv<10, 1> | hardsigmoid | batch_norm | mish | max_pool<2> | hardswish
    | conv<9, 3, ConvOpts{.padding = 1}> | batch_norm | hardsigmoid
    | flatten | dense<6> | mish;
using ActNet = std::remove_cv_t<decltype(act_net)>;

// Bilinear with align_corners at factors (2, 3), nearest at 2, bilinear without align_corners
// at (3, 2); channels not a multiple of 8.
constexpr auto upsample_net = input<5, 4, 5> | conv<6, 1>
    | upsample<HW{2, 3}, UpsampleOpts{.mode = Interp::bilinear, .align_corners = true}>
    | conv<4, 3, ConvOpts{.padding = 1}> | upsample<2>
    | upsample<HW{3, 2}, UpsampleOpts{.mode = Interp::bilinear}> | conv<3, 1>;
using UpsampleNet = std::remove_cv_t<decltype(upsample_net)>;

// Adaptive average pooling 7x11 → 3x5 (overlapping windows), then up to 4x7 (repeated pixels),
// then 1x1 (global average pooling).
constexpr auto adaptive_net = input<6, 7, 11> | conv<10, 3, ConvOpts{.padding = 1}>
    | adaptive_avg_pool<3, 5> | conv<5, 1> | relu | adaptive_avg_pool<4, 7>
    | adaptive_avg_pool<1> | flatten | dense<3>;
using AdaptiveNet = std::remove_cv_t<decltype(adaptive_net)>;

// concat of identity (a copy), conv+bn+relu, max_pool and conv+sigmoid branches: 6 + 3 + 6 + 4 =
// 19 channels, every slice but the first at an offset that is not a multiple of 8; then a conv.
constexpr auto concat_net = input<5, 9, 9> | conv<6, 1>
    | concat(identity, conv<3, 3, ConvOpts{.padding = 1}> | batch_norm | relu,
             max_pool<3, PoolOpts{.stride = 1, .padding = 1}>, conv<4, 1> | sigmoid)
    | conv<7, 3, ConvOpts{.padding = 1}>;
using ConcatNet = std::remove_cv_t<decltype(concat_net)>;

// Slices on 8-channel boundaries (8 + 16 + 8), a conv+pool branch (the pool fused into the conv,
// writing the slice), a channel gate writing its slice, a concat as a residual's main branch,
// and a concat as the network's output.
constexpr auto concat_aligned_net = input<8, 6, 6>
    | concat(conv<8, 1>, conv<16, 3, ConvOpts{.padding = 1}> | relu,
             multiply(global_avg_pool | conv<8, 1> | sigmoid))
    | residual<relu>(concat(conv<12, 1>, conv<20, 3, ConvOpts{.padding = 1}> | max_pool<3, PoolOpts{.stride = 1, .padding = 1}>))
    | concat(conv<5, 1> | gelu, identity, avg_pool<3, PoolOpts{.stride = 1, .padding = 1}>);
using ConcatAlignedNet = std::remove_cv_t<decltype(concat_aligned_net)>;

// Nested concats (the inner one's slices move into the outer output) and flat concats: a dense
// layer and the identity over features; flatten of (C,H,W) tensors — a lone flatten (a copy) and
// a conv's output — into a flat concat (NHWC storage is rearranged into flatten order).
constexpr auto concat_flat_net = input<2, 5, 5>
    | concat(conv<3, 1>, concat(identity, avg_pool<3, PoolOpts{.stride = 1, .padding = 1}>))
    | conv<5, 1> | relu
    | concat(flatten, conv<2, 1> | flatten, global_avg_pool | flatten)
    | dense<9> | concat(dense<4> | tanh, identity) | dense<6>;
using ConcatFlatNet = std::remove_cv_t<decltype(concat_flat_net)>;

// Squeeze-excite as MobileNetV3 has it (hardswish before, hardsigmoid gate), and torchvision's
// default (relu, sigmoid) on 12 channels (not a multiple of 8).
constexpr auto se_net = input<4, 6, 6> | conv<16, 1> | batch_norm | hardswish
    | squeeze_excite<16, 8, relu, hardsigmoid> | conv<12, 3, ConvOpts{.padding = 1}>
    | squeeze_excite<12, 4> | conv<6, 1>;
using SeNet = std::remove_cv_t<decltype(se_net)>;

// Squeeze-excite gates for the one-kernel form (squeeze_excite): 2,056 channels (more than one
// round of 256 channel groups in the pool; SiLU deferred into fc2's read, as in EfficientNet) on
// a 5x5 map, whose pool a few blocks an image share; then 16 channels on a 2x2 map (a block an
// image).
constexpr auto se_wide_net = input<24, 5, 5> | conv<2056, 1> | silu
    | squeeze_excite<2056, 40, silu, sigmoid> | conv<16, 3, ConvOpts{.stride = 2}> | batch_norm
    | relu | squeeze_excite<16, 8, relu, hardsigmoid> | conv<10, 1>;
using SeWideNet = std::remove_cv_t<decltype(se_wide_net)>;

// conv_transpose: stride 2, output_padding 1, groups 2, dilation 2, padding 1, then batch_norm
// (folded) and hardswish; a rectangular kernel with stride (2, 1) and no bias, then mish; an
// output_padding below the dilation but not below the stride (1 and 1).
constexpr auto conv_transpose_net = input<4, 5, 6>
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
constexpr auto dense_block_net = input<3, 12, 12> | conv<16, 3, ConvOpts{.padding = 1}> | batch_norm | relu
    | concat(identity, batch_norm | relu | conv<16, 1> | batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1, .bias = false}>)
    | concat(identity, batch_norm | relu | conv<16, 1> | batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1, .bias = false}>)
    | concat(identity, relu | conv<16, 1> | relu | conv<8, 3, ConvOpts{.padding = 1}>)
    | batch_norm | relu | conv<8, 1> | avg_pool<2> | global_avg_pool | flatten | dense<5>;
using DenseBlockNet = std::remove_cv_t<decltype(dense_block_net)>;

// DenseNet's head in small: the last block's concatenation (20 channels in 24 slots), a batch norm
// and ReLU over it, the global average pool and the classifier (fold_normed_pooled_dense).
constexpr auto norm_head_net = input<3, 10, 10> | conv<12, 3, ConvOpts{.padding = 1}>
    | concat(identity, batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1}>)
    | batch_norm | relu | global_avg_pool | flatten | dense<7>;
using NormHeadNet = std::remove_cv_t<decltype(norm_head_net)>;

// Batch norms folded into 1x1 convs with a fused 2x2 pool (normed_conv fuse 1): each reads a
// concat's identity channels in place (so its input stays live and the fold is made), ReLU6 into
// a 24-channel conv + max pool, hardswish over 40 slots (a partial reduction step) into a
// bias-free 8-channel conv + average pool; 12x10 maps (pooled 6x5: 120 rows an image).
constexpr auto pooled_norm_net = input<8, 12, 10> | conv<16, 1>
    | concat(identity, batch_norm | relu6 | conv<24, 1> | max_pool<2> | upsample<2>)
    | concat(identity, batch_norm | hardswish | conv<8, 1, ConvOpts{.bias = false}> | avg_pool<2> | upsample<2>)
    | conv<4, 1>;
using PooledNormNet = std::remove_cv_t<decltype(pooled_norm_net)>;

// A U-Net step: down, up by conv_transpose, concat with the skip, conv.
constexpr auto unet_net = input<3, 8, 8> | conv<8, 3, ConvOpts{.padding = 1}> | relu
    | concat(identity, max_pool<2> | conv<12, 3, ConvOpts{.padding = 1}> | relu
                           | conv_transpose<6, 2, ConvTransposeOpts{.stride = 2}> | relu)
    | conv<4, 3, ConvOpts{.padding = 1}>;
using UnetNet = std::remove_cv_t<decltype(unet_net)>;

// MBConv-like blocks for Strata's depthwise kernel: a 1x1 expansion + SiLU (20 channels: 24 slots)
// whose activation moves into the 3x3 depthwise conv's read; a squeeze-excite gate over a 56x56
// map (its global pool split over blocks at small batches); a hardswish expansion into a 5x5
// stride-2 depthwise conv (40 channels: a partial 32-channel chunk); a ReLU6 1x1 into a 7x7
// dilation-2 depthwise conv with the residual added; a grouped (not depthwise) conv; a pool.
constexpr auto depthwise_net = input<6, 56, 56>
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
constexpr auto deferred_net = input<8, 20, 20>
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
constexpr auto bottleneck_net = input<8, 10, 9> | conv<40, 1>
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
constexpr auto cluster_bneck_net = input<8, 7, 11> | conv<264, 1>
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

}  // namespace

TEST_CASE("hardswish, hardsigmoid, mish: fused into conv and dense epilogues, and stand-alone") {
  check_all_precisions<ActNet>(kMax, kBatches, "hardswish/hardsigmoid/mish", 41);
}

TEST_CASE("upsample: nearest and bilinear, align_corners on and off, factors (2,3) and (3,2)") {
  check_all_precisions<UpsampleNet>(kMax, kBatches, "upsample", 42);
}

TEST_CASE("adaptive_avg_pool: 7x11 to 3x5, up to 4x7, and to 1x1") {
  check_all_precisions<AdaptiveNet>(kMax, kBatches, "adaptive_avg_pool", 43);
}

TEST_CASE("concat: identity, conv, max_pool branches at unaligned channel offsets, then a conv") {
  static_assert(!cuda::NetStorage<ConcatNet, DType::f16>::fused_fit().fits);
  check_all_precisions<ConcatNet>(kMax, kBatches, "concat", 44);
  // In 16-bit the identity is copied into its slice, and the convolutions (cuDNN) write a dense
  // result into the staging area, then a strided copy writes their slices.
  const std::string f16 = describe<ConcatNet, DType::f16>(3);
  INFO(f16);
  CHECK(f16.find("strata copy into the concat's channels 0..5") != std::string::npos);
  CHECK(f16.find("then strata copy into the concat's channels 6..8") != std::string::npos);
}

TEST_CASE("concat: a dense block reads its running concatenation in place, nothing copied") {
  static_assert(!cuda::NetStorage<DenseBlockNet, DType::f16>::has_op(OpKind::copy));
  check_all_precisions<DenseBlockNet>(kMax, kBatches, "dense block", 51);
  for (const std::string& d : {describe<DenseBlockNet, DType::f16>(3), describe<DenseBlockNet, DType::f32>(3)}) {
    INFO(d);
    // (In 16-bit the three batch norms are joined to the 1x1 convs after them
    // (fold_normed_convs; the last with its pool since session 34's plan rule); at this batch no
    // tactic claims both, so the batch norm still runs as its pass.)
    CHECK(d.find("strata pointwise (reads channels 0..15 of the concat in place)") != std::string::npos);
    CHECK(d.find("strata pointwise (reads channels 0..23 of the concat in place)") != std::string::npos);
    CHECK(d.find("strata pointwise (reads channels 0..31 of the concat in place)") != std::string::npos);
    CHECK(d.find("copy0:") == std::string::npos);  // no copy op
    // A bias-free conv run by cuDNN's plain convolution needs no epilogue pass.
    for (const char* conv : {"3.1.conv5: ", "4.1.conv5: "}) {
      const std::size_t at = d.find(conv);
      REQUIRE(at != std::string::npos);
      const std::string line = d.substr(at, d.find('\n', at) - at);
      if (line.find("cudnnConvolutionForward") != std::string::npos) {
        CHECK(line.find("strata pointwise") == std::string::npos);
      }
    }
  }
}

TEST_CASE("concat: aligned slices, a conv+pool branch, a channel gate branch, in a residual, as the output") {
  check_all_precisions<ConcatAlignedNet>(kMax, kBatches, "concat aligned", 45);
}

TEST_CASE("concat: nested, and flat (dense, identity, flatten of (C,H,W) tensors)") {
  check_all_precisions<ConcatFlatNet>(kMax, kBatches, "concat flat", 46);
}

TEST_CASE("squeeze_excite / multiply: hardsigmoid and sigmoid gates, 16 and 12 channels") {
  check_all_precisions<SeNet>(kMax, kBatches, "squeeze_excite", 47);
  const std::string f16 = describe<SeNet, DType::f16>(3);
  INFO(f16);
  CHECK(f16.find("strata channel_gate (8 channels per thread)") != std::string::npos);
}

// A squeeze-excite gate's multiply folded into the 1x1 conv after it (fold_gated_convs): one op,
// "<multiply>+<conv>". lt_conv1x1's algo 2 scales the conv's weights by each image's gate and
// runs a matmul an image (the product never stored); on any other variant the multiply runs
// first, into the conv's input slot. Forced both ways on DepthwiseNet's gate (20 channels in 24
// slots, a 56x56 map, hardswish after the GEMM), SeNet's second (12 channels, 6x6) and all
// sixteen of EfficientNet-B0's (32 to 1,152 channels, residual adds), against the CPU.
TEST_CASE("a channel gate folded into the 1x1 conv after it: the weights scaled per image, or the multiply first") {
  const auto gated = [](const cuda::OpDesc& op) { return op.gate.has_value(); };
  for (const auto& [name, count, se] : {std::tuple{"DepthwiseNet", 1, 1}, {"SeNet", 1, 2}, {"EfficientNetB0", 16, 16}}) {
    cuda::NetDesc n = std::string_view(name) == "DepthwiseNet" ? cuda::NetStorage<DepthwiseNet, DType::f16>::describe()
                      : std::string_view(name) == "SeNet"      ? cuda::NetStorage<SeNet, DType::f16>::describe()
                                                               : cuda::NetStorage<models::EfficientNetB0, DType::f16>::describe();
    const std::size_t before = n.ops.size();
    cuda::fold_for_per_op_path(n);
    INFO(name);
    CHECK(std::count_if(n.ops.begin(), n.ops.end(), gated) == count);
    for (const cuda::OpDesc& op : n.ops) {
      if (op.gate) {
        CHECK(op.label == op.gate->label + "+" + cuda::gate_conv(op).label);
        CHECK(op.label.find("+mul+") != std::string::npos);
      }
    }
    // (one op fewer for each gate, for each expansion folded into its depthwise conv, and for
    // the head's pool folded into its dense layer; two for each squeeze-excite gate's pool and
    // first conv folded into its second)
    const auto heads = std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.gap.has_value(); });
    const auto expands = std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.expand != nullptr; });
    const auto squeezes = std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.squeeze != nullptr; });
    CHECK(squeezes == se);  // (SeNet: both squeeze-excite branches fold; one multiply, before a 3x3 conv, does not)
    CHECK(before - n.ops.size() == static_cast<std::size_t>(count + heads + expands + 2 * squeezes));
  }
  // f32 keeps the multiply apart (the scaled weights are 16-bit)
  cuda::NetDesc f32 = cuda::NetStorage<DepthwiseNet, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), gated));
  using strata_test::check_forced;
  const cuda::Variant folds{"lt_conv1x1", 2};
  const cuda::Variant after{"lt_conv1x1", 0};
  const char* scaled = "strata gate_weights (the gate folded into the weights, per image)";
  const char* first = "strata channel_gate (8 channels per thread), then cublasLtMatmul";
  check_forced<DepthwiseNet, DType::f16>("gate_dw_f16", 60, folds, scaled, "channel_gate", gated);
  check_forced<DepthwiseNet, DType::bf16>("gate_dw_bf16", 61, folds, scaled, "channel_gate", gated);
  check_forced<DepthwiseNet, DType::f16>("gate_dw_after", 62, after, first, "gate_weights", gated);
  check_forced<SeNet, DType::f16>("gate_se_f16", 63, folds, scaled, "channel_gate", gated);
  check_forced<models::EfficientNetB0, DType::f16>("gate_eb0_f16", 64, folds, scaled, "channel_gate",
                                                   gated);
  check_forced<models::EfficientNetB0, DType::bf16>("gate_eb0_after", 65, after, first,
                                                    "gate_weights", gated);
  // splitk_conv fuse 2 (written in session 28): the gate applied as the kernel stages the map,
  // one launch; in a cluster of 8 (algo 8) and with the slices met in the workspace (algo 0),
  // against the CPU (DepthwiseNet: hardswish after a 40-channel projection; EfficientNet-B0's
  // sixteen at 5 images, a 64-pixel tile spanning two images on the 7x7 maps).
  const char* staged = "the gate applied as the input is staged";
  const cuda::Variant gate_cl8{"splitk_conv", 8, 0, 2};
  const cuda::Variant gate_ws{"splitk_conv", 0, 0, 2};
  check_forced<SeNet, DType::bf16>("gate_sk_se", 86, gate_ws, staged, "channel_gate", gated);
  check_forced<models::EfficientNetB0, DType::bf16>("gate_sk_eb0_bf16", 88, gate_ws, staged, "channel_gate",
                                                    gated);
  if (cuda::device_arch() >= 90) {  // (clusters)
    check_forced<DepthwiseNet, DType::f16>("gate_sk_dw", 85, gate_cl8, staged, "channel_gate", gated);
    check_forced<models::EfficientNetB0, DType::f16>("gate_sk_eb0", 87, gate_cl8, staged, "channel_gate",
                                                     gated);
  }
  // The product rounded as the channel-gate kernel stores it, then the same sums in the same
  // order: equal to the bit with the multiply as a kernel of its own before the same split-K
  // conv (fuse 0), at 5 images and at 1.
  if (cuda::device_arch() >= 90) {
    constexpr int kB = 5;
    const auto w = Weights<models::EfficientNetB0>::random(89);
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(kB) * models::EfficientNetB0::input_spec.shape.numel(), 189);
    const auto run = [&](const cuda::Variant& v, const std::string& shows, int b) {
      return strata_test::forced_output<models::EfficientNetB0, DType::f16>(w, in, kB, b, gated, 16, v, shows);
    };
    {  // the heuristic's plan at batch 1 (claimed since session 28: splitk::claimed_gate_cluster):
       // the sixteen projections one launch each, against the CPU
      cuda::EngineOptions opt;
      opt.max_batch = 1;
      opt.tuning = cuda::Tuning::heuristic;
      opt.fused_max_batch = 0;
      cuda::Engine<models::EfficientNetB0, DType::f16> e(w, opt);
      const std::string d = e.describe(1);
      INFO(d);
      std::size_t fused_ops = 0;
      for (std::size_t at = d.find(staged); at != std::string::npos; at = d.find(staged, at + 1)) {
        ++fused_ops;
      }
      CHECK(fused_ops == 16);
      // its stem on tile_conv's tiles for a small batch, reading the caller's input (session 30)
      CHECK(d.find("(sized for a small batch)") != std::string::npos);
      CHECK(d.find("\ninput: ") == std::string::npos);
      const std::vector<float> one(in.begin(), in.begin() + models::EfficientNetB0::input_spec.shape.numel());
      const auto ref = strata_test::cpu_reference<models::EfficientNetB0>(w, one, 1);
      std::vector<float> out(ref.size(), std::numeric_limits<float>::quiet_NaN());
      e.infer(one, out, 1);
      const double err = strata_test::rel_error(out, ref, out.size());
      MESSAGE("EfficientNet-B0 f16 heuristic, batch 1 (gates staged by splitk_conv): rel. error " << err);
      CHECK(err < 1e-2);
    }
    for (const int b : {kB, 1}) {
      const auto fused = run(gate_cl8, staged, b);
      CHECK(std::none_of(fused.begin(), fused.end(), [](float f) { return std::isnan(f); }));
      CHECK(fused == run(cuda::Variant{"splitk_conv", 8}, "strata channel_gate (8 channels per thread), then strata split-K conv", b));
    }
  }
}

// A squeeze-excite gate — the global average pool and the two 1x1 convs of the pooled vector —
// joined as one op (fold_squeeze_excite), "<pool>+<fc1>+<fc2>". The heuristic runs small gates on
// one kernel (squeeze_excite: on compute capability 9.0 on, where batch x 8 is at most twice the
// SMs, a cluster of 8 blocks an image, every gate; else the pool split over blocks of an image
// where the batch leaves the GPU idle, the last block of the image running both convs, or a block
// an image) and, past the cluster claim, large ones (fc1 over 480 x 20) as the three kernels it
// ran before the fold (the pool and fc1 first, as steps of their own). Against the CPU: the
// heuristic in every precision at batches 1, 3, 17 (f32 keeps the three ops apart); the kernel
// forced on SeWideNet (5 images: the first pool 3 blocks an image, the second a block), at 280
// images (a block an image), on SeNet and EfficientNet-B0's sixteen gates.
TEST_CASE("a squeeze-excite gate as one op: the three kernels, or one (forced) with the pool over blocks of an image or a block an image") {
  const auto squeezed = [](const cuda::OpDesc& op) { return op.squeeze != nullptr; };
  cuda::NetDesc wide = cuda::NetStorage<SeWideNet, DType::f16>::describe();
  cuda::fold_for_per_op_path(wide);
  REQUIRE(std::count_if(wide.ops.begin(), wide.ops.end(), squeezed) == 2);
  check_all_precisions<SeWideNet>(kMax, kBatches, "squeeze_excite wide", 48);
  const std::string f16 = cuda::Engine<SeWideNet, DType::f16>(Weights<SeWideNet>::random(1),
                                                              {.max_batch = 3, .fused_max_batch = 0})
                              .describe(3);
  const std::string f16_large = cuda::Engine<SeWideNet, DType::f16>(Weights<SeWideNet>::random(1),
                                                                    {.max_batch = 200, .fused_max_batch = 0})
                                    .describe(200);
  INFO(f16);
  INFO(f16_large);
  const char* cluster8 = "as one kernel, a cluster of 8 blocks an image sharing the pool and both convs)";
  if (cuda::device_arch() >= 90) {
    // at 3 images (3 x 8 blocks, at most twice the SMs) both gates on the cluster kernel (algo 2
    // math 8, claimed: session 28)
    CHECK(f16.find(std::string("1x1 40->2056 ") + cluster8) != std::string::npos);
    CHECK(f16.find(std::string("1x1 8->16 ") + cluster8) != std::string::npos);
  }
  // Past the cluster claim (200 images: 1,600 blocks, more than twice the SMs of any GPU), and
  // at 3 images below compute capability 9.0: the 2,056-channel gate (82,240 multiply-adds in
  // fc1) as the three kernels, the 16-channel one claimed as algo 0.
  // (fc1 on the 1x1 kernel at 3 images, on cuBLASLt at 200)
  for (const std::string* d : {&f16_large, cuda::device_arch() >= 90 ? &f16_large : &f16}) {
    CHECK(d->find("2.fc2+scale_activation: strata global_avg_pool, then ") != std::string::npos);
    CHECK(d->find("strata squeeze_excite (pool 2x2x16, 1x1 16->8, 1x1 8->16 as one kernel") != std::string::npos);
    CHECK(d->find("a cluster of") == std::string::npos);
  }
  using strata_test::check_forced;
  const cuda::Variant one{"squeeze_excite"};
  const cuda::Variant apart{"pixel_conv1x1"};
  check_forced<SeWideNet, DType::f16>("se_wide_f16", 72, one,
                                      "strata squeeze_excite (pool 5x5x2056, 1x1 2056->40, 1x1 40->2056 as one kernel, 3 blocks an image)",
                                      ", then", [](const cuda::OpDesc& op) {
                                        return op.squeeze && op.squeeze->gap->in_cp == 2056;
                                      });
  check_forced<SeWideNet, DType::bf16>("se_wide_bf16", 73, one,
                                       "strata squeeze_excite (pool 2x2x16, 1x1 16->8, 1x1 8->16 as one kernel)",
                                       ", then", [](const cuda::OpDesc& op) {
                                         return op.squeeze && op.squeeze->gap->in_cp == 16;
                                       });
  {  // a batch that fills the GPU: every pool a block an image (forced through a tuning cache)
    constexpr int kBig = 280;
    const auto w = Weights<SeWideNet>::random(49);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(kBig) * 24 * 25, 149);
    const auto ref = strata_test::cpu_reference<SeWideNet>(w, in, kBig);
    const std::filesystem::path cache =
        std::filesystem::temp_directory_path() / "strata_squeeze_excite_280.json";
    std::filesystem::remove(cache);
    {
      cuda::TuningCache c(cache);
      for (const cuda::OpDesc& op : wide.ops) {
        if (op.squeeze) {
          c.put(cuda::tuning_key(op, kBig, DType::f16, cuda::device_name(0)), one);
        }
      }
      c.save();
    }
    cuda::Engine<SeWideNet, DType::f16> e(w, strata_test::from_cache(kBig, cache));
    const std::string runs = e.describe(kBig);
    INFO(runs);
    CHECK(runs.find("1x1 2056->40, 1x1 40->2056 as one kernel)") != std::string::npos);
    CHECK(runs.find("1x1 16->8, 1x1 8->16 as one kernel)") != std::string::npos);
    const std::size_t out_n = static_cast<std::size_t>(SeWideNet::output_spec.shape.numel());
    std::vector<float> out(static_cast<std::size_t>(kBig) * out_n, std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, kBig);
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE("squeeze_excite wide f16 forced, batch " << kBig << ": rel. error " << err);
    CHECK(err < 1e-2);
    std::filesystem::remove(cache);
  }
  check_forced<SeNet, DType::f16>("se_one_f16", 66, one, "strata squeeze_excite", ", then", squeezed);
  // Algo 1 (passed on an H200 in session 27): the products' loads issued together, at
  // most 64 blocks an image. Where both forms split the pool alike (SeWideNet at batch 5: 3
  // blocks an image, then 1) the same sums in the same order: the outputs are equal to the bit
  // (heuristic tuning, the two gates forced: every other op runs alike).
  const cuda::Variant loads{"squeeze_excite", 1};
  const char* issued = "the products' loads issued together";
  check_forced<SeWideNet, DType::f16>("se_wide_a1", 74, loads, issued, ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::f16>("se_eb0_a1", 75, loads, issued, ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::bf16>("se_eb0_a1_bf16", 76, loads, issued, ", then", squeezed);
  {
    constexpr int kB = 5;
    const auto w = Weights<SeWideNet>::random(77);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(kB) * 24 * 25, 177);
    // The output with both gates forced to `v`, whose step's description shows `shows`.
    const auto forced_out = [&](const cuda::Variant& v, const std::string& shows) {
      return strata_test::forced_output<SeWideNet, DType::f16>(w, in, kB, kB, squeezed, 2, v, shows);
    };
    CHECK(forced_out(one, "as one kernel, 3 blocks an image)") == forced_out(loads, "loads issued together"));
    // math G (written after session 27's last GPU run): G blocks an image, each pooling the whole
    // map in one block and running all of fc1, then its share of fc2's outputs — the same sums
    // as one block an image (math 1), in either form: equal to the bit.
    const auto whole = forced_out(cuda::Variant{"squeeze_excite", 0, 1},
                                  "1x1 40->2056 as one kernel, 1 block an image each pooling the whole map, 2056 of fc2's outputs a block)");
    CHECK(whole == forced_out(cuda::Variant{"squeeze_excite", 0, 16},
                              "1x1 40->2056 as one kernel, 16 blocks an image each pooling the whole map, 129 of fc2's outputs a block)"));
    CHECK(whole == forced_out(cuda::Variant{"squeeze_excite", 1, 16},
                              "16 blocks an image each pooling the whole map, 129 of fc2's outputs a block, the products' loads issued together)"));
    // (64 blocks an image for the 16-channel gate: one output each, 48 with none)
    CHECK(whole == forced_out(cuda::Variant{"squeeze_excite", 1, 64}, "1x1 8->16 as one kernel, 64 blocks an image"));
  }
  // math G against the CPU: SeNet, EfficientNet-B0's sixteen gates in f16 and bf16, both forms.
  const char* rows = "blocks an image each pooling the whole map";
  check_forced<SeNet, DType::f16>("se_rows_f16", 78, cuda::Variant{"squeeze_excite", 0, 8}, rows, ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::f16>("se_eb0_rows", 79, cuda::Variant{"squeeze_excite", 1, 16}, rows,
                                                   ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::bf16>("se_eb0_rows_bf16", 80, cuda::Variant{"squeeze_excite", 0, 32},
                                                    rows, ", then", squeezed);
  // algo 2 (GPU-run since session 28; claimed at small batches): a thread-block cluster of 8 or 16 blocks an
  // image, the pool's sums and fc1's outputs exchanged through distributed shared memory; against
  // the CPU on SeWideNet (a 2,056-channel gate over a 5x5 map: ranks past the 25th pixel pool
  // nothing at 16), SeNet and EfficientNet-B0's sixteen gates.
  const char* cluster = "blocks an image sharing the pool and both convs";
  check_forced<SeWideNet, DType::f16>("se_wide_cl16", 81, cuda::Variant{"squeeze_excite", 2, 16}, cluster,
                                      ", then", squeezed);
  check_forced<SeNet, DType::bf16>("se_cl8_bf16", 82, cuda::Variant{"squeeze_excite", 2, 8}, cluster, ", then",
                                   squeezed);
  check_forced<models::EfficientNetB0, DType::f16>("se_eb0_cl8", 83, cuda::Variant{"squeeze_excite", 2, 8},
                                                   cluster, ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::bf16>("se_eb0_cl16_bf16", 84, cuda::Variant{"squeeze_excite", 2, 16},
                                                    cluster, ", then", squeezed);
  check_forced<SeNet, DType::bf16>("se_apart_bf16", 67, apart, "strata global_avg_pool", "squeeze_excite",
                                   squeezed);
  check_forced<models::EfficientNetB0, DType::f16>("se_eb0_f16", 68, one, "strata squeeze_excite",
                                                   ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::bf16>("se_eb0_bf16", 69, one, "strata squeeze_excite",
                                                    ", then", squeezed);
}

TEST_CASE("conv_transpose: stride, output_padding, groups, dilation, folded batch_norm, activations") {
  check_all_precisions<ConvTransposeNet>(kMax, kBatches, "conv_transpose", 48);
}

TEST_CASE("a U-Net step: max_pool, conv, conv_transpose up, concat with the skip") {
  check_all_precisions<UnetNet>(kMax, kBatches, "unet step", 49);
}

TEST_CASE("depthwise convs: 3x3, 5x5 stride 2, 7x7 dilation 2 with a residual; producers' activations applied on load") {
  static_assert(!cuda::NetStorage<DepthwiseNet, DType::f16>::fused_fit().fits);
  check_all_precisions<DepthwiseNet>(kMax, kBatches, "depthwise", 49);
  for (const std::string& d : {describe<DepthwiseNet, DType::f16>(1), describe<DepthwiseNet, DType::bf16>(17)}) {
    INFO(d);
    CHECK(d.find("strata depthwise 3x3 (the producer's activation applied once as the band is "
                 "staged, bias, act fused; bands of") != std::string::npos);
    CHECK(d.find("strata depthwise 5x5 stride 2 (the producer's activation applied once as the band "
                 "is staged") != std::string::npos);
    CHECK(d.find("strata depthwise 7x7 (the producer's activation on load, bias, add, act fused)") !=
          std::string::npos);
    // The expansion runs without an activation pass of its own.
    const std::size_t at = d.find("conv0+bn1+silu2: ");
    REQUIRE(at != std::string::npos);
    CHECK(d.substr(at, d.find('\n', at) - at).find("pointwise") == std::string::npos);
  }
  // The gate at batch 1: on compute capability 9.0 on, one kernel (squeeze_excite algo 2, a
  // cluster of 8 blocks: the heuristic's claim since session 28); below, its two layers one kernel
  // each, the first one's SiLU applied by the second, and the 56x56 pool split over blocks.
  const std::string d1 = describe<DepthwiseNet, DType::f16>(1);
  INFO(d1);
  const bool clusters = cuda::device_arch() >= 90;
  if (clusters) {
    CHECK(d1.find("strata squeeze_excite (pool 56x56x24, 1x1 24->6, 1x1 8->20 as one kernel, a "
                  "cluster of 8 blocks an image") != std::string::npos);
  } else {
    CHECK(d1.find("strata 1x1 conv of a 1x1 map (the producer's activation on load, bias, act fused)") !=
          std::string::npos);
  }
  // (Not under STRATA_GPU_TEST_QUICK: racecheck would instrument the libraries' kernels at
  // batch 96 for minutes.)
  // At batch 96 the 40-channel depthwise convs (96·28·28·40 outputs, over 2^21, maps under
  // 112x112): the 5x5 stride 2 and the 20-channel 3x3 (SiLU on load) take the band kernel
  // (depthwise_band), the 7x7 of dilation 2 (no kernel of Strata's at that size) runs as cuDNN
  // after its producer's activation applied in place. Batch 5 of that engine runs the same
  // choices (made at its max_batch); an engine made for batch 5 runs no library.
  if (!strata_test::quick_run()) {
    const auto w = Weights<DepthwiseNet>::random(50);
    const auto in = strata_test::random_floats(96 * 6 * 56 * 56, 150);
    const auto ref = strata_test::cpu_reference<DepthwiseNet>(w, in, 96);
    strata_test::check_engine<DepthwiseNet, DType::f16>(w, in, ref, 96, {96, 5}, "depthwise b96");
    strata_test::check_engine<DepthwiseNet, DType::bf16>(w, in, ref, 96, {96, 5}, "depthwise b96");
    const std::string d96 = describe<DepthwiseNet, DType::f16>(96);
    INFO(d96);
    CHECK(d96.find("strata pointwise (the producer's activation, in place), then cudnnConvolution") !=
          std::string::npos);
    CHECK(d96.find("strata depthwise 3x3 (the producer's activation applied once as the band is "
                   "staged, bias, act fused; bands of") != std::string::npos);
    CHECK(d96.find("strata depthwise 5x5 stride 2 (the producer's activation applied once as the "
                   "band is staged, bias, act fused; bands of") != std::string::npos);
    // the gate folded into the 40-channel 1x1 conv after it (40 output slots, 3,136 pixels)
    CHECK(d96.find("multiply6+mul+conv7+hardswish8: strata gate_weights") != std::string::npos);
    const std::string d5 = describe<DepthwiseNet, DType::f16>(5);
    INFO(d5);
    CHECK(d5.find("then cudnn") == std::string::npos);  // batch 5: the kernel throughout
    CHECK(d5.find("persistent") == std::string::npos);
  }
  // Batch 1 below compute capability 9.0: the 56x56 squeeze-excite pool is split over blocks.
  // (the gate's 56x56 pool: 49 blocks of 64 pixels; the final 14x14 pool only 3)
  if (!clusters) {
    CHECK(d1.find("(49 blocks per image and 32 channels)") != std::string::npos);
  }
}

TEST_CASE("deferred activations: hardsigmoid into a padded depthwise conv; the library ways at batch 400") {
  static_assert(!cuda::NetStorage<DeferredNet, DType::f16>::fused_fit().fits);
  const auto w = Weights<DeferredNet>::random(51);
  const auto in = strata_test::random_floats(400 * 8 * 20 * 20, 151);
  const auto ref = strata_test::cpu_reference<DeferredNet>(w, in, 400);
  // (Batch 400 not under STRATA_GPU_TEST_QUICK: see the depthwise test.)
  std::vector<std::vector<int>> runs{{3, 1}};
  if (!strata_test::quick_run()) {
    runs.push_back({400, 3});
  }
  for (const std::vector<int>& batches : runs) {
    const int mb = batches.front();
    strata_test::check_engine<DeferredNet, DType::f16>(w, in, ref, mb, batches, "deferred");
    strata_test::check_engine<DeferredNet, DType::bf16>(w, in, ref, mb, batches, "deferred");
  }
  const std::string small = describe<DeferredNet, DType::f16>(3);
  const std::string large = describe<DeferredNet, DType::f16>(400);
  INFO(small);
  INFO(large);
  CHECK(small.find("strata depthwise 3x3 (the producer's activation on load") != std::string::npos);
  CHECK(large.find("in place), then cudnnConvolution") != std::string::npos);
  // The gate's second 1x1 reads the first one's SiLU in one kernel with the pool (squeeze_excite,
  // claimed: 64 x 64 multiply-adds, 50 blocks an image at batch 3, one at 400); apart, the 1x1
  // kernel applies it on load, cuBLASLt after a pass in place (forced at batch 5).
  const char* gate = "strata squeeze_excite (pool 20x20x64, 1x1 64->64, 1x1 64->64 as one kernel";
  CHECK(small.find(gate) != std::string::npos);
  CHECK(large.find(gate) != std::string::npos);
  const auto squeezed = [](const cuda::OpDesc& op) { return op.squeeze != nullptr; };
  strata_test::check_forced<DeferredNet, DType::f16>(
      "deferred_pixel", 52, cuda::Variant{"pixel_conv1x1"},
      "strata 1x1 conv of a 1x1 map (the producer's activation on load", "squeeze_excite", squeezed);
  strata_test::check_forced<DeferredNet, DType::f16>("deferred_lt", 53, cuda::Variant{"lt_conv1x1"},
                                                     "in place), then cublasLtMatmul",
                                                     "squeeze_excite", squeezed);
}

// Forces variant `algo` of the depthwise tactic on every depthwise conv of Net that it runs (algos 0
// and 1: every one) through the tuning cache, at max batch `mb`, and checks the engine against the
// CPU at `batches`.
template <class Net, DType P>
void check_depthwise_forced(int algo, int mb, const std::vector<int>& batches, std::uint64_t seed,
                            const char* tactic = "depthwise_conv") {
  using N = std::remove_cvref_t<Net>;
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(mb * N::input_spec.shape.numel()), seed + 100);
  const auto ref = strata_test::cpu_reference<Net>(w, in, mb);
  const auto cache = std::filesystem::temp_directory_path() /
                     ("strata_depthwise_forced_" + std::string(tactic) + std::to_string(algo) + "_" +
                      std::string(dtype_name(P)));
  std::filesystem::remove(cache);
  int forced = 0;
  {
    cuda::TuningCache c(cache);
    const cuda::Variant v{tactic, algo};
    cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
    cuda::fold_for_per_op_path(net);  // (a folded expansion then runs first, as its own step)
    for (const cuda::OpDesc& op : net.ops) {
      const cuda::Tactic<P>* t = cuda::find_tactic<P>(v.tactic);
      if (t->applicable(op)) {
        const auto offered = t->candidates(op, mb, 0, {});
        const bool offers = std::find(offered.begin(), offered.end(), v) != offered.end();
        REQUIRE((offers || algo >= 2));
        if (!offers) {
          continue;
        }
        c.put(cuda::tuning_key(op, mb, P, cuda::device_name(0)), v);
        ++forced;
      }
    }
    c.save();
  }
  REQUIRE(forced > 0);
  cuda::EngineOptions opt = strata_test::from_cache(mb, cache);
  opt.fused_max_batch = 0;
  cuda::Engine<Net, P> e(w, opt);
  const std::string d = e.describe(mb);
  INFO(d);
  // the forced variant's mark on as many depthwise lines as were forced
  const std::string mark = std::string_view(tactic) == "depthwise_band" ? "outputs of a channel pair a thread"
                           : algo == 1   ? "persistent"
                           : algo == 2 ? " output rows a thread, read"
                           : algo == 3 ? "channel pairs"
                                       : "act fused)";
  std::size_t shown = 0;
  for (std::size_t at = d.find("strata depthwise"); at != std::string::npos; at = d.find("strata depthwise", at + 1)) {
    const std::string line = d.substr(at, d.find('\n', at) - at);
    shown += line.find(mark) != std::string::npos ? 1 : 0;
  }
  CHECK(shown == static_cast<std::size_t>(forced));
  const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
  for (int b : batches) {
    std::vector<float> out(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, b);
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE("depthwise forced algo " << algo << " " << dtype_name(P) << " batch " << b << ": rel. error " << err);
    CHECK(err < strata_test::tolerance(P));
  }
}

// depthwise_band algo 1 (passed on an H200 in session 27): the chunk's filters staged
// through shared memory by coalesced loads, `images` images a block — the same sums in the same
// order as algo 0. Forced (EngineOptions::force, heuristic tuning otherwise) on every depthwise
// conv of Net it runs, against the CPU at `batches` (partial image groups among them), and equal
// to the bit to the engine with algo 0 forced on the same ops.
template <class Net, DType P>
void check_band_staged(int images, const std::vector<int>& batches, std::uint64_t seed) {
  using N = std::remove_cvref_t<Net>;
  const int mb = *std::max_element(batches.begin(), batches.end());
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(mb * N::input_spec.shape.numel()), seed + 100);
  const auto ref = strata_test::cpu_reference<Net>(w, in, mb);
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  const auto engine = [&](const cuda::Variant& v) {
    cuda::EngineOptions opt;
    opt.max_batch = mb;
    opt.fused_max_batch = 0;
    for (const cuda::OpDesc& op : net.ops) {
      if (cuda::tactics::band::fits_staged_filters(op)) {
        opt.force[op.label] = v;
      }
    }
    REQUIRE(!opt.force.empty());
    return std::make_unique<cuda::Engine<Net, P>>(w, opt);
  };
  const auto plain = engine(cuda::Variant{"depthwise_band"});
  const auto staged = engine(cuda::Variant{"depthwise_band", 1, images});
  const std::string d = staged->describe(mb);
  INFO(d);
  CHECK(d.find("filters staged in shared memory, " + std::to_string(images) +
               (images == 1 ? " image" : " images") + " a block") != std::string::npos);
  const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
  for (int b : batches) {
    std::vector<float> want(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
    plain->infer(in, want, b);
    staged->infer(in, got, b);
    const double err = strata_test::rel_error(got, ref, got.size());
    MESSAGE("depthwise_band algo 1, " << images << " images a block, " << dtype_name(P) << " batch " << b
                                      << ": rel. error " << err);
    CHECK(err < strata_test::tolerance(P));
    CHECK(got == want);
  }
}

// (The tiled kernel with hardsigmoid on load at batch 400, its 20 = 16 + 4 columns a partial
// tile, checked in DeferredNet: see check_depthwise_forced's last call.)
TEST_CASE("the persistent tiled depthwise kernel, forced at small batches: partial tiles, dilation, residual, f(0) != 0 on load") {
  check_depthwise_forced<DepthwiseNet, DType::f16>(1, 17, {1, 3, 17}, 52);
  check_depthwise_forced<DepthwiseNet, DType::bf16>(1, 17, {1, 3, 17}, 53);
  check_depthwise_forced<DeferredNet, DType::f16>(1, 17, {1, 3, 17}, 54);
  check_depthwise_forced<DeferredNet, DType::bf16>(1, 17, {1, 3, 17}, 55);
  // Batch 120: 720 tiles of 8x16 pixels per 32-channel chunk, more than a GPU of up to 180 SMs
  // holds at once (4 blocks an SM), so blocks go on to further tiles: the double-buffered patch
  // and the in-place hardsigmoid across iterations (also under the quick run, for racecheck).
  check_depthwise_forced<DeferredNet, DType::f16>(1, 120, {120, 5}, 58);
  // both kernels forced at batch 400, where the heuristic leaves the 20x20 map to cuDNN
  if (!strata_test::quick_run()) {
    check_depthwise_forced<DeferredNet, DType::f16>(1, 400, {400, 7}, 56);
    check_depthwise_forced<DeferredNet, DType::f16>(0, 400, {400, 7}, 57);
  }
}

// depthwise_rows (algo 2: strips of 4 output rows a thread at stride 1, of 2 at stride 2) on the
// 3x3 convs of DepthwiseNet (SiLU on load, 3 channel vectors a block), on DeferredNet
// (hardsigmoid on load: f(0) != 0, the padding must stay 0; 8 vectors) and on RowsNet, whose maps
// cut the strips short (13 rows: 13 % 4 = 1; 7 rows after its 3x3 stride 2: 7 % 2 = 1 and
// 7 % 4 = 3), with 6 vectors a block, hardsigmoid, ReLU6, SiLU and hardswish on load, a residual
// added, and a GELU that stays in the last one's epilogue (its generic path: a gate reads it). The
// gate also keeps the net off the fused-network kernel, which would fuse every activation where
// declared and defer none. (DepthwiseNet's 5x5 and 7x7 convs are not the kernel's shape: the
// cache forces only what the tactic offers.)
constexpr auto rows_net = input<8, 13, 13>
    | conv<48, 1> | hardsigmoid
    | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}> | relu
    | residual(conv<48, 1> | relu6 | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}>)
    | conv<48, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 48}> | silu
    | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}> | hardswish
    | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}> | gelu
    | multiply(global_avg_pool | conv<12, 1> | relu | conv<48, 1> | sigmoid)
    | conv<8, 1>;
using RowsNet = std::remove_cv_t<decltype(rows_net)>;

// Large-tap depthwise convs for depthwise_band: 5x5 at stride 1 with SiLU on load (21 channels,
// 24 slots: the pair of slots 20 and 21 straddles k; 12 pairs, so 4 pairs a block), 5x5 stride 2
// with hardsigmoid on load (f(0) != 0: the padding must stay 0) and a GELU after it (the
// epilogue's generic activation), 7x7 at stride 1 with ReLU6 on load (the 1x1 before it inside
// the residual: its only reader) and the residual added, 144 channels (72 pairs: 8 a block);
// 13x13 and 7x7 maps that cut the bands of 2-row strips and 4-column groups short. The gate keeps
// the net off the fused-network kernel. (Until session 23's run the 7x7 read the residual's
// input, which two ops read, so it had no activation on load.)
constexpr auto band_net = input<8, 13, 13>
    | conv<21, 1> | silu
    | conv<21, 5, ConvOpts{.padding = 2, .groups = 21}> | relu
    | conv<48, 1> | hardsigmoid
    | conv<48, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 48}> | gelu
    | multiply(global_avg_pool | conv<8, 1> | relu | conv<48, 1> | sigmoid)
    | conv<144, 1> | relu6
    | residual(conv<144, 1> | relu6 | conv<144, 7, ConvOpts{.padding = 3, .groups = 144}>)
    | conv<8, 1>;
using BandNet = std::remove_cv_t<decltype(band_net)>;

// 21 channels (24 slots): depthwise_pairs' pair of slots 20 and 21 straddles k, so slot 21 is
// written as 0 beside a real channel; ReLU6 on load, stride 1 and 2, a 13-column map (one full
// 8-column group and a cut one).
constexpr auto odd_net = input<8, 13, 13>
    | conv<21, 1> | relu6
    | conv<21, 3, ConvOpts{.padding = 1, .groups = 21}> | relu6
    | multiply(global_avg_pool | conv<8, 1> | relu | conv<21, 1> | sigmoid)
    | conv<21, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 21}> | relu6
    | conv<8, 1>;
using OddNet = std::remove_cv_t<decltype(odd_net)>;

// depthwise_pairs (algo 3: a thread 2 channels of a strip of output rows, sliding over 8 columns;
// 3x3 only): stride 1 (DepthwiseNet, whose 5x5 and 7x7 are not the kernel's shape), stride 2
// (RowsNet, OddNet, MobileNetV2, EfficientNet-B0), an odd channel count (OddNet: the pair of
// slots 20 and 21 straddles k = 21), maps that cut the strips and the 8-column groups short
// (RowsNet's 13 and 7), activations on load with f(0) != 0 (hardsigmoid: the padding must stay
// 0), a residual, GELU in the epilogue (the kernel's generic activation); MobileNetV2's 17
// depthwise convs (ReLU6 on load) and EfficientNet-B0's seven 3x3 ones (SiLU on load). (The 5x5
// forms, run forced here in session 22 before they were dropped, passed too.)
TEST_CASE("the depthwise channel-pair kernel, forced: 3x3 at strides 1 and 2, strips and column groups cut by the map") {
  check_depthwise_forced<DepthwiseNet, DType::f16>(3, 17, {1, 3, 17}, 90);
  check_depthwise_forced<DepthwiseNet, DType::bf16>(3, 17, {1, 3, 17}, 91);
  check_depthwise_forced<DeferredNet, DType::f16>(3, 120, {120, 5}, 92);
  check_depthwise_forced<RowsNet, DType::f16>(3, 17, {1, 3, 17}, 93);
  check_depthwise_forced<RowsNet, DType::bf16>(3, 17, {1, 17}, 94);
  check_depthwise_forced<OddNet, DType::f16>(3, 17, {1, 3, 17}, 97);
  check_depthwise_forced<models::MobileNetV2, DType::f16>(3, 2, {2}, 95);
  check_depthwise_forced<models::EfficientNetB0, DType::f16>(3, 2, {2}, 96);
}

// depthwise_band (the band's input staged once with the producer's activation applied, a
// channel pair of 2x4 outputs a thread), forced on every depthwise conv it takes: BandNet's three
// (SiLU, hardsigmoid and ReLU6 on load, strides 1 and 2, a residual, GELU in the epilogue, bands
// cut by the maps), DepthwiseNet's 3x3 and 5x5 stride 2 (SiLU and hardswish on load, 20 and 40
// channels; its 7x7 has dilation 2, not the kernel's), EfficientNet-B0's sixteen (3x3 and 5x5,
// SiLU on load, 7x7 to 112x112 maps, 32 to 1,152 channels) and MobileNetV2's seventeen (3x3,
// ReLU6 on load). (The 5x5 and 7x7 forms passed on an H200 in session 23, the 3x3 one in
// session 24.)
TEST_CASE("the depthwise band kernel, forced: 3x3, 5x5 and 7x7 at strides 1 and 2, activations on load, a residual") {
  // BandNet's activations on load: SiLU, hardsigmoid, clip (ReLU6) — one each.
  std::vector<Act> on_load;
  for (const cuda::OpDesc& op : cuda::NetStorage<BandNet, DType::f16>::describe().ops) {
    if (op.kind == OpKind::conv && op.conv.groups > 1) {
      on_load.push_back(op.in_act.kind);
    }
  }
  REQUIRE(on_load == std::vector<Act>{Act::silu, Act::hardsigmoid, Act::clip});
  check_depthwise_forced<BandNet, DType::f16>(0, 17, {1, 3, 17}, 98, "depthwise_band");
  check_depthwise_forced<BandNet, DType::bf16>(0, 17, {1, 17}, 99, "depthwise_band");
  check_depthwise_forced<DepthwiseNet, DType::f16>(0, 5, {1, 5}, 100, "depthwise_band");
  check_depthwise_forced<models::EfficientNetB0, DType::f16>(0, 2, {2}, 101, "depthwise_band");
  check_depthwise_forced<models::MobileNetV2, DType::f16>(0, 2, {2}, 102, "depthwise_band");
  // algo 1: filters staged, several images a block (passed on an H200 in session 27)
  check_band_staged<BandNet, DType::f16>(4, {1, 3, 17}, 103);
  check_band_staged<BandNet, DType::bf16>(2, {1, 5}, 104);
  check_band_staged<models::EfficientNetB0, DType::f16>(4, {5}, 105);
  check_band_staged<models::MobileNetV2, DType::f16>(8, {9}, 106);
}

// expand_depthwise (fold_expanded_depthwise: an inverted-residual block's 1x1 expansion joined to
// the depthwise conv that alone reads it; one kernel computes the expanded patch on tensor cores
// into shared memory, chunk by chunk, and the depthwise conv from there), forced on every joined
// op: BandNet's two (hardsigmoid on load into a 5x5 stride-2 conv — f(0) != 0 outside the map,
// where the padding must stay 0 — and ReLU6 into a 7x7 with the residual added; 21 -> 48 and
// 48 -> 144 channels, 24 and 48 slots in), MobileNetV2's sixteen and EfficientNet-B0's fifteen (ReLU6 and SiLU on
// load, 3x3 and 5x5 at strides 1 and 2, 7x7 to 112x112 maps, 96 to 1,152 channels), against the
// CPU. The depthwise kernels' forced tests above run the same joined ops with the expansion as a
// step of its own.
TEST_CASE("an expansion folded into the depthwise conv after it: one kernel, the expanded map never stored") {
  const auto expanded = [](const cuda::OpDesc& op) { return op.expand != nullptr; };
  cuda::NetDesc mv2 = cuda::NetStorage<models::MobileNetV2, DType::f16>::describe();
  cuda::fold_for_per_op_path(mv2);
  CHECK(std::count_if(mv2.ops.begin(), mv2.ops.end(), expanded) == 16);
  using strata_test::check_forced;
  const cuda::Variant fused{"expand_depthwise"};
  const char* shows = "strata expand+depthwise";
  check_forced<BandNet, DType::f16>("expand_band_f16", 110, fused, shows, ", then", expanded);
  check_forced<BandNet, DType::bf16>("expand_band_bf16", 111, fused, shows, ", then", expanded);
  check_forced<models::MobileNetV2, DType::f16>("expand_mv2_f16", 113, fused, shows, ", then", expanded);
  check_forced<models::EfficientNetB0, DType::f16>("expand_eb0_f16", 114, fused, shows, ", then",
                                                   expanded);
  check_forced<models::EfficientNetB0, DType::bf16>("expand_eb0_bf16", 115, fused, shows, ", then",
                                                    expanded);
  // The forms only forced runs take (timed in session 26: no gain worth a tuning candidate):
  // pipelined (algo 1), the chunks split over blocks (math), both.
  check_forced<BandNet, DType::f16>("expand_band_pipe", 116, cuda::Variant{"expand_depthwise", 1},
                                    "pipelined", ", then", expanded);
  check_forced<models::MobileNetV2, DType::f16>("expand_mv2_pipe2", 117,
                                                cuda::Variant{"expand_depthwise", 1, 2},
                                                "pipelined, the chunks over 2 blocks", ", then", expanded);
  check_forced<models::EfficientNetB0, DType::bf16>("expand_eb0_split2", 118,
                                                    cuda::Variant{"expand_depthwise", 0, 2},
                                                    "the chunks over 2 blocks", ", then", expanded);
  check_forced<models::EfficientNetB0, DType::f16>("expand_eb0_pipe", 119,
                                                   cuda::Variant{"expand_depthwise", 1}, "pipelined",
                                                   ", then", expanded);
}

TEST_CASE("a batch norm folded into the 1x1 conv after it: applied as the conv loads its input, the normalized map never stored") {
  const auto normed = [](const cuda::OpDesc& op) { return op.norm != nullptr && op.kind == OpKind::conv; };
  cuda::NetDesc d121 = cuda::NetStorage<models::DenseNet121, DType::f16>::describe();
  cuda::fold_for_per_op_path(d121);
  // every layer's norm1+relu1, and the three transitions' (with their pools); (norm5's, into the
  // head: fold_normed_pooled_dense)
  CHECK(std::count_if(d121.ops.begin(), d121.ops.end(), normed) == 61);
  CHECK(d121.ops.back().norm != nullptr);
  const auto pooled = [](const cuda::OpDesc& op) { return op.norm != nullptr && op.pool.has_value(); };
  const auto unpooled = [](const cuda::OpDesc& op) { return op.norm != nullptr && !op.pool && op.kind == OpKind::conv; };
  using strata_test::check_forced;
  const char* shows = "strata batch norm + 1x1 conv";
  // 12x12 maps: 144 pixels an image, so blocks of 128 and 64 pixels end inside an image and past
  // the batch; 16 and 24 input slots (a partial reduction step), 16 output slots of a 32-wide block.
  // (Its last batch norm, over 32 slots before a pooled 1x1, joins its conv too since session 34's
  // plan rule: the unpooled forms are forced on the others, the pooled ones on it below.)
  check_forced<DenseBlockNet, DType::f16>("normed_dense_f16", 130, cuda::Variant{"normed_conv"}, shows,
                                          ", then", unpooled);
  check_forced<DenseBlockNet, DType::bf16>("normed_dense_bf16", 131, cuda::Variant{"normed_conv", 1},
                                           "blocks of 64 pixels", ", then", unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_f16", 132, cuda::Variant{"normed_conv"},
                                                "of the concat in place", ", then", unpooled);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_bf16", 133, cuda::Variant{"normed_conv", 1},
                                                 "blocks of 64 pixels", ", then", unpooled);
  // The transitions: the average pool in the epilogue, the next block's first channels written.
  check_forced<DenseBlockNet, DType::f16>("normed_dense_pool", 155, cuda::Variant{"normed_conv", 0, 0, 1},
                                          "average pool", ", then", pooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_pool", 137, cuda::Variant{"normed_conv", 0, 0, 1},
                                                "average pool, writing channels 0..", ", then", pooled);
  check_forced<PooledNormNet, DType::f16>("normed_pool_f16", 138, cuda::Variant{"normed_conv", 0, 0, 1},
                                          "pool", ", then", pooled);
  check_forced<PooledNormNet, DType::bf16>("normed_pool_bf16", 139, cuda::Variant{"normed_conv", 1, 0, 1},
                                           "pool", ", then", pooled);
  // The pipelined form (algo 2): its ring of 4 steps of 32 slots, and of 3 of 64 (math 1).
  const char* piped = "pipelined: 4 steps of 32";
  const char* piped64 = "pipelined: 3 steps of 64";
  check_forced<DenseBlockNet, DType::f16>("normed_dense_p_f16", 140, cuda::Variant{"normed_conv", 2}, piped,
                                          ", then", unpooled);
  check_forced<DenseBlockNet, DType::bf16>("normed_dense_p_bf16", 141, cuda::Variant{"normed_conv", 2, 1},
                                           piped64, ", then", unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_p_f16", 142, cuda::Variant{"normed_conv", 2},
                                                piped, ", then", unpooled);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_p_bf16", 143, cuda::Variant{"normed_conv", 2, 1},
                                                 piped64, ", then", unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_p_pool", 144, cuda::Variant{"normed_conv", 2, 0, 1},
                                                "average pool, writing channels 0..", ", then", pooled);
  check_forced<PooledNormNet, DType::f16>("normed_pool_p_f16", 145, cuda::Variant{"normed_conv", 2, 1, 1},
                                          piped64, ", then", pooled);
  check_forced<PooledNormNet, DType::bf16>("normed_pool_p_bf16", 146, cuda::Variant{"normed_conv", 2, 0, 1},
                                           piped, ", then", pooled);
  // ... and with blocks of 64 pixels (algo 3).
  check_forced<DenseBlockNet, DType::f16>("normed_dense_p64", 147, cuda::Variant{"normed_conv", 3},
                                          "blocks of 64 pixels x 32 channels, pipelined: 4 steps of 32", ", then", unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_p64", 148, cuda::Variant{"normed_conv", 3, 1},
                                                "blocks of 64 pixels x 128 channels, pipelined: 3 steps of 64", ", then", unpooled);
  check_forced<PooledNormNet, DType::bf16>("normed_pool_p64", 149, cuda::Variant{"normed_conv", 3, 0, 1},
                                           "blocks of 64 pixels x 32 channels, pipelined", ", then", pooled);
  // The folded form (algo 2, math 2): the ReLU batch norm's scale folded into the filter, one
  // packed fma.relu a channel pair (the pass's rounding differs: within the CPU check's bound).
  const auto folds = [](const cuda::OpDesc& op) {
    return op.norm != nullptr && cuda::tactics::normed::fold_fits(op);
  };
  const auto folds_unpooled = [](const cuda::OpDesc& op) {
    return op.norm != nullptr && !op.pool && cuda::tactics::normed::fold_fits(op);
  };
  const char* folded = "the norm's scale folded into the filter: one fma a channel pair; blocks of 128";
  check_forced<models::DenseNet121, DType::f16>("normed_d121_fold", 171, cuda::Variant{"normed_conv", 2, 2},
                                                folded, ", then", folds_unpooled);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_fold_bf16", 172, cuda::Variant{"normed_conv", 2, 2},
                                                 folded, ", then", folds_unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_fold_pool", 173, cuda::Variant{"normed_conv", 2, 2, 1},
                                                folded, ", then", [](const cuda::OpDesc& op) {
                                                  return op.norm != nullptr && op.pool.has_value();
                                                });
  check_forced<models::DenseNet121, DType::f16>("normed_d121_fold_pf", 176, cuda::Variant{"normed_conv", 1, 2, 2},
                                                "folded into the filter: one fma a channel pair; blocks of 64 pixels x 128 "
                                                "channels, its 2x2 average pool taken first",
                                                ", then", [](const cuda::OpDesc& op) {
                                                  return op.norm != nullptr && op.pool.has_value();
                                                });
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_fold_pf0", 177, cuda::Variant{"normed_conv", 0, 2, 2},
                                                 "folded into the filter", ", then", [](const cuda::OpDesc& op) {
                                                   return op.norm != nullptr && op.pool.has_value();
                                                 });
  check_forced<DenseBlockNet, DType::f16>("normed_dense_fold0", 178, cuda::Variant{"normed_conv", 0, 2}, "folded into the filter",
                                          ", then", folds_unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_fold64", 179, cuda::Variant{"normed_conv", 2, 3},
                                                "folded into the filter: one fma a channel pair; blocks of 128 pixels x 64",
                                                ", then", folds_unpooled);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_fold64_pool", 180, cuda::Variant{"normed_conv", 2, 3, 1},
                                                 "blocks of 128 pixels x 64 channels", ", then", [](const cuda::OpDesc& op) {
                                                   return op.norm != nullptr && op.pool.has_value();
                                                 });
  check_forced<DenseBlockNet, DType::f16>("normed_dense_fold", 174, cuda::Variant{"normed_conv", 2, 2}, folded,
                                          ", then", folds_unpooled);
  check_forced<DenseBlockNet, DType::bf16>("normed_dense_fold_bf16", 175, cuda::Variant{"normed_conv", 2, 2},
                                           folded, ", then", folds_unpooled);
  {  // (PooledNormNet's batch norms, ReLU6 and hardswish, do not fold)
    cuda::NetDesc pn = cuda::NetStorage<PooledNormNet, DType::f16>::describe();
    cuda::fold_for_per_op_path(pn);
    CHECK(std::count_if(pn.ops.begin(), pn.ops.end(), normed) == 2);
    CHECK_FALSE(std::any_of(pn.ops.begin(), pn.ops.end(), folds));
  }
  // The average pool taken first (fuse 2): the conv over the pooled pixels, each element of its
  // input the window's four normalized, averaged and rounded (forms 0 and 1; the transitions,
  // DenseBlockNet's last and PooledNormNet's second conv, not its max-pooled first).
  const auto pool_first = [](const cuda::OpDesc& op) {
    return op.norm != nullptr && cuda::tactics::normed::pool_first_fits(op);
  };
  const char* firsts = "average pool taken first, on the input";
  check_forced<models::DenseNet121, DType::f16>("normed_d121_pf", 166, cuda::Variant{"normed_conv", 0, 0, 2},
                                                firsts, ", then", pool_first);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_pf64", 167, cuda::Variant{"normed_conv", 1, 0, 2},
                                                 firsts, ", then", pool_first);
  check_forced<DenseBlockNet, DType::f16>("normed_dense_pf", 168, cuda::Variant{"normed_conv", 0, 0, 2}, firsts,
                                          ", then", pool_first);
  check_forced<PooledNormNet, DType::bf16>("normed_pool_pf", 169, cuda::Variant{"normed_conv", 1, 0, 2}, firsts,
                                           ", then", pool_first);
  check_forced<PooledNormNet, DType::f16>("normed_pool_pf_f16", 170, cuda::Variant{"normed_conv", 0, 0, 2}, firsts,
                                          ", then", pool_first);
  // The warpgroup form (algo 4, sm_90a; written in session 34 without a GPU): n32 (DenseBlockNet's
  // 16 slots of a 32-wide block) and n128 MMAs, every shape above, pooled and not.
  if (cuda::device_arch() == 90) {
    const char* wg = "loaded, wgmma; blocks of 128 pixels";
    check_forced<DenseBlockNet, DType::f16>("normed_dense_wg_f16", 156, cuda::Variant{"normed_conv", 4}, wg,
                                            ", then", unpooled);
    check_forced<DenseBlockNet, DType::bf16>("normed_dense_wg_bf16", 157, cuda::Variant{"normed_conv", 4}, wg,
                                             ", then", unpooled);
    check_forced<DenseBlockNet, DType::bf16>("normed_dense_wg_pool", 158, cuda::Variant{"normed_conv", 4, 0, 1},
                                             wg, ", then", pooled);
    check_forced<models::DenseNet121, DType::f16>("normed_d121_wg_f16", 159, cuda::Variant{"normed_conv", 4}, wg,
                                                  ", then", unpooled);
    check_forced<models::DenseNet121, DType::bf16>("normed_d121_wg_bf16", 160, cuda::Variant{"normed_conv", 4},
                                                   wg, ", then", unpooled);
    check_forced<models::DenseNet121, DType::f16>("normed_d121_wg_pool", 161, cuda::Variant{"normed_conv", 4, 0, 1},
                                                  "average pool, writing channels 0..", ", then", pooled);
    check_forced<PooledNormNet, DType::f16>("normed_pool_wg_f16", 162, cuda::Variant{"normed_conv", 4, 0, 1}, wg,
                                            ", then", pooled);
    check_forced<PooledNormNet, DType::bf16>("normed_pool_wg_bf16", 163, cuda::Variant{"normed_conv", 4, 0, 1}, wg,
                                             ", then", pooled);
    // math 1: blocks of 64 slots (two or more blocks across a layer's 128 and the transitions' 128-512)
    const char* wg64 = "loaded, wgmma; blocks of 128 pixels x 64 channels";
    check_forced<models::DenseNet121, DType::f16>("normed_d121_wg64", 164, cuda::Variant{"normed_conv", 4, 1}, wg64,
                                                  ", then", unpooled);
    check_forced<models::DenseNet121, DType::bf16>("normed_d121_wg64_pool", 165,
                                                   cuda::Variant{"normed_conv", 4, 1, 1}, wg64, ", then", pooled);
  }
  // Any other tactic runs the joined op as the batch norm's pass (reading the concat in place),
  // then the conv. (The last, pooled one reads a tensor of its own: lt_conv1x1 runs no pool.)
  check_forced<DenseBlockNet, DType::f16>("normed_dense_lt", 134, cuda::Variant{"lt_conv1x1"},
                                          "strata pointwise (reads channels 0..", nullptr, unpooled);
  // The heuristic's plan at batch 256: every joined op of blocks 1-3 (42) and the three transitions,
  // not block 4's 7x7 ones (98 blocks of 128 pixels: bottleneck_conv runs each layer whole).
  {
    const std::string d = describe<models::DenseNet121, DType::f16>(256);
    std::size_t joined = 0;
    for (std::size_t at = d.find(shows); at != std::string::npos; at = d.find(shows, at + 1)) {
      ++joined;
    }
    INFO(d);
    CHECK(joined == 43);  // (and two transitions as a pass and cuBLASLt, below)
    // the 42 layers' in the pipelined form (algo 2), the transitions' with their pools taken
    // first, in 64-pixel blocks (algo 1) the first's, as a pass and cuBLASLt (algo 6) the other two
    std::size_t piped_ops = 0;
    for (std::size_t at = d.find(piped); at != std::string::npos; at = d.find(piped, at + 1)) {
      ++piped_ops;
    }
    CHECK(piped_ops == 42);
    std::size_t firsts_ops = 0;
    const std::string first64 = "blocks of 64 pixels x 128 channels, its 2x2 average pool taken first";
    for (std::size_t at = d.find(first64); at != std::string::npos; at = d.find(first64, at + 1)) {
      ++firsts_ops;
    }
    CHECK(firsts_ops == 1);
    std::size_t pass_ops = 0;
    const std::string pass = "2x2 average pool pass (the pool taken first, into a map of the pooled pixels)";
    for (std::size_t at = d.find(pass); at != std::string::npos; at = d.find(pass, at + 1)) {
      ++pass_ops;
    }
    CHECK(pass_ops == 2);
    // (block 4's layers, 98 blocks of 128 pixels, each one bottleneck_conv kernel since session 37)
    CHECK(d.find("features.denseblock4.denselayer16.norm1+relu1+conv1+norm2+relu2+conv2: strata bottleneck + conv") !=
          std::string::npos);
  }
  // The two ways agree with each other (and each with the CPU, above) at a batch of 17.
  const auto w = Weights<DenseBlockNet>::random(135);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(17 * DenseBlockNet::input_spec.shape.numel()), 136);
  const auto fused = strata_test::forced_output<DenseBlockNet, DType::f16>(
      w, in, 17, 17, unpooled, 2, cuda::Variant{"normed_conv"}, shows);
  const auto apart = strata_test::forced_output<DenseBlockNet, DType::f16>(
      w, in, 17, 17, unpooled, 2, cuda::Variant{"lt_conv1x1"}, "strata pointwise");
  const double err = strata_test::rel_error(fused, apart, fused.size());
  MESSAGE("dense block f16, batch 17: normed_conv against the batch norm's pass + cuBLASLt: rel. error " << err);
  CHECK(err < 5e-3);
  const auto piped17 = strata_test::forced_output<DenseBlockNet, DType::f16>(
      w, in, 17, 17, unpooled, 2, cuda::Variant{"normed_conv", 2}, piped);
  const double err2 = strata_test::rel_error(piped17, apart, piped17.size());
  MESSAGE("dense block f16, batch 17: normed_conv algo 2 against the batch norm's pass + cuBLASLt: rel. error " << err2);
  CHECK(err2 < 5e-3);
}

// splitk_conv fuse 3 (session 41, written without a GPU): the batch norm applied as the split-K
// kernel stages its input — each 8-slot chunk normalized in shared memory by the thread that
// copied it — so DenseNet's norm1+relu1+conv1 is one launch at small batches. Forced on every
// layer's joined op, against the CPU: DenseBlockNet (16 and 24 slots, one partial k-step, the
// slices met in the workspace's form, unsplit) and DenseNet-121 (the concatenation read in place,
// 64 to 992 slots in clusters of 8 — on block 1's first layers most slices empty — and of 16 with
// 8 staged k-steps); then against the batch norm's pass + the same split-K conv at batches 5 and 1.
TEST_CASE("splitk_conv fuse 3: a batch norm applied as the split-K conv stages its input; concat slices written in place") {
  using strata_test::check_forced;
  const auto joins = [](const cuda::OpDesc& op) { return cuda::tactics::splitk::fuses_norm(op); };
  const char* staged = "the batch norm applied as the input is staged";
  check_forced<DenseBlockNet, DType::f16>("sk_norm_dense_f16", 190, cuda::Variant{"splitk_conv", 0, 0, 3}, staged,
                                          ", then", joins);
  check_forced<DenseBlockNet, DType::bf16>("sk_norm_dense_bf16", 191, cuda::Variant{"splitk_conv", 0, 0, 3}, staged,
                                           ", then", joins);
  // ... and the ops writing its concatenation's slices — the first conv (channels 0..15, reading
  // the network's input) and the 3x3 convs' 8 channels each (16 input slots: 5 k-steps) — written
  // in place by the workspace form, no copy after them.
  const auto slice3 = [](const cuda::OpDesc& op) {
    return op.kind == OpKind::conv && op.conv.kh == 3 && op.slice && !op.pool;
  };
  check_forced<DenseBlockNet, DType::f16>("sk_slice_dense_f16", 197, cuda::Variant{"splitk_conv"},
                                          "of a concat, ", ", then", slice3);
  if (cuda::device_arch() < 90) {
    MESSAGE("splitk_conv fuse 3 in clusters not checked: this GPU is not of compute capability 9.0");
    return;
  }
  check_forced<models::DenseNet121, DType::f16>("sk_norm_d121_f16", 192, cuda::Variant{"splitk_conv", 8, 0, 3},
                                                staged, ", then", joins);
  check_forced<models::DenseNet121, DType::bf16>("sk_norm_d121_bf16", 193, cuda::Variant{"splitk_conv", 16, 1, 3},
                                                 staged, ", then", joins);
  // Every form writes a concat's slice itself (session 41): DenseNet-121's 3x3 convs (32 channels
  // of the block's concatenation) forced onto clusters of 8, no copy after them.
  check_forced<models::DenseNet121, DType::f16>("sk_slice_d121_f16", 196, cuda::Variant{"splitk_conv", 8},
                                                "of a concat, ", ", then", slice3);
  // Against the pass + the same split-K conv (fuse 0: the batch norm's kernel first): the same
  // normalized values, the same sums in the same order.
  constexpr int kB = 5;
  const auto w = Weights<models::DenseNet121>::random(194);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(kB) * static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 195);
  for (const int b : {kB, 1}) {
    const auto joined = strata_test::forced_output<models::DenseNet121, DType::f16>(
        w, in, kB, b, joins, 58, cuda::Variant{"splitk_conv", 8, 0, 3}, staged);
    const auto apart = strata_test::forced_output<models::DenseNet121, DType::f16>(
        w, in, kB, b, joins, 58, cuda::Variant{"splitk_conv", 8}, "then strata split-K conv");
    const double diff = strata_test::rel_error(joined, apart, joined.size());
    MESSAGE("DenseNet-121 f16 batch " << b << ", splitk_conv fuse 3 against the pass + fuse 0: rel. difference "
                                      << diff << (joined == apart ? " (equal to the bit)" : ""));
    CHECK(std::none_of(joined.begin(), joined.end(), [](float f) { return std::isnan(f); }));
    CHECK(diff < 2e-3);
  }
  // The heuristic's plan at batch 1 on 132 SMs (an H100's or H200's; the rules from measured
  // tuning on an H200, session 42): 48 joined layers in fuse 3, the other 10 in normed_conv's
  // folded form, the three transitions as normed_conv's pass + cuBLASLt; every 3x3 conv split-K
  // writing its slice — no copy into a slice and no batch norm pass of its own before a conv;
  // and its output against the CPU's in f16 and bf16 (an engine of maximum batch 1: the variants
  // are chosen for the maximum batch, so the network tests' batch-1 runs take another plan).
  if (cuda::tactics::generated::device_sms().sms == 132) {
    const auto w1 = Weights<models::DenseNet121>::random(251);
    const auto in1 = strata_test::random_floats(static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 252);
    const auto ref1 = strata_test::cpu_reference<models::DenseNet121>(w1, in1, 1);
    strata_test::check_engine<models::DenseNet121, DType::f16>(w1, in1, ref1, 1, {1}, "DenseNet-121 batch-1 plan");
    strata_test::check_engine<models::DenseNet121, DType::bf16>(w1, in1, ref1, 1, {1}, "DenseNet-121 batch-1 plan");
    const std::string d = describe<models::DenseNet121, DType::f16>(1);
    INFO(d);
    const auto count = [&](const std::string& text) {
      std::size_t n = 0;
      for (std::size_t at = d.find(text); at != std::string::npos; at = d.find(text, at + 1)) {
        ++n;
      }
      return n;
    };
    CHECK(count(staged) == 48);
    CHECK(count("folded into the filter") == 10);
    CHECK(count("2x2 average pool pass (the pool taken first") == 3);
    CHECK(count("split-K conv 3x3") == 58);
    CHECK(count("copy into") == 0);
    CHECK(count("reads channels 0..") == 0);
  } else {
    MESSAGE("DenseNet-121's batch-1 plan not checked: its rules are for 132 SMs, this GPU has "
            << cuda::tactics::generated::device_sms().sms);
  }
}

TEST_CASE("normed_conv algo 5: a transition's pool taken first on the pipelined ring, form 1's output to the bit") {
  // DenseNet-121's three transitions (batch norm, ReLU, 1x1 conv, 2x2 average pool; the scale
  // folded, math 2) forced onto algo 5 and onto form 1 (which the heuristic claims), every other
  // op alike: the same arithmetic in the same order (each thread normalizes and averages the
  // window's four positions it copied as form 1's store does; the same k order of the MMAs).
  const auto transitions = [](const cuda::OpDesc& op) { return op.norm != nullptr && op.pool.has_value(); };
  const int b = strata_test::quick_run() ? 3 : 17;
  const auto w = Weights<models::DenseNet121>::random(215);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(b) * static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 216);
  const char* piped = "pipelined: 3 steps of 32 input channels in flight, its 2x2 average pool taken first";
  const char* form1 = "blocks of 64 pixels x 128 channels, its 2x2 average pool taken first";
  const auto a = strata_test::forced_output<models::DenseNet121, DType::f16>(
      w, in, b, b, transitions, 3, cuda::Variant{"normed_conv", 5, 2, 2}, piped);
  const auto f = strata_test::forced_output<models::DenseNet121, DType::f16>(
      w, in, b, b, transitions, 3, cuda::Variant{"normed_conv", 1, 2, 2}, form1);
  CHECK(std::memcmp(a.data(), f.data(), a.size() * sizeof(float)) == 0);
  const auto ab = strata_test::forced_output<models::DenseNet121, DType::bf16>(
      w, in, b, b, transitions, 3, cuda::Variant{"normed_conv", 5, 2, 2}, piped);
  const auto fb = strata_test::forced_output<models::DenseNet121, DType::bf16>(
      w, in, b, b, transitions, 3, cuda::Variant{"normed_conv", 1, 2, 2}, form1);
  CHECK(std::memcmp(ab.data(), fb.data(), ab.size() * sizeof(float)) == 0);
  // ... and against the CPU (every other op measured, as check_forced does).
  strata_test::check_forced<models::DenseNet121, DType::f16>("normed_d121_pf_pipe", 217,
                                                             cuda::Variant{"normed_conv", 5, 2, 2}, piped, ", then",
                                                             transitions);
}

TEST_CASE("normed_conv algo 6: a transition's pool taken first by a pass, then cuBLASLt's GEMM over the pooled map") {
  using strata_test::check_forced;
  const auto pool_first = [](const cuda::OpDesc& op) {
    return op.norm != nullptr && cuda::tactics::normed::pool_first_fits(op);
  };
  const char* shows = "2x2 average pool pass (the pool taken first, into a map of the pooled pixels) + cublasLtMatmul";
  // Against the CPU: DenseBlockNet's transition (its result read by the global pool, no slice),
  // PooledNormNet's second conv (a hardswish batch norm; 8 channels), in f16 and bf16.
  check_forced<DenseBlockNet, DType::f16>("normed_dense_pass", 230, cuda::Variant{"normed_conv", 6, 0, 2}, shows,
                                          ", then", pool_first);
  check_forced<DenseBlockNet, DType::bf16>("normed_dense_pass_bf16", 231, cuda::Variant{"normed_conv", 6, 0, 2},
                                           shows, ", then", pool_first);
  check_forced<PooledNormNet, DType::f16>("normed_pool_pass", 232, cuda::Variant{"normed_conv", 6, 0, 2}, shows,
                                          ", then", pool_first);
  // DenseNet-121's three transitions (256, 512, 1,024 input channels into the next block's first
  // channels), every other op on the heuristic's plan: against the CPU, and against form 0 with
  // the pool taken first (math 0), whose GEMM input is the same to the bit (the same
  // normalization, rounding and averaging order) and whose sums differ only in their order (the
  // transitions have no bias: algo 6 adds a bias rounded to T in cuBLASLt's epilogue, form 0 in f32).
  const int b = strata_test::quick_run() ? 3 : 9;
  const auto w = Weights<models::DenseNet121>::random(233);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(b) * static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 234);
  const auto ref = strata_test::cpu_reference<models::DenseNet121>(w, in, b);
  const char* form0_shows = "blocks of 128 pixels x 128 channels, its 2x2 average pool taken first, on the input";
  for (const bool bf : {false, true}) {
    const auto pass = bf ? strata_test::forced_output<models::DenseNet121, DType::bf16>(
                               w, in, b, b, pool_first, 3, cuda::Variant{"normed_conv", 6, 0, 2}, shows)
                         : strata_test::forced_output<models::DenseNet121, DType::f16>(
                               w, in, b, b, pool_first, 3, cuda::Variant{"normed_conv", 6, 0, 2}, shows);
    const auto form0 = bf ? strata_test::forced_output<models::DenseNet121, DType::bf16>(
                                w, in, b, b, pool_first, 3, cuda::Variant{"normed_conv", 0, 0, 2}, form0_shows)
                          : strata_test::forced_output<models::DenseNet121, DType::f16>(
                                w, in, b, b, pool_first, 3, cuda::Variant{"normed_conv", 0, 0, 2}, form0_shows);
    const double to_cpu = strata_test::rel_error(pass, ref, pass.size());
    const double to_form0 = strata_test::rel_error(pass, form0, pass.size());
    MESSAGE("DenseNet-121 " << std::string(bf ? "bf16" : "f16") << ", batch " << b << ", transitions on algo 6: rel. error "
                            << to_cpu << " against the CPU, " << to_form0 << " against form 0");
    CHECK(to_cpu < (bf ? 3e-2 : 1e-2));
    CHECK(to_form0 < (bf ? 1e-2 : 2e-3));
  }
}

TEST_CASE("a batch norm before the head's global average pool: the map normalized as the pool reads it") {
  // The head's op with the batch norm folded in (fold_normed_pooled_dense) on normed_head (the
  // batch norm and the pool as one kernel, then cuBLASLt), and on lt_dense and gap_dense (the
  // batch norm's pass first, into the pool's map), against the CPU.
  cuda::NetDesc net = cuda::NetStorage<NormHeadNet, DType::f16>::describe();
  cuda::fold_for_per_op_path(net);
  REQUIRE(net.ops.back().norm != nullptr);
  REQUIRE(net.ops.back().gap.has_value());
  const std::string head = net.ops.back().label;
  constexpr int kB = 17;
  const auto w = Weights<NormHeadNet>::random(240);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(kB * NormHeadNet::input_spec.shape.numel()), 241);
  const auto ref = strata_test::cpu_reference<NormHeadNet>(w, in, kB);
  const std::size_t n_out = static_cast<std::size_t>(NormHeadNet::output_spec.shape.numel());
  const auto run = [&]<DType P>(const cuda::Variant& v, int max_batch, std::initializer_list<int> batches,
                                const char* shows) {
    cuda::EngineOptions opt{.max_batch = max_batch, .fused_max_batch = 0};
    opt.force[head] = v;
    cuda::Engine<NormHeadNet, P> e(w, opt);
    for (const int b : batches) {
      const std::string runs = e.describe(b);
      INFO(runs);
      const std::size_t at = runs.find(head + ": ");
      REQUIRE(at != std::string::npos);
      CHECK(runs.substr(at, runs.find('\n', at) - at).find(shows) != std::string::npos);
      std::vector<float> out(static_cast<std::size_t>(b) * n_out, std::numeric_limits<float>::quiet_NaN());
      e.infer(std::span<const float>(in.data(), static_cast<std::size_t>(b) * NormHeadNet::input_spec.shape.numel()),
              out, b);
      const double err = strata_test::rel_error(out, ref, out.size());
      MESSAGE("norm head " << dtype_name(P) << " " << cuda::to_string(v) << ", batch " << b << ": rel. error " << err);
      CHECK(err < (P == DType::f16 ? 1e-2 : 3e-2));
    }
  };
  const char* fused = "strata batch norm + global_avg_pool (the map normalized as it is averaged";
  run.operator()<DType::f16>(cuda::Variant{"normed_head"}, kB, {1, 3, kB}, fused);
  run.operator()<DType::bf16>(cuda::Variant{"normed_head"}, kB, {1, kB}, fused);
  run.operator()<DType::f16>(cuda::Variant{"lt_dense"}, kB, {1, kB}, "strata pointwise");
  constexpr int small = cuda::tactics::gap_dense::max_batch;  // (gap_dense's most images)
  run.operator()<DType::f16>(cuda::Variant{"gap_dense", 8}, small, {1, small}, "strata pointwise");
  // Claimed above batch 1 (measured at 256), not offered to measured tuning.
  const auto* t = cuda::find_tactic<DType::f16>("normed_head");
  REQUIRE(t != nullptr);
  CHECK(t->applicable(net.ops.back()));
  CHECK(t->candidates(net.ops.back(), kB, std::size_t{1} << 30, {}).empty());
  CHECK(t->heuristic(net.ops.back(), kB, std::size_t{1} << 30, {}).has_value());
  CHECK_FALSE(t->heuristic(net.ops.back(), 1, std::size_t{1} << 30, {}).has_value());
  {  // and the heuristic's plan runs it (batch 3), not an engine's of one image
    cuda::Engine<NormHeadNet, DType::f16> e(w, cuda::EngineOptions{.max_batch = 3, .fused_max_batch = 0});
    const std::string at3 = e.describe(3);
    INFO(at3);
    CHECK(at3.find(head + ": " + fused) != std::string::npos);
    cuda::Engine<NormHeadNet, DType::f16> one(w, cuda::EngineOptions{.max_batch = 1, .fused_max_batch = 0});
    const std::string at1 = one.describe(1);
    INFO(at1);
    CHECK(at1.find(head + ": ") != std::string::npos);
    CHECK(at1.find(head + ": " + fused) == std::string::npos);
  }
  // DenseNet-121's head (norm5, its ReLU, the pool, the classifier: 1,024 channels of 7x7) forced
  // onto normed_head, every other op on the heuristic's plan: against the CPU and the heuristic's.
  const auto is_head = [](const cuda::OpDesc& op) { return op.kind == OpKind::dense && op.norm != nullptr; };
  const int b = 3;
  const auto wd = Weights<models::DenseNet121>::random(242);
  const auto ind = strata_test::random_floats(
      static_cast<std::size_t>(b) * static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 243);
  const auto refd = strata_test::cpu_reference<models::DenseNet121>(wd, ind, b);
  const auto joined = strata_test::forced_output<models::DenseNet121, DType::f16>(
      wd, ind, b, b, is_head, 1, cuda::Variant{"normed_head"}, fused);
  const auto apart = strata_test::forced_output<models::DenseNet121, DType::f16>(
      wd, ind, b, b, is_head, 1, cuda::Variant{"lt_dense"}, "features.norm5+relu+global_avg_pool2+classifier: strata pointwise");
  const double to_cpu = strata_test::rel_error(joined, refd, joined.size());
  const double to_apart = strata_test::rel_error(joined, apart, joined.size());
  MESSAGE("DenseNet-121 f16, batch 3, head on normed_head: rel. error " << to_cpu << " against the CPU, " << to_apart
                                                                       << " against the pass + pool + cuBLASLt");
  CHECK(to_cpu < 1e-2);
  CHECK(to_apart < 2e-3);
}

TEST_CASE("halo_conv: size-keeping convs of few output channels from streamed halos, into their concat slices") {
  using strata_test::check_forced;
  const auto three = [](const cuda::OpDesc& op) { return op.kind == OpKind::conv && op.conv.kh == 3; };
  const char* shows = "strata halo conv";
  // DenseBlockNet's 3x3 convs: 8 output slots (one n-tile), bias-free into a slice and with a bias
  // into the next; 12x12 maps (tiles of whole images, several a tile, the batch's last one partial).
  check_forced<DenseBlockNet, DType::f16>("halo_dense_f16", 150, cuda::Variant{"halo_conv"}, shows,
                                          ", then", three);
  check_forced<DenseBlockNet, DType::bf16>("halo_dense_bf16", 151, cuda::Variant{"halo_conv"}, shows,
                                           ", then", three);
  // DenseNet-121's 58 (128 -> 32 channels on 56x56 to 7x7 maps), each writing its 32 channels of
  // the block's concatenation.
  check_forced<models::DenseNet121, DType::f16>("halo_d121_f16", 152, cuda::Variant{"halo_conv"},
                                                "of a concat", ", then", three);
  check_forced<models::DenseNet121, DType::bf16>("halo_d121_bf16", 153, cuda::Variant{"halo_conv"},
                                                 "of a concat", ", then", three);
  // The same in blocks of 16 warps (math 1).
  const char* wide = "strata halo conv (mma.sync, 16 warps";
  check_forced<DenseBlockNet, DType::bf16>("halo_wide_dense_bf16", 181, cuda::Variant{"halo_conv", 0, 1}, wide,
                                           ", then", three);
  check_forced<models::DenseNet121, DType::f16>("halo_wide_d121_f16", 182, cuda::Variant{"halo_conv", 0, 1},
                                                wide, ", then", three);
  // By row segments (algo 2): 8 x 8 units, each halo row segment read once for the taps of its
  // column; n8 MMAs on 12x12 maps (two strips, the second half past the map), n32 on DenseNet's.
  const char* segs = "units of 8 x 8";
  check_forced<DenseBlockNet, DType::f16>("halo_seg_dense_f16", 183, cuda::Variant{"halo_conv", 2}, segs,
                                          ", then", three);
  check_forced<DenseBlockNet, DType::bf16>("halo_seg_dense_bf16", 184, cuda::Variant{"halo_conv", 2}, segs,
                                           ", then", three);
  check_forced<models::DenseNet121, DType::f16>("halo_seg_d121_f16", 185, cuda::Variant{"halo_conv", 2}, segs,
                                                ", then", three);
  check_forced<models::DenseNet121, DType::bf16>("halo_seg_d121_bf16", 186, cuda::Variant{"halo_conv", 2}, segs,
                                                 ", then", three);
  // The warpgroup form (algo 1: both operands read by wgmma from shared memory, 8 x 8 output
  // patches), on a GPU of compute capability 9.0: n8 (DenseBlockNet) and n32 (DenseNet-121) MMAs.
  if (cuda::device_arch() == 90) {
    const char* wg = "strata halo conv (wgmma";
    check_forced<DenseBlockNet, DType::f16>("halo_wg_dense_f16", 154, cuda::Variant{"halo_conv", 1}, wg,
                                            ", then", three);
    check_forced<DenseBlockNet, DType::bf16>("halo_wg_dense_bf16", 155, cuda::Variant{"halo_conv", 1}, wg,
                                             ", then", three);
    check_forced<models::DenseNet121, DType::f16>("halo_wg_d121_f16", 156, cuda::Variant{"halo_conv", 1},
                                                  wg, ", then", three);
    check_forced<models::DenseNet121, DType::bf16>("halo_wg_d121_bf16", 157, cuda::Variant{"halo_conv", 1},
                                                   wg, ", then", three);
    // DeferredNet's first conv (1x1, 8 -> 64 slots, 20x20 maps): tiles of 7 halo rows of 20
    // pixels, 560 vectors a stage, so a stage's last vectors end inside a warp — where the halo
    // copy's shuffle, under the branch that splits the warp, hung (found in session 41).
    const auto first = [](const cuda::OpDesc& op) {
      namespace halo = cuda::tactics::halo;
      if (op.kind != OpKind::conv || op.conv.kh != 1 || op.conv.kp != 64 || !halo::wg::fits(op)) {
        return false;
      }
      const halo::wg::Tile t = halo::wg::choose(op);
      return (4 * t.hr * t.hc) % 32 != 0;
    };
    check_forced<DeferredNet, DType::f16>("halo_wg_split_warp", 158, cuda::Variant{"halo_conv", 1}, wg,
                                          ", then", first);
  } else {
    MESSAGE("halo_conv algo 1 (wgmma) not checked: this GPU is not of compute capability 9.0");
  }
  // The heuristic's plan at batch 256: blocks 1-3's 42 3x3 convs here, by row segments (algo 2) —
  // block 3's after its joined bottleneck's 1x1 conv —; block 4 runs each layer as one kernel
  // (bottleneck_conv, joined at that max_batch).
  const std::string d = describe<models::DenseNet121, DType::f16>(256);
  std::size_t halos = 0;
  for (std::size_t at = d.find(shows); at != std::string::npos; at = d.find(shows, at + 1)) {
    ++halos;
  }
  INFO(d);
  CHECK(halos == 42);
  CHECK(d.find("features.denseblock1.denselayer1.conv2: strata halo conv (mma.sync, 8 warps; the filter in shared "
               "memory, tiles of 1 image(s) x 8 rows in 7 units of 8 x 8") != std::string::npos);
  CHECK(d.find("features.denseblock4.denselayer1.norm1+relu1+conv1+norm2+relu2+conv2: strata bottleneck") !=
        std::string::npos);
  // The stem writes block 1's first 64 channels itself (tile_conv, claimed since session 33).
  CHECK(d.find("features.conv0+norm0+relu0+features.pool0: strata tiled tensor-core conv") != std::string::npos);
  // No claim where the conv writes no slice: ResNet-18's layer1 3x3 convs stay on cuDNN.
  const std::string r = describe<models::ResNet18, DType::f16>(256);
  INFO(r);
  CHECK(r.find(shows) == std::string::npos);
}

namespace {
// Net in precision P, its DenseNet layers joined as an engine of max_batch `max_batch` joins them
// (with EngineOptions::bottleneck_clusters `clusters`), each joined op that `variant` gives a
// variant for forced onto it — `count` of them —, each described with `shows`, against the CPU
// at each of `batches`.
template <class Net, DType P>
void check_joined(std::uint64_t seed, int max_batch, bool clusters,
                  const std::function<std::optional<cuda::Variant>(const cuda::OpDesc&)>& variant,
                  const std::string& shows, const std::vector<int>& batches, std::size_t count) {
  using N = std::remove_cvref_t<Net>;
  cuda::EngineOptions opt;
  opt.max_batch = max_batch;
  opt.tuning = cuda::Tuning::heuristic;
  opt.fused_max_batch = 0;
  opt.bottleneck_clusters = clusters;
  REQUIRE(cuda::joins_bottlenecks(opt));
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  cuda::join_bottlenecks(net, opt);  // (as the engine joins them)
  for (const cuda::OpDesc& op : net.ops) {
    if (op.bottleneck) {
      if (const auto v = variant(op)) {
        opt.force[op.label] = *v;
      }
    }
  }
  REQUIRE(opt.force.size() == count);
  const int most = *std::max_element(batches.begin(), batches.end());
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(most) * N::input_spec.shape.numel(), seed + 100);
  const auto ref = strata_test::cpu_reference<Net>(w, in, most);
  cuda::Engine<Net, P> e(w, opt);
  const std::string d = "\n" + e.describe(most);
  INFO(d);
  for (const auto& [label, v] : opt.force) {
    const std::size_t at = d.find("\n" + label + ": strata bottleneck + conv");
    REQUIRE(at != std::string::npos);
    CHECK(d.substr(at + 1, d.find('\n', at + 1) - at - 1).find(shows) != std::string::npos);
  }
  const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
  for (const int b : batches) {
    std::vector<float> out(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, b);
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE("bottleneck_conv (" << shows << ") " << dtype_name(P) << ", batch " << b << ": rel. error " << err);
    CHECK(err < strata_test::tolerance(P));
  }
}

// The whole-image form with tiles of `g` images (g 0: bneck::choose_g's) on every joined op, at
// max_batch 32 (the fold's least).
template <class Net, DType P>
void check_bottleneck(std::uint64_t seed, int g, const std::vector<int>& batches, std::size_t count) {
  check_joined<Net, P>(
      seed, cuda::bottleneck_min_batch, false,
      [g](const cuda::OpDesc& op) {
        return cuda::Variant{"bottleneck_conv", 0, (g > 0 ? g : cuda::tactics::bneck::choose_g(op)) - 1};
      },
      "kept in shared memory; mma.sync, 16 warps; tiles of ", batches, count);
}
}  // namespace

TEST_CASE("bottleneck_conv: a DenseNet layer (batch norm, 1x1 conv, kxk conv) as one kernel, the bottleneck in shared memory") {
  // BottleneckNet: 5x5 and 3x3 convs, a ReLU batch norm and one without, 40 and 56 input slots
  // in place; tiles of 2 images (chosen) and of 1.
  check_bottleneck<BottleneckNet, DType::f16>(170, 0, {1, 3, 17, 32}, 2);
  check_bottleneck<BottleneckNet, DType::bf16>(171, 0, {1, 3, 17}, 2);
  check_bottleneck<BottleneckNet, DType::f16>(172, 1, {3, 17}, 2);
  // DenseNet-121's blocks 3 and 4 (40 layers: 14x14 maps a block of one image, 7x7 of two).
  check_bottleneck<models::DenseNet121, DType::f16>(173, 0, {1, 5}, 40);
  check_bottleneck<models::DenseNet121, DType::bf16>(174, 0, {5}, 40);
  // The heuristic's plan at batch 256 joins all 40 and claims block 4's (two 7x7 images a block);
  // block 3's joined ops run as before: the normed 1x1 conv, then halo_conv.
  const std::string d = describe<models::DenseNet121, DType::f16>(256);
  INFO(d);
  std::size_t joined = 0;
  for (std::size_t at = d.find(": strata bottleneck + conv"); at != std::string::npos;
       at = d.find(": strata bottleneck + conv", at + 1)) {
    ++joined;
  }
  CHECK(joined == 16);
  CHECK(d.find("features.denseblock4.denselayer1.norm1+relu1+conv1+norm2+relu2+conv2: strata bottleneck + conv (the "
               "batch norm, the 1x1 conv and the 3x3 conv as one kernel, the bottleneck's 128 channels kept in shared "
               "memory; mma.sync, 16 warps; tiles of 2 image(s), writing channels 512..543 of a concat") !=
        std::string::npos);
  CHECK(d.find("features.denseblock3.denselayer1.norm1+relu1+conv1+norm2+relu2+conv2: strata batch norm + 1x1 conv") !=
        std::string::npos);
  CHECK(d.find("features.denseblock4.denselayer16.norm1+relu1+conv1+norm2+relu2+conv2: strata bottleneck + conv") !=
        std::string::npos);
}

namespace {
// The cluster form with clusters of `cs` blocks in `ng` n-groups, an image in `bands` of them, on
// every joined op it fits (at the largest of `batches`, at most bottleneck_cluster_max_batch, with
// the joins asked for).
template <class Net, DType P>
void check_bottleneck_cluster(std::uint64_t seed, int cs, int ng, const std::vector<int>& batches, std::size_t count,
                              int bands = 1) {
  check_joined<Net, P>(
      seed, *std::max_element(batches.begin(), batches.end()), true,
      [cs, ng, bands](const cuda::OpDesc& op) -> std::optional<cuda::Variant> {
        if (cuda::tactics::bneck::cluster_plan(op, cs, ng, bands).cs == 0) {
          return std::nullopt;
        }
        return cuda::Variant{"bottleneck_conv", cs, ng, bands > 1 ? bands : 0};
      },
      (bands > 1 ? " rows of an image a cluster of " : "an image a cluster of ") + std::to_string(cs) +
          " blocks of 16 warps: " + std::to_string(ng) + " groups of ",
      batches, count);
}
}  // namespace

// Written in session 43 without a GPU: not yet run.
TEST_CASE("bottleneck_conv's cluster form: a DenseNet layer as one kernel, an image a thread-block cluster") {
  if (cuda::device_arch() < 90) {
    MESSAGE("bottleneck_conv's cluster form skipped: compute capability below 9.0");
    return;
  }
  // ClusterBneckNet: every form on both layers (5x5 and 3x3, partial reduction steps, an empty
  // pixel group and a halo two groups deep in clusters of 16 with 2 n-groups).
  for (const auto& [cs, ng] : {std::pair{8, 2}, std::pair{8, 4}, std::pair{16, 2}, std::pair{16, 4}}) {
    check_bottleneck_cluster<ClusterBneckNet, DType::f16>(200 + static_cast<std::uint64_t>(cs + ng), cs, ng, {1, 3, 8},
                                                          2);
  }
  check_bottleneck_cluster<ClusterBneckNet, DType::bf16>(220, 16, 2, {1, 3}, 2);
  // In bands (a 7-row map in 2 bands of 4 rows and 4 of 2: the 5x5 conv's halo computed by both
  // bands it borders, two rows deep).
  check_bottleneck_cluster<ClusterBneckNet, DType::f16>(225, 16, 2, {1, 3}, 2, 2);
  check_bottleneck_cluster<ClusterBneckNet, DType::f16>(226, 8, 4, {1, 3}, 2, 4);
  check_bottleneck_cluster<ClusterBneckNet, DType::bf16>(227, 16, 4, {2}, 2, 4);
  // DenseNet-121: blocks 2 to 4 in 4 n-groups (52 layers: 28x28 maps with a ring of 2 steps,
  // 14x14, 7x7), blocks 3 and 4 in 2 (40: block 2's partial sums do not fit); every layer in 4
  // bands in clusters of 8 (58: offered on the 56x56 and 28x28 maps, forceable on all).
  check_bottleneck_cluster<models::DenseNet121, DType::f16>(221, 16, 4, {1, 2}, 52);
  check_bottleneck_cluster<models::DenseNet121, DType::f16>(228, 8, 4, {1, 2}, 58, 4);
  check_bottleneck_cluster<models::DenseNet121, DType::f16>(222, 8, 2, {1}, 40);
  check_bottleneck_cluster<models::DenseNet121, DType::bf16>(223, 16, 2, {1}, 40);
  if (!strata_test::quick_run()) {
    check_bottleneck_cluster<models::DenseNet121, DType::f16>(224, 8, 4, {1}, 52);
  }
  // Joined but not run by it (the heuristic claims no cluster form): the joined ops run as the
  // two ops on the variants each has alone — the same output, to the bit, as without the joins.
  const auto w = Weights<models::DenseNet121>::random(225);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 325);
  std::vector<float> apart(1000, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> joined(1000, std::numeric_limits<float>::quiet_NaN());
  cuda::EngineOptions opt;
  opt.max_batch = 1;
  opt.fused_max_batch = 0;
  cuda::Engine<models::DenseNet121, DType::f16>(w, opt).infer(in, apart, 1);
  opt.bottleneck_clusters = true;
  cuda::Engine<models::DenseNet121, DType::f16> e(w, opt);
  e.infer(in, joined, 1);
  const std::string d = e.describe(1);
  INFO(d);
  std::size_t n = 0;
  for (std::size_t at = d.find("norm1+relu1+conv1+norm2+relu2+conv2: "); at != std::string::npos;
       at = d.find("norm1+relu1+conv1+norm2+relu2+conv2: ", at + 1)) {
    ++n;
  }
  CHECK(n == 58);  // (every layer)
  CHECK(joined == apart);
}

TEST_CASE("the depthwise strip kernel, forced: 3x3 at strides 1 and 2, strips cut by the map, f(0) != 0 on load") {
  check_depthwise_forced<DepthwiseNet, DType::f16>(2, 17, {1, 3, 17}, 80);
  check_depthwise_forced<DepthwiseNet, DType::bf16>(2, 17, {1, 3, 17}, 81);
  check_depthwise_forced<DeferredNet, DType::f16>(2, 120, {120, 5}, 82);
  check_depthwise_forced<RowsNet, DType::f16>(2, 17, {1, 3, 17}, 83);
  check_depthwise_forced<RowsNet, DType::bf16>(2, 17, {1, 17}, 84);
  // All 17 of MobileNetV2's depthwise convs (ReLU6 on load; maps 112 to 7, 32 to 960 channels:
  // 4 to 15 vectors a block), as the heuristic runs them at batch 256.
  check_depthwise_forced<models::MobileNetV2, DType::f16>(2, 2, {2}, 85);
  // EfficientNet-B0's 3x3 ones (SiLU on load, strides 1 and 2, 32 to 1152 channels: 4 to 16
  // vectors a block).
  check_depthwise_forced<models::EfficientNetB0, DType::f16>(2, 2, {2}, 86);
}

TEST_CASE("MobileNetV2's and EfficientNet-B0's stems with tiles for a small batch (tile_conv math 2)") {
  // The 3x3/2 stem over 224x224 (112x112 outputs, no pool) with tiles for one image on this GPU's
  // SMs (tile::choose_for), from the input step's map, on mma.sync and on wgmma where the GPU has
  // it, against the CPU at batches 1 and 5 (forced; passed on an H200 in session 29).
  using strata_test::check_forced;
  const auto stem = [](const cuda::OpDesc& op) { return op.conv.s2d; };
  const char* small = "(sized for a small batch)";
  {  // claimed by the heuristic at batches <= tile::small_batch (session 30), reading the
     // caller's input: MobileNetV2 at 4 images and at 1, against the CPU
    constexpr int kB = cuda::tactics::tile::small_batch;
    using Net = models::MobileNetV2;
    const auto w = Weights<Net>::random(133);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(kB) * Net::input_spec.shape.numel(), 233);
    const auto ref = strata_test::cpu_reference<Net>(w, in, kB);
    cuda::EngineOptions opt;
    opt.max_batch = kB;
    opt.tuning = cuda::Tuning::heuristic;
    opt.fused_max_batch = 0;
    cuda::Engine<Net, DType::f16> e(w, opt);
    for (const int b : {kB, 1}) {
      const std::string d = e.describe(b);
      INFO(d);
      const std::size_t at = d.find("features.0.conv0");
      REQUIRE(at != std::string::npos);
      const std::string line = d.substr(at, d.find('\n', at) - at);
      CHECK(line.find("strata tiled tensor-core conv") != std::string::npos);
      CHECK(line.find(small) != std::string::npos);
      CHECK(line.find("reads the caller's input") != std::string::npos);
      CHECK(line.find(cuda::tactics::mma::wgmma_device() ? "(wgmma" : "(mma.sync") != std::string::npos);
      CHECK(d.find("\ninput: ") == std::string::npos);  // no input step
      CHECK(d.rfind("input: ", 0) != 0);
      std::vector<float> out(static_cast<std::size_t>(b) * 1000, std::numeric_limits<float>::quiet_NaN());
      e.infer(in, out, b);
      const double err = strata_test::rel_error(out, ref, out.size());
      MESSAGE("MobileNetV2 f16 heuristic, batch " << b << " (stem on tile_conv math 2): rel. error " << err);
      CHECK(err < strata_test::tolerance(DType::f16));
    }
  }
  check_forced<models::MobileNetV2, DType::f16>("tile_small_mv2", 131, cuda::Variant{"tile_conv", 0, 2, 0}, small,
                                                nullptr, stem);
  if (cuda::tactics::mma::wgmma_device()) {
    check_forced<models::EfficientNetB0, DType::f16>("tile_small_eb0", 132, cuda::Variant{"tile_conv", 3, 2, 0},
                                                     small, "mma.sync", stem);
  }
}
