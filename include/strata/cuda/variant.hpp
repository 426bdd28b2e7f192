#pragma once
/// Which variant of which tactic runs an op (Variant), as the engine prints it and as a caller
/// names it (parse_variant): EngineOptions::force, the tuning cache, describe().
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace strata::cuda {

/// Which variant of which tactic runs an op: the tactic's name and up to three integers of its
/// own (cuDNN: algorithm, math type, fused or not). This is what the tuning cache stores.
struct Variant {
  std::string tactic;
  int algo = 0;
  int math = 0;
  int fuse = 0;
  friend bool operator==(const Variant&, const Variant&) = default;
};

/// "cudnn_conv algo 1 math 1 fuse 1": the tactic, then each of its integers that is not 0.
[[nodiscard]] inline std::string to_string(const Variant& v) {
  std::string s = v.tactic;
  for (const auto& [name, value] : {std::pair{" algo ", v.algo}, std::pair{" math ", v.math},
                                    std::pair{" fuse ", v.fuse}}) {
    if (value != 0) {
      s += name;
      s += std::to_string(value);
    }
  }
  return s;
}

/// The variant `text` names, in to_string's form ("mma_conv algo 2 fuse 1": the tactic, then
/// any of algo, math, fuse, each once, with an integer) or as "tactic:algo:math:fuse" (trailing
/// fields may be left out: "tile_conv:3:0:1", "lt_dense"); nothing when it is neither.
[[nodiscard]] inline std::optional<Variant> parse_variant(std::string_view text) {
  auto number = [](std::string_view t, int& out) {
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    return ec == std::errc{} && end == t.data() + t.size();
  };
  auto trim = [](std::string_view t) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    return t;
  };
  text = trim(text);
  Variant v;
  if (text.find(':') != std::string_view::npos) {
    int* fields[] = {&v.algo, &v.math, &v.fuse};
    std::size_t at = text.find(':');
    v.tactic = std::string(text.substr(0, at));
    for (int* f : fields) {
      if (at == std::string_view::npos) {
        break;
      }
      const std::size_t next = text.find(':', at + 1);
      const std::string_view field =
          text.substr(at + 1, next == std::string_view::npos ? std::string_view::npos : next - at - 1);
      if (!number(field, *f)) {
        return std::nullopt;
      }
      at = next;
    }
    if (at != std::string_view::npos) {
      return std::nullopt;  // more than four fields
    }
  } else {
    std::size_t at = text.find(' ');
    v.tactic = std::string(text.substr(0, at));
    bool seen[3] = {false, false, false};
    while (at != std::string_view::npos) {
      text = trim(text.substr(at));
      at = text.find(' ');
      const std::string_view name = text.substr(0, at);
      if (at == std::string_view::npos) {
        return std::nullopt;  // a name without its integer
      }
      text = trim(text.substr(at));
      at = text.find(' ');
      const std::string_view value = text.substr(0, at);
      const int i = name == "algo" ? 0 : name == "math" ? 1 : name == "fuse" ? 2 : -1;
      if (i < 0 || seen[i] || !number(value, i == 0 ? v.algo : i == 1 ? v.math : v.fuse)) {
        return std::nullopt;
      }
      seen[i] = true;
    }
  }
  if (v.tactic.empty() || v.tactic.find_first_of(" \t") != std::string::npos) {
    return std::nullopt;
  }
  return v;
}

}  // namespace strata::cuda
