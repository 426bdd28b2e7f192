// An op label longer than a Name holds is a compile error naming the limit, never cut short: the
// conv's and batch_norm's 50-character names make a 101-character "<conv>+<bn>".
// expect: strata::Name: a parameter name or op label longer than 95 characters
#include <strata/strata.hpp>
using namespace strata;
using Net = decltype(input<1, 4, 4> |
                     named<"a_convolution_whose_name_is_fifty_characters_long_">(conv<1, 1>) |
                     named<"a_batch_norm_whose_name_is_fifty_characters_long__">(batch_norm));
int main() { return Net::graph.num_ops; }
