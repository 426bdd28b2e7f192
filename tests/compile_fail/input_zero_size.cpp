// An input with no rows.
// expect: input: channels, height and width must be positive
#include <strata/strata.hpp>
using namespace strata;
constexpr auto net = input<1, 0, 28> | relu;
int main() {}
