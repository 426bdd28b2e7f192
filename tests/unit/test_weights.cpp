// Weights<Net>: a weight file is checked against the network's parameter list, every problem is
// named at once, and nothing is half-loaded.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <filesystem>
#include <string>

#include <strata/models/mnist_cnn.hpp>
#include <strata/weights/weights.hpp>

using namespace strata;

namespace {

using Net = decltype(input<2, 4, 4> | conv<3, 3, ConvOpts{.padding = 1}> | batch_norm | relu |
                     flatten | named<"head">(dense<5>));

TensorToWrite f32_tensor(std::string name, std::vector<std::int64_t> shape, float fill = 0.25f) {
  std::size_t n = 1;
  for (auto d : shape) {
    n *= static_cast<std::size_t>(d);
  }
  std::vector<float> v(n, fill);
  TensorToWrite t{std::move(name), StDType::f32, std::move(shape), {}};
  t.data.resize(n * 4);
  std::memcpy(t.data.data(), v.data(), n * 4);
  return t;
}

std::vector<TensorToWrite> good_tensors() {
  return {f32_tensor("0.weight", {3, 2, 3, 3}), f32_tensor("0.bias", {3}),
          f32_tensor("1.weight", {3}),          f32_tensor("1.bias", {3}),
          f32_tensor("1.running_mean", {3}),    f32_tensor("1.running_var", {3}, 1.0f),
          f32_tensor("head.weight", {5, 48}),   f32_tensor("head.bias", {5})};
}

std::string load_error(const std::vector<TensorToWrite>& tensors) {
  try {
    (void)Weights<Net>::from(SafetensorsFile::from_bytes(encode_safetensors(tensors), "test.safetensors"));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a complete file loads, num_batches_tracked is optional, values are read") {
  auto tensors = good_tensors();
  tensors[1] = f32_tensor("0.bias", {3}, -1.5f);
  const auto w = Weights<Net>::from(SafetensorsFile::from_bytes(encode_safetensors(tensors), "t"));
  CHECK(w["0.bias"].size() == 3);
  CHECK(w["0.bias"][2] == -1.5f);
  CHECK(w["head.weight"].size() == 5 * 48);
  CHECK_THROWS_WITH_AS((void)w["nope"], doctest::Contains("no parameter named 'nope'"), Error);

  TensorToWrite nbt{"1.num_batches_tracked", StDType::i64, {}, std::vector<std::byte>(8)};
  tensors.push_back(nbt);
  CHECK_NOTHROW((void)Weights<Net>::from(SafetensorsFile::from_bytes(encode_safetensors(tensors), "t")));
}

TEST_CASE("f16 and bf16 weights are converted to f32") {
  auto tensors = good_tensors();
  tensors[7].dtype = StDType::f16;
  tensors[7].data.resize(5 * 2);
  for (int i = 0; i < 5; ++i) {
    const std::uint16_t h = float_to_half(0.5f * static_cast<float>(i));
    std::memcpy(tensors[7].data.data() + 2 * i, &h, 2);
  }
  tensors[4].dtype = StDType::bf16;
  tensors[4].data.resize(3 * 2);
  for (int i = 0; i < 3; ++i) {
    const std::uint16_t b = float_to_bf16(-2.0f);
    std::memcpy(tensors[4].data.data() + 2 * i, &b, 2);
  }
  const auto w = Weights<Net>::from(SafetensorsFile::from_bytes(encode_safetensors(tensors), "t"));
  CHECK(w["head.bias"][3] == 1.5f);
  CHECK(w["1.running_mean"][0] == -2.0f);
}

TEST_CASE("a missing tensor is named with its expected shape") {
  auto tensors = good_tensors();
  tensors.erase(tensors.begin() + 5);  // 1.running_var
  const std::string e = load_error(tensors);
  CHECK(e.find("test.safetensors") != std::string::npos);
  CHECK(e.find("missing tensor '1.running_var' (expected shape [3])") != std::string::npos);
}

TEST_CASE("a wrong shape names the tensor, what was found and what was expected") {
  auto tensors = good_tensors();
  tensors[6] = f32_tensor("head.weight", {5, 47});
  const std::string e = load_error(tensors);
  CHECK(e.find("tensor 'head.weight' has shape [5, 47], expected [5, 48]") != std::string::npos);
}

TEST_CASE("a wrong dtype is named") {
  auto tensors = good_tensors();
  tensors[1].dtype = StDType::i32;
  const std::string e = load_error(tensors);
  CHECK(e.find("tensor '0.bias' has dtype I32, expected F32, F16, BF16 or F64") != std::string::npos);
}

TEST_CASE("an unexpected tensor is named") {
  auto tensors = good_tensors();
  tensors.push_back(f32_tensor("head.extra", {2}));
  const std::string e = load_error(tensors);
  CHECK(e.find("unexpected tensor 'head.extra' [2]") != std::string::npos);
}

TEST_CASE("all problems are reported at once") {
  auto tensors = good_tensors();
  tensors.erase(tensors.begin());                   // 0.weight missing
  tensors[0] = f32_tensor("0.bias", {4});           // wrong shape
  tensors.push_back(f32_tensor("fc.weight", {1}));  // unexpected
  const std::string e = load_error(tensors);
  CHECK(e.find("3 problems") != std::string::npos);
  CHECK(e.find("missing tensor '0.weight'") != std::string::npos);
  CHECK(e.find("tensor '0.bias' has shape [4], expected [3]") != std::string::npos);
  CHECK(e.find("unexpected tensor 'fc.weight'") != std::string::npos);
}

TEST_CASE("a truncated file fails before anything is bound") {
  const auto dir = std::filesystem::temp_directory_path() / "strata_test_weights";
  std::filesystem::create_directories(dir);
  const auto path = dir / "truncated.safetensors";
  auto bytes = encode_safetensors(good_tensors());
  bytes.resize(bytes.size() - 10);
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  try {
    (void)Weights<Net>::load(path);
    FAIL("a truncated file loaded");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK(what.find(path.string()) != std::string::npos);
    CHECK(what.find("head.bias") != std::string::npos);
    CHECK(what.find("truncated") != std::string::npos);
  }
  CHECK_THROWS_AS((void)Weights<Net>::load(dir / "does_not_exist.safetensors"), Error);
}

TEST_CASE("NaN and infinite weights are refused, every such tensor named") {
  auto tensors = good_tensors();
  tensors[0] = f32_tensor("0.weight", {3, 2, 3, 3}, std::numeric_limits<float>::quiet_NaN());
  auto more = tensors;
  more[7] = f32_tensor("head.bias", {5}, std::numeric_limits<float>::infinity());
  const std::string e = load_error(more);
  CHECK(e.find("'0.weight' holds a NaN or infinity") != std::string::npos);
  CHECK(e.find("'head.bias' holds a NaN or infinity") != std::string::npos);  // both, at once
}

TEST_CASE("save then load round-trips, as PyTorch's load_state_dict would read it") {
  const auto w = Weights<models::MnistCnn>::random(3);
  const auto path = std::filesystem::temp_directory_path() / "strata_mnist_roundtrip.safetensors";
  w.save(path);
  const auto back = Weights<models::MnistCnn>::load(path);
  for (int i = 0; i < models::MnistCnn::graph.num_params; ++i) {
    const auto a = w.param(i);
    const auto b = back.param(i);
    REQUIRE(a.size() == b.size());
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
  }
  const auto file = SafetensorsFile::open(path);
  REQUIRE(file.find("1.num_batches_tracked") != nullptr);
  CHECK(file.find("1.num_batches_tracked")->dtype == StDType::i64);
}

TEST_CASE("tensors() lists every parameter as save() writes it: state_dict names, shapes, values") {
  const auto w = Weights<models::MnistCnn>::random(5);
  const auto tensors = w.tensors();
  const auto& g = models::MnistCnn::graph;
  REQUIRE(static_cast<int>(tensors.size()) == g.num_params);
  for (int i = 0; i < g.num_params; ++i) {
    const auto& p = g.params[i];
    const TensorToWrite& t = tensors[static_cast<std::size_t>(i)];
    CAPTURE(t.name);
    CHECK(t.name == p.name.view());
    CHECK(std::equal(t.shape.begin(), t.shape.end(), p.spec.dims, p.spec.dims + p.spec.rank));
    if (p.spec.integer) {
      CHECK(t.dtype == StDType::i64);
      continue;
    }
    REQUIRE(t.dtype == StDType::f32);
    const auto v = w.param(i);
    REQUIRE(t.data.size() == v.size() * sizeof(float));
    CHECK(std::memcmp(t.data.data(), v.data(), t.data.size()) == 0);
  }
}
