// align_corners with nearest upsampling, which PyTorch refuses too.
// expect: upsample: align_corners applies to bilinear interpolation only
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | upsample<2, UpsampleOpts{.align_corners = true}>;
int main() {}
