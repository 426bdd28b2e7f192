// torchvision's ResNet-18/50 state_dicts (names, shapes, dtypes, as torchvision writes them;
// recorded by tests/fixtures/make_state_dict_manifests.py) are exactly what Strata's declarations
// expect: every tensor, by name, with the same shape — so they load with no renaming. (Strata
// lists a block's shortcut before its main branch: it runs first.)
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include <strata/models/resnet.hpp>

#include "state_dict_manifest.hpp"

using namespace strata;

namespace {
template <class Net>
void check_manifest(const std::string& file) {
  std::ifstream f(std::string(STRATA_FIXTURES_DIR) + "/" + file);
  REQUIRE(f.good());
  check_state_dict_manifest<Net>(nlohmann::json::parse(f));
}
}  // namespace

TEST_CASE("ResNet-18 expects torchvision's state_dict exactly") {
  check_manifest<models::ResNet18>("torchvision_resnet18.state_dict.json");
}

TEST_CASE("ResNet-50 expects torchvision's state_dict exactly") {
  check_manifest<models::ResNet50>("torchvision_resnet50.state_dict.json");
}
