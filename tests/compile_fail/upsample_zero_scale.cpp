// An upsampling scale factor of zero.
// expect: upsample: the scale factor must be positive
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | upsample<HW{2, 0}>;
int main() {}
