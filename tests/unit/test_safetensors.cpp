// strata/weights/safetensors.hpp: round trips, and one test per kind of malformed file.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "strata/weights/safetensors.hpp"

namespace {

using strata::SafetensorsFile;
using strata::StDType;
using strata::TensorToWrite;

/// Little-endian bytes of the given values (the host is little-endian).
template <class T>
std::vector<std::byte> le_bytes(std::initializer_list<T> values) {
  std::vector<std::byte> out(values.size() * sizeof(T));
  std::size_t i = 0;
  for (T v : values) {
    std::memcpy(out.data() + i, &v, sizeof(T));
    i += sizeof(T);
  }
  return out;
}

/// A file made by hand: the u64 length of `header`, `header`, then `data_size` zero bytes.
std::vector<std::byte> raw_file(const std::string& header, std::size_t data_size) {
  std::vector<std::byte> out(8 + header.size() + data_size);
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

/// The message from_bytes throws for `bytes`, or "" when it accepts them.
std::string error_of(std::vector<std::byte> bytes) {
  try {
    (void)SafetensorsFile::from_bytes(std::move(bytes), "bad.safetensors");
  } catch (const strata::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Checks that `header` over `data_size` bytes is rejected with a message that starts with the
/// source and contains every one of `parts`.
void check_rejected(const std::string& header, std::size_t data_size,
                    std::initializer_list<std::string> parts) {
  const std::string msg = error_of(raw_file(header, data_size));
  INFO("message: " << msg);
  REQUIRE_FALSE(msg.empty());
  CHECK(msg.rfind("bad.safetensors: ", 0) == 0);
  for (const std::string& part : parts) {
    CHECK_MESSAGE(contains(msg, part), "missing: " << part);
  }
}

const std::string good_entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";

}  // namespace

TEST_CASE("safetensors: dtype names and sizes") {
  CHECK(strata::dtype_name(StDType::bf16) == "BF16");
  CHECK(strata::dtype_name(StDType::boolean) == "BOOL");
  CHECK(strata::dtype_size(StDType::f64) == 8);
  CHECK(strata::dtype_size(StDType::f16) == 2);
  CHECK(strata::dtype_size(StDType::boolean) == 1);
  CHECK(strata::parse_st_dtype("I16") == StDType::i16);
  CHECK_FALSE(strata::parse_st_dtype("f32").has_value());
  static_assert(strata::parse_st_dtype("F32") == StDType::f32);
}

TEST_CASE("safetensors: round trip F32, F16, BF16, F64 with values checked by hand") {
  // F32 1.5 = 0x3fc00000, -2 = 0xc0000000, 0.25 = 0x3e800000.
  // F16 1.5 = 0x3e00, -2 = 0xc000, 65504 (largest half) = 0x7bff, 2^-24 (smallest) = 0x0001.
  // BF16 1.5 = 0x3fc0, -2 = 0xc000, 2^100 = 0x7180.
  const std::vector<TensorToWrite> tensors = {
      {"fc.weight",
       StDType::f32,
       {1, 3},
       le_bytes<std::uint32_t>({0x3fc00000u, 0xc0000000u, 0x3e800000u})},
      {"conv.half",
       StDType::f16,
       {2, 2},
       le_bytes<std::uint16_t>({0x3e00, 0xc000, 0x7bff, 0x0001})},
      {"a.bf16", StDType::bf16, {3}, le_bytes<std::uint16_t>({0x3fc0, 0xc000, 0x7180})},
      {"scalar", StDType::f64, {}, le_bytes<double>({-0.5})},
      {"empty", StDType::f32, {0, 4}, {}},
  };
  const std::vector<std::byte> bytes = strata::encode_safetensors(tensors, {{"format", "pt"}});

  // The writer pads the header with spaces so the data section starts 8-byte aligned.
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  CHECK(header_len % 8 == 0);
  CHECK(bytes.size() == 8 + header_len + 12 + 8 + 6 + 8);

  const auto file = SafetensorsFile::from_bytes(bytes, "mem");
  CHECK(file.source() == "mem");
  CHECK(file.metadata().at("format") == "pt");
  REQUIRE(file.tensors().size() == 5);
  // Header order is kept (not sorted by name).
  CHECK(file.tensors()[0].name == "fc.weight");
  CHECK(file.tensors()[1].name == "conv.half");
  CHECK(file.tensors()[4].name == "empty");

  const strata::TensorInfo* w = file.find("fc.weight");
  REQUIRE(w != nullptr);
  CHECK(w->dtype == StDType::f32);
  CHECK(w->shape == std::vector<std::int64_t>{1, 3});
  CHECK(w->numel() == 3);
  CHECK(w->begin == 0);
  CHECK(w->end == 12);
  CHECK(file.to_f32(*w) == std::vector<float>{1.5f, -2.0f, 0.25f});

  CHECK(file.to_f32(file.at("conv.half")) ==
        std::vector<float>{1.5f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)});
  CHECK(file.to_f32(file.at("a.bf16")) == std::vector<float>{1.5f, -2.0f, std::ldexp(1.0f, 100)});
  CHECK(file.at("scalar").numel() == 1);
  CHECK(file.to_f32(file.at("scalar")) == std::vector<float>{-0.5f});
  CHECK(file.at("empty").numel() == 0);
  CHECK(file.to_f32(file.at("empty")).empty());

  // bytes() is the tensor's slice of the data section, unchanged.
  const auto raw = file.bytes(file.at("conv.half"));
  REQUIRE(raw.size() == 8);
  CHECK(std::memcmp(raw.data(), tensors[1].data.data(), 8) == 0);

  CHECK(file.find("missing") == nullptr);
  CHECK_THROWS_WITH_AS((void)file.at("missing"), doctest::Contains("mem: no tensor named missing"),
                       strata::Error);
}

TEST_CASE("safetensors: F64 values beyond float's range become infinities") {
  const double big = 1e300;
  const auto file = SafetensorsFile::from_bytes(
      strata::encode_safetensors({{"d", StDType::f64, {3}, le_bytes<double>({big, -big, 3.0})}}),
      "mem");
  const auto v = file.to_f32(file.at("d"));
  CHECK(v[0] == std::numeric_limits<float>::infinity());
  CHECK(v[1] == -std::numeric_limits<float>::infinity());
  CHECK(v[2] == 3.0f);
}

TEST_CASE("safetensors: to_f32 rejects integer dtypes, naming the tensor") {
  const auto file = SafetensorsFile::from_bytes(
      strata::encode_safetensors(
          {{"bn.num_batches_tracked", StDType::i64, {}, le_bytes<std::int64_t>({7})}}),
      "model.safetensors");
  const auto& t = file.at("bn.num_batches_tracked");
  CHECK(file.bytes(t).size() == 8);
  CHECK_THROWS_WITH_AS(
      (void)file.to_f32(t),
      doctest::Contains("model.safetensors: bn.num_batches_tracked: cannot convert "
                        "dtype I64"),
      strata::Error);
}

TEST_CASE("safetensors: bytes() rejects a TensorInfo whose range is outside the file") {
  const auto file = SafetensorsFile::from_bytes(raw_file("{\"x\":" + good_entry + "}", 8), "mem");
  strata::TensorInfo forged = file.at("x");
  forged.end = 1000;
  CHECK_THROWS_AS((void)file.bytes(forged), strata::Error);
  CHECK_THROWS_AS((void)file.to_f32(forged), strata::Error);
}

TEST_CASE("safetensors: write_safetensors and open") {
  const auto path = std::filesystem::temp_directory_path() / "strata_test_safetensors.safetensors";
  strata::write_safetensors(path, {{"w", StDType::f32, {2}, le_bytes<float>({1.0f, 2.0f})}});
  const auto file = SafetensorsFile::open(path);
  CHECK(file.source() == path.string());
  CHECK(file.to_f32(file.at("w")) == std::vector<float>{1.0f, 2.0f});
  std::filesystem::remove(path);
  const std::string expected = path.string() + ": cannot open";
  CHECK_THROWS_WITH_AS((void)SafetensorsFile::open(path), doctest::Contains(expected.c_str()),
                       strata::Error);
}

TEST_CASE("safetensors: a file with zero tensors is valid") {
  const auto file = SafetensorsFile::from_bytes(raw_file("{}", 0), "mem");
  CHECK(file.tensors().empty());
  CHECK(file.metadata().empty());
}

TEST_CASE("safetensors: encode_safetensors rejects bad input") {
  CHECK_THROWS_WITH_AS(
      (void)strata::encode_safetensors({{"w", StDType::f32, {3}, le_bytes<float>({1.0f})}}),
      doctest::Contains("w: 4 bytes of data but F32 [3] needs 12"), strata::Error);
  CHECK_THROWS_WITH_AS(
      (void)strata::encode_safetensors({{"w", StDType::f32, {}, le_bytes<float>({1.0f})},
                                        {"w", StDType::f32, {}, le_bytes<float>({1.0f})}}),
      doctest::Contains("w: duplicate"), strata::Error);
  CHECK_THROWS_AS((void)strata::encode_safetensors({{"w", StDType::f32, {-1}, {}}}), strata::Error);
  CHECK_THROWS_WITH_AS((void)strata::encode_safetensors({{"bad\xff", StDType::f32, {0}, {}}}),
                       doctest::Contains("is not valid UTF-8"), strata::Error);
  // A name that is both unprintable and invalid UTF-8 must still give a strata::Error.
  CHECK_THROWS_WITH_AS((void)strata::encode_safetensors({{"\n\xff", StDType::f32, {0}, {}}}),
                       doctest::Contains("is not valid UTF-8"), strata::Error);
}

// --- malformed files: one test per problem ---------------------------------------------------

TEST_CASE("safetensors: file shorter than 8 bytes") {
  const std::string msg = error_of(std::vector<std::byte>(5));
  CHECK(contains(msg, "bad.safetensors: "));
  CHECK(contains(msg, "5 bytes long, too short"));
  CHECK(contains(error_of({}), "0 bytes long"));
}

TEST_CASE("safetensors: header length larger than the file") {
  auto bytes = raw_file("{}", 0);
  const std::uint64_t n = 100;
  std::memcpy(bytes.data(), &n, 8);
  const std::string msg = error_of(bytes);
  CHECK(contains(msg, "header length 100 runs past the end of the file (2 bytes"));
  CHECK(contains(msg, "truncated"));
}

TEST_CASE("safetensors: absurd header length") {
  auto bytes = raw_file("{}", 0);
  const std::uint64_t n = std::numeric_limits<std::uint64_t>::max();
  std::memcpy(bytes.data(), &n, 8);
  CHECK(contains(error_of(bytes), "header length 18446744073709551615 is over the 100000000-byte"));
}

TEST_CASE("safetensors: header not valid JSON") {
  check_rejected("{\"x\": ", 0, {"the header is not valid JSON"});
  check_rejected("", 0, {"the header is not valid JSON"});
  check_rejected("{} trailing", 0, {"the header is not valid JSON"});
  check_rejected("{\"bad\xff\": 1}", 0, {"the header is not valid JSON"});  // invalid UTF-8
}

TEST_CASE("safetensors: header not an object") {
  check_rejected("[1, 2]", 0, {"the header is an array, not a JSON object"});
  check_rejected("42", 0, {"the header is a number, not a JSON object"});
}

TEST_CASE("safetensors: entry not an object") {
  check_rejected(R"({"fc.weight": [1, 2]})", 0, {"fc.weight: entry is an array, not an object"});
}

TEST_CASE("safetensors: missing or ill-typed dtype") {
  check_rejected(R"({"fc.bias": {"shape":[2],"data_offsets":[0,8]}})", 8,
                 {"fc.bias: missing \"dtype\""});
  check_rejected(R"({"fc.bias": {"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8,
                 {"fc.bias: \"dtype\" is a number, not a string"});
}

TEST_CASE("safetensors: unknown dtype") {
  check_rejected(R"({"fc.bias": {"dtype":"F12","shape":[2],"data_offsets":[0,8]}})", 8,
                 {"fc.bias: unknown dtype \"F12\""});
}

TEST_CASE("safetensors: missing or ill-typed shape") {
  check_rejected(R"({"conv1.weight": {"dtype":"F32","data_offsets":[0,8]}})", 8,
                 {"conv1.weight: missing \"shape\""});
  check_rejected(R"({"conv1.weight": {"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8,
                 {"conv1.weight: \"shape\" is a string, not an array"});
  check_rejected(R"({"conv1.weight": {"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8,
                 {"conv1.weight: shape[0] is 2.5, not an integer"});
  check_rejected(R"({"conv1.weight": {"dtype":"F32","shape":[1,"2"],"data_offsets":[0,8]}})", 8,
                 {"conv1.weight: shape[1] is \"2\", not an integer"});
  check_rejected(R"({"conv1.weight": {"dtype":"F32","shape":[9223372036854775808],)"
                 R"("data_offsets":[0,8]}})",
                 8, {"conv1.weight: shape[0] is 9223372036854775808, too large"});
}

TEST_CASE("safetensors: negative dimension") {
  check_rejected(R"({"conv1.weight": {"dtype":"F32","shape":[2,-3],"data_offsets":[0,8]}})", 8,
                 {"conv1.weight: shape[1] is -3: dimensions must be non-negative"});
}

TEST_CASE("safetensors: numel * element size overflows") {
  check_rejected(R"({"big": {"dtype":"F32","shape":[4294967296,4294967296],)"
                 R"("data_offsets":[0,8]}})",
                 8, {"big: shape [4294967296, 4294967296] of F32 needs more bytes than fit in 64"});
  // 2^62 elements fit 64 bits but 2^62 * 4 bytes do not.
  check_rejected(R"({"big": {"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})",
                 8, {"big: shape [4611686018427387904] of F32 needs more bytes"});
  // A zero dimension makes it empty, not an overflow.
  const auto file = SafetensorsFile::from_bytes(
      raw_file(R"({"e": {"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})",
               0),
      "mem");
  CHECK(file.at("e").numel() == 0);
}

