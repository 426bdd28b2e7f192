// A layer inside sequential() that cannot take its input is reported at the stage holding it.
// expect: strata: this layer needs a (C,H,W) input but is fed a flat feature vector
// expect: stage<2>
// expect: input<3>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | global_avg_pool | flatten |
                     sequential(conv<8, 1> | batch_norm) | relu;
int main() {}
