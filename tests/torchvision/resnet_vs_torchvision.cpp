// Loads torchvision's own ResNet-18/50 state_dicts (written by make_resnet_io.py) with no
// renaming, runs them on the CPU reference and compares with torchvision's output: relative
// error must be below 1e-5. Usage: resnet_vs_torchvision DIR
#include <cmath>
#include <iostream>
#include <string>

#include <strata/models/resnet.hpp>
#include <strata/strata.hpp>

#include "check_against_torch.hpp"

using namespace strata;

using strata_conformance::check;

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::cerr << "usage: resnet_vs_torchvision DIR\n";
    return 2;
  }
  const bool r18 = check<models::ResNet18>(argv[1], "resnet18");  // both run, whatever the first says
  const bool r50 = check<models::ResNet50>(argv[1], "resnet50");
  return r18 && r50 ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "resnet_vs_torchvision: " << e.what() << "\n";
  return 1;
}
