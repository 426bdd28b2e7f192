// A 7x7 convolution without padding on a 5x5 input.
// expect: the window of this layer is larger than its (padded) input
// expect: stage<0>
// expect: input<3, 5, 5>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 5, 5> | conv<8, 7>;
int main() {}
