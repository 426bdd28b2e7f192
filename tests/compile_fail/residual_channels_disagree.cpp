// A residual block whose main branch changes 16 channels to 32 with an identity shortcut.
// expect: residual: the main branch and the shortcut produce different shapes
// expect: main_branch_output<32, 8, 8>
// expect: shortcut_output<16, 8, 8>
// expect: stage<1>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<3, 8, 8> | conv<16, 3, ConvOpts{.padding = 1}>
    | residual<relu>(conv<32, 3, ConvOpts{.padding = 1}> | batch_norm);
int main() {}
