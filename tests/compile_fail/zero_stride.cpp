// A stride of zero.
// expect: conv: the stride must be positive
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<1, 28, 28> | conv<8, 3, ConvOpts{.stride = 0}>;
int main() {}
