// A 4x4 pool on a 3x3 input.
// expect: the window of this layer is larger than its (padded) input
// expect: stage<2>
// expect: input<16, 3, 3>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 6, 6> | conv<16, 3, ConvOpts{.stride = 2, .padding = 1}> | relu
    | max_pool<4>;
int main() {}
