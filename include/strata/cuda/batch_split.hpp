#pragma once
/// How a batch is shared among the engines of an EnginePool: contiguous shares, as equal as
/// possible, none above one engine's maximum. Host C++ only (no CUDA), so it is tested anywhere.
#include <cstdint>
#include <vector>

#include "strata/core/error.hpp"

namespace strata::cuda {

/// One engine's share of a batch: images [first, first + count).
struct BatchShare {
  int first = 0;
  int count = 0;
  friend bool operator==(const BatchShare&, const BatchShare&) = default;
};

/// `batch` images over `engines` engines that take at most `max_batch` each: the first
/// batch mod k shares one image larger, where k = min(engines, batch) shares are used (no empty
/// share). A batch above engines × max_batch is an error naming the three numbers.
[[nodiscard]] inline std::vector<BatchShare> split_batch(int batch, int engines, int max_batch) {
  STRATA_CHECK(engines >= 1 && max_batch >= 1,
               "split_batch: " << engines << " engines of max_batch " << max_batch);
  const std::int64_t most = static_cast<std::int64_t>(engines) * max_batch;
  STRATA_CHECK(batch >= 1 && batch <= most,
               "EnginePool: batch " << batch << " is outside [1, " << most << "] (" << engines
                                    << " engines of max_batch " << max_batch << ")");
  const int k = batch < engines ? batch : engines;
  std::vector<BatchShare> shares;
  int first = 0;
  for (int i = 0; i < k; ++i) {
    const int count = batch / k + (i < batch % k ? 1 : 0);
    shares.push_back({first, count});
    first += count;
  }
  return shares;
}

}  // namespace strata::cuda
