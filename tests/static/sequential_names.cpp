// sequential(): an nn.Sequential (or a module with named attributes) that is one child of the
// chain it stands in, numbered under its own position; and a block whose main branch or gate is a
// single named node names it under the block's position.
#include <strata/strata.hpp>

using namespace strata;

// torchvision's features = Sequential(Conv2dNormActivation, Sequential(block, block), ...).
using Features = decltype(input<3, 16, 16> |
                          named<"features">(
                              sequential(conv<8, 3, ConvOpts{.padding = 1, .bias = false}> |
                                         batch_norm | relu6) |
                              sequential(residual(sequential(conv<8, 1> | batch_norm)) |
                                         residual(named<"block">(conv<8, 1> | batch_norm))) |
                              sequential(named<"conv">(conv<4, 1> | batch_norm)) |
                              sequential(relu) | sequential(conv<2, 1>)));
static_assert(Features::num_stages == 1);
static_assert(Features::output_spec.shape == chw(2, 16, 16));
static_assert(Features::graph.find_param("features.0.0.weight") == 0);
static_assert(Features::graph.find_param("features.0.1.running_var") == 4);
// A sequential inside a sequential inside a residual: each keeps its position.
static_assert(Features::graph.find_param("features.1.0.0.weight") >= 0);
static_assert(Features::graph.find_param("features.1.0.1.bias") >= 0);
// A residual whose main branch is one named node: that node is a child of the block.
static_assert(Features::graph.find_param("features.1.1.block.0.weight") >= 0);
static_assert(Features::graph.find_param("features.1.1.block.1.running_mean") >= 0);
static_assert(Features::graph.find_param("features.block.0.weight") == -1);
// A module with one attribute.
static_assert(Features::graph.find_param("features.2.conv.0.weight") >= 0);
static_assert(Features::graph.find_param("features.2.conv.1.num_batches_tracked") >= 0);
// A single layer in a sequential is its child "0".
static_assert(Features::graph.find_param("features.4.0.weight") >= 0);
static_assert(Features::graph.find_param("features.4.0.bias") >= 0);
static_assert(Features::graph.num_params == 6 + 2 * 7 + 7 + 2);

// The rows: a sequential is a composite row at its own path, its children one level deeper.
constexpr int row_of(std::string_view name) {
  for (int r = 0; r < Features::graph.num_rows; ++r) {
    if (Features::graph.rows[r].name.view() == name) {
      return r;
    }
  }
  return -1;
}
static_assert(Features::graph.rows[row_of("features.0")].composite);
static_assert(Features::graph.rows[row_of("features.0")].kind == "sequential");
static_assert(Features::graph.rows[row_of("features.0")].params == 8 * 3 * 9 + 2 * 8);
static_assert(Features::graph.rows[row_of("features.0.0")].depth ==
              Features::graph.rows[row_of("features.0")].depth + 1);
static_assert(Features::graph.rows[row_of("features.1")].kind == "sequential");
static_assert(Features::graph.rows[row_of("features.1.1")].kind == "residual");

// Fusion is unchanged by the grouping: conv+bn+relu6 stays one op, a residual's add joins its
// conv, and a relu alone in its sequential fuses into the conv before it.
static_assert(Features::graph.num_ops == 5);
static_assert(Features::graph.ops[0].act.kind == Act::clip);
static_assert(Features::graph.ops[1].in2 == Features::graph.ops[1].in);
static_assert(Features::graph.ops[3].act.kind == Act::relu);

// Without sequential, `|` splices a chain into the chain it joins: the same layers, numbered flat.
using Flat = decltype(input<3, 4, 4> | named<"f">((conv<2, 1> | relu) | (conv<2, 1> | relu)));
static_assert(Flat::graph.find_param("f.2.weight") >= 0);
using Nested = decltype(input<3, 4, 4> |
                        named<"f">(sequential(conv<2, 1> | relu) | sequential(conv<2, 1> | relu)));
static_assert(Nested::graph.find_param("f.1.0.weight") >= 0);
static_assert(Nested::graph.find_param("f.2.weight") == -1);

// A gate that is one named node: named under the block's position.
using Gate = decltype(input<4, 3, 3> |
                      named<"m">(conv<4, 1> | multiply(named<"se">(global_avg_pool | conv<4, 1> |
                                                                     sigmoid))));
static_assert(Gate::graph.find_param("m.1.se.1.weight") >= 0);

int main() {}
