// groups = 4 on 6 input channels.
// expect: conv: groups must divide the input channels
// expect: stage<1>
// expect: input<6, 8, 8>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<6, 8, 8> | relu | conv<8, 3, ConvOpts{.padding = 1, .groups = 4}>;
int main() {}
