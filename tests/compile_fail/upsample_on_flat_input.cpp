// Upsampling a flat feature vector.
// expect: strata: this layer needs a (C,H,W) input but is fed a flat feature vector
// expect: stage<2>
// expect: strata::Upsample<
// expect: input<192>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | conv<3, 1> | flatten | upsample<2>;
int main() {}
