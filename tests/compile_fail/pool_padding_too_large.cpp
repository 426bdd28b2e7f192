// PyTorch requires pool padding <= half the window.
// expect: pool: the padding must be at most half the window
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<1, 28, 28> | max_pool<2, PoolOpts{.padding = 2}>;
int main() {}
