// A stride-2 main branch with an identity shortcut: spatial sizes disagree.
// expect: residual: the main branch and the shortcut produce different shapes
// expect: main_branch_output<16, 4, 4>
// expect: shortcut_output<16, 8, 8>
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<16, 8, 8>
    | residual(conv<16, 3, ConvOpts{.stride = 2, .padding = 1}> | batch_norm | relu);
int main() {}