TEST_CASE("safetensors: missing or ill-typed data_offsets") {
  check_rejected(R"({"fc.bias": {"dtype":"F32","shape":[2]}})", 8,
                 {"fc.bias: missing \"data_offsets\""});
  check_rejected(R"({"fc.bias": {"dtype":"F32","shape":[2],"data_offsets":{"a":1}}})", 8,
                 {"fc.bias: \"data_offsets\" is an object, not an array [begin, end]"});
  check_rejected(R"({"fc.bias": {"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}})", 16,
                 {"fc.bias: \"data_offsets\" has 3 elements, not 2"});
  check_rejected(R"({"fc.bias": {"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8,
                 {"fc.bias: data_offsets[0] is -8, not a non-negative integer"});
  check_rejected(R"({"fc.bias": {"dtype":"F32","shape":[2],"data_offsets":[0,null]}})", 8,
                 {"fc.bias: data_offsets[1] is null, not a non-negative integer"});
}

TEST_CASE("safetensors: end before begin") {
  check_rejected(R"({"fc.bias": {"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8,
                 {"fc.bias: data_offsets [8, 0] end before they begin"});
}

TEST_CASE("safetensors: offsets past the end of the data section (truncated file)") {
  check_rejected(
      R"({"layer1.0.conv1.weight": {"dtype":"F32","shape":[25],"data_offsets":[0,100]}})", 64,
      {"layer1.0.conv1.weight: data_offsets [0, 100] run past the end of the data section "
       "(64 bytes): the file is truncated"});
  // Offsets near 2^64 must not wrap around.
  check_rejected(R"({"x": {"dtype":"U8","shape":[0],)"
                 R"("data_offsets":[18446744073709551615,18446744073709551615]}})",
                 8, {"x: data_offsets [18446744073709551615, 18446744073709551615] run past"});
}

