// A gate branch that keeps H and W (a global pool forgotten) cannot scale channels.
// expect: strata: multiply: the gate branch must produce one value per channel, (C, 1, 1)
// expect: stage<1>
// expect: input<16, 8, 8>
// expect: gate_output<16, 8, 8>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | conv<16, 1> | multiply(conv<4, 1> | relu | conv<16, 1> | sigmoid);
int main() {}
