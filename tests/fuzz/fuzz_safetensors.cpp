// libFuzzer target for strata/weights/safetensors.hpp. Run it with scripts/fuzz_safetensors.sh.
// Any input may be rejected with strata::Error; anything else escaping, a sanitizer report, or
// an accepted file that does not survive encode -> decode is a bug.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "strata/weights/safetensors.hpp"

namespace {

/// Re-encodes an accepted file and checks that reading it back gives the same tensors.
void check_round_trip(const strata::SafetensorsFile& file) {
  std::vector<strata::TensorToWrite> tensors;
  for (const strata::TensorInfo& t : file.tensors()) {
    const auto raw = file.bytes(t);
    tensors.push_back({t.name, t.dtype, t.shape, std::vector<std::byte>(raw.begin(), raw.end())});
  }
  std::optional<strata::SafetensorsFile> reread;
  try {
    reread.emplace(strata::SafetensorsFile::from_bytes(
        strata::encode_safetensors(tensors, file.metadata()), "re-encoded"));
  } catch (const strata::Error&) {  // an accepted file must re-encode and read back
    __builtin_trap();
  }
  const strata::SafetensorsFile& again = *reread;
  if (again.tensors().size() != tensors.size() || again.metadata() != file.metadata()) {
    __builtin_trap();
  }
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const strata::TensorInfo& t = again.tensors()[i];
    const auto raw = again.bytes(t);
    if (t.name != tensors[i].name || t.dtype != tensors[i].dtype || t.shape != tensors[i].shape ||
        raw.size() != tensors[i].data.size() ||
        (!raw.empty() && std::memcmp(raw.data(), tensors[i].data.data(), raw.size()) != 0)) {
      __builtin_trap();
    }
  }
}

/// Reads `bytes` as a safetensors file; rejection with strata::Error is the only allowed failure.
void check_file(std::vector<std::byte> bytes) {
  try {
    const auto file = strata::SafetensorsFile::from_bytes(std::move(bytes), "fuzz");
    for (const strata::TensorInfo& t : file.tensors()) {
      if (file.find(t.name) != &t ||
          file.bytes(t).size() != t.numel() * strata::dtype_size(t.dtype)) {
        __builtin_trap();
      }
      const bool floating = t.dtype == strata::StDType::f32 || t.dtype == strata::StDType::f16 ||
                            t.dtype == strata::StDType::bf16 || t.dtype == strata::StDType::f64;
      try {
        if (file.to_f32(t).size() != t.numel() || !floating) {
          __builtin_trap();
        }
      } catch (const strata::Error&) {  // expected for integer dtypes only
        if (floating) {
          __builtin_trap();
        }
      }
    }
    check_round_trip(file);
  } catch (const strata::Error&) {  // a rejected file: expected
  }
}

}  // namespace

/// Each input is tried twice: as a whole file, and as "header JSON, NUL, data section" with the
/// length prefix made to fit, so mutations of the JSON are not all lost to a wrong prefix.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> raw(size);
  if (size != 0) {
    std::memcpy(raw.data(), data, size);
  }
  check_file(raw);

  const auto* nul =
      size != 0 ? static_cast<const std::uint8_t*>(std::memchr(data, 0, size)) : nullptr;
  const std::uint64_t header_len = nul != nullptr ? static_cast<std::uint64_t>(nul - data) : size;
  const std::size_t skip = nul != nullptr ? 1 : 0;
  std::vector<std::byte> framed(8 + size - skip);
  std::memcpy(framed.data(), &header_len, 8);
  if (size != 0) {
    std::memcpy(framed.data() + 8, data, header_len);
    std::memcpy(framed.data() + 8 + header_len, data + header_len + skip, size - header_len - skip);
  }
  check_file(std::move(framed));
  return 0;
}
