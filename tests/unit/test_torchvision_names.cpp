// torchvision's ResNet-18/50 state_dicts (names, shapes, dtypes, as torchvision writes them;
// recorded by tests/fixtures/make_state_dict_manifests.py) are exactly what Strata's declarations
// expect: every tensor, by name, with the same shape — so they load with no renaming. (Strata
// lists a block's shortcut before its main branch: it runs first.)
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include <strata/models/resnet.hpp>

using namespace strata;

namespace {
template <class Net>
void check_manifest(const std::string& file) {
  std::ifstream f(std::string(STRATA_FIXTURES_DIR) + "/" + file);
  REQUIRE(f.good());
  const auto manifest = nlohmann::json::parse(f);
  const auto& tensors = manifest.at("tensors");
  CHECK(manifest.at("parameters").get<std::int64_t>() == Net::param_count);
  REQUIRE(static_cast<int>(tensors.size()) == Net::graph.num_params);
  for (const auto& t : tensors) {
    const std::string name = t.at("name").get<std::string>();
    INFO("tensor " << name);
    const int i = Net::graph.find_param(name);
    REQUIRE(i >= 0);
    const ParamEntry& p = Net::graph.params[i];
    const auto shape = t.at("shape").get<std::vector<std::int64_t>>();
    REQUIRE(static_cast<int>(shape.size()) == p.spec.rank);
    for (int d = 0; d < p.spec.rank; ++d) {
      CHECK(shape[static_cast<std::size_t>(d)] == p.spec.dims[d]);
    }
    CHECK((t.at("dtype").get<std::string>() == "int64") == p.spec.integer);
  }
}
}  // namespace

TEST_CASE("ResNet-18 expects torchvision's state_dict exactly") {
  check_manifest<models::ResNet18>("torchvision_resnet18.state_dict.json");
}

TEST_CASE("ResNet-50 expects torchvision's state_dict exactly") {
  check_manifest<models::ResNet50>("torchvision_resnet50.state_dict.json");
}
