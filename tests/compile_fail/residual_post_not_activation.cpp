// What follows a residual addition must be an activation.
// expect: residual: what follows the addition must be an activation
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<8, 8, 8> | residual<batch_norm>(conv<8, 3, ConvOpts{.padding = 1}>);
int main() {}
