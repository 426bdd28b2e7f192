// Channel gates: squeeze_excite names its parameters as torchvision's SqueezeExcitation, inside
// MobileNetV3's InvertedResidual ("block.2.fc1.weight"); the gate fuses its activations, the
// product is an op of its own that reads the block input, which nothing in the gate changes.
#include <strata/strata.hpp>

#include "label_checks.hpp"

using namespace strata;

// MobileNetV3's InvertedResidual with squeeze-excite: block = Sequential(expand, depthwise, SE, project).
using Block = decltype(input<16, 14, 14> |
                       named<"block">(named<"0">(conv<64, 1, ConvOpts{.bias = false}> | batch_norm | hardswish) |
                                      named<"1">(conv<64, 3, ConvOpts{.padding = 1, .groups = 64, .bias = false}> |
                                                 batch_norm | hardswish) |
                                      squeeze_excite<64, 16, relu, hardsigmoid> |
                                      named<"3">(conv<24, 1, ConvOpts{.bias = false}> | batch_norm)));
static_assert(Block::output_spec.shape == chw(24, 14, 14));
static_assert(Block::graph.find_param("block.2.fc1.weight") >= 0);
static_assert(Block::graph.find_param("block.2.fc1.bias") >= 0);
static_assert(Block::graph.find_param("block.2.fc2.weight") >= 0);
static_assert(Block::graph.find_param("block.2.fc2.bias") >= 0);
static_assert(Block::graph.find_param("block.3.1.running_var") >= 0);
// PyTorch's count: 16·64 + 2·64 + 64·9 + 2·64 + (64·16 + 16) + (16·64 + 64) + 64·24 + 2·24.
static_assert(Block::param_count == 1024 + 128 + 576 + 128 + 1040 + 1088 + 1536 + 48);
static_assert(labels_unique<Block>());

// Ops: conv+bn+hardswish ×2, avgpool, fc1+relu, fc2+hardsigmoid, the product, conv+bn.
static_assert(Block::graph.num_ops == 7);
static_assert(Block::graph.ops[3].act.kind == Act::relu);
static_assert(Block::graph.ops[4].act.kind == Act::hardsigmoid);
static_assert(Block::graph.ops[5].kind == OpKind::multiply);
static_assert(Block::graph.ops[5].in == Block::graph.ops[1].out);
static_assert(Block::graph.ops[5].in2 == Block::graph.ops[4].out);
static_assert(Block::graph.ops[5].label.view() == "block.multiply2+mul");

// A gate that starts with an activation does not fuse it into the conv before the block.
using ActGate = decltype(input<2, 3, 3> | conv<2, 1> | multiply(sigmoid | global_avg_pool));
static_assert(ActGate::graph.ops[0].act.kind == Act::none);

int main() {}