TEST_CASE("safetensors: byte count does not match shape and dtype") {
  check_rejected(R"({"fc.weight": {"dtype":"F16","shape":[2,3],"data_offsets":[0,8]}})", 8,
                 {"fc.weight: data_offsets [0, 8] hold 8 bytes but F16 [2, 3] needs 12"});
}

TEST_CASE("safetensors: overlapping tensors") {
  check_rejected(R"({"a": {"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                 R"( "b": {"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                 16, {"b: bytes [8, 16) overlap those of a [0, 16)"});
  // An overlap with a tensor that is not the previous one in offset order is found too.
  check_rejected(R"({"big": {"dtype":"U8","shape":[100],"data_offsets":[0,100]},)"
                 R"( "s1": {"dtype":"U8","shape":[10],"data_offsets":[10,20]},)"
                 R"( "s2": {"dtype":"U8","shape":[10],"data_offsets":[30,40]}})",
                 100, {"s1: bytes [10, 20) overlap those of big", "s2: bytes [30, 40) overlap"});
  // Touching ranges and empty tensors do not overlap.
  CHECK(error_of(raw_file(R"({"a": {"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"( "z": {"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                          R"( "b": {"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                          16))
            .empty());
}

TEST_CASE("safetensors: duplicate tensor names") {
  check_rejected(R"({"fc.weight": )" + good_entry + R"(, "fc.weight": )" + good_entry + "}", 8,
                 {"fc.weight: duplicate tensor name (it appears 2 times"});
  check_rejected(R"({"fc.weight": {"dtype":"F32","dtype":"F16","shape":[2],)"
                 R"("data_offsets":[0,8]}})",
                 8, {"fc.weight: duplicate key \"dtype\""});
}

