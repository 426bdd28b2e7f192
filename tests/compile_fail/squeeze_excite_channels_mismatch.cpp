// squeeze_excite declared for 32 channels on a 16-channel input: the gate's 32 values per image
// do not match the 16 channels.
// expect: strata: multiply: the gate branch must produce one value per channel, (C, 1, 1)
// expect: stage<2>
// expect: input<16, 8, 8>
// expect: gate_output<32, 1, 1>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | conv<16, 1> | relu | squeeze_excite<32, 8>;
int main() {}
