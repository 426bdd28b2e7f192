#pragma once
/// relative_error: ‖a − b‖₂ / ‖b‖₂, the measure every accuracy check in Strata uses (b is the
/// reference). NaN anywhere gives NaN, so it never passes a `<` test.
#include <cmath>
#include <limits>
#include <span>

#include "strata/core/error.hpp"

namespace strata {

/// ‖a − b‖ / ‖b‖ over equally long spans, accumulated in double; 0 when both are all zero.
[[nodiscard]] inline double relative_error(std::span<const float> a, std::span<const float> b) {
  STRATA_CHECK(a.size() == b.size(),
               "relative_error: sizes differ (" << a.size() << " and " << b.size() << ")");
  double num = 0.0;
  double den = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      return std::numeric_limits<double>::quiet_NaN();
    }
  }
  if (den == 0.0) {
    return num == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  }
  return std::sqrt(num / den);
}

}  // namespace strata
