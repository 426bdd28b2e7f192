// Conformance with PyTorch for the layers of the networks people deploy (MobileNetV3, U-Net,
// Inception-style blocks, YOLO's SPP): hardswish, hardsigmoid, mish, upsample, adaptive average
// pooling, concat, channel gates (squeeze-excite) and conv_transpose. Each case is a fixture of
// make_fixtures.py; where its files have not been generated yet (they need PyTorch), the case
// says SKIPPED and which command writes them, and CTest reports this file as skipped.
#include "unit/conformance.hpp"

using namespace strata;
using strata::testing::fixture_present;
using strata::testing::run_case;

#define STRATA_CONFORMANCE(name, ...)                                                      \
  TEST_CASE("matches PyTorch: " name) {                                                    \
    using Net = std::remove_cv_t<decltype(__VA_ARGS__)>;                                   \
    if (!fixture_present(name)) {                                                          \
      MESSAGE("SKIPPED: fixture '" name "' is absent from " << strata::testing::fixtures   \
              << "; write it with python3 tests/fixtures/make_fixtures.py (needs torch)"); \
      return;                                                                              \
    }                                                                                      \
    const double err = run_case<Net>(name);                                                \
    INFO("relative error " << err);                                                        \
    CHECK(err < 1e-5);                                                                     \
  }

STRATA_CONFORMANCE("act_hardswish", input<4, 5, 5> | hardswish)
STRATA_CONFORMANCE("act_hardsigmoid", input<4, 5, 5> | hardsigmoid)
STRATA_CONFORMANCE("act_mish", input<4, 5, 5> | mish)
STRATA_CONFORMANCE("conv_bn_hardswish",
                   input<3, 6, 6> | conv<8, 3, ConvOpts{.padding = 1, .bias = false}> | batch_norm | hardswish)
STRATA_CONFORMANCE("adaptive_avg_pool", input<4, 7, 5> | adaptive_avg_pool<3, 2>)
STRATA_CONFORMANCE("adaptive_avg_pool_up", input<2, 3, 3> | adaptive_avg_pool<4>)
STRATA_CONFORMANCE("upsample_nearest", input<3, 4, 5> | upsample<HW{2, 3}>)
STRATA_CONFORMANCE("upsample_bilinear", input<3, 4, 5> | upsample<2, UpsampleOpts{.mode = Interp::bilinear}>)
STRATA_CONFORMANCE("upsample_bilinear_align",
                   input<3, 4, 5> |
                       upsample<HW{3, 2}, UpsampleOpts{.mode = Interp::bilinear, .align_corners = true}>)
STRATA_CONFORMANCE("concat_inception",
                   input<3, 7, 7> | conv<8, 1> |
                       concat(named<"b1">(conv<4, 1> | batch_norm | relu),
                              named<"b2">(conv<4, 1> | relu | conv<6, 3, ConvOpts{.padding = 1}>),
                              named<"b3">(max_pool<3, PoolOpts{.stride = 1, .padding = 1}> | conv<3, 1>),
                              named<"b4">(identity)))
STRATA_CONFORMANCE("concat_spp",
                   input<3, 9, 9> | conv<4, 1> |
                       concat(identity, max_pool<5, PoolOpts{.stride = 1, .padding = 2}>,
                              max_pool<9, PoolOpts{.stride = 1, .padding = 4}>,
                              max_pool<13, PoolOpts{.stride = 1, .padding = 6}>) |
                       conv<5, 1>)
STRATA_CONFORMANCE("concat_nested_flat",
                   input<2, 5, 5> |
                       concat(conv<3, 1>, concat(identity, avg_pool<3, PoolOpts{.stride = 1, .padding = 1}>)) |
                       global_avg_pool | flatten | concat(dense<4>, identity))
STRATA_CONFORMANCE("squeeze_excite", input<8, 5, 5> | named<"">(squeeze_excite<8, 4>))
STRATA_CONFORMANCE("squeeze_excite_mobilenet",
                   input<4, 5, 5> | conv<16, 1, ConvOpts{.bias = false}> | batch_norm | hardswish |
                       squeeze_excite<16, 8, relu, hardsigmoid> | conv<6, 1>)
STRATA_CONFORMANCE("conv_transpose_unet", input<4, 5, 5> | conv_transpose<3, 2, ConvTransposeOpts{.stride = 2}>)
STRATA_CONFORMANCE("conv_transpose_full",
                   input<4, 5, 4> |
                       conv_transpose<6, HW{3, 2},
                                      ConvTransposeOpts{.stride = HW{2, 3}, .padding = HW{1, 0},
                                                        .output_padding = HW{1, 2}, .dilation = HW{2, 1},
                                                        .groups = 2, .bias = false}>)
STRATA_CONFORMANCE("conv_transpose_bn_relu",
                   input<3, 4, 4> | conv_transpose<5, 3, ConvTransposeOpts{.stride = 2, .padding = 1}> |
                       batch_norm | relu)
