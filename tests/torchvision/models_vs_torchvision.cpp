// Loads the state_dicts of torchvision's MobileNetV2, EfficientNet-B0, DenseNet-121 and of the
// U-Net of unet.py (written by make_models_io.py) with no renaming, runs each on the CPU reference
// and compares with PyTorch's output: relative error (‖a − b‖ / ‖b‖) must be below 1e-5.
// Usage: models_vs_torchvision DIR
#include <cmath>
#include <iostream>
#include <string>

#include <strata/models/densenet.hpp>
#include <strata/models/efficientnet.hpp>
#include <strata/models/mobilenet_v2.hpp>
#include <strata/models/unet.hpp>
#include <strata/strata.hpp>

#include "check_against_torch.hpp"

using namespace strata;

using strata_conformance::check;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: models_vs_torchvision DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = true;  // every model runs, whatever the ones before it say
  ok = check<models::MobileNetV2>(dir, "mobilenet_v2") && ok;
  ok = check<models::EfficientNetB0>(dir, "efficientnet_b0") && ok;
  ok = check<models::DenseNet121>(dir, "densenet121") && ok;
  ok = check<models::UNet>(dir, "unet") && ok;
  ok = check<models::UNetBilinear>(dir, "unet_bilinear") && ok;
  return ok ? 0 : 1;
}
