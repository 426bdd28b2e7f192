#pragma once
// Shared by the torchvision name tests: checks a network's declared parameters against a
// state_dict manifest (names, shapes, dtypes as PyTorch writes them; made by
// tests/fixtures/make_state_dict_manifests.py or tests/torchvision/make_models_io.py --manifests).
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <strata/pipeline/pipeline.hpp>

/// Every tensor of the manifest, by name, with the same shape and dtype, and no other parameter;
/// the learnable total equal to PyTorch's.
template <class Net>
void check_state_dict_manifest(const nlohmann::json& manifest) {
  using namespace strata;
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
