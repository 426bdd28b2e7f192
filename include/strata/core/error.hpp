#pragma once
/// strata::Error — the one exception type Strata throws, and the STRATA_CHECK macros.
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace strata {

/// Every run-time failure in Strata: a bad weight file, a batch above the maximum, a failed
/// CUDA/cuDNN/cuBLAS call. `what()` says what was wrong and where.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
[[noreturn]] inline void throw_error(std::string_view where, std::string_view what) {
  std::ostringstream os;
  os << what << " [" << where << "]";
  throw Error(os.str());
}
}  // namespace detail

}  // namespace strata

#define STRATA_STRINGIFY_IMPL(x) #x
#define STRATA_STRINGIFY(x) STRATA_STRINGIFY_IMPL(x)
#define STRATA_HERE __FILE__ ":" STRATA_STRINGIFY(__LINE__)

/// Throws strata::Error with `message` (anything streamable) when `cond` is false.
#define STRATA_CHECK(cond, message)                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      std::ostringstream strata_check_os_;                              \
      strata_check_os_ << message;                                      \
      ::strata::detail::throw_error(STRATA_HERE, strata_check_os_.str()); \
    }                                                                   \
  } while (false)
