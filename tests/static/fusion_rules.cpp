// Fusion and shape rules at their edges: what may fuse into what, what must not, and PyTorch's
// ceil-mode output sizes.
#include <strata/strata.hpp>

using namespace strata;

// A residual whose main branch starts with an activation: the relu must not fuse into the conv
// that produced the block input, since the identity shortcut reads that input unchanged.
using ReluResidual = decltype(input<1, 3, 3> | conv<2, 1> | residual(relu));
static_assert(ReluResidual::graph.ops[0].kind == OpKind::conv);
static_assert(ReluResidual::graph.ops[0].act.kind == Act::none);
static_assert(ReluResidual::graph.ops[1].kind == OpKind::activation);
static_assert(ReluResidual::graph.ops[2].kind == OpKind::add);
static_assert(ReluResidual::graph.ops[2].in2 == ReluResidual::graph.ops[0].out);

// The same for a projection shortcut that starts with an activation, and for a pre-activation
// block (batch_norm | relu | conv): nothing folds into the conv before the block.
using PreAct = decltype(input<4, 6, 6> | conv<4, 3, ConvOpts{.padding = 1}> |
                        residual(batch_norm | relu | conv<4, 3, ConvOpts{.padding = 1}>));
static_assert(PreAct::graph.ops[0].bn < 0 && PreAct::graph.ops[0].act.kind == Act::none);
using ShortcutAct = decltype(input<2, 3, 3> | conv<2, 1> | residual(conv<2, 1>, relu));
static_assert(ShortcutAct::graph.ops[0].act.kind == Act::none);

// An activation after a residual block fuses into the op that adds (as residual<relu> does).
using AddThenRelu = decltype(input<8, 6, 6> | conv<8, 3, ConvOpts{.padding = 1}> |
                             residual(conv<8, 3, ConvOpts{.padding = 1}> | batch_norm) | relu);
static_assert(AddThenRelu::graph.num_ops == 2);
static_assert(AddThenRelu::graph.ops[1].in2 >= 0 && AddThenRelu::graph.ops[1].act.kind == Act::relu);
// ... and into a stand-alone add.
using PoolAddRelu = decltype(input<2, 5, 5> | relu |
                             residual(max_pool<3, PoolOpts{.stride = 1, .padding = 1}>) | relu);
static_assert(PoolAddRelu::graph.ops[PoolAddRelu::graph.num_ops - 1].kind == OpKind::add);
static_assert(PoolAddRelu::graph.ops[PoolAddRelu::graph.num_ops - 1].act.kind == Act::relu);

// An activation fused across flatten leaves the stored tensor its producer's shape, so the f16
// NHWC plan pads its channels: conv | flatten | relu plans as conv | relu | flatten does.
using FlatRelu = decltype(input<3, 5, 5> | conv<3, 1> | flatten | relu | dense<4>);
using ReluFlat = decltype(input<3, 5, 5> | conv<3, 1> | relu | flatten | dense<4>);
static_assert(FlatRelu::plan_for<DType::f16, Layout::nhwc>.activation_bytes ==
              ReluFlat::plan_for<DType::f16, Layout::nhwc>.activation_bytes);
static_assert(FlatRelu::plan_for<DType::f16, Layout::nhwc>.tensors[1].bytes == 8 * 5 * 5 * 2);

// Ceil mode as PyTorch: a window larger than the input still gives one output when ceil mode
// rounds up (MaxPool2d(4, ceil_mode=True) on 3x3 → 1x1); the last window may not start in the
// right padding.
static_assert(window_out(3, 4, 4, 0, 1, true) == 1);
static_assert(window_out(3, 4, 4, 0, 1, false) == 0);
static_assert(window_out(7, 2, 2, 0, 1, true) == 4);
static_assert(window_out(8, 3, 2, 1, 1, true) == 5);
static_assert(window_out(5, 2, 2, 1, 1, true) == 3);  // not 4: it would start in the padding
static_assert(decltype(input<1, 3, 3> | max_pool<4, PoolOpts{.ceil_mode = true}>)::output_spec.shape ==
              chw(1, 1, 1));

int main() {}
