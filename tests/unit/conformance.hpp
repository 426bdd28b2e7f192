#pragma once
// Shared by the conformance tests: runs a fixture (tests/fixtures, written by make_fixtures.py
// with PyTorch) through the same network declared in the DSL on the CPU reference.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <strata/strata.hpp>

namespace strata::testing {

inline const std::string fixtures = STRATA_FIXTURES_DIR;

/// Whether both files of fixture `name` are present.
inline bool fixture_present(const std::string& name) {
  return std::filesystem::exists(fixtures + "/" + name + ".weights.safetensors") &&
         std::filesystem::exists(fixtures + "/" + name + ".io.safetensors");
}

/// Loads `<name>.weights.safetensors` into Net, runs `<name>.io.safetensors`'s input and returns
/// ‖strata − pytorch‖ / ‖pytorch‖.
template <class Net>
double run_case(const std::string& name) {
  const auto weights = Weights<Net>::load(fixtures + "/" + name + ".weights.safetensors");
  const auto io = SafetensorsFile::open(fixtures + "/" + name + ".io.safetensors");
  const TensorInfo* in_info = io.find("input");
  const TensorInfo* out_info = io.find("output");
  REQUIRE(in_info != nullptr);
  REQUIRE(out_info != nullptr);
  const std::vector<float> in = io.to_f32(*in_info);
  const std::vector<float> expected = io.to_f32(*out_info);
  const int batch = static_cast<int>(in_info->shape.at(0));
  REQUIRE(in.size() == static_cast<std::size_t>(batch * Net::input_spec.shape.numel()));
  REQUIRE(expected.size() == static_cast<std::size_t>(batch * Net::output_spec.shape.numel()));
  CpuEngine<Net> engine(weights, batch);
  std::vector<float> out(expected.size(), std::nanf(""));
  engine.forward(in, out, batch);
  for (float v : out) {
    REQUIRE(std::isfinite(v));
  }
  return relative_error(out, expected);
}

}  // namespace strata::testing
