// A concat whose branches produce different heights and widths: every branch's output is named.
// expect: strata: concat: the branches produce different heights and widths
// expect: stage<1>
// expect: output<16, 8, 8>
// expect: output<32, 4, 4>
// expect: output<8, 8, 8>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | conv<8, 1>
    | concat(conv<16, 3, ConvOpts{.padding = 1}>, conv<32, 3, ConvOpts{.stride = 2, .padding = 1}>,
             identity);
int main() {}
