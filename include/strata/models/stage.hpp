#pragma once
/// stage<N>(first, rest): a run of N blocks whose first one differs from the others (stride,
/// channels), as torchvision builds its stages in a loop.
#include <utility>

#include "strata/pipeline/node.hpp"

namespace strata::models {

/// `first | rest | rest | ...` with N − 1 copies of `rest` (N ≥ 1): a chain whose blocks are
/// numbered in order wherever it is spliced ("features.2", "features.3", ...).
template <int N, class First, class Rest>
constexpr auto stage(First first, Rest rest) {
  static_assert(N >= 1, "stage: a stage has at least one block");
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return (first | ... | (static_cast<void>(I), rest));
  }(std::make_index_sequence<(N >= 1 ? N - 1 : 0)>{});
}

}  // namespace strata::models
