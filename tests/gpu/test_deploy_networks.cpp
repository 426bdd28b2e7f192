// The deployable networks of strata/models on the GPU against the CPU reference, in f32, f16
// and bf16: torchvision's MobileNetV2, EfficientNet-B0 and DenseNet-121 (depthwise convs,
// squeeze-excitation gates, hardswish-free SiLU blocks, growing concatenations) and the U-Nets
// (concat skips, transposed convs, bilinear upsampling). Batches 1, 3 and the maximum (4): the
// CPU reference of DenseNet-121 costs 2.9 GFLOP an image.
#include "gpu_test.hpp"
#include "strata/models/densenet.hpp"
#include "strata/models/efficientnet.hpp"
#include "strata/models/mobilenet_v2.hpp"
#include "strata/models/unet.hpp"

namespace {
const std::vector<int> kBatches{1, 3, 4};
constexpr int kMax = 4;
}  // namespace

TEST_CASE("MobileNetV2 against the CPU reference") {
  strata_test::check_all_precisions<strata::models::MobileNetV2>(kMax, kBatches, "mobilenet_v2", 51);
}

TEST_CASE("EfficientNet-B0 against the CPU reference") {
  strata_test::check_all_precisions<strata::models::EfficientNetB0>(kMax, kBatches,
                                                                    "efficientnet_b0", 52);
}

TEST_CASE("DenseNet-121 against the CPU reference") {
  strata_test::check_all_precisions<strata::models::DenseNet121>(kMax, kBatches, "densenet121", 53);
}

TEST_CASE("U-Nets (transposed convs, bilinear upsampling) against the CPU reference") {
  strata_test::check_all_precisions<strata::models::UNet>(kMax, kBatches, "unet", 54);
  strata_test::check_all_precisions<strata::models::UNetBilinear>(kMax, kBatches, "unet_bilinear", 55);
}
