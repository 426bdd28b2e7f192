// The state_dicts of torchvision's MobileNetV2, EfficientNet-B0, DenseNet-121 and of the U-Net of
// tests/torchvision/unet.py (names, shapes, dtypes as PyTorch writes them) are exactly what
// Strata's declarations expect. The manifests are written by
//   python3 tests/torchvision/make_models_io.py OUT_DIR --manifests tests/fixtures
// where torch and torchvision exist; a manifest not generated yet is reported SKIPPED.
#include <doctest/doctest.h>

#include <fstream>
#include <iostream>
#include <string>

#include <strata/models/densenet.hpp>
#include <strata/models/efficientnet.hpp>
#include <strata/models/mobilenet_v2.hpp>
#include <strata/models/unet.hpp>

#include "state_dict_manifest.hpp"

using namespace strata;

namespace {
template <class Net>
void check_manifest_if_present(const std::string& file) {
  std::ifstream f(std::string(STRATA_FIXTURES_DIR) + "/" + file);
  if (!f.good()) {
    std::cout << "SKIPPED: fixture " << file << " not generated yet (python3 "
              << "tests/torchvision/make_models_io.py OUT_DIR --manifests tests/fixtures)\n";
    return;
  }
  check_state_dict_manifest<Net>(nlohmann::json::parse(f));
}
}  // namespace

TEST_CASE("MobileNetV2 expects torchvision's state_dict exactly") {
  check_manifest_if_present<models::MobileNetV2>("torchvision_mobilenet_v2.state_dict.json");
}

TEST_CASE("EfficientNet-B0 expects torchvision's state_dict exactly") {
  check_manifest_if_present<models::EfficientNetB0>("torchvision_efficientnet_b0.state_dict.json");
}

TEST_CASE("DenseNet-121 expects torchvision's state_dict exactly") {
  check_manifest_if_present<models::DenseNet121>("torchvision_densenet121.state_dict.json");
}

TEST_CASE("The U-Nets expect unet.py's state_dicts exactly") {
  check_manifest_if_present<models::UNet>("unet.state_dict.json");
  check_manifest_if_present<models::UNetBilinear>("unet_bilinear.state_dict.json");
}
