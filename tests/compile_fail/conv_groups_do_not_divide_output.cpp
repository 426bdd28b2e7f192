// groups = 3 with 8 output channels: a bad layer parameter, caught in the layer.
// expect: conv: groups must divide the number of output channels
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<6, 8, 8> | conv<8, 3, ConvOpts{.padding = 1, .groups = 3}>;
int main() {}
