// A convolution with no output channels.
// expect: conv: the number of output channels must be positive
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<1, 28, 28> | conv<0, 3>;
int main() {}
