#pragma once
/// NameSet: a fixed-capacity hash set of strings for constant evaluation, so that finding repeats
/// among N names costs steps linear in their total length. Compilers bound constexpr evaluation
/// (clang stops at 1,048,576 steps by default), and DenseNet-121's 727 parameter names, which
/// share long prefixes, are too many for pairwise or sorted comparison.
#include <cstdint>
#include <string_view>

namespace strata {

/// FNV-1a hash of a string.
[[nodiscard]] constexpr std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (char ch : s) {
    h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  }
  return h;
}

/// Up to `Capacity` strings (views: the caller keeps them alive and unchanged), open addressing
/// at load ≤ 1/2.
template <int Capacity>
struct NameSet {
  static constexpr int slots = 2 * Capacity + 1;
  std::string_view names[slots]{};
  bool used[slots]{};

  /// Adds `s`; false (and nothing added) when it is already in the set.
  constexpr bool insert(std::string_view s) {
    int i = static_cast<int>(fnv1a(s) % slots);
    while (used[i]) {
      if (names[i] == s) {
        return false;
      }
      i = (i + 1) % slots;
    }
    used[i] = true;
    names[i] = s;
    return true;
  }
};

}  // namespace strata