TEST_CASE("safetensors: __metadata__ must map strings to strings") {
  check_rejected(R"({"__metadata__": [1]})", 0, {"__metadata__: entry is an array, not an object"});
  check_rejected(R"({"__metadata__": {"format": 1}})", 0,
                 {"__metadata__: value of \"format\" is a number, not a string"});
}

TEST_CASE("safetensors: names with control characters are quoted in messages") {
  check_rejected(R"({"a\nb": 5})", 0, {"\"a\\nb\": entry is a number"});
}

TEST_CASE("safetensors: every problem of a file is reported in one error") {
  const std::string header =
      R"({"ok": {"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"( "layer1.0.conv1.weight": {"dtype":"F32","shape":[25],"data_offsets":[0,100]},)"
      R"( "fc.bias": {"dtype":"Q4","shape":[-1],"data_offsets":[0,8]},)"
      R"( "bn.weight": {"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
      R"( "ok": {"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string msg = error_of(raw_file(header, 64));
  INFO("message: " << msg);
  CHECK(msg.rfind("bad.safetensors: invalid safetensors file (5 problems):\n", 0) == 0);
  CHECK(contains(msg, "\n  ok: duplicate tensor name"));
  CHECK(contains(msg,
                 "\n  layer1.0.conv1.weight: data_offsets [0, 100] run past the end of the "
                 "data section (64 bytes): the file is truncated"));
  CHECK(contains(msg, "\n  fc.bias: unknown dtype \"Q4\""));
  CHECK(contains(msg, "\n  fc.bias: shape[0] is -1: dimensions must be non-negative"));
  CHECK(contains(msg, "\n  bn.weight: bytes [4, 8) overlap those of ok [0, 8)"));
}

TEST_CASE("safetensors: thousands of problems are counted, not all listed") {
  std::string header = "{";
  for (int i = 0; i < 1000; ++i) {
    header += (i ? ",\"t" : "\"t") + std::to_string(i) + "\": 0";
  }
  header += "}";
  const std::string msg = error_of(raw_file(header, 0));
  CHECK(contains(msg, "(1000 problems)"));
  CHECK(contains(msg, "... and 900 more"));
}
