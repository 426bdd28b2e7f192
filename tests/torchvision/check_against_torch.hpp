#pragma once
// The conformance check shared by resnet_vs_torchvision and models_vs_torchvision: load the
// state_dict a make_*_io.py script wrote (no renaming), run the CPU reference on its input and
// compare with PyTorch's output; relative error below 1e-5. Prints one line per model.
#include <cmath>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <strata/strata.hpp>

namespace strata_conformance {

template <class Net>
bool check(const std::string& dir, const std::string& name) {
  using namespace strata;
  try {
    const auto weights = Weights<Net>::load(dir + "/" + name + ".weights.safetensors");
    const auto io = SafetensorsFile::open(dir + "/" + name + ".io.safetensors");
    const auto in = io.to_f32(io.at("input"));
    const auto expected = io.to_f32(io.at("output"));
    const int batch = static_cast<int>(io.at("input").shape.at(0));
    CpuEngine<Net> engine(weights, batch);
    std::vector<float> out(expected.size(), std::nanf(""));
    engine.forward(in, out, batch);
    const double err = relative_error(out, expected);
    const bool ok = err < 1e-5;
    std::cout << name << ": relative error " << err << " against PyTorch"
              << (ok ? "" : " — FAILED (limit 1e-5)") << "\n";
    return ok;
  } catch (const std::exception& e) {
    std::cout << name << ": FAILED: " << e.what() << "\n";
    return false;
  }
}

}  // namespace strata_conformance
